"""Column templates rendered for every row at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmframe import templates
from cmframe.exceptions import MissingColumnError, SpecError


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "first_name": pd.array(["Ann", None, "Zoë 😀"], dtype="string"),
            "points": [10, 20, 3000],
            "ratio": [0.5, np.nan, 2.0],
            "customer id": ["C1", "C2", "C3"],
            7: ["x", "y", "z"],
        }
    )


def test_fields_and_escapes():
    assert templates.fields("Hi {first_name}, {{not a field}} {points:>5} {first_name}") == [
        "first_name",
        "points",
    ]
    assert templates.is_template("Hi {x}") and not templates.is_template("Hi {{x}}")
    assert not templates.is_template(42)


def test_render_columns_literals_and_missing(df):
    out = templates.render(df, "Hi {first_name}! {{promo}} id={customer id} col7={7}").to_pylist()
    assert out == [
        "Hi Ann! {promo} id=C1 col7=x",
        "Hi ! {promo} id=C2 col7=y",  # missing renders empty inside a longer template
        "Hi Zoë 😀! {promo} id=C3 col7=z",
    ]


def test_single_placeholder_keeps_missing(df):
    assert templates.render(df, "{first_name}").to_pylist() == ["Ann", None, "Zoë 😀"]


def test_numbers_and_format_specs(df):
    assert templates.render(df, "{points} {points:,} {points:05d}").to_pylist() == [
        "10 10 00010",
        "20 20 00020",
        "3000 3,000 03000",
    ]
    # a float column with NaN: whole numbers print without ".0", missing is empty
    assert templates.render(df, "r={ratio}").to_pylist() == ["r=0.5", "r=", "r=2"]
    assert templates.render(df, "{ratio:.2f}").to_pylist() == ["0.50", None, "2.00"]
    assert templates.render(df, "{first_name!r}").to_pylist() == ["'Ann'", None, "'Zoë 😀'"]


def test_constant_template_fills_every_row(df):
    assert templates.render(df, "plain {{braces}}").to_pylist() == ["plain {braces}"] * 3


def test_missing_column_lists_what_exists(df):
    with pytest.raises(MissingColumnError, match="no column named 'last_name'.*'first_name'"):
        templates.render(df, "{first_name} {last_name}", what="body")
    with pytest.raises(MissingColumnError, match="^body:"):
        templates.check(df, "{nope}", what="body")


@pytest.mark.parametrize("bad", ["Hi {", "Hi }", "{}", "{a:{b}}"])
def test_malformed_templates(df, bad):
    with pytest.raises(SpecError):
        templates.render(df, bad)


def test_bad_format_spec_is_a_spec_error(df):
    with pytest.raises(SpecError, match="cannot format"):
        templates.render(df, "{first_name:d}")


def test_to_series_is_string_dtype_on_the_index(df):
    s = templates.to_series(templates.render(df, "{points}"), pd.Index(["a", "b", "c"]))
    assert isinstance(s.dtype, pd.StringDtype)
    assert s.to_dict() == {"a": "10", "b": "20", "c": "3000"}


def test_to_arrow_of_bool_and_object_columns():
    assert templates.to_arrow(pd.Series([True, False])).to_pylist() == ["True", "False"]
    assert templates.to_arrow(pd.Series([1.5, None, "x"], dtype=object)).to_pylist() == ["1.5", None, "x"]


def test_render_per_combination_matches_row_by_row():
    # few distinct (first, city) pairs: rendered once per pair, then spread out
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "a": pd.array(rng.choice(np.array(["x", "xy", None, "Zoë"], dtype=object), n), dtype="string"),
            "b": pd.array(rng.choice(np.array(["y", "", "z"], dtype=object), n), dtype="string"),
        }
    )
    a_text = ["" if v is pd.NA else v for v in frame["a"]]
    b_text = ["" if v is pd.NA else v for v in frame["b"]]
    expected = [f"<{a}{b}|{a}>" for a, b in zip(a_text, b_text, strict=True)]
    assert templates.render(frame, "<{a}{b}|{a}>").to_pylist() == expected
    codes, texts = templates.render_distinct(frame, "<{a}{b}|{a}>")
    assert texts.take(codes).to_pylist() == expected
    # "x"+"y" and "xy"+"" give the same text: one code, so codes identify texts
    codes, texts = templates.render_distinct(frame, "<{a}{b}>")
    assert len(set(texts.to_pylist())) == len(texts) == 11
    assert texts.take(codes).to_pylist() == [e.split("|")[0] + ">" for e in expected]


def test_render_distinct_keeps_missing_for_a_single_placeholder(df):
    codes, texts = templates.render_distinct(df, "{first_name}")
    assert codes.tolist()[1] == -1
    assert texts.take(codes[[0, 2]]).to_pylist() == ["Ann", "Zoë 😀"]
    codes, texts = templates.render_distinct(df, "Hi {{there}}")
    assert codes.tolist() == [0, 0, 0] and texts.to_pylist() == ["Hi {there}"]


def test_distinct_codes_marks_nulls():
    import pyarrow as pa

    codes, values = templates.distinct_codes(pa.array(["a", None, "b", "a"]))
    assert codes.tolist() == [0, -1, 1, 0]
    assert values.to_pylist() == ["a", "b"]
