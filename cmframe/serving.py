"""One way to serve an ASGI app on loopback from a thread: the gateway's and the receiver's.

Kept apart from both so that the receiver does not load the gateway package,
and uvicorn is imported only when a server is built.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from .exceptions import GatewayError

__all__ = ["ServerThread"]


class ServerThread:
    """An ASGI app served by uvicorn on a loopback socket, in a daemon thread.

    Works from tests, scripts and a running Jupyter kernel (the server gets its
    own event loop in its own thread; no signal handlers are installed).

    Parameters
    ----------
    app : ASGI application
    host : str
        An IPv4 or IPv6 address (the URL brackets an IPv6 one).
    port : int
        ``0`` picks a free port.
    **options
        ``uvicorn.Config`` options over the defaults (quiet, no lifespan, pending
        answers cut a second after a stop, backlog 1024).
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections; without it
        # uvicorn's separate header and body writes meet delayed ACKs (40 ms per request).
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise GatewayError(f"cannot listen on {host}:{port}: {exc}") from None
        config = {
            "log_level": "warning", "access_log": False, "lifespan": "off",
            "timeout_graceful_shutdown": 1, "interface": "asgi3", "proxy_headers": False,
            "backlog": 1024, **options,
        }  # fmt: skip
        self._sock.listen(config["backlog"])
        self.host, self.port = self._sock.getsockname()[:2]
        shown = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.url = f"http://{shown}:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, **config))
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # reported by start()
            self._error = exc

    @property
    def alive(self) -> bool:
        """Whether the serving thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 15.0) -> ServerThread:
        """Start serving; return once the server accepts connections."""
        self._thread = threading.Thread(target=self._run, name=f"cmframe-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                self.stop()
                raise GatewayError(f"the server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise GatewayError("the server did not start in time")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C)."""
        try:
            self._server.run(sockets=[self._sock])
        finally:
            self._sock.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: wait up to ``timeout`` s for the server to finish, then force it."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
            self._thread = None
        self._sock.close()
