"""Synthetic plan / results / campaign frames for the analysis, chart and report tests.

Written against the column contracts of ``cmframe.schema`` only, so the
analysis can be tested without the build, send and status-report stages.
Each row is described by a *kind* so tests know the exact expected counts:

==================  ===========================================================
kind                meaning
==================  ===========================================================
``delivered``       accepted by the gateway, final report delivered
``failed``          accepted, final report failed (error 1 "Unknown subscriber")
``op_rejected``     accepted, final report rejected by the operator (204)
``pending``         accepted, only the non-final "accepted" report (code 0)
``silent``          accepted, no report at all
``gw_rejected``     rejected by the gateway (402 blacklisted)
``unknown``         request outcome unknown, no report
``unknown_deliv``   request outcome unknown, but a delivered report arrived
``not_sent``        campaign stopped before the chunk (102 insufficient balance)
``invalid``         failed local validation (303 invalid phone number)
==================  ===========================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmframe import schema

KINDS = (
    "delivered", "failed", "op_rejected", "pending", "silent",
    "gw_rejected", "unknown", "unknown_deliv", "not_sent", "invalid",
)  # fmt: skip
T0 = pd.Timestamp("2026-11-29 08:00:00", tz="UTC")


def make_plan(kinds, *, segments=("A", "B"), seed: int = 0) -> pd.DataFrame:
    """A plan frame with one row per kind (validation errors on ``invalid`` rows)."""
    kinds = list(kinds)
    n = len(kinds)
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    invalid = np.array([k == "invalid" for k in kinds])
    # NL, BE and US numbers; US (+1) exercises the shared-calling-code path
    prefixes = np.array(["00316", "00324", "0012126"])[i % 3]
    widths = np.array([8, 8, 6])[i % 3]
    number = pd.array(
        [None if bad else f"{p}{j:0{w}d}" for p, w, j, bad in zip(prefixes, widths, i, invalid, strict=True)],
        dtype="string",
    )
    ucs2 = i % 4 == 0
    plan = pd.DataFrame(
        {
            "to": pd.array([f"raw-{j}" for j in i], dtype="string"),
            "first_name": pd.array([f"Name{j}" for j in i], dtype="string"),
            "segment": pd.array([segments[j % len(segments)] for j in i], dtype="string"),
            "number": number,
            "sender": "CMFrame",
            "body": pd.array([f"Hi Name{j}" for j in i], dtype="string"),
            "body_type": pd.array([pd.NA] * n, dtype="string"),
            "channels": pd.array(
                ["WhatsApp,SMS" if j % 2 else "SMS" for j in i], dtype="string"
            ),
            "reference": pd.array(["spring"] * n, dtype="string"),
            "custom_grouping": pd.array([segments[j % len(segments)] for j in i], dtype="string"),
            "custom_grouping2": pd.array([pd.NA] * n, dtype="string"),
            "custom_grouping3": pd.array([pd.NA] * n, dtype="string"),
            "validity": pd.array([pd.NA] * n, dtype="string"),
            "min_parts": pd.array([pd.NA] * n, dtype="Int64"),
            "max_parts": pd.array([pd.NA] * n, dtype="Int64"),
            "dcs": pd.array([pd.NA] * n, dtype="Int64"),
            "rich_content": pd.array([pd.NA] * n, dtype="string"),
            "encoding": pd.array(np.where(ucs2, "ucs2", "gsm7"), dtype="string"),
            "body_length": pd.array(rng.integers(10, 140, n), dtype="Int64"),
            "parts_estimate": pd.array(np.where(ucs2, 2, 1), dtype="Int64"),
            "ucs2_chars": pd.array(np.where(ucs2, "😀", ""), dtype="string"),
            "duplicate": np.zeros(n, dtype=bool),
            "error_code": pd.array([303 if bad else pd.NA for bad in invalid], dtype="Int64"),
            "error": pd.array(
                ["to: not a phone number" if bad else pd.NA for bad in invalid], dtype="string"
            ),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    return plan


def make_results(kinds, **kwargs) -> pd.DataFrame:
    """The plan plus ``RESULT_COLUMNS`` as ``send`` would return them."""
    kinds = list(kinds)
    plan = make_plan(kinds, **kwargs)
    n = len(kinds)
    status_of = {"gw_rejected": "rejected", "unknown": "unknown", "unknown_deliv": "unknown",
                 "not_sent": "not_sent", "invalid": "invalid"}  # fmt: skip
    status = [status_of.get(k, "accepted") for k in kinds]
    accepted = np.array([s == "accepted" for s in status])
    res = plan.copy()
    res["status"] = pd.array(status, dtype="string")
    res["parts"] = pd.array(np.where(accepted, plan["parts_estimate"].to_numpy(), 0), dtype="Int64")
    res["message_error_code"] = pd.array(
        [402 if k == "gw_rejected" else (0 if s == "accepted" else pd.NA)
         for k, s in zip(kinds, status, strict=True)], dtype="Int64")  # fmt: skip
    res["message_details"] = pd.array(
        ["Message has been blacklisted" if k == "gw_rejected" else pd.NA for k in kinds],
        dtype="string",
    )
    res["http_status"] = pd.array(
        [400 if k == "not_sent" else (pd.NA if k in ("invalid", "unknown", "unknown_deliv")
         else 200) for k in kinds], dtype="Int64")  # fmt: skip
    res["request_error_code"] = pd.array(
        [102 if k == "not_sent" else (pd.NA if k == "invalid" else 0) for k in kinds],
        dtype="Int64",
    )
    res["request_details"] = pd.array(
        ["Insufficient balance." if k == "not_sent" else pd.NA for k in kinds], dtype="string"
    )
    res["chunk"] = pd.array([pd.NA if k == "invalid" else j // 4 for j, k in enumerate(kinds)],
                            dtype="Int64")  # fmt: skip
    res["sent_at"] = pd.Series(
        [pd.NaT if k == "invalid" else T0 + pd.Timedelta(seconds=j) for j, k in enumerate(kinds)],
        index=res.index, dtype="datetime64[ns, UTC]",
    )
    assert n == len(res)
    return res


def make_campaign(kinds, *, seed: int = 0, **kwargs) -> pd.DataFrame:
    """The results plus ``DELIVERY_COLUMNS`` as ``merge_status`` would return them."""
    kinds = list(kinds)
    res = make_results(kinds, seed=seed, **kwargs)
    rng = np.random.default_rng(seed + 1)
    delivery = {"delivered": "delivered", "unknown_deliv": "delivered", "failed": "failed",
                "op_rejected": "rejected", "pending": "accepted"}  # fmt: skip
    dstatus = [delivery.get(k, "none") for k in kinds]
    code = {"failed": 1, "op_rejected": 204, "delivered": 0, "unknown_deliv": 0, "pending": 0}
    final = np.array([s in ("delivered", "failed", "rejected") for s in dstatus])
    seconds = rng.exponential(40.0, len(kinds)) + 2.0
    lat = pd.to_timedelta(np.where(final, seconds, np.nan), unit="s")
    out = res.copy()
    out["delivery_status"] = pd.array(dstatus, dtype="string")
    out["delivery_error_code"] = pd.array([code.get(k, pd.NA) for k in kinds], dtype="Int64")
    out["delivery_error"] = pd.array(
        [{1: "Unknown subscriber", 204: "Rejected by operator", 0: "No error"}.get(code.get(k))
         for k in kinds], dtype="string")  # fmt: skip
    reported = np.array([s != "none" for s in dstatus])
    sent_at = out["sent_at"]
    out["first_report_at"] = sent_at.where(reported) + pd.Timedelta(seconds=1)
    out["final_report_at"] = (sent_at + pd.Series(lat, index=out.index)).where(final)
    out["latency"] = pd.Series(lat, index=out.index)
    out["operator"] = pd.array(
        [("KPN" if j % 2 else "Vodafone") if r else pd.NA for j, r in enumerate(reported)],
        dtype="string",
    )
    out["reports_seen"] = pd.array(np.where(reported, np.where(final, 2, 1), 0), dtype="Int64")
    return out


def test_fixtures_follow_the_schema():
    kinds = list(KINDS) * 3
    plan, res, camp = make_plan(kinds), make_results(kinds), make_campaign(kinds)
    assert set(schema.PLAN_COLUMNS) <= set(plan.columns)
    assert set(schema.RESULT_COLUMNS) <= set(res.columns)
    assert set(schema.DELIVERY_COLUMNS) <= set(camp.columns)
    assert set(res["status"].unique()) <= set(schema.SEND_STATUSES)
    assert set(camp["delivery_status"].unique()) <= set(schema.DELIVERY_STATUSES)
    assert camp.index.equals(plan.index)
