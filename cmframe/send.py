"""``send(plan, ...)``: chunked, concurrent, resumable sending that never sends twice.

How a send runs:

1. The plan's valid rows become request bodies (``build.request_bodies``, at most
   ``chunk_size`` messages each) *without* the product token, which travels in
   the ``X-CM-PRODUCTTOKEN`` header instead, so bodies can be journaled.
2. The journal (a SQLite file, or memory) records the plan and every chunk as
   ``pending``; a rerun with the same journal and plan resumes, another plan
   raises :class:`~cmframe.exceptions.JournalMismatch`.
3. Chunks are POSTed concurrently over one pooled ``httpx.AsyncClient``. Each
   chunk is committed ``in_flight`` *before* its POST and its answer committed
   after it. Only requests the gateway certainly did not process are retried
   (:mod:`cmframe.retry`); any other failure leaves the rows ``unknown``.
4. A request-level rejection (101/102/103/202/203) stops the campaign: chunks
   not yet sent stay ``not_sent`` and :class:`~cmframe.exceptions.RequestRejected`
   is raised with the result frame attached.

The result frame is assembled from the journal (:func:`cmframe.journal.assemble`),
so :func:`cmframe.read_journal` rebuilds exactly the same frame later.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import operator
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from ._callable import make_callable
from .exceptions import RequestRejected, SendError, SpecError
from .journal import Journal, assemble, parse_answer
from .retry import RetryPolicy, RetryState, classify_exception, classify_status, parse_retry_after
from .secret import ProductToken, resolve_token

__all__ = ["send", "asend", "DEFAULT_URL", "DEFAULT_TIMEOUT", "DEFAULT_CONCURRENCY", "MAX_CHUNK"]

log = logging.getLogger("cmframe.send")

DEFAULT_URL = "https://gw.messaging.cm.com/v1.0/message"
#: Connect fast (a refused connect is retried), but give the gateway time to answer.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=30.0)
DEFAULT_CONCURRENCY = 8
#: The gateway's limit of ``msg`` objects per request.
MAX_CHUNK = 1000


class _Requests(list):
    """``(chunk, body, rows)`` of a dry run; shared, never deep-copied with ``attrs``."""

    def __deepcopy__(self, memo: dict) -> _Requests:
        return self


@dataclass
class _Prepared:
    plan: pd.DataFrame
    journal: Journal
    token: ProductToken | None
    url: str
    todo: list[int]  # chunk ids to POST, in order
    sizes: dict[int, int]
    total: int  # rows in all chunks
    done: int  # rows already decided before this run
    counts: Counter = field(default_factory=Counter)
    bodies: list[tuple[int, bytes, np.ndarray]] | None = None


# -- preparing ---------------------------------------------------------------------


def _message_url(url: str | None) -> str:
    url = DEFAULT_URL if url is None else str(url)
    try:
        parsed = httpx.URL(url)
    except Exception:
        raise SpecError(f"url is not a valid URL: {url!r}") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise SpecError(f"url must be an http(s) URL, not {url!r}")
    if parsed.path in {"", "/"}:  # a base URL: use the gateway's message endpoint
        parsed = parsed.copy_with(path="/v1.0/message")
    return str(parsed)


def _public_url(url: str) -> str:
    """The URL without user info or query, fit for the journal."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def _fingerprint(n_rows: int, chunk_size: int, merge: bool, chunks: list) -> str:
    digest = hashlib.sha256(f"cmframe/1|{n_rows}|{chunk_size}|{int(merge)}".encode())
    for chunk, body, rows in chunks:
        digest.update(f"|{chunk}|{len(rows)}|{len(body)}|".encode())
        digest.update(np.asarray(rows, dtype="<i8").tobytes())
        digest.update(body)
    return digest.hexdigest()


def _bodies(plan: pd.DataFrame, chunk_size: int, merge: bool) -> list:
    from .build import request_bodies  # the build stage is heavy; import on use

    return [
        (int(chunk), bytes(body), np.asarray(rows, dtype=np.intp))
        for chunk, body, rows in request_bodies(
            plan, token=None, chunk_size=chunk_size, merge_identical=merge
        )
    ]


def _prepare(
    plan: pd.DataFrame,
    url: str | None,
    token: Any,
    journal: str | Path | None,
    *,
    chunk_size: int,
    merge_identical: bool,
    concurrency: int,
    rate_limit: float | None,
    resend_unknown: bool,
    dry_run: bool,
    progress: bool,
) -> _Prepared:
    if not isinstance(plan, pd.DataFrame):
        raise SpecError(f"send needs a plan DataFrame, not {type(plan).__name__}")
    if not isinstance(chunk_size, int | np.integer) or not 1 <= chunk_size <= MAX_CHUNK:
        raise SpecError(f"chunk_size must be an integer between 1 and {MAX_CHUNK}")
    if not isinstance(concurrency, int | np.integer) or concurrency < 1:
        raise SpecError("concurrency must be a positive integer")
    if rate_limit is not None and not rate_limit > 0:
        raise SpecError("rate_limit must be a positive number of messages per second, or None")
    url = _message_url(url)
    secret = resolve_token(token, required=not dry_run)
    chunks = _bodies(plan, int(chunk_size), bool(merge_identical))
    meta = {
        "rows": len(plan),
        "chunk_size": int(chunk_size),
        "merge_identical": bool(merge_identical),
        "chunks": len(chunks),
    }
    fingerprint = _fingerprint(len(plan), int(chunk_size), bool(merge_identical), chunks)
    store = Journal(journal)
    try:
        store.lock()
        resumed = not store.is_new()
        if not resumed:
            meta["url"] = _public_url(url)
        store.start(fingerprint, plan, chunks, meta)
        records = store.records()
        for rec in records:
            # a refused request created no message: sending it again is safe
            if rec["state"] == "answered":
                if parse_answer(rec["http_status"], rec["response"]).kind == "request_rejected":
                    store.mark_pending(rec["chunk"], "the previous answer rejected the request")
                    rec["state"] = "pending"
        if resend_unknown:
            _add_resends(store, plan, records, int(chunk_size), bool(merge_identical))
            records = store.records()
        sizes = {rec["chunk"]: len(rec["rows"]) for rec in records}
        todo = [rec["chunk"] for rec in records if rec["state"] == "pending"]
        total = sum(len(r) for _, _, r in chunks)
        counts: Counter = Counter()
        if resumed and progress:  # the counts only seed the progress bar
            interim = assemble(plan, records)
            counts.update(interim["status"].value_counts().to_dict())
            counts.pop("invalid", None)
            counts.pop("not_sent", None)
        return _Prepared(
            plan=plan,
            journal=store,
            token=secret,
            url=url,
            todo=todo,
            sizes=sizes,
            total=total,
            done=sum(counts.values()),
            counts=counts,
            bodies=_Requests(chunks) if dry_run else None,
        )
    except BaseException:
        store.close()
        raise


def _add_resends(
    store: Journal, plan: pd.DataFrame, records: list, chunk_size: int, merge: bool
) -> None:
    """Queue the rows that are ``unknown`` now as new chunks, after every existing one."""
    interim = assemble(plan, records)
    positions = np.flatnonzero((interim["status"] == "unknown").to_numpy(dtype=bool))
    if not len(positions):
        return
    old = sorted({int(c) for c in interim["chunk"].to_numpy()[positions]})
    start = max(rec["chunk"] for rec in records) + 1
    resent = [
        (start + i, body, positions[rows])
        for i, (_, body, rows) in enumerate(_bodies(plan.iloc[positions], chunk_size, merge))
    ]
    log.warning("resending %d unknown row(s) from chunk(s) %s", len(positions), old)
    store.add_chunks(resent, resend_of=",".join(map(str, old)))


# -- sending -----------------------------------------------------------------------


_STATUS = operator.methodcaller("get", "status")  # for progress counts only


class _RateLimiter:
    """Spaces requests so that messages go out at most ``rate`` per second."""

    def __init__(self, rate: float | None) -> None:
        self.rate, self._next = rate, 0.0

    async def wait(self, messages: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + messages / self.rate
        if start > now:
            await asyncio.sleep(start - now)


class _Recorder:
    """Journal changes in one thread, off the event loop, with group commit.

    ``await record(journal.mark_in_flight, chunk, t)`` returns once the change is
    committed, so "in flight" is on disk before the POST; changes queued meanwhile
    by other requests share one commit (one fsync) instead of one each.
    """

    def __init__(self, journal: Journal, loop: asyncio.AbstractEventLoop) -> None:
        self._journal, self._loop = journal, loop
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="cmframe-journal", daemon=True)
        self._thread.start()

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = self._loop.create_future()
        self._queue.put((fn, args, future))
        return await future

    def _settle(self, future: asyncio.Future, result: Any, error: BaseException | None) -> None:
        if not future.done():  # the awaiting task may have been cancelled
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get())
            stop = any(item is None for item in batch)
            work = [item for item in batch if item is not None]
            results: list[Any] = []
            error: BaseException | None = None
            try:
                with self._journal.transaction():
                    results = [fn(*args) for fn, args, _ in work]
            except BaseException as exc:  # noqa: BLE001 -- handed to every waiter
                error = exc
            for i, (_, _, future) in enumerate(work):
                value = results[i] if error is None else None
                self._loop.call_soon_threadsafe(self._settle, future, value, error)
            if stop:
                return

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


@dataclass
class _Outcome:
    rejected: tuple[int, Any] | None = None  # (chunk, Answer) of a request-level rejection
    gave_up: tuple[int, str] | None = None  # (chunk, reason) when retries ran out


def _redact(data: bytes | str, secret: ProductToken | None) -> Any:
    """Mask the token should an answer or error text ever echo it.

    Very short (test) tokens are left alone: masking them would mangle answers.
    """
    if secret is None or len(secret.reveal()) < 8:
        return data
    text = secret.reveal()
    if isinstance(data, bytes):
        return data.replace(text.encode(), b"********")
    return data.replace(text, "********")


async def _engine(
    prep: _Prepared,
    *,
    concurrency: int,
    rate_limit: float | None,
    retry: RetryPolicy,
    timeout: httpx.Timeout,
    transport: httpx.AsyncBaseTransport | None,
    progress: bool,
    cancel: threading.Event | None = None,
) -> _Outcome:
    from tqdm.auto import tqdm

    journal, secret, outcome = prep.journal, prep.token, _Outcome()
    waiting = deque(prep.todo)
    limiter = _RateLimiter(rate_limit)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    bar = tqdm(
        total=prep.total,
        initial=prep.done,
        unit="msg",
        desc="cmframe send",
        disable=not progress,
        leave=True,
    )
    counts = prep.counts
    record = _Recorder(journal, asyncio.get_running_loop())

    def stopped() -> bool:
        return bool(
            outcome.rejected or outcome.gave_up or (cancel is not None and cancel.is_set())
        )

    def show(answer_counts: Counter, n: int) -> None:
        counts.update(answer_counts)
        bar.update(n)
        bar.set_postfix({k: counts[k] for k in ("accepted", "rejected", "unknown")}, refresh=False)

    async def post(client: httpx.AsyncClient, chunk: int) -> None:
        body, n = await record(journal.body, chunk), prep.sizes[chunk]
        # the token is revealed only here, into a header of this request
        request_headers = {**headers, "X-CM-PRODUCTTOKEN": secret.reveal()} if secret else headers
        first, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            await record(journal.mark_in_flight, chunk, time.time())
            retry_after, status, content = None, None, b""
            try:
                response = await client.post(prep.url, content=body, headers=request_headers)
                status, content = response.status_code, response.content
                verdict = classify_status(status, retry.retry_statuses)
                if verdict == "retry":
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    reason = f"HTTP {status}"
            except Exception as exc:  # noqa: BLE001 -- every failure must be recorded
                verdict = classify_exception(exc)
                reason = _redact(f"{type(exc).__name__}: {exc}".rstrip(": "), secret)
                if verdict == "unknown":
                    reason += " (the request may have reached the gateway)"
            now = time.time()
            if verdict == "retry":
                # certainly not processed: back to pending, so a crash now loses nothing
                await record(journal.mark_pending, chunk, f"not sent: {reason}")
                state = RetryState(attempt, time.monotonic() - first, retry_after, reason)
                delay = None if stopped() else retry.next_delay(state)
                if delay is None:
                    if not stopped():
                        outcome.gave_up = (chunk, f"{reason} after {attempt} attempt(s)")
                        why = f"not sent: gave up after {attempt} attempt(s): {reason}"
                        await record(journal.mark_pending, chunk, why)
                    return
                log.info("chunk %s not processed (%s); retrying in %.2f s", chunk, reason, delay)
                await retry.pause(delay)
                continue
            if verdict == "unknown" and status is None:
                await record(journal.mark_unknown, chunk, now, reason)
                log.warning("chunk %s: outcome unknown: %s", chunk, reason)
                show(Counter(unknown=n), n)
                return
            content = _redact(content, secret)
            if verdict == "unknown":
                why = f"HTTP {status}: the request may have been processed"
                await record(journal.mark_unknown, chunk, now, why, status, content)
                log.warning("chunk %s: HTTP %s, outcome unknown", chunk, status)
                show(Counter(unknown=n), n)
                return
            await record(journal.mark_answered, chunk, now, status, content)
            answer = parse_answer(status, content)
            if answer.kind == "request_rejected":
                outcome.rejected = outcome.rejected or (chunk, answer)
                show(Counter(rejected=n), n)
            elif answer.kind == "messages":
                got: Counter = Counter()
                for status_text, count in Counter(map(_STATUS, answer.entries)).items():
                    got[str(status_text).strip().lower()] += count
                show(Counter(accepted=got["accepted"], rejected=got["rejected"]), n)
            else:
                show(Counter(unknown=n), n)
            return

    async def worker(client: httpx.AsyncClient) -> None:
        while waiting and not stopped():
            chunk = waiting.popleft()
            await limiter.wait(prep.sizes[chunk])
            if stopped():
                waiting.appendleft(chunk)
                return
            await post(client, chunk)

    # An idle connection the server closes just as it is reused fails as "dropped after
    # sending" (outcome unknown): drop idle connections well before common server
    # keep-alive timeouts (5 s for uvicorn and Apache) instead.
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=timeout, limits=limits, follow_redirects=False
        ) as client:
            await asyncio.gather(*(worker(client) for _ in range(min(concurrency, len(waiting)))))
    finally:
        bar.close()
        record.close()  # every commit done before the journal is read or closed
    if waiting and stopped():
        if outcome.rejected:
            why = f"not sent: the campaign stopped after chunk {outcome.rejected[0]} was rejected"
        elif outcome.gave_up:
            why = f"not sent: the campaign stopped after chunk {outcome.gave_up[0]} could not be sent"
        else:
            why = "not sent: sending was interrupted"
        journal.mark_pending_many(waiting, why)
    return outcome


def _run_blocking(factory: Callable[[threading.Event], Coroutine[Any, Any, _Outcome]]) -> _Outcome:
    """Run the engine to completion from sync code, inside a running event loop or not."""
    cancel = threading.Event()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory(cancel))
    # A loop already runs in this thread (Jupyter): never re-enter it; give the
    # engine its own loop in a worker thread and block until it is done.
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cmframe-send")
    interrupted = False
    try:
        future = pool.submit(asyncio.run, factory(cancel))
        while True:
            try:
                outcome = future.result()
                break
            except KeyboardInterrupt:
                # stop starting chunks; those in flight finish and are journaled
                interrupted = True
                cancel.set()
    finally:
        pool.shutdown(wait=True)
    if interrupted:
        raise KeyboardInterrupt("send interrupted; send again with the same journal to resume")
    return outcome


def _finish(prep: _Prepared, outcome: _Outcome, dry_run: bool) -> pd.DataFrame:
    result = assemble(prep.plan, prep.journal.records())
    if dry_run:
        result.attrs["cm_requests"] = prep.bodies
        return result
    counts = result["status"].value_counts().to_dict()
    log.info("send finished: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if outcome.rejected:
        chunk, answer = outcome.rejected
        not_sent = int(counts.get("not_sent", 0))
        code = f", errorCode {answer.error_code}" if answer.error_code is not None else ""
        raise RequestRejected(
            f"the gateway rejected a whole request (chunk {chunk}, HTTP {answer.http_status}{code}:"
            f" {answer.details or 'no details'});"
            f" {not_sent} row(s) not sent. Fix the cause and send again with the same journal"
            " to send the rest.",
            http_status=answer.http_status,
            error_code=answer.error_code,
            details=answer.details,
            result=result,
        )
    if outcome.gave_up:
        chunk, reason = outcome.gave_up
        error = SendError(
            f"the gateway could not be reached for chunk {chunk} ({reason});"
            f" {int(counts.get('not_sent', 0))} row(s) not sent (certainly not processed)."
            " Send again with the same journal to resume."
        )
        error.result = result
        raise error
    return result


def _setup(
    plan: pd.DataFrame,
    url: str | None,
    token: Any,
    journal: str | Path | None,
    *,
    chunk_size: int,
    merge_identical: bool,
    concurrency: int,
    rate_limit: float | None,
    retry: RetryPolicy | None,
    timeout: float | httpx.Timeout | None,
    transport: httpx.AsyncBaseTransport | None,
    progress: bool,
    resend_unknown: bool,
    dry_run: bool,
) -> tuple[_Prepared, dict[str, Any]]:
    """What ``send`` and ``asend`` share: checked options and the prepared journal."""
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    elif not isinstance(timeout, httpx.Timeout):
        timeout = httpx.Timeout(timeout)
    options = {
        "concurrency": int(concurrency),
        "rate_limit": rate_limit,
        "retry": retry if retry is not None else RetryPolicy(),
        "timeout": timeout,
        "transport": transport,
        "progress": progress,
    }
    prep = _prepare(
        plan, url, token, journal, chunk_size=chunk_size, merge_identical=merge_identical,
        concurrency=concurrency, rate_limit=rate_limit, resend_unknown=resend_unknown,
        dry_run=dry_run, progress=progress and not dry_run,
    )  # fmt: skip
    return prep, options


def send(
    plan: pd.DataFrame,
    url: str | None = None,
    token: str | ProductToken | None = None,
    journal: str | Path | None = None,
    *,
    chunk_size: int = MAX_CHUNK,
    merge_identical: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    rate_limit: float | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | httpx.Timeout | None = None,
    progress: bool = True,
    resend_unknown: bool = False,
    dry_run: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> pd.DataFrame:
    """Send the valid rows of a plan; return the plan with one outcome per row.

    Blocks until done, in a script and inside a running event loop (Jupyter)
    alike. Sending never repeats a request that may have been processed.

    Parameters
    ----------
    plan : DataFrame
        A plan from :func:`cmframe.build.build`; it is not modified.
    url : str, optional
        The gateway's message endpoint (default CM's ``DEFAULT_URL``); a base URL
        such as ``http://127.0.0.1:8080`` gets ``/v1.0/message`` appended.
    token : str or ProductToken, optional
        The product token; default ``CM_PRODUCT_TOKEN``. Sent in the
        ``X-CM-PRODUCTTOKEN`` header, never stored or printed.
    journal : str or Path, optional
        A SQLite journal file. Sending the same plan with the same journal
        resumes; a different plan raises :class:`~cmframe.exceptions.JournalMismatch`.
        Without a journal the campaign is recorded in memory only.
    chunk_size : int
        ``msg`` objects per request, 1 to 1000.
    merge_identical : bool
        Merge rows with identical content into one ``msg`` with several ``to``.
    concurrency : int
        Requests in flight at once (and size of the connection pool).
    rate_limit : float, optional
        At most this many messages per second.
    retry : RetryPolicy, optional
        When and how long to retry requests the gateway certainly did not process.
    timeout : float or httpx.Timeout, optional
        Per-request timeouts (default: connect 5 s, read 60 s).
    progress : bool
        Show a ``tqdm`` progress bar with the accepted/rejected/unknown counts.
    resend_unknown : bool
        Send again the rows that are ``unknown`` from an earlier run of this
        journal (only after checking, e.g. with status reports, that they were
        not delivered: the gateway may have accepted them).
    dry_run : bool
        Do everything but the POST. The request bodies (``(chunk, body, rows)``
        without the token) are in ``result.attrs["cm_requests"]``.
    transport : httpx.AsyncBaseTransport, optional
        Transport of the HTTP client (tests use ``httpx.MockTransport``).

    Returns
    -------
    DataFrame
        The plan plus ``schema.RESULT_COLUMNS``; ``status`` is one of
        ``accepted``, ``rejected``, ``unknown``, ``not_sent``, ``invalid``.

    Raises
    ------
    RequestRejected
        A whole request was refused (101/102/103/202/203); ``.result`` holds the
        result frame, the remaining rows ``not_sent``.
    SendError
        The gateway stayed unreachable (after the retries); ``.result`` as above.
    JournalMismatch
        The journal belongs to another plan.
    JournalError
        Another ``send`` is using the journal (or the file is not a journal).
    KeyboardInterrupt
        Inside a running event loop (Jupyter), after the requests in flight were
        answered and journaled; no new request is started.
    TokenError
        No token given and ``CM_PRODUCT_TOKEN`` unset (not needed for ``dry_run``).

    Examples
    --------
    >>> results = plan.cm.send(url=gw.message_url, token=token, journal="spring.cmjournal")  # doctest: +SKIP
    >>> results["status"].value_counts()  # doctest: +SKIP
    """
    prep, options = _setup(
        plan, url, token, journal, chunk_size=chunk_size, merge_identical=merge_identical,
        concurrency=concurrency, rate_limit=rate_limit, retry=retry, timeout=timeout,
        transport=transport, progress=progress, resend_unknown=resend_unknown, dry_run=dry_run,
    )  # fmt: skip
    try:
        if dry_run:
            prep.journal.mark_pending_many(prep.todo, "dry run: not sent")
            return _finish(prep, _Outcome(), dry_run=True)
        outcome = _run_blocking(lambda cancel: _engine(prep, cancel=cancel, **options))
        return _finish(prep, outcome, dry_run=False)
    finally:
        prep.journal.close()


async def asend(
    plan: pd.DataFrame,
    url: str | None = None,
    token: str | ProductToken | None = None,
    journal: str | Path | None = None,
    *,
    chunk_size: int = MAX_CHUNK,
    merge_identical: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    rate_limit: float | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | httpx.Timeout | None = None,
    progress: bool = True,
    resend_unknown: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> pd.DataFrame:
    """The coroutine form of :func:`send` for async code (same parameters and results)."""
    prep, options = _setup(
        plan, url, token, journal, chunk_size=chunk_size, merge_identical=merge_identical,
        concurrency=concurrency, rate_limit=rate_limit, retry=retry, timeout=timeout,
        transport=transport, progress=progress, resend_unknown=resend_unknown, dry_run=False,
    )  # fmt: skip
    try:
        outcome = await _engine(prep, **options)
        return _finish(prep, outcome, dry_run=False)
    finally:
        prep.journal.close()


make_callable(__name__, 'send')
