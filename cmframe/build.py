"""Recipient frames become validated plans, and plans become CM request bodies.

:func:`build` turns a recipient frame and a message specification into a
*plan*: the caller's rows and columns plus the normalised message fields of
``schema.PLAN_COLUMNS``. Every field is a constant, a template over columns
(``body="Hi {first_name}"``) or a Series aligned on the index. Rows the gateway
would reject keep their place with an ``error_code`` (301-305) and an ``error``
naming the field; all failing rows are reported at once and good rows still go.

:func:`layout`, :func:`request_bodies` and :func:`requests` lay the valid rows
out in requests of at most ``chunk_size`` messages. Bodies are assembled from
JSON fragments built per column (and per distinct value where that is cheaper),
so serialising a million rows is a handful of Arrow kernels, not a million
``json.dumps`` calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from . import fragments, numbers, rich, templates
from ._callable import make_callable
from .encode import estimate_arrow
from .exceptions import DuplicateRecipientError, PlanError, SpecError
from .schema import LAYOUT_COLUMNS, PLAN_COLUMNS
from .secret import ProductToken
from .validity import ValidityError, parse_validity

__all__ = [
    "build",
    "layout",
    "request_bodies",
    "requests",
    "CHANNELS",
    "BODY_TYPES",
    "MAX_MSG_PER_REQUEST",
]

#: Channels of the spec's ``allowedChannels`` (canonical spelling; matched case-insensitively).
CHANNELS: tuple[str, ...] = (
    "SMS",
    "WhatsApp",
    "Push",
    "RCS",
    "Viber",
    "Apple Messages for Business",
    "Twitter",
    "Facebook Messenger",
    "Google Business Messages",
    "Instagram",
)
_CHANNELS = {c.lower(): c for c in CHANNELS}
BODY_TYPES: tuple[str, ...] = ("auto", "text", "binary")
#: The gateway takes at most this many ``msg`` objects per request.
MAX_MSG_PER_REQUEST = 1000
_BLOCK_ROWS = 65536  # rows serialised per Arrow join in request_bodies

_REFERENCE_MAX = 32
_GROUPING_MAX = 100
_SENDER_DIGITS_MAX = 16
_SENDER_TEXT_MAX = 11
_NULL = pa.scalar(None, pa.string())

# Plan columns that make up a message's content (everything but the number),
# in the order their JSON keys are written.
_CONTENT = (
    "sender",
    "body_type",
    "body",
    "channels",
    "reference",
    "custom_grouping",
    "custom_grouping2",
    "custom_grouping3",
    "validity",
    "min_parts",
    "max_parts",
    "dcs",
    "rich_content",
)
_JSON_KEYS = {
    "sender": "from",
    "reference": "reference",
    "custom_grouping": "customGrouping",
    "custom_grouping2": "customGrouping2",
    "custom_grouping3": "customGrouping3",
    "validity": "validity",
    "min_parts": "minimumNumberOfMessageParts",
    "max_parts": "maximumNumberOfMessageParts",
    "dcs": "dcs",
    "rich_content": "richContent",
    "channels": "allowedChannels",
    "body_type": "type",  # inside "body"
}


# --------------------------------------------------------------------------- helpers


def _n_array(value: str, n: int) -> pa.Array:
    return fragments.constant(value, n)


def _align(df: pd.DataFrame, value: pd.Series, what: str) -> pd.Series:
    """A Series lined up on the frame's index (by label, never by position)."""
    if value.index.equals(df.index):
        return value
    if not (value.index.is_unique and df.index.is_unique):
        raise SpecError(f"{what}: the Series' index does not match the frame's index")
    missing = df.index.difference(value.index)
    if len(missing) == len(df) and len(df):
        raise SpecError(f"{what}: the Series shares no index label with the frame")
    return value.reindex(df.index)


def _strings(df: pd.DataFrame, value: Any, what: str) -> pa.Array | None:
    """A string field for every row: constant, template or aligned Series."""
    n = len(df)
    if value is None:
        return None
    if isinstance(value, pd.Series):
        return templates.to_arrow(_align(df, value, what))
    if isinstance(value, str):
        return templates.render(df, value, what=what)
    if isinstance(value, np.ndarray | pd.api.extensions.ExtensionArray | pd.Index):
        if len(value) != n:
            raise SpecError(f"{what}: {len(value)} values for {n} rows")
        return templates.to_arrow(pd.Series(np.asarray(value, dtype=object)))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{what}: expected a string, a template or a Series, not {type(value).__name__}")
    return _n_array(templates._text(value), n)


def _body(df: pd.DataFrame, value: Any) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """``(body, codes, distinct)``: the body per row (missing reads as empty), and
    its distinct texts with one code per row, for per-distinct work downstream."""
    if isinstance(value, str):
        # a template over a few columns renders once per combination of their values
        codes, texts = templates.render_distinct(df, value, what="body")
        if codes.min(initial=0) >= 0:
            # spread out as large_string, what the plan's pandas column stores: no cast later
            return texts.cast(pa.large_string()).take(pa.array(codes)), codes, texts
    arr = pc.fill_null(_strings(df, value, "body"), "")
    codes, texts = templates.distinct_codes(arr)
    return arr, codes, texts


def _blank_to_null(arr: pa.Array | None) -> pa.Array | None:
    """Optional fields: an empty string means absent."""
    if arr is None:
        return None
    empty = pc.fill_null(pc.equal(arr, ""), False)
    if not pc.any(empty).as_py():
        return arr
    return pc.if_else(empty, _NULL, arr)


def _distinct(arr: pa.Array) -> tuple[np.ndarray, list]:
    """``(codes, values)``: one code per row (-1 for null) and the distinct values."""
    codes, values = templates.distinct_codes(arr)
    return codes, values.to_pylist()


def _per_distinct(arr: pa.Array, fn) -> tuple[pa.Array, pa.Array]:
    """Apply ``fn(value) -> (text or None, error or None)`` once per distinct value."""
    codes, values = _distinct(arr)
    out, err = zip(*(fn(v) for v in values), strict=True) if values else ((), ())
    idx = pa.array(codes, mask=codes < 0)
    return (
        pa.array(list(out), type=pa.string()).take(idx),
        pa.array(list(err), type=pa.string()).take(idx),
    )


def _channels_text(value: Any, what: str = "channels") -> str | None:
    """Canonical ``"WhatsApp,SMS"`` text; raises ValueError on an unknown channel."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{what}: {item!r} is not a channel name")
        name = item.strip()
        if not name:
            continue
        canon = _CHANNELS.get(name.lower())
        if canon is None:
            raise ValueError(f"{what}: unknown channel {name!r} (known: {', '.join(CHANNELS)})")
        out.append(canon)
    return ",".join(out) if out else None


def _channels(df: pd.DataFrame, value: Any) -> tuple[pa.Array | None, pa.Array | None]:
    n = len(df)
    if value is None:
        return None, None
    if isinstance(value, list | tuple) or (isinstance(value, str) and not templates.is_template(value)):
        try:
            text = _channels_text(value)
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        return (_n_array(text, n) if text else None), None
    if isinstance(value, pd.Series):
        value = _align(df, value, "channels")
        # lists are unhashable: join them to text once per row (the Series form only)
        raw = pa.array(
            [",".join(map(str, v)) if isinstance(v, list | tuple | np.ndarray) else v for v in value.tolist()],
            type=pa.string(),
            from_pandas=True,
        )
    elif isinstance(value, str):
        raw = templates.render(df, value, what="channels")
    else:
        raise SpecError(f"channels: expected a list, a string or a Series, not {type(value).__name__}")

    def one(v: str) -> tuple[str | None, str | None]:
        try:
            return _channels_text(v), None
        except ValueError as exc:
            return None, str(exc)

    return _per_distinct(raw, one)


def _body_type(df: pd.DataFrame, value: Any) -> tuple[pa.Array | None, pa.Array | None]:
    n = len(df)
    if value is None:
        return None, None
    if isinstance(value, str) and not templates.is_template(value):
        if value.lower() not in BODY_TYPES:
            raise SpecError(f"body_type: {value!r} is not one of {', '.join(BODY_TYPES)}")
        return _n_array(value.lower(), n), None
    raw = _blank_to_null(_strings(df, value, "body_type"))

    def one(v: str) -> tuple[str | None, str | None]:
        if v.lower() in BODY_TYPES:
            return v.lower(), None
        return v, f"body_type: {v!r} is not one of {', '.join(BODY_TYPES)}"

    return _per_distinct(raw, one)


def _int_value(v: Any, what: str) -> int:
    if isinstance(v, bool):
        raise ValueError(f"{what}: {v!r} is not a whole number")
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, str):
        v = v.strip()
        if not v.lstrip("-").isdigit():
            raise ValueError(f"{what}: {v!r} is not a whole number")
        v = int(v)
    if not isinstance(v, int | np.integer):
        raise ValueError(f"{what}: {v!r} is not a whole number")
    if v < 0:
        raise ValueError(f"{what}: {v} is negative")
    return int(v)


def _ints(df: pd.DataFrame, value: Any, what: str) -> tuple[pd.arrays.IntegerArray, pa.Array | None]:
    n = len(df)
    if value is None:
        return pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)), None
    if not isinstance(value, pd.Series) and not templates.is_template(value):
        try:
            v = _int_value(value, what)
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        return pd.arrays.IntegerArray(np.full(n, v, dtype=np.int64), np.zeros(n, dtype=bool)), None
    if isinstance(value, pd.Series):
        value = _align(df, value, what)
        if pd.api.types.is_integer_dtype(value.dtype):
            arr = pd.array(value, dtype="Int64")
            neg = np.asarray((arr < 0).fillna(False), dtype=bool)
            err = pc.if_else(pa.array(neg), pa.scalar(f"{what}: negative", pa.string()), _NULL)
            return arr, (err if neg.any() else None)
        raw = templates.to_arrow(value)
    else:
        raw = templates.render(df, value, what=what)
    raw = _blank_to_null(raw)

    def one(v: str) -> tuple[str | None, str | None]:
        try:
            return str(_int_value(v, what)), None
        except ValueError as exc:
            return None, str(exc)

    text, err = _per_distinct(raw, one)
    return pd.array(pc.cast(text, pa.int64()).to_pandas(), dtype="Int64"), err


def _validity(df: pd.DataFrame, value: Any, now: dt.datetime) -> tuple[pa.Array | None, pa.Array | None]:
    n = len(df)
    if value is None:
        return None, None
    if not isinstance(value, pd.Series) and not templates.is_template(value):
        try:
            text = parse_validity(value, now)
        except ValidityError as exc:
            if exc.both_units:
                raise SpecError(str(exc)) from None
            return _n_array(str(value), n), _n_array(str(exc), n)  # pandera style: every row fails
        return (_n_array(text, n) if text else None), None
    if isinstance(value, pd.Series):
        value = _align(df, value, "validity")
        if not (pd.api.types.is_string_dtype(value.dtype) or value.dtype == object):
            # datetimes / timedeltas: once per distinct value
            codes, uniques = pd.factorize(value)
            out, err = [], []
            for u in uniques:
                try:
                    out.append(parse_validity(u, now))
                    err.append(None)
                except ValidityError as exc:
                    out.append(None)
                    err.append(str(exc))
            idx = pa.array(codes, mask=codes < 0)
            return pa.array(out, type=pa.string()).take(idx), pa.array(err, type=pa.string()).take(idx)
        raw = templates.to_arrow(value)
    else:
        raw = templates.render(df, value, what="validity")

    def one(v: str) -> tuple[str | None, str | None]:
        try:
            return parse_validity(v, now), None
        except ValidityError as exc:
            return v, str(exc)

    return _per_distinct(_blank_to_null(raw), one)


def _to(df: pd.DataFrame, to: Any) -> pa.Array:
    if isinstance(to, pd.Series):
        return templates.to_arrow(_align(df, to, "to"))
    if isinstance(to, str):
        if to in df.columns:
            return templates.to_arrow(df[to])
        if templates.is_template(to):
            return templates.render(df, to, what="to")
        return templates.to_arrow(df[templates.resolve_column(df, to, what="to")])
    raise SpecError(f"to: expected a column name or a Series, not {type(to).__name__}")


def _sender_check(v: str) -> tuple[str | None, str | None]:
    # mirrors the gateway: 16 digits for a number, 11 characters otherwise
    if not v.strip():
        return v, "sender: missing"
    digits = v.lstrip("+")
    if digits.isdigit():
        if len(digits) > _SENDER_DIGITS_MAX:
            return v, f"sender: {v!r} has more than {_SENDER_DIGITS_MAX} digits"
    elif len(v) > _SENDER_TEXT_MAX:
        return v, f"sender: {v!r} is longer than {_SENDER_TEXT_MAX} characters"
    return v, None


def _where(mask: np.ndarray, message: str | pa.Array) -> pa.Array:
    """``message`` on rows where ``mask`` is true, null elsewhere."""
    if isinstance(message, str):
        message = pa.scalar(message, pa.string())
    return pc.if_else(pa.array(mask), message, _NULL)


def _codes(arrays: list[pa.Array | np.ndarray], n: int) -> np.ndarray:
    """One int64 code per row for the tuple of values (nulls are a value too)."""
    key = np.zeros(n, dtype=np.int64)
    for arr in arrays:
        if arr is None:
            continue
        if isinstance(arr, pa.Array):
            # all-null and constant columns split nothing: skip their hashing
            if arr.null_count == len(arr) or fragments.is_constant(arr):
                continue
            codes, _ = _distinct(arr)
        else:
            arr = np.asarray(arr)
            if arr.dtype.kind in "iu" and arr.min(initial=0) >= -1:
                codes = arr.astype(np.int64)  # already codes (-1 for missing)
            else:
                codes, _ = pd.factorize(arr, use_na_sentinel=True)
            if codes.min(initial=0) == codes.max(initial=0):
                continue
        width = int(codes.max()) + 2 if len(codes) else 1
        if int(key.max(initial=0)) + 1 >= (1 << 62) // width:
            key = pd.factorize(key)[0].astype(np.int64)  # re-pack before the product overflows
        key = key * width + (codes + 1)
    return key


def _take_rows(values: pa.Array | np.ndarray | None, rows: np.ndarray) -> pa.Array | np.ndarray | None:
    """The given rows of a key column (``None`` stays ``None``)."""
    if values is None:
        return None
    if isinstance(values, pa.Array):
        return values.take(pa.array(rows))
    return np.asarray(values)[rows]


def _spec_constant(value: Any) -> bool:
    """Whether a field argument gives every row the same value (no template, no Series)."""
    if value is None:
        return True
    if isinstance(value, pd.Series | np.ndarray | pd.Index | pd.api.extensions.ExtensionArray):
        return False
    if isinstance(value, str):
        return not templates.is_template(value)
    if isinstance(value, list | tuple | dict):
        return not rich.template_strings(value if isinstance(value, list | tuple) else [value], "field")
    return True  # a number, a datetime, a timedelta


def _check_spec(df: pd.DataFrame, spec: dict[str, Any]) -> None:
    """Every placeholder must name a column: checked before any work."""
    for what, value in spec.items():
        if what in ("conversation", "suggestions"):
            for leaf in rich.template_strings(value, what):
                templates.check(df, leaf, what=what)
        elif isinstance(value, str) and what != "to":
            templates.check(df, value, what=what)


# --------------------------------------------------------------------------- build


def build(
    df: pd.DataFrame,
    *,
    to: str | pd.Series,
    body: Any = None,
    sender: Any = None,
    channels: Any = None,
    reference: Any = None,
    custom_grouping: Any = None,
    custom_grouping2: Any = None,
    custom_grouping3: Any = None,
    validity: Any = None,
    region: str | None = None,
    body_type: Any = "auto",
    min_parts: Any = None,
    max_parts: Any = None,
    dcs: Any = None,
    conversation: Any = None,
    suggestions: Any = None,
    duplicates: str = "keep",
    number_check: str = "valid",
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """Build a validated plan: one row per recipient with the normalised message fields.

    Every message field is a constant, a template over columns (``"Hi {first_name}"``;
    ``{{``/``}}`` for literal braces) or a Series aligned on the frame's index.

    Parameters
    ----------
    df : pandas.DataFrame
        The recipients; never modified.
    to : str or pandas.Series
        The column of phone numbers (or a template, or a Series).
    body : str or pandas.Series
        The message text (also the SMS fallback of rich content).
    sender : str or pandas.Series
        The ``from``: up to 11 characters, or a number of up to 16 digits.
    channels : list of str, str or pandas.Series, optional
        ``allowedChannels`` in fallback order: ``["WhatsApp", "SMS"]``, ``"WhatsApp,SMS"``,
        a template such as ``"{preferred_channel},SMS"``, or a Series of lists/strings.
    reference : str or pandas.Series, optional
        1 to 32 characters, used in status reports.
    custom_grouping, custom_grouping2, custom_grouping3 : str or pandas.Series, optional
        Tags of up to 100 characters.
    validity : str, datetime, timedelta or pandas.Series, optional
        ``"2h"``/``"30m"``, an absolute time with zone, a ``datetime`` or ``timedelta``.
    region : str, optional
        ISO region (``"NL"``) for national numbers such as ``0612345678``.
    body_type : {"auto", "text", "binary"} or None
        ``body.type``; ``None`` leaves it out.
    min_parts, max_parts : int, optional
        ``minimumNumberOfMessageParts`` / ``maximumNumberOfMessageParts``.
    dcs : int, optional
        Data coding scheme; 8 forces UCS-2 when ``body_type`` is ``"text"`` or ``"binary"``
        (not with ``"auto"`` or no type, as the gateway does).
    conversation : list of dict or pandas.Series, optional
        ``richContent.conversation`` items in the spec's JSON shape; strings are templates.
    suggestions : list of dict or pandas.Series, optional
        ``richContent.suggestions`` in the spec's JSON shape; strings are templates.
    duplicates : {"keep", "drop", "error"}
        Rows repeating an earlier row's number and content: send them all, mark the
        later ones invalid (302, naming the first row), or raise
        :class:`~cmframe.exceptions.DuplicateRecipientError`.
    number_check : {"valid", "possible", "strict"}
        ``"valid"``: known country code, possible length and one of the country's
        number-type patterns (vectorised); ``"possible"``: code and length only;
        ``"strict"``: also ``phonenumbers.is_valid_number`` per distinct number.
    now : datetime, optional
        Reference time for the 72-hour validity check (default: now).

    Returns
    -------
    pandas.DataFrame
        The caller's index and columns plus ``schema.PLAN_COLUMNS`` (a plan column
        replaces a caller column of the same name).

    Raises
    ------
    SpecError
        A call-level mistake (not a frame, a bad argument, mixed validity units).
    MissingColumnError
        A placeholder or ``to`` names a column the frame lacks.
    DuplicateRecipientError
        ``duplicates="error"`` and some recipients repeat.
    """
    if not isinstance(df, pd.DataFrame):
        raise SpecError(f"build needs a pandas DataFrame, not {type(df).__name__}")
    if number_check not in numbers.CHECKS:
        raise SpecError(f"number_check must be one of {numbers.CHECKS}, not {number_check!r}")
    if duplicates not in ("keep", "drop", "error"):
        raise SpecError(f"duplicates must be 'keep', 'drop' or 'error', not {duplicates!r}")
    if body is None:
        raise SpecError("body= is required (it is also the SMS fallback of rich content)")
    if sender is None:
        raise SpecError("sender= is required (the msg 'from')")
    if region is not None:
        if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise SpecError(f"region: {region!r} is not an ISO region phonenumbers knows (e.g. 'NL')")
        region = region.upper()
    if isinstance(to, str) and to not in df.columns and not templates.is_template(to):
        templates.resolve_column(df, to, what="to")
    if isinstance(to, str) and templates.is_template(to) and to not in df.columns:
        templates.check(df, to, what="to")
    spec = {
        "body": body,
        "sender": sender,
        "channels": channels,
        "reference": reference,
        "custom_grouping": custom_grouping,
        "custom_grouping2": custom_grouping2,
        "custom_grouping3": custom_grouping3,
        "validity": validity,
        "body_type": body_type,
        "min_parts": min_parts,
        "max_parts": max_parts,
        "dcs": dcs,
        "conversation": conversation,
        "suggestions": suggestions,
    }
    _check_spec(df, spec)
    const = {name: _spec_constant(value) for name, value in spec.items()}
    const["rich_content"] = const["conversation"] and const["suggestions"]
    now = now or dt.datetime.now(dt.UTC)
    n = len(df)

    # -- fields -------------------------------------------------------------------
    errors: dict[int, list[pa.Array]] = {301: [], 302: [], 304: [], 305: []}
    body_arr, body_codes, body_distinct = _body(df, body)
    sender_arr = _strings(df, sender, "sender")
    body_type_arr, err = _body_type(df, body_type)
    if err is not None:
        errors[305].append(err)
    channels_arr, err = _channels(df, channels)
    if err is not None:
        errors[305].append(err)
    optional = {}
    for name, limit in (
        ("reference", _REFERENCE_MAX),
        ("custom_grouping", _GROUPING_MAX),
        ("custom_grouping2", _GROUPING_MAX),
        ("custom_grouping3", _GROUPING_MAX),
    ):
        if const[name] and isinstance(spec[name], str) and n:
            # a constant: check its one value instead of every row
            arr = _strings(df, spec[name], name)
            text = arr[0].as_py()
            arr = arr if text else None
            long = np.full(n, len(text) > limit)
        else:
            arr = _blank_to_null(_strings(df, spec[name], name))
            long = None
            if arr is not None:
                long = pc.fill_null(pc.greater(pc.utf8_length(arr), limit), False).to_numpy(zero_copy_only=False)
        optional[name] = arr
        if long is not None:
            if long.any():
                errors[305].append(_where(long, f"{name}: longer than {limit} characters"))
    validity_arr, err = _validity(df, validity, now)
    if err is not None:
        errors[305].append(err)
    ints = {}
    for name in ("min_parts", "max_parts", "dcs"):
        ints[name], err = _ints(df, spec[name], name)
        if err is not None:
            errors[305].append(err)
    rich_arr, rich_errors = rich.rich_content(df, conversation, suggestions)
    for mask, message in rich_errors:
        errors[305].append(_where(mask, message))

    # -- numbers ------------------------------------------------------------------
    raw_to = _to(df, to)
    number_arr, number_code, _ = numbers.normalize_arrow(raw_to, region, check=number_check)
    if (number_code != 0).any():
        errors[302].append(numbers.reasons(raw_to, number_code, region))

    # -- sender and body ------------------------------------------------------------
    sender_arr = pc.fill_null(sender_arr, "")
    if const["sender"]:
        sender_problem = _sender_check(sender_arr[0].as_py())[1] if n else None
        if sender_problem:
            errors[301].append(_n_array(sender_problem, n))
    else:
        _, sender_err = _per_distinct(sender_arr, _sender_check)
        if sender_err.null_count < n:
            errors[301].append(sender_err)
    empty_body = pc.equal(body_distinct, "").to_numpy(zero_copy_only=False)[body_codes]
    if empty_body.any():
        errors[304].append(_where(empty_body, "body: empty"))

    # -- encoding and parts -----------------------------------------------------------
    dcs8 = ints["dcs"].to_numpy(dtype=np.float64, na_value=np.nan) == 8
    if dcs8.any() and body_type_arr is not None:
        # like the gateway: dcs=8 counts for an explicit "text"/"binary" body only;
        # "auto" and an absent type pick the encoding from the characters
        typed = pc.is_in(pc.fill_null(body_type_arr, ""), pa.array(["text", "binary"]))
        force = dcs8 & typed.to_numpy(zero_copy_only=False)
    else:
        force = False
    # Personalised bodies repeat a lot (a template over a few columns): estimate
    # once per distinct body when that saves work. The codes serve duplicates too.
    uniform = np.ndim(force) == 0 or bool(np.all(force == force[0]))
    if uniform and len(body_distinct) * 2 < n:
        f0 = bool(force) if np.ndim(force) == 0 else bool(force[0])
        per = estimate_arrow(body_distinct, f0)
        est = type(per)(
            per.gsm[body_codes], per.units[body_codes], per.parts[body_codes], per.ucs2_chars.take(pa.array(body_codes))
        )
    else:
        est = estimate_arrow(body_arr, force)
    parts = est.parts
    lo = ints["min_parts"].to_numpy(dtype=np.float64, na_value=np.nan)
    hi = ints["max_parts"].to_numpy(dtype=np.float64, na_value=np.nan)
    too_many = ~np.isnan(hi) & (parts > hi)
    if too_many.any():
        msg = fragments.join(
            "body: needs ",
            pa.array(parts.astype(str)),
            " parts, more than max_parts (",
            pa.array(np.nan_to_num(hi).astype(np.int64).astype(str)),
            ")",
        )
        errors[305].append(_where(too_many, msg))
    crossed = ~np.isnan(lo) & ~np.isnan(hi) & (lo > hi)
    if crossed.any():
        errors[305].append(_where(crossed, "min_parts: greater than max_parts"))

    # -- error code and reason: first failing check wins the code, all are listed ------
    code = np.zeros(n, dtype=np.int64)
    reasons: list[pa.Array] = []
    for c in (301, 302, 304, 305):
        for arr in errors[c]:
            failing = arr.is_valid().to_numpy(zero_copy_only=False)
            if c == 302:
                this = np.where(number_code == numbers.MISSING, 302, 303)
            else:
                this = np.full(n, c)
            code = np.where((code == 0) & failing, this, code)
            reasons.append(arr)

    # -- duplicates -----------------------------------------------------------------
    def varying(name: str, arr: Any) -> Any:
        # a field given as a constant splits nothing: leave it out of the key
        if const[name]:
            return None
        if isinstance(arr, pd.api.extensions.ExtensionArray):
            return arr.to_numpy(dtype=np.float64, na_value=np.nan)
        return arr

    content = [
        varying("sender", sender_arr),
        varying("body_type", body_type_arr),
        body_codes,
        varying("channels", channels_arr),
        *(varying(name, arr) for name, arr in optional.items()),
        varying("validity", validity_arr),
        *(varying(name, ints[name]) for name in ("min_parts", "max_parts", "dcs")),
        varying("rich_content", rich_arr),
    ]
    has_number = number_code == 0
    duplicate = np.zeros(n, dtype=bool)
    if has_number.sum() > 1:
        # numbers are "00" + at most 15 digits: an int64 is a cheaper key than the text
        number_key = pc.cast(pc.fill_null(number_arr, "0"), pa.int64()).to_numpy(zero_copy_only=False)
        # Only a row whose number repeats can repeat a message: find repeated numbers
        # first (numpy's int64 sort beats hashing a million keys), then key the
        # content of those rows only (usually few or none).
        ordered = np.sort(number_key[has_number])
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        rows = np.zeros(0, dtype=np.int64)
        if len(repeated):  # every occurrence of a repeated number, the first one too
            rows = np.flatnonzero(pd.Series(number_key).isin(repeated).to_numpy() & has_number)
        sub = [number_key[rows], *(_take_rows(x, rows) for x in content)]
        key = _codes(sub, len(rows))  # non-negative ints: used as codes directly
        dup = np.zeros(n, dtype=bool)
        dup[rows[pd.Series(key).duplicated().to_numpy()]] = True
        duplicate = dup
        if dup.any() and duplicates == "error":
            labels = list(df.index[dup][:20])
            more = "" if dup.sum() <= 20 else f" and {int(dup.sum()) - 20} more"
            raise DuplicateRecipientError(
                f"{int(dup.sum())} duplicate recipient rows (same number and message): {labels}{more}"
            )
        if dup.any() and duplicates == "drop":
            distinct_keys, first = np.unique(key, return_index=True)
            first_of = np.arange(n)  # read on the dropped rows only
            first_of[rows] = rows[first[np.searchsorted(distinct_keys, key)]]
            firsts = templates.to_arrow(pd.Series(np.asarray(df.index[first_of], dtype=object)))
            drop = dup & (code == 0)
            code = np.where(drop, 302, code)
            reasons.append(_where(drop, fragments.join("to: duplicate of row ", firsts)))

    error = None
    for arr in reasons:
        # fold by hand: binary_join's null_handling="skip" drops all-null rows (pyarrow 26)
        error = arr if error is None else pc.coalesce(fragments.join(error, "; ", arr), error, arr)

    # -- assemble ---------------------------------------------------------------------
    idx = df.index

    absent = fragments.nulls(n)  # one buffer shared by every absent column

    def s(arr: pa.Array | None, name: str | None = None) -> pd.Series:
        if arr is None or arr.null_count == len(arr):
            arr = absent
        elif name is not None and const[name] and n > 1 and arr.null_count == 0:
            arr = fragments.constant(arr[0].as_py(), n, large=True)  # no cast for pandas
        return templates.to_series(arr, idx)

    def num(values: Any) -> pd.Series:
        # the arrays are ours: wrap them (pandas 3 would copy by default)
        return pd.Series(values, index=idx, copy=False)

    encoding = fragments.fixed_width(["gsm7", "ucs2"], (~est.gsm).astype(np.int64))

    columns: dict[str, Any] = {
        "number": s(number_arr),
        "sender": s(sender_arr, "sender"),
        "body": s(body_arr),
        "body_type": s(body_type_arr, "body_type"),
        "channels": s(channels_arr, "channels"),
        "reference": s(optional["reference"], "reference"),
        "custom_grouping": s(optional["custom_grouping"], "custom_grouping"),
        "custom_grouping2": s(optional["custom_grouping2"], "custom_grouping2"),
        "custom_grouping3": s(optional["custom_grouping3"], "custom_grouping3"),
        "validity": s(validity_arr, "validity"),
        "min_parts": num(ints["min_parts"]),
        "max_parts": num(ints["max_parts"]),
        "dcs": num(ints["dcs"]),
        "rich_content": s(rich_arr, "rich_content"),
        "encoding": s(encoding),
        "body_length": num(est.units.astype(np.int64, copy=False)),
        "parts_estimate": num(est.parts.astype(np.int64, copy=False)),
        "ucs2_chars": s(est.ucs2_chars),
        "duplicate": num(duplicate),
        "error_code": num(pd.arrays.IntegerArray(code, code == 0)),
        "error": s(error),
    }
    assert tuple(columns) == PLAN_COLUMNS
    kept = df.drop(columns=[c for c in PLAN_COLUMNS if c in df.columns])
    added = pd.DataFrame(columns, index=idx, copy=False)
    return pd.concat([kept, added], axis=1) if len(kept.columns) else added


# --------------------------------------------------------------------------- layout


def _check_plan(plan: pd.DataFrame, chunk_size: int) -> None:
    if not isinstance(plan, pd.DataFrame):
        raise PlanError(f"expected a plan DataFrame, not {type(plan).__name__}")
    missing = [c for c in PLAN_COLUMNS if c not in plan.columns]
    if missing:
        raise PlanError(f"not a plan (build one with df.cm.build): missing columns {missing}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise SpecError(f"chunk_size must be an integer, not {chunk_size!r}")
    if not 1 <= chunk_size <= MAX_MSG_PER_REQUEST:
        raise SpecError(f"chunk_size must be between 1 and {MAX_MSG_PER_REQUEST}, not {chunk_size}")


def _plan_column(plan: pd.DataFrame, col: str, rows: np.ndarray | None = None) -> pa.Array:
    """A plan column as Arrow text, for the given rows (``None``: all, in order).

    pandas keeps Arrow-backed text as ``large_string``: that array is used as it
    is, since the JSON fragments work on either width and a cast costs a pass.
    """
    values = plan[col]
    arr = None
    if not values.notna().any():  # an absent field (often a whole Int64 column): no cast
        arr = fragments.nulls(len(values))
    elif isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        arr = pa.array(values.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not (pa.types.is_large_string(arr.type) or pa.types.is_string(arr.type)):
            arr = None
    if arr is None:
        arr = templates.to_arrow(values)
    return arr if rows is None else arr.take(pa.array(rows))


def _all_rows(plan: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """``None`` when ``rows`` are all of the plan's rows in order (nothing to take)."""
    return None if len(rows) == len(plan) and (rows == np.arange(len(plan))).all() else rows


def _content_arrays(plan: pd.DataFrame, rows: np.ndarray) -> dict[str, pa.Array]:
    take = None if len(rows) == len(plan) else rows
    return {col: _plan_column(plan, col, take) for col in _CONTENT}


class _Layout:
    """Positions of the valid rows in (chunk, msg, to) order."""

    def __init__(self, plan: pd.DataFrame, chunk_size: int, merge: bool) -> None:
        _check_plan(plan, chunk_size)
        code = plan["error_code"]
        valid = ~np.asarray(code.notna(), dtype=bool)
        number_ok = np.asarray(plan["number"].notna(), dtype=bool)
        valid &= number_ok
        rows = np.flatnonzero(valid)
        m = len(rows)
        k = np.arange(m)
        if merge and m:
            content = _content_arrays(plan, rows)
            group = pd.factorize(_codes(list(content.values()), m))[0]  # first-appearance order
            order = np.argsort(group, kind="stable")
            rows, group = rows[order], group[order]
            new_msg = np.ones(m, dtype=bool)
            new_msg[1:] = group[1:] != group[:-1]
            new_msg |= k % chunk_size == 0
        else:
            new_msg = np.ones(m, dtype=bool)
        self.rows = rows
        self.chunk = k // chunk_size
        if merge:
            msg_no = np.cumsum(new_msg) - 1
            chunk_first_msg = msg_no[np.minimum(self.chunk * chunk_size, max(m - 1, 0))] if m else msg_no
            self.msg_index = msg_no - chunk_first_msg
            msg_start = np.maximum.accumulate(np.where(new_msg, k, 0)) if m else k
            self.to_index = k - msg_start
        else:  # one msg per row: the same numbers, without the running sums
            self.msg_index = k % chunk_size
            self.to_index = np.zeros(m, dtype=k.dtype)
        self.first = new_msg
        self.last = np.ones(m, dtype=bool)
        if m:
            self.last[:-1] = new_msg[1:]
        self.chunk_size = chunk_size


def layout(plan: pd.DataFrame, chunk_size: int = 1000, merge_identical: bool = False) -> pd.DataFrame:
    """Where each valid row of a plan goes in the requests.

    Parameters
    ----------
    plan : pandas.DataFrame
        A plan from :func:`build`.
    chunk_size : int
        At most this many recipients (and so ``msg`` objects) per request, 1 to 1000.
    merge_identical : bool
        Put rows with identical message content in one ``msg`` with several ``to``.

    Returns
    -------
    pandas.DataFrame
        Indexed like the plan, columns ``chunk``, ``msg_index``, ``to_index``
        (Int64; ``<NA>`` for rows that are not sent).
    """
    lay = _Layout(plan, chunk_size, merge_identical)
    n = len(plan)
    out = {}
    for name, values in zip(LAYOUT_COLUMNS, (lay.chunk, lay.msg_index, lay.to_index), strict=True):
        col = np.zeros(n, dtype=np.int64)
        mask = np.ones(n, dtype=bool)
        col[lay.rows] = values
        mask[lay.rows] = False
        out[name] = pd.arrays.IntegerArray(col, mask)
    return pd.DataFrame(out, index=plan.index)


def _json_value(col: str, arr: pa.Array) -> pa.Array:
    """The JSON text of a column's values (nulls stay null)."""
    if col in ("min_parts", "max_parts", "dcs", "rich_content"):
        return arr  # integers as text, and rich content is JSON already
    if col == "channels":
        codes, distinct = _distinct(arr)
        lists = pa.array([orjson.dumps(v.split(",")).decode() for v in distinct], type=pa.string())
        return lists.take(pa.array(codes, mask=codes < 0))
    return fragments.quote(arr)


class _Pieces:
    """Literal text and per-row arrays, joined element-wise at the end.

    Adjacent literals are merged, so constant fields cost nothing per row.
    """

    def __init__(self) -> None:
        self.items: list[str | pa.Array] = []

    def add(self, item: str | pa.Array) -> None:
        if isinstance(item, str):
            if self.items and isinstance(self.items[-1], str):
                self.items[-1] += item
            elif item:
                self.items.append(item)
        else:
            self.items.append(item)

    def field(self, col: str, arr: pa.Array) -> None:
        """``"key":value,`` -- a literal when constant, nothing when absent."""
        if arr.null_count == len(arr):
            return
        key = _JSON_KEYS[col]
        if fragments.is_constant(arr):
            self.add(f'"{key}":' + _json_value(col, arr.slice(0, 1))[0].as_py() + ",")
            return
        frag = fragments.join(f'"{key}":', _json_value(col, arr), ",")
        self.add(pc.fill_null(frag, "") if frag.null_count else frag)

    def slice(self, offset: int, length: int) -> _Pieces:
        """The same pieces for rows ``offset:offset + length`` (arrays are sliced, not copied)."""
        out = _Pieces()
        out.items = [i if isinstance(i, str) else i.slice(offset, length) for i in self.items]
        return out

    def join(self, n: int) -> pa.Array:
        if not any(isinstance(i, pa.Array) for i in self.items):
            return fragments.constant("".join(self.items), n)
        return fragments.join(*self.items)


def _msg_pieces(plan: pd.DataFrame, rows: np.ndarray, pieces: _Pieces) -> None:
    """Add ``{"from":...,"body":{...},...,"to":[`` for each row (in ``rows`` order)."""
    take = _all_rows(plan, rows)

    def column(col: str) -> pa.Array:
        return _plan_column(plan, col, take)

    pieces.add("{")
    pieces.field("sender", column("sender"))
    pieces.add('"body":{')
    pieces.field("body_type", column("body_type"))
    body = pc.fill_null(column("body"), "")
    if fragments.is_constant(body):
        pieces.add('"content":' + orjson.dumps(body[0].as_py()).decode() + "},")
    else:
        pieces.add('"content":"')
        pieces.add(fragments.escape(body))
        pieces.add('"},')
    for col in _CONTENT[3:]:
        pieces.field(col, column(col))
    pieces.add('"to":[')


# The parameters request_bodies and requests share, written once for both docstrings.
_REQUEST_PARAMETERS = """Parameters
    ----------
    plan : pandas.DataFrame
        A plan from :func:`build`.
    token : str or ProductToken, optional
        Put in ``messages.authentication.productToken``; ``None`` leaves
        authentication out (send the token in the ``X-CM-PRODUCTTOKEN`` header).
    chunk_size : int
        At most this many recipients (and so ``msg`` objects) per request, 1 to 1000.
    merge_identical : bool
        Rows with identical message content share one ``msg`` with several ``to``."""


def _request_parameters(func: Callable[..., Any]) -> Callable[..., Any]:
    """Put the shared parameter section where a docstring says ``{parameters}``."""
    if func.__doc__:  # None under python -OO
        func.__doc__ = func.__doc__.replace("{parameters}", _REQUEST_PARAMETERS)
    return func


@_request_parameters
def request_bodies(
    plan: pd.DataFrame,
    token: str | ProductToken | None = None,
    chunk_size: int = 1000,
    merge_identical: bool = False,
) -> Iterator[tuple[int, bytes, np.ndarray]]:
    """Serialised request bodies of a plan's valid rows.

    {parameters}

    Yields
    ------
    chunk : int
        The request's number, from 0.
    body : bytes
        The JSON request body.
    rows : numpy.ndarray
        The plan positions (``iloc``) of the request's rows, in (msg, to) order.
    """
    lay = _Layout(plan, chunk_size, merge_identical)
    m = len(lay.rows)
    if m == 0:
        return
    auth = ""
    if token is not None:
        secret = ProductToken(token).reveal()
        auth = '"authentication":{"productToken":' + orjson.dumps(secret).decode() + "},"
    prefix = ('{"messages":{' + auth + '"msg":[').encode()
    suffix = b"]}}"

    numbers_arr = fragments.escape(_plan_column(plan, "number", _all_rows(plan, lay.rows)))
    pieces = _Pieces()
    if lay.first.all():
        # one msg per row: a single element-wise join builds every row's text
        _msg_pieces(plan, lay.rows, pieces)
        pieces.add('{"number":"')
        pieces.add(numbers_arr)
        pieces.add('"}]},')
    else:
        heads = _Pieces()
        _msg_pieces(plan, lay.rows, heads)
        head = heads.join(m)
        opening = pc.if_else(pa.array(lay.first), head, pa.scalar(",", head.type))
        closing = pc.if_else(pa.array(lay.last), pa.scalar("]},", pa.string()), pa.scalar("", pa.string()))
        for item in (opening, '{"number":"', numbers_arr, '"}', closing):
            pieces.add(item)
    # Join a block of whole chunks at a time: the text of a million rows is a few
    # hundred MB, and blocks of ~64k rows reuse the same memory instead.
    block = max(1, _BLOCK_ROWS // chunk_size) * chunk_size
    for b0 in range(0, m, block):
        b1 = min(b0 + block, m)
        starts, data = fragments.byte_view(pieces.slice(b0, b1 - b0).join(b1 - b0))
        for c0 in range(b0, b1, chunk_size):
            c1 = min(c0 + chunk_size, b1)
            # every chunk ends a msg, so its text ends with "]},": drop that last comma
            text = data[starts[c0 - b0] : starts[c1 - b0] - 1]
            yield int(lay.chunk[c0]), b"".join((prefix, text, suffix)), lay.rows[c0:c1].copy()


@_request_parameters
def requests(
    plan: pd.DataFrame,
    token: str | ProductToken | None = None,
    chunk_size: int = 1000,
    merge_identical: bool = False,
) -> Iterator[dict[str, Any]]:
    """Request documents of a plan, in the spec's exact JSON shape.

    {parameters}

    Yields
    ------
    dict
        ``{"messages": {"authentication": {"productToken": ...}, "msg": [...]}}``.
    """
    for _, body, _ in request_bodies(plan, token, chunk_size, merge_identical):
        yield orjson.loads(body)


make_callable(__name__, 'build')
