"""Fuzzed webhook bodies never crash the receiver: 200 (stored) or 4xx (nothing stored)."""

from __future__ import annotations

import sqlite3

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmframe.receiver import serve_receiver
from cmframe.reports import read_status_reports

KEYS = ["to", "TO", "reference", "status", "STATUS", "code", "errorCode", "received", "RECEIVED", "msg", "messages"]
leaf = st.one_of(st.none(), st.integers(-(2**40), 2**40), st.text(max_size=16),
                 st.sampled_from(["0031612345678", "2", "3", "2026-11-29T08:00:00Z"]))  # fmt: skip
docs = st.recursive(
    leaf,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(KEYS), c, max_size=5),
    max_leaves=20,
)
requests = st.one_of(
    st.tuples(st.just("POST"), st.binary(max_size=300), st.sampled_from([None, "application/json", "text/xml"])),
    st.tuples(st.just("POST"), docs.map(lambda d: orjson.dumps(d)), st.just("application/json")),
    st.tuples(
        st.just("POST"),
        st.lists(st.sampled_from(["<MESSAGES>", "</MESSAGES>", "<MSG>", "</MSG>", "<TO>0031612345678</TO>",
                                  "<STATUS><CODE>2</CODE></STATUS>", "<TO>", "&a;", "<!DOCTYPE a [<!ENTITY a 'x'>]>",
                                  "<STATUS>", "x"]), max_size=10).map(lambda p: "".join(p).encode()),
        st.just("application/xml"),
    ),  # fmt: skip
    st.tuples(
        st.sampled_from(["GET", "POST"]),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), st.text(max_size=14), max_size=5)
        .map(lambda d: httpx.QueryParams(d).__str__().encode()),
        st.just("application/x-www-form-urlencoded"),
    ),
)


def test_fuzzed_bodies_get_200_or_4xx_and_200_means_stored(tmp_path):
    store = tmp_path / "fuzz.sqlite"
    with serve_receiver(store, max_body=4096) as rx, httpx.Client(timeout=30) as client:
        counts = {"ok": 0, "refused": 0}

        @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(request=requests)
        def one(request):
            method, body, ctype = request
            headers = {"content-type": ctype} if ctype else {}
            with sqlite3.connect(store) as conn:
                before = conn.execute("SELECT count(*) FROM bodies").fetchone()[0]
            if method == "GET":
                answer = client.get(rx.url + "?" + body.decode())
            else:
                answer = client.post(rx.url, content=body, headers=headers)
            assert answer.status_code in (200, 400, 413, 415), answer.text
            with sqlite3.connect(store) as conn:
                after = conn.execute("SELECT count(*) FROM bodies").fetchone()[0]
            if answer.status_code == 200:
                counts["ok"] += 1
                assert after == before + 1
            else:
                counts["refused"] += 1
                assert after == before and "error" in answer.json()

        one()
        assert rx.stats.errors == 0
    # whatever was stored reads back
    reports, rejects = read_status_reports(store, return_rejects=True)
    assert len(reports) >= counts["ok"] and counts["refused"] > 0
