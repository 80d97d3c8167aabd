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
    pieces = parse(template, what=what)
    n = len(df)
    if all(p.field is None for p in pieces):
        return constant("".join(p.literal for p in pieces), n)
    columns: dict[tuple, pa.Array] = {}
    parts: list[pa.Array | str] = []
    for p in pieces:
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
    if len(parts) == 1 and not isinstance(parts[0], str):
        return parts[0]  # "{segment}": missing stays missing
    arrays = [pc.fill_null(x, "") if isinstance(x, pa.Array) and x.null_count else x for x in parts]
    arrays = [pa.scalar(x, pa.string()) if isinstance(x, str) else x for x in arrays]
    # binary_join_element_wise: the last argument is the separator
    return pc.binary_join_element_wise(*arrays, "")
