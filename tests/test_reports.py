"""read_status_reports and fetch_transactions: every input shape, tolerant parsing, rejects."""

from __future__ import annotations

import json
import sqlite3
import warnings

import httpx
import pandas as pd
import pytest

import cmframe
from cmframe.exceptions import ReportError
from cmframe.report_formats import normalise_item, parse_timestamp
from cmframe.reports import (
    ReadResult,
    RejectedReportsWarning,
    fetch_transactions,
    read_status_reports,
)
from cmframe.schema import REPORT_COLUMNS, REPORT_STATUSES

TS = pd.Timestamp("2026-11-29 08:00:00", tz="UTC")

JSON_ONE = {
    "messages": {
        "msg": {
            "received": "2026-11-29T08:00:00",
            "to": "0031612345678",
            "reference": "spring",
            "status": {"code": "2", "errorCode": "0", "errorDescription": "No error"},
            "operator": "KPN",
        }
    }
}
XML_ONE = (
    '<?xml version="1.0"?><MESSAGES><MSG RECEIVED="2026-11-29T08:00:00">'
    "<TO>0031612345679</TO><REFERENCE>spring</REFERENCE><STATUS><CODE>3</CODE>"
    "<ERRORCODE>5</ERRORCODE><ERRORDESCRIPTION>Subscriber absent</ERRORDESCRIPTION></STATUS>"
    "<OPERATOR>Vodafone</OPERATOR></MSG></MESSAGES>"
)


def read(source, **kw):
    return read_status_reports(source, return_rejects=True, **kw)


def test_json_body_object_and_list_give_the_fixed_columns_and_dtypes():
    many = {"messages": {"msg": [JSON_ONE["messages"]["msg"], {**JSON_ONE["messages"]["msg"], "to": "+31 6 1234 5670"}]}}
    reports, rejects = read([json.dumps(JSON_ONE).encode(), json.dumps(many)])
    assert tuple(reports.columns) == REPORT_COLUMNS
    assert len(reports) == 3 and len(rejects) == 0
    assert list(reports["to"]) == ["0031612345678", "0031612345678", "0031612345670"]
    assert reports["status"].dtype == pd.CategoricalDtype(REPORT_STATUSES)
    assert list(reports["status"]) == ["delivered"] * 3
    assert reports["status_code"].dtype == "Int64" and reports["error_code"].dtype == "Int64"
    assert str(reports["received_at"].dt.tz) == "UTC"
    assert (reports["received_at"] == TS).all()
    assert list(reports["source"]) == ["json"] * 3
    assert reports.loc[0, "operator"] == "KPN" and reports.loc[0, "error_description"] == "No error"


def test_xml_body_and_upper_and_lower_case_query_strings():
    upper = "TO=0031612345671&REFERENCE=spring&STATUS=1&ERRORCODE=204&RECEIVED=2026-11-29T09%3A00%3A00%2B01%3A00"
    lower = "?to=31612345672&reference=spring&status=0&operator=Odido&received=2026-11-29+08:00:00"
    reports, rejects = read([XML_ONE, upper, lower])
    assert len(rejects) == 0
    by_to = reports.set_index("to")
    assert by_to.loc["0031612345679", "status"] == "failed"
    assert by_to.loc["0031612345679", "error_code"] == 5
    assert by_to.loc["0031612345679", "error_description"] == "Subscriber absent"
    assert by_to.loc["0031612345671", "status"] == "rejected"
    assert by_to.loc["0031612345671", "received_at"] == TS  # +01:00 converted to UTC
    assert by_to.loc["0031612345672", "status"] == "accepted"
    assert by_to.loc["0031612345672", "operator"] == "Odido"
    assert list(reports["source"]) == ["xml", "query", "query"]


def test_status_names_and_unknown_codes():
    reports, rejects = read(["to=0031600000001&status=Delivered", "to=0031600000002&status=7"])
    assert list(reports["status_code"]) == [2, 7]
    assert reports["status"].iloc[0] == "delivered" and pd.isna(reports["status"].iloc[1])
    assert len(rejects) == 0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-29T08:00:00", TS),
        ("2026-11-29T08:00:00Z", TS),
        ("2026-11-29 09:00:00+01:00", TS),
        ("2026-11-29T08:00:00.000+0000", TS),
        ("29-11-2026 08:00:00", TS),
        ("29/11/2026 08:00", TS),
        ("2026-11-29 08:00:00 GMT", TS),
        (str(int(TS.timestamp())), TS),
        (str(int(TS.timestamp()) * 1000), TS),
    ],
)
def test_tolerant_timestamps_are_utc(text, expected):
    assert pd.Timestamp(parse_timestamp(text)) == expected
    reports, rejects = read([f"to=0031600000001&status=2&received={text.replace('+', '%2B')}"])
    assert len(rejects) == 0 and reports["received_at"].iloc[0] == expected
    # the vectorised path (frames, CSV) agrees with the per-item one
    frame = pd.DataFrame({"to": ["0031600000001"], "status": ["2"], "received": [text]})
    assert read(frame).reports["received_at"].iloc[0] == expected


def test_malformed_items_are_rejects_with_reasons_never_fatal():
    bodies = [
        b'{"messages": {"msg": [{"to": "0031600000001", "status": {"code": 2}}, {"to": "abc", "status": 2}, 7]}}',
        b'{"messages": ',
        b"<MESSAGES><MSG><TO>0031600000003</TO></MSG></MESSAGES>",
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><MSG><TO>&e;</TO></MSG>',
        b"to=0031600000004&status=2&received=yesterday-ish",
        b"\xff\xfe\x00",
        b"hello",
        b"{}",
    ]
    reports, rejects = read(bodies)
    assert list(reports["to"]) == ["0031600000001"]
    assert tuple(rejects.columns) == ("source", "location", "reason", "raw")
    reasons = list(rejects["reason"])
    assert len(reasons) == 9  # two in the first body, one per other body
    assert "'to' is not a phone number" in reasons
    assert "msg is not an object" in reasons
    assert any(r.startswith("malformed JSON") for r in reasons)
    assert "missing status" in reasons
    assert any(r.startswith("unsafe XML refused") for r in reasons)
    assert any("unreadable timestamp" in r for r in reasons)
    assert "body is not UTF-8" in reasons
    assert "not JSON, XML or a query string" in reasons
    assert "no msg in body" in reasons or "missing 'to'" in reasons
    assert "/etc/passwd" in " ".join(rejects["raw"])  # the offending text is kept (cut), not resolved


def test_rejects_are_counted_and_announced_without_return_rejects():
    with pytest.warns(RejectedReportsWarning, match="2 status report"):
        reports = read_status_reports(["to=0031600000001&status=2", "to=x&status=2", b"nonsense"])
    assert len(reports) == 1 and reports.attrs["cm_rejects"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = read_status_reports("to=0031600000001&status=2")
    assert clean.attrs["cm_rejects"] == 0
    result = read_status_reports("to=0031600000001&status=2", return_rejects=True)
    assert isinstance(result, ReadResult) and len(result.rejects) == 0


def test_files_folders_and_one_body_per_line(tmp_path):
    folder = tmp_path / "reports"
    (folder / "sub").mkdir(parents=True)
    (folder / "pretty.json").write_text(json.dumps(JSON_ONE, indent=2))
    (folder / "lines.jsonl").write_text(
        json.dumps(JSON_ONE) + "\n\n" + "{broken\n" + json.dumps({"msg": {"to": "0031600000009", "status": {"code": 0}}}) + "\n"
    )
    (folder / "sub" / "bodies.txt").write_text(XML_ONE + "\nTO=0031600000008&STATUS=2\n")
    (folder / "pretty.xml").write_text(XML_ONE.replace("><", ">\n  <"))
    (folder / ".hidden").write_text("garbage")
    reports, rejects = read(folder)
    assert len(reports) == 6
    assert sorted(reports["source"].value_counts().items()) == [("json", 3), ("query", 1), ("xml", 2)]
    assert len(rejects) == 1
    assert rejects["location"].iloc[0].endswith("lines.jsonl:3")
    # a single file works the same, str or Path
    assert len(read(str(folder / "pretty.json")).reports) == 1


def test_dashboard_csv_with_header_aliases(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "Created;Status time;RECIPIENT;Reference;Status;Status code;Error code;Error description;Operator;Price\n"
        "2026-11-29T07:59:00Z;2026-11-29T08:00:00Z;+31612345678;spring;Delivered;2;0;No error;KPN;0.07\n"
        "2026-11-29T07:59:00Z;29-11-2026 08:00:00;0031612345679;spring;Failed;3;5;Subscriber absent;;0.07\n"
        "2026-11-29T07:59:00Z;;0031612345670;spring;Accepted;0;;;;0.07\n"
        "2026-11-29T07:59:00Z;2026-11-29T08:00:00Z;not a number;spring;Failed;3;5;;;0.07\n"
        "too;few\n"
        "2026-11-29T07:59:00Z;;0031612345670;spring;Accepted;0;;;;0.07;surplus\n",
        encoding="utf-8",
    )
    reports, rejects = read(path)
    assert list(reports["to"]) == ["0031612345678", "0031612345679", "0031612345670"]
    assert list(reports["status"]) == ["delivered", "failed", "accepted"]
    assert reports["error_code"].fillna(-1).tolist() == [0, 5, -1]
    assert reports["received_at"].iloc[0] == TS and reports["received_at"].iloc[1] == TS
    assert pd.isna(reports["received_at"].iloc[2])  # empty status time: NaT, not a reject
    assert set(reports["source"]) == {"csv"}
    assert sorted(rejects["location"]) == ["export.csv line 5", "export.csv line 6", "export.csv line 7"]
    assert sorted(rejects["reason"]) == ["'to' is not a phone number", "missing 'to'", "wrong number of fields"]
    # comma-separated, other aliases, no .csv suffix (sniffed)
    other = tmp_path / "export.txt"
    other.write_text("Date,GSM,Status\n2026-11-29 08:00:00,31612345678,delivered\n")
    assert list(read(other).reports["to"]) == ["0031612345678"]


def test_csv_without_recipient_column_is_a_report_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ReportError, match="no column"):
        read_status_reports(path)


def test_frames_dicts_and_missing_paths():
    frame = pd.DataFrame({"Recipient": ["+31612345678", None], "STATUS": ["failed", "2"], "Error Code": ["5", "x"]})
    reports, rejects = read(frame)
    assert list(reports["status"]) == ["failed"] and reports["error_code"].iloc[0] == 5
    assert list(rejects["reason"]) == ["missing 'to'"]
    assert len(read(JSON_ONE).reports) == 1
    with pytest.raises(ReportError, match="no such file"):
        read_status_reports("does/not/exist.sqlite")
    with pytest.raises(ReportError):
        read_status_reports(12345)
    # a frame read back in round-trips unchanged
    again = read(read(JSON_ONE).reports).reports
    pd.testing.assert_frame_equal(again, read(JSON_ONE).reports)


def test_not_a_store_sqlite_file_is_a_report_error(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ReportError, match="not a cmframe receiver store"):
        read_status_reports(path)


def test_normalise_item_rules():
    ok = normalise_item({"to": "(+31) 6-1234.5678", "status": " 2 ", "error_code": "abc"}, "x")
    assert ok[0] == "0031612345678" and ok[2] == 2 and ok[4] is None and ok[7] is None
    assert normalise_item({"to": "0031612345678"}, "x") == "missing status"
    assert normalise_item({"to": "0031612345678", "status": "read-ish"}, "x").startswith("status is not")
    assert normalise_item({"status": 2}, "x") == "missing 'to'"
    assert "out of range" in normalise_item({"to": "0031612345678", "status": 2, "received": "1800-01-01"}, "x")


# --------------------------------------------------------------------------- transactions
def _page(page, total, records):
    return {
        "status": "OK",
        "message": "",
        "summary": {},
        "pagination": {"currentPage": page, "totalPages": total, "pageSize": 2},
        "result": records,
    }


def _record(number, status, description, when="2026-11-29T08:00:00", **extra):
    return {"recipient": number, "status": status, "statusdescription": description,
            "statusdate": when, "reference": "spring", "operatorname": "KPN", **extra}  # fmt: skip


def test_fetch_transactions_pages_maps_codes_and_retries():
    pages = {
        1: _page(1, 3, [_record("0031600000001", 20, "Delivered"), _record("0031600000002", 30, "Failed: Unknown subscriber", errorcode=1)]),
        2: _page(2, 3, [_record("0031600000003", 11, "Accepted by operator"), _record("0031600000004", 77, "Something new")]),
        3: _page(3, 3, [_record("bad", 20, "Delivered")]),
    }
    calls = []
    failures = {"left": 2}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        assert request.headers["X-CM-PRODUCTTOKEN"] == "00000000-0000-0000-0000-000000000001"
        if failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503, headers={"Retry-After": "0"})
        page = int(request.url.params["page"])
        return httpx.Response(200, json=pages[page])

    from cmframe.retry import RetryPolicy, stop_after_attempt, wait_fixed

    slept = []
    policy = RetryPolicy(stop=stop_after_attempt(5), wait=wait_fixed(0.0), sleep=slept.append)
    client = httpx.Client(transport=httpx.MockTransport(handler))
    reports, rejects = fetch_transactions(
        "00000000-0000-0000-0000-000000000001", start=pd.Timestamp("2026-11-29 07:00", tz="UTC"),
        end="2026-11-29T10:00:00", reference="spring", page_size=2, url="http://127.0.0.1:9/v1.2/transactions/",
        client=client, retry=policy, return_rejects=True,
    )
    assert len(calls) == 5 and len(slept) == 2
    first = calls[0].url.params
    assert first["startdate"] == "2026-11-29T07:00:00" and first["enddate"] == "2026-11-29T10:00:00"
    assert first["reference"] == "spring" and first["direction"] == "out" and first["pagesize"] == "2"
    assert list(reports["to"]) == ["0031600000001", "0031600000002", "0031600000003", "0031600000004"]
    assert list(reports["status"].astype("object").fillna("?")) == ["delivered", "failed", "accepted", "?"]
    assert list(reports["status_code"]) == [2, 3, 0, 77]  # known codes mapped, unknown kept raw
    assert reports["error_code"].iloc[1] == 1
    assert set(reports["source"]) == {"transactions"}
    assert list(rejects["reason"]) == ["'to' is not a phone number"]


def test_fetch_transactions_errors_never_show_the_token():
    token = "11111111-2222-3333-4444-555555555555"
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(401, json={"result": []})))
    with pytest.raises(ReportError) as info:
        fetch_transactions(token, client=client, url="http://127.0.0.1:9/t/")
    assert token not in str(info.value) and "401" in str(info.value)
    from cmframe.retry import RetryPolicy, stop_after_attempt, wait_fixed

    down = httpx.Client(transport=httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused"))))
    policy = RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(0.0), sleep=lambda s: None)
    with pytest.raises(ReportError, match="after 3 attempt"):
        fetch_transactions(token, client=down, url="http://127.0.0.1:9/t/", retry=policy)
    with pytest.raises(cmframe.TokenError):
        fetch_transactions(None, client=client, url="http://127.0.0.1:9/t/")


def test_fetch_transactions_inside_a_running_event_loop_with_the_async_retry_policy():
    import asyncio

    from cmframe.retry import RetryPolicy, stop_after_attempt, wait_fixed

    answers = iter([httpx.Response(503), httpx.Response(200, json=_page(1, 1, [_record("0031600000001", 20, "Delivered")]))])
    client = httpx.Client(transport=httpx.MockTransport(lambda r: next(answers)))
    policy = RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(0.01))  # default asyncio sleep

    async def in_notebook():
        return fetch_transactions("t", client=client, url="http://127.0.0.1:9/t/", retry=policy)

    reports = asyncio.run(in_notebook())
    assert list(reports["status"]) == ["delivered"]
