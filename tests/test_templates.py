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
