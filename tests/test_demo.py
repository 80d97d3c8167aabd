"""`make demo`'s job, `python -m cmframe demo`: a whole campaign on loopback."""

from __future__ import annotations

import contextlib
import io
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cmframe import analysis, demo, schema

ROOT = Path(__file__).resolve().parent.parent


TOKEN = "d1571ac7-0000-4bad-8eed-5ecre7000000"  # distinctive: must appear nowhere


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One demo run (as `cmframe demo` runs it), with a known token to look for later."""
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    printed, logged = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(logged)
    logging.getLogger().addHandler(handler)
    original = demo._new_token
    demo._new_token = lambda: TOKEN
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(logged):
            code = demo.main(["--out", str(out)])
    finally:
        demo._new_token = original
        logging.getLogger().removeHandler(handler)
    assert code == 0, logged.getvalue()[-3000:]
    return out, printed.getvalue() + logged.getvalue()


def test_python_m_cmframe_demo_is_the_command():
    done = subprocess.run([sys.executable, "-m", "cmframe", "demo", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0 and "demo-output" in done.stdout


def test_the_token_is_nowhere(demo_run):
    out, printed = demo_run
    assert TOKEN not in printed
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for path in files:
        assert TOKEN.encode() not in path.read_bytes(), path.name


def test_demo_writes_every_output_and_prints_where(demo_run):
    out, printed = demo_run
    for name in ("campaign.parquet", "campaign.csv", "report.html", "outcomes.png",
                 "errors.png", "latency.png", "timeline.png"):  # fmt: skip
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
        assert str(path) in printed, name
    assert "recipients.csv" in printed and "headline: 2,000 rows" in printed
    assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_campaign_has_one_outcome_per_recipient(demo_run):
    out, printed = demo_run
    campaign = pd.read_parquet(out / "campaign.parquet")
    recipients = pd.read_csv(ROOT / "data" / "recipients.csv", dtype="string")
    assert len(campaign) == len(recipients)
    assert set(schema.DELIVERY_COLUMNS) <= set(campaign.columns)
    outcomes = analysis.outcome(campaign)
    assert outcomes.notna().all()
    s = analysis.summary(campaign).loc["all"]
    assert s["invalid"] > 0 and s["delivered"] > 0.8 * s["accepted"]
    assert s["rejected"] > 0  # the demo's blacklisted numbers
    # the dropped request's rows were unknown when sent and settled by their reports
    unknown_sent = (campaign["status"] == "unknown").sum()
    assert unknown_sent > 0 and (outcomes[campaign["status"] == "unknown"] != "unknown").any()
    assert f"{int(s['delivered']):,} delivered" in printed
    csv = pd.read_csv(out / "campaign.csv")
    assert len(csv) == len(campaign) and "latency_seconds" in csv.columns


def test_demo_matches_the_gateway_ledger_exactly(demo_run):
    out, _ = demo_run
    campaign = pd.read_parquet(out / "campaign.parquet")
    with sqlite3.connect(out / "ledger.sqlite") as db:
        ledger = pd.read_sql("select number, reference, status from messages", db)
    outcomes = analysis.outcome(campaign)
    accepted = outcomes.isin(["delivered", "failed", "pending", "accepted"]) | (
        (outcomes == "rejected") & (campaign["status"] != "rejected")
    )
    # exactly once: every message the gateway accepted is one accepted row, and back
    assert accepted.sum() == len(ledger)
    assert sorted(campaign.loc[accepted, "number"]) == sorted(ledger["number"])
    # per number sent once, the campaign's final status is the one the gateway decided
    once = ledger.drop_duplicates("number", keep=False).set_index("number")["status"]
    merged = campaign.set_index("number")["delivery_status"]
    merged = merged[~merged.index.duplicated(keep=False)]
    common = once.index.intersection(merged.index)
    assert len(common) > 1000
    assert (merged.loc[common].to_numpy(dtype=object) == once.loc[common].to_numpy(dtype=object)).all()


def test_demo_report_shows_headline_numbers(demo_run):
    out, _ = demo_run
    html = (out / "report.html").read_text(encoding="utf-8")
    campaign = pd.read_parquet(out / "campaign.parquet")
    delivered = int((analysis.outcome(campaign) == "delivered").sum())
    assert f'data-metric="delivered">{delivered:,}<' in html
    assert html.count("data:image/png;base64,") >= 5
    assert "more settled by status reports" in html


def test_sample_recipients_build_when_the_csv_is_missing():
    frame = demo.sample_recipients(300, seed=1)
    assert len(frame) == 300 and frame["phone"].dtype == "string"
    plan = demo.build_plan(frame)
    invalid = plan["error_code"].notna()
    assert 0 < invalid.sum() < 30 and plan.loc[~invalid, "number"].str.startswith("00316").all()


def test_report_command_from_the_demo_journal_and_store(demo_run, tmp_path):
    out, _ = demo_run
    html_path = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "cmframe", "report", str(out / "campaign.cmjournal"),
         "--reports", str(out / "reports.sqlite"), "--out", str(html_path),
         "--price", "NL=0.075", "--price", "*=0.095"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    campaign = pd.read_parquet(out / "campaign.parquet")
    outcomes = analysis.outcome(campaign)
    delivered = int((outcomes == "delivered").sum())
    html = html_path.read_text(encoding="utf-8")
    assert f'data-metric="delivered">{delivered:,}<' in html
    assert f"{delivered:,} delivered" in done.stdout and str(html_path) in done.stdout
    assert 'data-metric="cost">€' in html


def test_report_from_the_demo_csv_matches_the_parquet(demo_run, tmp_path, capsys):
    from cmframe import report

    out, _ = demo_run
    assert report.main([str(out / "campaign.csv"), "--out", str(tmp_path / "r.html")]) == 0
    from_csv = capsys.readouterr().out.splitlines()[-1]
    parquet = pd.read_parquet(out / "campaign.parquet")
    assert from_csv == report.format_headline(report.headline(parquet))
