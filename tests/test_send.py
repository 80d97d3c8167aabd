"""``send`` against the gateway logic in-process (``httpx.MockTransport``): fast and exact."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time

import httpx
import numpy as np
import orjson
import pandas as pd
import pandas.testing as tm
import pytest
from test_send_helpers import TOKEN, check_ledger, digits, make_plan, recipients

import cmframe
from cmframe.build import build
from cmframe.codes import ERROR_CODES, MESSAGE_ERROR_CODES
from cmframe.exceptions import (
    JournalError,
    JournalMismatch,
    RequestRejected,
    SendError,
    SpecError,
    TokenError,
)
from cmframe.journal import Journal
from cmframe.retry import RetryPolicy, stop_after_attempt
from cmframe.schema import RESULT_COLUMNS, SEND_STATUSES
from cmframe.send import asend, send
from cmframe.testing import FakeGateway


class Env:
    """A FakeGateway plus a recording sleep, and ``send`` wired to both."""

    def __init__(self, **options):
        options.setdefault("tokens", [TOKEN])
        self.fake = FakeGateway(**options)
        self.slept: list[float] = []

    def send(self, plan, transport=None, **kwargs):
        kwargs.setdefault("token", TOKEN)
        kwargs.setdefault("progress", False)
        kwargs.setdefault("retry", RetryPolicy(sleep=self.slept.append))
        return send(
            plan, url=self.fake.message_url, transport=transport or self.fake.transport, **kwargs
        )

    @property
    def ledger(self) -> pd.DataFrame:
        return self.fake.ledger_frame()


def answering(fn):
    """A MockTransport whose handler answers ``fn(request, doc) -> (status, payload)``."""

    def handler(request: httpx.Request) -> httpx.Response:
        status, payload = fn(request, orjson.loads(request.content))
        content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return httpx.Response(status, content=content)

    return httpx.MockTransport(handler)


def entries_for(doc, **fields):
    """One accepted entry per (msg, to) of a request document, in order."""
    out = []
    for msg in doc["messages"]["msg"]:
        for to in msg["to"]:
            entry = {
                "to": to["number"],
                "status": "Accepted",
                "reference": msg.get("reference"),
                "parts": 1,
                "messageDetails": None,
                "messageErrorCode": 0,
            }
            out.append({**entry, **fields})
    return out


# -- happy path and the shape of the result -------------------------------------------


def test_happy_path():
    env = Env()
    plan = make_plan(25)
    result = env.send(plan, chunk_size=10)
    assert list(result.columns) == list(plan.columns) + list(RESULT_COLUMNS)
    tm.assert_frame_equal(result[plan.columns], plan)
    assert (result["status"] == "accepted").all()
    assert result["parts"].tolist() == [1] * 25
    assert result["message_error_code"].tolist() == [0] * 25
    assert (result["http_status"] == 200).all()
    assert sorted(result["chunk"].unique().tolist()) == [0, 1, 2]
    assert result["chunk"].value_counts().sort_index().tolist() == [10, 10, 5]
    assert result["sent_at"].notna().all()
    assert env.fake.request_count == 3
    check_ledger(result, env.ledger, exact=True)


def test_token_goes_in_the_header_not_the_body():
    env = Env()
    env.send(make_plan(3))
    (request,) = env.fake.calls
    assert request.headers["x-cm-producttoken"] == TOKEN
    assert TOKEN.encode() not in request.content
    assert "authentication" not in orjson.loads(request.content)["messages"]


def test_token_from_the_environment(monkeypatch):
    monkeypatch.setenv("CM_PRODUCT_TOKEN", TOKEN)
    env = Env()
    result = env.send(make_plan(2), token=None)
    assert (result["status"] == "accepted").all()
    monkeypatch.delenv("CM_PRODUCT_TOKEN")
    with pytest.raises(TokenError):
        env.send(make_plan(2), token=None)


def test_invalid_rows_are_never_sent():
    frame = recipients(4)
    frame.loc["r1", "phone"] = "not a number"
    plan = build(frame, to="phone", sender="CMFrame", body="Hi {name}")
    env = Env()
    result = env.send(plan)
    assert result["status"].tolist() == ["accepted", "invalid", "accepted", "accepted"]
    assert result.loc["r1", "error_code"] == plan.loc["r1", "error_code"]
    assert len(env.ledger) == 3
    assert pd.isna(result.loc["r1", "chunk"])


def test_the_plan_is_not_modified():
    plan = make_plan(5)
    before = plan.copy()
    Env().send(plan)
    tm.assert_frame_equal(plan, before)


def test_merged_messages_map_back_to_their_rows():
    frame = recipients(6)
    frame["name"] = ["A", "B", "A", "B", "A", "C"]
    plan = build(frame, to="phone", sender="CMFrame", body="Hi {name}")
    env = Env(blacklist=[plan["number"].iloc[2]])
    result = env.send(plan, merge_identical=True)
    assert result["status"].tolist() == ["accepted", "accepted", "rejected"] + ["accepted"] * 3
    assert result["message_error_code"].tolist()[2] == 402
    doc = orjson.loads(env.fake.calls[0].content)
    assert len(doc["messages"]["msg"]) == 3  # identical bodies went out as one msg each
    check_ledger(result, env.ledger, exact=True)


def test_answers_listed_in_another_order():
    plan = make_plan(8)
    blacklisted = plan["number"].iloc[[1, 6]].tolist()
    env = Env(blacklist=blacklisted)

    def reversing(request):
        response = env.fake(request)
        doc = orjson.loads(response.content)
        doc["messages"] = doc["messages"][::-1]
        return httpx.Response(response.status_code, content=orjson.dumps(doc))

    result = env.send(plan, transport=httpx.MockTransport(reversing))
    expected = ["rejected" if n in blacklisted else "accepted" for n in plan["number"]]
    assert result["status"].tolist() == expected


# -- per-message and request-level answers -----------------------------------------------


def test_partial_rejection():
    plan = make_plan(10)
    env = Env(blacklist=plan["number"].iloc[[2, 5]].tolist(), spam_words=["Person7"])
    result = env.send(plan)
    assert result["status"].value_counts().to_dict() == {"accepted": 7, "rejected": 3}
    assert result["message_error_code"].tolist() == [0, 0, 402, 0, 0, 402, 0, 401, 0, 0]
    assert result["parts"].iloc[2] == 0
    assert (result["request_error_code"] == 201).all() and (result["http_status"] == 200).all()
    assert result["message_details"].iloc[7]  # the gateway's text is kept
    check_ledger(result, env.ledger, exact=True)


def test_all_rejected_is_not_an_exception():
    plan = make_plan(4)
    env = Env(blacklist=plan["number"].tolist())
    result = env.send(plan)
    assert (result["status"] == "rejected").all()
    assert (result["http_status"] == 400).all()
    assert (result["request_error_code"] == 201).all()
    assert len(env.ledger) == 0


@pytest.mark.parametrize("code", sorted(MESSAGE_ERROR_CODES))
def test_each_message_error_code_is_mapped(code):
    plan = make_plan(3)

    def answer(request, doc):
        entries = entries_for(doc)
        entries[1].update(
            status="Rejected", parts=0, messageErrorCode=code, messageDetails=ERROR_CODES[code]
        )
        return 200, {"details": "Created 2 message(s)", "errorCode": 201, "messages": entries}

    result = Env().send(plan, transport=answering(answer))
    assert result["status"].tolist() == ["accepted", "rejected", "accepted"]
    assert result["message_error_code"].tolist() == [0, code, 0]
    assert result["message_details"].iloc[1] == ERROR_CODES[code]


@pytest.mark.parametrize("code", [101, 102, 103, 202, 203])
def test_each_request_level_code_stops_the_campaign(code):
    plan = make_plan(9)
    calls = []

    def answer(request, doc):
        calls.append(doc)
        if len(calls) == 2:
            return 400, {"details": ERROR_CODES[code], "errorCode": code, "messages": []}
        return 200, {"details": "ok", "errorCode": 0, "messages": entries_for(doc)}

    with pytest.raises(RequestRejected) as info:
        Env().send(plan, chunk_size=3, concurrency=1, transport=answering(answer))
    error = info.value
    assert (error.error_code, error.http_status, error.details) == (code, 400, ERROR_CODES[code])
    assert f"errorCode {code}" in str(error)
    result = error.result
    assert result["status"].tolist() == ["accepted"] * 3 + ["rejected"] * 3 + ["not_sent"] * 3
    assert result["request_error_code"].tolist()[3:6] == [code] * 3
    assert "stopped" in result["request_details"].iloc[8]
    assert len(calls) == 2


def test_unknown_token_is_rejected_by_the_gateway():
    env = Env()
    with pytest.raises(RequestRejected) as info:
        env.send(make_plan(4), chunk_size=2, concurrency=1, token="00000000-0000-0000-0000-000000000000")
    assert info.value.error_code == 101
    assert info.value.result["status"].tolist() == ["rejected"] * 2 + ["not_sent"] * 2
    assert env.fake.request_count == 1 and len(env.ledger) == 0


def test_insufficient_balance_mid_campaign():
    env = Env(balance=4)
    with pytest.raises(RequestRejected) as info:
        env.send(make_plan(6), chunk_size=2, concurrency=1)
    assert info.value.error_code == 102
    result = info.value.result
    assert result["status"].tolist() == ["accepted"] * 4 + ["rejected"] * 2
    check_ledger(result, env.ledger, exact=True)


def test_wrong_endpoint_stops_at_the_first_request():
    transport = answering(lambda request, doc: (404, b"<html>Not Found</html>"))
    with pytest.raises(RequestRejected, match="HTTP 404") as info:
        Env().send(make_plan(6), chunk_size=2, concurrency=1, transport=transport)
    assert info.value.result["status"].tolist() == ["rejected"] * 2 + ["not_sent"] * 4
    assert info.value.error_code is None


def test_too_many_msg_for_the_gateway():
    env = Env(max_msg=2)
    with pytest.raises(RequestRejected) as info:
        env.send(make_plan(3), chunk_size=3)
    assert info.value.error_code == 203


# -- faults -------------------------------------------------------------------------------


def test_429_and_503_are_retried_honouring_retry_after():
    env = Env(faults=["429:2", "503:0.5", "ok"])
    plan = make_plan(5)
    result = env.send(plan, concurrency=1)
    assert (result["status"] == "accepted").all()
    assert env.fake.request_count == 3
    assert len(env.slept) == 2 and env.slept[0] >= 2.0 and env.slept[1] >= 0.5
    check_ledger(result, env.ledger, exact=True)


def test_5xx_storm_leaves_rows_unknown_and_never_resends():
    env = Env(faults=["500", "502", "504", "ok"])
    plan = make_plan(8)
    result = env.send(plan, chunk_size=2, concurrency=1)
    assert result["status"].tolist() == ["unknown"] * 6 + ["accepted"] * 2
    assert result["http_status"].tolist() == [500, 500, 502, 502, 504, 504, 200, 200]
    assert "may have been processed" in result["request_details"].iloc[0]
    assert env.fake.request_count == 4 and env.slept == []
    check_ledger(result, env.ledger, exact=True)


def test_error_after_acceptance_is_unknown_and_in_the_ledger():
    env = Env(faults=["500_after"])
    result = env.send(make_plan(4), chunk_size=2, concurrency=1)
    assert result["status"].tolist() == ["unknown", "unknown", "accepted", "accepted"]
    assert len(env.ledger) == 4  # the "unknown" ones were in fact accepted
    check_ledger(result, env.ledger, exact=False)


@pytest.mark.parametrize("fault", ["drop_after", "drop_before", "slow:5"])
def test_ambiguous_faults_are_unknown_and_not_resent(fault, tmp_path):
    env = Env(faults=[fault])
    journal = tmp_path / "c.cmjournal"
    plan = make_plan(4)
    result = env.send(plan, chunk_size=2, concurrency=1, journal=journal, timeout=1.0)
    assert result["status"].tolist() == ["unknown", "unknown", "accepted", "accepted"]
    assert env.fake.request_count == 2 and env.slept == []
    check_ledger(result, env.ledger, exact=False)
    # a rerun does not send the unknown chunk again on its own
    again = env.send(plan, chunk_size=2, journal=journal)
    assert env.fake.request_count == 2
    tm.assert_frame_equal(again, result)
    assert len(env.ledger) == (2 if fault == "drop_before" else 4)


def test_resend_unknown_sends_only_the_unknown_rows(tmp_path):
    env = Env(faults=["drop_before"])
    journal = tmp_path / "c.cmjournal"
    plan = make_plan(6)
    first = env.send(plan, chunk_size=2, concurrency=1, journal=journal)
    assert first["status"].tolist()[:2] == ["unknown", "unknown"]
    second = env.send(plan, chunk_size=2, journal=journal, resend_unknown=True)
    assert (second["status"] == "accepted").all()
    assert second["chunk"].tolist() == [3, 3, 1, 1, 2, 2]  # resent rows in a new chunk
    assert env.fake.request_count == 4
    check_ledger(second, env.ledger, exact=True)
    tm.assert_frame_equal(cmframe.read_journal(journal)[second.columns], second)


class Refusing(httpx.AsyncBaseTransport):
    """Refuses the first ``n`` connections, then hands requests to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, n: int) -> None:
        self.inner, self.left = inner, n

    async def handle_async_request(self, request):
        if self.left:
            self.left -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.inner.handle_async_request(request)


def test_connection_refused_then_recovery():
    env = Env()
    plan = make_plan(6)
    result = env.send(plan, chunk_size=3, concurrency=1, transport=Refusing(env.fake.transport, 3))
    assert (result["status"] == "accepted").all()
    assert len(env.slept) == 3
    assert env.slept == sorted(env.slept)  # backoff grows
    check_ledger(result, env.ledger, exact=True)


def test_giving_up_leaves_rows_not_sent_and_a_rerun_resumes(tmp_path):
    env = Env()
    plan = make_plan(6)
    journal = tmp_path / "c.cmjournal"
    policy = RetryPolicy(stop=stop_after_attempt(3), sleep=env.slept.append)
    with pytest.raises(SendError, match="could not be reached") as info:
        env.send(
            plan,
            chunk_size=3,
            concurrency=1,
            journal=journal,
            retry=policy,
            transport=Refusing(env.fake.transport, 100),
        )
    assert (info.value.result["status"] == "not_sent").all()
    assert "gave up after 3 attempt(s)" in info.value.result["request_details"].iloc[0]
    assert len(env.slept) == 2 and env.fake.request_count == 0
    result = env.send(plan, chunk_size=3, journal=journal)
    assert (result["status"] == "accepted").all()
    check_ledger(result, env.ledger, exact=True)


def test_unparsable_answer_is_unknown():
    result = Env().send(make_plan(2), transport=answering(lambda r, d: (200, b"<html>hi</html>")))
    assert (result["status"] == "unknown").all()
    assert "unparsable" in result["request_details"].iloc[0]


def test_answer_that_cannot_be_mapped_makes_rows_unknown():
    def answer(request, doc):
        entries = entries_for(doc)
        entries[0]["to"] = "0031699999999"  # not a number of this request
        return 200, {"details": "ok", "errorCode": 0, "messages": entries}

    result = Env().send(make_plan(3), transport=answering(answer))
    assert result["status"].tolist() == ["unknown", "accepted", "accepted"]
    assert "entries for this number" in result["message_details"].iloc[0]


# -- journal ------------------------------------------------------------------------------


def test_rerun_after_request_rejection_sends_the_rest(tmp_path):
    env = Env()
    plan = make_plan(6)
    journal = tmp_path / "c.cmjournal"
    with pytest.raises(RequestRejected):
        env.send(plan, chunk_size=2, concurrency=1, journal=journal, token="wrong-token")
    result = env.send(plan, chunk_size=2, concurrency=1, journal=journal)
    assert (result["status"] == "accepted").all()
    check_ledger(result, env.ledger, exact=True)
    before = env.fake.request_count
    again = env.send(plan, chunk_size=2, journal=journal)  # all done: nothing to send
    assert env.fake.request_count == before
    tm.assert_frame_equal(again, result)


def test_journal_refuses_another_plan(tmp_path):
    env = Env()
    journal = tmp_path / "c.cmjournal"
    env.send(make_plan(4), journal=journal)
    with pytest.raises(JournalMismatch, match="different plan"):
        env.send(make_plan(4, start=100), journal=journal)
    with pytest.raises(JournalMismatch, match="chunk_size"):
        env.send(make_plan(4), journal=journal, chunk_size=2)
    assert env.fake.request_count == 1


def test_in_flight_is_on_disk_before_the_post(tmp_path):
    env = Env()
    journal = tmp_path / "c.cmjournal"
    seen = []

    def handler(request):
        # another connection, as after a crash: what does the file say right now?
        with sqlite3.connect(journal) as db:
            seen.append(dict(db.execute("SELECT chunk, state FROM chunks").fetchall()))
        return env.fake(request)

    env.send(make_plan(6), chunk_size=2, concurrency=1, journal=journal,
             transport=httpx.MockTransport(handler))
    assert seen == [
        {0: "in_flight", 1: "pending", 2: "pending"},
        {0: "answered", 1: "in_flight", 2: "pending"},
        {0: "answered", 1: "answered", 2: "in_flight"},
    ]


def test_one_sender_per_journal(tmp_path):
    env = Env()
    journal = tmp_path / "c.cmjournal"
    with Journal(journal) as other:  # e.g. the same campaign started in another terminal
        other.lock()
        with pytest.raises(JournalError, match="in use by another send"):
            env.send(make_plan(4), journal=journal)
    assert env.fake.request_count == 0
    assert (env.send(make_plan(4), journal=journal)["status"] == "accepted").all()


def test_read_journal_matches_the_result(tmp_path):
    plan = make_plan(7)
    env = Env(blacklist=[plan["number"].iloc[1]], faults=["ok", "drop_after"])
    journal = tmp_path / "c.cmjournal"
    result = env.send(plan, chunk_size=3, concurrency=1, journal=journal)
    assert result["status"].value_counts().to_dict() == {"accepted": 3, "unknown": 3, "rejected": 1}
    tm.assert_frame_equal(cmframe.read_journal(journal), result)


def test_dry_run_sends_nothing_and_shows_the_bodies(tmp_path):
    env = Env()
    plan = make_plan(5)
    journal = tmp_path / "c.cmjournal"
    result = env.send(plan, token=None, dry_run=True, chunk_size=2, journal=journal)
    assert env.fake.request_count == 0
    assert (result["status"] == "not_sent").all()
    assert (result["request_details"] == "dry run: not sent").all()
    requests = result.attrs["cm_requests"]
    assert [c for c, _, _ in requests] == [0, 1, 2]
    docs = [orjson.loads(body) for _, body, _ in requests]
    assert sum(len(d["messages"]["msg"]) for d in docs) == 5
    assert all("authentication" not in d["messages"] for d in docs)
    assert np.concatenate([rows for _, _, rows in requests]).tolist() == [0, 1, 2, 3, 4]
    # the journal of a dry run is sent for real by the next run
    sent = env.send(plan, chunk_size=2, journal=journal)
    assert (sent["status"] == "accepted").all() and env.fake.request_count == 3


# -- running --------------------------------------------------------------------------------


def test_concurrency_is_bounded_and_used():
    env = Env()
    state = {"now": 0, "max": 0}

    async def handler(request):
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.02)
        state["now"] -= 1
        return env.fake(request)

    result = env.send(make_plan(24), chunk_size=2, concurrency=4, transport=httpx.MockTransport(handler))
    assert (result["status"] == "accepted").all()
    assert state["max"] == 4


def test_rate_limit_spaces_the_requests():
    env = Env()
    start = time.monotonic()
    result = env.send(make_plan(30), chunk_size=10, concurrency=3, rate_limit=50)
    assert time.monotonic() - start >= 0.39  # 30 messages at 50/s: chunks at 0, 0.2, 0.4 s
    assert (result["status"] == "accepted").all()


def test_send_inside_a_running_event_loop():
    env = Env()
    plan = make_plan(4)

    async def notebook_cell():
        loop = asyncio.get_running_loop()
        result = env.send(plan, chunk_size=2)  # blocks, like a Jupyter cell
        assert asyncio.get_running_loop() is loop
        return result

    result = asyncio.run(notebook_cell())
    assert (result["status"] == "accepted").all()


def test_interrupt_inside_a_running_loop_stops_cleanly(tmp_path):
    """Ctrl-C in a notebook: chunks in flight finish and are journaled, no new one starts."""
    env = Env()
    journal = tmp_path / "c.cmjournal"
    plan = make_plan(10)

    def handler(request):
        response = env.fake(request)
        if env.fake.request_count == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C / "interrupt kernel"
            time.sleep(0.3)  # the main thread reacts while this request is in flight
        return response

    async def cell():
        return env.send(plan, chunk_size=2, concurrency=1, journal=journal,
                        transport=httpx.MockTransport(handler))

    loop = asyncio.new_event_loop()  # like a kernel's loop: no asyncio SIGINT handler
    try:
        with pytest.raises(KeyboardInterrupt, match="resume"):
            loop.run_until_complete(cell())
    finally:
        loop.close()
    assert env.fake.request_count == 2
    interrupted = cmframe.read_journal(journal)
    assert interrupted["status"].tolist() == ["accepted"] * 4 + ["not_sent"] * 6
    assert "interrupted" in interrupted["request_details"].iloc[9]
    result = env.send(plan, chunk_size=2, journal=journal)
    assert (result["status"] == "accepted").all()
    check_ledger(result, env.ledger, exact=True)


def test_asend():
    env = Env()
    result = asyncio.run(
        asend(make_plan(3), url=env.fake.message_url, token=TOKEN, transport=env.fake.transport, progress=False)
    )
    assert (result["status"] == "accepted").all()


def test_accessor_forwards():
    env = Env()
    result = make_plan(2).cm.send(url=env.fake.message_url, token=TOKEN, transport=env.fake.transport, progress=False)
    assert result["status"].isin(SEND_STATUSES).all() and (result["status"] == "accepted").all()


def test_cmframe_send_stays_callable_once_the_module_is_imported():
    import cmframe.send as module  # what the accessor does on first use

    env = Env()
    result = cmframe.send(make_plan(1), url=env.fake.message_url, token=TOKEN,
                          transport=env.fake.transport, progress=False)
    assert result["status"].iloc[0] == "accepted"
    assert module.asend is asend


def test_progress_bar_can_be_turned_off(capsys):
    env = Env()
    env.send(make_plan(3), progress=True)
    err = capsys.readouterr().err
    assert "cmframe send" in err and "accepted=3" in err
    env.send(make_plan(3, start=10), progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 1001}, "chunk_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"rate_limit": -1}, "rate_limit"),
        ({"url": "ftp://example.test/x"}, "http"),
    ],
)
def test_call_level_mistakes(kwargs, match):
    with pytest.raises(SpecError, match=match):
        send(make_plan(1), token=TOKEN, progress=False, **kwargs)


def test_base_url_gets_the_message_path():
    env = Env()
    result = send(make_plan(1), url=env.fake.url, token=TOKEN, transport=env.fake.transport, progress=False)
    assert result["status"].iloc[0] == "accepted"
    assert env.fake.calls[0].url.path == "/v1.0/message"


def test_a_plan_without_valid_rows_sends_nothing():
    frame = recipients(2)
    frame["phone"] = ["nope", "also nope"]
    plan = build(frame, to="phone", sender="CMFrame", body="Hi")
    env = Env()
    result = env.send(plan)
    assert (result["status"] == "invalid").all() and env.fake.request_count == 0
    assert digits(env.ledger["number"]) == set()
