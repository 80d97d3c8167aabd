"""The package surface: public names, the accessor, modules named like their function."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pandas as pd
import pytest

import cmframe


@pytest.mark.parametrize("name", cmframe.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(cmframe, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        cmframe.no_such_name  # noqa: B018


def test_stage_modules_stay_callable_after_their_import() -> None:
    # importing the submodule rebinds the package attribute to the module
    importlib.import_module("cmframe.build")
    importlib.import_module("cmframe.send")
    df = pd.DataFrame({"phone": ["0612345678"]})
    plan = cmframe.build(df, to="phone", body="Hi", sender="Shop", region="NL")
    assert plan.loc[0, "number"] == "0031612345678"
    assert callable(cmframe.send)
    assert cmframe.build.layout is importlib.import_module("cmframe.build").layout


def test_accessor_keeps_no_state() -> None:
    # pandas may rebuild or cache the accessor: it must hold nothing but the frame
    df = pd.DataFrame({"phone": ["0612345678"]})
    df.cm.build(to="phone", body="Hi", sender="Shop", region="NL")
    assert set(vars(df.cm)) == {"_obj"}
    assert df.cm._obj is df


def test_import_is_light() -> None:
    # the server stack is loaded only when a server starts
    code = "import sys, cmframe; print('uvicorn' in sys.modules, 'starlette' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cli_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cmframe", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("gateway", "receive", "report", "demo"):
        assert command in out.stdout
    bad = subprocess.run([sys.executable, "-m", "cmframe", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command" in bad.stderr
