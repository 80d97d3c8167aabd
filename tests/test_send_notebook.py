"""``send`` inside a real Jupyter kernel, whose event loop is already running."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_send_helpers import TOKEN

pytestmark = pytest.mark.timeout(180)

CELLS = [
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})",
    "import asyncio, cmframe\n"
    "from test_send_helpers import make_plan\n"
    "from cmframe.gateway import serve_gateway\n"
    "asyncio.get_running_loop()  # the kernel's loop runs while cells execute",
    f"with serve_gateway(tokens=[{TOKEN!r}]) as gw:\n"
    f"    results = make_plan(30).cm.send(url=gw.message_url, token={TOKEN!r}, chunk_size=7)\n"
    "    ledger = gw.ledger_frame()\n"
    "print(results['status'].value_counts().to_dict(), len(ledger))",
]


def test_send_blocks_and_works_in_a_kernel(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = nb.cells[-1].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "{'accepted': 30} 30" in text, outputs
    assert not [o for o in outputs if o.output_type == "error"]
