"""The notebooks: stored without outputs, and each runs top to bottom (loopback only)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_build_and_preview.ipynb", "02_send_and_resume.ipynb",
         "03_reports_and_analysis.ipynb"]  # fmt: skip


def test_the_three_notebooks_are_there():
    assert set(NAMES) <= {p.name for p in NOTEBOOKS.glob("*.ipynb")}


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_stored_without_outputs(name):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.outputs == [], f"{name}: stored with outputs: {cell.source[:60]!r}"
        assert cell.execution_count is None, f"{name}: stored with an execution count"


def _run(name: str) -> nbformat.NotebookNode:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(
        book, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )  # fmt: skip
    client.execute()  # raises CellExecutionError on the first failing cell
    return book


def _text(book: nbformat.NotebookNode) -> str:
    parts = []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _images(book: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for c in book.cells
               for out in c.get("outputs", []))  # fmt: skip


def test_notebook_1_build_and_preview_runs():
    book = _run(NAMES[0])
    text = _text(book)
    assert "predicted_cost" in text and "chunk 0:" in text
    assert _images(book) >= 2


def test_notebook_2_send_and_resume_runs():
    book = _run(NAMES[1])
    text = _text(book)
    assert "stopped: 102" in text  # the balance ran out: the send was interrupted
    assert "messages in the ledger" in text  # resumed, exactly once (asserted in the notebook)
    assert _images(book) >= 1


def test_notebook_3_reports_and_analysis_runs():
    book = _run(NAMES[2])
    text = _text(book)
    assert "delivery_rate" in text and "report.html" in text
    assert _images(book) >= 1
