"""Parsers of status reports in every shape CM (or a person) produces them.

Two levels, and one set of rules:

* **items** (one report each) from webhook bodies and Transactions API pages
  are parsed in Python anyway (JSON/XML decoding is per body), so each item is
  checked by :func:`normalise_item`, also used by the receiver before it
  answers 200;
* **tables** (dashboard CSV exports, frames) are checked column-wise by
  :func:`normalise_columns`, which applies the same rules vectorised.

The rules: ``to`` loses spaces, dashes, dots and brackets, ``+`` becomes
``00`` and a number without a leading ``0`` gets ``00`` (so ``+31…``,
``0031…`` and ``31…`` all become ``0031…``, the plan's ``number`` format); it
must then be 3 to 20 digits. The status is an integer code or one of the names
accepted / rejected / delivered / failed (any case). A timestamp without a zone
is UTC; ISO 8601 (``T`` or space), epoch seconds or milliseconds and anything
``dateutil`` reads (day first, e.g. ``29-11-2026 08:00``) are accepted. A
missing timestamp is allowed (``NaT``); a present but unreadable one is not.
An unreadable error code becomes ``<NA>``. Whatever breaks a rule is a
*reject*: ``(source, location, reason, raw)``, never an exception.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import orjson
import pandas as pd
from dateutil import parser as _dateparser
from defusedxml import ElementTree as SafeET

from .codes import STATUS_CODES
from .schema import REPORT_COLUMNS, REPORT_STATUSES

__all__ = [
    "REJECT_COLUMNS",
    "TRANSACTION_STATUS_CODES",
    "Parsed",
    "normalise_item",
    "normalise_columns",
    "parse_body",
    "parse_document",
    "parse_transactions_page",
    "parse_csv",
    "reports_frame",
    "rejects_frame",
    "parse_timestamp",
    "normalise_to",
    "parse_status",
]

#: Columns of the rejects frame.
REJECT_COLUMNS: tuple[str, ...] = ("source", "location", "reason", "raw")

#: Transactions API ``status`` -> status-report code. Only 20 is documented;
#: unknown codes are kept raw in ``status_code`` with ``status`` ``<NA>``.
TRANSACTION_STATUS_CODES: dict[int, int] = {20: 2}

_NAME_TO_CODE: dict[str, int] = {name: code for code, name in STATUS_CODES.items()}
_TS_MIN = datetime(1970, 1, 1, tzinfo=UTC)
_TS_MAX = datetime(2200, 1, 1, tzinfo=UTC)
_INT_LIMIT = 2**31
_RAW_LIMIT = 200  # characters of an offending item kept in a reject
_TO_JUNK = re.compile(r"[\s\-.()\[\]/]")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_ISO_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?$"
_MAX_DEPTH = 6
_UNREADABLE = "unreadable timestamp"
_OUT_OF_RANGE = "timestamp out of range (1970-2199)"

# Field aliases, compared after lower-casing and dropping non-alphanumerics.
_TO_KEYS = ("to", "recipient", "gsm", "msisdn", "phone", "phonenumber", "mobile", "number", "receiver")
_REF_KEYS = ("reference", "ref", "messagereference")
_STATUS_KEYS = ("status", "statuscode", "code", "deliverystatus")
_ERRCODE_KEYS = ("errorcode", "statuserrorcode", "error")
_ERRDESC_KEYS = ("errordescription", "statusdescription", "description", "errortext", "reason")
_OPERATOR_KEYS = ("operator", "operatorname", "network", "carrier")
_TIME_KEYS = (
    "received", "receivedat", "statustime", "statusdatetime", "statusdate", "updated",
    "time", "timestamp", "datetime", "date", "sent", "created",
)  # fmt: skip


class Parsed:
    """Rows and rejects collected from one or more sources.

    ``rows`` are tuples in ``schema.REPORT_COLUMNS`` order (``received_at`` a
    ``datetime`` or ``None``, ``status`` the name or ``None``); ``rejects`` are
    tuples in :data:`REJECT_COLUMNS` order; ``frames`` hold already-normalised
    report frames (from tables) to concatenate.
    """

    __slots__ = ("rows", "rejects", "frames", "reject_frames")

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.rejects: list[tuple] = []
        self.frames: list[pd.DataFrame] = []
        self.reject_frames: list[pd.DataFrame] = []

    def extend(self, other: Parsed) -> None:
        self.rows += other.rows
        self.rejects += other.rejects
        self.frames += other.frames
        self.reject_frames += other.reject_frames

    def reject(self, source: str, location: str, reason: str, raw: Any) -> None:
        self.rejects.append((source, location, reason, _snippet(raw)))

    def frame(self) -> pd.DataFrame:
        parts = [reports_frame(self.rows)] if self.rows or not self.frames else []
        return _concat(parts + self.frames, reports_frame([]))

    def rejects_frame(self) -> pd.DataFrame:
        parts = [rejects_frame(self.rejects)] if self.rejects or not self.reject_frames else []
        return _concat(parts + self.reject_frames, rejects_frame([]))


def _concat(frames: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    out = pd.concat(frames, ignore_index=True)
    if "status" in out:  # concat of equal categoricals keeps the dtype; be sure
        out["status"] = pd.Categorical(out["status"], categories=REPORT_STATUSES)
    return out


def _snippet(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    elif not isinstance(raw, str):
        try:
            raw = orjson.dumps(raw, default=str).decode()
        except (TypeError, orjson.JSONEncodeError):
            raw = repr(raw)
    return raw if len(raw) <= _RAW_LIMIT else raw[:_RAW_LIMIT] + "…"


# --------------------------------------------------------------------------- scalars
def _text(value: Any) -> str | None:
    """A scalar field as stripped text, ``None`` when absent or empty."""
    if value is None or isinstance(value, (dict, list, tuple)):
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value).strip()
    return text or None


def normalise_to(value: Any) -> str | None:
    """``to`` in the plan's ``00<cc><national>`` format, ``None`` when not a number."""
    text = _text(value)
    if text is None:
        return None
    text = _TO_JUNK.sub("", text)
    if text.startswith("+"):
        text = "00" + text[1:]
    if not (3 <= len(text) <= 20) or not text.isascii() or not text.isdigit():
        return None
    return text if text.startswith("0") else "00" + text


def _int(value: Any) -> int | None:
    text = _text(value)
    if text is None or not _INT_RE.fullmatch(text):
        return None
    number = int(text)
    return number if -_INT_LIMIT < number < _INT_LIMIT else None


def parse_status(value: Any) -> int | None:
    """Status code from an integer or a status name, ``None`` when neither."""
    code = _int(value)
    if code is not None:
        return code
    text = _text(value)
    return _NAME_TO_CODE.get(text.lower()) if text else None


def parse_timestamp(value: Any) -> datetime | None:
    """A timestamp as an aware UTC ``datetime``.

    Returns ``None`` when absent; raises ``ValueError`` when present but unreadable.
    """
    if isinstance(value, datetime):
        stamp = value
    else:
        text = _text(value)
        if text is None:
            return None
        if text.isdigit() and len(text) in (10, 13):  # epoch seconds / milliseconds
            stamp = datetime.fromtimestamp(int(text) / (1000 if len(text) == 13 else 1), UTC)
        else:
            iso = text[:-1] + "+00:00" if text[-1:] in "Zz" else text
            try:
                stamp = datetime.fromisoformat(iso)
            except ValueError:
                try:
                    stamp = _dateparser.parse(text, dayfirst=True)
                except (ValueError, OverflowError, TypeError) as exc:
                    raise ValueError(_UNREADABLE) from exc
    try:
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(_OUT_OF_RANGE) from exc
    if not _TS_MIN <= stamp < _TS_MAX:
        raise ValueError(_OUT_OF_RANGE)
    return stamp


def normalise_item(
    fields: Mapping[str, Any], source: str, *, status_map: Mapping[int, int] | None = None
) -> tuple | str:
    """Check and normalise one report.

    Parameters
    ----------
    fields : mapping
        Raw ``to``, ``reference``, ``status``, ``error_code``,
        ``error_description``, ``operator``, ``received`` values.
    source : str
        Goes to the ``source`` column.
    status_map : mapping, optional
        Codes to translate (Transactions API codes); with it, codes not in the
        map are kept raw with status ``None``.

    Returns
    -------
    tuple or str
        A row in ``schema.REPORT_COLUMNS`` order, or the reason it is rejected.
    """
    to = normalise_to(fields.get("to"))
    if to is None:
        raw = _text(fields.get("to"))
        return "missing 'to'" if raw is None else "'to' is not a phone number"
    code = parse_status(fields.get("status"))
    if code is None:
        raw = _text(fields.get("status"))
        return "missing status" if raw is None else "status is not a code or status name"
    if status_map is not None:
        status = STATUS_CODES.get(status_map[code]) if code in status_map else None
        code = status_map.get(code, code)
    else:
        status = STATUS_CODES.get(code)
    try:
        received = parse_timestamp(fields.get("received"))
    except ValueError as exc:
        return str(exc)
    return (
        to,
        _text(fields.get("reference")),
        code,
        status,
        _int(fields.get("error_code")),
        _text(fields.get("error_description")),
        _text(fields.get("operator")),
        received,
        source,
    )


def _pick(lowered: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = lowered.get(key)
        if value is not None and value != "":
            return value
    return None


def _key(name: Any) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _fields_from_mapping(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Raw report fields of one JSON ``msg`` object or query string (any key case)."""
    lowered = {_key(k): v for k, v in obj.items()}
    status = lowered.get("status")
    error_code = _pick(lowered, _ERRCODE_KEYS)
    error_description = _pick(lowered, _ERRDESC_KEYS)
    if isinstance(status, Mapping):  # {"code", "errorCode", "errorDescription"}
        inner = {_key(k): v for k, v in status.items()}
        status = _pick(inner, ("code", "statuscode", "status"))
        error_code = _pick(inner, _ERRCODE_KEYS) if error_code is None else error_code
        if error_description is None:
            error_description = _pick(inner, _ERRDESC_KEYS)
    else:
        status = _pick(lowered, _STATUS_KEYS)
    to = _pick(lowered, _TO_KEYS)
    if isinstance(to, Mapping):  # {"number": ...} as in send requests
        to = _pick({_key(k): v for k, v in to.items()}, ("number", "to"))
    elif isinstance(to, list) and len(to) == 1:
        to = to[0]
    return {
        "to": to,
        "reference": _pick(lowered, _REF_KEYS),
        "status": status,
        "error_code": error_code,
        "error_description": error_description,
        "operator": _pick(lowered, _OPERATOR_KEYS),
        "received": _pick(lowered, _TIME_KEYS),
    }


# --------------------------------------------------------------------------- bodies
def _add_item(out: Parsed, fields: Mapping[str, Any], source: str, location: str, raw: Any,
              status_map: Mapping[int, int] | None = None) -> None:  # fmt: skip
    row = normalise_item(fields, source, status_map=status_map)
    if isinstance(row, str):
        out.reject(source, location, row, raw)
    else:
        out.rows.append(row)


def _msg_items(obj: Any, depth: int = 0) -> Iterable[Any]:
    """The ``msg`` objects of a JSON document: ``{"messages": {"msg": X}}``, ``{"msg": X}``,
    a ``msg`` object itself, or a list of any of these."""
    if depth > _MAX_DEPTH:
        yield obj  # rejected by the caller as not an object with fields
        return
    if isinstance(obj, list):
        for item in obj:
            yield from _msg_items(item, depth + 1)
        return
    if isinstance(obj, Mapping):
        lowered = {_key(k): v for k, v in obj.items()}
        for wrapper in ("messages", "msg", "msgs", "reports"):
            if wrapper in lowered and isinstance(lowered[wrapper], (Mapping, list)):
                yield from _msg_items(lowered[wrapper], depth + 1)
                return
    yield obj


def parse_document(obj: Any, *, location: str = "body", out: Parsed | None = None) -> Parsed:
    """Reports of one decoded JSON document (webhook body or Transactions API page).

    Parameters
    ----------
    obj : object
        The decoded JSON.
    location : str
        Where it came from, for rejects.
    out : Parsed, optional
        Collect into this.

    Returns
    -------
    Parsed
    """
    out = Parsed() if out is None else out
    if isinstance(obj, Mapping) and isinstance(lower_get(obj, "result"), list):
        return parse_transactions_page(obj, location=location, out=out)
    before = len(out.rows) + len(out.rejects)
    for i, item in enumerate(_msg_items(obj)):
        where = f"{location} msg {i}"
        if not isinstance(item, Mapping):
            out.reject("json", where, "msg is not an object", item)
            continue
        _add_item(out, _fields_from_mapping(item), "json", where, item)
    if len(out.rows) + len(out.rejects) == before:
        out.reject("json", location, "no msg in body", obj)
    return out


def lower_get(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` with the key matched case-insensitively (CM's keys vary); ``name`` is lower case."""
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == name:
            return value
    return None


def parse_transactions_page(obj: Mapping[str, Any], *, location: str = "page",
                            out: Parsed | None = None) -> Parsed:  # fmt: skip
    """Reports of one Transactions API answer (``result[]`` records).

    ``recipient`` is ``to``; ``status`` is translated with
    :data:`TRANSACTION_STATUS_CODES`, falling back to a ``statusdescription``
    that names a status; unknown codes stay raw with status ``<NA>``.
    """
    out = Parsed() if out is None else out
    records = lower_get(obj, "result")
    if not isinstance(records, list):
        out.reject("transactions", location, "no result[] in page", obj)
        return out
    for i, record in enumerate(records):
        where = f"{location} result {i}"
        if not isinstance(record, Mapping):
            out.reject("transactions", where, "record is not an object", record)
            continue
        lowered = {_key(k): v for k, v in record.items()}
        description = _pick(lowered, ("statusdescription", "description"))
        code = _int(lowered.get("status"))
        status_map = dict(TRANSACTION_STATUS_CODES)
        # "Failed: Unknown subscriber", "Accepted by operator": the first word names the status
        word = re.match(r"\s*([a-z]+)", str(description).lower()) if description is not None else None
        named = _NAME_TO_CODE.get(word.group(1)) if word else None
        if code is not None and code not in status_map and named is not None:
            status_map[code] = named
        fields = {
            "to": _pick(lowered, ("recipient", "to", "gsm", "msisdn")),
            "reference": lowered.get("reference"),
            "status": lowered.get("status") if code is not None else named,
            "error_code": _pick(lowered, ("errorcode", "statuserrorcode")),
            "error_description": description,
            "operator": _pick(lowered, ("operatorname", "operator")),
            "received": _pick(lowered, ("statusdate", "statustime", "statusdatetime", "updated", "created",
                                        "datetime")),
        }
        _add_item(out, fields, "transactions", where, record,
                  status_map=status_map if code is not None else None)  # fmt: skip
    return out


def _xml_fields(msg: Any) -> dict[str, Any]:
    """Raw fields of one ``<MSG>`` element (tags and attributes in any case)."""
    values: dict[str, Any] = {_key(k): v for k, v in msg.attrib.items()}
    for child in msg:
        tag = _key(_local(child.tag))
        if tag == "status" and len(child):
            for sub in child:
                values.setdefault("status." + _key(_local(sub.tag)), (sub.text or "").strip())
        else:
            values.setdefault(tag, (child.text or "").strip())
    status = _pick(values, ("status.code", "status.statuscode", "status", "statuscode", "code"))
    error_code = _pick(values, ("status.errorcode", *_ERRCODE_KEYS))
    error_description = _pick(values, ("status.errordescription", *_ERRDESC_KEYS))
    return {
        "to": _pick(values, _TO_KEYS),
        "reference": _pick(values, _REF_KEYS),
        "status": status,
        "error_code": error_code,
        "error_description": error_description,
        "operator": _pick(values, _OPERATOR_KEYS),
        "received": _pick(values, _TIME_KEYS),
    }


def _local(tag: Any) -> str:
    tag = str(tag)
    return tag.rsplit("}", 1)[-1]


def _parse_xml(text: str | bytes, location: str, out: Parsed) -> None:
    try:
        root = SafeET.fromstring(text)
    except SafeET.ParseError as exc:
        out.reject("xml", location, f"malformed XML: {exc}", text)
        return
    except ValueError as exc:  # defusedxml: entities, DTDs, external references
        out.reject("xml", location, f"unsafe XML refused: {type(exc).__name__}", text)
        return
    if _key(_local(root.tag)) == "msg":
        msgs = [root]
    else:
        msgs = [el for el in root.iter() if _key(_local(el.tag)) == "msg"]
    if not msgs:
        out.reject("xml", location, "no MSG element in body", text)
        return
    for i, msg in enumerate(msgs):
        where = f"{location} msg {i}"
        _add_item(out, _xml_fields(msg), "xml", where, SafeET.tostring(msg, encoding="unicode"))


def _parse_query(text: str, location: str, out: Parsed, source: str = "query") -> None:
    text = text.lstrip("?")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except ValueError as exc:
        out.reject(source, location, f"malformed query string: {exc}", text)
        return
    if not pairs:
        out.reject(source, location, "empty or unrecognised body", text)
        return
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)  # the first value of a repeated key
    _add_item(out, _fields_from_mapping(fields), source, location, text)


def _sniff(text: str, content_type: str | None) -> str:
    ctype = (content_type or "").lower()
    head = text.lstrip("\ufeff \t\r\n")[:1]
    if head in ("{", "["):
        return "json"
    if head == "<":
        return "xml"
    if "json" in ctype:
        return "json"
    if "xml" in ctype:
        return "xml"
    if "=" in text:
        return "query"
    return "unknown"


def parse_body(body: bytes | str, *, content_type: str | None = None, location: str = "body",
               out: Parsed | None = None, query_source: str = "query") -> Parsed:  # fmt: skip
    """Reports of one webhook body: JSON, XML or a query/form string.

    Parameters
    ----------
    body : bytes or str
        The body (or query string of a GET report).
    content_type : str, optional
        The ``Content-Type`` header; the body's first character decides first.
    location : str
        Where the body came from, for rejects.
    out : Parsed, optional
        Collect into this.
    query_source : str
        ``source`` of a query-string report (``"query"``; the receiver passes
        ``"get"`` or ``"form"``).

    Returns
    -------
    Parsed
    """
    out = Parsed() if out is None else out
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            out.reject("body", location, "body is not UTF-8", body)
            return out
    else:
        text = body
    text = text.lstrip("\ufeff")
    kind = _sniff(text, content_type)
    before = len(out.rows) + len(out.rejects)
    if kind == "json":
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            out.reject("json", location, f"malformed JSON: {exc}", text)
            return out
        parse_document(obj, location=location, out=out)
    elif kind == "xml":
        _parse_xml(text, location, out)
    elif kind == "query":
        _parse_query(text.strip(), location, out, query_source)
    else:
        out.reject("body", location, "empty body" if not text.strip() else "not JSON, XML or a query string", text)
    if len(out.rows) + len(out.rejects) == before:  # e.g. an empty Transactions page
        out.reject(kind, location, "no status report in body", text)
    return out


# --------------------------------------------------------------------------- frames
def reports_frame(rows: list[tuple]) -> pd.DataFrame:
    """A reports frame (``schema.REPORT_COLUMNS``, fixed dtypes) from row tuples."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(REPORT_COLUMNS)
    data = dict(zip(REPORT_COLUMNS, cols, strict=True))
    # ISO-8601 strings (the store) and datetimes (parsers) alike; one format for all
    # rows keeps the vectorised parser
    received = pd.to_datetime(pd.Series(data["received_at"], dtype=object), utc=True, format="ISO8601")
    return pd.DataFrame(
        {
            "to": pd.array(data["to"], dtype="string"),
            "reference": pd.array(data["reference"], dtype="string"),
            "status_code": pd.array(data["status_code"], dtype="Int64"),
            "status": pd.Categorical(data["status"], categories=REPORT_STATUSES),
            "error_code": pd.array(data["error_code"], dtype="Int64"),
            "error_description": pd.array(data["error_description"], dtype="string"),
            "operator": pd.array(data["operator"], dtype="string"),
            "received_at": received.astype("datetime64[ns, UTC]").reset_index(drop=True),
            "source": pd.array(data["source"], dtype="string"),
        }
    )


def rejects_frame(rows: list[tuple]) -> pd.DataFrame:
    """A rejects frame (:data:`REJECT_COLUMNS`, all strings) from row tuples."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(REJECT_COLUMNS)
    return pd.DataFrame(
        {name: pd.array(col, dtype="string") for name, col in zip(REJECT_COLUMNS, cols, strict=True)}
    )


def _strings(values: Any, n: int) -> pd.Series:
    if values is None:
        return pd.Series(pd.array([None] * n, dtype="string"))
    s = pd.Series(values).reset_index(drop=True)
    s = s.astype("string").str.strip()
    return s.mask(s == "")


def _timestamps(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Vectorised :func:`parse_timestamp`: ``(utc_times, reasons)`` (reason ``None`` when fine).

    Well-formed ISO values go through pandas at once; the rest through the
    scalar parser once per distinct value.
    """
    n = len(values)
    out = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    why = np.full(n, None, dtype=object)
    present = values.notna().to_numpy()
    if not present.any():
        return out, pd.Series(why)
    iso = values.str.match(_ISO_RE).fillna(False).to_numpy(dtype=bool)
    if iso.any():
        parsed = pd.to_datetime(values[iso].str.replace(r"[Zz]$", "+00:00", regex=True),
                                format="ISO8601", utc=True, errors="coerce")  # fmt: skip
        parsed = parsed.dt.as_unit("ns")
        ok = parsed.notna().to_numpy()
        rng_ok = ok & (parsed >= pd.Timestamp(_TS_MIN)).to_numpy() & (parsed < pd.Timestamp(_TS_MAX)).to_numpy()
        idx = np.flatnonzero(iso)
        out.iloc[idx[rng_ok]] = parsed[rng_ok].to_numpy()
        iso[idx[~rng_ok]] = False  # retry those with the scalar parser (and reject there)
    rest = present & ~iso
    if rest.any():
        codes, uniques = pd.factorize(values[rest].to_numpy(dtype=object))
        parsed_u = np.empty(len(uniques), dtype="datetime64[ns]")
        why_u = np.full(len(uniques), None, dtype=object)
        for i, text in enumerate(uniques):  # per distinct value, not per row
            try:
                stamp = parse_timestamp(text)
            except ValueError as exc:
                why_u[i] = str(exc)
                parsed_u[i] = np.datetime64("NaT")
                continue
            parsed_u[i] = np.datetime64(stamp.replace(tzinfo=None), "ns")
        idx = np.flatnonzero(rest)
        out.iloc[idx] = pd.to_datetime(parsed_u[codes]).tz_localize("UTC")
        why[idx] = why_u[codes]
    return out, pd.Series(why)


def normalise_columns(
    columns: Mapping[str, Any], source: str | Any, *, locations: Any = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vectorised :func:`normalise_item` over columns of raw values.

    Parameters
    ----------
    columns : mapping
        Raw ``to``, ``reference``, ``status``, ``error_code``,
        ``error_description``, ``operator``, ``received`` columns (missing keys
        are absent fields).
    source : str or array-like
        The ``source`` of every row, or one per row.
    locations : array-like, optional
        Per-row location for rejects (default ``"row <i>"``).

    Returns
    -------
    (reports, rejects) : tuple of DataFrame
    """
    n = max((len(v) for v in columns.values() if v is not None), default=0)
    if isinstance(source, str):
        sources = pd.array([source] * n, dtype="string")
    else:
        sources = pd.array(np.asarray(source, dtype=object), dtype="string")
    raw = {name: _strings(columns.get(name), n) for name in
           ("to", "reference", "status", "error_code", "error_description", "operator", "received")}  # fmt: skip
    # to: the same rule as normalise_to, column-wise
    to = raw["to"].str.replace(_TO_JUNK.pattern, "", regex=True)
    to = to.str.replace(r"^\+", "00", regex=True)
    to_ok = to.str.fullmatch(r"[0-9]{3,20}").fillna(False)
    to = to.where(to.str.startswith("0"), "00" + to).where(to_ok)
    # status: integer code or a status name
    status_text = raw["status"]
    is_int = status_text.str.fullmatch(_INT_RE.pattern).fillna(False)
    code = pd.to_numeric(status_text.where(is_int), errors="coerce")
    code = code.where(code.abs() < _INT_LIMIT)
    named = status_text.str.lower().map(_NAME_TO_CODE)
    code = code.fillna(named.astype("Float64")).astype("Float64").round().astype("Int64")
    # error code: integers only, else <NA>
    err_text = raw["error_code"]
    err = pd.to_numeric(err_text.where(err_text.str.fullmatch(_INT_RE.pattern).fillna(False)), errors="coerce")
    err = err.where(err.abs() < _INT_LIMIT).astype("Float64").astype("Int64")
    received, time_reasons = _timestamps(raw["received"])

    reasons = pd.Series(pd.array(time_reasons.to_numpy(), dtype="string"))
    reasons = reasons.mask(code.isna().to_numpy() & status_text.notna().to_numpy(),
                           "status is not a code or status name")  # fmt: skip
    reasons = reasons.mask(status_text.isna().to_numpy(), "missing status")
    reasons = reasons.mask((~to_ok).to_numpy() & raw["to"].notna().to_numpy(), "'to' is not a phone number")
    reasons = reasons.mask(raw["to"].isna().to_numpy(), "missing 'to'")
    bad = reasons.notna().to_numpy()
    good = ~bad

    status = pd.Categorical(code.map(STATUS_CODES).astype(object).where(code.notna(), None),
                            categories=REPORT_STATUSES)  # fmt: skip
    reports = pd.DataFrame(
        {
            "to": to.astype("string"),
            "reference": raw["reference"],
            "status_code": code,
            "status": status,
            "error_code": err,
            "error_description": raw["error_description"],
            "operator": raw["operator"],
            "received_at": received,
            "source": sources,
        }
    )[good].reset_index(drop=True)
    if bad.any():
        where = (pd.Series([f"row {i}" for i in np.flatnonzero(bad)]) if locations is None
                 else pd.Series(np.asarray(locations, dtype=object)[bad]))  # fmt: skip
        snippet = ("to=" + raw["to"].fillna("").astype(str) + " status=" + status_text.fillna("").astype(str)
                   + " received=" + raw["received"].fillna("").astype(str))[bad]  # fmt: skip
        rejects = pd.DataFrame(
            {
                "source": sources[bad],
                "location": pd.array(where.astype(str).to_numpy(), dtype="string"),
                "reason": reasons[bad].reset_index(drop=True),
                "raw": pd.array(snippet.str.slice(0, _RAW_LIMIT).to_numpy(), dtype="string"),
            }
        )
    else:
        rejects = rejects_frame([])
    return reports, rejects


# --------------------------------------------------------------------------- CSV
_CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "to": _TO_KEYS + ("phonenumber", "mobilenumber", "gsmnumber", "destination"),
    "reference": _REF_KEYS,
    "status": ("statuscode", "status", "deliverystatus", "code"),
    "error_code": ("errorcode", "statuserrorcode", "errornumber"),
    "error_description": ("errordescription", "statusdescription", "errortext", "error", "description", "reason"),
    "operator": _OPERATOR_KEYS,
    "received": ("received", "receivedat", "statustime", "statusdatetime", "statusdate", "datetime",
                 "time", "timestamp", "updated", "date", "sent", "created"),
}  # fmt: skip


def csv_columns(headers: Iterable[str]) -> dict[str, str]:
    """Map report fields to CSV headers (case-insensitive, with aliases)."""
    by_key: dict[str, str] = {}
    for header in headers:
        by_key.setdefault(_key(header), header)
    chosen: dict[str, str] = {}
    used: set[str] = set()
    for field_name, aliases in _CSV_ALIASES.items():
        for alias in aliases:
            header = by_key.get(alias)
            if header is not None and header not in used:
                chosen[field_name] = header
                used.add(header)
                break
    return chosen


def _delimiter(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in (",", ";", "\t", "|")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def parse_csv(source: Any, *, name: str = "csv") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reports of a dashboard CSV export (``,``, ``;``, tab or ``|`` separated, any header case).

    Parameters
    ----------
    source : path or text buffer
        The CSV file or an open text buffer.
    name : str
        Location prefix for rejects.

    Returns
    -------
    (reports, rejects) : tuple of DataFrame
        Lines with the wrong number of fields are rejects too.

    Raises
    ------
    ValueError
        When no header maps to ``to`` or to the status.
    """
    if hasattr(source, "read"):
        text = source.read()
        text = text.decode("utf-8-sig", "replace") if isinstance(text, bytes) else text
    else:
        with open(source, encoding="utf-8-sig", errors="replace") as fh:
            text = fh.read()
    text = text.lstrip("\ufeff")
    sep = _delimiter(text.split("\n", 1)[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, sep=sep, keep_default_na=False,
                                skipinitialspace=True, on_bad_lines="warn")  # fmt: skip
        except pd.errors.EmptyDataError as exc:
            raise ValueError("empty CSV") from exc
        except pd.errors.ParserError as exc:
            raise ValueError(f"unreadable CSV: {exc}") from exc
    mapping = csv_columns(frame.columns)
    if "to" not in mapping or "status" not in mapping:
        missing = [f for f in ("to", "status") if f not in mapping]
        raise ValueError(f"CSV has no column for {missing} (headers: {list(frame.columns)[:12]})")
    columns = {f: frame[h] for f, h in mapping.items()}
    # Line numbers of kept rows: skip the header and the bad lines pandas reported.
    skipped = sorted({int(m) for w in caught for m in re.findall(r"Skipping line (\d+)", str(w.message))})
    lines = np.arange(2, len(frame) + 2 + len(skipped))
    lines = lines[~np.isin(lines, skipped)][: len(frame)]
    reports, rejects = normalise_columns(columns, "csv", locations=[f"{name} line {i}" for i in lines])
    if skipped:
        text_lines = text.splitlines()
        bad = rejects_frame([("csv", f"{name} line {i}", "wrong number of fields",
                              _snippet(text_lines[i - 1] if i - 1 < len(text_lines) else ""))
                             for i in skipped])  # fmt: skip
        rejects = pd.concat([rejects, bad], ignore_index=True) if len(rejects) else bad
    return reports, rejects
