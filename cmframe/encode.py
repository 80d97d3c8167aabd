"""SMS encoding and part estimates (GSM 03.38 7-bit and UCS-2).

The rules (``cm-api-facts.md``):

* GSM-7: 160 septets fit one part, 153 per part when concatenated. The
  extension characters ``^ { } \\ [ ~ ] | €`` and form feed take two septets
  (escape + char); an escape pair is never split across two parts.
* Anything outside GSM-7 switches an ``auto`` body to UCS-2: 70 UTF-16 code
  units in one part, 67 per part when concatenated. Characters outside the BMP
  count as two units; a surrogate pair is never split across two parts.

:func:`estimate` is vectorised: Arrow's compute kernels classify every body at
once, and only the rare bodies whose split needs character-level care (long
bodies with extension characters or non-BMP characters) go through
:func:`estimate_one`, once per distinct value.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .fragments import byte_view
from .templates import to_series

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Estimate",
    "estimate_one",
    "estimate",
    "estimate_arrow",
    "parts_for",
]

#: GSM 03.38 basic character set (the escape code 0x1B itself excluded).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters of the extension table: two septets each.
GSM7_EXTENSION = "^{}\\[~]|€\f"

_BASIC = frozenset(GSM7_BASIC)
_EXT = frozenset(GSM7_EXTENSION)

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Estimate(NamedTuple):
    """Encoding estimate of one body."""

    encoding: str  # "gsm7" or "ucs2"
    length: int  # septets (gsm7) or UTF-16 code units (ucs2)
    parts: int
    ucs2_chars: str  # the distinct characters that forced UCS-2, in order of appearance


def _split_parts(units: list[int], single: int, multi: int) -> int:
    """Count parts for a sequence of per-character unit widths (1 or 2)."""
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, used = 1, 0
    for width in units:
        if used + width > multi:  # an escape pair / surrogate pair never straddles
            parts += 1
            used = 0
        used += width
    return parts


@lru_cache(maxsize=65536)
def estimate_one(text: str, force_ucs2: bool = False) -> Estimate:
    """Estimate encoding, length and parts of one body.

    Parameters
    ----------
    text : str
        The message body.
    force_ucs2 : bool
        Treat the body as UCS-2 even when it fits GSM-7 (``dcs=8`` with a
        non-auto body type).

    Returns
    -------
    Estimate
    """
    if not force_ucs2:
        widths: list[int] = []
        ok = True
        for ch in text:
            if ch in _BASIC:
                widths.append(1)
            elif ch in _EXT:
                widths.append(2)
            else:
                ok = False
                break
        if ok:
            return Estimate("gsm7", sum(widths), _split_parts(widths, GSM7_SINGLE, GSM7_MULTI), "")
    widths = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    seen: dict[str, None] = {}
    if not force_ucs2:
        for ch in text:
            if ch not in _BASIC and ch not in _EXT:
                seen[ch] = None
    return Estimate("ucs2", sum(widths), _split_parts(widths, UCS2_SINGLE, UCS2_MULTI), "".join(seen))


def parts_for(length: np.ndarray, single: int, multi: int) -> np.ndarray:
    """Parts for bodies whose characters are all one unit wide (vectorised)."""
    length = np.asarray(length, dtype=np.int64)
    return np.where(length == 0, 0, np.where(length <= single, 1, -(-length // multi)))


def _re2_class(chars: str) -> str:
    return "".join(f"\\x{{{ord(c):04X}}}" for c in chars)


_NOT_GSM = f"[^{_re2_class(GSM7_BASIC + GSM7_EXTENSION)}]"
_EXT_RE = f"[{_re2_class(GSM7_EXTENSION)}]"
_GSM_RUN = f"[{_re2_class(GSM7_BASIC + GSM7_EXTENSION)}]+"
_ASTRAL_RE = "[\\x{10000}-\\x{10FFFF}]"


def _lut(chars: str, value: int) -> np.ndarray:
    table = np.zeros(256, dtype=np.uint8)
    for ch in chars:
        if ord(ch) < 128:
            table[ord(ch)] = value
    return table


# Per ASCII byte: septet width, and whether it is outside GSM-7 (any byte >= 0x80
# marks a non-ASCII body, which the regex pass then handles).
_ASCII_WIDTH = _lut(GSM7_BASIC, 1) + _lut(GSM7_EXTENSION, 2)
_ASCII_BAD = (_ASCII_WIDTH == 0).astype(np.uint8)


def _as_arrow(bodies: pd.Series | pa.Array) -> pa.StringArray:
    """The bodies as one Arrow string array with nulls as empty strings."""
    if isinstance(bodies, pa.Array | pa.ChunkedArray):
        arr = bodies
    else:
        try:
            arr = pa.array(bodies.array)
        except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
            arr = None
        if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = pa.array(bodies.astype("string").to_numpy(dtype=object, na_value=""), type=pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())  # pandas keeps large_string; the byte pass reads int32 offsets
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    return arr


def _bad_ascii(data: np.ndarray) -> np.ndarray:
    """Per byte: an ASCII byte outside GSM-7 (backtick, DEL, control characters but LF/CR/FF)."""
    return (data == 0x60) | (data == 0x7F) | ((data < 0x20) & (data != 0x0A) & (data != 0x0D) & (data != 0x0C))


class _Arrays(NamedTuple):
    gsm: np.ndarray
    units: np.ndarray
    parts: np.ndarray
    ucs2_chars: pa.Array


def estimate_arrow(arr: pa.Array, force_ucs2: np.ndarray | bool = False) -> _Arrays:
    """:func:`estimate` on an Arrow string array, returning arrays (no pandas).

    Returns
    -------
    tuple
        ``(gsm, units, parts, ucs2_chars)``: bool, int64, int64 numpy arrays
        and an Arrow string array.
    """
    arr = _as_arrow(arr)
    n = len(arr)
    force = np.broadcast_to(np.asarray(force_ucs2, dtype=bool), (n,))

    # Byte-level pass over the whole buffer: for ASCII bodies a byte is a
    # character, so a lookup table gives its septet width and per-row sums
    # (reduceat) give totals without touching Python objects.
    rel, data = byte_view(arr)
    starts = rel[:-1]
    length = rel[1:] - starts  # bytes; equal to characters for ASCII rows
    nonempty = np.flatnonzero(length > 0)
    ascii_units = np.zeros(n, dtype=np.int64)
    non_ascii = np.flatnonzero(~pc.string_is_ascii(arr).to_numpy(zero_copy_only=False))
    ascii_bad = np.zeros(n, dtype=bool)
    ascii_bad[non_ascii] = True  # handled below by the regex pass
    if len(nonempty):
        # Empty rows are left out of reduceat: each segment then ends at the
        # next non-empty row's start, and empty rows add nothing in between.
        ascii_units[nonempty] = np.add.reduceat(_ASCII_WIDTH[data], starts[nonempty], dtype=np.int32)
        bad_bytes = _bad_ascii(data)
        if bad_bytes.any():  # rare: skip the second reduceat when no byte needs it
            ascii_bad[nonempty] |= np.add.reduceat(bad_bytes, starts[nonempty], dtype=np.int32) > 0

    not_gsm = ascii_bad | force
    # ASCII rows: GSM-7 septets from the table, or one UTF-16 unit per byte.
    units = np.where(not_gsm, length, ascii_units)
    n_ext = np.where(not_gsm, 0, ascii_units - length)
    n_astral = np.zeros(n, dtype=np.int64)

    # Non-ASCII bodies (accents, emoji, Greek GSM letters): Arrow regex kernels.
    if len(non_ascii):
        sub = arr.take(pa.array(non_ascii))
        sub_len = pc.utf8_length(sub).to_numpy(zero_copy_only=False).astype(np.int64)
        sub_bad = pc.match_substring_regex(sub, _NOT_GSM).to_numpy(zero_copy_only=False)
        sub_bad = sub_bad | force[non_ascii]
        sub_ext = pc.count_substring_regex(sub, _EXT_RE).to_numpy(zero_copy_only=False)
        sub_astral = pc.count_substring_regex(sub, _ASTRAL_RE).to_numpy(zero_copy_only=False)
        not_gsm[non_ascii] = sub_bad
        n_ext[non_ascii] = np.where(sub_bad, 0, sub_ext)
        n_astral[non_ascii] = np.where(sub_bad, sub_astral, 0)
        length[non_ascii] = sub_len
        units[non_ascii] = np.where(sub_bad, sub_len + sub_astral, sub_len + sub_ext)

    gsm = ~not_gsm
    parts = np.where(gsm, parts_for(units, GSM7_SINGLE, GSM7_MULTI), parts_for(units, UCS2_SINGLE, UCS2_MULTI))

    # Bodies whose split depends on where the double-width characters sit:
    # character-level pass (rare: long bodies with extension or non-BMP chars),
    # cached per distinct text by estimate_one.
    careful = np.flatnonzero(
        (gsm & (n_ext > 0) & (units > GSM7_SINGLE)) | (~gsm & (n_astral > 0) & (units > UCS2_SINGLE))
    )
    if len(careful):
        texts = arr.take(pa.array(careful)).to_pylist()
        for pos, text, f in zip(careful, texts, force[careful], strict=True):
            est = estimate_one(text, bool(f))
            parts[pos] = est.parts
            units[pos] = est.length

    # The characters that forced UCS-2: strip every GSM-7 character with one
    # regex kernel, then dedupe what is left once per distinct leftover.
    natural = np.flatnonzero(~gsm & ~force)
    if len(natural):
        left = pc.replace_substring_regex(arr.take(pa.array(natural)), _GSM_RUN, "")
        codes, uniques = pd.factorize(np.asarray(left.to_numpy(zero_copy_only=False), dtype=object))
        deduped = pa.array(["".join(dict.fromkeys(u)) for u in uniques] + [""], type=pa.large_string())
        index = np.full(n, len(uniques), dtype=np.int64)  # "" for every other row
        index[natural] = np.where(codes < 0, len(uniques), codes)
        ucs2_chars = deduped.take(pa.array(index))
    else:
        ucs2_chars = pa.nulls(n, pa.large_string()).fill_null("") if n else pa.array([], pa.large_string())
    return _Arrays(gsm, units, parts, ucs2_chars)


def estimate(bodies: pd.Series, force_ucs2: pd.Series | np.ndarray | bool = False) -> pd.DataFrame:
    """Estimate encoding, length and parts for every body of a Series.

    Parameters
    ----------
    bodies : pandas.Series
        Message bodies; missing values count as empty.
    force_ucs2 : bool or array-like of bool
        Per row (or for all rows): treat the body as UCS-2.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``bodies``, with columns ``encoding`` (``"gsm7"``/``"ucs2"``),
        ``body_length`` (septets or UTF-16 units), ``parts_estimate`` and
        ``ucs2_chars`` (the characters that forced UCS-2; empty for GSM-7).
    """
    res = estimate_arrow(_as_arrow(bodies), np.asarray(force_ucs2, dtype=bool))
    encoding = pc.if_else(pa.array(res.gsm), pa.scalar("gsm7", pa.large_string()), pa.scalar("ucs2", pa.large_string()))
    return pd.DataFrame(
        {
            "encoding": to_series(encoding, bodies.index),
            "body_length": pd.Series(res.units, index=bodies.index),
            "parts_estimate": pd.Series(res.parts, index=bodies.index),
            "ucs2_chars": to_series(res.ucs2_chars, bodies.index),
        },
        index=bodies.index,
    )
