"""The gateway as one object: ``handle(request) -> Reply``, shared by the server and FakeGateway."""

from __future__ import annotations

import logging
import random
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # only for annotations: the logic itself needs no pandas
    import pandas as pd

from ..codes import DELIVERY_ERROR_CODES, DETAILS, STATUS_CODES
from .config import Fault, GatewayConfig
from .ledger import MESSAGE_FIELDS, Ledger, iso
from .logic import (
    OutcomeDrawer,
    RequestError,
    Rules,
    SimClock,
    check_request,
    check_routable,
    check_token,
    expiry,
    find_token,
    parse_json,
    response_body,
)

__all__ = ["Gateway", "Reply", "MESSAGE_PATH", "TRANSACTIONS_PATH"]

logger = logging.getLogger("cmframe.gateway")

MESSAGE_PATH = "/v1.0/message"
TRANSACTIONS_PATH = "/v1.2/transactions/"

_PLAIN = {"content-type": "text/plain; charset=utf-8"}
_JSON = {"content-type": "application/json; charset=utf-8"}
_REASONS = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class Reply:
    """What to do with one request.

    ``action`` is ``"respond"`` (send status/headers/body after ``delay``
    seconds) or ``"drop"`` (close the connection without a response, after
    ``delay``).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    action: str = "respond"
    delay: float = 0.0

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# The message fields a ledger row takes from a checked record, around ``expires_at``.
_RECORD_HEAD = itemgetter(*MESSAGE_FIELDS[MESSAGE_FIELDS.index("msg_index"):MESSAGE_FIELDS.index("expires_at")])
_RECORD_TAIL = itemgetter(*MESSAGE_FIELDS[MESSAGE_FIELDS.index("dcs"):MESSAGE_FIELDS.index("accepted_at")])


class _Stamps:
    """:func:`~cmframe.gateway.ledger.iso` texts of UTC epoch microseconds, fast.

    ``datetime.isoformat`` per timestamp was a large share of a request's cost;
    the ``YYYY-MM-DDTHH:MM:SS`` part is cached per whole second instead.
    """

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}

    def text(self, us: int) -> str:
        """The text of a time given in microseconds since the epoch."""
        second, fraction = divmod(us, 1_000_000)
        prefix = self._seconds.get(second)
        if prefix is None:
            if len(self._seconds) >= 65536:  # bounded; report times spread over hours at most
                self._seconds.clear()
            prefix = self._seconds[second] = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        return f"{prefix}.{fraction:06d}+00:00"

    def of(self, ts: datetime) -> str:
        """The text of an aware datetime (as ``iso(ts)``)."""
        return self.text((ts - _EPOCH) // _US)


def _json_reply(status: int, payload: Any, **headers: str) -> Reply:
    return Reply(status, {**_JSON, **headers}, orjson.dumps(payload))


class Gateway:
    """The embedded CM gateway's logic, ledger and status reports, without any server.

    Parameters
    ----------
    config : GatewayConfig
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._tmpdir = None
        if config.ledger is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="cmframe-gateway-")
            path = Path(self._tmpdir.name) / "ledger.sqlite"
        else:
            path = Path(config.ledger)
        self.ledger = Ledger(path)
        self.clock = SimClock(config.time_scale)
        self._lock = threading.Lock()
        self._requests = 0
        self._rng = random.Random(f"faults|{config.seed}")
        self._balance = config.balance
        self._rules = Rules.of(config)
        self._drawer = OutcomeDrawer(config, self._rules)
        self._stamps = _Stamps()
        self.reports = None
        if config.webhook:
            from .reports import ReportDispatcher

            self.reports = ReportDispatcher(self)
        self._closed = False

    # --- dispatch ---------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes,
               query: dict[str, str] | None = None) -> Reply:
        """Answer one HTTP request (``headers`` keys lower-case).

        Parameters
        ----------
        method, path : str
        headers : dict
            Header names in lower case.
        body : bytes
        query : dict, optional
            Query parameters (first value of each).

        Returns
        -------
        Reply
        """
        route = path.rstrip("/").lower()
        if route == MESSAGE_PATH:
            if method.upper() != "POST":
                return Reply(405, {"allow": "POST"}, b"")
            try:
                return self._message(headers, body)
            except Exception:  # a bug here must still look like CM's 500, not a traceback
                logger.exception("the embedded gateway failed on a request")
                return _json_reply(500, {"details": DETAILS["unknown"], "errorCode": 999, "messages": []})
        if route == TRANSACTIONS_PATH.rstrip("/"):
            if method.upper() != "GET":
                return Reply(405, {"allow": "GET"}, b"")
            from .reports import transactions

            return transactions(self, headers, query or {})
        if route in {"", "/health"}:
            return Reply(200, _PLAIN, b"cmframe embedded CM gateway\n")
        return Reply(404, _PLAIN, b"Not Found\n")

    def _fault(self) -> tuple[int, Fault, float]:
        cfg = self.config
        with self._lock:
            self._requests += 1
            number = self._requests
            fault = cfg.fault_script(number)
            draw = self._rng.random()
            jitter = self._rng.uniform(0.0, cfg.latency_jitter) if cfg.latency_jitter else 0.0
        if fault is None:
            fault = Fault()
            for rate, make in (
                (cfg.drop_before_rate, lambda: Fault("drop_before")),
                (cfg.drop_after_rate, lambda: Fault("drop_after")),
                (cfg.error_rate, lambda: Fault("error", status=cfg.error_status)),
                (cfg.throttle_rate, lambda: Fault("error", status=429, retry_after=cfg.retry_after)),
                (cfg.unavailable_rate, lambda: Fault("error", status=503, retry_after=cfg.retry_after)),
            ):
                if draw < rate:
                    fault = make()
                    break
                draw -= rate
        return number, fault, cfg.latency + jitter + fault.delay

    @staticmethod
    def _error_reply(fault: Fault) -> Reply:
        status = fault.status or 500
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        if status == 500:
            return _json_reply(500, {"details": DETAILS["unknown"], "errorCode": 999, "messages": []}, **headers)
        reason = _REASONS.get(status, "Error")
        return Reply(status, {**_PLAIN, **headers}, f"{status} {reason}\n".encode())

    def _message(self, headers: dict[str, str], body: bytes) -> Reply:
        number, fault, delay = self._fault()
        request_id = uuid.uuid4().hex
        received = self.clock.now()
        label = f"{fault.kind}:{fault.status}" if fault.status else fault.kind
        request = {"request_id": request_id, "request_number": number, "received_at": self._stamps.of(received),
                   "fault": label, "n_entries": 0, "n_accepted": 0}
        if fault.kind in {"drop_before", "error"}:  # refused before reading: nothing accepted
            reply = Reply(action="drop") if fault.kind == "drop_before" else self._error_reply(fault)
            request.update(http_status=reply.status if reply.action == "respond" else None,
                           error_code=999 if reply.status == 500 else None)
            self.ledger.record(request, [])
            reply.delay = delay
            return reply
        rows: list[tuple] = []
        try:
            data = parse_json(body)
            check_token(find_token(headers, data), self.config)
            checked = check_request(data, self.config)
            check_routable(checked, self.config)
            with self._lock:  # balance check and spend are one step
                if self._balance is not None:
                    if checked.parts > self._balance:
                        raise RequestError(400, DETAILS["balance"], 102)
                    self._balance -= checked.parts
            status, payload = response_body(checked)
            rows = self._rows(checked, request_id, received)
            request.update(http_status=status, error_code=payload["errorCode"], n_msg=checked.n_msg,
                           n_entries=len(checked.entries), n_accepted=len(rows))
        except RequestError as exc:
            status, payload = exc.status, exc.body()
            request.update(http_status=status, error_code=exc.error_code, n_entries=0, n_accepted=0)
        ids = self.ledger.record_rows(request, rows)  # committed before any answer
        if self.reports is not None and rows:
            self.reports.schedule([dict(zip(MESSAGE_FIELDS, (i, *row), strict=True))
                                   for i, row in zip(ids, rows, strict=True)])
        if fault.kind == "drop_after":
            return Reply(action="drop", delay=delay)
        if fault.kind == "error_after":
            reply = self._error_reply(fault)
        else:
            reply = _json_reply(status, payload)
        reply.headers["x-request-id"] = request_id
        reply.delay = delay
        return reply

    def _rows(self, checked, request_id: str, received: datetime) -> list[tuple]:
        """Ledger rows (``MESSAGE_FIELDS[1:]`` order) of a request's accepted messages, outcomes decided.

        Per-request constants (acceptance time, expiry per validity text) are
        computed once; times are kept in integer microseconds and formatted by
        :class:`_Stamps`, so a 1000-message request stays in the milliseconds.
        """
        config, draw, stamp, scale = self.config, self._drawer.draw, self._stamps.text, self.clock.scale
        base = (received - _EPOCH) // _US
        accepted_at = stamp(base)
        windows: dict[str | None, tuple[int, str]] = {}  # validity -> (µs until expiry, expires_at text)
        rows = []
        for rec in checked.records:
            number = rec["number"]  # checked: digits with an optional "+", stripped
            digits = number[1:] if number[0] == "+" else number[2:] if number.startswith("00") else number
            status, error, channel, operator, accepted_delay, final_delay = draw(
                digits, rec["reference"], rec["body"], rec["channels"])
            validity = rec["validity"]
            window = windows.get(validity)
            if window is None:
                deadline = expiry(validity, received, config)
                window = windows[validity] = ((deadline - received) // _US, iso(deadline))
            accepted_us = round(accepted_delay * 1e6)
            final_us = round(final_delay * 1e6)
            if status == 2 and final_us > window[0]:  # delivery would come after the validity: expired
                status, error = 3, 39
                final_us = max(window[0], accepted_us)
            accepted_report_at = stamp(base + accepted_us)
            final_report_at = stamp(base + final_us)
            if scale == 1.0:  # real time: reports are due when they are stamped
                accepted_due, final_due = accepted_report_at, final_report_at
            else:
                accepted_due, final_due = stamp(base + round(accepted_us / scale)), stamp(base + round(final_us / scale))
            rows.append((
                request_id, *_RECORD_HEAD(rec), window[1], *_RECORD_TAIL(rec), accepted_at,
                status, STATUS_CODES[status], error, DELIVERY_ERROR_CODES.get(error, "Unknown error"),
                channel, operator, accepted_report_at, final_report_at, accepted_due, final_due,
            ))
        return rows

    # --- lifecycle ----------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """How many ``POST /v1.0/message`` requests arrived so far."""
        with self._lock:
            return self._requests

    @property
    def balance(self) -> int | None:
        """Parts left when a balance is configured."""
        with self._lock:
            return self._balance

    def wait_reports(self, timeout: float = 30.0) -> bool:
        """Block until every scheduled status report is delivered (or given up); True when done."""
        if self.reports is None:
            return True
        return self.reports.wait_idle(timeout)

    def close(self) -> None:
        """Stop report delivery, write the CSV export if configured, close the ledger."""
        if self._closed:
            return
        self._closed = True
        if self.reports is not None:
            self.reports.stop()
        if self.config.export_csv:
            from .reports import export_csv

            export_csv(self, self.config.export_csv)
        self.ledger.close()  # still readable afterwards; a temporary ledger goes with this object


class LedgerViews:
    """What a test or notebook reads off a gateway: its ledger as frames.

    Shared by :class:`RunningGateway` (a real server) and
    :class:`cmframe.testing.FakeGateway` (in process); both hold ``self.gateway``.
    """

    gateway: Gateway

    def ledger_frame(self) -> pd.DataFrame:
        """One row per accepted message, with its decided outcome.

        Columns: ``id``, ``request_id``, ``msg_index``, ``to_index``, ``number``,
        ``reference``, ``sender``, ``body``, ``body_type``, ``channels``,
        ``custom_grouping``..``3``, ``validity``, ``dcs``, ``rich_content``,
        ``encoding``, ``parts``, ``accepted_at``, and the decided outcome:
        ``status_code`` (1/2/3), ``status``, ``error_code``, ``error_description``,
        ``channel``, ``operator``, ``accepted_report_at``/``final_report_at``
        (report timestamps, simulated) and ``accepted_report_due``/``final_report_due``
        (when they are pushed, real time). Strings are ``string``, integers
        ``Int64``, times UTC.
        """
        return self.gateway.ledger.frame("messages")

    def requests_frame(self) -> pd.DataFrame:
        """One row per ``POST /v1.0/message`` request, with its fault and answer."""
        return self.gateway.ledger.frame("requests")

    def deliveries_frame(self) -> pd.DataFrame:
        """One row per attempt to push a status report."""
        return self.gateway.ledger.frame("deliveries")

    def wait_reports(self, timeout: float = 30.0) -> bool:
        """Block until every scheduled status report has been pushed; True when done."""
        return self.gateway.wait_reports(timeout)

    @property
    def request_count(self) -> int:
        """How many requests the gateway has answered (or dropped)."""
        return self.gateway.request_count
