"""Fault injection of the embedded gateway, over a real socket and in-process; the CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import orjson
import pytest

from cmframe.exceptions import SpecError
from cmframe.gateway import Fault, parse_fault, serve_gateway
from cmframe.testing import FakeGateway

TOKEN = "11111111-2222-3333-4444-555555555555"


def payload(number: str = "0031612345678", reference: str = "ref") -> bytes:
    return orjson.dumps({"messages": {"authentication": {"producttoken": TOKEN}, "msg": [
        {"from": "Sender", "to": [{"number": number}], "body": {"content": "Hi"}, "reference": reference}]}})


def test_parse_fault_spellings():
    assert parse_fault(None) == Fault()
    assert parse_fault("ok") == Fault()
    assert parse_fault(500) == Fault("error", status=500)
    assert parse_fault("429") == Fault("error", status=429, retry_after=1.0)
    assert parse_fault("503:2.5") == Fault("error", status=503, retry_after=2.5)
    assert parse_fault("500_after") == Fault("error_after", status=500)
    assert parse_fault("slow") == Fault("slow", delay=30.0)
    assert parse_fault("slow:4") == Fault("slow", delay=4.0)
    assert parse_fault("delay:0.25") == Fault("ok", delay=0.25)
    assert parse_fault({"kind": "drop_after"}) == Fault("drop_after")
    for bad in ("explode", "200", "slow:x"):
        with pytest.raises(SpecError):
            parse_fault(bad)


def test_scripted_faults_over_a_socket():
    script = ["500", "429:0.5", "503", "502", "drop_before", "drop_after", "500_after", "ok"]
    with serve_gateway(tokens=[TOKEN], faults=script) as gw, httpx.Client(timeout=30) as c:
        def send(i):
            return c.post(gw.message_url, content=payload(f"003161234500{i}", f"r{i}"))

        r = send(1)
        assert r.status_code == 500
        assert r.json() == {"details": "Unknown Error", "errorCode": 999, "messages": []}
        r = send(2)
        assert (r.status_code, r.headers["retry-after"]) == (429, "0.5")
        r = send(3)
        assert (r.status_code, r.headers["retry-after"]) == (503, "1")
        assert send(4).status_code == 502
        with pytest.raises(httpx.RemoteProtocolError):
            send(5)
        with pytest.raises(httpx.RemoteProtocolError):
            send(6)
        assert send(7).status_code == 500
        r = send(8)
        assert r.status_code == 200 and r.json()["errorCode"] == 0
        # after the script: normal processing
        assert send(9).status_code == 200
        ledger = gw.ledger_frame()
        requests = gw.requests_frame()
    # drop_after, 500_after and ok accepted; the refused and drop_before ones did not.
    assert list(ledger["reference"]) == ["r6", "r7", "r8", "r9"]
    assert list(requests["fault"]) == ["error:500", "error:429", "error:503", "error:502", "drop_before",
                                       "drop_after", "error_after:500", "ok", "ok"]
    assert list(requests["request_number"]) == list(range(1, 10))
    assert list(requests["n_accepted"]) == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_drop_after_then_resend_shows_duplicate_in_ledger():
    # The ambiguous case: the client cannot tell, and a blind resend sends twice.
    with serve_gateway(tokens=[TOKEN], faults={1: "drop_after"}) as gw, httpx.Client() as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(gw.message_url, content=payload())
        assert c.post(gw.message_url, content=payload()).status_code == 200
        counts = gw.ledger_frame().groupby(["reference", "number", "body"]).size()
    assert counts.tolist() == [2]


def test_slow_answer_beyond_the_client_timeout_is_accepted_anyway():
    with serve_gateway(tokens=[TOKEN], faults=["slow:5"]) as gw:
        with httpx.Client(timeout=httpx.Timeout(10, read=0.5)) as c, pytest.raises(httpx.ReadTimeout):
            c.post(gw.message_url, content=payload())
        assert len(gw.ledger_frame()) == 1
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 8  # stopping does not wait for the slow answer


def test_latency_is_added():
    with serve_gateway(tokens=[TOKEN], latency=0.3, latency_jitter=0.1) as gw, httpx.Client() as c:
        t0 = time.monotonic()
        r = c.post(gw.message_url, content=payload())
        assert r.status_code == 200
        assert time.monotonic() - t0 >= 0.3


def test_latency_does_not_block_other_requests():
    import concurrent.futures

    def post_and_time(number):
        r = httpx.post(gw.message_url, content=payload(number), timeout=30)
        return r.status_code, time.monotonic()

    with serve_gateway(tokens=[TOKEN], faults=["slow:3"]) as gw:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            slow = pool.submit(post_and_time, "0031600000001")
            while gw.request_count < 1:  # the slow request has arrived
                time.sleep(0.01)
            fast_status, fast_done = post_and_time("0031600000002")
            slow_status, slow_done = slow.result()
    assert (fast_status, slow_status) == (200, 200)
    assert fast_done < slow_done  # answered while the slow one still waited


def test_random_faults_are_seeded_and_follow_rates():
    def statuses(seed):
        fake = FakeGateway(tokens=[TOKEN], seed=seed, error_rate=0.2, throttle_rate=0.1, unavailable_rate=0.1,
                           drop_before_rate=0.05, drop_after_rate=0.05)
        out = []
        with fake.client() as c:
            for i in range(300):
                try:
                    out.append(c.post("/v1.0/message", content=payload(f"00316{i:08d}")).status_code)
                except httpx.RemoteProtocolError:
                    out.append("drop")
        n_ledger = len(fake.ledger_frame())
        fake.close()
        return out, n_ledger

    a, n_a = statuses(7)
    b, n_b = statuses(7)
    c, _ = statuses(8)
    assert a == b and n_a == n_b
    assert a != c
    assert 30 <= a.count(500) <= 90
    assert 10 <= a.count(429) <= 55 and 10 <= a.count(503) <= 55
    assert 10 <= a.count("drop") <= 55
    assert n_a == a.count(200) + (n_a - a.count(200))  # ledger = 200s + drop_afters
    assert n_a > a.count(200)


def test_fake_gateway_faults_map_to_httpx_errors():
    fake = FakeGateway(tokens=[TOKEN], faults=["drop_before", "drop_after", "slow:10", "429:3", "delay:2"])
    with fake.client(timeout=httpx.Timeout(5, read=1.0)) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/v1.0/message", content=payload("0031600000001"))
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/v1.0/message", content=payload("0031600000002"))
        with pytest.raises(httpx.ReadTimeout):
            c.post("/v1.0/message", content=payload("0031600000003"))
        r = c.post("/v1.0/message", content=payload("0031600000004"))
        assert (r.status_code, r.headers["retry-after"]) == (429, "3")
        with pytest.raises(httpx.ReadTimeout):  # 2 s delay > 1 s read timeout
            c.post("/v1.0/message", content=payload("0031600000005"))
    assert list(fake.ledger_frame()["number"]) == ["0031600000002", "0031600000003", "0031600000005"]
    assert fake.slept == pytest.approx(2.0)  # virtual time: two timeouts of 1 s
    fake.close()


def test_fake_gateway_real_sleep_is_injectable():
    waits = []
    with FakeGateway(tokens=[TOKEN], latency=0.5, sleep=waits.append) as fake, fake.client() as c:
        c.post("/v1.0/message", content=payload())
    assert waits == [0.5]


def test_cli_serves_until_interrupted(tmp_path):
    ledger = tmp_path / "cli.sqlite"
    config = tmp_path / "gateway.json"
    config.write_text('{"spam_words": ["forbidden"], "ledger": "ignored.sqlite"}')
    env = {k: v for k, v in os.environ.items() if k != "CM_PRODUCT_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmframe", "gateway", "--port", "0", "--token", TOKEN, "--ledger", str(ledger),
         "--faults", "ok,503:2", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = proc.stdout.readline()
        assert TOKEN not in line
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        assert httpx.post(url + "/v1.0/message", content=payload(), timeout=30).status_code == 200
        r = httpx.post(url + "/v1.0/message", content=payload(), timeout=30)
        assert (r.status_code, r.headers["retry-after"]) == (503, "2")
        spam = payload().replace(b'"Hi"', b'"a forbidden word"')
        assert httpx.post(url + "/v1.0/message", content=spam, timeout=30).json()["messages"][0]["messageErrorCode"] == 401
        bad = orjson.dumps({"messages": {"authentication": {"producttoken": "x"}, "msg": []}})
        assert httpx.post(url + "/v1.0/message", content=bad, timeout=30).json()["errorCode"] == 101
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert TOKEN not in out + err
    import sqlite3

    db = sqlite3.connect(ledger)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    db.close()


def test_cli_port_in_use_fails_cleanly(tmp_path, capsys):
    from cmframe.gateway import main

    with serve_gateway() as gw:
        assert main(["--port", str(gw.port), "--ledger", str(tmp_path / "x.sqlite")]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_cli_config_file_and_bad_options(tmp_path, capsys):
    import json

    from cmframe.gateway import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"no_such_option": 1}))
    assert main(["--port", "0", "--config", str(bad), "--ledger", str(tmp_path / "l.sqlite")]) == 2
    assert "unknown gateway option" in capsys.readouterr().err
    assert main(["--port", "0", "--config", str(tmp_path / "missing.json")]) == 2
    assert main(["--port", "0", "--error-rate", "2", "--ledger", str(tmp_path / "l.sqlite")]) == 2
