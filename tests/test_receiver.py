"""The webhook receiver: formats, answers, secrets, store-before-200, 503, CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import httpx
import pandas as pd
import pytest

from cmframe.exceptions import GatewayError
from cmframe.receiver import read_store, serve_receiver
from cmframe.reports import read_status_reports

JSON_BODY = {"messages": {"msg": {"received": "2026-11-29T08:00:00", "to": "0031612345678", "reference": "spring",
                                  "status": {"code": 2, "errorCode": 0, "errorDescription": "No error"}, "operator": "KPN"}}}  # fmt: skip
XML_BODY = (
    "<MESSAGES><MSG RECEIVED=\"2026-11-29T08:00:01\"><TO>0031612345679</TO><REFERENCE>spring</REFERENCE>"
    "<STATUS><CODE>3</CODE><ERRORCODE>5</ERRORCODE><ERRORDESCRIPTION>Subscriber absent</ERRORDESCRIPTION>"
    "</STATUS></MSG></MESSAGES>"
)


def stored_count(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM reports").fetchone()[0]


def test_every_format_is_stored_before_the_200(tmp_path):
    store = tmp_path / "reports.sqlite"
    with serve_receiver(store) as rx, httpx.Client() as client:
        assert rx.url.startswith("http://127.0.0.1:") and rx.store == store
        answers = []
        answers.append(client.post(rx.url, json=JSON_BODY))
        assert stored_count(store) == 1  # committed by the time the 200 arrived
        answers.append(client.post(rx.url, json={"messages": {"msg": [JSON_BODY["messages"]["msg"]] * 2}}))
        answers.append(client.post(rx.url, content=XML_BODY, headers={"content-type": "text/xml"}))
        answers.append(client.get(rx.url, params={"TO": "0031612345670", "REFERENCE": "spring", "STATUS": "0"}))
        answers.append(client.post(rx.url, data={"to": "0031612345671", "status": "1", "errorcode": "204"}))
        assert [a.status_code for a in answers] == [200] * 5
        assert stored_count(store) == 6
        reports, rejects = rx.read(return_rejects=True)
    assert len(rejects) == 0
    assert list(reports["source"]) == ["json", "json", "json", "xml", "get", "form"]
    assert list(reports["status"]) == ["delivered"] * 3 + ["failed", "accepted", "rejected"]
    # duplicates are stored as received
    assert (reports["to"] == "0031612345678").sum() == 3
    # raw bodies are kept
    with sqlite3.connect(store) as conn:
        bodies = [row[0] for row in conn.execute("SELECT body FROM bodies ORDER BY id")]
    assert json.loads(bodies[0]) == JSON_BODY and bodies[3] == b"TO=0031612345670&REFERENCE=spring&STATUS=0"
    # the receiver's store is a read_status_reports source too, and reopening appends
    assert len(read_status_reports(store)) == 6
    with serve_receiver(store) as rx, httpx.Client() as client:
        assert client.post(rx.url, json=JSON_BODY).status_code == 200
    assert stored_count(store) == 7


def test_garbage_is_refused_and_partial_bodies_keep_their_rejects(tmp_path):
    store = tmp_path / "r.sqlite"
    with serve_receiver(store) as rx, httpx.Client() as client:
        bad = [
            client.post(rx.url, content=b"hello"),
            client.post(rx.url, content=b'{"messages": '),
            client.post(rx.url, content=b"<MSG><TO>0031612345678</TO></MSG>"),
            client.post(rx.url, content=b'<!DOCTYPE x [<!ENTITY a "b">]><MSG><TO>&a;</TO></MSG>'),
            client.post(rx.url, content=b""),
            client.get(rx.url),
            client.post(rx.url, content=b"\xff\xfe"),
            client.post(rx.url, files={"f": ("a.txt", b"x")}),
        ]
        assert [a.status_code // 100 for a in bad] == [4] * len(bad)
        assert "missing status" in bad[2].json()["error"]
        assert stored_count(store) == 0
        partial = client.post(rx.url, json={"messages": {"msg": [JSON_BODY["messages"]["msg"], {"to": "x", "status": 2}]}})
        assert partial.status_code == 200 and "1 rejected" in partial.json()["status"]
        assert rx.stats.refused == len(bad) and rx.stats.stored == 1 and rx.stats.rejects == 1
    reports, rejects = read_status_reports(store, return_rejects=True)
    assert len(reports) == 1
    assert list(rejects["reason"]) == ["'to' is not a phone number"]
    assert rejects["location"].iloc[0].startswith("store body 1")


def test_body_size_limit(tmp_path):
    with serve_receiver(tmp_path / "r.sqlite", max_body=2000) as rx, httpx.Client() as client:
        big = {"messages": {"msg": [JSON_BODY["messages"]["msg"]] * 40}}
        assert client.post(rx.url, json=big).status_code == 413

        def chunks():  # no Content-Length: the limit holds while streaming
            for _ in range(40):
                yield b" " * 100

        assert client.post(rx.url, content=chunks()).status_code == 413
        assert client.post(rx.url, json=JSON_BODY).status_code == 200
    assert stored_count(tmp_path / "r.sqlite") == 1


def test_path_token_and_basic_auth(tmp_path):
    with serve_receiver(tmp_path / "a.sqlite", path="/cm/hook", secret="s3cr3t-t0ken") as rx, httpx.Client() as client:
        assert rx.url.endswith("/cm/hook/s3cr3t-t0ken")
        assert "s3cr3t-t0ken" not in repr(rx)
        base = rx.base_url
        assert client.post(base + "/cm/hook", json=JSON_BODY).status_code == 404
        assert client.post(base + "/cm/hook/wrong", json=JSON_BODY).status_code == 404
        assert client.post(base + "/", json=JSON_BODY).status_code == 404
        assert client.post(rx.url, json=JSON_BODY).status_code == 200
        assert client.post(rx.url + "/", json=JSON_BODY).status_code == 200
    with serve_receiver(tmp_path / "b.sqlite", basic_auth=("cm", "pw")) as rx, httpx.Client() as client:
        refused = client.post(rx.url, json=JSON_BODY)
        assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
        assert client.post(rx.url, json=JSON_BODY, auth=("cm", "nope")).status_code == 401
        assert client.post(rx.url, json=JSON_BODY, auth=("cm", "pw")).status_code == 200
    assert stored_count(tmp_path / "a.sqlite") == 2 and stored_count(tmp_path / "b.sqlite") == 1


def test_503_when_the_store_cannot_be_written_then_recovers(tmp_path):
    store = tmp_path / "r.sqlite"
    with serve_receiver(store, busy_timeout=0.2) as rx, httpx.Client(timeout=30) as client:
        assert client.post(rx.url, json=JSON_BODY).status_code == 200
        blocker = sqlite3.connect(store, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            answer = client.post(rx.url, json=JSON_BODY)
            assert answer.status_code == 503 and "retry-after" in answer.headers
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert client.post(rx.url, json=JSON_BODY).status_code == 200
        assert rx.stats.errors == 1
    assert stored_count(store) == 2


def test_concurrent_posts_are_all_stored(tmp_path):
    store = tmp_path / "r.sqlite"
    acked = []
    with serve_receiver(store) as rx:
        def worker(k: int) -> None:
            with httpx.Client(timeout=30) as client:
                for i in range(40):
                    body = {"msg": {"to": f"0031600{k:02d}{i:04d}", "reference": f"c{k}", "status": {"code": 2}}}
                    if client.post(rx.url, json=body).status_code == 200:
                        acked.append(body["msg"]["to"])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    reports, _ = read_store(store)
    assert len(acked) == 320
    assert sorted(reports["to"]) == sorted(acked)


def test_unusable_store_path_raises(tmp_path):
    with pytest.raises(GatewayError):
        with serve_receiver(tmp_path / "missing-dir" / "r.sqlite"):
            pass
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    with pytest.raises(GatewayError, match="format"):
        with serve_receiver(other):
            pass


def start_cli(store, *extra, env=None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmframe", "receive", "--port", "0", "--store", str(store), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    line = proc.stdout.readline()
    assert "listening on" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    url = line.split("listening on ", 1)[1].split(" ", 1)[0]
    return proc, url


def test_cli_serves_until_terminated_and_hides_the_secret(tmp_path):
    store = tmp_path / "cli.sqlite"
    env = {**os.environ, "CMFRAME_RECEIVER_SECRET": "tok-123456"}
    proc, shown = start_cli(store, "--path", "/hook", env=env)
    try:
        assert shown.endswith("/hook/<secret>")
        url = shown.replace("<secret>", "tok-123456")
        with httpx.Client(timeout=30) as client:
            assert client.post(url, content=XML_BODY).status_code == 200
            assert client.post(url.replace("tok-123456", "nope"), content=XML_BODY).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "tok-123456" not in out + err
    reports = read_status_reports(store)
    assert list(reports["status"]) == ["failed"]
    assert reports["received_at"].iloc[0] == pd.Timestamp("2026-11-29 08:00:01", tz="UTC")
