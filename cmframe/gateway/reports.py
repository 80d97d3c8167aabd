"""Status reports of the embedded gateway: pushed to a webhook, pulled, or exported.

* :class:`ReportDispatcher` pushes each accepted message's reports (code 0,
  then the final 1/2/3) at their simulated times to ``config.webhook``, as
  JSON POST, XML POST, GET query or form POST, retrying non-2xx answers with
  exponential backoff and, when configured, duplicating or reordering some.
* :func:`transactions` answers ``GET /v1.2/transactions/`` (paged).
* :func:`export_csv` writes the dashboard-style CSV export.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

import httpx
import orjson
import pandas as pd

from ..codes import DELIVERY_ERROR_CODES, STATUS_CODES
from .config import _digits
from .ledger import iso

__all__ = [
    "report_time",
    "render_reports",
    "ReportDispatcher",
    "transactions",
    "export_csv",
    "TRANSACTION_STATUS",
]

#: Transactions API status per report status code (20 = delivered is CM's; the others are ours).
TRANSACTION_STATUS: dict[int | None, tuple[int, str]] = {
    None: (10, "Accepted"),
    0: (11, "Accepted by operator"),
    1: (40, "Rejected"),
    2: (20, "Delivered"),
    3: (30, "Failed"),
}


def report_time(ts: datetime) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2026-11-29T08:00:00.123Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def render_reports(reports: list[dict[str, Any]], fmt: str) -> dict[str, Any]:
    """The HTTP request pushing ``reports`` in format ``fmt``: ``method``, ``headers`` and ``content`` or ``params``.

    Each report has ``to``, ``reference``, ``code``, ``error_code``,
    ``error_description``, ``operator`` and ``received`` (a datetime).
    ``get`` and ``form`` carry one report per request.
    """
    if fmt == "json":
        msgs = [
            {
                "received": report_time(r["received"]),
                "to": r["to"],
                "reference": r["reference"],
                "status": {"code": r["code"], "errorCode": r["error_code"], "errorDescription": r["error_description"]},
                "operator": r["operator"],
            }
            for r in reports
        ]
        payload = {"messages": {"msg": msgs[0] if len(msgs) == 1 else msgs}}
        return {"method": "POST", "headers": {"content-type": "application/json"}, "content": orjson.dumps(payload)}
    if fmt == "xml":
        parts = ['<?xml version="1.0" encoding="utf-8"?><MESSAGES>']
        for r in reports:
            parts.append(f"<MSG RECEIVED={quoteattr(report_time(r['received']))}><TO>{escape(r['to'])}</TO>")
            if r["reference"] is not None:
                parts.append(f"<REFERENCE>{escape(r['reference'])}</REFERENCE>")
            parts.append(
                f"<STATUS><CODE>{r['code']}</CODE><ERRORCODE>{r['error_code']}</ERRORCODE>"
                f"<ERRORDESCRIPTION>{escape(r['error_description'])}</ERRORDESCRIPTION></STATUS>"
                f"<OPERATOR>{escape(r['operator'])}</OPERATOR></MSG>"
            )
        parts.append("</MESSAGES>")
        return {"method": "POST", "headers": {"content-type": "application/xml; charset=utf-8"},
                "content": "".join(parts).encode()}
    if len(reports) != 1:
        raise ValueError(f"{fmt} reports carry one report per request")
    r = reports[0]
    fields = {
        "RECEIVED": report_time(r["received"]), "TO": r["to"], "REFERENCE": r["reference"],
        "STATUS": r["code"], "ERRORCODE": r["error_code"], "ERRORDESCRIPTION": r["error_description"],
        "OPERATOR": r["operator"],
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if fmt == "get":
        return {"method": "GET", "headers": {}, "params": fields}
    return {"method": "POST", "headers": {"content-type": "application/x-www-form-urlencoded"},
            "content": urlencode(fields).encode()}


def _reports_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The two reports of an accepted message (code 0, then its final code)."""
    base = {"id": record["id"], "to": record["number"], "reference": record.get("reference"),
            "operator": record["operator"]}
    return [
        {**base, "code": 0, "error_code": 0, "error_description": DELIVERY_ERROR_CODES[0],
         "received": datetime.fromisoformat(record["accepted_report_at"]), "due": datetime.fromisoformat(record["accepted_report_due"])},
        {**base, "code": record["status_code"], "error_code": record["error_code"],
         "error_description": record["error_description"], "received": datetime.fromisoformat(record["final_report_at"]),
         "due": datetime.fromisoformat(record["final_report_due"])},
    ]


class ReportDispatcher:
    """Pushes status reports to the webhook from ``report_concurrency`` background threads.

    Parameters
    ----------
    gateway : cmframe.gateway.Gateway
    """

    def __init__(self, gateway) -> None:
        self.gateway = gateway
        self.config = cfg = gateway.config
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._busy = 0
        self._stopping = False
        self._rng = random.Random(f"reports|{cfg.seed}")
        self._client = httpx.Client(timeout=cfg.report_timeout,
                                    limits=httpx.Limits(max_connections=cfg.report_concurrency))
        self.sent = 0  # successful pushes (requests)
        self.failed = 0  # reports given up after all retries
        self._threads = [
            threading.Thread(target=self._run, name=f"cmframe-gateway-reports-{i}", daemon=True)
            for i in range(cfg.report_concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def schedule(self, records: list[dict[str, Any]]) -> None:
        """Queue the reports of newly accepted messages (ledger records with ``id``)."""
        cfg = self.config
        with self._cv:
            for record in records:
                for report in _reports_of(record):
                    due = report["due"].timestamp()
                    if cfg.reorder_rate and self._rng.random() < cfg.reorder_rate:
                        due += self._rng.uniform(0.0, cfg.reorder_window)  # held back: arrives out of order
                    report["attempt"] = 1
                    heapq.heappush(self._heap, (due, next(self._seq), report))
            self._cv.notify_all()

    def _take(self) -> list[dict[str, Any]] | None:
        batch_size = self.config.report_batch if self.config.report_format in {"json", "xml"} else 1
        with self._cv:
            while True:
                if self._stopping:
                    return None
                now = time.time()
                if self._heap and self._heap[0][0] <= now:
                    batch = []
                    while self._heap and self._heap[0][0] <= now and len(batch) < batch_size:
                        batch.append(heapq.heappop(self._heap)[2])
                    self._busy += len(batch)
                    return batch
                self._cv.wait(None if not self._heap else min(self._heap[0][0] - now, 1.0))

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._push(batch)
            finally:
                with self._cv:
                    self._busy -= len(batch)
                    self._cv.notify_all()

    def _push(self, batch: list[dict[str, Any]]) -> None:
        cfg = self.config
        req = render_reports(batch, cfg.report_format)
        status, error = None, None
        try:
            response = self._client.request(req["method"], cfg.webhook, headers=req["headers"],
                                            content=req.get("content"), params=req.get("params"))
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        now_sim = self.gateway.clock.now()
        for report in batch:
            self.gateway.ledger.log_delivery(report["id"], report["code"], report["attempt"], status, error, now_sim)
        with self._cv:
            if ok:
                self.sent += 1
            for report in batch:
                if not ok:
                    if report["attempt"] >= cfg.report_retries:
                        self.failed += 1
                        continue
                    due = time.time() + min(cfg.report_backoff * 2 ** (report["attempt"] - 1), 60.0)
                    heapq.heappush(self._heap, (due, next(self._seq), {**report, "attempt": report["attempt"] + 1}))
                elif cfg.duplicate_rate and not report.get("duplicate") and self._rng.random() < cfg.duplicate_rate:
                    due = time.time() + self._rng.uniform(0.0, cfg.reorder_window)  # CM's retries repeat reports
                    heapq.heappush(self._heap, (due, next(self._seq), {**report, "duplicate": True, "attempt": 1}))
            self._cv.notify_all()

    def pending(self) -> int:
        """Reports not yet pushed (queued or in flight)."""
        with self._cv:
            return len(self._heap) + self._busy

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is queued or in flight; True when that happened in time."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._heap and not self._busy, timeout)

    def stop(self) -> None:
        """Stop pushing (queued reports are dropped)."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        self._client.close()


# --- Transactions API -------------------------------------------------------------

_TX_COLUMNS = ("id", "sender", "number", "body", "reference", "custom_grouping", "custom_grouping2",
               "custom_grouping3", "parts", "channel", "accepted_at", "status_code", "error_code",
               "error_description", "operator", "accepted_report_at", "final_report_at",
               "accepted_report_due", "final_report_due")
PRICE_PER_PART = 0.07


@lru_cache(maxsize=4096)
def country_iso(number: str) -> str | None:
    """ISO country of a number (``00``/``+`` international form), or None."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse("+" + _digits(number))
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return None if region in (None, "ZZ") else region


def _tx_time(text: str | None) -> str | None:
    return None if text is None else text[:19]  # yyyy-MM-ddTHH:mm:ss (UTC)


def _tx_query_time(text: str | None) -> str | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return iso(ts)  # compared in SQL with the ledger's own timestamps


def _status_now(row: dict[str, Any], now: str) -> int | None:
    if row["final_report_due"] <= now:
        return row["status_code"]
    if row["accepted_report_due"] <= now:
        return 0
    return None


def transactions(gateway, headers: dict[str, str], query: dict[str, str]):
    """Answer ``GET /v1.2/transactions/`` in the Transactions API shape (see ``cm-api-facts.md``)."""
    from .core import Reply

    def reply(status: int, payload: Any) -> Reply:
        return Reply(status, {"content-type": "application/json; charset=utf-8"}, orjson.dumps(payload))

    token = (headers.get("x-cm-producttoken") or "").strip()
    tokens = gateway.config.tokens
    if not token or (tokens is not None and token not in tokens):
        return reply(401, {"status": "Error", "message": "Invalid product token", "result": []})
    q = {k.lower(): v for k, v in query.items()}
    try:
        page_size = min(max(int(q.get("pagesize", 100)), 1), 1000)
        page = max(int(q.get("page", 1)), 1)
    except ValueError:
        return reply(400, {"status": "Error", "message": "page and pagesize must be integers", "result": []})
    where, params = ["1=1"], []
    for key, op in (("startdate", ">="), ("enddate", "<=")):
        if key in q:
            value = _tx_query_time(q[key])
            if value is None:
                return reply(400, {"status": "Error", "message": f"{key} must be yyyy-MM-ddTHH:mm:ss", "result": []})
            where.append(f"accepted_at {op} ?")
            params.append(value)
    if q.get("reference"):
        where.append("reference = ?")
        params.append(q["reference"])
    if q.get("direction", "out").lower() == "in":
        where.append("0")  # the gateway receives no inbound messages
    now = iso(gateway.clock.now())
    sql_where = " AND ".join(where)
    total, delivered, failed, rejected = gateway.ledger.query(
        "SELECT count(*), "
        "coalesce(sum(final_report_due <= ? AND status_code = 2), 0), "
        "coalesce(sum(final_report_due <= ? AND status_code = 3), 0), "
        "coalesce(sum(final_report_due <= ? AND status_code = 1), 0) "
        f"FROM messages WHERE {sql_where}", (now, now, now, *params))[0]
    rows = gateway.ledger.query(
        f"SELECT {', '.join(_TX_COLUMNS)} FROM messages WHERE {sql_where} ORDER BY id LIMIT ? OFFSET ?",
        (*params, page_size, (page - 1) * page_size))
    result = []
    for values in rows:
        row = dict(zip(_TX_COLUMNS, values, strict=True))
        code = _status_now(row, now)
        tx_status, description = TRANSACTION_STATUS[code]
        final = code in (1, 3)
        result.append({
            "messageid": row["id"],
            "sender": row["sender"],
            "recipient": row["number"],
            "message": row["body"],
            "status": tx_status,
            "statusdescription": f"{description}: {row['error_description']}" if final else description,
            "errorcode": row["error_code"] if code is not None and code != 0 else None,
            "created": _tx_time(row["accepted_at"]),
            "statusdate": _tx_time(row["final_report_at"] if code in (1, 2, 3) else
                                   row["accepted_report_at"] if code == 0 else row["accepted_at"]),
            "countryiso": country_iso(row["number"]),
            "mccmnc": None,
            "operatorname": row["operator"] if code is not None else None,
            "price": round(PRICE_PER_PART * row["parts"], 4),
            "currency": "EUR",
            "parts": row["parts"],
            "channel": row["channel"] or "SMS",
            "reference": row["reference"],
            "customgrouping": row["custom_grouping"],
            "customgrouping2": row["custom_grouping2"],
            "customgrouping3": row["custom_grouping3"],
        })
    total_pages = max(-(-total // page_size), 1)
    return reply(200, {
        "status": "OK",
        "message": "",
        "summary": {"total": total, "delivered": delivered, "failed": failed, "rejected": rejected,
                    "pending": total - delivered - failed - rejected},
        "pagination": {"currentPage": page, "totalPages": total_pages, "pageSize": page_size},
        "result": result,
    })


# --- CSV export -------------------------------------------------------------------

#: Column headers of the CSV export, in order.
EXPORT_COLUMNS: tuple[str, ...] = (
    "Created", "Status time", "Recipient", "Sender", "Message", "Reference", "Status", "Status code",
    "Error code", "Error description", "Operator", "Country", "Channel", "Parts", "Price",
    "Custom grouping", "Custom grouping 2", "Custom grouping 3",
)


def export_csv(gateway, path: str | Path, *, at: datetime | None = None) -> Path:
    """Write the message log as a dashboard-style CSV export (status as of ``at``, default now).

    Parameters
    ----------
    gateway : cmframe.gateway.Gateway
    path : str or Path
    at : datetime, optional
        Simulated time of the snapshot; messages show the last report due by then.

    Returns
    -------
    pathlib.Path
    """
    ledger = gateway.ledger.frame("messages")
    now = pd.Timestamp(at if at is not None else gateway.clock.now())
    final = ledger["final_report_due"] <= now
    operator_seen = ledger["accepted_report_due"] <= now
    code = ledger["status_code"].where(final, pd.NA)
    code = code.mask(~final & operator_seen, 0)
    names = code.map(STATUS_CODES, na_action="ignore").fillna("accepted").str.capitalize()
    status_time = ledger["final_report_at"].where(final, ledger["accepted_report_at"].where(operator_seen, ledger["accepted_at"]))
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    out = pd.DataFrame({
        "Created": ledger["accepted_at"].dt.strftime(fmt),
        "Status time": status_time.dt.strftime(fmt),
        "Recipient": ledger["number"],
        "Sender": ledger["sender"],
        "Message": ledger["body"],
        "Reference": ledger["reference"],
        "Status": names.astype("string"),
        "Status code": code.astype("Int64"),
        "Error code": ledger["error_code"].where(final | (code == 0), pd.NA).mask(code == 0, 0),
        "Error description": ledger["error_description"].where(final, pd.NA),
        "Operator": ledger["operator"].where(operator_seen, pd.NA),
        "Country": ledger["number"].map({n: country_iso(n) for n in ledger["number"].dropna().unique()}),
        "Channel": ledger["channel"].fillna("SMS"),
        "Parts": ledger["parts"],
        "Price": (ledger["parts"].astype("Float64") * PRICE_PER_PART).round(4),
        "Custom grouping": ledger["custom_grouping"],
        "Custom grouping 2": ledger["custom_grouping2"],
        "Custom grouping 3": ledger["custom_grouping3"],
    }, columns=list(EXPORT_COLUMNS))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path
