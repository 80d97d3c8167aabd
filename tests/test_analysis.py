"""summary / errors / latency on plans, results and campaigns (synthetic frames)."""

from __future__ import annotations

import pandas as pd
import pytest
from test_analysis_fixtures import KINDS, make_campaign, make_plan, make_results

import cmframe  # noqa: F401  (registers df.cm)
from cmframe import analysis
from cmframe.exceptions import MissingColumnError, SpecError

KIND_LIST = list(KINDS)  # one row of each kind: 10 rows


def test_outcome_one_per_row_in_each_stage():
    plan, res, camp = make_plan(KIND_LIST), make_results(KIND_LIST), make_campaign(KIND_LIST)
    assert analysis.outcome(plan).tolist() == ["planned"] * 9 + ["invalid"]
    assert analysis.outcome(res).tolist() == [
        "accepted", "accepted", "accepted", "accepted", "accepted",
        "rejected", "unknown", "unknown", "not_sent", "invalid",
    ]  # fmt: skip
    assert camp.cm.outcome().tolist() == [
        "delivered", "failed", "rejected", "pending", "pending",
        "rejected", "unknown", "delivered", "not_sent", "invalid",
    ]  # fmt: skip
    assert analysis.stage(plan) == "plan" and analysis.stage(camp) == "campaign"


def test_summary_on_a_campaign_counts_every_outcome():
    camp = make_campaign(KIND_LIST)
    s = camp.cm.summary()
    row = s.loc["all"]
    assert row["rows"] == 10 and row["invalid"] == 1 and row["valid"] == 9
    assert row["not_sent"] == 1 and row["unknown"] == 1
    # gateway-rejected and operator-rejected
    assert row["rejected"] == 2
    # delivered, failed, op_rejected, pending, silent, unknown_deliv
    assert row["accepted"] == 6
    assert row["delivered"] == 2 and row["failed"] == 1 and row["pending"] == 2
    assert row["delivery_rate"] == pytest.approx(2 / 6)
    assert row["accept_rate"] == pytest.approx(6 / 9)
    # parts: only rows accepted at send time count (row 0 ucs2 = 2 parts, 4 -> 2 parts)
    # and the "unknown" row that status reports proved delivered counts its estimate
    expected_parts = int(camp.loc[camp["status"] == "accepted", "parts"].sum())
    expected_parts += int(camp["parts_estimate"].iloc[KIND_LIST.index("unknown_deliv")])
    assert row["parts"] == expected_parts


def test_summary_leaves_stages_not_run_as_na():
    plan_s = make_plan(KIND_LIST).cm.summary()
    assert plan_s.loc["all", "valid"] == 9
    for col in ("accepted", "rejected", "unknown", "delivered", "failed", "pending", "parts"):
        assert pd.isna(plan_s.loc["all", col]), col
    res_s = make_results(KIND_LIST).cm.summary()
    assert res_s.loc["all", "accepted"] == 5
    assert pd.isna(res_s.loc["all", "delivered"]) and pd.isna(res_s.loc["all", "delivery_rate"])
    assert list(plan_s.columns) == list(res_s.columns) == list(analysis.SUMMARY_COLUMNS)


def test_summary_by_group_and_camelcase_alias():
    camp = make_campaign(KIND_LIST * 5)
    s = camp.cm.summary(by="customGrouping")
    assert s.index.name == "custom_grouping"
    assert list(s.index) == ["A", "B"]
    assert s["rows"].sum() == 50
    by_hand = camp.groupby("custom_grouping")["delivery_status"].apply(
        lambda x: (x == "delivered").sum()
    )
    assert s["delivered"].tolist() == by_hand.tolist()
    two = camp.cm.summary(by=["reference", "encoding"])
    assert two.index.names == ["reference", "encoding"]
    assert two["rows"].sum() == 50


def test_summary_by_derived_country_and_channel():
    camp = make_campaign(KIND_LIST * 3)
    s = camp.cm.summary(by="country")
    # invalid rows have no number: an <NA> country group, kept
    assert {"NL", "BE", "US"} <= set(s.index.dropna())
    assert s["rows"].sum() == 30
    assert s.loc["NL", "rows"] == (camp["number"].str.startswith("0031")).sum()
    ch = camp.cm.summary(by="channel")
    assert set(ch.index) == {"SMS", "WhatsApp"}


def test_country_of_numbers():
    numbers = pd.Series(["0031612345678", "00447400123456", "0012025550100", None, "0099"],
                        dtype="string")  # fmt: skip
    got = analysis.country(numbers)
    assert got.iloc[0] == "NL" and got.iloc[1] == "GB" and got.iloc[2] == "US"
    assert pd.isna(got.iloc[3]) and pd.isna(got.iloc[4])


def test_summary_predicted_and_actual_cost():
    kinds = KIND_LIST * 2
    prices = {"NL": 0.10, "BE": 0.20, "*": 1.0}
    plan = make_plan(kinds)
    s = plan.cm.summary(prices=prices)
    valid = plan[plan["error_code"].isna()]
    price = analysis.country(valid["number"]).map(prices).fillna(1.0)
    assert s.loc["all", "predicted_cost"] == pytest.approx(
        float((valid["parts_estimate"].astype(float) * price).sum())
    )
    assert pd.isna(s.loc["all", "cost"])  # nothing sent yet
    camp = make_campaign(kinds)
    c = camp.cm.summary(prices=prices)
    acc = camp[camp["status"] == "accepted"]
    price = analysis.country(acc["number"]).map(prices).fillna(1.0)
    expected = float((acc["parts"].astype(float) * price).sum())
    # "unknown" rows that status reports proved accepted cost their estimate
    proved = camp[(camp["status"] == "unknown") & (camp["delivery_status"] != "none")]
    price = analysis.country(proved["number"]).map(prices).fillna(1.0)
    expected += float((proved["parts_estimate"].astype(float) * price).sum())
    assert len(proved) == 2 and c.loc["all", "cost"] == pytest.approx(expected)
    # a missing price never gives a silently low total
    unpriced = camp.cm.summary(prices={"NL": 0.1})
    assert pd.isna(unpriced.loc["all", "cost"])


def test_errors_from_every_source_with_descriptions():
    camp = make_campaign(KIND_LIST * 2)
    e = camp.cm.errors()
    assert list(e.columns) == list(analysis.ERRORS_COLUMNS)
    table = {(r.source, r.code): r for r in e.itertuples()}
    assert table[("validation", 303)].count == 2
    assert table[("validation", 303)].example == "to: not a phone number"
    assert "invalid Phone Number" in table[("validation", 303)].description
    assert table[("gateway", 402)].description == "Message has been blacklisted"
    assert table[("gateway", 102)].count == 2  # the request-level refusal of not_sent rows
    assert table[("delivery", 1)].description == "Unknown subscriber"
    assert table[("delivery", 204)].count == 2
    assert (0 not in set(e["code"]))  # "no error" is not an error
    assert e["share"].sum() == pytest.approx(1.0)
    assert e.loc[0, "rate"] == pytest.approx(e.loc[0, "count"] / 20)
    assert e["count"].is_monotonic_decreasing


def test_errors_by_group_and_on_a_plan():
    camp = make_campaign(KIND_LIST * 4)
    e = camp.cm.errors(by="custom_grouping")
    assert list(e.columns[:1]) == ["custom_grouping"]
    for _, grp in e.groupby("custom_grouping"):
        assert grp["share"].sum() == pytest.approx(1.0)
        assert grp["count"].is_monotonic_decreasing
    plan_e = make_plan(KIND_LIST).cm.errors()
    assert plan_e["source"].tolist() == ["validation"]
    clean = make_plan(["delivered"] * 3).cm.errors()
    assert clean.empty and list(clean.columns) == list(analysis.ERRORS_COLUMNS)


def test_latency_quantiles_per_group():
    camp = make_campaign(KIND_LIST * 20, seed=3)
    lat = camp.cm.latency(by="custom_grouping")
    assert list(lat.columns) == ["count", "mean", "min", "p50", "p90", "p99", "max"]
    delivered = camp[analysis.outcome(camp) == "delivered"]
    for group, grp in delivered.groupby("custom_grouping"):
        assert lat.loc[group, "count"] == len(grp)
        assert lat.loc[group, "p50"] == pytest.approx(grp["latency"].quantile(0.5), abs=pd.Timedelta("1ms"))
        assert lat.loc[group, "max"] == grp["latency"].max()
    everything = camp.cm.latency(outcomes=None)
    assert everything.loc["all", "count"] == camp["latency"].notna().sum()


def test_latency_before_reports_is_empty_not_an_error():
    lat = make_results(KIND_LIST).cm.latency()
    assert lat.loc["all", "count"] == 0 and pd.isna(lat.loc["all", "p50"])


def test_attention_lists_rows_to_decide():
    camp = make_campaign(KIND_LIST)
    att = camp.cm.attention()
    assert set(att["outcome"]) == {"invalid", "rejected", "unknown", "not_sent", "failed"}
    assert att.loc[att["outcome"] == "invalid", "reason"].iloc[0] == "to: not a phone number"
    assert att["reason"].notna().all()


def test_call_level_mistakes_raise():
    camp = make_campaign(KIND_LIST)
    with pytest.raises(MissingColumnError, match="nope"):
        camp.cm.summary(by="nope")
    with pytest.raises(SpecError, match="build"):
        pd.DataFrame({"to": ["1"]}).cm.summary()


def test_inputs_are_not_mutated():
    camp = make_campaign(KIND_LIST)
    before = camp.copy()
    camp.cm.summary(by="country", prices={"*": 1})
    camp.cm.errors(by="channel")
    camp.cm.latency(by="operator")
    pd.testing.assert_frame_equal(camp, before)


def test_empty_frames_give_an_overall_row_of_zeros():
    empty = make_campaign(KIND_LIST).iloc[:0]
    s = empty.cm.summary()
    assert s.loc["all", "rows"] == 0 and s.loc["all", "delivered"] == 0
    assert pd.isna(s.loc["all", "delivery_rate"])
    assert empty.cm.errors().empty
    assert empty.cm.latency().loc["all", "count"] == 0
