"""The product token never shows: not in files, logs, reprs, progress output or exceptions."""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest
from test_send_helpers import make_plan

import cmframe
from cmframe.gateway import serve_gateway
from cmframe.journal import Journal
from cmframe.retry import RetryPolicy, stop_after_attempt, wait_fixed
from cmframe.secret import ProductToken
from cmframe.send import send

pytestmark = pytest.mark.timeout(120)

SECRET = "c0ffee42-dead-beef-cafe-5ec7e70ken99"


def leaks(text: str | bytes) -> bool:
    if isinstance(text, bytes):
        return SECRET.encode() in text or SECRET.encode("utf-16-le") in text
    return SECRET in text


def test_token_appears_nowhere(tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # httpx, httpcore and cmframe at their most verbose
    journal = tmp_path / "spring.cmjournal"
    texts: list[str] = []
    faults = ["ok", "drop_after", "500", "429:0", "slow:2", "ok"]
    retry = RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(0.0))
    with serve_gateway(tokens=[SECRET], faults=faults, ledger=tmp_path / "ledger.sqlite") as gw:
        plan = make_plan(12)
        result = send(plan, url=gw.message_url, token=ProductToken(SECRET), journal=journal,
                      chunk_size=2, concurrency=1, retry=retry, progress=True,
                      timeout=httpx.Timeout(5.0, read=0.5))
        assert set(result["status"]) == {"accepted", "unknown"}  # the faults did happen
        texts += [repr(result), result.to_string(), result.to_json(date_format="iso")]
        # a request-level rejection and an unreachable gateway, with their exceptions
        with pytest.raises(cmframe.RequestRejected) as rejected:
            send(make_plan(4, start=50), url=gw.message_url, token=SECRET + "-wrong",
                 progress=False, retry=retry)
        with serve_gateway(tokens=[SECRET], balance=1) as poor, pytest.raises(cmframe.RequestRejected) as poor_info:
            send(make_plan(4, start=60), url=poor.message_url, token=SECRET, progress=False)
    with pytest.raises(cmframe.SendError) as unreachable:
        send(make_plan(2, start=70), url=gw.message_url, token=SECRET, progress=False,
             retry=RetryPolicy(stop=stop_after_attempt(2), wait=wait_fixed(0.0)))
    for info in (rejected, poor_info, unreachable):
        error = info.value
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        texts.append(error.result.to_string())
    texts.append(repr(cmframe.read_journal(journal)))
    with Journal(journal) as j:
        texts += [repr(j), repr(j.meta()), repr(j.records())]
    out = capsys.readouterr()
    texts += [out.out, out.err]
    assert "cmframe send" in out.err  # the progress bar was shown
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.__dict__) for record in caplog.records]
    assert any(record.name.startswith("httpx") for record in caplog.records)
    assert not any(leaks(t) for t in texts)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert journal in written
    assert not [p.name for p in written if leaks(p.read_bytes())]
