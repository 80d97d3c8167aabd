"""Summary by customGrouping over many campaign rows in Parquet: pandas vs Dask.

Writes ``--rows`` synthetic campaign rows (send results with merged status
reports: one row per message, the frame ``campaign.cm.summary`` reads) to
``--files`` Parquet files, then times, each in a fresh process so that peak
memory is its own:

* pandas: ``pd.read_parquet(folder).cm.summary(by="customGrouping")``;
* Dask: a LocalCluster (``--workers`` processes, one thread each) and
  ``dd.read_parquet(folder).cm.summary(by="customGrouping")``.

It prints seconds and peak resident memory per process (the client and every
worker), with ratios against the pandas run, and checks both answers agree.
Not a test: ``python benchmarks/scale.py --rows 2000000`` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_data(folder: Path, rows: int, files: int, seed: int = 0) -> None:
    """``rows`` campaign rows in ``files`` Parquet files, written file by file."""
    rng = np.random.default_rng(seed)
    groups = np.array([f"segment-{i:02d}" for i in range(24)], dtype=object)
    per_file = -(-rows // files)
    start = 0
    for i in range(files):
        n = min(per_file, rows - start)
        if n <= 0:
            break
        status = rng.choice(np.array(["accepted", "rejected", "unknown", "not_sent"], dtype=object),
                            n, p=[0.96, 0.02, 0.01, 0.01])  # fmt: skip
        delivery = rng.choice(np.array(["delivered", "failed", "rejected", "accepted", "none"], dtype=object),
                              n, p=[0.85, 0.06, 0.01, 0.03, 0.05])  # fmt: skip
        invalid = rng.random(n) < 0.01
        frame = pd.DataFrame({
            "number": pd.array((31_600_000_000 + start + np.arange(n)).astype(str), dtype="string"),
            "reference": pd.array(np.full(n, "winter"), dtype="string"),
            "custom_grouping": pd.array(groups[rng.integers(0, len(groups), n)], dtype="string"),
            "parts_estimate": rng.integers(1, 3, n),
            "error_code": pd.array(np.where(invalid, 302, 0), dtype="Int64").astype("Int64"),
            "status": pd.array(np.where(invalid, "invalid", status), dtype="string"),
            "parts": pd.array(rng.integers(1, 3, n), dtype="Int64"),
            "delivery_status": pd.array(np.where(invalid, "none", delivery), dtype="string"),
        })
        frame["error_code"] = frame["error_code"].mask(~pd.Series(invalid))
        frame.to_parquet(folder / f"part-{i:04d}.parquet", index=False)
        start += n


def run_pandas(folder: str) -> dict:
    import cmframe  # noqa: F401  (registers df.cm)

    t0 = time.perf_counter()
    df = pd.read_parquet(folder)
    result = df.cm.summary(by="customGrouping")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mib": {"process": _peak_mib()}, "result": result.to_json()}


def run_dask(folder: str, workers: int) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import cmframe  # noqa: F401  (registers ddf.cm)

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0",
                      scheduler_kwargs={"dashboard": False}) as cluster, Client(cluster) as client:  # fmt: skip
        t0 = time.perf_counter()
        result = dd.read_parquet(folder).cm.summary(by="customGrouping")
        seconds = time.perf_counter() - t0
        peaks = client.run(_peak_mib)
    peak = {"client": _peak_mib()}
    peak.update({f"worker {i}": v for i, v in enumerate(peaks.values())})
    return {"seconds": seconds, "peak_mib": peak, "result": result.to_json()}


def _child(engine: str, folder: str, workers: int) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, "--folder", folder, "--workers", str(workers)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="campaign rows (default 20M)")
    parser.add_argument("--files", type=int, default=40, help="Parquet files (default 40)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    parser.add_argument("--skip-pandas", action="store_true", help="when the data does not fit in memory")
    parser.add_argument("--child", choices=["pandas", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        out = run_pandas(args.folder) if args.child == "pandas" else run_dask(args.folder, args.workers)
        print(json.dumps(out))
        return

    with tempfile.TemporaryDirectory(prefix="cmframe-scale-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        make_data(folder, args.rows, args.files)
        size = sum(p.stat().st_size for p in folder.glob("*.parquet")) / 2**20
        print(f"{args.rows:,} rows in {args.files} Parquet files ({size:,.0f} MiB), "
              f"written in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        runs = {}
        if not args.skip_pandas:
            runs["pandas"] = _child("pandas", str(folder), args.workers)
        runs[f"dask ({args.workers} workers)"] = _child("dask", str(folder), args.workers)

    base = runs.get("pandas")
    print(f"\nsummary(by='customGrouping') over {args.rows:,} rows")
    print(f"{'engine':<20}{'seconds':>9}{'vs pandas':>11}  peak memory per process (MiB)")
    for name, run in runs.items():
        ratio = f"{run['seconds'] / base['seconds']:.2f}x" if base else "-"
        peaks = ", ".join(f"{k} {v:,.0f}" for k, v in run["peak_mib"].items())
        print(f"{name:<20}{run['seconds']:>9.1f}{ratio:>11}  {peaks}")
    if base:
        largest = max(base["peak_mib"].values())
        for name, run in runs.items():
            if name != "pandas":
                print(f"{name}: largest process {max(run['peak_mib'].values()) / largest:.2f}x of pandas'")
                same = pd.read_json(_io(run["result"])).equals(pd.read_json(_io(base["result"])))
                print(f"{name}: same summary as pandas: {same}")


def _io(text: str):
    import io

    return io.StringIO(text)


if __name__ == "__main__":
    main()
