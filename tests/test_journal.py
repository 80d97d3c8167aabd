"""The journal file, answer parsing and the mapping of answers back to plan rows.

These tests use hand-made plans and answers, so every mapping case is explicit.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import orjson
import pandas as pd
import pandas.testing as tm
import pytest

import cmframe
from cmframe.exceptions import JournalError, JournalMismatch
from cmframe.journal import Journal, assemble, parse_answer, read_journal
from cmframe.schema import RESULT_COLUMNS

NL = "00316{:08d}"


def make_plan(numbers, references=None, errors=None, index=None) -> pd.DataFrame:
    n = len(numbers)
    return pd.DataFrame(
        {
            "name": [f"person {i}" for i in range(n)],
            "number": pd.array(numbers, dtype="string"),
            "reference": pd.array(references or [pd.NA] * n, dtype="string"),
            "error_code": pd.array(errors or [pd.NA] * n, dtype="Int64"),
        },
        index=index,
    )


def entry(to, status="Accepted", reference=None, parts=1, code=0, details=None) -> dict:
    return {
        "to": to,
        "status": status,
        "reference": reference,
        "parts": parts if status == "Accepted" else 0,
        "messageDetails": details,
        "messageErrorCode": code,
    }


def answer(entries, code=0, details=None) -> bytes:
    details = details or f"Created {sum(e['status'] == 'Accepted' for e in entries)} message(s)"
    return orjson.dumps({"details": details, "errorCode": code, "messages": entries})


def run(plan, chunks, answers) -> pd.DataFrame:
    """Record chunks and answers ({chunk: (status, bytes) or state}) and assemble."""
    journal = Journal(None)
    journal.start("fp", plan, [(c, b"{}", np.asarray(r)) for c, r in chunks])
    for chunk, outcome in answers.items():
        journal.mark_in_flight(chunk, 1_800_000_000.0)
        if outcome == "in_flight":
            continue
        if outcome == "unknown":
            journal.mark_unknown(chunk, 1_800_000_001.0, "ReadTimeout")
            continue
        status, body = outcome
        journal.mark_answered(chunk, 1_800_000_001.0, status, body)
    result = assemble(plan, journal.records())
    journal.close()
    return result


# -- parse_answer -------------------------------------------------------------------


def test_parse_partial_success():
    ans = parse_answer(200, answer([entry(NL.format(1)), entry("x", "Rejected", code=303)], 201))
    assert ans.kind == "messages" and ans.error_code == 201 and len(ans.entries) == 2


def test_parse_all_rejected_is_still_per_message():
    ans = parse_answer(400, answer([entry(NL.format(1), "Rejected", code=304)], 201))
    assert ans.kind == "messages"


@pytest.mark.parametrize("code", [101, 102, 103, 202, 203])
def test_parse_request_level_rejection(code):
    body = orjson.dumps({"details": "Invalid product token.", "errorCode": code, "messages": []})
    ans = parse_answer(400, body)
    assert (ans.kind, ans.error_code, ans.details) == ("request_rejected", code, "Invalid product token.")


@pytest.mark.parametrize("status", [301, 404, 405, 413])
def test_parse_refusals_without_json(status):
    ans = parse_answer(status, b"<html>Not Found</html>")
    assert ans.kind == "request_rejected" and ans.error_code is None
    assert ans.details.startswith(f"HTTP {status}: <html>")


def test_parse_tolerates_case_and_missing_error_codes():
    body = orjson.dumps({"Details": "Created 1 message(s)", "Messages": [{"to": "1", "status": "Accepted"}]})
    ans = parse_answer(200, body)
    assert ans.kind == "messages" and ans.error_code is None and ans.details.startswith("Created")


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b'{"details": "Unknown Error", "errorCode": 999, "messages": []}', "HTTP 500"),
        (502, b"<html>bad gateway</html>", "HTTP 502"),
        (200, b"<html>not json</html>", "unparsable"),
        (200, b'["a list"]', "unexpected"),
        (200, b'{"details": "Created 0 message(s)", "errorCode": 0, "messages": []}', "no message"),
        (200, b'{"messages": ["not an object"]}', "malformed"),
    ],
)
def test_parse_unknown_outcomes(status, body, reason):
    ans = parse_answer(status, body)
    assert ans.kind == "unknown" and reason in ans.reason


# -- mapping answers to rows ------------------------------------------------------------


def test_entries_in_another_order_map_by_number():
    plan = make_plan([NL.format(i) for i in range(4)], index=list("abcd"))
    entries = [entry(NL.format(i), parts=i + 1) for i in (3, 1, 0, 2)]
    result = run(plan, [(0, [0, 1, 2, 3])], {0: (200, answer(entries))})
    assert result["parts"].tolist() == [1, 2, 3, 4]
    assert (result["status"] == "accepted").all()
    assert result.index.tolist() == list("abcd")
    assert list(result.columns[-len(RESULT_COLUMNS):]) == list(RESULT_COLUMNS)


def test_numbers_match_in_any_international_spelling():
    plan = make_plan([NL.format(1), NL.format(2)])
    entries = [entry("+316" + "00000002", parts=2), entry("316" + "00000001", parts=1)]
    result = run(plan, [(0, [0, 1])], {0: (200, answer(entries))})
    assert result["parts"].tolist() == [1, 2]


def test_repeated_numbers_map_by_reference_then_order():
    number = NL.format(7)
    plan = make_plan([number] * 4, references=["a", "b", "a", "b"])
    # rows in (msg, to) order: 0 (a), 1 (b), 2 (a), 3 (b); the answer lists b first
    entries = [
        entry(number, "Rejected", "b", code=402, details="blacklisted"),
        entry(number, "Accepted", "a", parts=1),
        entry(number, "Accepted", "b", parts=3),
        entry(number, "Accepted", "a", parts=2),
    ]
    result = run(plan, [(0, [0, 1, 2, 3])], {0: (200, answer(entries, 201))})
    assert result["status"].tolist() == ["accepted", "rejected", "accepted", "accepted"]
    assert result["parts"].tolist() == [1, 0, 2, 3]
    assert result["message_error_code"].tolist() == [0, 402, 0, 0]
    assert result.loc[1, "message_details"] == "blacklisted"


def test_an_answer_without_references_maps_on_numbers():
    plan = make_plan([NL.format(1), NL.format(2)], references=["a", "b"])
    entries = [entry(NL.format(2), parts=2), entry(NL.format(1), parts=1)]  # reference: null
    result = run(plan, [(0, [0, 1])], {0: (200, answer(entries))})
    assert result["status"].tolist() == ["accepted", "accepted"]
    assert result["parts"].tolist() == [1, 2]


def test_rows_map_in_chunk_row_order_not_plan_order():
    plan = make_plan([NL.format(5)] * 2)
    # the chunk sends row 1 first: the first entry is row 1's
    entries = [entry(NL.format(5), parts=9), entry(NL.format(5), parts=4)]
    result = run(plan, [(0, [1, 0])], {0: (200, answer(entries))})
    assert result["parts"].tolist() == [4, 9]


def test_missing_entry_makes_the_group_unknown_never_a_wrong_match():
    plan = make_plan([NL.format(1), NL.format(1), NL.format(2)])
    entries = [entry(NL.format(1)), entry(NL.format(2), parts=2)]  # one of the two NL1 is missing
    result = run(plan, [(0, [0, 1, 2])], {0: (200, answer(entries))})
    assert result["status"].tolist() == ["unknown", "unknown", "accepted"]
    assert "1 entries for this number and reference, 2 were sent" in result.loc[0, "message_details"]
    assert result["parts"].isna().tolist() == [True, True, False]


def test_extra_and_foreign_entries_do_not_match():
    plan = make_plan([NL.format(1), NL.format(2)])
    entries = [entry(NL.format(1)), entry(NL.format(1)), entry(NL.format(9))]
    result = run(plan, [(0, [0, 1])], {0: (200, answer(entries))})
    assert result["status"].tolist() == ["unknown", "unknown"]


def test_unrecognised_status_is_unknown_with_reason():
    plan = make_plan([NL.format(1)])
    result = run(plan, [(0, [0])], {0: (200, answer([entry(NL.format(1), "Queued")]))})
    assert result.loc[0, "status"] == "unknown"
    assert "Queued" in result.loc[0, "message_details"]


def test_request_level_rejection_marks_every_row():
    plan = make_plan([NL.format(1), NL.format(2)])
    body = orjson.dumps({"details": "Insufficient balance.", "errorCode": 102, "messages": []})
    result = run(plan, [(0, [0, 1])], {0: (400, body)})
    assert result["status"].tolist() == ["rejected"] * 2
    assert result["request_error_code"].tolist() == [102, 102]
    assert result["http_status"].tolist() == [400, 400]
    assert result["request_details"].tolist() == ["Insufficient balance."] * 2
    assert result["message_error_code"].isna().all()


def test_states_give_outcomes_and_invalid_rows_stay_invalid():
    plan = make_plan(
        [NL.format(i) for i in range(5)] + [None], errors=[None] * 5 + [302]
    )
    chunks = [(0, [0]), (1, [1]), (2, [2]), (3, [3, 4])]
    answers = {0: (200, answer([entry(NL.format(0))])), 1: "in_flight", 2: "unknown"}
    result = run(plan, chunks, answers)
    assert result["status"].tolist() == [
        "accepted",
        "unknown",
        "unknown",
        "not_sent",
        "not_sent",
        "invalid",
    ]
    assert result["chunk"].tolist()[:5] == [0, 1, 2, 3, 3] and pd.isna(result["chunk"].iloc[5])
    assert "in flight" in result.loc[1, "request_details"]
    assert "ReadTimeout" in result.loc[2, "request_details"]
    assert result["sent_at"].notna().tolist() == [True, True, True, False, False, False]
    assert str(result["sent_at"].dtype) == "datetime64[ns, UTC]"
    assert result["error_code"].tolist()[5] == 302  # local validation kept as it was


def test_result_dtypes():
    plan = make_plan([NL.format(1)])
    result = run(plan, [(0, [0])], {0: (200, answer([entry(NL.format(1))]))})
    dtypes = result.dtypes.astype(str).to_dict()
    for name in ("parts", "message_error_code", "http_status", "request_error_code", "chunk"):
        assert dtypes[name] == "Int64"
    for name in ("status", "message_details", "request_details"):
        assert dtypes[name] == "string"


def test_later_chunk_decides_a_resent_row():
    plan = make_plan([NL.format(1), NL.format(2)])
    chunks = [(0, [0, 1]), (1, [1])]  # chunk 1 resends row 1
    answers = {0: "unknown", 1: (200, answer([entry(NL.format(2), parts=2)]))}
    result = run(plan, chunks, answers)
    assert result["status"].tolist() == ["unknown", "accepted"]
    assert result["chunk"].tolist() == [0, 1]


def test_plan_is_not_modified():
    plan = make_plan([NL.format(1)])
    before = plan.copy()
    run(plan, [(0, [0])], {0: (200, answer([entry(NL.format(1))]))})
    tm.assert_frame_equal(plan, before)


# -- the file ---------------------------------------------------------------------------


def test_read_journal_in_a_new_process(tmp_path):
    path = tmp_path / "c.cmjournal"
    plan = make_plan([NL.format(1), NL.format(2), None], errors=[None, None, 303], index=[10, 20, 30])
    plan["segment"] = pd.array(["a", "b", "c"], dtype="string")
    with Journal(path) as journal:
        journal.start("fp", plan, [(0, b'{"messages": {}}', np.array([1, 0]))], {"rows": 3})
        journal.mark_in_flight(0, 1_800_000_000.0)
        entries = [entry(NL.format(2)), entry(NL.format(1), "Rejected", code=402)]
        journal.mark_answered(0, 1_800_000_001.0, 200, answer(entries, 201))
        expected = assemble(plan, journal.records())
    code = (
        "import sys, cmframe; r = cmframe.read_journal(sys.argv[1]);"
        "r.to_pickle(sys.argv[2])"
    )
    out = tmp_path / "r.pkl"
    subprocess.run([sys.executable, "-c", code, str(path), str(out)], check=True, timeout=120)
    tm.assert_frame_equal(pd.read_pickle(out), expected)
    assert expected["status"].tolist() == ["rejected", "accepted", "invalid"]
    assert cmframe.read_journal is read_journal


def test_start_twice_with_the_same_plan_keeps_the_states(tmp_path):
    path = tmp_path / "c.cmjournal"
    plan = make_plan([NL.format(1)])
    with Journal(path) as journal:
        journal.start("fp", plan, [(0, b"{}", np.array([0]))])
        journal.mark_in_flight(0, 1.0)
    with Journal(path) as journal:
        journal.start("fp", plan, [(0, b"{}", np.array([0]))])
        assert [r["state"] for r in journal.records()] == ["in_flight"]


def test_another_plan_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "c.cmjournal"
    plan = make_plan([NL.format(1)])
    with Journal(path) as journal:
        journal.start("fp1", plan, [(0, b"{}", np.array([0]))], {"rows": 1, "chunk_size": 1000})
    with Journal(path) as journal, pytest.raises(JournalMismatch, match="chunk_size was 1000 and is now 10"):
        journal.start("fp2", plan, [(0, b"{}", np.array([0]))], {"rows": 1, "chunk_size": 10})


def test_grouped_changes_commit_together_or_not_at_all(tmp_path):
    plan = make_plan([NL.format(i) for i in range(2)])
    with Journal(tmp_path / "c.cmjournal") as journal:
        journal.start("fp", plan, [(0, b"{}", np.array([0])), (1, b"{}", np.array([1]))])
        with pytest.raises(RuntimeError), journal.transaction():
            journal.mark_in_flight(0, 1.0)
            journal.mark_in_flight(1, 1.0)
            raise RuntimeError("disk full")
        assert [r["state"] for r in journal.records()] == ["pending", "pending"]
        with journal.transaction():
            journal.mark_in_flight(0, 1.0)
            journal.mark_in_flight(1, 1.0)
        assert [r["state"] for r in journal.records()] == ["in_flight", "in_flight"]


def test_not_a_journal(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, this is not SQLite at all" * 20)
    with pytest.raises(JournalError):
        read_journal(bogus)
    with pytest.raises(JournalError, match="no journal"):
        read_journal(tmp_path / "missing.cmjournal")
    import sqlite3

    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(JournalError, match="not a cmframe journal"):
        read_journal(other)


def test_bodies_and_records_round_trip(tmp_path):
    path = tmp_path / "c.cmjournal"
    plan = make_plan([NL.format(i) for i in range(3)])
    chunks = [(0, b'{"a": 1}', np.array([0, 2])), (1, b'{"b": 2}', np.array([1]))]
    with Journal(path) as journal:
        journal.start("fp", plan, chunks)
        assert journal.body(1) == b'{"b": 2}'
        got = journal.bodies()
        assert [(c, b) for c, b, _ in got] == [(0, b'{"a": 1}'), (1, b'{"b": 2}')]
        assert got[0][2].tolist() == [0, 2]
        tm.assert_frame_equal(journal.plan(), plan)
