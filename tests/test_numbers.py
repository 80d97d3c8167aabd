"""Phone-number normalisation: formats, failures, caching, and agreement with phonenumbers."""

from __future__ import annotations

import pandas as pd
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmframe import numbers


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+31 6 1234 5678", "0031612345678"),
        ("0612345678", "0031612345678"),
        ("06-12345678", "0031612345678"),
        ("0031612345678", "0031612345678"),
        ("+31612345678", "0031612345678"),
        ("0031 6 1234 5678", "0031612345678"),
        ("(020) 555-0100", "0031205550100"),
        ("+31 (0)76 - 572 70 00", "0031765727000"),  # the spec's own example
        ("+31 0612345678", "0031612345678"),  # national prefix after the code: phonenumbers path
        ("+44 7911 123456", "00447911123456"),
        ("+32 470 12 34 56", "0032470123456"),
        ("0039 06 1234 5678", "00390612345678"),  # Italy keeps its leading zero
        ("  +31612345678  ", "0031612345678"),
    ],
)
def test_formats_normalise_with_region_nl(raw, expected):
    out = numbers.normalize(pd.Series([raw]), region="NL")
    assert out["number"].iloc[0] == expected
    assert pd.isna(out["error_code"].iloc[0])


@pytest.mark.parametrize(
    "raw, code",
    [
        (None, 302),
        ("", 302),
        ("   ", 302),
        ("0612", 303),
        ("12345", 303),  # a short number: no mobile or fixed-line range
        ("n/a", 303),
        ("0044791112345a", 303),  # letters are not keypad digits here
        ("+99 123456", 303),  # no such country code
        ("+4479111234567890", 303),  # too long
        ("0031601234567", 303),  # 60... is not a Dutch range
    ],
)
def test_missing_and_invalid(raw, code):
    out = numbers.normalize(pd.Series([raw], dtype="string"), region="NL")
    assert out["error_code"].iloc[0] == code
    assert pd.isna(out["number"].iloc[0])
    assert out["error"].iloc[0].startswith("to: ")


def test_national_number_without_region_names_the_fix():
    out = numbers.normalize(pd.Series(["0612345678", "+31612345678"]))
    assert out["error_code"].tolist() == [303, pd.NA]
    assert "region=" in out["error"].iloc[0]


def test_check_levels():
    s = pd.Series(["00316012345678", "0031612345678"])  # the first is the spec's Viber example
    assert numbers.normalize(s, check="possible")["error_code"].isna().all()
    assert numbers.normalize(s)["error_code"].tolist() == [303, pd.NA]
    assert numbers.normalize(s, check="strict")["error_code"].tolist() == [303, pd.NA]
    with pytest.raises(ValueError):
        numbers.normalize(s, check="sloppy")


def test_each_distinct_messy_value_is_parsed_once(monkeypatch):
    numbers._parse_cached.cache_clear()
    calls = []
    real = phonenumbers.parse

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(numbers.phonenumbers, "parse", counting)
    # "+31 0..." is placed by the vectorised stage, fails, and goes to phonenumbers
    raw = pd.Series(["+31 0612345678", "+31 0612345679"] * 500 + ["0031612345670"] * 1000)
    out = numbers.normalize(raw)
    assert out["error_code"].isna().all()
    assert len(calls) == 2


def test_index_and_dtypes():
    s = pd.Series(["0612345678", None], index=["x", "y"], dtype=object)
    out = numbers.normalize(s, region="NL")
    assert list(out.index) == ["x", "y"]
    assert isinstance(out["number"].dtype, pd.StringDtype)
    assert out["error_code"].dtype == "Int64"


def reference(raw: str, region: str | None) -> str | None:
    """phonenumbers alone, value by value: what the vectorised stage must agree with."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    return f"00{num.country_code}{phonenumbers.national_significant_number(num)}"


prefixes = st.sampled_from(["+31", "0031", "0", "+44", "0044", "+32", "+49", "+1", "+39", "0039", ""])
digits = st.text(alphabet="0123456789", min_size=6, max_size=11)
seps = st.sampled_from(["", " ", "-"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(prefixes, digits, seps), min_size=1, max_size=8))
def test_strict_agrees_with_phonenumbers_and_valid_never_disagrees_on_the_number(items):
    raws = [p + sep + d[:3] + sep + d[3:] for p, d, sep in items]
    strict = numbers.normalize(pd.Series(raws), region="NL", check="strict")["number"].tolist()
    valid = numbers.normalize(pd.Series(raws), region="NL")["number"].tolist()
    for raw, s, v in zip(raws, strict, valid, strict=True):
        ref = reference(raw, "NL")
        assert (None if pd.isna(s) else s) == ref, raw
        if not pd.isna(v) and ref is not None:
            assert v == ref, raw  # when both accept, they agree on the number
