"""The gateway's per-message fast paths give the same results as the plain definitions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from cmframe.gateway import GatewayConfig
from cmframe.gateway.core import _Stamps
from cmframe.gateway.ledger import MESSAGE_FIELDS, Ledger, iso
from cmframe.gateway.logic import decide_outcome
from cmframe.testing import FakeGateway

TOKEN = "11111111-2222-3333-4444-555555555555"


def request(*msgs: dict) -> dict:
    return {"messages": {"authentication": {"productToken": TOKEN}, "msg": list(msgs)}}


def msg(numbers: list[str], **extra) -> dict:
    return {"from": "Sender", "to": [{"number": n} for n in numbers], "body": {"content": "Hi there"}, **extra}


def test_cached_timestamps_read_as_iso_does():
    stamps = _Stamps()
    rng = random.Random(1)
    start = datetime(2026, 11, 29, 23, 59, 58, tzinfo=UTC)
    for _ in range(3000):
        ts = start + timedelta(microseconds=rng.randrange(0, 10**10))  # crosses days, months
        assert stamps.of(ts) == iso(ts)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for us in (0, 1, 999_999, 1_000_000, 1_795_000_000_000_001):
        assert stamps.text(us) == iso(epoch + timedelta(microseconds=us))


@pytest.mark.parametrize("time_scale", [1.0, 600.0])
def test_ledger_outcomes_are_decide_outcome(time_scale):
    config = dict(
        tokens=[TOKEN], seed=7, time_scale=time_scale, delivered_rate=0.5, failed_rate=0.3, rejected_rate=0.2,
        prefix_rules={"0032": {"delivered": 0.2, "operator": "BE Test", "delay": 30}, "003247": {"rejected": 1.0}},
        channel_rules={"WhatsApp": {"failed_rate": 0.7, "delay": 2}, "RCS": {"delivered_rate": 0.0}},
    )
    numbers = [f"00316{i:08d}" for i in range(60)] + [f"+32{i:09d}" for i in range(40)] + ["0032470000001"]
    msgs = [
        msg(numbers[:50]),
        msg(numbers[50:], reference="multi", allowedChannels=["RCS", "WhatsApp", "SMS"], validity="1m"),
        msg(numbers[:20], reference="two", allowedChannels=["WhatsApp", "SMS"], validity="2026-01-01 10:00:00"),
    ]
    with FakeGateway(**config) as fake, fake.client() as client:
        assert client.post("/v1.0/message", json=request(*msgs)).status_code == 200
        ledger = fake.ledger_frame()
    assert len(ledger) == 121
    gw_config = GatewayConfig(**config)
    seen = set()
    for row in ledger.itertuples():
        accepted = row.accepted_at.to_pydatetime()
        record = {"number": row.number, "reference": None if pd.isna(row.reference) else row.reference,
                  "body": row.body, "channels": None if pd.isna(row.channels) else row.channels,
                  "validity": None if pd.isna(row.validity) else row.validity}
        out = decide_outcome(record, accepted, gw_config)
        assert (row.status_code, row.error_code, row.error_description, row.operator) == (
            out.status_code, out.error_code, out.error_description, out.operator)
        assert (None if pd.isna(row.channel) else row.channel) == out.channel
        assert row.expires_at == out.expires_at
        for at, due, delay in ((row.accepted_report_at, row.accepted_report_due, out.accepted_delay),
                               (row.final_report_at, row.final_report_due, out.final_delay)):
            assert abs((at - row.accepted_at).total_seconds() - delay) <= 1e-6
            assert abs((due - row.accepted_at).total_seconds() - delay / time_scale) <= 1e-6
        seen.add((row.status_code, row.channel if not pd.isna(row.channel) else None))
    assert {s for s, _ in seen} == {1, 2, 3}  # the rules gave every outcome
    assert {c for _, c in seen} == {None, "WhatsApp", "SMS"}  # RCS never delivers: always fell back
    assert (ledger.loc[ledger["number"] == "0032470000001", "status_code"] == 1).all()


def test_outcomes_do_not_depend_on_arrival_order_or_batching():
    numbers = [f"00316{i:08d}" for i in range(200)]

    def outcomes(batches):
        with FakeGateway(tokens=[TOKEN], seed=3) as fake, fake.client() as client:
            for batch in batches:
                assert client.post("/v1.0/message", json=request(msg(batch, reference="r"))).status_code == 200
            ledger = fake.ledger_frame()
        ledger["delay"] = ledger["final_report_at"] - ledger["accepted_at"]
        return ledger.set_index("number")[["status_code", "error_code", "delay"]].sort_index()

    together = outcomes([numbers])
    shuffled = numbers[::-1]
    apart = outcomes([shuffled[:70], shuffled[70:71], shuffled[71:]])
    pd.testing.assert_frame_equal(together, apart)
    assert together["status_code"].nunique() >= 2


def test_ledger_rows_with_different_nulls_keep_order_and_values(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    cols = MESSAGE_FIELDS[1:]
    rng = random.Random(2)
    messages = []
    for i in range(300):
        m = {c: f"{c}-{i}" for c in cols}
        m.update(msg_index=i, to_index=0, parts=1, status_code=2, error_code=0, dcs=None if i % 3 else 8,
                 min_parts=None, max_parts=rng.choice([None, 3]))
        for c in rng.sample(cols, rng.randrange(0, 8)):  # any column may be missing, not only optional ones
            m.pop(c)
        messages.append(m)
    ledger.record({"request_id": "a"}, messages[:1])
    ids = ledger.record({"request_id": "b"}, messages[1:])
    assert ids == list(range(2, 301))
    rows = ledger.query("SELECT * FROM messages ORDER BY rowid")
    ledger.close()
    assert [r[0] for r in rows] == list(range(1, 301))
    assert [dict(zip(cols, r[1:], strict=True)) for r in rows] == [{c: m.get(c) for c in cols} for m in messages]
