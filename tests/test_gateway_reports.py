"""Status reports of the embedded gateway: outcomes, webhook pushes, Transactions API, CSV export."""

from __future__ import annotations

import httpx
import orjson
import pandas as pd
import pytest
from defusedxml import ElementTree

from cmframe.codes import DELIVERY_ERROR_CODES
from cmframe.gateway import serve_gateway
from cmframe.testing import FakeGateway, WebhookRecorder

TOKEN = "11111111-2222-3333-4444-555555555555"
FAST = {"time_scale": 1000.0, "report_backoff": 0.05}


def request(numbers, *, reference="camp", body="Hello", **extra) -> dict:
    msg = {"from": "Sender", "to": [{"number": n} for n in numbers], "body": {"content": body},
           "reference": reference, **extra}
    return {"messages": {"authentication": {"producttoken": TOKEN}, "msg": [msg]}}


NUMBERS = [f"003161234{i:04d}" for i in range(6)] + ["0044791112345", "0032470123456"]


def parse_pushes(pushes: list[dict], fmt: str) -> list[dict]:
    """Turn recorded webhook requests back into report dicts."""
    out = []
    for push in pushes:
        if fmt == "json":
            msgs = orjson.loads(push["body"])["messages"]["msg"]
            for m in msgs if isinstance(msgs, list) else [msgs]:
                out.append({"to": m["to"], "reference": m["reference"], "code": m["status"]["code"],
                            "error_code": m["status"]["errorCode"], "description": m["status"]["errorDescription"],
                            "operator": m["operator"], "received": m["received"]})
        elif fmt == "xml":
            root = ElementTree.fromstring(push["body"])
            assert root.tag == "MESSAGES"
            for m in root.findall("MSG"):
                out.append({"to": m.findtext("TO"), "reference": m.findtext("REFERENCE"),
                            "code": int(m.findtext("STATUS/CODE")), "error_code": int(m.findtext("STATUS/ERRORCODE")),
                            "description": m.findtext("STATUS/ERRORDESCRIPTION"), "operator": m.findtext("OPERATOR"),
                            "received": m.get("RECEIVED")})
        else:
            if fmt == "get":
                assert push["method"] == "GET"
                fields = push["query"]
            else:
                assert push["headers"]["content-type"] == "application/x-www-form-urlencoded"
                fields = dict(httpx.QueryParams(push["body"].decode()))
            out.append({"to": fields["TO"], "reference": fields.get("REFERENCE"), "code": int(fields["STATUS"]),
                        "error_code": int(fields["ERRORCODE"]), "description": fields["ERRORDESCRIPTION"],
                        "operator": fields["OPERATOR"], "received": fields["RECEIVED"]})
    return out


def expected_reports(ledger: pd.DataFrame) -> set[tuple]:
    ms = lambda ts: ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # noqa: E731
    out = set()
    for row in ledger.itertuples():
        out.add((row.number, row.reference, 0, 0, "No error", row.operator, ms(row.accepted_report_at)))
        out.add((row.number, row.reference, row.status_code, row.error_code, row.error_description,
                 row.operator, ms(row.final_report_at)))
    return out


@pytest.mark.parametrize("fmt, batch", [("json", 1), ("json", 5), ("xml", 1), ("xml", 4), ("get", 1), ("form", 1)])
def test_reports_arrive_in_each_format_and_match_the_ledger(fmt, batch):
    with WebhookRecorder() as hook, serve_gateway(tokens=[TOKEN], webhook=hook.url, report_format=fmt,
                                                  report_batch=batch, failed_rate=0.3, rejected_rate=0.2,
                                                  seed=3, **FAST) as gw:
        r = httpx.post(gw.message_url, json=request(NUMBERS), timeout=30)
        assert r.status_code == 200
        assert gw.wait_reports(30)
        ledger = gw.ledger_frame()
    reports = parse_pushes(hook.requests, fmt)
    assert len(reports) == 2 * len(NUMBERS)
    got = {(r["to"], r["reference"], r["code"], r["error_code"], r["description"], r["operator"], r["received"])
           for r in reports}
    assert got == expected_reports(ledger)
    assert set(ledger["status_code"]) >= {2}
    assert len(set(ledger["status_code"])) >= 2  # the rates gave more than one outcome
    if batch > 1:
        assert len(hook.requests) < len(reports)


def test_report_shape_json():
    with WebhookRecorder() as hook, serve_gateway(tokens=[TOKEN], webhook=hook.url, **FAST) as gw:
        httpx.post(gw.message_url, json=request(["0031612345678"], reference="shape"), timeout=30)
        assert gw.wait_reports(30)
    first = orjson.loads(hook.requests[0]["body"])
    msg = first["messages"]["msg"]
    assert set(msg) == {"received", "to", "reference", "status", "operator"}
    assert set(msg["status"]) == {"code", "errorCode", "errorDescription"}
    assert msg["to"] == "0031612345678" and msg["reference"] == "shape" and msg["operator"] == "KPN"
    assert pd.Timestamp(msg["received"]).tz is not None  # ISO-8601 UTC
    assert hook.requests[0]["headers"]["content-type"] == "application/json"


def test_non_2xx_answers_are_retried_with_backoff():
    with WebhookRecorder(statuses=[500, 503, 404]) as hook, serve_gateway(
        tokens=[TOKEN], webhook=hook.url, **FAST
    ) as gw:
        httpx.post(gw.message_url, json=request(["0031612345678"]), timeout=30)
        assert gw.wait_reports(30)
        deliveries = gw.deliveries_frame()
    assert [r["status"] for r in hook.requests] == [500, 503, 404, 200, 200]
    codes = parse_pushes(hook.ok_requests(), "json")
    assert sorted(r["code"] for r in codes)[0] == 0 and len(codes) == 2
    assert sorted(deliveries["http_status"].tolist()) == [200, 200, 404, 500, 503]
    for _, attempts in deliveries.groupby("status_code"):  # each report: attempts 1..k, the last one 200
        assert attempts["attempt"].tolist() == list(range(1, len(attempts) + 1))
        assert attempts["http_status"].iloc[-1] == 200


def test_unreachable_webhook_gives_up_after_the_retries():
    with serve_gateway(tokens=[TOKEN], webhook="http://127.0.0.1:9/nowhere", report_retries=3, **FAST) as gw:
        httpx.post(gw.message_url, json=request(["0031612345678"]), timeout=30)
        assert gw.wait_reports(30)
        deliveries = gw.deliveries_frame()
        assert gw.gateway.reports.failed == 2
    assert len(deliveries) == 6 and deliveries["http_status"].isna().all()
    assert deliveries["error"].str.contains("ConnectError").all()


def test_duplicates_and_reordering():
    numbers = [f"00316123{i:05d}" for i in range(20)]
    with WebhookRecorder() as hook, serve_gateway(tokens=[TOKEN], webhook=hook.url, duplicate_rate=1.0,
                                                  reorder_rate=1.0, reorder_window=0.3, **FAST) as gw:
        httpx.post(gw.message_url, json=request(numbers), timeout=30)
        assert gw.wait_reports(30)
    reports = parse_pushes(hook.requests, "json")
    assert len(reports) == 2 * 2 * len(numbers)  # every report twice
    counts = pd.Series([(r["to"], r["code"]) for r in reports]).value_counts()
    assert (counts == 2).all()
    first_code = {}
    for r in reports:
        first_code.setdefault(r["to"], r["code"])
    assert any(code != 0 for code in first_code.values())  # some final report overtook its code-0 report


def test_outcome_rules_prefix_channel_fallback_and_validity():
    fake = FakeGateway(
        tokens=[TOKEN], delivered_rate=1.0, failed_rate=0.0, rejected_rate=0.0,
        prefix_rules={"0032": {"rejected": 1.0, "delivered": 0.0, "operator": "Proximus Test"},
                      "0033": {"delay": 7200}},
        channel_rules={"WhatsApp": {"delivered_rate": 0.0, "failed_rate": 1.0}},
    )
    with fake.client() as c:
        c.post("/v1.0/message", json=request(["0031600000001"], reference="plain"))
        c.post("/v1.0/message", json=request(["0032470000001"], reference="be"))
        c.post("/v1.0/message", json=request(["0031600000002"], reference="fallback", allowedChannels=["WhatsApp", "SMS"]))
        c.post("/v1.0/message", json=request(["0031600000003"], reference="wa-only", allowedChannels=["WhatsApp"]))
        c.post("/v1.0/message", json=request(["0033600000001"], reference="expired", validity="30m"))
        c.post("/v1.0/message", json=request(["0033600000002"], reference="long-validity", validity="48h"))
    ledger = fake.ledger_frame().set_index("reference")
    fake.close()
    assert ledger.loc["plain", "status_code"] == 2 and ledger.loc["plain", "error_code"] == 0
    assert ledger.loc["be", "status_code"] == 1 and ledger.loc["be", "operator"] == "Proximus Test"
    assert ledger.loc["be", "error_code"] in (204, 11, 107)
    assert (ledger.loc["fallback", "status_code"], ledger.loc["fallback", "channel"]) == (2, "SMS")
    assert (ledger.loc["wa-only", "status_code"], ledger.loc["wa-only", "channel"]) == (3, "WhatsApp")
    assert ledger.loc["wa-only", "error_description"] == DELIVERY_ERROR_CODES[ledger.loc["wa-only", "error_code"]]
    expired = ledger.loc["expired"]
    # delay is exponential with mean 7200 s: far past 30 minutes most of the time; when it fell
    # inside the validity the message is delivered, never expired.
    if expired["status_code"] == 3:
        assert expired["error_code"] == 39
        assert expired["final_report_at"] - expired["accepted_at"] == pd.Timedelta(minutes=30)
    else:
        assert expired["final_report_at"] - expired["accepted_at"] <= pd.Timedelta(minutes=30)


def test_validity_expiry_is_applied():
    fake = FakeGateway(tokens=[TOKEN], delivered_rate=1.0, failed_rate=0.0, rejected_rate=0.0,
                       prefix_rules={"0033": {"delay": 36000}})
    numbers = [f"00336{i:08d}" for i in range(40)]
    with fake.client() as c:
        c.post("/v1.0/message", json=request(numbers, validity="30m"))
        c.post("/v1.0/message", json=request(["0033699999999"], reference="absolute",
                                             validity="2026-01-01 10:00:00 GMT"))
    ledger = fake.ledger_frame()
    fake.close()
    camp = ledger[ledger["reference"] == "camp"]
    expired = camp[camp["error_code"] == 39]
    assert len(expired) >= 35  # P(delay < 30 min) is about 5%
    assert (expired["status_code"] == 3).all()
    assert ((expired["final_report_at"] - expired["accepted_at"]) == pd.Timedelta(minutes=30)).all()
    assert (camp.loc[camp["error_code"] != 39, "status_code"] == 2).all()
    past = ledger[ledger["reference"] == "absolute"].iloc[0]
    assert (past["status_code"], past["error_code"]) == (3, 39)  # the deadline had passed already


def test_rates_are_followed_and_outcomes_are_deterministic():
    numbers = [f"00316{i:08d}" for i in range(1000)]

    def run(seed):
        fake = FakeGateway(tokens=[TOKEN], seed=seed)
        with fake.client() as c:
            c.post("/v1.0/message", json=request(numbers))
        frame = fake.ledger_frame()
        fake.close()
        return frame

    a, b, c = run(5), run(5), run(6)
    shares = a["status_code"].value_counts(normalize=True)
    assert 0.88 < shares[2] < 0.97 and 0.02 < shares[3] < 0.09 and 0.003 < shares[1] < 0.05
    assert a["status_code"].tolist() == b["status_code"].tolist()
    assert (a["final_report_at"] - a["accepted_at"]).tolist() == (b["final_report_at"] - b["accepted_at"]).tolist()
    assert a["status_code"].tolist() != c["status_code"].tolist()
    assert (a["accepted_report_at"] <= a["final_report_at"]).all()


def test_time_scale_accelerates_delivery():
    with WebhookRecorder() as hook, serve_gateway(tokens=[TOKEN], webhook=hook.url, delivery_delay=3600,
                                                  accepted_delay=60, time_scale=36000) as gw:
        httpx.post(gw.message_url, json=request(NUMBERS), timeout=30)
        assert gw.wait_reports(30)  # hours of simulated time in well under a second each
        ledger = gw.ledger_frame()
    sim = ledger["final_report_at"] - ledger["accepted_at"]
    real = ledger["final_report_due"] - ledger["accepted_at"]
    assert (abs(sim / 36000 - real) < pd.Timedelta(milliseconds=1)).all()
    assert sim.mean() > pd.Timedelta(minutes=10)
    assert len(hook.requests) == 2 * len(NUMBERS)


def test_fake_gateway_pushes_reports_too():
    with WebhookRecorder() as hook, FakeGateway(tokens=[TOKEN], webhook=hook.url, **FAST) as fake:
        with fake.client() as c:
            c.post("/v1.0/message", json=request(["0031612345678"]))
        assert fake.wait_reports(30)
        assert len(parse_pushes(hook.requests, "json")) == 2


# --- Transactions API and CSV export ---------------------------------------------------------

def test_transactions_api_paged():
    numbers = [f"00316{i:08d}" for i in range(25)]
    with serve_gateway(tokens=[TOKEN], seed=2, **FAST) as gw, httpx.Client(timeout=30) as c:
        c.post(gw.message_url, json=request(numbers, reference="tx", customGrouping="cg1"))
        c.post(gw.message_url, json=request(["0044791112345"], reference="other"))
        assert c.get(gw.transactions_url).status_code == 401
        assert c.get(gw.transactions_url, headers={"X-CM-PRODUCTTOKEN": "nope"}).status_code == 401
        gw.wait_reports(5)
        import time

        time.sleep(0.3)  # let every simulated report fall due (time_scale 1000)
        h = {"X-CM-PRODUCTTOKEN": TOKEN}
        seen = []
        page, pages = 1, None
        while pages is None or page <= pages:
            r = c.get(gw.transactions_url, headers=h, params={"reference": "tx", "pagesize": 10, "page": page})
            assert r.status_code == 200
            body = r.json()
            pages = body["pagination"]["totalPages"]
            assert body["pagination"] == {"currentPage": page, "totalPages": 3, "pageSize": 10}
            seen += body["result"]
            page += 1
        assert body["summary"]["total"] == 25
        everything = c.get(gw.transactions_url, headers=h, params={"pagesize": 1000}).json()
        inbound = c.get(gw.transactions_url, headers=h, params={"direction": "in"}).json()
        future = c.get(gw.transactions_url, headers=h, params={"startdate": "2099-01-01T00:00:00"}).json()
        bad = c.get(gw.transactions_url, headers=h, params={"startdate": "yesterday"})
        ledger = gw.ledger_frame()
    assert [r["recipient"] for r in seen] == numbers
    tx = ledger[ledger["reference"] == "tx"]
    codes = {2: 20, 3: 30, 1: 40}
    assert [r["status"] for r in seen] == [codes[s] for s in tx["status_code"]]
    first = seen[0]
    assert first["countryiso"] == "NL" and first["currency"] == "EUR" and first["customgrouping"] == "cg1"
    assert first["message"] == "Hello" and first["sender"] == "Sender" and first["parts"] == 1
    assert len(first["created"]) == 19  # yyyy-MM-ddTHH:mm:ss
    assert everything["summary"]["total"] == 26 and len(everything["result"]) == 26
    assert inbound["result"] == [] and future["result"] == []
    assert bad.status_code == 400


def test_transactions_show_pending_before_reports_are_due():
    with serve_gateway(tokens=[TOKEN], accepted_delay=3600, delivery_delay=7200) as gw:
        httpx.post(gw.message_url, json=request(["0031612345678"]), timeout=30)
        r = httpx.get(gw.transactions_url, headers={"X-CM-PRODUCTTOKEN": TOKEN}, timeout=30).json()
    assert r["result"][0]["status"] == 10
    assert r["summary"]["pending"] == 1


def test_csv_export(tmp_path):
    path = tmp_path / "export.csv"
    with serve_gateway(tokens=[TOKEN], export_csv=path, failed_rate=0.5, **FAST) as gw:
        httpx.post(gw.message_url, json=request(NUMBERS, customGrouping="seg"), timeout=30)
        import time

        time.sleep(0.3)
        snapshot = gw.export_csv(tmp_path / "now.csv")
        ledger = gw.ledger_frame()
    for p in (path, snapshot):
        frame = pd.read_csv(p, dtype=str)
        assert list(frame.columns[:7]) == ["Created", "Status time", "Recipient", "Sender", "Message",
                                           "Reference", "Status"]
        assert frame["Recipient"].tolist() == NUMBERS
        assert frame["Status code"].astype(int).tolist() == ledger["status_code"].tolist()
        assert set(frame["Status"]) <= {"Delivered", "Failed", "Rejected"}
        assert (frame["Custom grouping"] == "seg").all()


def test_pull_paths_read_back_with_cmframe_reports(tmp_path):
    """The Transactions API pages and the CSV export parse with cmframe's own readers."""
    import time

    import cmframe

    numbers = [f"00316123456{i:02d}" for i in range(30)]
    with serve_gateway(tokens=[TOKEN], failed_rate=0.3, seed=4, **FAST) as gw:
        httpx.post(gw.message_url, json=request(numbers, reference="pull"), timeout=30)
        time.sleep(0.3)  # all reports due (time_scale 1000)
        pulled = cmframe.fetch_transactions(url=gw.transactions_url, token=TOKEN, page_size=7)
        export = gw.export_csv(tmp_path / "export.csv")
        ledger = gw.ledger_frame()
    from_csv = cmframe.read_status_reports(export)
    truth = dict(zip(ledger["number"], ledger["status"], strict=True))
    for frame in (pulled, from_csv):
        assert sorted(frame["to"]) == numbers
        assert dict(zip(frame["to"], frame["status"], strict=True)) == truth


@pytest.mark.parametrize("fmt", ["json", "xml", "get", "form"])
def test_pushed_reports_land_in_cmframes_receiver(tmp_path, fmt):
    """Pushed with duplicates and reordering, every format reads back to the ledger's outcomes."""
    import cmframe
    from cmframe.receiver import serve_receiver

    numbers = [f"00316123457{i:02d}" for i in range(12)]
    store = tmp_path / "reports.sqlite"
    with serve_receiver(store) as rx, serve_gateway(
        tokens=[TOKEN], webhook=rx.url, report_format=fmt, failed_rate=0.3, duplicate_rate=0.3,
        reorder_rate=0.5, reorder_window=0.2, seed=9, **FAST,
    ) as gw:
        httpx.post(gw.message_url, json=request(numbers, reference="rx"), timeout=30)
        assert gw.wait_reports(30)
        ledger = gw.ledger_frame()
    reports = cmframe.read_status_reports(store)
    final = reports[reports["status"] != "accepted"].drop_duplicates(["to", "reference", "status"])
    assert sorted(final["to"]) == numbers
    assert dict(zip(final["to"], final["status"], strict=True)) == dict(zip(ledger["number"], ledger["status"], strict=True))
