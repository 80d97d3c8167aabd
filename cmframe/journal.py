"""The send journal: a SQLite file that makes a campaign resumable and auditable.

A journal records the plan, then every chunk (its request body *without* the
product token, and the plan positions of its rows) before anything is sent.
Each chunk then moves through states, each change committed in its own
transaction::

    pending --(committed BEFORE the POST)--> in_flight --> answered
                                                       '--> unknown   (sent, no usable answer)
    in_flight --(certainly not processed)--> pending   (retry, or a later run)

A chunk left ``in_flight`` by a crash may have been accepted by the gateway: its
rows are ``unknown`` and are only sent again when the user asks
(``send(..., resend_unknown=True)``), as new chunks appended to the journal. The
result of a row is the outcome of the *last* chunk that carried it.

:func:`read_journal` rebuilds the result frame from the file alone, in a new
process. The product token is never written to the journal.
"""

from __future__ import annotations

import contextlib
import io
import json
import operator
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .codes import REQUEST_ERROR_CODES
from .exceptions import JournalError, JournalMismatch
from .schema import RESULT_COLUMNS

__all__ = [
    "Journal",
    "Answer",
    "parse_answer",
    "assemble",
    "read_journal",
    "FORMAT",
]

FORMAT = "cmframe-journal/1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan (id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    chunk INTEGER PRIMARY KEY,
    rows BLOB NOT NULL,          -- int64 plan positions, in (msg, to) order
    body BLOB NOT NULL,          -- the request body, without authentication
    n INTEGER NOT NULL,          -- (msg, to) pairs in the request
    state TEXT NOT NULL,         -- pending / in_flight / answered / unknown
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,             -- epoch seconds of the last POST
    answered_at REAL,
    http_status INTEGER,
    response BLOB,
    reason TEXT,
    resend_of TEXT               -- chunks whose unknown rows this chunk resends
);
"""

_STATES = ("pending", "in_flight", "answered", "unknown")


def _positions(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<i8").astype(np.intp, copy=False)


class Journal:
    """A SQLite journal of one campaign (``path=None`` keeps it in memory).

    Parameters
    ----------
    path : str, Path or None
        The journal file; created when missing.
    create : bool
        Allow creating a new file (``read_journal`` opens existing ones only).
    """

    def __init__(self, path: str | Path | None = None, *, create: bool = True) -> None:
        self.path = None if path is None else Path(path)
        self._lock_file = None
        self._depth = 0
        if self.path is not None and not create and not self.path.exists():
            raise JournalError(f"no journal at {str(self.path)!r}")
        target = ":memory:" if self.path is None else str(self.path)
        try:
            # one thread at a time uses it, but maybe not the creating thread (Jupyter)
            self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: an in_flight mark must survive even a power cut before the POST
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{target!r} is not a usable journal: {exc}") from None

    # -- lifecycle -------------------------------------------------------------
    def lock(self) -> None:
        """Take the journal for one sender; raise :class:`JournalError` if another has it.

        Two processes sending from one journal would both send its pending chunks.
        The lock is an OS lock on a ``.lock`` file beside the journal, released when
        the journal is closed or the process ends (even by SIGKILL). The file stays:
        deleting it could let two senders lock two different files.
        """
        if self.path is None or self._lock_file is not None:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
            return
        handle = open(f"{self.path}.lock", "a+")  # noqa: SIM115 -- held until close()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise JournalError(
                f"the journal {str(self.path)!r} is in use by another send; wait for it to"
                " finish (or stop it) before sending from this journal again"
            ) from None
        self._lock_file = handle

    def close(self) -> None:
        """Close the database connection and release the lock."""
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path) if self.path else ':memory:'!r})"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction (one commit, one fsync) around the changes made inside.

        Nested uses join the outermost one, so a caller can group several state
        changes, each otherwise committed alone, into a single commit.
        """
        self._depth += 1
        try:
            if self._depth == 1:
                self._db.execute("BEGIN IMMEDIATE")
            yield
        except BaseException:
            if self._depth == 1 and self._db.in_transaction:
                self._db.rollback()
            raise
        else:
            if self._depth == 1:
                self._db.commit()
        finally:
            self._depth -= 1

    def _tx(self, sql: str, args: Sequence[Any] = ()) -> None:
        with self.transaction():  # a state change is committed on its own unless grouped
            self._db.execute(sql, args)

    # -- meta and plan ----------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """The journal's metadata (format, fingerprint, rows, chunk size, ...)."""
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def is_new(self) -> bool:
        """True while nothing has been recorded."""
        return not self.meta()

    def start(
        self,
        fingerprint: str,
        plan: pd.DataFrame,
        chunks: Iterable[tuple[int, bytes, np.ndarray]],
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Record the plan and all its chunks as ``pending`` in one transaction.

        Raises :class:`~cmframe.exceptions.JournalMismatch` when the journal
        already holds another plan; does nothing when it holds the same one.
        """
        existing = self.meta()
        if existing:
            self.check(fingerprint, meta)
            return
        info = {"format": FORMAT, "fingerprint": fingerprint, "created_at": repr(time.time())}
        info.update({k: str(v) for k, v in (meta or {}).items()})
        blob = _plan_to_bytes(plan)
        with self.transaction():
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", list(info.items()))
            self._db.execute("INSERT INTO plan VALUES (1, ?)", (blob,))
            self._db.executemany(
                "INSERT INTO chunks (chunk, rows, body, n, state) VALUES (?, ?, ?, ?, 'pending')",
                (
                    (int(c), np.asarray(r, dtype="<i8").tobytes(), bytes(b), len(r))
                    for c, b, r in chunks
                ),
            )

    def check(self, fingerprint: str, meta: dict[str, Any] | None = None) -> None:
        """Raise :class:`JournalMismatch` unless the journal was written for this plan."""
        existing = self.meta()
        if existing.get("format") != FORMAT:
            raise JournalError(f"{self!r} is not a cmframe journal")
        if existing.get("fingerprint") == fingerprint:
            return
        hints = [
            f"{k} was {existing[k]} and is now {v}"
            for k, v in (meta or {}).items()
            if k in existing and existing[k] != str(v)
        ]
        raise JournalMismatch(
            f"the journal {str(self.path)!r} was written for a different plan"
            + (f" ({'; '.join(hints)})" if hints else "")
            + ": use a new journal file for a new campaign, or send the same plan to resume"
        )

    def plan(self) -> pd.DataFrame:
        """The plan recorded when the campaign started."""
        row = self._db.execute("SELECT data FROM plan WHERE id = 1").fetchone()
        if row is None:
            raise JournalError(f"{self!r} holds no plan")
        return _plan_from_bytes(row[0])

    # -- chunks -----------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every chunk's state (without bodies), in chunk order; ``rows`` as positions."""
        cur = self._db.execute(
            "SELECT chunk, rows, n, state, attempts, started_at, answered_at, http_status,"
            " response, reason, resend_of FROM chunks ORDER BY chunk"
        )
        names = [d[0] for d in cur.description]
        out = []
        for values in cur.fetchall():
            rec = dict(zip(names, values, strict=True))
            rec["rows"] = _positions(rec["rows"])
            out.append(rec)
        return out

    def body(self, chunk: int) -> bytes:
        """The recorded request body of a chunk (no authentication in it)."""
        row = self._db.execute("SELECT body FROM chunks WHERE chunk = ?", (int(chunk),)).fetchone()
        if row is None:
            raise JournalError(f"no chunk {chunk} in {self!r}")
        return bytes(row[0])

    def bodies(self) -> list[tuple[int, bytes, np.ndarray]]:
        """Every chunk as ``(chunk, body, rows)``, as ``build.request_bodies`` yields them."""
        cur = self._db.execute("SELECT chunk, body, rows FROM chunks ORDER BY chunk")
        return [(int(c), bytes(b), _positions(r)) for c, b, r in cur.fetchall()]

    def add_chunks(self, chunks: Iterable[tuple[int, bytes, np.ndarray]], resend_of: str) -> None:
        """Append chunks (resends of unknown rows) as ``pending``."""
        with self.transaction():
            self._db.executemany(
                "INSERT INTO chunks (chunk, rows, body, n, state, resend_of)"
                " VALUES (?, ?, ?, ?, 'pending', ?)",
                (
                    (int(c), np.asarray(r, dtype="<i8").tobytes(), bytes(b), len(r), resend_of)
                    for c, b, r in chunks
                ),
            )

    def mark_in_flight(self, chunk: int, at: float) -> None:
        """Committed before the POST: from here on the outcome may be 'accepted'."""
        self._tx(
            "UPDATE chunks SET state='in_flight', attempts=attempts+1, started_at=?, reason=NULL"
            " WHERE chunk=?",
            (at, int(chunk)),
        )

    def mark_pending(self, chunk: int, reason: str | None = None) -> None:
        """The chunk certainly was not processed: it may be sent (again)."""
        self._tx(
            "UPDATE chunks SET state='pending', reason=?, http_status=NULL, response=NULL,"
            " answered_at=NULL WHERE chunk=?",
            (reason, int(chunk)),
        )

    def mark_pending_many(self, chunks: Iterable[int], reason: str) -> None:
        """Give chunks that stay ``pending`` a reason, in one transaction."""
        with self.transaction():
            self._db.executemany(
                "UPDATE chunks SET reason=? WHERE chunk=? AND state='pending'",
                [(reason, int(c)) for c in chunks],
            )

    def mark_answered(self, chunk: int, at: float, http_status: int, response: bytes) -> None:
        """The gateway answered; the answer is parsed when results are assembled."""
        self._tx(
            "UPDATE chunks SET state='answered', answered_at=?, http_status=?, response=?,"
            " reason=NULL WHERE chunk=?",
            (at, int(http_status), bytes(response), int(chunk)),
        )

    def mark_unknown(
        self,
        chunk: int,
        at: float,
        reason: str,
        http_status: int | None = None,
        response: bytes | None = None,
    ) -> None:
        """Sent, but no usable answer: the messages may or may not have been accepted."""
        self._tx(
            "UPDATE chunks SET state='unknown', answered_at=?, reason=?, http_status=?,"
            " response=? WHERE chunk=?",
            (at, reason, http_status, response, int(chunk)),
        )


_STORAGE_KEY = b"cmframe.string_storage"


def _plan_to_bytes(plan: pd.DataFrame) -> bytes:
    try:
        table = pa.Table.from_pandas(plan)
    except Exception:  # odd caller columns (mixed objects): keep them as text
        frame = plan.copy()
        frame.columns = [str(c) for c in frame.columns]
        for name in frame.columns:
            if pd.api.types.is_object_dtype(frame[name].dtype):
                frame[name] = frame[name].astype("string")
        plan, table = frame, pa.Table.from_pandas(frame)
    # Parquet's pandas metadata says "string" but not whether its storage is
    # Arrow or Python, and pandas 2.x reads every one back as Python storage:
    # record the storage so read_journal gives back exactly the dtypes sent.
    storage = {
        str(name): [dtype.storage, getattr(dtype, "na_value", pd.NA) is not pd.NA]
        for name, dtype in plan.dtypes.items()
        if isinstance(dtype, pd.StringDtype)
    }
    meta = dict(table.schema.metadata or {})
    meta[_STORAGE_KEY] = json.dumps(storage).encode()
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buf)
    return buf.getvalue()


def _plan_from_bytes(blob: bytes) -> pd.DataFrame:
    table = pq.read_table(io.BytesIO(blob))
    frame = table.to_pandas()
    storage = json.loads((table.schema.metadata or {}).get(_STORAGE_KEY, b"{}"))
    for name in frame.columns:
        want = storage.get(str(name))
        dtype = frame[name].dtype
        if want and not (isinstance(dtype, pd.StringDtype) and dtype.storage == want[0]):
            wanted = pd.StringDtype(want[0], na_value=np.nan) if want[1] else pd.StringDtype(want[0])
            frame[name] = frame[name].astype(wanted)
    return frame


# -- answers -------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A gateway answer, parsed tolerantly.

    ``kind`` is ``"messages"`` (per-message entries to map), ``"request_rejected"``
    (the whole request refused, no message created) or ``"unknown"`` (the answer
    does not say what happened; ``reason`` tells why).
    """

    kind: str
    http_status: int | None
    error_code: int | None = None
    details: str | None = None
    entries: list[dict[str, Any]] | None = None
    reason: str | None = None


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def parse_answer(http_status: int | None, body: bytes | None) -> Answer:
    """Classify a gateway answer (any HTTP status; the body is parsed whatever it is).

    Parameters
    ----------
    http_status : int or None
        The HTTP status.
    body : bytes or None
        The answer's body.

    Returns
    -------
    Answer
    """
    try:
        doc = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        doc = None
    low = {str(k).lower(): v for k, v in doc.items()} if isinstance(doc, dict) else {}
    code = _int_or_none(low.get("errorcode"))
    details = low.get("details") if isinstance(low.get("details"), str) else None
    if http_status is not None and http_status >= 500:
        reason = f"HTTP {http_status}: the request may or may not have been processed"
        return Answer("unknown", http_status, code, details, reason=reason)
    # a redirect or a 4xx refuses the request before any message is created
    refused = http_status is not None and 300 <= http_status < 500
    if not isinstance(doc, dict):
        if refused:
            text = (body or b"").decode("utf-8", "replace").strip()[:200]
            return Answer("request_rejected", http_status, None, f"HTTP {http_status}: {text}".strip())
        what = "unparsable" if doc is None else "unexpected"
        return Answer("unknown", http_status, reason=f"HTTP {http_status}: {what} answer")
    messages = low.get("messages")
    if isinstance(messages, list) and messages:
        if set(map(type, messages)) != {dict}:
            return Answer(
                "unknown", http_status, code, details, reason="malformed 'messages' in the answer"
            )
        return Answer("messages", http_status, code, details, entries=messages)
    if code in REQUEST_ERROR_CODES or refused:
        return Answer("request_rejected", http_status, code, details)
    return Answer(
        "unknown",
        http_status,
        code,
        details,
        reason=f"HTTP {http_status}: the answer lists no message",
    )


# -- results -------------------------------------------------------------------

_INT_COLS = ("parts", "message_error_code", "http_status", "request_error_code", "chunk")
_STR_COLS = ("status", "message_details", "request_details")


def _number_key(values: pd.Series) -> pd.Series:
    """Digits only, without a leading ``00``: '+31 6…', '0031 6…' and '316…' match."""
    s = values.astype("string").fillna("")
    return s.str.replace(r"\D", "", regex=True).str.replace(r"^00", "", regex=True)


def _as_text(values: pd.Series) -> pd.Series:
    """Any JSON scalars as nullable strings (None/NaN -> <NA>), without a Python loop."""
    return values.astype(object).astype("string")


def _text_key(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("")


def _block(rows: np.ndarray, chunk: int, **scalars: Any) -> pd.DataFrame:
    frame = pd.DataFrame({"pos": np.asarray(rows, dtype=np.intp), "chunk": chunk})
    for name, value in scalars.items():
        frame[name] = value
    return frame


def _plan_column(plan: pd.DataFrame, name: str) -> pd.Series:
    if name in plan.columns:
        return plan[name].reset_index(drop=True)
    return pd.Series(pd.NA, index=pd.RangeIndex(len(plan)), dtype="string")


#: Keys of a per-message entry, as CM spells them; looked up case-insensitively.
_ENTRY_KEYS = ("to", "reference", "status", "parts", "messageDetails", "messageErrorCode")


def _entry_columns(entries: list[dict]) -> dict[str, np.ndarray]:
    """Entry fields as object arrays (one C-level pass per field, no frame per entry)."""
    keys = set().union(*entries)
    if not keys <= set(_ENTRY_KEYS):  # other spellings ("To", "STATUS"): normalise them
        canon = {k.lower(): k for k in _ENTRY_KEYS}
        entries = [{canon.get(str(k).lower(), k): v for k, v in e.items()} for e in entries]
    out = {}
    for key in _ENTRY_KEYS:
        column = np.empty(len(entries), dtype=object)
        column[:] = list(map(operator.methodcaller("get", key), entries))
        out[key.lower()] = column
    return out



def _map_entries(plan: pd.DataFrame, answered: list[tuple[dict, Answer]]) -> pd.DataFrame:
    """Map per-message entries to rows by (chunk, reference, number) and order.

    Rows of a (chunk, reference, number) group whose entry count differs from the
    number of rows sent are ``unknown``: a wrong match is worse than none.
    """
    if not answered:
        return pd.DataFrame()
    sizes = [len(rec["rows"]) for rec, _ in answered]

    def per_chunk(values: list, counts: list[int] = sizes) -> np.ndarray:  # repeated per row
        return np.repeat(np.asarray(values, dtype=object), counts)

    expected = pd.DataFrame(
        {
            "pos": np.concatenate([rec["rows"] for rec, _ in answered]).astype(np.intp),
            "chunk": np.repeat([rec["chunk"] for rec, _ in answered], sizes),
            "http_status": per_chunk([ans.http_status for _, ans in answered]),
            "request_error_code": per_chunk([ans.error_code for _, ans in answered]),
            "request_details": per_chunk([ans.details for _, ans in answered]),
            "sent_at": per_chunk([rec["answered_at"] for rec, _ in answered]),
        }
    )
    got = pd.DataFrame(_entry_columns([e for _, ans in answered for e in ans.entries]))
    got["chunk"] = np.repeat([rec["chunk"] for rec, _ in answered], [len(a.entries) for _, a in answered])
    number, reference = _plan_column(plan, "number"), _plan_column(plan, "reference")
    pos = expected["pos"].to_numpy()
    entry_fields = ["status", "parts", "messageerrorcode", "messagedetails"]
    if (
        np.array_equal(got["chunk"].to_numpy(), expected["chunk"].to_numpy())
        and np.array_equal(got["to"].to_numpy(), number.to_numpy(dtype=object, na_value=None)[pos])
        and np.array_equal(got["reference"].to_numpy(), reference.to_numpy(dtype=object, na_value=None)[pos])
    ):
        # the usual answer echoes every (number, reference) as sent, in the order sent:
        # matching by key and order is then exactly this positional match
        return _outcomes(expected.assign(**{f: got[f].to_numpy() for f in entry_fields}, n_got=1, n_expected=1))
    expected["num"] = _number_key(number.iloc[pos]).to_numpy(dtype=object)
    expected["ref"] = _text_key(reference.iloc[pos]).to_numpy(dtype=object)
    got["num"] = _number_key(_as_text(got["to"])).to_numpy(dtype=object)
    got["ref"] = _text_key(_as_text(got["reference"])).to_numpy(dtype=object)
    # an answer that echoes no reference at all (old gateways, demo accounts) is
    # mapped on numbers alone; one that echoes some must match them
    with_refs = got["ref"].ne("").groupby(got["chunk"]).any()
    blind = with_refs.index[~with_refs.to_numpy(dtype=bool)]
    if len(blind):
        expected.loc[expected["chunk"].isin(blind), "ref"] = ""
    keys = ["chunk", "ref", "num"]
    if len(got) == len(expected) and all(
        np.array_equal(got[k].to_numpy(), expected[k].to_numpy()) for k in keys
    ):
        # the usual answer: one entry per row, in the order sent; matching by key and
        # order gives exactly this positional match, without the join
        merged = expected.assign(**{f: got[f].to_numpy() for f in entry_fields})
        merged["n_got"] = merged["n_expected"] = 1
    else:
        expected["k"] = expected.groupby(keys, sort=False).cumcount()
        expected["n_expected"] = expected.groupby(keys, sort=False)["pos"].transform("size")
        got["k"] = got.groupby(keys, sort=False).cumcount()
        got["n_got"] = got.groupby(keys, sort=False)["k"].transform("size")
        got = got[keys + ["k", "n_got", *entry_fields]]
        merged = expected.merge(got, on=keys + ["k"], how="left", sort=False)
    return _outcomes(merged)


def _outcomes(merged: pd.DataFrame) -> pd.DataFrame:
    """Per-row outcome columns from rows joined to their entries (``n_got`` entries
    were found for a group of ``n_expected`` rows)."""
    n_got = merged["n_got"].fillna(0).astype(int)
    raw_status = _as_text(merged["status"])
    status = raw_status.str.strip().str.lower()
    ok = (n_got == merged["n_expected"]).to_numpy()
    known = status.isin(["accepted", "rejected"]).fillna(False).to_numpy(dtype=bool)
    out = merged[["pos", "chunk", "http_status", "request_error_code", "request_details"]].copy()
    out["sent_at"] = merged["sent_at"]
    out["status"] = np.where(ok & known, status.fillna("unknown").to_numpy(dtype=object), "unknown")
    out["parts"] = pd.to_numeric(merged["parts"], errors="coerce")
    out["message_error_code"] = pd.to_numeric(merged["messageerrorcode"], errors="coerce")
    details = _as_text(merged["messagedetails"]).to_numpy(dtype=object, na_value=None)
    # reasons are built for the (rare) rows that need one only
    bad = ~ok
    if bad.any():
        details[bad] = (
            "unknown: the answer lists "
            + n_got[bad].astype(str)
            + " entries for this number and reference, "
            + merged.loc[bad, "n_expected"].astype(str)
            + " were sent"
        ).to_numpy(dtype=object)
    odd = ok & ~known
    if odd.any():
        shown = raw_status[odd].fillna("(none)").astype(str)
        details[odd] = ("unknown: unrecognised status " + shown).to_numpy(dtype=object)
    out["message_details"] = details
    unmapped = ~(ok & known)
    out.loc[unmapped, ["parts", "message_error_code"]] = np.nan
    return out


def assemble(plan: pd.DataFrame, records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Build the result frame: the plan plus ``schema.RESULT_COLUMNS``.

    Parameters
    ----------
    plan : DataFrame
        The plan that was sent (never modified).
    records : sequence of dict
        Chunk records as :meth:`Journal.records` returns them, in chunk order.

    Returns
    -------
    DataFrame
        One outcome per plan row: the last chunk carrying a row decides it.
    """
    blocks: list[pd.DataFrame] = []  # rows decided by their chunk as a whole
    answered: list[tuple[dict, Answer]] = []
    for rec in records:
        state, rows, chunk = rec["state"], rec["rows"], rec["chunk"]
        if state == "pending":
            blocks.append(
                _block(rows, chunk, status="not_sent", request_details=rec["reason"] or "not sent")
            )
        elif state == "in_flight":
            blocks.append(
                _block(
                    rows,
                    chunk,
                    status="unknown",
                    sent_at=rec["started_at"],
                    request_details="unknown: the request was in flight when sending stopped;"
                    " not resent (use resend_unknown=True after checking status reports)",
                )
            )
        elif state == "unknown":
            blocks.append(
                _block(
                    rows,
                    chunk,
                    status="unknown",
                    sent_at=rec["answered_at"],
                    http_status=rec["http_status"],
                    request_details=f"unknown: {rec['reason']}",
                )
            )
        else:
            ans = parse_answer(rec["http_status"], rec["response"])
            if ans.kind == "messages":
                answered.append((rec, ans))  # mapped entry by entry below
            else:
                rejected = ans.kind == "request_rejected"
                text = ans.details if rejected else f"unknown: {ans.reason}"
                if not rejected and ans.details:
                    text += f" ({ans.details})"
                blocks.append(
                    _block(
                        rows,
                        chunk,
                        status="rejected" if rejected else "unknown",
                        sent_at=rec["answered_at"],
                        http_status=ans.http_status,
                        request_error_code=ans.error_code,
                        request_details=text,
                    )
                )
    mapped = _map_entries(plan, answered)
    frames = [b for b in blocks if len(b)]
    if len(mapped):
        frames.append(mapped)
    if frames:
        long = pd.concat(frames, ignore_index=True, sort=False)
        # records are in chunk order and a later chunk (a resend) decides a row
        long = long.sort_values("chunk", kind="stable").drop_duplicates("pos", keep="last")
    n = len(plan)
    columns: dict[str, Any] = {}
    long = long.set_index("pos").reindex(range(n)) if frames else pd.DataFrame(index=range(n))
    for name in RESULT_COLUMNS:
        if name not in long.columns:
            long[name] = np.nan if name != "status" else None
    for name in _INT_COLS:
        columns[name] = pd.array(pd.to_numeric(long[name], errors="coerce"), dtype="Int64")
    for name in _STR_COLS:
        columns[name] = _as_text(long[name]).array
    columns["sent_at"] = pd.to_datetime(
        pd.to_numeric(long["sent_at"], errors="coerce"), unit="s", utc=True
    ).astype("datetime64[ns, UTC]").array  # one resolution whatever the input
    status = columns["status"].fillna("not_sent")
    if "error_code" in plan.columns:
        invalid = plan["error_code"].notna().to_numpy(dtype=bool)
        status[invalid] = "invalid"
    columns["status"] = status
    return plan.assign(**{name: columns[name] for name in RESULT_COLUMNS})


def read_journal(path: str | Path) -> pd.DataFrame:
    """Rebuild the result frame of a send from its journal file.

    Parameters
    ----------
    path : str or Path
        The journal given to ``send(..., journal=path)``.

    Returns
    -------
    DataFrame
        The recorded plan plus ``schema.RESULT_COLUMNS``, exactly as ``send``
        returned it (rows still in flight when the sender stopped are ``unknown``).

    Examples
    --------
    >>> results = cmframe.read_journal("spring.cmjournal")  # doctest: +SKIP
    >>> results["status"].value_counts()  # doctest: +SKIP
    """
    with Journal(path, create=False) as journal:
        if journal.meta().get("format") != FORMAT:
            raise JournalError(f"{str(path)!r} is not a cmframe journal")
        return assemble(journal.plan(), journal.records())
