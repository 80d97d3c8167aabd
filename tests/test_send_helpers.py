"""Shared helpers of the send tests (plans, ledger checks); not a test module."""

from __future__ import annotations

import pandas as pd

from cmframe.build import build

TOKEN = "5f0c2a9e-7d41-4b3a-9e6f-c0ffee123456"


def recipients(n: int, start: int = 0) -> pd.DataFrame:
    """``n`` recipients with distinct, valid Dutch mobile numbers."""
    ids = range(start, start + n)
    return pd.DataFrame(
        {
            "phone": [f"+31 6 {20000000 + i}" for i in ids],
            "name": [f"Person{i}" for i in ids],
        },
        index=pd.Index([f"r{i}" for i in ids], name="rid"),
    )


def make_plan(n: int, start: int = 0, **spec) -> pd.DataFrame:
    """A plan of ``n`` valid rows, each with its own number."""
    spec = {"to": "phone", "sender": "CMFrame", "body": "Hi {name}", "reference": "spring", **spec}
    return build(recipients(n, start), **spec)


def digits(values) -> set[str]:
    """Numbers as digit strings without the international prefix."""
    return {
        str(v).replace("+", "").removeprefix("00")
        for v in pd.Series(values, dtype="string").dropna()
    }


def check_ledger(result: pd.DataFrame, ledger: pd.DataFrame, *, exact: bool) -> None:
    """Each message at most once in the ledger; accepted rows are in it.

    ``exact``: the ledger holds exactly the accepted rows (no fault left an
    ambiguous outcome); otherwise the ledger may also hold ``unknown`` rows,
    and nothing else.
    """
    numbers = ledger["number"].astype("string").str.replace("+", "").str.removeprefix("00")
    assert not numbers.duplicated().any(), "a message reached the gateway twice"
    accepted = digits(result.loc[result["status"] == "accepted", "number"])
    unknown = digits(result.loc[result["status"] == "unknown", "number"])
    in_ledger = set(numbers)
    assert accepted <= in_ledger
    if exact:
        assert in_ledger == accepted
    else:
        assert in_ledger <= accepted | unknown
