"""JSON text built column-wise: quote and join whole Arrow string arrays.

Request bodies are assembled from per-row JSON fragments rather than by
serialising one dict per row. Quoting a string for JSON only needs work when it
holds a quote, a backslash or a control character; a byte-level pass finds
those rows, ``orjson`` quotes them once per distinct value, and every other row
is wrapped in quotes by one Arrow kernel.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["byte_view", "needs_escape", "quote", "join", "is_constant"]

# bytes that JSON strings must escape: control characters, '"' and '\'
_ESCAPE = np.zeros(256, dtype=np.uint8)
_ESCAPE[:0x20] = 1
_ESCAPE[ord('"')] = 1
_ESCAPE[ord("\\")] = 1


def byte_view(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, data)``: per-row byte offsets (n + 1, from 0) and the UTF-8 bytes."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    buf = arr.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    return (offsets - offsets[0]).astype(np.int64), data


def _row_any(table: np.ndarray, arr: pa.Array) -> np.ndarray:
    """Per row: does any byte hit ``table``? (vectorised with ``reduceat``)."""
    starts, data = byte_view(arr)
    n = len(starts) - 1
    out = np.zeros(n, dtype=bool)
    if n == 0 or len(data) == 0:
        return out
    lengths = starts[1:] - starts[:-1]
    nonempty = np.flatnonzero(lengths > 0)
    if len(nonempty):
        hits = table[data]
        if not hits.any():
            return out
        out[nonempty] = np.add.reduceat(hits, starts[:-1][nonempty], dtype=np.int32) > 0
    return out


def needs_escape(arr: pa.Array) -> np.ndarray:
    """Per row: whether the JSON form of the string needs escapes."""
    return _row_any(_ESCAPE, arr)


def quote(arr: pa.Array) -> pa.Array:
    """JSON string literals (``"..."``) for every value; nulls stay null."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    special = np.flatnonzero(needs_escape(arr))
    if len(special) == 0:
        return quoted
    sub = arr.take(pa.array(special))
    codes, uniques = pd.factorize(np.asarray(sub.to_numpy(zero_copy_only=False), dtype=object))
    texts = pa.array([orjson.dumps(u).decode() for u in uniques], type=pa.string())
    fixed = texts.take(pa.array(codes, mask=codes < 0))
    mask = np.zeros(len(arr), dtype=bool)
    mask[special] = True
    # scatter the re-quoted rows back over the fast ones
    full = np.zeros(len(arr), dtype=np.int64)
    full[special] = np.arange(len(special))
    return pc.if_else(pa.array(mask), fixed.take(pa.array(full)), quoted)


def is_constant(arr: pa.Array) -> bool:
    """True when every value is equal and non-null (so a scalar can stand in)."""
    if len(arr) == 0 or arr.null_count:
        return False
    first = arr[0]
    return bool(pc.all(pc.equal(arr, first)).as_py())


def join(*parts: pa.Array | str | pa.Scalar) -> pa.Array:
    """Concatenate arrays and literal strings element-wise; a null part makes a null row."""
    items = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*items, "")
