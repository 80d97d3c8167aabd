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

__all__ = [
    "byte_view",
    "constant",
    "fixed_width",
    "nulls",
    "needs_escape",
    "escape",
    "quote",
    "join",
    "is_constant",
]

def byte_view(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, data)``: per-row byte offsets (n + 1, from 0) and the UTF-8 bytes."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset : arr.offset + n + 1]
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
    # one pass each, straight in the target width: arange(...) * len would be two
    offsets = np.arange(0, (n + 1) * len(raw), len(raw), dtype=width) if raw else np.zeros(n + 1, width)
    data = np.frombuffer(raw * n, dtype=np.uint8) if raw else np.zeros(0, np.uint8)
    kind = pa.large_string() if large else pa.string()
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


_SCAN_BLOCK = 1 << 18  # bytes per step of the "any escape at all?" scan


def _any_special(data: np.ndarray) -> bool:
    """Whether any byte is a control character, a quote or a backslash."""
    # Block by block: the comparison temporaries stay small and hot in cache
    # instead of allocating (and page-faulting) two buffers as large as the text.
    for i in range(0, len(data), _SCAN_BLOCK):
        block = data[i : i + _SCAN_BLOCK]
        lo, hi = block.min(), block.max()
        if lo > 0x22 and hi < 0x5C:
            continue  # digits, capitals and most punctuation: nothing to look for
        if lo < 0x20 or (block == 0x22).any() or (block == 0x5C).any():
            return True
    return False


def fixed_width(texts: list[str], codes: np.ndarray) -> pa.Array:
    """``texts[codes]`` as a ``large_string`` array, for texts of one byte length.

    Equal widths make the offsets a range and the data one numpy gather: much
    cheaper than Arrow's per-row ``take`` or ``if_else`` over a million rows.
    """
    raw = [t.encode() for t in texts]
    width = len(raw[0])
    if any(len(r) != width for r in raw):
        raise ValueError("fixed_width: the texts differ in byte length")
    n = len(codes)
    if width:
        # each text as one opaque item: a 1-D gather, not a 2-D fancy index
        table = np.frombuffer(b"".join(raw), dtype=np.dtype((np.void, width)))
        data = table.take(codes).view(np.uint8)
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    else:
        data, offsets = np.zeros(0, np.uint8), np.zeros(n + 1, np.int64)
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def nulls(n: int) -> pa.Array:
    """``n`` nulls as ``large_string``, on zeroed buffers the OS hands out lazily."""
    # pa.nulls fills its buffers; np.zeros maps fresh zero pages that cost nothing until read
    validity = np.zeros((n + 7) // 8, dtype=np.uint8)
    offsets = np.zeros(n + 1, dtype=np.int64)
    return pa.Array.from_buffers(
        pa.large_string(), n, [pa.py_buffer(validity), pa.py_buffer(offsets), pa.py_buffer(b"")], null_count=n
    )


def needs_escape(arr: pa.Array) -> np.ndarray:
    """Per row: whether the JSON form of the string needs escapes."""
    starts, data = byte_view(arr)
    n = len(starts) - 1
    if not _any_special(data):
        return np.zeros(n, dtype=bool)  # the usual case: one cheap scan, no per-row sums
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
    return pc.if_else(pa.array(mask), fixed.take(pa.array(full)).cast(arr.type), arr)


def quote(arr: pa.Array) -> pa.Array:
    """JSON string literals (``"..."``) for every value; nulls stay null."""
    return join('"', escape(arr), '"')


def is_constant(arr: pa.Array) -> bool:
    """True when every value is equal and non-null (so a scalar can stand in)."""
    if len(arr) == 0 or arr.null_count:
        return False
    first = arr[0]
    if arr[len(arr) // 2] != first or arr[len(arr) - 1] != first:
        return False  # a varying column usually shows it here: skip the full pass
    return bool(pc.all(pc.equal(arr, first)).as_py())


def join(*parts: pa.Array | str | pa.Scalar) -> pa.Array:
    """Concatenate arrays and literal strings element-wise; a null part makes a null row.

    The result is ``large_string`` when any array part is (pandas stores text so:
    keeping it spares a cast of each column), else ``string``.
    """
    large = any(isinstance(p, pa.Array) and pa.types.is_large_string(p.type) for p in parts)
    kind = pa.large_string() if large else pa.string()
    items = [
        pa.scalar(p, kind) if isinstance(p, str) else p.cast(kind) if p.type != kind else p for p in parts
    ]
    return pc.binary_join_element_wise(*items, pa.scalar("", kind))
