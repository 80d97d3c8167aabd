"""The receiver under load, killed hard and restarted mid-load: no acknowledged report is lost.

20,000 webhook posts (JSON, XML, GET and form in turn) from 16 concurrent
clients on loopback. Part-way through, the receiver process gets SIGKILL and a
new one is started on the same store; the clients, like CM, retry whatever was
not answered 200. Every report answered 200 must be in the store, and every
stored row must be exactly one of the reports sent (a retried report whose
first answer was lost may be stored twice, identically).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode, urlsplit

from cmframe.receiver import read_store

CLIENTS = 16
PER_CLIENT = 1250  # 20,000 in all
KILL_AFTER = 7000  # acknowledged reports before the SIGKILL


def body_of(k: int, i: int) -> tuple[str, str, bytes | None, dict[str, str], tuple[str, str, int]]:
    """(method, path suffix, body, headers, expected (to, reference, code)) of report i of client k."""
    to, ref, code = f"0031{k:02d}{i:07d}", f"load-{k}", (i % 4)
    fmt = ("json", "xml", "get", "form")[i % 4]
    if fmt == "json":
        body = ('{"messages":{"msg":{"received":"2026-11-29T08:00:00Z","to":"' + to + '","reference":"'
                + ref + '","status":{"code":' + str(code) + ',"errorCode":0}}}}').encode()  # fmt: skip
        return "POST", "", body, {"Content-Type": "application/json"}, (to, ref, code)
    if fmt == "xml":
        body = (f'<MESSAGES><MSG RECEIVED="2026-11-29T08:00:00"><TO>{to}</TO><REFERENCE>{ref}</REFERENCE>'
                f"<STATUS><CODE>{code}</CODE></STATUS></MSG></MESSAGES>").encode()  # fmt: skip
        return "POST", "", body, {"Content-Type": "application/xml"}, (to, ref, code)
    query = urlencode({"TO": to, "REFERENCE": ref, "STATUS": code, "RECEIVED": "2026-11-29T08:00:00"})
    if fmt == "get":
        return "GET", "?" + query, None, {}, (to, ref, code)
    return "POST", "", query.encode(), {"Content-Type": "application/x-www-form-urlencoded"}, (to, ref, code)


class Target:
    """The current receiver's address; clients wait here while it is down."""

    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.address: tuple[str, int] | None = None
        self.generation = 0

    def set(self, address: tuple[str, int] | None) -> None:
        with self.cv:
            self.address = address
            self.generation += 1
            self.cv.notify_all()

    def get(self, timeout: float = 60.0) -> tuple[str, int]:
        with self.cv:
            assert self.cv.wait_for(lambda: self.address is not None, timeout), "receiver never came back"
            return self.address  # type: ignore[return-value]


def start(store) -> tuple[subprocess.Popen, tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmframe", "receive", "--port", "0", "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    assert "listening on" in line, line
    url = urlsplit(line.split("listening on ", 1)[1].split(" ", 1)[0])
    return proc, (url.hostname, url.port)


def test_20000_posts_16_clients_sigkill_and_restart(tmp_path):
    store = tmp_path / "load.sqlite"
    target = Target()
    proc, address = start(store)
    target.set(address)
    acked: list[list[tuple[str, str, int]]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    total = [0]
    lock = threading.Lock()
    killed = threading.Event()

    def client(k: int) -> None:
        conn = None
        for i in range(PER_CLIENT):
            method, suffix, body, headers, expected = body_of(k, i)
            for _attempt in range(200):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(*target.get(), timeout=30)
                        conn.connect()
                        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conn.request(method, "/" + suffix, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    status = None
                if status == 200:
                    acked[k].append(expected)
                    with lock:
                        total[0] += 1
                    break
                errors[k] += 1
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(0.05)  # CM retries later
            else:
                raise AssertionError(f"client {k} could not deliver report {i}")
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(CLIENTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        while total[0] < KILL_AFTER and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        target.set(None)  # clients that fail now wait for the restart
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        killed.set()
        acked_at_kill = total[0]
        proc, address = start(store)
        target.set(address)
        for t in threads:
            t.join(timeout=240)
        assert not any(t.is_alive() for t in threads), "clients did not finish"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    elapsed = time.monotonic() - started

    sent = {body_of(k, i)[4] for k in range(CLIENTS) for i in range(PER_CLIENT)}
    all_acked = [a for per in acked for a in per]
    assert len(all_acked) == CLIENTS * PER_CLIENT
    assert KILL_AFTER <= acked_at_kill < CLIENTS * PER_CLIENT  # the kill really was mid-load
    assert sum(errors) > 0  # some clients saw the dead receiver and retried

    reports, rejects = read_store(store)
    assert len(rejects) == 0
    stored = list(zip(reports["to"], reports["reference"], reports["status_code"].astype(int), strict=True))
    # every acknowledged report is stored ...
    missing = set(all_acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged reports lost, e.g. {sorted(missing)[:3]}"
    # ... and every stored row is one that was sent, never a different report under the same number
    assert set(stored) <= sent
    assert reports["to"].nunique() == len(sent)
    duplicates = len(stored) - len(set(stored))
    assert duplicates <= CLIENTS  # at most the one in-flight report per client at the kill
    print(f"load: {len(all_acked)} acked in {elapsed:.1f}s, {sum(errors)} client errors, "
          f"{duplicates} stored twice")  # fmt: skip
