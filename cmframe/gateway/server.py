"""The gateway over HTTP: an ASGI app (starlette pieces) served by uvicorn on loopback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from ..exceptions import GatewayError
from ..secret import ENV_VAR
from ..serving import ServerThread
from .config import REPORT_FORMATS, GatewayConfig, as_config
from .core import MESSAGE_PATH, TRANSACTIONS_PATH, Gateway, LedgerViews, Reply

__all__ = ["make_app", "serve_gateway", "RunningGateway", "ServerThread", "main"]


def _drop(send: Any) -> None:
    """Close the connection under this request without answering it."""
    cycle = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle (h11 and httptools)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise GatewayError("cannot drop the connection: not running under uvicorn")
    cycle.disconnected = True  # so uvicorn writes no 500 of its own afterwards
    transport.close()


def make_app(gateway: Gateway):
    """The ASGI application of a :class:`~cmframe.gateway.core.Gateway`.

    A bare ASGI callable rather than a routed ``Starlette`` app: dropping a
    connection needs the server's own ``send``, which middleware would wrap.
    It reads and answers through the ASGI messages directly (what starlette's
    ``Request``/``Response`` do, minus their per-request objects).
    """

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending its whole request
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query_string = scope.get("query_string", b"")
        query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)) if query_string else {}
        reply: Reply = gateway.handle(scope["method"], scope["path"], headers, body, query)
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        if reply.action == "drop":
            _drop(send)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
        if "content-length" not in reply.headers and reply.status not in (204, 304) and reply.status >= 200:
            raw.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        await send({"type": "http.response.body", "body": reply.body})

    return app


class RunningGateway(LedgerViews):
    """A gateway served by uvicorn in a background thread.

    Attributes
    ----------
    url : str
        Base URL, ``http://127.0.0.1:PORT``.
    message_url : str
        ``url + "/v1.0/message"``.
    transactions_url : str
        ``url + "/v1.2/transactions/"``.
    ledger : pathlib.Path
        The SQLite ledger file.
    gateway : cmframe.gateway.Gateway
        The logic object (config, clock, reports).
    """

    def __init__(self, config: GatewayConfig, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.gateway = Gateway(config)
        try:
            self._server = ServerThread(make_app(self.gateway), host=host, port=port)
        except GatewayError:
            self.gateway.close()
            raise
        self.host, self.port, self.url = self._server.host, self._server.port, self._server.url
        self.message_url = self.url + MESSAGE_PATH
        self.transactions_url = self.url + TRANSACTIONS_PATH
        self.ledger = self.gateway.ledger.path

    def __repr__(self) -> str:
        return f"<RunningGateway {self.url} ledger={str(self.ledger)!r}>"

    def start(self, timeout: float = 15.0) -> RunningGateway:
        """Start serving in a daemon thread; return once the server accepts connections."""
        try:
            self._server.start(timeout)
        except GatewayError:
            self.gateway.close()
            raise
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI)."""
        try:
            self._server.serve_forever()
        finally:
            self.gateway.close()

    def stop(self) -> None:
        """Stop the server and the report delivery; the ledger stays readable."""
        self._server.stop()
        self.gateway.close()

    def export_csv(self, path: str | Path) -> Path:
        """Write the reports known so far as a dashboard-style CSV export."""
        from .reports import export_csv

        return export_csv(self.gateway, path)

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve_gateway(config: GatewayConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                  **options: Any) -> Iterator[RunningGateway]:
    """Run the embedded gateway on loopback for the duration of a ``with`` block.

    Parameters
    ----------
    config : GatewayConfig, optional
        Options as one object; ``**options`` override its fields.
    host : str
        Interface to listen on (loopback by default).
    port : int
        ``0`` (default) picks a free port.
    **options
        Any :class:`GatewayConfig` field (see the :mod:`cmframe.gateway` docstring).

    Yields
    ------
    RunningGateway
        With ``.url``, ``.message_url``, ``.ledger``, ``.ledger_frame()``, ``.stop()``.

    Examples
    --------
    >>> with serve_gateway(tokens=["00000000-0000-0000-0000-000000000000"]) as gw:  # doctest: +SKIP
    ...     results = plan.cm.send(url=gw.message_url, token="00000000-0000-0000-0000-000000000000")
    """
    running = RunningGateway(as_config(config, options), host=host, port=port).start()
    try:
        yield running
    finally:
        running.stop()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmframe gateway", description="Run the embedded CM gateway.")
    a = p.add_argument
    a("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    a("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    a("--config", default=None,
      help="JSON file of any GatewayConfig options (prefix_rules, channel_rules, ...); flags win")
    a("--token", dest="tokens", metavar="TOKEN", action="append", default=None,
      help=f"a valid product token (repeatable); default: ${ENV_VAR} if set, else any token")
    a("--ledger", default=None, help="SQLite ledger file (default gateway-ledger.sqlite)")
    a("--seed", default=None, help="seed of outcomes and random faults")
    a("--time-scale", type=float, default=None, help="simulated seconds per real second")
    a("--balance", type=int, default=None, help="trial balance in parts (102 once spent)")
    a("--blacklist", action="append", default=None, help="blacklisted number (repeatable)")
    a("--spam-word", dest="spam_words", metavar="WORD", action="append", default=None,
      help="word that gets a body spam-filtered (repeatable)")
    for name in ("delivered", "failed", "rejected"):
        a(f"--{name}-rate", type=float, default=None, help=f"share of accepted messages {name}")
    a("--accepted-delay", type=float, default=None, help="simulated seconds to the code-0 report")
    a("--delivery-delay", type=float, default=None, help="mean simulated seconds to the final report")
    a("--faults", default=None, help="fault script, one action per request: 'ok,500,drop_after,429:1,slow:5'")
    for name in ("error", "throttle", "unavailable", "drop-before", "drop-after"):
        a(f"--{name}-rate", type=float, default=None, help=f"random {name} fault rate")
    a("--latency", type=float, default=None, help="seconds added to every answer")
    a("--latency-jitter", type=float, default=None, help="random extra seconds (uniform)")
    a("--webhook", default=None, help="URL status reports are pushed to")
    a("--report-format", default=None, choices=sorted(REPORT_FORMATS), help="json (default), xml, get, form")
    a("--report-batch", type=int, default=None, help="reports per push (json/xml)")
    a("--duplicate-rate", type=float, default=None, help="share of reports pushed twice")
    a("--reorder-rate", type=float, default=None, help="share of reports held back (arrive out of order)")
    a("--export-csv", default=None, help="write a CSV export of the reports on exit")
    return p


def main(argv: list[str] | None = None) -> int:
    """``cmframe gateway``: serve the embedded gateway until interrupted."""
    args = _parser().parse_args(argv)
    options: dict[str, Any] = {"ledger": "gateway-ledger.sqlite"}
    if args.config:
        try:
            loaded = json.loads(Path(args.config).read_text())
            if not isinstance(loaded, dict):
                raise ValueError("expected a JSON object")
        except (OSError, ValueError) as exc:
            print(f"cmframe gateway: cannot read --config: {exc}", file=sys.stderr)
            return 2
        options.update(loaded)
    flags = {k: v for k, v in vars(args).items() if k not in {"host", "port", "config"} and v is not None}
    if "faults" in flags:
        flags["faults"] = tuple(f for f in flags["faults"].split(",") if f.strip())
    options.update(flags)
    if options.get("tokens") is None and os.environ.get(ENV_VAR, "").strip():
        options["tokens"] = [os.environ[ENV_VAR]]
    try:
        running = RunningGateway(GatewayConfig().replace(**options), host=args.host, port=args.port)
    except (GatewayError, ValueError, TypeError) as exc:
        print(f"cmframe gateway: {exc}", file=sys.stderr)
        return 2
    tokens = running.config.tokens
    auth = f"{len(tokens)} token(s)" if tokens else "any product token"
    print(f"cmframe gateway on {running.url} (POST {running.message_url}; accepting {auth}; "
          f"ledger {running.ledger}); Ctrl-C stops", flush=True)
    try:
        running.serve_forever()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: a normal stop
        pass
    return 0
