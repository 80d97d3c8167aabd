"""Plans become requests: layout, request bodies, merging, tokens and exact JSON."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

import cmframe  # noqa: F401  (registers df.cm)
from cmframe.build import layout, request_bodies, requests
from cmframe.exceptions import PlanError, SpecError
from cmframe.secret import ProductToken

TOKEN = "6c6e2b1c-0000-4000-8000-123456789abc"


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"00316{10000000 + start + i}" for i in range(n)]


@pytest.fixture
def plan() -> pd.DataFrame:
    n = 2500
    phones = numbers(n)
    phones[7] = "bad"  # two invalid rows are never sent
    phones[1234] = ""
    df = pd.DataFrame(
        {"phone": phones, "name": [f"N{i % 3}" for i in range(n)]}, index=pd.RangeIndex(100, 100 + n)
    )
    return df.cm.build(to="phone", sender="S", body="Hi {name}", reference="r{name}")


def test_layout_chunks_and_positions(plan):
    lay = plan.cm.layout(chunk_size=1000)
    assert list(lay.columns) == ["chunk", "msg_index", "to_index"]
    assert lay.index.equals(plan.index)
    assert all(lay[c].dtype == "Int64" for c in lay.columns)
    assert lay["chunk"].isna().tolist().count(True) == 2
    assert pd.isna(lay.loc[107, "chunk"])
    assert lay["chunk"].value_counts().sort_index().tolist() == [1000, 1000, 498]
    assert (lay["to_index"].dropna() == 0).all()
    first = lay[lay["chunk"] == 0]
    assert first["msg_index"].tolist() == list(range(1000))


def test_rows_map_each_msg_back_to_the_plan(plan):
    seen = []
    for chunk, body, rows in request_bodies(plan, chunk_size=700):
        doc = orjson.loads(body)
        assert "authentication" not in doc["messages"]  # token=None: the header carries it
        msgs = doc["messages"]["msg"]
        assert len(msgs) == len(rows) <= 700
        assert [m["to"][0]["number"] for m in msgs] == plan["number"].iloc[rows].tolist()
        assert [m["reference"] for m in msgs] == plan["reference"].iloc[rows].tolist()
        seen.append(chunk)
    assert seen == [0, 1, 2, 3]
    lay = layout(plan, chunk_size=700)
    last_rows = list(request_bodies(plan, chunk_size=700))[-1][2]
    assert (lay["chunk"].iloc[last_rows] == 3).all()
    assert lay["msg_index"].iloc[last_rows].tolist() == list(range(len(last_rows)))


def test_token_goes_in_the_body_only_when_given(plan):
    small = plan.head(3)
    doc = next(requests(small, token=TOKEN))
    assert doc["messages"]["authentication"] == {"productToken": TOKEN}
    assert list(doc["messages"]) == ["authentication", "msg"]
    doc2 = next(requests(small, token=ProductToken(TOKEN)))
    assert doc2 == doc
    assert TOKEN not in repr(small) and TOKEN not in small.to_csv()


def test_merge_identical_puts_same_content_in_one_msg(plan):
    docs = list(plan.cm.requests(chunk_size=1000, merge_identical=True))
    assert len(docs) == 3  # still at most 1000 recipients per request
    first = docs[0]["messages"]["msg"]
    # rows are grouped by content: every "Hi N0" row, then the first "Hi N1" ones
    n0 = int(((plan["body"] == "Hi N0") & plan["error_code"].isna()).sum())
    assert [len(m["to"]) for m in first] == [n0, 1000 - n0]
    assert [m["body"]["content"] for m in first] == ["Hi N0", "Hi N1"]
    lay = plan.cm.layout(merge_identical=True)
    bodies = list(request_bodies(plan, merge_identical=True))
    total = 0
    for _chunk, body, rows in bodies:
        doc = orjson.loads(body)
        flat = [(m["body"]["content"], t["number"]) for m in doc["messages"]["msg"] for t in m["to"]]
        assert flat == list(zip(plan["body"].iloc[rows], plan["number"].iloc[rows], strict=True))
        # layout agrees with the documents
        for pos in rows[:50]:
            row = lay.iloc[pos]
            msg = doc["messages"]["msg"][int(row["msg_index"])]
            assert msg["to"][int(row["to_index"])]["number"] == plan["number"].iloc[pos]
        total += len(rows)
    assert total == 2498
    contents = [m["body"]["content"] for d in docs for m in d["messages"]["msg"]]
    assert len(contents) == 5  # 3 distinct bodies, split where a chunk boundary falls


def test_absent_fields_are_absent_not_null():
    df = pd.DataFrame({"phone": numbers(3), "g": ["a", None, ""]})
    plan = df.cm.build(to="phone", sender="S", body="x", custom_grouping="{g}", body_type=None)
    (_, body, _), = request_bodies(plan)
    assert b"null" not in body
    msgs = orjson.loads(body)["messages"]["msg"]
    assert msgs[0] == {"from": "S", "body": {"content": "x"}, "customGrouping": "a", "to": [{"number": "0031610000000"}]}
    assert set(msgs[1]) == set(msgs[2]) == {"from", "body", "to"}


def test_special_characters_survive():
    texts = ['quote " and \\ backslash', "new\nline\ttab", "ctrl \x01 \x1f", "emoji 😀 and \u2028", "ünïcödé"]
    df = pd.DataFrame({"phone": numbers(len(texts)), "t": texts})
    plan = df.cm.build(to="phone", sender='Se"nder', body="{t}", reference="{t}")
    msgs = [m for d in plan.cm.requests() for m in d["messages"]["msg"]]
    valid = plan["error_code"].isna().to_numpy()
    assert [m["body"]["content"] for m in msgs] == list(np.asarray(texts)[valid])
    assert all(m["from"] == 'Se"nder' for m in msgs)


def test_plan_with_object_columns_serialises_the_same(plan):
    loose = plan.head(50).astype(object)
    assert [b for _, b, _ in request_bodies(loose)] == [b for _, b, _ in request_bodies(plan.head(50))]


def test_every_row_invalid_gives_no_request():
    df = pd.DataFrame({"phone": ["bad", ""]})
    plan = df.cm.build(to="phone", sender="S", body="x")
    assert list(request_bodies(plan)) == []
    assert plan.cm.layout()["chunk"].isna().all()


@pytest.mark.parametrize("size", [0, 1001, 2.5, True])
def test_chunk_size_bounds(plan, size):
    with pytest.raises(SpecError):
        list(request_bodies(plan, chunk_size=size))


def test_not_a_plan():
    with pytest.raises(PlanError, match="not a plan"):
        pd.DataFrame({"phone": ["x"]}).cm.layout()
    with pytest.raises(PlanError):
        list(request_bodies("nope"))


def test_fragments_work_on_both_string_widths():
    import pyarrow as pa

    from cmframe import fragments

    small = pa.array(['a"b', "c", None])
    large = small.cast(pa.large_string())
    for arr in (small, large):
        quoted = fragments.quote(arr)
        assert quoted.type == arr.type
        assert quoted.to_pylist() == ['"a\\"b"', '"c"', None]
    mixed = fragments.join("<", small, "|", large, ">")
    assert mixed.type == pa.large_string()
    assert mixed.to_pylist() == ['<a"b|a"b>', "<c|c>", None]
    starts, data = fragments.byte_view(large.slice(1))
    assert starts.tolist() == [0, 1, 1] and data.tobytes() == b"c"


def test_fragments_fixed_width_nulls_and_constant_check():
    import pyarrow as pa

    from cmframe import fragments

    arr = fragments.fixed_width(["gsm7", "ucs2"], np.array([0, 1, 1, 0]))
    assert arr.type == pa.large_string() and arr.to_pylist() == ["gsm7", "ucs2", "ucs2", "gsm7"]
    with pytest.raises(ValueError):
        fragments.fixed_width(["a", "bc"], np.array([0]))
    assert fragments.nulls(3).to_pylist() == [None, None, None]
    assert fragments.is_constant(pa.array(["x"] * 5))
    assert not fragments.is_constant(pa.array(["x", "y", "x", "x", "x"]))  # differs off the sampled rows
    assert not fragments.is_constant(pa.array(["x", "x", "x", "x", "y"]))
    assert not fragments.needs_escape(pa.array(["0031612345678", "plain text"])).any()
    assert fragments.needs_escape(pa.array(["ok", "tab\there", 'q"'])).tolist() == [False, True, True]
    # a backslash far beyond the first scanned block is still found
    long = pa.array(["x" * 1000] * 600 + ["a\\b"])
    assert fragments.needs_escape(long).nonzero()[0].tolist() == [600]
