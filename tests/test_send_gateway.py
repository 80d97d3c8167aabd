"""``send`` against the embedded gateway over real loopback sockets, faults included.

Every test asserts the exactly-once invariant on the gateway's own ledger: each
message at most once, accepted rows all in the ledger, and nothing in the
ledger that the result frame does not call ``accepted`` (or ``unknown`` when a
fault made the outcome ambiguous).
"""

from __future__ import annotations

import contextlib
import socket

import httpx
import pandas.testing as tm
import pytest
from test_send_helpers import TOKEN, check_ledger, digits, make_plan

import cmframe
from cmframe.gateway import serve_gateway
from cmframe.retry import RetryPolicy, stop_after_attempt, wait_fixed
from cmframe.send import send

pytestmark = pytest.mark.timeout(120)


def fast_retry(attempts: int = 50) -> RetryPolicy:
    """Retry often with tiny pauses, honouring the (small) Retry-After of the gateway."""
    return RetryPolicy(stop=stop_after_attempt(attempts), wait=wait_fixed(0.01))


def go(gw, plan, **kwargs):
    kwargs.setdefault("token", TOKEN)
    kwargs.setdefault("progress", False)
    kwargs.setdefault("retry", fast_retry())
    return send(plan, url=gw.message_url, **kwargs)


def test_happy_path_with_partial_rejection(tmp_path):
    plan = make_plan(300)
    blacklisted = plan["number"].iloc[::37].tolist()
    with serve_gateway(tokens=[TOKEN], blacklist=blacklisted, ledger=tmp_path / "l.sqlite") as gw:
        result = go(gw, plan, chunk_size=40, concurrency=4, journal=tmp_path / "c.cmjournal")
        ledger = gw.ledger_frame()
        assert gw.request_count == 8
    assert result["status"].value_counts().to_dict() == {"accepted": 300 - len(blacklisted), "rejected": len(blacklisted)}
    assert set(result.loc[result["status"] == "rejected", "message_error_code"]) == {402}
    check_ledger(result, ledger, exact=True)
    tm.assert_frame_equal(cmframe.read_journal(tmp_path / "c.cmjournal"), result)


def test_request_level_rejection_over_the_wire():
    with serve_gateway(tokens=[TOKEN], balance=50) as gw:
        with pytest.raises(cmframe.RequestRejected) as info:
            go(gw, make_plan(100), chunk_size=20, concurrency=1)
        ledger = gw.ledger_frame()
    result = info.value.result
    assert info.value.error_code == 102 and info.value.http_status == 400
    assert result["status"].value_counts().to_dict() == {"accepted": 40, "rejected": 20, "not_sent": 40}
    check_ledger(result, ledger, exact=True)


def test_random_fault_storm_never_sends_twice():
    plan = make_plan(400)
    options = dict(
        tokens=[TOKEN],
        seed=7,
        throttle_rate=0.15,
        unavailable_rate=0.15,
        error_rate=0.1,
        drop_before_rate=0.05,
        drop_after_rate=0.05,
        retry_after=0.01,
    )
    with serve_gateway(**options) as gw:
        result = go(gw, plan, chunk_size=10, concurrency=4)
        ledger = gw.ledger_frame()
        requests = gw.requests_frame()
    counts = result["status"].value_counts().to_dict()
    assert set(counts) <= {"accepted", "unknown"} and counts["accepted"] > 100 and counts["unknown"] > 0
    assert (requests["fault"].astype(str).str.startswith(("error:429", "error:503"))).any()  # retries happened
    check_ledger(result, ledger, exact=False)
    # accepted rows plus the ambiguous drop-after rows are the ledger, exactly
    unknown_in_ledger = digits(ledger["number"]) - digits(result.loc[result["status"] == "accepted", "number"])
    assert len(unknown_in_ledger) == len(ledger) - counts["accepted"]


def test_5xx_storm_over_the_wire():
    with serve_gateway(tokens=[TOKEN], faults=["500", "502", "504", "503:0.01", "ok"]) as gw:
        result = go(gw, make_plan(10), chunk_size=2, concurrency=1)
        ledger = gw.ledger_frame()
        assert gw.request_count == 6  # the 503 was retried, the others not
    assert result["status"].tolist() == ["unknown"] * 6 + ["accepted"] * 4
    check_ledger(result, ledger, exact=True)


def test_429_retry_after_is_honoured_over_the_wire():
    slept: list[float] = []
    policy = RetryPolicy(stop=stop_after_attempt(5), wait=wait_fixed(0.0), sleep=slept.append)
    with serve_gateway(tokens=[TOKEN], faults=["429:3", "ok"]) as gw:
        result = go(gw, make_plan(4), concurrency=1, retry=policy)
        ledger = gw.ledger_frame()
    assert slept == [3.0]
    assert (result["status"] == "accepted").all()
    check_ledger(result, ledger, exact=True)


def test_dropped_after_acceptance_and_read_timeout(tmp_path):
    journal = tmp_path / "c.cmjournal"
    plan = make_plan(6)
    with serve_gateway(tokens=[TOKEN], faults=["drop_after", "slow:3", "ok"]) as gw:
        result = go(gw, plan, chunk_size=2, concurrency=1, journal=journal, timeout=httpx.Timeout(5.0, read=0.5))
        again = go(gw, plan, chunk_size=2, journal=journal)  # a rerun does not resend them
        ledger = gw.ledger_frame()
        assert gw.request_count == 3
    assert result["status"].tolist() == ["unknown"] * 4 + ["accepted"] * 2
    assert "RemoteProtocolError" in result["request_details"].iloc[0]
    assert "ReadTimeout" in result["request_details"].iloc[2]
    assert len(ledger) == 6  # all were in fact accepted, each once
    check_ledger(result, ledger, exact=False)
    tm.assert_frame_equal(again, result)


def test_connection_refused_then_recovery(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started, slept = [], []

    with contextlib.ExitStack() as stack:

        def sleep(seconds):  # the gateway comes up while the sender backs off
            slept.append(seconds)
            if len(slept) == 2:
                started.append(stack.enter_context(serve_gateway(port=port, tokens=[TOKEN])))

        result = send(
            make_plan(5),
            url=f"http://127.0.0.1:{port}/v1.0/message",
            token=TOKEN,
            retry=RetryPolicy(stop=stop_after_attempt(4), sleep=sleep),
            progress=False,
        )
        ledger = started[0].ledger_frame()
        assert started[0].request_count == 1
    assert len(slept) == 2  # refused twice, then sent once
    assert (result["status"] == "accepted").all()
    check_ledger(result, ledger, exact=True)
