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

__all__ = ["byte_view", "constant", "needs_escape", "escape", "quote", "join", "is_constant"]

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


def constant(text: str, n: int, *, large: bool = False) -> pa.Array:
    """A string array of ``n`` copies of ``text``, built straight from buffers.

    ``large=True`` gives ``large_string`` (what pandas stores), sparing a cast.
    """
    raw = text.encode()
    width = np.int64 if large else np.int32
    if not large and len(raw) * n >= 2**31:
        return constant(text, n, large=True).cast(pa.string())  # beyond int32 offsets
    offsets = np.arange(n + 1, dtype=np.int64) * len(raw)
    data = np.frombuffer(raw * n, dtype=np.uint8) if raw else np.zeros(0, np.uint8)
    kind = pa.large_string() if large else pa.string()
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets.astype(width)), pa.py_buffer(data)])


def needs_escape(arr: pa.Array) -> np.ndarray:
    """Per row: whether the JSON form of the string needs escapes."""
    starts, data = byte_view(arr)
    n = len(starts) - 1
    if len(data) == 0 or (data.min() >= 0x20 and not (data == 0x22).any() and not (data == 0x5C).any()):
        return np.zeros(n, dtype=bool)  # the usual case: a few cheap passes, no per-row sums
    hits = (data < 0x20) | (data == 0x22) | (data == 0x5C)  # control, '"' and '\\'
    out = np.zeros(n, dtype=bool)
    lengths = starts[1:] - starts[:-1]
    nonempty = np.flatnonzero(lengths > 0)
    out[nonempty] = np.add.reduceat(hits, starts[:-1][nonempty], dtype=np.int32) > 0
    return out


def escape(arr: pa.Array) -> pa.Array:
    """The inside of JSON string literals (escaped, without the quotes); nulls stay null.

    Rows that need no escaping are returned as they are (no copy when none does).
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    special = np.flatnonzero(needs_escape(arr))
    if len(special) == 0:
        return arr
    sub = arr.take(pa.array(special))
    codes, uniques = pd.factorize(np.asarray(sub.to_numpy(zero_copy_only=False), dtype=object))
    texts = pa.array([orjson.dumps(u).decode()[1:-1] for u in uniques], type=pa.string())
    fixed = texts.take(pa.array(codes, mask=codes < 0))
    mask = np.zeros(len(arr), dtype=bool)
    mask[special] = True
    full = np.zeros(len(arr), dtype=np.int64)
    full[special] = np.arange(len(special))
    return pc.if_else(pa.array(mask), fixed.take(pa.array(full)), arr)


def quote(arr: pa.Array) -> pa.Array:
    """JSON string literals (``"..."``) for every value; nulls stay null."""
    return pc.binary_join_element_wise('"', escape(arr), '"', "")


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
