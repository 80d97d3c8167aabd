"""GSM-7 / UCS-2 encoding and part estimates at every boundary (hand-checked)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmframe.encode import GSM7_BASIC, GSM7_EXTENSION, estimate, estimate_one

E, CY, SMILE = "€", "Ж", "😀"  # extension char (2 septets), non-GSM BMP char, non-BMP char

CASES = [
    # text, encoding, length (septets / UTF-16 units), parts
    ("", "gsm7", 0, 0),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),  # 153 x 2
    ("a" * 307, "gsm7", 307, 3),
    ("a" * 459, "gsm7", 459, 3),  # 153 x 3
    ("a" * 460, "gsm7", 460, 4),
    (E * 80, "gsm7", 160, 1),  # extension characters count twice
    (E * 81, "gsm7", 162, 2),
    ("a" * 159 + E, "gsm7", 161, 2),
    # 306 septets would be 2 parts, but the escape pair at septets 153-154 moves
    # to part 2, which then fills up, leaving one septet for a third part
    ("a" * 152 + E + "a" * 152, "gsm7", 306, 3),
    ("a" * 151 + E + "a" * 153, "gsm7", 306, 2),  # the pair fits exactly: no spill
    ("\f" * 80, "gsm7", 160, 1),  # form feed is an extension character
    ("ΔΦΓΛΩΠΨΣΘΞ", "gsm7", 10, 1),  # Greek capitals of the basic set
    ("éèùìò", "gsm7", 5, 1),
    (CY * 70, "ucs2", 70, 1),
    (CY * 71, "ucs2", 71, 2),
    (CY * 134, "ucs2", 134, 2),  # 67 x 2
    (CY * 135, "ucs2", 135, 3),
    (SMILE * 35, "ucs2", 70, 1),  # non-BMP: two UTF-16 units each
    (SMILE * 36, "ucs2", 72, 2),
    ("a" * 69 + SMILE, "ucs2", 71, 2),
    # 134 units would be 2 parts, but the surrogate pair at units 67-68 moves to part 2
    (CY * 66 + SMILE + CY * 66, "ucs2", 134, 3),
    (CY * 65 + SMILE + CY * 67, "ucs2", 134, 2),  # the pair ends part 1 exactly
    ("`", "ucs2", 1, 1),  # backtick is ASCII but not GSM-7
    ("tab\there", "ucs2", 8, 1),
    ("ë", "ucs2", 1, 1),
]


@pytest.mark.parametrize("text, encoding, length, parts", CASES)
def test_boundaries_scalar_and_vectorised(text, encoding, length, parts):
    one = estimate_one(text)
    assert (one.encoding, one.length, one.parts) == (encoding, length, parts)
    frame = estimate(pd.Series([text, "x"], dtype="string"))
    row = frame.iloc[0]
    assert (row["encoding"], row["body_length"], row["parts_estimate"]) == (encoding, length, parts)


def test_all_boundaries_at_once_match_row_by_row():
    texts = [c[0] for c in CASES]
    frame = estimate(pd.Series(texts * 3))
    assert frame["parts_estimate"].tolist() == [c[3] for c in CASES] * 3
    assert frame["body_length"].tolist() == [c[2] for c in CASES] * 3


def test_ucs2_chars_are_the_culprits_in_order_without_repeats():
    frame = estimate(pd.Series([f"{CY}a{SMILE}{CY}ë", "plain", "`x`"]))
    assert frame["ucs2_chars"].tolist() == [f"{CY}{SMILE}ë", "", "`"]


def test_force_ucs2_and_missing_values():
    frame = estimate(pd.Series(["hello", None, "a" * 71]), force_ucs2=[True, False, True])
    assert frame["encoding"].tolist() == ["ucs2", "gsm7", "ucs2"]
    assert frame["parts_estimate"].tolist() == [1, 0, 2]
    assert frame["ucs2_chars"].tolist() == ["", "", ""]  # nothing forced it but the flag
    assert estimate_one("hello", True).encoding == "ucs2"


def test_index_and_dtypes_are_kept():
    s = pd.Series(["a", "b"], index=["x", "y"], dtype="str")
    frame = estimate(s)
    assert list(frame.index) == ["x", "y"]
    assert isinstance(frame["encoding"].dtype, pd.StringDtype)
    assert frame["parts_estimate"].dtype == "int64"


alphabet = st.sampled_from(list(GSM7_BASIC + GSM7_EXTENSION) + [CY, SMILE, "ë", "`", "\t", "中"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=alphabet, max_size=400), min_size=1, max_size=6), st.booleans())
def test_vectorised_equals_scalar(texts, force):
    frame = estimate(pd.Series(texts), force_ucs2=force)
    for text, (_, row) in zip(texts, frame.iterrows(), strict=True):
        one = estimate_one(text, force)
        assert (row["encoding"], row["body_length"], row["parts_estimate"], row["ucs2_chars"]) == (
            one.encoding,
            one.length,
            one.parts,
            one.ucs2_chars,
        )
