"""Phone numbers to CM's format: ``"00" + country code + national number``.

Two stages reach one answer:

1. **Vectorised** (Arrow kernels and byte-level numpy, no per-row Python):
   values made of digits, ``+``, spaces and ``-./()`` are cleaned (``(0)`` after
   a country code dropped), then ``+<digits>``, ``00<digits>`` and, with
   ``region=``, national numbers with that region's plain national prefix
   (``0612345678`` in NL) become E.164 digits.
2. **phonenumbers, once per distinct value**, for everything stage 1 could not
   place or did not accept (letters, odd prefixes, a national prefix kept after
   the country code, ...). Results are cached.

Both stages then apply one rule, vectorised: the country calling code must
exist, the national number must have a length ``phonenumbers`` calls possible,
and it must match one of the country's number-type patterns (mobile, fixed
line, toll free, ...) from ``phonenumbers``' metadata, one regex pass per
distinct country code. That is ``is_valid_number`` without its
region-by-leading-digits step. ``check="possible"`` keeps only the code and
length tests (the spec's own example ``00316012345678`` passes only that);
``check="strict"`` adds the exact ``phonenumbers.is_valid_number``, once per
distinct number.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from .fragments import byte_view
from .templates import to_arrow, to_series

__all__ = ["normalize", "normalize_arrow", "reasons", "CHECKS", "MISSING", "INVALID"]

#: Levels of number checking: code + length, + number-type patterns, + is_valid_number.
CHECKS: tuple[str, ...] = ("possible", "valid", "strict")

#: ``error_code`` of a row without a number (the gateway's "invalid To field").
MISSING = 302
#: ``error_code`` of a row whose number is not a phone number.
INVALID = 303

_LETTERS = re.compile(r"[A-Za-z]")
_JUNK = re.compile(r"\(0\)|[\s\-./()\[\]]")

# Byte classes for the stage-1 scan: 0 digit, 1 "+", 2 separator, 3 anything else.
_CLASS = np.full(256, 3, dtype=np.uint8)
_CLASS[ord("0") : ord("9") + 1] = 0
_CLASS[ord("+")] = 1
for _ch in " \t\r\n-./()[]":
    _CLASS[ord(_ch)] = 2

_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


@lru_cache(maxsize=1)
def _is_cc() -> np.ndarray:
    table = np.zeros(1000, dtype=bool)
    for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        if 0 < cc < 1000:
            table[cc] = True
    return table


@lru_cache(maxsize=1)
def _cc_by_prefix() -> tuple[np.ndarray, np.ndarray]:
    """``(code, code length)`` for each 3-digit prefix (``0, 0`` when none starts it)."""
    is_cc = _is_cc()
    cc = np.zeros(1000, dtype=np.int64)
    cc_len = np.zeros(1000, dtype=np.int64)
    for prefix in range(1000):
        for k, value in ((1, prefix // 100), (2, prefix // 10), (3, prefix)):
            if is_cc[value]:  # country codes are prefix-free: the first hit is the code
                cc[prefix], cc_len[prefix] = value, k
                break
    return cc, cc_len


@lru_cache(maxsize=4096)
def _possible(cc: int, length: int) -> bool:
    """Whether phonenumbers calls a national number of this length possible for the country."""
    if length < 2 or length > 17:
        return False
    num = phonenumbers.PhoneNumber(country_code=cc, national_number=int("1" * length))
    return phonenumbers.is_possible_number(num)


@lru_cache(maxsize=512)
def _plan_pattern(cc: int) -> str:
    """``^<cc>(?:...)$``: the number-type patterns of every region sharing the code."""
    patterns = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ()):
        if region == "001":
            md = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(cc)
        else:
            md = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if md is None:
            continue
        # the number types is_valid_number accepts, not the looser general pattern
        for kind in _TYPES:
            desc = getattr(md, kind, None)
            if desc is not None and desc.national_number_pattern:
                patterns.append(desc.national_number_pattern)
    if not patterns:
        return "^$"
    return f"^{cc}(?:" + "|".join(f"(?:{p})" for p in dict.fromkeys(patterns)) + ")$"


@lru_cache(maxsize=256)
def _national_prefix(region: str) -> tuple[int, str] | None:
    """``(country code, plain national prefix)`` of a region, when stage 1 can use it."""
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if md is None or not md.national_prefix or not md.national_prefix.isdigit():
        return None
    # a parsing rule beyond "strip the prefix" (carrier codes, ...) is left to phonenumbers
    if md.national_prefix_for_parsing and md.national_prefix_for_parsing != md.national_prefix:
        return None
    if md.national_prefix_transform_rule:
        return None
    return md.country_code, md.national_prefix


def _count(hits: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per row: how many of its bytes are flagged in ``hits`` (int32 reduceat: fast)."""
    n = len(starts) - 1
    pos = np.flatnonzero(hits)
    if len(pos) * 4 < len(hits):
        # sparse hits (a "+" per row at most): find their rows, skip a pass over every byte
        return np.bincount(np.searchsorted(starts, pos, side="right") - 1, minlength=n)[:n].astype(np.int64)
    out = np.zeros(n, dtype=np.int64)
    lengths = starts[1:] - starts[:-1]
    nonempty = np.flatnonzero(lengths > 0)
    if len(nonempty) and len(hits):
        out[nonempty] = np.add.reduceat(hits, starts[:-1][nonempty], dtype=np.int32)
    return out


def _classes(starts: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per row: counts of ``+`` and of other non-separator non-digit bytes; and the
    per-byte class (``None`` when every byte is a digit)."""
    n = len(starts) - 1
    nondigit = (data - np.uint8(48)) > 9  # uint8 wraps: one pass, no table
    if not nondigit.any():
        zero = np.zeros(n, dtype=np.int64)
        return zero, zero, None
    cls = _CLASS[data]
    return _count(cls == 1, starts), _count(cls == 3, starts), cls


def _strip_separators(starts: np.ndarray, data: np.ndarray, cls: np.ndarray) -> pa.Array:
    """Every row without its separators (and without a ``(0)``), by byte compaction."""
    drop = cls == 2
    if len(data) >= 3:  # "+31 (0)6 ...": the 0 goes with its brackets
        drop[1:-1] |= (data[:-2] == 0x28) & (data[1:-1] == 0x30) & (data[2:] == 0x29)
    # a row's new start: its old one less the bytes dropped before it (a search in
    # the dropped positions; a running count per byte would be 8 bytes per byte)
    offsets = (starts - np.searchsorted(np.flatnonzero(drop), starts)).astype(np.int32)
    return pa.StringArray.from_buffers(len(starts) - 1, pa.py_buffer(offsets), pa.py_buffer(data[~drop]))


def _byte_at(starts: np.ndarray, data: np.ndarray, k: int) -> np.ndarray:
    """Per row: the k-th byte, or 0 when the row is shorter."""
    lengths = starts[1:] - starts[:-1]
    if len(data) == 0:
        return np.zeros(len(lengths), dtype=np.int64)
    if lengths.min(initial=k + 1) > k:  # the usual case: every row is long enough
        return data[starts[:-1] + k].astype(np.int64)
    idx = np.minimum(starts[:-1] + k, len(data) - 1)
    return np.where(lengths > k, data[idx], 0).astype(np.int64)


def _check_e164(digits: pa.Array, patterns: bool = True) -> np.ndarray:
    """Validity of E.164 digit strings (no ``+``/``00``): known code, possible length, type pattern."""
    return _check_e164_cc(digits, patterns=patterns)[0]


def _check_e164_cc(
    digits: pa.Array, assume_digits: bool = False, patterns: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ok, country code, code length)`` per row (code 0 when unknown)."""
    n = len(digits)
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return ok, np.zeros(0, np.int64), np.zeros(0, np.int64)
    digits = pc.fill_null(digits, "")
    starts, data = byte_view(digits)
    lengths = starts[1:] - starts[:-1]
    all_digits = True if assume_digits else _count((data - np.uint8(48)) > 9, starts) == 0
    if len(data) and lengths.min() >= 3:
        # the usual case: the code is read off the first three digits with one lookup
        prefix = np.zeros(n, dtype=np.int16)
        for k in range(3):
            digit = np.clip(data[starts[:-1] + k], 48, 57) - np.uint8(48)  # non-digits clip, as below
            prefix = prefix * 10 + digit
        by_prefix_cc, by_prefix_len = _cc_by_prefix()
        cc, cc_len = by_prefix_cc[prefix], by_prefix_len[prefix]
    else:
        d = [_byte_at(starts, data, k) - 48 for k in range(3)]
        is_cc = _is_cc()
        cc = np.zeros(n, dtype=np.int64)
        cc_len = np.zeros(n, dtype=np.int64)
        value = np.zeros(n, dtype=np.int64)
        for k in range(3):  # country codes are prefix-free: the first hit is the code
            value = value * 10 + np.clip(d[k], 0, 9)
            hit = (cc == 0) & (lengths > k) & is_cc[value]
            cc = np.where(hit, value, cc)
            cc_len = np.where(hit, k + 1, cc_len)
    known = (cc > 0) & all_digits
    if not known.any():
        return ok, cc, cc_len
    every = bool(known.all())  # the usual case: no boolean gathers
    sel = slice(None) if every else known
    pairs = cc[sel] * 100 + np.clip(lengths[sel] - cc_len[sel], 0, 99)
    # a dense lookup table instead of np.unique: no sort over a million rows
    table = np.zeros(100_000, dtype=bool)
    for u in np.flatnonzero(np.bincount(pairs, minlength=1)):
        table[u] = _possible(int(u // 100), int(u % 100))
    if every:
        ok = table[pairs]
    else:
        ok[known] = table[pairs]
    # the number plan: one regex pass per distinct country code
    codes = np.flatnonzero(np.bincount(cc[ok], minlength=1)) if ok.any() and patterns else []
    for c in codes:
        if len(codes) == 1:
            rows, sub = np.flatnonzero(ok), None
            sub = digits if len(rows) == n else digits.take(pa.array(rows))
        else:
            rows = np.flatnonzero(ok & (cc == c))
            sub = digits.take(pa.array(rows))
        match = pc.match_substring_regex(sub, _plan_pattern(int(c)))
        ok[rows] = match.to_numpy(zero_copy_only=False)
    return ok, cc, cc_len


@lru_cache(maxsize=512)
def _prefixes_after_cc(cc: int) -> tuple[str, ...]:
    """National prefixes of a code's regions: written after the code, phonenumbers strips them."""
    out = set()
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ()):
        md = phonenumbers.PhoneMetadata.metadata_for_region(region) if region != "001" else None
        if md is not None and md.national_prefix:
            out.add(md.national_prefix)
    return tuple(sorted(out))


def _parse_one(raw: str, region: str | None, strict: bool) -> tuple[str | None, str | None]:
    """Stage 2 for one value: ``(e164_digits, None)`` or ``(None, reason)``."""
    text = raw.strip()
    if not text:
        return None, "missing"
    if _LETTERS.search(text):  # phonenumbers would read letters as a keypad vanity number
        return None, "letters"
    squeezed = _JUNK.sub("", text)
    if squeezed.startswith("00"):
        text = "+" + squeezed[2:]
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, "unparsable"
    if strict and not phonenumbers.is_valid_number(num):
        return None, "invalid"
    return f"{num.country_code}{phonenumbers.national_significant_number(num)}", None


@lru_cache(maxsize=1_000_000)
def _parse_cached(raw: str, region: str | None, strict: bool) -> tuple[str | None, str | None]:
    return _parse_one(raw, region, strict)


@lru_cache(maxsize=1_000_000)
def _valid_strict(digits: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None))
    except phonenumbers.NumberParseException:
        return False


def _stage1(raw: pa.Array, region: str | None) -> tuple[pa.Array, np.ndarray, pa.Array | None]:
    """Stage 1: ``(e164, placed, number)`` -- E.164 digits of the values it can place,
    their mask, and (when it is simply the input) the ``00`` form."""
    n = len(raw)
    filled = pc.fill_null(raw, "")
    starts, data = byte_view(filled)
    lengths = starts[1:] - starts[:-1]
    plus, other, cls = _classes(starts, data)
    simple = (lengths > 0) & (other == 0) & (plus <= 1)
    cleaned = filled
    if cls is not None and (cls == 2).any():
        cleaned = _strip_separators(starts, data, cls)
        starts, data = byte_view(cleaned)
        lengths = starts[1:] - starts[:-1]
    b0, b1 = _byte_at(starts, data, 0), _byte_at(starts, data, 1)
    is_plus = simple & (b0 == ord("+")) & (lengths > 1)
    is_00 = simple & (plus == 0) & (b0 == ord("0")) & (b1 == ord("0"))
    national = np.zeros(n, dtype=bool)
    prefix = _national_prefix(region) if region else None
    if prefix is not None:
        first = np.frombuffer(prefix[1].encode(), dtype=np.uint8)
        national = simple & (plus == 0) & ~is_00 & (lengths > len(first))
        for k, byte in enumerate(first):
            national &= _byte_at(starts, data, k) == byte
    placed = is_plus | is_00 | national
    number = None
    if placed.all() and is_00.all():
        # every row is "00" + digits: cut two bytes per row without UTF-8 decoding
        # (the bytes cut are ASCII, so what is left is still valid UTF-8)
        e164 = pc.binary_slice(cleaned.view(pa.binary()), 2, 1 << 30).view(pa.string())
        number = cleaned
    elif is_00[placed].all():
        e164 = pc.utf8_slice_codeunits(cleaned, 2)
        number = cleaned  # already "00..."
    else:
        e164 = pc.if_else(
            pa.array(is_plus),
            pc.utf8_slice_codeunits(cleaned, 1),
            pc.utf8_slice_codeunits(cleaned, 2),
        )
        if national.any():
            nat = pc.binary_join_element_wise(
                str(prefix[0]), pc.utf8_slice_codeunits(cleaned, len(prefix[1])), ""
            )
            e164 = pc.if_else(pa.array(national), nat, e164)
    return e164, placed, number


def normalize_arrow(
    raw: pa.Array, region: str | None = None, *, check: str = "valid"
) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """Normalise an Arrow string array of raw numbers.

    Parameters
    ----------
    raw : pyarrow.StringArray
        Raw numbers; nulls are missing numbers.
    region : str, optional
        ISO region for national numbers.
    check : {"valid", "possible", "strict"}
        How hard to check; see the module docstring.

    Returns
    -------
    number : pyarrow.StringArray
        ``"00..."``, null when missing or invalid.
    code : numpy.ndarray of int64
        0, :data:`MISSING` or :data:`INVALID` per row.
    e164 : pyarrow.StringArray
        The candidate digits (for diagnostics).
    """
    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, not {check!r}")
    strict, patterns = check == "strict", check != "possible"
    n = len(raw)
    e164, placed, number = _stage1(raw, region)
    ok = np.zeros(n, dtype=bool)
    second_chance = ~placed
    if placed.any():
        rows = np.flatnonzero(placed)
        sub = e164 if len(rows) == n else e164.take(pa.array(rows))
        good, cc, cc_len = _check_e164_cc(sub, assume_digits=True, patterns=patterns)
        ok[rows] = good
        # A placed number that failed goes to phonenumbers only when it may read
        # it differently: a national prefix written after the country code
        # (+31 0612...). Anything else fails the same way there.
        for c in np.unique(cc[~good & (cc > 0)]):
            prefixes = _prefixes_after_cc(int(c))
            if not prefixes:
                continue
            idx = np.flatnonzero(~good & (cc == c))
            rest = pc.utf8_slice_codeunits(sub.take(pa.array(idx)), int(cc_len[idx[0]]))
            hit = np.zeros(len(idx), dtype=bool)
            for p in prefixes:
                hit |= pc.starts_with(rest, p).to_numpy(zero_copy_only=False)
            second_chance[rows[idx[hit]]] = True
    code = np.zeros(n, dtype=np.int64)
    blank = np.zeros(n, dtype=bool)
    unplaced = np.flatnonzero(~placed)
    if len(unplaced):  # only values stage 1 could not place can be blank
        sub = raw.take(pa.array(unplaced))
        blank[unplaced] = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(sub), ""), True).to_numpy(
            zero_copy_only=False
        )
    code[blank] = MISSING
    # stage 2: phonenumbers once per distinct value stage 1 could not place
    retry = np.flatnonzero(second_chance & ~blank)
    if len(retry):
        texts = raw.take(pa.array(retry)).to_pylist()
        codes, uniques = pd.factorize(np.asarray(texts, dtype=object))
        parsed = [_parse_cached(u, region, strict) for u in uniques]
        digits = pa.array([d for d, _ in parsed], type=pa.string()).take(pa.array(codes))
        good = _check_e164(digits, patterns) & digits.is_valid().to_numpy(zero_copy_only=False)
        ok[retry[good]] = True
        e164_np = np.asarray(e164.to_numpy(zero_copy_only=False), dtype=object)
        e164_np[retry] = np.asarray(digits.to_numpy(zero_copy_only=False), dtype=object)
        e164 = pa.array(e164_np, type=pa.string())
        number = None
    if strict:
        fast = np.flatnonzero(ok & placed)
        if len(fast):
            sub = e164.take(pa.array(fast)).to_pylist()
            c, u = pd.factorize(np.asarray(sub, dtype=object))
            verdict = np.array([_valid_strict(x) for x in u], dtype=bool)
            ok[fast[~verdict[c]]] = False
    code[~ok & ~blank] = INVALID
    if number is None:
        number = pc.binary_join_element_wise("00", e164, "")
    if not ok.all():
        number = pc.if_else(pa.array(ok), number, pa.scalar(None, pa.string()))
    return number, code, e164


def normalize(values: pd.Series, region: str | None = None, *, check: str = "valid") -> pd.DataFrame:
    """Normalise phone numbers to ``"00" + country code + national number``.

    Parameters
    ----------
    values : pandas.Series
        Raw numbers (``"+31 6 1234 5678"``, ``"0612345678"``, ``"0031612345678"``, ...).
        Phone numbers should be strings: an integer loses its leading ``00``/``+``.
    region : str, optional
        ISO region (``"NL"``) assumed for national numbers.
    check : {"valid", "possible", "strict"}
        ``"possible"``: known country code and possible length; ``"valid"``
        (default): also one of the country's number-type patterns; ``"strict"``:
        also ``phonenumbers.is_valid_number``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``values``: ``number`` (string, ``<NA>`` when missing or
        invalid), ``error_code`` (Int64: ``<NA>``, 302 missing, 303 invalid) and
        ``error`` (string reason naming the raw value, or ``<NA>``).
    """
    raw = to_arrow(values)
    number, code, _ = normalize_arrow(raw, region, check=check)
    return pd.DataFrame(
        {
            "number": to_series(number, values.index),
            "error_code": pd.array(np.where(code == 0, pd.NA, code), dtype="Int64"),
            "error": to_series(reasons(raw, code, region), values.index),
        },
        index=values.index,
    )


def reasons(raw: pa.Array, code: np.ndarray, region: str | None = None, field: str = "to") -> pa.Array:
    """Per-row human reasons for :func:`normalize_arrow` codes (null where the code is 0)."""
    n = len(raw)
    failing = np.flatnonzero(code != 0)
    if len(failing) == 0:
        return pa.nulls(n, pa.string())
    # texts for the failing rows only, then scattered back with a null-masked take
    sub = pc.fill_null(raw.take(pa.array(failing)), "")
    hint = "" if region else " (national numbers need region=)"
    invalid = pc.binary_join_element_wise(f"{field}: '", sub, f"' is not a valid phone number{hint}", "")
    texts = pc.if_else(
        pa.array(code[failing] == MISSING), pa.scalar(f"{field}: missing phone number", pa.string()), invalid
    )
    pos = np.zeros(n, dtype=np.int64)
    pos[failing] = np.arange(len(failing))
    mask = np.ones(n, dtype=bool)
    mask[failing] = False
    return texts.take(pa.array(pos, mask=mask))
