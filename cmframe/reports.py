"""Status reports: read them from anywhere, pull them, and merge them into the results.

::

    reports = cmframe.read_status_reports("reports.sqlite")      # or bodies, files, CSV, pages
    campaign = results.cm.merge_status(reports)

Nothing malformed is fatal and nothing is dropped silently:

* :func:`read_status_reports` returns the good reports; the bad ones are
  counted in ``reports.attrs["cm_rejects"]``, announced by a
  :class:`RejectedReportsWarning`, and returned as a frame with
  ``return_rejects=True`` (then the answer is a :class:`ReadResult`
  ``(reports, rejects)``, which unpacks like a tuple);
* :func:`merge_status` returns the campaign frame; reports that match no row
  and the number of conflicting final statuses are in
  ``campaign.attrs["cm_merge"]``, and with ``return_unmatched=True`` the answer
  is a :class:`MergeResult` ``(campaign, unmatched, conflicts)``.

The parsing rules are in :mod:`cmframe.report_formats`.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd

from .exceptions import MissingColumnError, ReportError
from .report_formats import (
    REJECT_COLUMNS,
    Parsed,
    csv_columns,
    lower_get,
    normalise_columns,
    normalise_to,
    parse_body,
    parse_csv,
    parse_document,
    parse_transactions_page,
)
from .retry import RetryPolicy, RetryState, classify_status, parse_retry_after
from .schema import DELIVERY_COLUMNS, REPORT_STATUSES

__all__ = [
    "read_status_reports",
    "merge_status",
    "fetch_transactions",
    "ReadResult",
    "MergeResult",
    "RejectedReportsWarning",
    "REJECT_COLUMNS",
    "TRANSACTIONS_URL",
]

#: Where the Transactions API lives (override with ``url=``).
TRANSACTIONS_URL = "https://api.cmtelecom.com/v1.2/transactions/"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_CSV_SUFFIXES = {".csv", ".tsv"}
_FORMATS = {None, "json", "xml", "query", "csv", "store", "lines"}


class RejectedReportsWarning(UserWarning):
    """Some status reports were malformed and left out (see ``return_rejects=True``)."""


class ReadResult(NamedTuple):
    """What :func:`read_status_reports` returns with ``return_rejects=True``."""

    reports: pd.DataFrame
    rejects: pd.DataFrame


class MergeResult(NamedTuple):
    """What :func:`merge_status` returns with ``return_unmatched=True``.

    Attributes
    ----------
    campaign : DataFrame
        The results plus ``schema.DELIVERY_COLUMNS``.
    unmatched : DataFrame
        Reports (``schema.REPORT_COLUMNS``) whose (reference, number) is in no row.
    conflicts : int
        Rows whose reports carried two different final statuses.
    """

    campaign: pd.DataFrame
    unmatched: pd.DataFrame
    conflicts: int


# =========================================================================== reading
def read_status_reports(
    source: Any,
    *,
    format: str | None = None,
    return_rejects: bool = False,
    engine: str = "pandas",
) -> pd.DataFrame | ReadResult:
    """Read status reports from any source into one tidy frame.

    Parameters
    ----------
    source : str, path, bytes, dict, DataFrame, receiver, or a list of these
        * a webhook body (JSON with ``msg`` as object or list, XML, or a GET/form
          query string with upper- or lower-case keys) as ``bytes``/``str``, or
          a decoded JSON ``dict``;
        * a Transactions API page (a ``dict`` or JSON text with ``result[]``);
        * a file: the receiver's SQLite store, a dashboard CSV export
          (``.csv``/``.tsv`` or a sniffed header), one JSON/XML document, or
          one body per line; a folder of such files (recursively, sorted);
        * a DataFrame with report columns (aliases as in a CSV export);
        * a running receiver (its store is read);
        * a list of any of these.
    format : {"json", "xml", "query", "csv", "store", "lines"}, optional
        Force the format of a file instead of sniffing it.
    return_rejects : bool
        Return ``ReadResult(reports, rejects)`` instead of the frame alone.
    engine : {"pandas", "dask"}
        ``"dask"``: files, folders or globs become a lazy Dask frame, one
        partition per file (see :func:`cmframe.dask.read_status_reports`).

    Returns
    -------
    DataFrame or ReadResult
        ``schema.REPORT_COLUMNS``: ``to`` (``"00<cc><number>"``), ``reference``,
        ``status_code`` (Int64), ``status`` (category: accepted / rejected /
        delivered / failed, ``NaN`` for unknown codes), ``error_code`` (Int64),
        ``error_description``, ``operator``, ``received_at`` (UTC; the
        report's own time, else the receiver's arrival time, else ``NaT``) and
        ``source`` (json / xml / get / form / query / csv / transactions).
        The rejects frame has ``source``, ``location`` (file:line, body, item),
        ``reason`` and ``raw`` (the offending text, cut at 200 characters).
        ``reports.attrs["cm_rejects"]`` is the number of rejects.

    Raises
    ------
    ReportError
        The source itself cannot be used (a path that does not exist, a CSV
        without a recipient or status column, an unreadable store).

    Warns
    -----
    RejectedReportsWarning
        When some items were rejected and ``return_rejects`` is false.
    """
    if engine == "dask":  # the optional extra: one partition per file
        from .dask import read_status_reports as read_dask

        return read_dask(source, format=format, return_rejects=return_rejects)
    if engine != "pandas":
        raise ValueError(f"engine must be 'pandas' or 'dask', not {engine!r}")
    if format not in _FORMATS:
        raise ReportError(f"format must be one of {sorted(f for f in _FORMATS if f)} or None, not {format!r}")
    parsed = Parsed()
    _read_into(source, parsed, format)
    return _answer(parsed, return_rejects, lambda rejects: (
        f"{len(rejects)} status report(s) rejected: {_top_reasons(rejects)}; "
        "pass return_rejects=True to get them"
    ))  # fmt: skip


def _top_reasons(rejects: pd.DataFrame) -> str:
    reasons = rejects["reason"].value_counts().head(3)
    return "; ".join(f"{r} ({n})" for r, n in reasons.items())


def _answer(parsed: Parsed, return_rejects: bool, warning: Any) -> pd.DataFrame | ReadResult:
    """The readers' common ending: the frame, its rejects counted, returned or warned about."""
    reports, rejects = parsed.frame(), parsed.rejects_frame()
    reports.attrs["cm_rejects"] = len(rejects)
    if return_rejects:
        return ReadResult(reports, rejects)
    if len(rejects):  # stacklevel 3: the reader's caller
        warnings.warn(warning(rejects), RejectedReportsWarning, stacklevel=3)
    return reports


def _looks_like_body(text: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")[:1]
    return head in ("{", "[", "<") or ("=" in text and "\n" not in text.strip())


def _read_into(source: Any, out: Parsed, fmt: str | None) -> None:
    if source is None:
        raise ReportError("no status-report source given")
    store = getattr(source, "store", None)
    if store is not None and not isinstance(source, (str, bytes, Mapping, pd.DataFrame)):
        _read_store(Path(store), out)
    elif isinstance(source, pd.DataFrame):
        _read_frame(source, out)
    elif isinstance(source, bytes):
        parse_body(source, location="body", out=out)
    elif isinstance(source, Mapping):
        parse_document(source, location="document", out=out)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        text_source = isinstance(source, str)
        try:
            exists = path.exists()
        except (OSError, ValueError):  # a long body is not a valid path
            exists = False
        if exists:
            _read_path(path, out, fmt)
        elif text_source and _looks_like_body(source):
            parse_body(source, location="body", out=out)
        else:
            raise ReportError(f"no such file or folder: {str(source)[:200]!r}")
    elif isinstance(source, Iterable):
        for item in source:
            _read_into(item, out, fmt)
    else:
        raise ReportError(f"cannot read status reports from a {type(source).__name__}")


def _read_frame(frame: pd.DataFrame, out: Parsed) -> None:
    mapping = csv_columns(frame.columns)
    if "to" not in mapping or "status" not in mapping:
        raise ReportError(f"the frame has no recipient or status column (columns: {list(frame.columns)[:12]})")
    columns = {f: frame[c] for f, c in mapping.items()}
    source: Any = "frame"
    if "source" in frame.columns:  # a reports frame read again keeps its sources
        source = frame["source"].astype("string").fillna("frame").to_numpy(dtype=object)
    reports, rejects = normalise_columns(columns, source, locations=[f"row {i}" for i in frame.index])
    out.frames.append(reports)
    out.reject_frames.append(rejects)


def _read_path(path: Path, out: Parsed, fmt: str | None) -> None:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        for file in files:
            _read_file(file, out, fmt)
    else:
        _read_file(path, out, fmt)


def _read_file(path: Path, out: Parsed, fmt: str | None) -> None:
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if fmt == "store" or (fmt is None and head == _SQLITE_MAGIC):
        _read_store(path, out)
        return
    if head == _SQLITE_MAGIC:
        raise ReportError(f"{path} is a SQLite file; read it with format='store' or format=None")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        out.reject("file", str(path), "file is not UTF-8", raw)
        return
    if fmt == "csv" or (fmt is None and _is_csv(path, text)):
        try:
            reports, rejects = parse_csv(io.StringIO(text), name=path.name)
        except ValueError as exc:
            raise ReportError(f"{path}: {exc}") from exc
        out.frames.append(reports)
        out.reject_frames.append(rejects)
        return
    stripped = text.strip()
    if not stripped:
        return  # an empty file holds no reports
    if fmt in (None, "json") and stripped[0] in "{[":
        try:
            obj = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            obj = None
            if fmt == "json" and "\n" not in stripped:
                parse_body(stripped, location=str(path), out=out)
                return
        if obj is not None:
            parse_document(obj, location=str(path), out=out)
            return
    if fmt in (None, "xml") and stripped[0] == "<" and "\n" in stripped:
        whole = Parsed()
        parse_body(stripped, location=str(path), out=whole)
        if whole.rows and not whole.rejects:  # one multi-line document
            out.extend(whole)
            return
    # one body per line
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            parse_body(line.strip(), location=f"{path}:{number}", out=out)


def _is_csv(path: Path, text: str) -> bool:
    if path.suffix.lower() in _CSV_SUFFIXES:
        return True
    first = text.lstrip().split("\n", 1)[0]
    if first[:1] in ("{", "[", "<") or "=" in first:
        return False
    fields = [f for sep in (",", ";", "\t", "|") for f in first.split(sep) if sep in first]
    mapping = csv_columns(f.strip().strip('"') for f in fields)
    return "to" in mapping and "status" in mapping


def _read_store(path: Path, out: Parsed) -> None:
    from .receiver import read_store  # local: the receiver owns the store's layout

    reports, rejects = read_store(path)
    out.frames.append(reports)
    out.reject_frames.append(rejects)


# =========================================================================== pulling
def fetch_transactions(
    token: Any = None,
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    reference: str | None = None,
    direction: str = "out",
    page_size: int = 1000,
    max_pages: int | None = None,
    url: str = TRANSACTIONS_URL,
    client: Any = None,
    retry: Any = None,
    timeout: float = 30.0,
    return_rejects: bool = False,
) -> pd.DataFrame | ReadResult:
    """Pull status reports from the Transactions API, page by page.

    Parameters
    ----------
    token : str or ProductToken, optional
        The product token (else ``CM_PRODUCT_TOKEN``); sent as the
        ``X-CM-PRODUCTTOKEN`` header, never logged.
    start, end : datetime or str, optional
        The ``startdate``/``enddate`` window (``yyyy-MM-ddTHH:mm:ss``, UTC).
    reference : str, optional
        Only messages with this reference.
    direction : {"out", "in"}
        Outgoing messages (the default) or inbound.
    page_size : int
        Records per page.
    max_pages : int, optional
        Stop after this many pages.
    url : str
        The endpoint (the embedded gateway serves it at ``/v1.2/transactions/``).
    client : httpx.Client, optional
        A client to use (for a mock transport); one is made and closed otherwise.
    retry : RetryPolicy, optional
        The sender's retry policy (``cmframe.retry``); requests are reads, so
        every transport error and 429/5xx answer is retried until it stops.
    timeout : float
        Seconds per request.
    return_rejects : bool
        As in :func:`read_status_reports`.

    Returns
    -------
    DataFrame or ReadResult
        The same frame as :func:`read_status_reports` (``source`` "transactions").

    Raises
    ------
    ReportError
        A page could not be fetched (after retries) or is not a Transactions answer.
    """
    import httpx

    from .secret import resolve_token

    secret = resolve_token(token)
    policy = retry if retry is not None else RetryPolicy()
    params: dict[str, Any] = {"direction": direction, "pagesize": int(page_size)}
    for name, value in (("startdate", start), ("enddate", end)):
        if value is not None:
            params[name] = _cm_time(value)
    if reference is not None:
        params["reference"] = reference
    own = client is None
    http = httpx.Client(timeout=timeout) if own else client
    headers = {"X-CM-PRODUCTTOKEN": secret.reveal(), "Accept": "application/json"}
    parsed = Parsed()
    try:
        page, total = 1, None
        while total is None or page <= total:
            if max_pages is not None and page > max_pages:
                break
            body = _get_page(http, url, {**params, "page": page}, headers, policy)
            if not isinstance(body, Mapping) or not isinstance(lower_get(body, "result"), list):
                raise ReportError(f"page {page} of {url} is not a Transactions API answer")
            parse_transactions_page(body, location=f"page {page}", out=parsed)
            pagination = lower_get(body, "pagination") or {}
            total_pages = lower_get(pagination, "totalpages") if isinstance(pagination, Mapping) else None
            try:
                total = int(total_pages) if total_pages is not None else page
            except (TypeError, ValueError):
                total = page
            if not lower_get(body, "result"):
                break
            page += 1
    finally:
        if own:
            http.close()
    return _answer(parsed, return_rejects, lambda rejects: (
        f"{len(rejects)} transaction record(s) rejected; pass return_rejects=True"
    ))  # fmt: skip



def _cm_time(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S")


def _get_page(http: Any, url: str, params: dict[str, Any], headers: dict[str, str],
              policy: RetryPolicy) -> Any:  # fmt: skip
    import httpx

    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        retry_after = None
        try:
            response = http.get(url, params=params, headers=headers)
        except httpx.TransportError as exc:
            reason = f"{type(exc).__name__}"
        else:
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError as exc:
                    raise ReportError(f"{url} answered with invalid JSON") from exc
            # a GET is safe to repeat: 429/503 and other 5xx alike are retried
            if classify_status(response.status_code) == "answered":
                raise ReportError(f"{url} answered HTTP {response.status_code}")
            reason = f"HTTP {response.status_code}"
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        state = RetryState(attempt=attempt, elapsed=time.monotonic() - started,
                           retry_after=retry_after, reason=reason)  # fmt: skip
        delay = policy.next_delay(state)
        if delay is None:
            raise ReportError(f"could not fetch {url} page {params['page']}: {reason} "
                              f"after {attempt} attempt(s)")  # fmt: skip
        policy.pause_blocking(delay)


# =========================================================================== merging
_RANK = np.array([1, 2, 3, 2, 0], dtype=np.int64)  # accepted, rejected, delivered, failed, NA
_NAT_SORT = -(2**62)  # NaT sorts as the earliest time
_NEVER = np.iinfo(np.int64).max


def _report_status_codes(reports: pd.DataFrame) -> np.ndarray:
    """Category codes of ``status`` (0..3 in REPORT_STATUSES order, 4 for unknown)."""
    if "status" in reports.columns:
        status = reports["status"]
        if not (isinstance(status.dtype, pd.CategoricalDtype)
                and tuple(status.cat.categories) == REPORT_STATUSES):  # fmt: skip
            text = status.astype("string").str.lower()
            status = pd.Categorical(text.astype(object).where(text.notna(), None), categories=REPORT_STATUSES)
        else:
            status = status.array
        codes = np.asarray(status.codes, dtype=np.int64)
    elif "status_code" in reports.columns:
        # status codes 0..3 are the positions of their names in REPORT_STATUSES
        code = pd.to_numeric(reports["status_code"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        codes = np.where(np.isin(code, [0, 1, 2, 3]), np.nan_to_num(code, nan=-1), -1).astype(np.int64)
    else:
        raise MissingColumnError("the reports have no 'status' or 'status_code' column")
    return np.where(codes < 0, 4, codes)


def _utc_ns(values: Any) -> np.ndarray:
    """int64 nanoseconds since the epoch (``iNaT`` for missing)."""
    stamps = pd.to_datetime(pd.Series(values).reset_index(drop=True), utc=True).dt.as_unit("ns")
    return stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _as_arrow(values: pd.Series):
    """The values as a pyarrow string array, without a copy when they already are one."""
    import pyarrow as pa

    data = getattr(values.array, "_pa_array", None)
    if data is not None and pa.types.is_string(data.type) or data is not None and pa.types.is_large_string(data.type):
        return data
    objects = values.astype("object").where(values.notna(), None).to_numpy()
    return pa.chunked_array([pa.array(objects, type=pa.string(), from_pandas=True)])


def _number_values(values: pd.Series) -> np.ndarray | None:
    """``00<digits>`` numbers (up to 17 characters, no third ``0``) as the int64 of
    their digits, ``-1`` when missing; ``None`` when some value is not of that form."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _as_arrow(values)
    if arr.null_count == len(arr):
        return np.full(len(arr), -1, dtype=np.int64)
    # "00" first also rules out signs and spaces, which the integer cast would accept;
    # no "000": the leading zeros dropped by the cast are then always exactly two
    if (pc.max(pc.utf8_length(arr)).as_py() > 17 or not pc.all(pc.starts_with(arr, "00")).as_py()
            or pc.any(pc.starts_with(arr, "000")).as_py()):  # fmt: skip
        return None
    try:
        ints = pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return np.asarray(pc.fill_null(ints, -1).to_numpy(), dtype=np.int64)


def _number_codes(res_num: pd.Series, rep_to: pd.Series) -> np.ndarray:
    """Dense codes of normalised numbers, results then reports (``-1`` = no number).

    The slow path, for hand-made report frames with ``+31…`` or ``31…``: the
    distinct values are normalised, not every row.
    """
    nums = pd.concat([res_num.astype("string"), rep_to.astype("string")], ignore_index=True)
    codes, uniques = pd.factorize(nums, use_na_sentinel=True)
    fixed = np.array([normalise_to(v) for v in np.asarray(uniques, dtype=object)], dtype=object)
    remap, _ = pd.factorize(pd.array(fixed, dtype="string"), use_na_sentinel=True)
    return np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)


def _factorize_keys(res_ref: pd.Series, res_num: pd.Series, rep_ref: pd.Series, rep_to: pd.Series):
    """Dense int keys for (reference, number) shared by results and reports (``-1``: no number)."""
    n = len(res_num)
    refs = pd.concat([res_ref.astype("string"), rep_ref.astype("string")], ignore_index=True)
    ref_codes, ref_uniques = pd.factorize(refs, use_na_sentinel=False)
    n_refs = max(len(ref_uniques), 1)
    rep_values = _number_values(rep_to) if n_refs <= 8192 else None
    res_values = _number_values(res_num) if rep_values is not None else None
    if rep_values is not None and res_values is not None:
        # the fast path: digits < 10**15 times at most 8192 references fit in an int64,
        # so one hash of integers gives the keys
        values = np.concatenate([res_values, rep_values])
        raw = np.where(values < 0, -1, values * n_refs + ref_codes)
    else:
        values = _number_codes(res_num, rep_to)
        raw = np.where(values < 0, -1, ref_codes.astype(np.int64) * (int(values.max(initial=0)) + 1) + values)
    keys, _ = pd.factorize(raw, use_na_sentinel=False)
    keys = np.where(values < 0, -1, keys)
    return keys[:n], keys[n:]


def _strings_from_codes(codes: np.ndarray, names: list[str]) -> pd.arrays.ArrowStringArray:
    """``names[codes]`` as a string array, without making a Python string per row."""
    import pyarrow as pa

    values = pa.array(names, type=pa.string()).take(pa.array(codes.astype(np.int32)))
    return pd.array(pd.arrays.ArrowStringArray(pa.chunked_array([values])), dtype="string")


def merge_status(
    results: pd.DataFrame,
    reports: Any,
    *,
    return_unmatched: bool = False,
) -> pd.DataFrame | MergeResult:
    """Join status reports to send results: one delivery outcome per row.

    Reports match rows on (``reference``, normalised number): the results'
    ``reference`` and ``number`` against the reports' ``reference`` and ``to``
    (a missing reference matches a missing reference). Rows that share both
    (duplicate recipients kept by ``build``) get the same outcome.

    Per row, over all its reports:

    * **delivered is sticky**: once a delivered report is seen the row is
      delivered, whatever arrives before or after it;
    * otherwise a **final** status (rejected, failed) beats the non-final
      accepted; between final reports the one with the **later**
      ``received_at`` wins (on equal times the later in the frame);
    * two different final statuses for one row (delivered then failed, failed
      then rejected…) are a **conflict**: counted, not an error;
    * reports with an unknown status code only count in ``reports_seen``.

    Parameters
    ----------
    results : DataFrame
        The send results (needs ``number``; ``reference`` and ``sent_at`` are
        used when present).
    reports : DataFrame or any source of :func:`read_status_reports`
        The status reports.
    return_unmatched : bool
        Return ``MergeResult(campaign, unmatched, conflicts)``.

    Returns
    -------
    DataFrame or MergeResult
        A new frame: the results (delivery columns of an earlier merge are
        replaced) plus ``schema.DELIVERY_COLUMNS``: ``delivery_status``
        (delivered / failed / rejected / accepted / none), ``delivery_error_code``
        and ``delivery_error`` (of the winning report), ``first_report_at``,
        ``final_report_at`` (time of the winning final report; for delivered
        the first delivered report), ``latency`` (``final_report_at - sent_at``),
        ``operator`` (of the winning report, else the last one named) and
        ``reports_seen`` (all reports of the row, duplicates included).
        ``campaign.attrs["cm_merge"]`` holds counts: ``reports``, ``matched``,
        ``unmatched``, ``conflicts``.
    """
    if not isinstance(reports, pd.DataFrame):
        reports = read_status_reports(reports)
    if "number" not in results.columns:
        raise MissingColumnError("the results have no 'number' column (build and send them first)")
    for column in ("to", "received_at"):
        if column not in reports.columns:
            raise MissingColumnError(f"the reports have no {column!r} column")
    n, m = len(results), len(reports)
    none_ref = pd.Series(pd.array([None] * n, dtype="string"))
    res_ref = results["reference"].reset_index(drop=True) if "reference" in results else none_ref
    rep_ref = (reports["reference"].reset_index(drop=True) if "reference" in reports
               else pd.Series(pd.array([None] * m, dtype="string")))  # fmt: skip
    row_key, rep_key = _factorize_keys(res_ref, results["number"].reset_index(drop=True),
                                       rep_ref, reports["to"].reset_index(drop=True))  # fmt: skip
    n_keys = int(max(row_key.max(initial=-1), rep_key.max(initial=-1))) + 1

    status_code = _report_status_codes(reports)
    rank = _RANK[status_code]
    t = _utc_ns(reports["received_at"])
    nat = t == np.iinfo(np.int64).min
    t_sort = np.where(nat, _NAT_SORT, t)
    # delivered: the earliest delivered report is the one that counts (sort it last)
    t_sort = np.where(rank == 3, -t_sort, t_sort)

    # Per key, with scatter reductions (no sort, no per-row loop): the best rank,
    # then the best time among reports of that rank, then the last such report.
    valid = rep_key >= 0
    idx = np.flatnonzero(valid)
    key_v = rep_key[idx]
    best_rank = np.full(n_keys, -1, dtype=np.int64)
    np.maximum.at(best_rank, key_v, rank[idx])
    cand = idx[rank[idx] == best_rank[key_v]]
    best_t = np.full(n_keys, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(best_t, rep_key[cand], t_sort[cand])
    cand = cand[t_sort[cand] == best_t[rep_key[cand]]]
    winner = np.full(n_keys, -1, dtype=np.int64)
    np.maximum.at(winner, rep_key[cand], cand)
    seen = np.bincount(key_v, minlength=n_keys)
    first = np.full(n_keys, _NEVER, dtype=np.int64)
    np.minimum.at(first, key_v, np.where(nat, _NEVER, t)[idx])
    # for winners without an operator: the latest report that names one
    op_values = reports["operator"] if "operator" in reports else None
    last_op = np.full(n_keys, -1, dtype=np.int64)
    if op_values is not None and m:
        named = idx[op_values.notna().to_numpy()[idx]]
        latest = np.full(n_keys, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(latest, rep_key[named], t[named])
        named = named[t[named] == latest[rep_key[named]]]
        np.maximum.at(last_op, rep_key[named], named)
    # conflicts: more than one distinct final status per key (a bit per status)
    final = idx[rank[idx] >= 2]
    seen_bits = np.zeros(n_keys, dtype=np.int64)
    np.bitwise_or.at(seen_bits, rep_key[final], np.left_shift(1, status_code[final]))
    conflict_keys = (seen_bits & (seen_bits - 1)) != 0

    # ---- per row
    has_key = row_key >= 0
    rk = np.where(has_key, row_key, 0)
    win = np.where(has_key, winner[rk] if n_keys else -1, -1)
    win_rank = np.where(win >= 0, rank[np.maximum(win, 0)] if m else 0, -1)
    win_status = np.where(win >= 0, status_code[np.maximum(win, 0)] if m else 4, 4)
    # built from codes: converting a million Python strings would cost more than the merge
    delivery = _strings_from_codes(np.where(win_rank >= 1, win_status, 4), [*REPORT_STATUSES, "none"])

    def take(column: str, dtype: str) -> pd.Series:
        if column not in reports.columns or m == 0:
            return pd.Series(pd.array([None] * n, dtype=dtype))
        values = pd.Series(reports[column].array, dtype=dtype)
        return pd.Series(values.array.take(np.where(win_rank >= 1, win, -1), allow_fill=True))

    final_ns = np.where(win_rank >= 2, t[np.maximum(win, 0)] if m else 0, np.iinfo(np.int64).min)
    final_at = pd.Series(final_ns.view("datetime64[ns]")).dt.tz_localize("UTC")
    first_ns = np.where(has_key, first[rk] if n_keys else _NEVER, _NEVER)
    first_at = pd.Series(np.where(first_ns == _NEVER, np.iinfo(np.int64).min, first_ns).view("datetime64[ns]")).dt.tz_localize("UTC")
    if "sent_at" in results.columns:
        sent = pd.to_datetime(results["sent_at"].reset_index(drop=True), utc=True)
        latency = final_at - sent.dt.as_unit("ns")
    else:
        latency = pd.Series(pd.NaT, index=range(n), dtype="timedelta64[ns]")
    if op_values is not None and m:
        # the winner's operator, else the latest report naming one: one take, not two
        win_pos = np.where(win_rank >= 1, win, -1)
        win_named = np.zeros(n, dtype=bool)
        win_named[win_pos >= 0] = op_values.notna().to_numpy()[win_pos[win_pos >= 0]]
        fallback_pos = np.where(has_key, last_op[rk] if n_keys else -1, -1)
        op_pos = np.where(win_named, win_pos, fallback_pos)
        operator = pd.Series(pd.Series(op_values.array, dtype="string").array.take(op_pos, allow_fill=True))
    else:
        operator = take("operator", "string")
    reports_seen = np.where(has_key, seen[rk] if n_keys else 0, 0)

    index = results.index
    delivery_cols = {
        "delivery_status": delivery,
        "delivery_error_code": take("error_code", "Int64").array,
        "delivery_error": take("error_description", "string").array,
        "first_report_at": first_at.array,
        "final_report_at": final_at.array,
        "latency": latency.array,
        "operator": operator.array,
        "reports_seen": pd.array(reports_seen, dtype="Int64"),
    }
    base = results.drop(columns=[c for c in DELIVERY_COLUMNS if c in results.columns])
    campaign = base.assign(**{k: pd.Series(v, index=index) for k, v in delivery_cols.items()})

    in_results = np.zeros(n_keys, dtype=bool)
    in_results[row_key[has_key]] = True
    matched = valid & in_results[np.maximum(rep_key, 0)] if n_keys else np.zeros(m, dtype=bool)
    conflicts = int(np.count_nonzero(has_key & conflict_keys[rk])) if n_keys else 0
    unmatched = reports[~matched]
    campaign.attrs["cm_merge"] = {
        "reports": m,
        "matched": int(matched.sum()),
        "unmatched": int(m - matched.sum()),
        "conflicts": conflicts,
    }
    if return_unmatched:
        return MergeResult(campaign, unmatched.reset_index(drop=True), conflicts)
    return campaign
