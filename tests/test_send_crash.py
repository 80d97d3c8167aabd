"""Crash and resume: a sender killed with SIGKILL mid-campaign, then rerun with its journal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_send_helpers import TOKEN, check_ledger, digits, make_plan

from cmframe.gateway import serve_gateway
from cmframe.send import send

pytestmark = pytest.mark.timeout(180)

N, CHUNK, CONCURRENCY = 200, 5, 2

CHILD = """
import sys
sys.path.insert(0, sys.argv[3])
from test_send_helpers import make_plan
from cmframe.send import send
send(make_plan(int(sys.argv[4])), url=sys.argv[1], journal=sys.argv[2],
     chunk_size=int(sys.argv[5]), concurrency=int(sys.argv[6]), progress=False)
"""


def test_sigkill_mid_campaign_then_resume(tmp_path):
    journal = tmp_path / "c.cmjournal"
    env = {**os.environ, "CM_PRODUCT_TOKEN": TOKEN}  # the token never goes on a command line
    with serve_gateway(tokens=[TOKEN], latency=0.1) as gw:
        args = [gw.message_url, str(journal), str(Path(__file__).parent), N, CHUNK, CONCURRENCY]
        child = subprocess.Popen([sys.executable, "-c", CHILD, *map(str, args)], env=env)
        try:
            deadline = time.monotonic() + 120
            while len(gw.ledger_frame()) < 40:  # at least 8 chunks accepted
                assert child.poll() is None, "the sender finished before it could be killed"
                assert time.monotonic() < deadline, "the sender made no progress"
                time.sleep(0.05)
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
        killed_at = len(gw.ledger_frame())
        assert killed_at < N, "the campaign ended before the kill"

        result = send(make_plan(N), url=gw.message_url, token=TOKEN, journal=journal,
                      chunk_size=CHUNK, concurrency=CONCURRENCY, progress=False)
        ledger = gw.ledger_frame()

    # one outcome per row; only chunks in flight at the kill are unknown
    assert len(result) == N and result["status"].notna().all()
    counts = result["status"].value_counts().to_dict()
    assert set(counts) <= {"accepted", "unknown"}
    assert counts.get("unknown", 0) <= CHUNK * CONCURRENCY
    assert counts["accepted"] >= N - CHUNK * CONCURRENCY
    # never twice, and the ledger is the accepted rows plus (maybe) the in-flight ones
    check_ledger(result, ledger, exact=False)
    unknown = digits(result.loc[result["status"] == "unknown", "number"])
    assert len(ledger) - counts["accepted"] == len(unknown & digits(ledger["number"]))
