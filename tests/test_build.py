"""``df.cm.build``: fields, templates, Series inputs, validation codes, duplicates."""

from __future__ import annotations

import datetime as dt
import importlib

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cmframe
from cmframe.exceptions import DuplicateRecipientError, MissingColumnError, SpecError
from cmframe.schema import PLAN_COLUMNS

build_mod = importlib.import_module("cmframe.build")

NOW = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "phone": ["+31 6 1234 5678", "0612345679", "0031612345680", "(020) 555-0100"],
            "first_name": ["Anna", "José", "Zoë 😀", "Bram"],
            "segment": ["vip", "new", None, "loyal"],
        },
        index=pd.Index(["a", "b", "c", "d"], name="customer"),
    )


def sent_msgs(plan, **kwargs):
    return [m for doc in plan.cm.requests(**kwargs) for m in doc["messages"]["msg"]]


# -- plan shape -----------------------------------------------------------------------


def test_plan_keeps_index_and_columns_and_adds_plan_columns(people):
    plan = people.cm.build(to="phone", region="NL", sender="CMFrame", body="Hi {first_name}")
    assert plan.index.equals(people.index)
    assert list(plan.columns) == list(people.columns) + list(PLAN_COLUMNS)
    assert plan["number"].tolist() == ["0031612345678", "0031612345679", "0031612345680", "0031205550100"]
    assert plan["body"].tolist() == ["Hi Anna", "Hi José", "Hi Zoë 😀", "Hi Bram"]
    assert plan["phone"].equals(people["phone"])  # the caller's `to` column is kept unchanged
    for col in ("number", "sender", "body", "channels", "error", "encoding"):
        assert isinstance(plan[col].dtype, pd.StringDtype), col
    for col in ("error_code", "min_parts", "max_parts", "dcs"):
        assert plan[col].dtype == "Int64", col
    assert plan["duplicate"].dtype == bool
    assert plan["error_code"].isna().all()
    assert plan["encoding"].tolist() == ["gsm7", "gsm7", "ucs2", "gsm7"]  # é is GSM-7, ë is not
    assert plan.loc["c", "ucs2_chars"] == "ë😀"


def test_caller_frame_is_not_mutated(people):
    before = people.copy(deep=True)
    plan = people.cm.build(to="phone", region="NL", sender="S", body="Hi {first_name}", reference="r")
    plan.loc["a", "first_name"] = "changed"
    plan["phone"] = "x"
    pd.testing.assert_frame_equal(people, before)


def test_plan_column_replaces_a_caller_column_of_the_same_name():
    df = pd.DataFrame({"phone": ["0031612345678"], "body": ["old"], "text": ["new"]})
    plan = df.cm.build(to="phone", sender="S", body="{text}")
    assert plan["body"].tolist() == ["new"]
    assert df["body"].tolist() == ["old"]


def test_empty_frame_builds_an_empty_plan():
    df = pd.DataFrame({"phone": pd.Series([], dtype="string")})
    plan = df.cm.build(to="phone", sender="S", body="hi")
    assert len(plan) == 0 and set(PLAN_COLUMNS) <= set(plan.columns)
    assert list(plan.cm.requests()) == []


# -- templates and Series ---------------------------------------------------------------


def test_templates_escape_braces_and_render_non_string_columns():
    df = pd.DataFrame({"phone": ["0031612345678", "0031612345679"], "points": [10, 2500]})
    plan = df.cm.build(to="phone", sender="S", body="{{promo}} you have {points} pts ({points:,})")
    assert plan["body"].tolist() == ["{promo} you have 10 pts (10)", "{promo} you have 2500 pts (2,500)"]


def test_single_placeholder_keeps_missing_as_absent(people):
    plan = people.cm.build(to="phone", region="NL", sender="S", body="x", custom_grouping="{segment}")
    assert plan["custom_grouping"].isna().tolist() == [False, False, True, False]
    msgs = sent_msgs(plan)
    assert "customGrouping" not in msgs[2]
    assert msgs[0]["customGrouping"] == "vip"


def test_missing_placeholder_column_fails_before_any_work(people, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("numbers were normalised before the spec was checked")

    monkeypatch.setattr(build_mod.numbers, "normalize_arrow", boom)
    with pytest.raises(MissingColumnError, match="last_name"):
        people.cm.build(to="phone", sender="S", body="Hi {first_name} {last_name}")
    with pytest.raises(MissingColumnError, match="image"):
        people.cm.build(to="phone", sender="S", body="x", conversation=[{"media": {"mediaUri": "{image}"}}])
    with pytest.raises(MissingColumnError, match="mobile"):
        people.cm.build(to="mobile", sender="S", body="x")
    assert issubclass(MissingColumnError, cmframe.CMFrameError)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"body": None}, "body"),
        ({"sender": None}, "sender"),
        ({"validity": "2h30m"}, "mixes hours and minutes"),
        ({"channels": ["WhatsApp", "Pigeon"]}, "unknown channel 'Pigeon'"),
        ({"body_type": "html"}, "body_type"),
        ({"region": "Netherlands"}, "region"),
        ({"duplicates": "ignore"}, "duplicates"),
        ({"dcs": "eight"}, "dcs"),
        ({"body": "Hi {"}, "malformed template"),
        ({"body": "Hi {}"}, "empty placeholder"),
        ({"suggestions": [{"action": "Reply", "label": "x"}]}, "conversation"),
        ({"number_check": "loose"}, "number_check"),
    ],
)
def test_call_level_mistakes_raise_spec_error(people, kwargs, match):
    args = {"to": "phone", "sender": "S", "body": "x", **kwargs}
    with pytest.raises(SpecError, match=match):
        people.cm.build(**args)


def test_non_frame_is_a_spec_error():
    with pytest.raises(SpecError, match="DataFrame"):
        build_mod.build([{"phone": "0031612345678"}], to="phone", sender="S", body="x")


def test_cmframe_build_is_callable_even_after_the_submodule_import():
    df = pd.DataFrame({"phone": ["0031612345678"]})
    assert cmframe.build(df, to="phone", sender="S", body="x")["number"].iloc[0] == "0031612345678"
    assert build_mod(df, to="phone", sender="S", body="x")["number"].iloc[0] == "0031612345678"


def test_series_inputs_align_on_labels_not_positions(people):
    bodies = pd.Series({"d": "for d", "a": "for a", "c": "for c", "b": "for b"})
    channels = pd.Series({"a": ["WhatsApp", "SMS"], "b": "viber", "c": None, "d": ("RCS",)})
    plan = people.cm.build(to="phone", region="NL", sender="S", body=bodies, channels=channels)
    assert plan["body"].tolist() == ["for a", "for b", "for c", "for d"]
    assert plan["channels"].tolist()[:2] == ["WhatsApp,SMS", "Viber"]
    assert pd.isna(plan["channels"].iloc[2]) and plan["channels"].iloc[3] == "RCS"
    msgs = sent_msgs(plan)
    assert msgs[0]["allowedChannels"] == ["WhatsApp", "SMS"]
    assert "allowedChannels" not in msgs[2]


def test_series_with_foreign_index_is_rejected(people):
    with pytest.raises(SpecError, match="index"):
        people.cm.build(to="phone", sender="S", body=pd.Series(["x"] * 4))


def test_channels_template_and_fallback_order(people):
    df = people.assign(pref=["WhatsApp", "viber", "", "Pigeon"])
    plan = df.cm.build(to="phone", region="NL", sender="S", body="x", channels="{pref},SMS")
    assert plan["channels"].tolist()[:3] == ["WhatsApp,SMS", "Viber,SMS", "SMS"]
    assert plan["error_code"].tolist()[3] == 305
    assert "channels: unknown channel 'Pigeon'" in plan["error"].iloc[3]


def test_pandas_string_dtypes_and_object_input():
    # pandas 3's "str" is a string dtype; pandas 2's astype("str") turns None into "None"
    pandas3 = int(pd.__version__.split(".")[0]) >= 3
    for dtype in ("string", *(("str",) if pandas3 else ()), object, "string[python]"):
        df = pd.DataFrame({"phone": ["0612345678", None], "name": ["Ann", pd.NA if dtype != "str" else None]})
        df = df.astype({"phone": dtype, "name": dtype})
        plan = df.cm.build(to="phone", region="NL", sender="S", body="Hi {name}!")
        assert plan["number"].iloc[0] == "0031612345678"
        assert plan["error_code"].iloc[1] == 302
        assert plan["body"].tolist() == ["Hi Ann!", "Hi !"]


# -- validation -------------------------------------------------------------------------


def test_every_failing_row_is_reported_with_its_field(people):
    df = pd.DataFrame(
        {
            "phone": ["0031612345678", "", "0612", "0031612345679", "0031612345680", "0031612345681", "0031612345682"],
            "sender": ["OK", "OK", "OK", "OK", "ThisIsTooLongASender", "OK", "12345678901234567"],
            "text": ["fine", "fine", "fine", None, "fine", "fine", "fine"],
            "ref": ["r", "r", "r", "r", "r", "x" * 33, "r"],
        }
    )
    plan = df.cm.build(to="phone", sender="{sender}", body="{text}", reference="{ref}")
    assert plan["error_code"].tolist() == [pd.NA, 302, 303, 304, 301, 305, 301]
    errors = plan["error"].tolist()
    assert pd.isna(errors[0])
    assert errors[1] == "to: missing phone number"
    assert errors[2].startswith("to: '0612' is not a valid phone number")
    assert errors[3] == "body: empty"
    assert errors[4].startswith("sender:") and "11 characters" in errors[4]
    assert errors[5] == "reference: longer than 32 characters"
    assert "16 digits" in errors[6]
    # only the good row is sent
    msgs = sent_msgs(plan)
    assert [m["to"][0]["number"] for m in msgs] == ["0031612345678"]


def test_a_row_with_several_problems_lists_them_all_and_takes_the_first_code():
    df = pd.DataFrame({"phone": ["bad"], "g": ["x" * 101]})
    plan = df.cm.build(to="phone", sender="", body="", custom_grouping="{g}", region="NL")
    assert plan["error_code"].iloc[0] == 301
    error = plan["error"].iloc[0]
    for part in ("sender: missing", "to: 'bad'", "body: empty", "custom_grouping: longer than 100"):
        assert part in error


def test_validity_checks_per_row():
    df = pd.DataFrame(
        {"phone": ["0031612345678"] * 6, "v": ["2h", "30M", "73h", "2h30m", "soon", "2026-11-30 08:00:00 GMT"]}
    )
    plan = df.cm.build(to="phone", sender="S", body="x", validity="{v}", now=NOW, duplicates="keep")
    assert plan["validity"].tolist()[:2] == ["2h", "30m"]
    assert plan["error_code"].tolist() == [pd.NA, pd.NA, 305, 305, 305, pd.NA]
    assert "72 h" in plan["error"].iloc[2]
    assert "mixes hours and minutes" in plan["error"].iloc[3]
    assert plan["error"].iloc[4].startswith("validity:")


def test_validity_constant_over_72h_fails_every_row_and_python_objects_convert():
    df = pd.DataFrame({"phone": ["0031612345678", "0031612345679"]})
    far = df.cm.build(to="phone", sender="S", body="x", validity="2026-12-05 10:00:00+01:00", now=NOW)
    assert far["error_code"].tolist() == [305, 305]
    rel = df.cm.build(to="phone", sender="S", body="x", validity=dt.timedelta(minutes=90))
    assert rel["validity"].tolist() == ["90m", "90m"]
    rel = df.cm.build(to="phone", sender="S", body="x", validity=pd.Timedelta(hours=3))
    assert rel["validity"].tolist() == ["3h", "3h"]
    when = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    absolute = df.cm.build(to="phone", sender="S", body="x", validity=when, now=NOW)
    assert absolute["validity"].tolist() == ["2026-11-29 10:00:00+01:00"] * 2
    per_row = pd.Series([dt.timedelta(hours=1), dt.timedelta(hours=80)], index=df.index)
    mixed = df.cm.build(to="phone", sender="S", body="x", validity=per_row)
    assert mixed["validity"].iloc[0] == "1h" and mixed["error_code"].tolist() == [pd.NA, 305]


def test_parts_limits_and_dcs():
    df = pd.DataFrame({"phone": ["0031612345678", "0031612345679"], "text": ["a" * 160, "a" * 161]})
    plan = df.cm.build(to="phone", sender="S", body="{text}", max_parts=1, min_parts=1)
    assert plan["parts_estimate"].tolist() == [1, 2]
    assert plan["error_code"].tolist() == [pd.NA, 305]
    assert plan["error"].iloc[1] == "body: needs 2 parts, more than max_parts (1)"
    msg = sent_msgs(plan)[0]
    assert msg["minimumNumberOfMessageParts"] == 1 and msg["maximumNumberOfMessageParts"] == 1
    crossed = df.cm.build(to="phone", sender="S", body="x", max_parts=1, min_parts=3)
    assert crossed["error_code"].tolist() == [305, 305]
    # dcs=8 forces UCS-2 unless the body type is auto
    forced = df.cm.build(to="phone", sender="S", body="hello", dcs=8, body_type="text")
    assert forced["encoding"].tolist() == ["ucs2", "ucs2"]
    assert sent_msgs(forced)[0]["dcs"] == 8
    auto = df.cm.build(to="phone", sender="S", body="hello", dcs=8, body_type="auto")
    assert auto["encoding"].tolist() == ["gsm7", "gsm7"]
    per_row = df.cm.build(to="phone", sender="S", body="hello", dcs=pd.Series([8, 0]), body_type="binary")
    assert per_row["encoding"].tolist() == ["ucs2", "gsm7"]
    untyped = df.cm.build(to="phone", sender="S", body="hello", dcs=8, body_type=None)
    assert untyped["encoding"].tolist() == ["gsm7", "gsm7"]  # as the gateway: no type, no forcing
    assert "type" not in sent_msgs(untyped)[0]["body"]


def test_rich_content_problems_are_per_row_305():
    df = pd.DataFrame({"phone": ["0031612345678", "0031612345679"], "img": ["https://x/1.jpg", None]})
    plan = df.cm.build(
        to="phone",
        sender="S",
        body="fallback",
        conversation=[{"text": "hi"}, {"media": {"mediaName": "pic", "mediaUri": "{img}"}}],
        suggestions=[{"action": "Dial", "label": "Call"}],
    )
    assert plan["error_code"].tolist() == [305, 305]
    assert "suggestions[0].dial: required" in plan["error"].iloc[0]
    assert "conversation[1].media.mediaUri: required" in plan["error"].iloc[1]
    assert "mediaUri" not in plan["error"].iloc[0]


def test_rich_content_series_of_lists():
    df = pd.DataFrame({"phone": ["0031612345678", "0031612345679", "0031612345680"]})
    conv = pd.Series([[{"text": "one"}], None, [{"nothing": 1}]])
    plan = df.cm.build(to="phone", sender="S", body="fb", conversation=conv)
    assert orjson.loads(plan["rich_content"].iloc[0]) == {"conversation": [{"text": "one"}]}
    assert pd.isna(plan["rich_content"].iloc[1])
    assert plan["error_code"].tolist() == [pd.NA, pd.NA, 305]


# -- duplicates -------------------------------------------------------------------------


@pytest.fixture
def twins() -> pd.DataFrame:
    return pd.DataFrame(
        {"phone": ["0612345678", "+31 6 1234 5678", "0612345679", "0031612345678"], "name": ["A", "A", "B", "Z"]},
        index=[10, 11, 12, 13],
    )


def test_duplicates_keep_flags_but_sends(twins):
    plan = twins.cm.build(to="phone", region="NL", sender="S", body="Hi {name}")
    # row 13 has the same number but another message: not a duplicate
    assert plan["duplicate"].tolist() == [False, True, False, False]
    assert len(sent_msgs(plan)) == 4


def test_duplicates_drop_marks_later_rows_302_naming_the_first(twins):
    plan = twins.cm.build(to="phone", region="NL", sender="S", body="Hi {name}", duplicates="drop")
    assert plan["error_code"].tolist() == [pd.NA, 302, pd.NA, pd.NA]
    assert plan.loc[11, "error"] == "to: duplicate of row 10"
    assert len(sent_msgs(plan)) == 3


def test_duplicates_among_many_rows_name_each_first_row():
    # two repeated numbers far apart among distinct ones; one repeat has another message
    n = 2000
    phones = [f"00316{10000000 + i}" for i in range(n)]
    names = ["A"] * n
    phones[1500], phones[1800], phones[1900] = phones[3], phones[700], phones[700]
    names[1900] = "B"
    frame = pd.DataFrame({"phone": phones, "name": names}, index=range(100, 100 + n))
    plan = frame.cm.build(to="phone", sender="S", body="Hi {name}", duplicates="drop")
    assert plan.index[plan["duplicate"]].tolist() == [1600, 1900]
    assert plan.loc[1600, "error"] == "to: duplicate of row 103"
    assert plan.loc[1900, "error"] == "to: duplicate of row 800"
    assert plan["error_code"].notna().sum() == 2


def test_duplicates_error_raises_listing_rows(twins):
    with pytest.raises(DuplicateRecipientError, match=r"\[11\]"):
        twins.cm.build(to="phone", region="NL", sender="S", body="Hi {name}", duplicates="error")


# -- the bundled recipient list ----------------------------------------------------------


def test_recipients_csv_builds_with_realistic_mess():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "recipients.csv"
    df = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])
    assert 1900 <= len(df) <= 2100
    plan = df.cm.build(
        to="phone",
        region="NL",
        sender="CMFrame",
        body="Hi {first_name}, spring sale!",
        channels="{preferred_channel},SMS",
        reference="spring",
        custom_grouping="{segment}",
    )
    codes = plan["error_code"].value_counts().to_dict()
    assert codes.get(302, 0) > 10 and codes.get(303, 0) > 10
    assert plan["duplicate"].sum() >= 10
    assert (plan["encoding"] == "ucs2").any() and (plan["encoding"] == "gsm7").any()
    assert plan["error_code"].isna().mean() > 0.85


# -- JSON round trip ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=5))
def test_any_text_survives_the_request_body(texts):
    df = pd.DataFrame({"phone": [f"00316123456{i:02d}" for i in range(len(texts))], "t": texts})
    plan = df.cm.build(to="phone", sender="S", body="{t}")
    valid = plan["error_code"].isna().to_numpy()
    msgs = sent_msgs(plan)
    assert [m["body"]["content"] for m in msgs] == list(np.asarray(texts, dtype=object)[valid])
