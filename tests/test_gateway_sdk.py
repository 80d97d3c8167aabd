"""CM's official Python SDK (``cm_text_sdk_python``, built on ``requests``) against the embedded gateway."""

from __future__ import annotations

import cm_text  # the official SDK: a dev dependency, with requests
import pytest

from cmframe.gateway import serve_gateway

TOKEN = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def gw():
    with serve_gateway(tokens=[TOKEN]) as running:
        yield running


def test_sdk_sends_one_message(gw):
    client = cm_text.TextClient(apikey=TOKEN, gateway=gw.message_url)
    response = client.SendSingleMessage(message="Hello from the SDK", from_="CMFrame", to=["0031612345678"],
                                        reference="sdk-single")
    assert response.status_code == 200
    body = response.json()
    assert body["details"] == "Created 1 message(s)" and body["errorCode"] == 0
    assert body["messages"] == [{"to": "0031612345678", "status": "Accepted", "reference": "sdk-single",
                                 "parts": 1, "messageDetails": None, "messageErrorCode": 0}]
    row = gw.ledger_frame().iloc[0]
    assert (row["number"], row["body"], row["sender"], row["channels"]) == (
        "0031612345678", "Hello from the SDK", "CMFrame", "SMS")
    assert row["body_type"] == "auto"  # the SDK sends "AUTO": types are case-insensitive
    assert row["custom_grouping3"].startswith("text-sdk-python-")


def test_sdk_sends_a_batch(gw):
    client = cm_text.TextClient(apikey=TOKEN, gateway=gw.message_url)
    client.AddMessage(message="First", from_="CMFrame", to=["0031612345670", "0031612345671"], reference="b1")
    client.AddMessage(message="Ünïcödé second", from_="CMFrame", to=["0044791112345"], reference="b2",
                      allowedChannels=["Viber", "SMS"])
    client.AddMessage(message="x" * 200, from_="CMFrame", to=["0032470123456"], reference="b3")
    response = client.send()
    assert response.status_code == 200
    body = response.json()
    assert body["details"] == "Created 4 message(s)"
    assert [(m["to"], m["reference"], m["parts"]) for m in body["messages"]] == [
        ("0031612345670", "b1", 1), ("0031612345671", "b1", 1), ("0044791112345", "b2", 1), ("0032470123456", "b3", 2)]
    ledger = gw.ledger_frame()
    assert ledger.groupby(["reference", "number", "body"]).size().eq(1).all()
    assert len(ledger) == 4
    assert ledger.set_index("reference").loc["b2", "encoding"] == "ucs2"


def test_sdk_with_a_wrong_token_gets_the_spec_answer(gw):
    client = cm_text.TextClient(apikey="00000000-0000-0000-0000-000000000000", gateway=gw.message_url)
    response = client.SendSingleMessage(message="Hi", from_="CMFrame", to=["0031612345678"])
    assert response.status_code == 400
    assert response.json() == {"details": "No account found for the given authentication", "errorCode": 101,
                               "messages": []}
    assert gw.ledger_frame().empty
