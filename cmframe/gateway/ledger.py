"""The gateway's ledger: every request and every accepted message, in SQLite.

A request's messages are committed before the gateway answers it, so after a
dropped connection the ledger still tells what was accepted: a test counts rows
per ``(reference, number, body)`` to prove exactly-once delivery.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import GatewayError

__all__ = ["Ledger", "MESSAGE_FIELDS", "iso"]

#: Columns of the ``messages`` table, in order (``id`` first).
MESSAGE_FIELDS: tuple[str, ...] = (
    "id", "request_id", "msg_index", "to_index", "number", "sender", "body", "body_type",
    "channels", "reference", "custom_grouping", "custom_grouping2", "custom_grouping3",
    "validity", "expires_at", "dcs", "min_parts", "max_parts", "rich_content", "encoding", "parts",
    "accepted_at", "status_code", "status", "error_code", "error_description", "channel",
    "operator", "accepted_report_at", "final_report_at", "accepted_report_due", "final_report_due",
)
_INT = {"id", "msg_index", "to_index", "dcs", "min_parts", "max_parts", "parts", "status_code", "error_code"}
_TIME = {"expires_at", "accepted_at", "accepted_report_at", "final_report_at", "accepted_report_due",
         "final_report_due"}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY, request_number INTEGER, received_at TEXT, fault TEXT,
    http_status INTEGER, error_code INTEGER, n_msg INTEGER, n_entries INTEGER, n_accepted INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} {'INTEGER' if c in _INT else 'TEXT'}" for c in MESSAGE_FIELDS[1:])}
);
CREATE INDEX IF NOT EXISTS messages_ref ON messages (reference, number);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, message_id INTEGER, status_code INTEGER,
    attempt INTEGER, http_status INTEGER, error TEXT, at TEXT
);
"""


_REQUEST_FIELDS = ("request_id", "request_number", "received_at", "fault", "http_status", "error_code", "n_msg",
                   "n_entries", "n_accepted")
_LAST_ID = ("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),"
            " coalesce((SELECT max(id) FROM messages), 0))")


# Columns usually NULL (optional message fields, ``channel``). Binding ``None`` costs the
# sqlite3 module an adapter lookup per value, several times a string's cost, so rows are
# inserted in groups by which of these are NULL, leaving those out of the INSERT.
_OFTEN_NULL = ("body_type", "channels", "reference", "custom_grouping", "custom_grouping2",
               "custom_grouping3", "validity", "dcs", "min_parts", "max_parts", "rich_content", "channel")
_OFTEN_NULL_OF = itemgetter(*(MESSAGE_FIELDS.index(c) for c in _OFTEN_NULL))
_INSERTS: dict[tuple, tuple[str, Callable[[tuple], tuple]]] = {}


def _insert_for(pattern: tuple) -> tuple[str, Callable[[tuple], tuple]]:
    """The INSERT and column picker for rows whose ``_OFTEN_NULL`` values have these types."""
    found = _INSERTS.get(pattern)
    if found is None:
        null = {c for c, kind in zip(_OFTEN_NULL, pattern, strict=True) if kind is type(None)}
        keep = [i for i, c in enumerate(MESSAGE_FIELDS) if c not in null]
        sql = (f"INSERT INTO messages ({', '.join(MESSAGE_FIELDS[i] for i in keep)}) "
               f"VALUES ({', '.join('?' * len(keep))})")
        found = _INSERTS[pattern] = (sql, itemgetter(*keep))
    return found


def _by_null_pattern(ids: range, rows: list[tuple]) -> list[tuple[str, list[tuple]]]:
    """``(id, *row)`` tuples grouped by NULL pattern, each group with its INSERT statement."""
    groups: dict[tuple, list[tuple]] = {}
    for i, row in zip(ids, rows, strict=True):
        full = (i, *row)
        pattern = tuple(map(type, _OFTEN_NULL_OF(full)))
        group = groups.get(pattern)
        if group is None:
            group = groups[pattern] = []
        group.append(full)
    out = []
    for pattern, group in groups.items():
        sql, pick = _insert_for(pattern)
        out.append((sql, list(map(pick, group))))
    return out


def iso(ts: datetime | None) -> str | None:
    """A UTC timestamp as fixed-width ISO-8601 text (sorts as it reads)."""
    return None if ts is None else ts.astimezone(UTC).isoformat(timespec="microseconds")


class Ledger:
    """Thread-safe SQLite ledger (one connection, WAL, serialised writes).

    Parameters
    ----------
    path : str or Path
        The database file; created when missing, appended to when present.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
            try:
                self._db.executescript(_SCHEMA)
            except sqlite3.OperationalError:
                pass  # an old layout: the check below says so
            columns = tuple(r[1] for r in self._db.execute("PRAGMA table_info(messages)"))
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise GatewayError(f"cannot use {self.path} as the ledger: {exc}") from None
        if columns != MESSAGE_FIELDS:
            self._db.close()
            raise GatewayError(f"the ledger {self.path} has another layout (an older cmframe?): use a new file")

    def record(self, request: dict[str, Any], messages: Iterable[dict[str, Any]]) -> list[int]:
        """Write one request and its accepted messages in one transaction; return the message ids."""
        cols = MESSAGE_FIELDS[1:]
        return self.record_rows(request, [tuple(m.get(c) for c in cols) for m in messages])

    def record_rows(self, request: dict[str, Any], rows: list[tuple]) -> list[int]:
        """:meth:`record` with each message already a tuple in ``MESSAGE_FIELDS[1:]`` order.

        One transaction (committed on return), one ``executemany`` per NULL pattern of the
        rows (usually one): the gateway's hot path.
        """
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?)",
                    tuple(request.get(k) for k in _REQUEST_FIELDS),
                )
                ids = range(0)
                if rows:
                    # Explicit ids (we hold the write lock) so executemany can be used and ids known.
                    (last,) = cur.execute(_LAST_ID).fetchone()
                    ids = range(last + 1, last + 1 + len(rows))
                    for sql, group in _by_null_pattern(ids, rows):
                        cur.executemany(sql, group)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return list(ids)

    def log_delivery(self, message_id: int, status_code: int, attempt: int, http_status: int | None,
                     error: str | None, at: datetime) -> None:
        """Note one attempt to push a status report."""
        with self._lock:
            self._db.execute(
                "INSERT INTO deliveries (message_id, status_code, attempt, http_status, error, at) VALUES (?,?,?,?,?,?)",
                (message_id, status_code, attempt, http_status, error, iso(at)),
            )

    def _read(self, sql: str, params: tuple = ()) -> tuple[list[str], list[tuple]]:
        with self._lock:
            db = self._db if self._db is not None else sqlite3.connect(str(self.path))
            try:
                cur = db.execute(sql, params)
                return [d[0] for d in cur.description or ()], cur.fetchall()
            finally:
                if db is not self._db:
                    db.close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run a read query (used by the Transactions API and exports); works after close."""
        return self._read(sql, params)[1]

    def frame(self, table: str = "messages") -> pd.DataFrame:
        """The table as a DataFrame with nullable dtypes and UTC timestamps."""
        if table not in {"messages", "requests", "deliveries"}:
            raise ValueError(f"no table {table!r}")
        names, rows = self._read(f"SELECT * FROM {table} ORDER BY rowid")
        df = pd.DataFrame.from_records(rows, columns=names)
        out = {}
        for name in names:
            col = df[name]
            if name in _TIME or name in {"received_at", "at"}:
                out[name] = pd.to_datetime(col, utc=True, format="ISO8601")
            elif name in _INT or name.startswith("n_") or name in {
                "request_number", "http_status", "attempt", "message_id"
            }:
                out[name] = col.astype("Int64")
            else:
                out[name] = col.astype("string")
        return pd.DataFrame(out, index=pd.RangeIndex(len(df)))

    def close(self) -> None:
        """Close the writer; reads keep working on short-lived connections."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
