"""Column templates: ``"Hi {first_name}"`` rendered for every row at once.

A template is a ``str.format``-style string whose placeholders name columns of
the frame. ``{{`` and ``}}`` stand for literal braces. A placeholder may carry a
conversion or a format spec (``{amount:.2f}``, ``{name!r}``); those are applied
once per distinct value of the column. Rendering itself is vectorised: the
literal pieces and the column values are joined with one Arrow kernel.

Missing values render as an empty string, except in a template that is exactly
one placeholder (``"{segment}"``): there a missing value stays missing, so that
an optional field is simply absent for that row.
"""

from __future__ import annotations

import string
from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .exceptions import MissingColumnError, SpecError
from .fragments import constant

__all__ = [
    "Piece",
    "parse",
    "fields",
    "is_template",
    "resolve_column",
    "check",
    "render",
    "render_distinct",
    "distinct_codes",
    "to_arrow",
    "to_series",
]

_FORMATTER = string.Formatter()
_STRING_DTYPE = pd.StringDtype("pyarrow")


class Piece(NamedTuple):
    """One piece of a parsed template: literal text, then an optional placeholder."""

    literal: str
    field: str | None
    conversion: str | None
    format_spec: str


def parse(template: str, *, what: str = "template") -> list[Piece]:
    """Split a template into literal text and placeholders.

    Parameters
    ----------
    template : str
        The template, e.g. ``"Hi {first_name}"``; ``{{``/``}}`` escape braces.
    what : str
        The argument name, used in error messages.

    Returns
    -------
    list of Piece

    Raises
    ------
    SpecError
        Unbalanced braces or an empty placeholder ``{}``.
    """
    try:
        raw = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise SpecError(f"{what}: malformed template {template!r}: {exc}") from None
    pieces = []
    for literal, field, spec, conversion in raw:
        if field is not None and field.strip() == "":
            raise SpecError(f"{what}: empty placeholder '{{}}' in {template!r}; name a column")
        if spec and ("{" in spec or "}" in spec):
            raise SpecError(f"{what}: nested placeholders are not supported in {template!r}")
        pieces.append(Piece(literal, field, conversion or None, spec or ""))
    return pieces


def fields(template: str) -> list[str]:
    """Return the column names a template refers to, in order, without repeats."""
    return list(dict.fromkeys(p.field for p in parse(template) if p.field is not None))


def is_template(value: object) -> bool:
    """True when ``value`` is a string with at least one placeholder."""
    return isinstance(value, str) and bool(fields(value))


def resolve_column(df: pd.DataFrame, name: str, *, what: str) -> Hashable:
    """Find the column a placeholder names (matching non-string labels by ``str``).

    Raises
    ------
    MissingColumnError
        No column has that name.
    """
    if name in df.columns:
        return name
    for col in df.columns:
        if str(col) == name:
            return col
    shown = ", ".join(map(repr, list(df.columns)[:20]))
    raise MissingColumnError(f"{what}: no column named {name!r} (columns: {shown})")


def check(df: pd.DataFrame, template: str, *, what: str = "template") -> None:
    """Raise :class:`MissingColumnError` when a placeholder names no column."""
    for name in fields(template):
        resolve_column(df, name, what=what)


def to_arrow(values: pd.Series | Sequence | np.ndarray) -> pa.Array:
    """Values as one Arrow string array (nulls kept), whatever their dtype.

    Strings pass through without copying; integers are cast by Arrow; anything
    else goes through ``str`` once per distinct value.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_string(values.type):
            return values
        if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
            return values.cast(pa.string())
        values = pd.Series(values.to_pandas())
    if not isinstance(values, pd.Series):
        values = pd.Series(list(values) if not isinstance(values, np.ndarray) else values)
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) or (
        isinstance(dtype, pd.ArrowDtype) and pa.types.is_string(dtype.pyarrow_dtype)
    ):
        try:
            arr = pa.array(values.array)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arr = None
        if arr is not None:
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if not pa.types.is_string(arr.type):
                arr = arr.cast(pa.string())
            return arr
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        arr = pa.array(values.array if hasattr(values.array, "__arrow_array__") else values.to_numpy())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_boolean(arr.type):
            # str(True) is "True"; Arrow would say "true"
            return pc.if_else(arr, "True", "False")
        return arr.cast(pa.string())
    # object / float / datetime / category: str() once per distinct value
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = pa.array([_text(u) for u in np.asarray(uniques, dtype=object)], type=pa.string())
    idx = pa.array(codes, mask=codes < 0)
    return texts.take(idx)


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a float column of ids (NaN present) renders "42", not "42.0"
    return str(value)


def to_series(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """An Arrow string array as a pandas ``string`` Series (no copy of the text)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        # pandas stores large_string; casting the Array here is much cheaper than
        # letting pandas cast a ChunkedArray (which goes through the thread pool)
        arr = arr.cast(pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([arr])), index=index, copy=False)


def _formatted(conversion: str | None, spec: str, source: pd.Series, what: str) -> pa.Array:
    """Apply a conversion/format spec once per distinct value of the source column."""
    codes, uniques = pd.factorize(source, use_na_sentinel=True)
    out = []
    for u in np.asarray(uniques, dtype=object):
        v = u
        if conversion == "r":
            v = repr(v)
        elif conversion == "s":
            v = str(v)
        elif conversion == "a":
            v = ascii(v)
        try:
            out.append(format(v, spec))
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{what}: cannot format {u!r} with {spec!r}: {exc}") from None
    texts = pa.array(out, type=pa.string())
    return texts.take(pa.array(codes, mask=codes < 0))


def _pieces(df: pd.DataFrame, template: str, what: str) -> list[pa.Array | str]:
    """The template's literals and one Arrow array per placeholder (each column read once)."""
    columns: dict[tuple, pa.Array] = {}
    parts: list[pa.Array | str] = []
    for p in parse(template, what=what):
        if p.literal:
            parts.append(p.literal)
        if p.field is None:
            continue
        key = (p.field, p.conversion, p.format_spec)
        if key not in columns:
            col = df[resolve_column(df, p.field, what=what)]
            if isinstance(col, pd.DataFrame):
                raise SpecError(f"{what}: column {p.field!r} is not unique")
            if p.conversion or p.format_spec:
                columns[key] = _formatted(p.conversion, p.format_spec, col, what)
            else:
                columns[key] = to_arrow(col)
        parts.append(columns[key])
    return parts


def _join(parts: list[pa.Array | str]) -> pa.Array:
    """Element-wise concatenation; a missing value counts as ``""``."""
    arrays = [pc.fill_null(x, "") if isinstance(x, pa.Array) and x.null_count else x for x in parts]
    arrays = [pa.scalar(x, pa.string()) if isinstance(x, str) else x for x in arrays]
    # binary_join_element_wise: the last argument is the separator
    return pc.binary_join_element_wise(*arrays, "")


def distinct_codes(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Dictionary-encode an Arrow array.

    Returns
    -------
    codes : numpy.ndarray of int64
        Per row, the position of its value in ``values`` (``-1`` for null).
    values : pyarrow.Array
        The distinct non-null values, in order of first appearance.
    """
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return codes, enc.dictionary


def _combinations(parts: list[pa.Array | str], n: int) -> tuple[np.ndarray, pa.Array] | None:
    """``(codes, texts)`` rendering once per distinct combination of the placeholders'
    values, or ``None`` when the combinations are too many for that to pay off.

    A personalised body usually names a few low-cardinality columns (first name,
    city): joining a few dozen strings and one ``take`` beat joining a million.
    """
    arrays = list({id(x): x for x in parts if not isinstance(x, str)}.values())
    key = np.zeros(n, dtype=np.int64)
    width = 1
    dictionaries = []
    for arr in arrays:
        codes, values = distinct_codes(arr)
        size = len(values) + 1  # + 1: null is a value of its own (rendered "")
        width *= size
        if width * 2 > n:  # too many combinations: give up before more work
            return None
        key = key * size + (codes + 1)
        dictionaries.append((values, size))
    used = np.flatnonzero(np.bincount(key, minlength=width))
    # the values of each array for each combination that occurs (code 0: null)
    pick, rest = {}, used
    for arr, (dictionary, size) in zip(reversed(arrays), reversed(dictionaries), strict=True):
        idx = rest % size - 1
        rest = rest // size
        pick[id(arr)] = dictionary.take(pa.array(idx, mask=idx < 0))
    texts = _join([x if isinstance(x, str) else pick[id(x)] for x in parts])
    # different combinations may still give the same text ("{a}{b}"): one code per text
    text_codes, uniques = pd.factorize(np.asarray(texts.to_numpy(zero_copy_only=False), dtype=object))
    remap = np.zeros(width, dtype=np.int64)
    remap[used] = text_codes
    return remap[key], pa.array(uniques, type=pa.string())


def render_distinct(df: pd.DataFrame, template: str, *, what: str = "template") -> tuple[np.ndarray, pa.Array]:
    """Render a template as distinct texts and one code per row.

    Parameters
    ----------
    df, template, what
        As for :func:`render`.

    Returns
    -------
    codes : numpy.ndarray of int64
        Per row, the position of its text in ``texts`` (``-1`` for a missing value,
        which only a template of exactly one placeholder gives).
    texts : pyarrow.StringArray
        The distinct rendered texts: ``texts.take(codes)`` is :func:`render`.
    """
    n = len(df)
    parts = _pieces(df, template, what)
    if not any(isinstance(x, pa.Array) for x in parts):
        return np.zeros(n, dtype=np.int64), pa.array(["".join(parts)], type=pa.string())
    if len(parts) > 1:
        coded = _combinations(parts, n)
        if coded is not None:
            return coded
    arr = parts[0] if len(parts) == 1 else _join(parts)
    return distinct_codes(arr)


def render(df: pd.DataFrame, template: str, *, what: str = "template") -> pa.Array:
    """Render a template for every row.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame whose columns the placeholders name.
    template : str
        The template.
    what : str
        The argument name, used in error messages.

    Returns
    -------
    pyarrow.StringArray
        One value per row (use :func:`to_series` for a pandas Series). Missing
        values render as ``""`` unless the template is a single placeholder.

    Raises
    ------
    MissingColumnError
        A placeholder names no column.
    """
    n = len(df)
    parts = _pieces(df, template, what)
    if not any(isinstance(x, pa.Array) for x in parts):
        return constant("".join(parts), n)
    if len(parts) == 1:
        return parts[0]  # "{segment}": missing stays missing
    coded = _combinations(parts, n)
    if coded is not None:
        codes, texts = coded
        return texts.take(pa.array(codes))
    return _join(parts)
