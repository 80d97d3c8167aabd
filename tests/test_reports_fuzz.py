"""Fuzzed inputs never crash a reader; the per-item and column-wise rules agree."""

from __future__ import annotations

import string

import orjson
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmframe.exceptions import ReportError
from cmframe.report_formats import normalise_columns, normalise_item, parse_body, parse_document
from cmframe.reports import read_status_reports
from cmframe.schema import REPORT_COLUMNS

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = ["to", "TO", "reference", "REFERENCE", "status", "STATUS", "code", "errorCode", "ERRORCODE",
        "received", "RECEIVED", "operator", "msg", "messages", "MSG", "result"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["0031612345678", "+31 6 12345678", "2", "delivered", "2026-11-29T08:00:00Z"]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=5),
    max_leaves=25,
)  # fmt: skip
xml_bits = st.lists(
    st.sampled_from(["<MESSAGES>", "</MESSAGES>", "<MSG>", "</MSG>", '<MSG RECEIVED="2026-11-29">', "<TO>",
                     "</TO>", "0031612345678", "<STATUS>", "</STATUS>", "<CODE>", "</CODE>", "2", "&amp;",
                     "<!DOCTYPE x [<!ENTITY a 'b'>]>", "&a;", "<![CDATA[x]]>", "<?xml version='1.0'?>"]),
    max_size=14,
).map("".join)  # fmt: skip
query_strings = st.dictionaries(st.sampled_from(KEYS) | st.text(string.ascii_letters, max_size=6), st.text(max_size=12),
                                max_size=6).map(lambda d: "&".join(f"{k}={v}" for k, v in d.items()))  # fmt: skip
bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    json_values.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS, default=str) if _dumpable(v) else b"{}"),
    xml_bits,
    query_strings,
)


def _dumpable(value) -> bool:
    try:
        orjson.dumps(value, default=str)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


@FAST
@given(body=bodies)
def test_parse_body_never_raises_and_accounts_for_everything(body):
    parsed = parse_body(body)
    assert parsed.rows or parsed.rejects  # something is always said about a body
    frame = parsed.frame()
    assert tuple(frame.columns) == REPORT_COLUMNS
    assert frame["to"].str.fullmatch(r"0[0-9]{2,19}").all()


@FAST
@given(doc=json_values)
def test_parse_document_never_raises(doc):
    parsed = parse_document(doc)
    empty_page = isinstance(doc, dict) and any(str(k).lower() == "result" and v == [] for k, v in doc.items())
    assert parsed.rows or parsed.rejects or empty_page


@FAST
@given(items=st.lists(bodies, max_size=5))
def test_read_status_reports_never_raises_on_bodies(items):
    items = [b if isinstance(b, bytes) else b.encode("utf-8", "surrogatepass") for b in items]
    reports, rejects = read_status_reports(items, return_rejects=True)
    assert reports.attrs["cm_rejects"] == len(rejects)
    assert tuple(rejects.columns) == ("source", "location", "reason", "raw")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=string.printable + "é€", max_size=300))
def test_csv_files_either_read_or_raise_report_error(tmp_path, text):
    path = tmp_path / "fuzz.csv"
    path.write_text("Recipient,Status,Time\n" + text, encoding="utf-8")
    try:
        reports, rejects = read_status_reports(path, return_rejects=True)
    except ReportError:
        return
    assert tuple(reports.columns) == REPORT_COLUMNS


to_values = st.one_of(
    st.none(), st.text(max_size=8),
    st.from_regex(r"\A(\+|00)?[ 0-9\-()]{0,22}\Z", fullmatch=True),
    st.sampled_from(["0031612345678", "+31612345678", "31612345678", "0612345678", "+", "00", "٣١٦"]),
)  # fmt: skip
status_values = st.one_of(st.none(), st.integers(-5, 30).map(str), st.text(max_size=6),
                          st.sampled_from(["Delivered", "FAILED", " 2 ", "+3", "99999999999", "2.0"]))  # fmt: skip
time_values = st.one_of(
    st.none(), st.text(max_size=12),
    st.datetimes(min_value=pd.Timestamp("1971-01-01").to_pydatetime(), max_value=pd.Timestamp("2199-01-01").to_pydatetime())
    .flatmap(lambda d: st.sampled_from([d.isoformat(), d.isoformat() + "Z", d.strftime("%Y-%m-%d %H:%M:%S"),
                                         d.strftime("%d-%m-%Y %H:%M:%S"), d.isoformat() + "+02:00",
                                         str(int(d.timestamp()))])),
    st.sampled_from(["2026-11-29T08:00:00", "2026-13-45T99:00:00", "1800-01-01T00:00:00", "0", "1e9"]),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(to_values, status_values, time_values, st.one_of(st.none(), st.text(max_size=4))),
                     min_size=1, max_size=8))  # fmt: skip
def test_item_and_column_rules_agree(rows):
    scalar = [normalise_item({"to": t, "status": s, "received": r, "error_code": e}, "x") for t, s, r, e in rows]
    columns = {name: pd.Series([row[i] for row in rows], dtype=object)
               for i, name in enumerate(("to", "status", "received", "error_code"))}  # fmt: skip
    reports, rejects = normalise_columns(columns, "x")
    good = [s for s in scalar if not isinstance(s, str)]
    assert len(reports) == len(good)
    assert list(rejects["reason"]) == [s for s in scalar if isinstance(s, str)]
    for row, (_, got) in zip(good, reports.iterrows(), strict=True):
        assert got["to"] == row[0]
        assert got["status_code"] == row[2]
        assert (pd.isna(got["error_code"]) and row[4] is None) or got["error_code"] == row[4]
        if row[7] is None:
            assert pd.isna(got["received_at"])
        else:
            assert got["received_at"] == pd.Timestamp(row[7])
