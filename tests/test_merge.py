"""merge_status: the outcome rules, unmatched reports, conflicts, and a reference model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cmframe  # noqa: F401  (registers df.cm)
from cmframe.exceptions import MissingColumnError
from cmframe.report_formats import reports_frame
from cmframe.reports import MergeResult, merge_status
from cmframe.schema import DELIVERY_COLUMNS, DELIVERY_STATUSES

T0 = pd.Timestamp("2026-11-29 08:00:00", tz="UTC")
NAMES = {0: "accepted", 1: "rejected", 2: "delivered", 3: "failed"}


def results_frame(numbers, references=None, sent_at=T0):
    n = len(numbers)
    return pd.DataFrame(
        {
            "number": pd.array(numbers, dtype="string"),
            "reference": pd.array(references if references is not None else ["spring"] * n, dtype="string"),
            "status": pd.array(["accepted"] * n, dtype="string"),
            "sent_at": pd.array([sent_at] * n, dtype="datetime64[ns, UTC]"),
        },
        index=pd.Index([f"r{i}" for i in range(n)], name="rid"),
    )


def report(to, code, seconds, reference="spring", error_code=None, operator=None, description=None):
    when = None if seconds is None else (T0 + pd.Timedelta(seconds=seconds)).to_pydatetime()
    return (to, reference, code, NAMES.get(code), error_code, description, operator, when, "json")


def test_rules_delivered_sticky_final_beats_nonfinal_later_final_wins():
    res = results_frame(["0031600000001", "0031600000002", "0031600000003", "0031600000004", "0031600000005"])
    reps = reports_frame(
        [
            # 1: delivered at 5 s, then a failed at 9 s and a late accepted: delivered (conflict)
            report("0031600000001", 2, 5, operator="KPN", error_code=0, description="No error"),
            report("0031600000001", 3, 9, error_code=5),
            report("0031600000001", 0, 12),
            # 2: failed at 20 s, rejected at 30 s (listed first): the later final wins (conflict)
            report("0031600000002", 1, 30, error_code=204, description="Rejected by operator"),
            report("0031600000002", 3, 20, error_code=1, operator="Odido"),
            # 3: accepted after a failed: the final one stands
            report("0031600000003", 3, 4, error_code=34),
            report("0031600000003", 0, 8, operator="Vodafone"),
            # 4: only accepted, twice (a duplicate)
            report("0031600000004", 0, 3),
            report("0031600000004", 0, 3),
            # an unmatched one
            report("0031699999999", 2, 3),
        ]
    )
    out = merge_status(res, reps, return_unmatched=True)
    assert isinstance(out, MergeResult)
    camp = out.campaign
    assert list(camp.index) == list(res.index) and camp.index.name == "rid"
    assert list(camp.columns) == list(res.columns) + list(DELIVERY_COLUMNS)
    assert list(camp["delivery_status"]) == ["delivered", "rejected", "failed", "accepted", "none"]
    assert set(camp["delivery_status"]) <= set(DELIVERY_STATUSES)
    assert camp["delivery_error_code"].fillna(-1).tolist() == [0, 204, 34, -1, -1]
    assert camp.loc["r1", "delivery_error"] == "Rejected by operator"
    assert list(camp["reports_seen"]) == [3, 2, 2, 2, 0]
    secs = (camp["final_report_at"] - T0).dt.total_seconds()
    assert list(secs.fillna(-1)) == [5, 30, 4, -1, -1]
    assert list((camp["first_report_at"] - T0).dt.total_seconds().fillna(-1)) == [5, 20, 4, 3, -1]
    assert list(camp["latency"].dt.total_seconds().fillna(-1)) == [5, 30, 4, -1, -1]
    # operator of the winner, else the last one named
    assert list(camp["operator"].fillna("-")) == ["KPN", "Odido", "Vodafone", "-", "-"]
    assert out.conflicts == 2 and camp.attrs["cm_merge"]["conflicts"] == 2
    assert list(out.unmatched["to"]) == ["0031699999999"]
    assert camp.attrs["cm_merge"] == {"reports": 10, "matched": 9, "unmatched": 1, "conflicts": 2}


def test_delivered_earliest_counts_and_order_of_rows_does_not_matter():
    res = results_frame(["0031600000001"])
    rows = [report("0031600000001", 2, 50), report("0031600000001", 2, 7), report("0031600000001", 0, 1)]
    a = merge_status(res, reports_frame(rows))
    b = merge_status(res, reports_frame(rows[::-1]))
    pd.testing.assert_frame_equal(a, b)
    assert a["latency"].iloc[0] == pd.Timedelta(seconds=7)


def test_keys_reference_and_number_and_missing_values():
    res = results_frame(
        ["0031600000001", "0031600000001", "0031600000002", None, "0031600000001"],
        references=["a", "b", None, "a", "a"],
    )
    reps = reports_frame(
        [
            report("0031600000001", 2, 1, reference="a"),
            report("0031600000001", 3, 1, reference="b"),
            report("0031600000002", 3, 1, reference=None),  # no reference matches no reference
            report("0031600000002", 2, 1, reference="a"),  # unmatched: wrong reference
        ]
    )
    out = merge_status(res, reps, return_unmatched=True)
    # the duplicate row (same number and reference) gets the same outcome
    assert list(out.campaign["delivery_status"]) == ["delivered", "failed", "failed", "none", "delivered"]
    assert len(out.unmatched) == 1 and out.unmatched["reference"].iloc[0] == "a"


def test_hand_made_report_frames_are_normalised_and_inputs_untouched():
    res = results_frame(["0031600000001", "0031600000002"])
    reps = pd.DataFrame(
        {
            "to": ["+31600000001", "31 600 000 002"],
            "reference": ["spring", "spring"],
            "status": ["Delivered", "FAILED"],
            "received_at": [T0, T0],
        }
    )
    res_before, reps_before = res.copy(), reps.copy()
    camp = res.cm.merge_status(reps)
    assert list(camp["delivery_status"]) == ["delivered", "failed"]
    pd.testing.assert_frame_equal(res, res_before)
    pd.testing.assert_frame_equal(reps, reps_before)
    # merging again replaces the delivery columns instead of duplicating them
    again = camp.cm.merge_status(reports_frame([]))
    assert list(again.columns) == list(camp.columns)
    assert list(again["delivery_status"]) == ["none", "none"]
    assert list(again["reports_seen"]) == [0, 0]


def test_missing_columns_and_sources():
    with pytest.raises(MissingColumnError):
        merge_status(pd.DataFrame({"x": [1]}), reports_frame([]))
    with pytest.raises(MissingColumnError):
        merge_status(results_frame(["0031600000001"]), pd.DataFrame({"to": ["0031600000001"]}))
    # any read_status_reports source works
    camp = merge_status(results_frame(["0031600000001"]), "TO=0031600000001&REFERENCE=spring&STATUS=2")
    assert camp["delivery_status"].iloc[0] == "delivered"
    assert pd.isna(camp["latency"].iloc[0])  # a report without a time: delivered, latency unknown


# --------------------------------------------------------------------------- reference model
def model(results: pd.DataFrame, reports: pd.DataFrame) -> list[tuple]:
    """The rules, one row at a time (what the vectorised merge must equal)."""
    out = []
    def same(a, b):
        return (pd.isna(a) and pd.isna(b)) or (not pd.isna(a) and not pd.isna(b) and a == b)

    for number, reference in zip(results["number"], results["reference"], strict=True):
        mine = [
            (i, r) for i, r in enumerate(reports.itertuples(index=False))
            if not pd.isna(number) and r.to == number and same(r.reference, reference)
        ]  # fmt: skip
        status, final_at = "none", None
        delivered = [(r.received_at, i) for i, r in mine if r.status == "delivered"]
        finals = [(r.received_at, i) for i, r in mine if r.status in ("failed", "rejected")]
        accepted = [(r.received_at, i) for i, r in mine if r.status == "accepted"]
        if delivered:
            status, final_at = "delivered", min(delivered)[0]
        elif finals:
            t, i = max(finals)
            status, final_at = mine[[j for j, _ in mine].index(i)][1].status, t
        elif accepted:
            status = "accepted"
        kinds = {r.status for _, r in mine if r.status in ("failed", "rejected", "delivered")}
        out.append((status, final_at, len(mine), len(kinds) > 1))
    return out


@st.composite
def scenario(draw):
    numbers = ["0031600000001", "0031600000002", "0031600000003", None]
    rows = draw(st.lists(st.tuples(st.sampled_from(numbers), st.sampled_from(["a", "b", None])), min_size=1, max_size=6))
    reps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(numbers[:3] + ["0031600000009"]),
                st.sampled_from(["a", "b", None]),
                st.sampled_from([0, 1, 2, 3, 9]),
                st.integers(0, 5),  # few distinct times: ties happen
            ),
            max_size=12,
        )
    )
    return rows, reps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_vectorised_merge_equals_the_row_by_row_model(case):
    rows, reps = case
    res = results_frame([r[0] for r in rows], references=[r[1] for r in rows])
    reports = reports_frame([report(t, c, s, reference=ref) for t, ref, c, s in reps])
    got = merge_status(res, reports, return_unmatched=True)
    expected = model(res, reports)
    camp = got.campaign
    assert list(camp["delivery_status"]) == [e[0] for e in expected]
    assert list(camp["reports_seen"]) == [e[2] for e in expected]
    for final_at, e in zip(camp["final_report_at"], expected, strict=True):
        if e[1] is None:
            assert pd.isna(final_at)
        else:
            assert final_at == e[1]
    assert got.conflicts == sum(e[3] for e in expected)
    matched = sum(e[2] for e, r in zip(expected, rows, strict=True))  # rows can share a key
    assert len(got.unmatched) + camp.attrs["cm_merge"]["matched"] == len(reports)
    assert camp.attrs["cm_merge"]["matched"] <= matched


def test_large_merge_is_vectorised_enough():
    # 200k rows x 600k reports: a per-row loop would take minutes; this must take seconds
    rng = np.random.default_rng(0)
    n, m = 200_000, 600_000
    numbers = pd.array([f"00316{i:08d}" for i in range(n)], dtype="string")
    res = pd.DataFrame({"number": numbers, "reference": pd.array(["spring"] * n, dtype="string"),
                        "sent_at": pd.Series([T0] * n, dtype="datetime64[ns, UTC]")})  # fmt: skip
    pick = rng.integers(0, n, m)
    codes = rng.choice([0, 1, 2, 3], m, p=[0.4, 0.05, 0.5, 0.05])
    reps = pd.DataFrame({
        "to": numbers.take(pick), "reference": pd.array(["spring"] * m, dtype="string"),
        "status_code": pd.array(codes, dtype="Int64"),
        "status": pd.Categorical.from_codes(codes, ["accepted", "rejected", "delivered", "failed"]),
        "received_at": T0 + pd.to_timedelta(rng.integers(1, 600, m), unit="s"),
    })  # fmt: skip
    import time

    start = time.perf_counter()
    camp = merge_status(res, reps)
    elapsed = time.perf_counter() - start
    assert camp["reports_seen"].sum() == m
    assert elapsed < 30, elapsed  # generous: shared 2-core machine
