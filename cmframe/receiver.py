"""The status-report webhook receiver: a real HTTP server with a SQLite store.

CM pushes status reports to a webhook and retries any non-2xx answer for up to
seven days, so the receiver answers:

* **200** only once the raw body and its parsed rows are committed to SQLite
  (a crash after that loses nothing; a crash before it makes CM retry);
* **400** to a body with no readable report (nothing malformed is accepted
  silently), **413** to a body over ``max_body`` bytes, **401**/**404** to a
  request without the configured secret;
* **503** (with ``Retry-After``) when the store cannot be written, so CM retries.

A body with some good and some malformed items is answered 200: the good rows
are stored, the malformed items are stored as rejects (with the reason) and
come back from :func:`cmframe.read_status_reports` as rejects. Duplicated and
reordered reports are stored as received; :func:`cmframe.merge_status` sorts
them out.

CM's webhooks are not signed: give the receiver a secret, either as a path
token (``/hook/<secret>``) or as HTTP basic auth, and configure the same URL at
CM. Writes go through one writer thread that commits whatever requests are
waiting in one transaction (group commit); SQLite runs in WAL mode with
``synchronous=NORMAL`` (committed reports survive a killed process;
``durable=True`` uses ``FULL`` to survive a power cut as well).

Store layout (``bodies``, ``reports``, ``rejects`` tables) is read by
:func:`read_store`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import logging
import os
import queue
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .exceptions import GatewayError, ReportError
from .report_formats import Parsed, parse_body, rejects_frame, reports_frame
from .serving import ServerThread

__all__ = ["serve_receiver", "Receiver", "ReportStore", "read_store", "create_app", "main"]

log = logging.getLogger("cmframe.receiver")

STORE_FORMAT = "cmframe-receiver-1"
DEFAULT_MAX_BODY = 1_048_576
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS bodies (
    id INTEGER PRIMARY KEY,
    arrived_at TEXT NOT NULL,
    method TEXT NOT NULL,
    content_type TEXT,
    format TEXT,
    body BLOB NOT NULL,
    reports INTEGER NOT NULL,
    rejects INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    body_id INTEGER NOT NULL REFERENCES bodies(id),
    item INTEGER NOT NULL,
    "to" TEXT NOT NULL,
    reference TEXT,
    status_code INTEGER NOT NULL,
    status TEXT,
    error_code INTEGER,
    error_description TEXT,
    operator TEXT,
    received_at TEXT,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY,
    body_id INTEGER NOT NULL REFERENCES bodies(id),
    location TEXT,
    source TEXT,
    reason TEXT NOT NULL,
    raw TEXT
);
"""


# =========================================================================== store
@dataclass
class _Write:
    arrived_at: str
    method: str
    content_type: str | None
    fmt: str
    body: bytes
    parsed: Parsed
    done: Any  # callable(error: BaseException | None)


def _iso(stamp: datetime | None) -> str | None:
    if stamp is None:
        return None
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class ReportStore:
    """The receiver's SQLite store, written by one thread with group commit.

    Parameters
    ----------
    path : str or Path
        The SQLite file (created with its tables when missing).
    durable : bool
        ``synchronous=FULL`` instead of ``NORMAL``.
    busy_timeout : float
        Seconds to wait for a lock held by another process before giving up
        (the request is then answered 503).
    max_batch : int
        Most requests committed in one transaction.
    """

    def __init__(self, path: str | os.PathLike, *, durable: bool = False, busy_timeout: float = 5.0,
                 max_batch: int = 256) -> None:  # fmt: skip
        self.path = Path(path)
        self._durable = durable
        self._busy_ms = int(busy_timeout * 1000)
        self._max_batch = max_batch
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._conn = self._connect()  # fail early (bad path, not a store)
        self._conn.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
            if row is None:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
            elif row[0] != STORE_FORMAT:
                raise GatewayError(f"{self.path} is a store of format {row[0]!r}, not {STORE_FORMAT!r}")
        except sqlite3.Error as exc:
            raise GatewayError(f"cannot open the report store {self.path}: {exc}") from exc
        return conn

    def start(self) -> None:
        """Start the writer thread."""
        self._conn = self._connect()
        self._thread = threading.Thread(target=self._run, name="cmframe-receiver-store", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop the writer thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            self._conn.close()

    def submit(self, write: _Write) -> None:
        """Queue a write; ``write.done(error)`` is called once it is committed (or failed)."""
        self._queue.put(write)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            try:
                self._write(batch)
            except sqlite3.Error:
                # one transaction per request, so one bad write fails alone
                for write in batch:
                    try:
                        self._write([write])
                    except sqlite3.Error as exc:
                        log.error("cannot store a status-report body: %s", exc)
                        write.done(exc)
                    else:
                        write.done(None)
            else:
                for write in batch:
                    write.done(None)

    def _write(self, batch: list[_Write]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for w in batch:
                rows, rejects = w.parsed.rows, w.parsed.rejects
                cur = conn.execute(
                    "INSERT INTO bodies (arrived_at, method, content_type, format, body, reports, rejects)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (w.arrived_at, w.method, w.content_type, w.fmt, w.body, len(rows), len(rejects)),
                )
                body_id = cur.lastrowid
                conn.executemany(
                    'INSERT INTO reports (body_id, item, "to", reference, status_code, status, error_code,'
                    " error_description, operator, received_at, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [(body_id, i, r[0], r[1], r[2], r[3], r[4], r[5], r[6], _iso(r[7]), r[8])
                     for i, r in enumerate(rows)],  # fmt: skip
                )
                conn.executemany(
                    "INSERT INTO rejects (body_id, location, source, reason, raw) VALUES (?,?,?,?,?)",
                    [(body_id, j[1], j[0], j[2], j[3]) for j in rejects],
                )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise


def read_store(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a receiver store: ``(reports, rejects)`` frames.

    ``received_at`` is the report's own timestamp, or the arrival time of its
    body when the report carried none. Reports come in arrival order.

    Raises
    ------
    ReportError
        The file is not a receiver store.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"no such store: {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ReportError(f"cannot open {path}: {exc}") from exc
    try:
        try:
            fmt = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        except sqlite3.Error as exc:
            raise ReportError(f"{path} is not a cmframe receiver store ({exc})") from exc
        if not fmt or fmt[0] != STORE_FORMAT:
            raise ReportError(f"{path} is not a cmframe receiver store")
        rows = conn.execute(
            'SELECT r."to", r.reference, r.status_code, r.status, r.error_code, r.error_description,'
            " r.operator, COALESCE(r.received_at, b.arrived_at), r.source"
            " FROM reports r JOIN bodies b ON b.id = r.body_id ORDER BY r.id"
        ).fetchall()
        bad = conn.execute(
            "SELECT source, 'store body ' || body_id || ' ' || COALESCE(location, ''), reason, raw"
            " FROM rejects ORDER BY id"
        ).fetchall()
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read {path}: {exc}") from exc
    finally:
        conn.close()
    return reports_frame(rows), rejects_frame(bad)  # sqlite3 rows are tuples already


# =========================================================================== app
def _text_response(status: int, message: str, headers: dict[str, str] | None = None):
    from starlette.responses import JSONResponse

    key = "error" if status >= 400 else "status"
    return JSONResponse({key: message}, status_code=status, headers=headers)


@dataclass
class ReceiverStats:
    """Counters of a running receiver (answers by kind)."""

    stored: int = 0
    reports: int = 0
    rejects: int = 0
    refused: int = 0
    errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


def create_app(store: ReportStore, *, path: str = "/", secret: str | None = None,
               basic_auth: tuple[str, str] | None = None, max_body: int = DEFAULT_MAX_BODY,
               stats: ReceiverStats | None = None):  # fmt: skip
    """The Starlette app of the receiver (the store's writer thread must be running).

    Parameters
    ----------
    store : ReportStore
        Where bodies and rows go.
    path : str
        The webhook path (``/`` by default).
    secret : str, optional
        A path token: the webhook is ``path + "/" + secret``.
    basic_auth : (user, password), optional
        Required HTTP basic credentials.
    max_body : int
        Largest accepted body in bytes (413 beyond).
    stats : ReceiverStats, optional
        Counters to update.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    stats = stats if stats is not None else ReceiverStats()
    base = "/" + path.strip("/")
    hook = base.rstrip("/") + "/" + secret if secret else base
    hook_norm = hook.rstrip("/") or "/"
    expected_auth = None
    if basic_auth is not None:
        token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
        expected_auth = f"Basic {token}"

    def answer(status: int, message: str, headers: dict[str, str] | None = None):
        stats.by_status[status] = stats.by_status.get(status, 0) + 1
        return _text_response(status, message, headers)

    async def endpoint(request: Request):
        if (request.url.path.rstrip("/") or "/") != hook_norm:
            stats.refused += 1
            return answer(404, "not found")
        if expected_auth is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), expected_auth.encode()):
                stats.refused += 1
                return answer(401, "authentication required", {"WWW-Authenticate": 'Basic realm="cmframe"'})
        content_type = request.headers.get("content-type")
        if request.method == "GET":
            body = request.url.query.encode()
            fmt = "get"
        else:
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > max_body:
                stats.refused += 1
                return answer(413, f"body larger than {max_body} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body:
                    stats.refused += 1
                    return answer(413, f"body larger than {max_body} bytes")
                chunks.append(chunk)
            body = b"".join(chunks)
            ctype = (content_type or "").lower()
            if "multipart/" in ctype:
                stats.refused += 1
                return answer(415, "multipart bodies are not status reports")
            fmt = "post"
        parsed = parse_body(body, content_type=content_type, location="body",
                            query_source="get" if fmt == "get" else "form")  # fmt: skip
        if not parsed.rows:
            stats.refused += 1
            reason = parsed.rejects[0][2] if parsed.rejects else "no status report"
            log.warning("refused a status-report body: %s", reason)
            return answer(400, reason)
        fmt = parsed.rows[0][8]  # what the body turned out to be: json / xml / get / form
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def done(error: BaseException | None) -> None:
            def settle() -> None:
                if not future.done():
                    future.set_result(error)

            loop.call_soon_threadsafe(settle)

        arrived = datetime.now(UTC)
        store.submit(_Write(_iso(arrived), request.method, content_type, fmt, body, parsed, done))
        error = await asyncio.shield(future)
        if error is not None:
            stats.errors += 1
            return answer(503, "cannot store the report now, retry later", {"Retry-After": "5"})
        stats.stored += 1
        stats.reports += len(parsed.rows)
        stats.rejects += len(parsed.rejects)
        if parsed.rejects:
            log.warning("stored a body with %d malformed item(s)", len(parsed.rejects))
        return answer(200, f"stored {len(parsed.rows)} report(s), {len(parsed.rejects)} rejected")

    methods = ["GET", "POST", "PUT"]
    return Starlette(routes=[Route("/{rest:path}", endpoint, methods=methods)])


# =========================================================================== server
@dataclass
class Receiver:
    """A running receiver (from :func:`serve_receiver`).

    Attributes
    ----------
    url : str
        The webhook URL to configure at CM (includes the path token, if any).
    base_url : str
        ``http://127.0.0.1:PORT``.
    store : Path
        The SQLite store.
    stats : ReceiverStats
        Counters of answers.
    """

    url: str
    base_url: str
    store: Path
    stats: ReceiverStats
    _serving: ServerThread | None = field(repr=False, default=None)
    _store: ReportStore | None = field(repr=False, default=None)
    _secret: str | None = field(repr=False, default=None)

    def __repr__(self) -> str:
        url = self.url.replace(self._secret, "<secret>") if self._secret else self.url
        return f"Receiver(url={url!r}, store={str(self.store)!r})"

    def read(self, **kwargs: Any):
        """The stored reports: :func:`cmframe.read_status_reports` of the store."""
        from .reports import read_status_reports

        return read_status_reports(self.store, format="store", **kwargs)

    @property
    def alive(self) -> bool:
        """Whether the server is still serving."""
        return self._serving is not None and self._serving.alive

    def stop(self) -> None:
        """Stop serving, finish pending writes, and close the store."""
        if self._serving is not None:
            # in-flight requests finish their store writes (no graceful-shutdown cut)
            self._serving.stop(timeout=30)
            self._serving = None
        if self._store is not None:
            self._store.stop()
            self._store = None


def _urls(host: str, port: int, path: str, secret: str | None) -> tuple[str, str]:
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    hook = "/" + path.strip("/")
    if secret:
        hook = hook.rstrip("/") + "/" + secret
    return base, base + hook


@contextlib.contextmanager
def serve_receiver(
    store: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/",
    secret: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    durable: bool = False,
    busy_timeout: float = 5.0,
    log_level: str = "warning",
) -> Iterator[Receiver]:
    """Run the status-report receiver in a background thread.

    Parameters
    ----------
    store : str or Path
        The SQLite store (created when missing; reports are appended).
    host : str
        Interface to listen on (loopback by default).
    port : int
        Port; 0 picks a free one (see ``.url``).
    path : str
        Webhook path.
    secret : str, optional
        Path token required after ``path``.
    basic_auth : (user, password), optional
        Require HTTP basic auth.
    max_body : int
        Largest body accepted, in bytes.
    durable : bool
        ``synchronous=FULL``: survive a power cut, not only a killed process.
    busy_timeout : float
        Seconds to wait for a store locked by another process before answering 503.
    log_level : str
        uvicorn's log level.

    Yields
    ------
    Receiver
        With ``.url`` (the webhook), ``.store``, ``.stats``, ``.read()``.

    Examples
    --------
    >>> with serve_receiver("reports.sqlite") as rx:  # doctest: +SKIP
    ...     gateway_config = {"webhook": rx.url}
    ...     reports = rx.read()
    """
    report_store = ReportStore(store, durable=durable, busy_timeout=busy_timeout)
    stats = ReceiverStats()
    app = create_app(report_store, path=path, secret=secret, basic_auth=basic_auth,
                     max_body=max_body, stats=stats)  # fmt: skip
    serving = ServerThread(app, host=host, port=port, log_level=log_level, timeout_keep_alive=30,
                           timeout_graceful_shutdown=None, backlog=2048)  # fmt: skip
    report_store.start()
    base, url = _urls(host, serving.port, path, secret)
    receiver = Receiver(url, base, Path(store), stats, serving, report_store, secret)
    try:
        serving.start(timeout=30)
    except GatewayError as exc:
        receiver.stop()
        raise GatewayError(f"the receiver did not start: {exc}") from None
    try:
        yield receiver
    finally:
        receiver.stop()


# =========================================================================== CLI
def main(argv: list[str] | None = None) -> int:
    """``cmframe receive``: run the receiver until interrupted."""
    parser = argparse.ArgumentParser(
        prog="cmframe receive",
        description="Receive CM status-report webhooks (JSON, XML, GET, form) into a SQLite store.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 = any free port; default 8765)")
    parser.add_argument("--store", default="reports.sqlite", help="SQLite store (default reports.sqlite)")
    parser.add_argument("--path", default="/", help="webhook path (default /)")
    parser.add_argument("--secret-env", default="CMFRAME_RECEIVER_SECRET",
                        help="environment variable holding a path token (default CMFRAME_RECEIVER_SECRET)")
    parser.add_argument("--basic-auth-env", default="CMFRAME_RECEIVER_AUTH",
                        help="environment variable holding 'user:password' for basic auth")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="largest body in bytes")
    parser.add_argument("--durable", action="store_true", help="fsync every commit (synchronous=FULL)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    secret = os.environ.get(args.secret_env) or None
    auth_text = os.environ.get(args.basic_auth_env) or None
    basic_auth = tuple(auth_text.split(":", 1)) if auth_text and ":" in auth_text else None
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    # The server runs in a thread (as in serve_receiver); the main thread owns the
    # signals, so a SIGTERM/SIGINT stops it cleanly: in-flight writes finish first.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with serve_receiver(args.store, host=args.host, port=args.port, path=args.path, secret=secret,
                            basic_auth=basic_auth, max_body=args.max_body, durable=args.durable,
                            log_level=args.log_level) as rx:  # type: ignore[arg-type]  # fmt: skip
            shown = rx.url.replace(secret, "<secret>") if secret else rx.url
            print(f"cmframe receive: listening on {shown} (store {args.store}; Ctrl-C to stop)", flush=True)
            while not stop.wait(0.5):
                if not rx.alive:
                    print("cmframe receive: the server stopped", file=sys.stderr)
                    return 1
    except GatewayError as exc:
        print(f"cmframe receive: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
