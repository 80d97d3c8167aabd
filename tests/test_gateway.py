"""The embedded gateway over a real loopback socket: every response row of the spec."""

from __future__ import annotations

import sqlite3

import httpx
import orjson
import pandas as pd
import pytest

from cmframe.codes import DETAILS, ERROR_CODES, MESSAGE_DETAILS
from cmframe.encode import estimate_one
from cmframe.exceptions import SpecError
from cmframe.gateway import GatewayConfig, serve_gateway
from cmframe.testing import FakeGateway

TOKEN = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-8888-7777-6666-555555555555"


def msg(*numbers: str, body="Test message", sender="Sender", **extra) -> dict:
    out = {"from": sender, "to": [{"number": n} for n in numbers], "body": {"type": "auto", "content": body}}
    out.update(extra)
    return out


def request(*msgs: dict, token: str | None = TOKEN) -> dict:
    messages: dict = {"msg": list(msgs)}
    if token is not None:
        messages["authentication"] = {"productToken": token}
    return {"messages": messages}


@pytest.fixture(scope="module")
def gw():
    with serve_gateway(tokens=[TOKEN], seed=1) as running:
        yield running


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=30) as c:
        yield c


def post(client, gw, payload, **kw) -> httpx.Response:
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return client.post(gw.message_url, content=content, headers={"content-type": "application/json"}, **kw)


def request_error(details: str, code: int) -> dict:
    return {"details": details, "errorCode": code, "messages": []}


def entry(to, status="Accepted", reference=None, parts=1, details=None, code=0) -> dict:
    return {"to": to, "status": status, "reference": reference, "parts": parts,
            "messageDetails": details, "messageErrorCode": code}


# --- request-level rows -------------------------------------------------------------

def test_url_is_loopback_with_a_random_port(gw):
    assert gw.url.startswith("http://127.0.0.1:")
    assert gw.message_url == gw.url + "/v1.0/message"
    assert int(gw.url.rsplit(":", 1)[1]) > 0


def test_get_is_answered_405(gw, client):
    r = client.get(gw.message_url)
    assert r.status_code == 405
    assert r.content == b""


def test_invalid_json(gw, client):
    r = post(client, gw, b'{"messages": {"msg": [')
    assert r.status_code == 400
    assert r.json() == request_error("Invalid JSON", 202)


def test_json_that_is_not_an_object(gw, client):
    r = post(client, gw, b"[1, 2]")
    assert (r.status_code, r.json()) == (400, request_error("Invalid JSON", 202))


def test_missing_token(gw, client):
    r = post(client, gw, request(msg("0031612345678"), token=None))
    assert r.status_code == 400
    assert r.json() == request_error("Invalid product token.", 103)


def test_unknown_token(gw, client):
    r = post(client, gw, request(msg("0031612345678"), token=OTHER))
    assert r.status_code == 400
    assert r.json() == request_error("No account found for the given authentication", 101)


def test_token_in_header(gw, client):
    r = client.post(gw.message_url, content=orjson.dumps(request(msg("0031612345001"), token=None)),
                    headers={"X-CM-PRODUCTTOKEN": TOKEN})
    assert r.status_code == 200
    assert r.json()["errorCode"] == 0


def test_no_msg_object(gw, client):
    for payload in ({"messages": {"authentication": {"producttoken": TOKEN}}},
                    request(token=TOKEN)):
        r = post(client, gw, payload)
        assert r.status_code == 400
        assert r.json() == request_error("A MESSAGES object requires at least one MSG object", 203)


def test_msg_must_be_an_array(gw, client):
    payload = {"messages": {"authentication": {"producttoken": TOKEN}, "msg": msg("0031612345678")}}
    r = post(client, gw, payload)
    assert r.status_code == 400
    assert r.json() == request_error("msg object is an invalid type, must be an array", 203)


def test_more_than_1000_msg_is_refused_whole(gw, client):
    before = len(gw.ledger_frame())
    r = post(client, gw, request(*[msg(f"00316{i:08d}") for i in range(1001)]))
    assert r.status_code == 400
    body = r.json()
    assert body["errorCode"] == 203 and body["messages"] == []
    assert "1000" in body["details"]
    assert len(gw.ledger_frame()) == before  # nothing accepted


def test_exactly_1000_msg_is_fine(gw, client):
    r = post(client, gw, request(*[msg(f"00317{i:08d}", reference="thousand") for i in range(1000)]))
    assert r.status_code == 200
    assert r.json()["details"] == "Created 1000 message(s)"
    assert len(r.json()["messages"]) == 1000


# --- per-message rows -----------------------------------------------------------------

PER_MESSAGE_ROWS = [
    # (msg, expected entry): the spec's messageDetails rows
    ({"to": [{"number": "0031612345678"}], "body": {"content": "x"}},
     entry("0031612345678", "Rejected", None, 0, "No FROM field found in a MSG object.", 301)),
    (msg(""), entry("", "Rejected", None, 0, "Empty mobilenumber field, MT ignored", 302)),
    ({"from": "S", "to": [{}], "body": {"content": "x"}},
     entry(None, "Rejected", None, 0, "Empty mobilenumber field, MT ignored", 302)),
    (msg("0044791112345a"),
     entry("0044791112345a", "Rejected", None, 0, "Rejected: Gsm '0044791112345a' is not a number.", 303)),
    ({"from": "S", "to": {"number": "0031612345678"}, "body": {"content": "x"}},
     entry(None, "Rejected", None, 0, "to object is an invalid type, must be an array", 302)),
    (msg("0031612345678", allowedChannels="SMS"),
     entry("0031612345678", "Rejected", None, 0, "allowedChannels object is an invalid type, must be an array", 305)),
    ({"from": "S", "to": [{"number": "0031612345678"}]},
     entry("0031612345678", "Rejected", None, 0, "No body field was found", 304)),
    ({"from": "S", "to": [{"number": "0031612345678"}], "body": {"type": "auto"}},
     entry("0031612345678", "Rejected", None, 0, "A body without content was found", 304)),
    (msg("0031612345678", body=""),
     entry("0031612345678", "Rejected", None, 0, "A body without content was found", 304)),
    (msg("0031612345678", reference="r" * 33),
     entry("0031612345678", "Rejected", "r" * 33, 0, "The reference field is invalid", 305)),
    (msg("0031612345678", validity="tomorrow-ish"),
     entry("0031612345678", "Rejected", None, 0, "The validity field is invalid", 305)),
    (msg("0031612345678", customGrouping="g" * 101),
     entry("0031612345678", "Rejected", None, 0, "The customGrouping field is invalid", 305)),
    (msg("0031612345678", body={"type": "weird", "content": "x"}) | {"body": {"type": "weird", "content": "x"}},
     entry("0031612345678", "Rejected", None, 0, "The body.type field is invalid", 305)),
]


@pytest.mark.parametrize("bad, expected", PER_MESSAGE_ROWS)
def test_every_message_row_partial_and_all_rejected(gw, client, bad, expected):
    # All rejected: HTTP 400, errorCode 201, "Created 0 message(s)".
    r = post(client, gw, request(bad))
    assert r.status_code == 400
    assert r.json() == {"details": "Created 0 message(s)", "errorCode": 201, "messages": [expected]}
    # With a correct message beside it: HTTP 200, errorCode 201, the good one accepted.
    r = post(client, gw, request(msg("0031611111111", reference="good"), bad))
    assert r.status_code == 200
    assert r.json() == {"details": "Created 1 message(s)", "errorCode": 201,
                        "messages": [entry("0031611111111", reference="good"), expected]}


def test_message_details_texts_come_from_codes():
    assert MESSAGE_DETAILS["no_from"] == "No FROM field found in a MSG object."
    assert DETAILS["no_account"] == "No account found for the given authentication"
    assert ERROR_CODES[402] == "Message has been blacklisted"


def test_spec_example_partial_success(gw, client):
    payload = request(msg("00447911123456", reference="your_reference_A"),
                      msg("00447911123457", body="", reference="your_reference_B"))
    r = post(client, gw, payload)
    assert r.status_code == 200
    assert r.json() == {
        "details": "Created 1 message(s)", "errorCode": 201,
        "messages": [entry("00447911123456", reference="your_reference_A"),
                     entry("00447911123457", "Rejected", "your_reference_B", 0, "A body without content was found", 304)],
    }


def test_batch_of_msgs_and_tos_all_accepted(gw, client):
    payload = request(msg("00447911123456", "00447911123457", reference="batch", allowedChannels=["Viber"]),
                      msg("00447911123458", "00447911123459", sender="OtherSender", allowedChannels=["SMS"]))
    r = post(client, gw, payload)
    assert r.status_code == 200
    body = r.json()
    assert body["details"] == "Created 4 message(s)" and body["errorCode"] == 0
    assert [m["to"] for m in body["messages"]] == ["00447911123456", "00447911123457", "00447911123458", "00447911123459"]
    assert [m["reference"] for m in body["messages"]] == ["batch", "batch", None, None]
    assert all(m["status"] == "Accepted" and m["messageErrorCode"] == 0 for m in body["messages"])


def test_keys_are_case_insensitive(gw, client):
    payload = {"MESSAGES": {"Authentication": {"PRODUCTTOKEN": TOKEN}, "MSG": [
        {"FROM": "Sender", "TO": [{"NUMBER": "0031612340001"}], "BODY": {"TYPE": "AUTO", "CONTENT": "Hi"},
         "Reference": "caps", "ALLOWEDCHANNELS": ["SMS"], "customgrouping": "cg"}]}}
    r = post(client, gw, payload)
    assert r.status_code == 200, r.text
    assert r.json()["messages"][0]["reference"] == "caps"
    row = gw.ledger_frame().query("reference == 'caps'").iloc[0]
    assert (row["number"], row["body"], row["channels"], row["custom_grouping"]) == ("0031612340001", "Hi", "SMS", "cg")


@pytest.mark.parametrize("body", [
    "a" * 160, "a" * 161, "a" * 306, "a" * 307, "€" * 80, "€" * 81, "é" * 160,
    "ü" + "a" * 159, "ç" * 70, "ç" * 71, "ç" * 134, "ç" * 135, "😀" * 35, "😀" * 36,
])
def test_parts_follow_gsm7_and_ucs2_rules(gw, client, body):
    r = post(client, gw, request(msg("0031612349999", body=body)))
    assert r.status_code == 200
    assert r.json()["messages"][0]["parts"] == estimate_one(body).parts


def test_parts_known_values(gw, client):
    cases = {"a" * 160: 1, "a" * 161: 2, "€" * 80: 1, "€" * 81: 2, "ç" * 70: 1, "ç" * 71: 2, "😀" * 35: 1, "😀" * 36: 2}
    payload = request(*[msg("0031612348888", body=b) for b in cases])
    parts = [m["parts"] for m in post(client, gw, payload).json()["messages"]]
    assert parts == list(cases.values())


def test_dcs_8_forces_unicode_unless_auto(gw, client):
    text = "a" * 100
    r = post(client, gw, request(msg("0031612340002", body=text, dcs=8) | {"body": {"type": "text", "content": text}},
                                 msg("0031612340003", body=text, dcs=8)))
    assert [m["parts"] for m in r.json()["messages"]] == [2, 1]


def test_maximum_parts(gw, client):
    payload = request(msg("0031612340004", body="a" * 400, minimumNumberOfMessageParts=1, maximumNumberOfMessageParts=2))
    r = post(client, gw, payload)
    assert r.status_code == 400
    m = r.json()["messages"][0]
    assert (m["status"], m["messageErrorCode"]) == ("Rejected", 305)
    assert "maximumNumberOfMessageParts" in m["messageDetails"]


def test_unknown_path_404_and_health(gw, client):
    assert client.get(gw.url + "/nope").status_code == 404
    assert client.get(gw.url + "/health").status_code == 200


# --- configuration: balance, spam, blacklist, unroutable ---------------------------------

def test_balance_spam_blacklist_unroutable():
    with serve_gateway(tokens=[TOKEN], balance=3, blacklist=["+31612000000"], spam_words=["FREE money"],
                       unroutable_prefixes=["00999"]) as gw, httpx.Client() as c:
        r = post(c, gw, request(msg("0031612000000"), msg("0031612000001", body="get free MONEY now"),
                                msg("0031612000002")))
        assert r.status_code == 200
        assert r.json()["messages"] == [
            entry("0031612000000", "Rejected", None, 0, "Message has been blacklisted", 402),
            entry("0031612000001", "Rejected", None, 0, "Message has been spam filtered", 401),
            entry("0031612000002"),
        ]
        assert gw.gateway.balance == 2
        r = post(c, gw, request(msg("0031612000003", body="a" * 400)))  # 3 parts > 2 left
        assert (r.status_code, r.json()) == (400, request_error("Insufficient balance.", 102))
        r = post(c, gw, request(msg("0031612000003", body="a" * 200)))  # 2 parts: fits exactly
        assert r.status_code == 200 and gw.gateway.balance == 0
        r = post(c, gw, request(msg("0031612000004")))
        assert r.json() == request_error("Insufficient balance.", 102)
        r = post(c, gw, request(msg("0099912345678")))
        assert (r.status_code, r.json()) == (400, request_error("Message is unroutable.", 999))
        assert list(gw.ledger_frame()["number"]) == ["0031612000002", "0031612000003"]


def test_any_token_when_none_configured():
    with serve_gateway() as gw, httpx.Client() as c:
        assert post(c, gw, request(msg("0031612345678"), token="whatever")).status_code == 200
        assert post(c, gw, request(msg("0031612345678"), token=None)).json()["errorCode"] == 103


# --- ledger --------------------------------------------------------------------------------

def test_ledger_records_every_field_and_the_request(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with serve_gateway(tokens=[TOKEN], ledger=path) as gw, httpx.Client() as c:
        assert gw.ledger == path
        payload = request(msg("0031612345678", "0031612345679", body="Hé {x}", reference="ref1",
                              allowedChannels=["WhatsApp", "SMS"], customGrouping="a", customGrouping2="b",
                              customGrouping3="c", validity="2h", richContent={"conversation": [{"text": "hi"}]}))
        r = post(c, gw, payload)
        rid = r.headers["x-request-id"]
        frame = gw.ledger_frame()
    assert len(frame) == 2
    row = frame.iloc[1]
    assert row["request_id"] == rid
    assert (row["msg_index"], row["to_index"]) == (0, 1)
    assert row["number"] == "0031612345679" and row["sender"] == "Sender" and row["body"] == "Hé {x}"
    assert row["channels"] == "WhatsApp,SMS"
    assert (row["custom_grouping"], row["custom_grouping2"], row["custom_grouping3"]) == ("a", "b", "c")
    assert row["validity"] == "2h"
    assert orjson.loads(row["rich_content"]) == {"conversation": [{"text": "hi"}]}
    assert row["parts"] == 1 and row["encoding"] == "gsm7"
    assert row["status_code"] in (1, 2, 3) and row["channel"] in ("WhatsApp", "SMS")
    assert row["expires_at"] - row["accepted_at"] == pd.Timedelta(hours=2)
    assert frame["accepted_at"].dt.tz is not None
    assert frame["number"].dtype == "string" and frame["parts"].dtype == "Int64"
    # The file is plain SQLite: a test can count rows per (reference, number, body).
    db = sqlite3.connect(path)
    counts = db.execute("SELECT reference, number, body, count(*) FROM messages GROUP BY 1, 2, 3").fetchall()
    assert sorted(counts) == [("ref1", "0031612345678", "Hé {x}", 1), ("ref1", "0031612345679", "Hé {x}", 1)]
    assert db.execute("SELECT http_status, n_accepted FROM requests").fetchall() == [(200, 2)]
    db.close()


def test_ledger_is_committed_before_the_answer():
    with serve_gateway(tokens=[TOKEN]) as gw, httpx.Client() as c:
        for i in range(5):
            post(c, gw, request(msg(f"003161234500{i}")))
            db = sqlite3.connect(gw.ledger)  # another connection sees it at once
            assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == i + 1
            db.close()


def test_ledger_survives_restart(tmp_path):
    path = tmp_path / "l.sqlite"
    for _ in range(2):
        with serve_gateway(tokens=[TOKEN], ledger=path) as gw, httpx.Client() as c:
            post(c, gw, request(msg("0031612345678")))
    with serve_gateway(tokens=[TOKEN], ledger=path) as gw:
        assert len(gw.ledger_frame()) == 2


def test_ledger_readable_after_stop():
    with serve_gateway(tokens=[TOKEN]) as gw, httpx.Client() as c:
        post(c, gw, request(msg("0031612345678")))
    assert len(gw.ledger_frame()) == 1


# --- the same logic in-process ------------------------------------------------------------

def test_fake_gateway_answers_like_the_server(gw, client):
    fake = FakeGateway(tokens=[TOKEN], seed=1)
    payloads = [b"nope", request(msg("0031612345678"), token=None), request(msg("1"), token=OTHER),
                request(), request(msg("00447911123456"), msg("0044791112345a"), msg("0044", body=""))]
    with fake.client() as fc:
        for p in payloads:
            content = p if isinstance(p, bytes) else orjson.dumps(p)
            a = client.post(gw.message_url, content=content)
            b = fc.post("/v1.0/message", content=content)
            assert (a.status_code, a.json()) == (b.status_code, b.json())
        assert fc.get("/v1.0/message").status_code == 405
    assert list(fake.ledger_frame()["number"]) == ["00447911123456"]
    fake.close()


async def _async_post(fake: FakeGateway) -> int:
    async with fake.async_client() as c:
        r = await c.post("/v1.0/message", json=request(msg("0031612345678")))
        return r.status_code


def test_fake_gateway_with_async_client():
    import asyncio

    with FakeGateway(tokens=[TOKEN]) as fake:
        assert asyncio.run(_async_post(fake)) == 200
        assert len(fake.ledger_frame()) == 1


def test_config_object_and_unknown_option():
    cfg = GatewayConfig(tokens=[TOKEN], max_msg=2)
    assert "tokens" not in repr(cfg) and TOKEN not in repr(cfg)
    with serve_gateway(cfg, max_msg=1) as gw, httpx.Client() as c:
        assert post(c, gw, request(msg("0031612345678"), msg("0031612345679"))).json()["errorCode"] == 203
    with pytest.raises(SpecError, match="unknown gateway option"):
        FakeGateway(no_such_option=1)
    with pytest.raises(SpecError):
        FakeGateway(report_format="yaml")


def test_gateway_and_reports_inside_a_jupyter_kernel(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    cell = (
        "import asyncio, httpx\n"
        "from cmframe.gateway import serve_gateway\n"
        "from cmframe.testing import WebhookRecorder\n"
        "asyncio.get_running_loop()  # the kernel's own loop is running\n"
        f"body = {request(msg('0031612345678', '0031612345679'))!r}\n"
        "with WebhookRecorder() as hook, serve_gateway(webhook=hook.url, time_scale=1000) as gw:\n"
        "    status = httpx.post(gw.message_url, json=body).status_code\n"
        "    done = gw.wait_reports(60)\n"
        "print('RESULT', status, done, len(gw.ledger_frame()), len(hook.requests))"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell)]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    assert "RESULT 200 True 2 4" in text, nb.cells[0].outputs


def test_an_internal_failure_is_answered_like_cms_500(monkeypatch, caplog):
    import cmframe.gateway.core as core

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(core, "check_request", boom)
    with serve_gateway(tokens=[TOKEN]) as gw, httpx.Client() as c:
        r = post(c, gw, request(msg("0031612345678")))
    assert r.status_code == 500
    assert r.json() == request_error("Unknown Error", 999)
    assert TOKEN not in caplog.text


def test_a_ledger_of_another_layout_is_refused(tmp_path):
    from cmframe.exceptions import GatewayError

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, number TEXT)")
    db.commit()
    db.close()
    with pytest.raises(GatewayError, match="another layout"), serve_gateway(ledger=path):
        pass
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(GatewayError, match="cannot use"), serve_gateway(ledger=junk):
        pass
