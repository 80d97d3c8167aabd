"""Round trip: a campaign on the embedded gateway, its status reports pushed to the
receiver in every format (duplicated and reordered), read back and merged: the
final status of every row equals the outcome the gateway's ledger decided.

The same outcomes must also come out of the gateway's CSV export and of its
Transactions API, read with the same readers.
"""

from __future__ import annotations

import pandas as pd
import pytest

import cmframe
from cmframe.build import build
from cmframe.gateway import serve_gateway
from cmframe.receiver import serve_receiver
from cmframe.reports import fetch_transactions, read_status_reports
from cmframe.send import send

pytestmark = pytest.mark.timeout(180)

TOKEN = "5f0c2a9e-7d41-4b3a-9e6f-c0ffee12abcd"


def recipients(n: int) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "phone": [f"+31 6 {30000000 + i}" for i in range(n)],
            "segment": ["gold" if i % 3 else "silver" for i in range(n)],
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="cid"),
    )
    rows.loc["c5", "phone"] = "not a number"  # invalid: never sent, no reports
    return rows


def ledger_outcomes(ledger: pd.DataFrame) -> pd.Series:
    """Decided final status per (reference, number) in the ledger."""
    key = ledger["reference"].astype("string").fillna("") + "|" + ledger["number"].astype("string")
    return pd.Series(ledger["status"].astype("string").to_numpy(), index=key.to_numpy())


def campaign_outcomes(campaign: pd.DataFrame) -> pd.Series:
    sent = campaign[campaign["status"] == "accepted"]
    key = sent["reference"].astype("string").fillna("") + "|" + sent["number"].astype("string")
    return pd.Series(sent["delivery_status"].to_numpy(), index=key.to_numpy())


def gateway_options(webhook: str, fmt: str) -> dict:
    return dict(
        tokens=[TOKEN], webhook=webhook, report_format=fmt, report_batch=3 if fmt in ("json", "xml") else 1,
        duplicate_rate=0.3, reorder_rate=0.4, reorder_window=0.3, time_scale=1000.0,
        accepted_delay=1.0, delivery_delay=5.0, delivered_rate=0.6, failed_rate=0.25, rejected_rate=0.15, seed=11,
    )  # fmt: skip


@pytest.mark.parametrize("fmt", ["json", "xml", "get", "form"])
def test_pushed_reports_merge_to_the_ledger_outcomes(tmp_path, fmt):
    plan = build(recipients(60), to="phone", sender="CMFrame", body="Hi", reference="rt-{segment}")
    with serve_receiver(tmp_path / "reports.sqlite") as rx:
        with serve_gateway(**gateway_options(rx.url, fmt)) as gw:
            results = send(plan, url=gw.message_url, token=TOKEN, progress=False, chunk_size=25)
            assert gw.wait_reports(timeout=90), "the gateway did not push every report"
            ledger = gw.ledger_frame()
            deliveries = gw.deliveries_frame()
        reports, rejects = rx.read(return_rejects=True)
    assert len(rejects) == 0
    assert set(reports["source"]) == {fmt}
    accepted = results["status"] == "accepted"
    assert accepted.sum() == len(ledger) == len(plan) - 1
    # duplicates really happened: more stored reports than messages x 2
    assert len(reports) > 2 * len(ledger)
    assert (deliveries["http_status"] == 200).sum() >= len(reports) / (3 if fmt in ("json", "xml") else 1)

    out = results.cm.merge_status(reports, return_unmatched=True)
    campaign = out.campaign
    assert len(out.unmatched) == 0
    got, expected = campaign_outcomes(campaign), ledger_outcomes(ledger)
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert set(got) >= {"delivered", "failed", "rejected"}  # every outcome exercised
    # timestamps and details come through as the ledger decided them
    sent = campaign[accepted]
    by_key = ledger.assign(key=ledger["reference"] + "|" + ledger["number"]).set_index("key")
    keys = (sent["reference"] + "|" + sent["number"]).to_numpy()
    pd.testing.assert_series_equal(
        sent["final_report_at"].reset_index(drop=True),
        # reports carry milliseconds (truncated), the ledger microseconds
        pd.to_datetime(by_key.loc[keys, "final_report_at"], utc=True).dt.floor("ms").dt.as_unit("ns")
        .reset_index(drop=True),
        check_names=False,
    )
    assert (sent["delivery_error_code"].to_numpy() == by_key.loc[keys, "error_code"].to_numpy()).all()
    assert (sent["reports_seen"] >= 2).all()
    assert campaign.loc["c5", "delivery_status"] == "none" and campaign.loc["c5", "reports_seen"] == 0
    # (not necessarily positive: a report may be timed before the client saw the answer)
    assert sent["latency"].notna().all()
    assert (sent["latency"] == sent["final_report_at"] - sent["sent_at"]).all()


def test_csv_export_and_transactions_api_give_the_same_outcomes(tmp_path):
    plan = build(recipients(40), to="phone", sender="CMFrame", body="Hi", reference="tx-{segment}")
    options = gateway_options(None, "json")
    options.update(webhook=None, duplicate_rate=0.0, reorder_rate=0.0)
    with serve_gateway(**options) as gw:
        results = send(plan, url=gw.message_url, token=TOKEN, progress=False)
        ledger = gw.ledger_frame()
        # every report is due after at most a few real seconds (time_scale 1000)
        due = pd.to_datetime(ledger["final_report_due"], utc=True).max()
        wait = (due - pd.Timestamp.now(tz="UTC")).total_seconds()
        if wait > 0:
            import time

            time.sleep(min(wait + 0.2, 30))
        csv_path = gw.export_csv(tmp_path / "export.csv")
        pulled = fetch_transactions(TOKEN, url=gw.url + "/v1.2/transactions/", page_size=7)
    from_csv = read_status_reports(csv_path)
    expected = ledger_outcomes(ledger).sort_index().to_dict()
    for reports in (from_csv, pulled):
        campaign = cmframe.merge_status(results, reports)
        assert campaign_outcomes(campaign).sort_index().to_dict() == expected
    assert set(pulled["source"]) == {"transactions"} and set(from_csv["source"]) == {"csv"}
