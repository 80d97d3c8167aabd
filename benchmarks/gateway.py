"""Throughput of the embedded gateway under concurrent load on loopback.

Each server runs in its own process (so the load generator does not share its
GIL); the load generator keeps ``--concurrency`` requests in flight (one thread
and one ``httpx.Client`` each). Baseline, measured in the same run: a bare uvicorn ASGI
endpoint that reads the same request bodies and answers a fixed JSON, i.e. the
ceiling of the server stack itself on this machine.

Besides throughput it prints the server process's own CPU time per request
(``time.process_time`` in that process, all its threads), which depends far less
on what else runs on the machine than wall-clock throughput does.

    python benchmarks/gateway.py [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

TOKEN = "00000000-0000-0000-0000-000000000000"


def body(n_msg: int, start: int) -> bytes:
    msgs = [{"from": "Bench", "to": [{"number": f"00316{start + i:08d}"}], "body": {"content": f"Hello {i}, spring sale!"},
             "reference": "bench"} for i in range(n_msg)]
    return orjson.dumps({"messages": {"msg": msgs}})


async def _echo(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    payload = b'{"details":"Created 1 message(s)","errorCode":0,"messages":[]}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def _serve(kind: str, commands, answers, ledger: str) -> None:
    from cmframe.gateway import GatewayConfig
    from cmframe.gateway.server import RunningGateway, ServerThread

    if kind == "baseline":
        server = ServerThread(_echo).start()
    else:
        server = RunningGateway(GatewayConfig(tokens=[TOKEN], ledger=ledger)).start()
    answers.put(server.url)
    while commands.get() == "cpu":  # anything else: stop
        answers.put(time.process_time())
    server.stop()


def _load(url: str, bodies: list[bytes], seconds: float, concurrency: int) -> tuple[int, float]:
    """Requests answered in ``seconds`` by ``concurrency`` threads, each with its own client."""
    deadline = time.perf_counter() + seconds

    def worker(w: int) -> int:
        done, i = 0, w
        with httpx.Client(timeout=60, headers={"X-CM-PRODUCTTOKEN": TOKEN}) as client:
            while time.perf_counter() < deadline:
                r = client.post(url, content=bodies[i % len(bodies)])
                if r.status_code != 200:
                    raise RuntimeError(f"unexpected answer {r.status_code}: {r.text[:200]}")
                done += 1
                i += concurrency
        return done

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = sum(pool.map(worker, range(concurrency)))
    return done, time.perf_counter() - t0


def measure(kind: str, n_msg: int, seconds: float, concurrency: int, tmp: Path) -> tuple[float, float]:
    """Requests per second and server CPU seconds per request of one server kind."""
    ctx = mp.get_context("spawn")
    commands, answers = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_serve, args=(kind, commands, answers, str(tmp / f"{kind}-{n_msg}.sqlite")),
                       daemon=True)
    proc.start()
    try:
        url = answers.get(timeout=60) + "/v1.0/message"
        bodies = [body(n_msg, k * n_msg) for k in range(16)]
        _load(url, bodies, min(1.0, seconds), concurrency)  # warm-up
        commands.put("cpu")
        cpu = answers.get(timeout=60)
        n, elapsed = _load(url, bodies, seconds, concurrency)
        commands.put("cpu")
        cpu = answers.get(timeout=60) - cpu
    finally:
        commands.put("stop")
        proc.join(timeout=30)
    return n / elapsed, cpu / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"concurrency {args.concurrency}, {args.seconds:g} s per measurement")
        for n_msg in (1, 100, 1000):
            base, base_cpu = measure("baseline", n_msg, args.seconds, args.concurrency, tmp)
            gw, gw_cpu = measure("gateway", n_msg, args.seconds, args.concurrency, tmp)
            print(f"{n_msg:>5} msg/request: gateway {gw * n_msg:>9,.0f} accepted msg/s ({gw:,.1f} req/s); "
                  f"baseline echo {base:,.1f} req/s; gateway/baseline = {gw / base:.2f}; "
                  f"server CPU per request: gateway {gw_cpu * 1e3:.2f} ms, baseline {base_cpu * 1e3:.2f} ms "
                  f"({gw_cpu / base_cpu:.1f}x)")


if __name__ == "__main__":
    main()
