"""Sending throughput: cmframe vs the official CM SDK vs a plain httpx loop.

Everything runs against the embedded gateway (a separate process on loopback,
``--latency`` seconds added to every answer, 20 ms by default), in one run:

* **ceiling**: the gateway's own limit: pre-built 1000-message bodies posted
  over ``--concurrency`` pooled connections, nothing else (no journal, no parsing);
* **cmframe**: ``plan.cm.send(...)`` with a journal file (everything included:
  request bodies, journal, answers mapped back to rows);
* **httpx loop**: a plain sequential loop, 1000 messages per request, documents
  built row by row with ``json.dumps``;
* **CM SDK**: ``cm_text.TextClient``: 100 messages per request, sequential (its
  own cap and behaviour);
* **cmframe, no network**: ``send`` against an in-process ``httpx.MockTransport``
  answering instantly: what the sender itself costs (journal included).

Figures are messages per second and ratios measured in the same run. The plan is
built once beforehand and is not part of any timing.

    .venv/bin/python benchmarks/send.py            # 100,000 recipients
    .venv/bin/python benchmarks/send.py --rows 20000 --sdk-rows 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import pandas as pd

from cmframe.build import build, request_bodies
from cmframe.send import DEFAULT_CONCURRENCY, send

TOKEN = "0b3f1a52-9c8d-4e7f-a6b5-123456789abc"


def make_plan(n: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "phone": [f"+316{10000000 + i}" for i in range(n)],
            "name": [f"Customer{i}" for i in range(n)],
        }
    )
    return build(
        frame, to="phone", sender="CMFrame", body="Hi {name}, spring sale!", reference="spring"
    )


def start_gateway(tmp: Path, latency: float) -> tuple[subprocess.Popen, str]:
    """The gateway in its own process, so that it does not share a GIL with the senders."""
    env = {**os.environ, "CM_PRODUCT_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "cmframe", "gateway", "--port", "0", "--latency", str(latency),
           "--ledger", str(tmp / "gateway-ledger.sqlite")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"the gateway did not start: {line!r}")
    url = line.split(" on ", 1)[1].split(" ", 1)[0]
    return proc, url + "/v1.0/message"


def accepted(response: httpx.Response) -> int:
    return sum(m.get("status") == "Accepted" for m in response.json()["messages"])


async def ceiling(url: str, bodies: list[bytes], concurrency: int) -> int:
    """Post pre-built bodies as fast as the gateway takes them; return messages accepted."""
    queue = list(reversed(bodies))
    headers = {"Content-Type": "application/json", "X-CM-PRODUCTTOKEN": TOKEN}
    total = 0
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal total
            while queue:
                response = await client.post(url, content=queue.pop(), headers=headers)
                total += accepted(response)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total


def httpx_loop(url: str, plan: pd.DataFrame) -> int:
    """What one writes without cmframe: a sequential loop over 1000-row slices."""
    total = 0
    headers = {"X-CM-PRODUCTTOKEN": TOKEN}
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(plan), 1000):
            rows = plan.iloc[start : start + 1000]
            msgs = [
                {
                    "from": row.sender,
                    "to": [{"number": row.number}],
                    "body": {"type": "auto", "content": row.body},
                    "reference": row.reference,
                }
                for row in rows.itertuples()
            ]
            body = json.dumps({"messages": {"msg": msgs}})
            response = client.post(url, content=body, headers=headers)
            total += accepted(response)
    return total


def sdk(url: str, plan: pd.DataFrame) -> int:
    """The official SDK: 100 messages per request, one request after the other."""
    from cm_text import TextClient

    client = TextClient(apikey=TOKEN, gateway=url)
    total = 0
    rows = list(plan[["number", "body", "sender", "reference"]].itertuples(index=False))
    for start in range(0, len(rows), TextClient.MESSAGES_MAXIMUM):
        for number, body, sender, reference in rows[start : start + TextClient.MESSAGES_MAXIMUM]:
            client.AddMessage(body, from_=sender, to=[number], reference=reference)
        response = client.send()
        total += sum(m.get("status") == "Accepted" for m in response.json()["messages"])
    return total


def client_only(plan: pd.DataFrame, concurrency: int, tmp: Path) -> int:
    """cmframe against an instant in-process gateway: the sender's own cost, no network."""
    answers = {}
    for _, body, _ in request_bodies(plan, chunk_size=1000):
        msgs = orjson.loads(body)["messages"]["msg"]
        entries = [
            {"to": to["number"], "status": "Accepted", "reference": m.get("reference"),
             "parts": 1, "messageDetails": None, "messageErrorCode": 0}
            for m in msgs for to in m["to"]
        ]
        answers[body] = orjson.dumps({"details": "ok", "errorCode": 0, "messages": entries})
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=answers[request.content]))
    result = send(plan, url="http://gateway.invalid/v1.0/message", token=TOKEN, transport=transport,
                  journal=tmp / "client-only.cmjournal", concurrency=concurrency, progress=False)
    return int((result["status"] == "accepted").sum())


def timed(label: str, fn, expected: int) -> float:
    start = time.perf_counter()
    n = fn()
    seconds = time.perf_counter() - start
    if n != expected:
        raise SystemExit(f"{label}: {n} messages accepted, {expected} expected")
    rate = n / seconds
    print(f"  {label:<20} {n:>8,} msgs in {seconds:7.2f} s  = {rate:>9,.0f} msgs/s", flush=True)
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sdk-rows", type=int, default=None, help="rows for the SDK (default --rows)")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args(argv)
    n, n_sdk = args.rows, args.sdk_rows or args.rows

    plan = make_plan(max(n, n_sdk))
    assert plan["error_code"].isna().all()
    print(f"{n:,} recipients, gateway latency {args.latency * 1000:.0f} ms per request, "
          f"concurrency {args.concurrency}")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_gateway(Path(tmp), args.latency)
        try:
            head = plan.iloc[:n]
            bodies = [b for _, b, _ in request_bodies(head, chunk_size=1000)]
            rates = {}
            rates["ceiling"] = timed(
                "ceiling", lambda: asyncio.run(ceiling(url, bodies, args.concurrency)), n
            )
            journal = Path(tmp) / "bench.cmjournal"

            def with_cmframe() -> int:
                result = send(head, url=url, token=TOKEN, journal=journal,
                              concurrency=args.concurrency, progress=False)
                return int((result["status"] == "accepted").sum())

            rates["cmframe"] = timed("cmframe", with_cmframe, n)
            rates["httpx loop"] = timed("httpx loop", lambda: httpx_loop(url, head), n)
            rates["CM SDK"] = timed("CM SDK", lambda: sdk(url, plan.iloc[:n_sdk]), n_sdk)
            rates["client"] = timed(
                "cmframe, no network",
                lambda: client_only(head, args.concurrency, Path(tmp)),
                n,
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print()
    print(f"  cmframe / CM SDK      {rates['cmframe'] / rates['CM SDK']:6.1f}x   (target >= 20x)")
    print(f"  cmframe / httpx loop  {rates['cmframe'] / rates['httpx loop']:6.1f}x")
    print(f"  cmframe / ceiling     {rates['cmframe'] / rates['ceiling']:6.2f}    (target >= 0.5)")
    print(f"  cmframe without network / CM SDK  {rates['client'] / rates['CM SDK']:6.1f}x"
          "   (the sender's own limit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
