"""Test helpers: :class:`FakeGateway`, the embedded gateway as an ``httpx.MockTransport`` handler.

``FakeGateway`` runs exactly the logic the loopback server runs
(:class:`cmframe.gateway.Gateway`), with the same ledger, faults and status
reports, but in-process: no socket, no thread for the HTTP side.

>>> import httpx
>>> from cmframe.testing import FakeGateway
>>> fake = FakeGateway(tokens=["00000000-0000-0000-0000-000000000000"], faults=["drop_after"])
>>> client = httpx.Client(transport=fake.transport, base_url=fake.url)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .gateway.config import GatewayConfig, as_config
from .gateway.core import MESSAGE_PATH, TRANSACTIONS_PATH, Gateway, LedgerViews

__all__ = ["FakeGateway", "WebhookRecorder"]


class FakeGateway(LedgerViews):
    """The gateway logic as a callable for :class:`httpx.MockTransport`.

    Parameters
    ----------
    config : GatewayConfig, optional
        Options as one object; ``**options`` override its fields.
    sleep : callable, optional
        Called with the seconds a reply is delayed (latency, ``slow`` faults).
        ``None`` (default) does not wait: time in a FakeGateway is virtual and
        the waits are summed in :attr:`slept`. Pass ``time.sleep`` for real waits.
    **options
        Any :class:`~cmframe.gateway.GatewayConfig` field.

    Notes
    -----
    How faults show up to an httpx client:

    * ``drop_before`` / ``drop_after``: ``httpx.RemoteProtocolError``
      ("Server disconnected without sending a response."); after ``drop_after``
      the messages are in the ledger.
    * a delay longer than the request's read timeout (``slow`` faults):
      ``httpx.ReadTimeout``, the messages already in the ledger.
    * error statuses: an ``httpx.Response`` with that status (and ``Retry-After``).
    """

    url = "http://cm-gateway.test"
    message_url = url + MESSAGE_PATH
    transactions_url = url + TRANSACTIONS_PATH

    def __init__(self, config: GatewayConfig | None = None, *, sleep: Callable[[float], Any] | None = None,
                 **options: Any) -> None:
        self.gateway = Gateway(as_config(config, options))
        self.config = self.gateway.config
        self.ledger = self.gateway.ledger.path
        self._sleep = sleep
        self.slept = 0.0
        self.calls: list[httpx.Request] = []

    def _wait(self, seconds: float) -> None:
        self.slept += seconds
        if self._sleep is not None:
            self._sleep(seconds)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = {k: v for k, v in request.url.params.items()}
        reply = self.gateway.handle(request.method, request.url.path, headers, request.content, query)
        if reply.delay > 0:
            timeout = (request.extensions.get("timeout") or {}).get("read")
            if timeout is not None and reply.delay > timeout:
                self._wait(timeout)
                raise httpx.ReadTimeout("timed out waiting for the gateway's answer", request=request)
            self._wait(reply.delay)
        if reply.action == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(reply.status, headers=reply.headers, content=reply.body, request=request)

    @property
    def transport(self) -> httpx.MockTransport:
        """A new ``httpx.MockTransport`` over this gateway (sync and async clients)."""
        return httpx.MockTransport(self)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` wired to this gateway (``base_url`` = :attr:`url`)."""
        return httpx.Client(transport=self.transport, base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` wired to this gateway."""
        return httpx.AsyncClient(transport=self.transport, base_url=self.url, **kwargs)

    def close(self) -> None:
        """Stop report delivery and close the ledger writer (the ledger stays readable)."""
        self.gateway.close()

    stop = close

    def __enter__(self) -> FakeGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WebhookRecorder:
    """A loopback webhook that records every request it gets (for status-report tests).

    Parameters
    ----------
    statuses : sequence of int, optional
        Answer the n-th request with ``statuses[n]`` (then 200): e.g.
        ``[500, 503]`` makes the first two pushes fail.
    path : str
        The path the webhook listens on (any path is recorded).

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:PORT/<path>``.
    requests : list of dict
        ``{"method", "path", "headers", "query", "body", "status"}`` per request, in arrival order.
    """

    def __init__(self, statuses: list[int] | tuple[int, ...] = (), *, path: str = "/status-reports") -> None:
        import threading

        from .gateway.server import ServerThread

        self.requests: list[dict[str, Any]] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self._server = ServerThread(self._app)
        self.url = self._server.url + "/" + path.lstrip("/")

    async def _app(self, scope, receive, send) -> None:
        from starlette.requests import Request
        from starlette.responses import Response

        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        with self._lock:
            n = len(self.requests)
            status = self._statuses[n] if n < len(self._statuses) else 200
            self.requests.append({
                "method": request.method, "path": request.url.path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "query": dict(request.query_params), "body": body, "status": status,
            })
        await Response(b"ok" if status < 300 else b"error", status_code=status)(scope, receive, send)

    def ok_requests(self) -> list[dict[str, Any]]:
        """The requests answered 2xx."""
        with self._lock:
            return [r for r in self.requests if 200 <= r["status"] < 300]

    def start(self) -> WebhookRecorder:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> WebhookRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
