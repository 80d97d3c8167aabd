"""The ``cm`` accessor on Dask DataFrames gives the pandas answers (issue 7).

Everything runs on one LocalCluster with two worker processes on loopback.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import dask.dataframe as dd
import httpx
import numpy as np
import pandas as pd
import pytest
from dask.delayed import Delayed
from distributed import Client, LocalCluster

import cmframe
from cmframe.dask import JOURNAL_MANIFEST, DaskCMAccessor
from cmframe.exceptions import JournalMismatch, MissingColumnError, RequestRejected, SpecError
from cmframe.reports import merge_status, read_status_reports
from cmframe.schema import DELIVERY_COLUMNS, PLAN_COLUMNS, REPORT_COLUMNS
from cmframe.send import send
from cmframe.testing import FakeGateway

TOKEN = "00000000-0000-0000-0000-000000000000"
SPEC = dict(to="phone", body="Hi {name}", sender="Shop", reference="{ref}", custom_grouping="{grp}")


@pytest.fixture(scope="module")
def client():
    # no dashboard; the scheduler's small HTTP server (/health) would else take 0.0.0.0:8787
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0",
                      scheduler_kwargs={"dashboard": False}) as cluster, Client(cluster) as c:  # fmt: skip
        yield c


def recipients(n: int = 600, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    phones = [f"+316{v}" for v in rng.integers(10**7, 10**8, n)]
    df = pd.DataFrame({
        "phone": phones,
        "name": rng.choice(["Ann", "Bob", "Zoë", ""], n),  # "" makes an empty body: 304
        "grp": rng.choice(["north", "south", "west"], n),
        "ref": rng.choice(["spring", "summer"], n),
    })
    bad = [i for i in (3, 17, 333) if i < n]
    df.loc[bad, "phone"] = ["123", "not a number", "+3161234"][: len(bad)]  # invalid: 302/303
    if n > 41:
        df.loc[41] = df.loc[40]  # a duplicate recipient, within one partition
    return df


@functools.cache  # the frames are only read (copy-on-write): build and send once per shape
def campaign_inputs(n: int = 600, seed: int = 7):
    """A plan sent to a FakeGateway, and messy status reports for it."""
    rng = np.random.default_rng(seed)
    plan = recipients(n, seed).cm.build(**SPEC)
    with FakeGateway(tokens=[TOKEN]) as fake:
        results = send(plan, url=fake.message_url, token=TOKEN, progress=False, chunk_size=100,
                       transport=fake.transport)  # fmt: skip
    sent = results[results["status"] == "accepted"]
    picks = rng.choice(len(sent), size=int(len(sent) * 1.6), replace=True)  # 0, 1 or more reports per row
    m = len(picks)
    base = pd.Timestamp("2026-11-29 08:00", tz="UTC")
    reps = pd.DataFrame({
        "to": sent["number"].to_numpy()[picks],
        "reference": sent["reference"].to_numpy()[picks],
        "status": rng.choice(["accepted", "delivered", "failed", "rejected"], m, p=[0.3, 0.5, 0.15, 0.05]),
        "error_code": rng.choice([0, 9, 17, 1000], m),
        "operator": rng.choice(["KPN", "Vodafone", None], m),
        "received_at": base + pd.to_timedelta(rng.integers(0, 600, m), unit="s"),
    })
    # reports that match nothing, and one whose reference is missing
    extra = pd.DataFrame({"to": ["0031600000001", "0031600000002"], "reference": ["spring", None],
                          "status": ["delivered", "failed"], "error_code": [0, 9],
                          "operator": ["KPN", None], "received_at": [base, base]})  # fmt: skip
    reps = pd.concat([reps, extra], ignore_index=True)
    return results, read_status_reports(reps)


def assert_same_frame(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left.sort_index(), right.sort_index(), check_like=False)


# ---------------------------------------------------------------------------- registration
def test_import_cmframe_registers_the_accessor_on_dask_frames():
    ddf = dd.from_pandas(pd.DataFrame({"a": [1]}), npartitions=1)
    assert isinstance(ddf.cm, DaskCMAccessor)
    assert hasattr(cmframe, "dask")


def test_without_dask_cmframe_imports_and_says_which_extra_is_missing():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "import cmframe, pandas as pd\n"
        "assert hasattr(pd.DataFrame({'a': [1]}), 'cm')\n"
        "try:\n"
        "    cmframe.read_status_reports('reports/*.csv', engine='dask')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cmframe[dask]" in out.stdout


# ---------------------------------------------------------------------------- build
def test_build_runs_partition_wise_with_the_pandas_answer(client):
    df = recipients()
    ddf = dd.from_pandas(df, npartitions=3)
    plan = ddf.cm.build(**SPEC)
    assert plan.npartitions == 3
    got = plan.compute()
    # the declared meta is what the partitions hold
    assert list(plan.columns) == list(got.columns)
    assert plan.dtypes.to_dict() == got.dtypes.to_dict()
    want = df.cm.build(**SPEC)
    pd.testing.assert_frame_equal(got[list(PLAN_COLUMNS)], want[list(PLAN_COLUMNS)])
    assert got["error_code"].notna().sum() >= 3
    assert bool(got.loc[41, "duplicate"])  # same partition as row 40


def test_build_refuses_a_series_it_cannot_line_up():
    ddf = dd.from_pandas(recipients(20), npartitions=2)
    with pytest.raises(SpecError, match="template"):
        ddf.cm.build(to="phone", sender="Shop", body=pd.Series(["x"] * 20))
    with pytest.raises(MissingColumnError):  # said at call time, not at compute time
        ddf.cm.build(to="phone", sender="Shop", body="Hi {nickname}")


# ---------------------------------------------------------------------------- reports and merge
def test_read_status_reports_engine_dask_reads_a_glob(tmp_path, client):
    _, reps = campaign_inputs()
    thirds = np.array_split(np.arange(len(reps)), 3)
    for i, rows in enumerate(thirds[:2]):
        reps.iloc[rows].to_csv(tmp_path / f"reports-{i}.csv", index=False)
    reps.iloc[thirds[2]].to_parquet(tmp_path / "reports-2.parquet")
    ddf = cmframe.read_status_reports(str(tmp_path / "reports-*"), engine="dask")
    assert isinstance(ddf, dd.DataFrame) and ddf.npartitions == 3
    got = ddf.compute().reset_index(drop=True)
    want = pd.concat([read_status_reports(str(tmp_path / f"reports-{i}.csv")) for i in (0, 1)]
                     + [read_status_reports(pd.read_parquet(tmp_path / "reports-2.parquet"))],
                     ignore_index=True)  # fmt: skip
    assert list(got.columns) == list(REPORT_COLUMNS)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got["to"].tolist() == reps["to"].tolist()


def test_read_status_reports_rejects_come_back_as_a_dask_frame(tmp_path):
    (tmp_path / "a.csv").write_text("to,status\n0031612345678,delivered\n,delivered\n")
    got = cmframe.read_status_reports([tmp_path / "a.csv"], engine="dask", return_rejects=True)
    assert len(got.reports.compute()) == 1
    assert len(got.rejects.compute()) == 1
    with pytest.raises(ValueError, match="engine"):
        cmframe.read_status_reports(tmp_path / "a.csv", engine="spark")


def test_distributed_merge_gives_the_pandas_answer(client):
    results, reps = campaign_inputs()
    res_d = dd.from_pandas(results, npartitions=4)
    rep_d = dd.from_pandas(reps, npartitions=3)
    # the same data: Dask stores the caller's text columns with its own string dtype
    want = merge_status(res_d.compute(), rep_d.compute(), return_unmatched=True)
    got = res_d.cm.merge_status(rep_d, return_unmatched=True)
    campaign = got.campaign.compute()
    assert list(got.campaign.columns) == list(campaign.columns)
    assert set(DELIVERY_COLUMNS) <= set(campaign.columns)
    pd.testing.assert_frame_equal(campaign.sort_index(), want.campaign.sort_index())
    # the same final statuses, conflicts and unmatched reports
    assert want.conflicts > 0 and got.conflicts.compute() == want.conflicts
    unmatched = got.unmatched.compute()
    assert len(unmatched) == len(want.unmatched) >= 2
    assert sorted(unmatched["to"]) == sorted(want.unmatched["to"])
    delivered = (campaign["delivery_status"] == "delivered").sum()
    assert 0 < delivered < len(campaign)


def test_merge_reads_report_files_and_hand_made_numbers(tmp_path, client):
    results, reps = campaign_inputs(200, seed=3)
    hand = reps.assign(to="+" + reps["to"].str.slice(2))  # "+31..." as typed by hand
    res_d = dd.from_pandas(results, npartitions=2)
    want = merge_status(res_d.compute(), hand)
    got = res_d.cm.merge_status(hand, npartitions=3).compute()
    pd.testing.assert_frame_equal(got.sort_index(), want.sort_index())
    reps.to_csv(tmp_path / "r.csv", index=False)
    from_files = res_d.cm.merge_status(str(tmp_path / "*.csv"))
    assert (from_files.compute().sort_index()["delivery_status"] == want["delivery_status"]).all()


# ---------------------------------------------------------------------------- analysis
@pytest.mark.parametrize("by", [None, "customGrouping", ["reference", "outcome"], "operator"])
def test_summary_adds_up_partitions_to_the_pandas_summary(client, by):
    results, reps = campaign_inputs()
    ddf = dd.from_pandas(merge_status(results, reps), npartitions=5)
    campaign = ddf.compute()  # the same data (Dask's string dtype for the caller's columns)
    # "operator" has <NA> groups (rows without reports); no price for NL makes costs <NA>
    prices = {"customGrouping": {"NL": 0.07}, "operator": {"DE": 0.1}}.get(str(by))
    got = ddf.cm.summary(by=by, prices=prices, split_every=2)
    want = campaign.cm.summary(by=by, prices=prices)
    pd.testing.assert_frame_equal(got, want)
    assert got["rows"].sum() == len(campaign)


def test_summary_of_a_plan_keeps_unrun_stages_missing(client):
    plan = recipients().cm.build(**SPEC)
    got = dd.from_pandas(plan, npartitions=3).cm.summary(by="custom_grouping", prices={"*": 0.1})
    pd.testing.assert_frame_equal(got, plan.cm.summary(by="custom_grouping", prices={"*": 0.1}))
    assert got["accepted"].isna().all() and got["cost"].isna().all()


def test_summary_can_stay_lazy(client):
    plan = recipients(100).cm.build(**SPEC)
    lazy = dd.from_pandas(plan, npartitions=2).cm.summary(compute=False)
    assert isinstance(lazy, Delayed)
    assert int(lazy.compute().loc["all", "rows"]) == 100


@pytest.mark.parametrize("by", [None, "custom_grouping"])
def test_errors_add_up_partitions_to_the_pandas_errors(client, by):
    results, reps = campaign_inputs()
    ddf = dd.from_pandas(merge_status(results, reps), npartitions=4)
    campaign = ddf.compute()
    got = ddf.cm.errors(by=by)
    want = campaign.cm.errors(by=by)
    assert len(want) >= 4 and set(want["source"]) >= {"validation", "delivery"}
    key = [*([by] if by else []), "source", "code"]
    cols = ["count", "share", "rate", "description"]
    pd.testing.assert_frame_equal(got.set_index(key)[cols].sort_index(), want.set_index(key)[cols].sort_index())
    assert list(got.columns) == list(want.columns)
    # one text per delivery code here, so the examples agree too
    deliv = want["source"] == "delivery"
    assert got[deliv]["example"].tolist() == want[deliv]["example"].tolist()


# ---------------------------------------------------------------------------- send
class RejectOnce(httpx.AsyncBaseTransport):
    """The gateway, but the ``n``-th request is refused as a whole (errorCode 102)."""

    def __init__(self, inner: httpx.MockTransport, n: int) -> None:
        self.inner, self.n, self.seen = inner, n, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.seen == self.n:
            await request.aread()
            return httpx.Response(400, json={"details": "no account", "errorCode": 102, "messages": []})
        return await self.inner.handle_async_request(request)


def test_send_drives_partitions_from_the_client_exactly_once(tmp_path, client, request):
    df = recipients(300)
    plan = dd.from_pandas(df, npartitions=3).cm.build(**SPEC)
    fake = FakeGateway(tokens=[TOKEN])
    request.addfinalizer(fake.close)
    folder = tmp_path / "campaign.d"
    options = dict(url=fake.message_url, token=TOKEN, journal=folder, chunk_size=25,
                   concurrency=1, progress=False)  # fmt: skip
    # the first run stops in the second partition: a request is refused
    with pytest.raises(RequestRejected):
        plan.cm.send(transport=RejectOnce(fake.transport, 6), **options)
    first = len(fake.ledger_frame())
    assert 0 < first < (plan.compute()["error_code"].isna()).sum()
    assert json.loads((folder / JOURNAL_MANIFEST).read_text()) == {"partitions": 3}
    # the rerun resumes: every valid row reaches the gateway exactly once
    results = plan.cm.send(transport=fake.transport, **options)
    assert isinstance(results, dd.DataFrame)
    got = results.compute()
    ledger = fake.ledger_frame()
    valid = got["error_code"].isna()
    assert len(ledger) == valid.sum()
    assert (got.loc[valid, "status"] == "accepted").all()
    assert (got.loc[~valid, "status"] == "invalid").all()
    # a third run sends nothing and returns the same results
    again = plan.cm.send(transport=fake.transport, **options).compute()
    assert len(fake.ledger_frame()) == len(ledger)
    pd.testing.assert_frame_equal(again, got)
    # the same results as the pandas sender on the same plan
    with FakeGateway(tokens=[TOKEN]) as pandas_fake:
        want = send(plan.compute(), url=pandas_fake.message_url, token=TOKEN, progress=False,
                    transport=pandas_fake.transport)  # fmt: skip
    assert got["status"].tolist() == want["status"].tolist()


def test_send_needs_a_journal_folder_for_the_same_partitions(tmp_path):
    plan = dd.from_pandas(recipients(40), npartitions=2).cm.build(**SPEC)
    with pytest.raises(SpecError, match="journal"):
        plan.cm.send(token=TOKEN, dry_run=True)
    plan.cm.send(journal=tmp_path / "j", dry_run=True, progress=False)
    with pytest.raises(JournalMismatch, match="partitions"):
        plan.repartition(npartitions=1).cm.send(journal=tmp_path / "j", dry_run=True, progress=False)


def test_summary_and_errors_survive_empty_partitions(client):
    results, reps = campaign_inputs()
    campaign = merge_status(results, reps).sort_values("custom_grouping", kind="stable")
    ddf = dd.from_pandas(campaign, npartitions=3, sort=False)
    south = ddf[ddf["custom_grouping"] == "south"]  # the first and last partitions end up empty
    sizes = south.map_partitions(len).compute().tolist()
    assert 0 in sizes and sum(sizes) > 0
    want = south.compute()
    pd.testing.assert_frame_equal(south.cm.summary(by="operator"), want.cm.summary(by="operator"))
    got, exp = south.cm.errors(), want.cm.errors()
    pd.testing.assert_frame_equal(got[["source", "code", "count", "share", "rate"]],
                                  exp[["source", "code", "count", "share", "rate"]])  # fmt: skip
