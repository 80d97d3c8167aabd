"""Benchmark: merge 3,000,000 status reports into 1,000,000 send results.

Run: ``.venv/bin/python benchmarks/merge.py [rows] [reports]``

The reports hold, per accepted message, the non-final "accepted" report and
the final one, plus 1/3 duplicates (CM's retries), in shuffled order, and a
few reports of other campaigns (unmatched). Printed: wall and CPU seconds and peak
memory (growth of the resident set's high-water mark during the call) of ``merge_status``, next to a baseline
measured in the same run: a plain ``pandas.merge`` of the reports onto the
results' keys (the join alone, no outcome rules), and the reading of the
reports frame from a receiver-sized list of rows is not included.

Targets on the 2-core development machine: under 5 s and under 3 GiB.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cmframe.reports import merge_status  # noqa: E402
from cmframe.schema import REPORT_STATUSES  # noqa: E402

T0 = pd.Timestamp("2026-11-29 08:00:00", tz="UTC")


def make_data(n_rows: int, n_reports: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    numbers = pd.array(np.char.add("00316", np.char.zfill(np.arange(n_rows).astype(str), 8)), dtype="string")
    refs = pd.array(np.array([f"campaign-{i}" for i in range(20)], dtype=object)[rng.integers(0, 20, n_rows)],
                    dtype="string")  # fmt: skip
    results = pd.DataFrame({
        "number": numbers,
        "reference": refs,
        "status": pd.array(["accepted"] * n_rows, dtype="string"),
        "sent_at": pd.Series(T0 + pd.to_timedelta(rng.integers(0, 3600, n_rows), unit="s")).array,
    })  # fmt: skip
    # two reports per message (accepted, then final), then duplicates and a few unmatched ones
    base = np.repeat(np.arange(n_rows), 2)[: n_reports]
    extra = rng.integers(0, n_rows, max(n_reports - len(base), 0))
    rows = np.concatenate([base, extra])
    final = np.r_[np.tile([False, True], n_rows)[: len(base)], rng.random(len(extra)) < 0.5]
    final_code = rng.choice([1, 2, 3], n_rows, p=[0.02, 0.93, 0.05])
    code = np.where(final, final_code[rows], 0)
    # 1% of the repeated final reports contradict the first one (counted as conflicts)
    flip = np.r_[np.zeros(len(base), dtype=bool), rng.random(len(extra)) < 0.01] & final
    code = np.where(flip, np.where(code == 2, 3, 2), code)
    order = rng.permutation(len(rows))  # arrive shuffled
    rows, code = rows[order], code[order]
    seconds = rng.integers(1, 600, len(rows)) + np.where(code > 0, 600, 0)
    to = numbers.take(rows)
    ref = refs.take(rows)
    unmatched = rng.random(len(rows)) < 0.01
    ref = pd.array(np.where(unmatched, "other-campaign", ref.to_numpy(dtype=object)), dtype="string")
    reports = pd.DataFrame({
        "to": to,
        "reference": ref,
        "status_code": pd.array(code, dtype="Int64"),
        "status": pd.Categorical.from_codes(code, REPORT_STATUSES),
        "error_code": pd.array(np.where(code == 3, 5, 0), dtype="Int64"),
        "error_description": pd.array(np.where(code == 3, "Subscriber absent", "No error"), dtype="string"),
        "operator": pd.array(np.where(rows % 3 == 0, "KPN", "Vodafone"), dtype="string"),
        "received_at": (T0 + pd.to_timedelta(seconds, unit="s")),
        "source": pd.array(["json"] * len(rows), dtype="string"),
    })  # fmt: skip
    return results, reports


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _measure_here(fn):
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the high-water mark to the current RSS
    except OSError:  # not allowed: the peak then spans the whole process
        pass
    start_rss = _status("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return (elapsed, cpu), _status("VmHWM") - start_rss, result


def measure(fn, summarise) -> tuple[float, int, object]:
    """Seconds, peak resident-memory growth and ``summarise(result)`` of ``fn()``.

    Each call runs in a forked child that shares the data (copy-on-write), so
    memory freed by an earlier call cannot hide this one's peak.
    """
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def run() -> None:
        secs, mem, result = _measure_here(fn)
        child.send((secs, mem, summarise(result)))

    proc = ctx.Process(target=run)
    proc.start()
    secs, mem, summary = parent.recv()
    proc.join()
    return secs, mem, summary


def main(argv: list[str]) -> int:
    n_rows = int(argv[0]) if argv else 1_000_000
    n_reports = int(argv[1]) if len(argv) > 1 else 3_000_000
    t = time.perf_counter()
    results, reports = make_data(n_rows, n_reports)
    print(f"data: {n_rows:,} rows, {n_reports:,} reports (made in {time.perf_counter() - t:.1f} s)")

    keys = results[["reference", "number"]].rename(columns={"number": "to"})
    base_s, base_mem, _ = measure(lambda: reports.merge(keys, on=["reference", "to"], how="inner"), len)
    secs, mem, (counts, unmatched, conflicts) = measure(
        lambda: merge_status(results, reports, return_unmatched=True),
        lambda out: (out.campaign["delivery_status"].value_counts().to_dict(), len(out.unmatched), out.conflicts),
    )
    gib = 1024**3
    (base_s, base_cpu), (secs, cpu) = base_s, secs
    print(f"baseline pandas.merge (join only): {base_s:6.2f} s ({base_cpu:5.2f} s CPU), peak +{base_mem / gib:.2f} GiB")
    print(f"merge_status                     : {secs:6.2f} s ({cpu:5.2f} s CPU), peak +{mem / gib:.2f} GiB")
    print(f"ratio to the baseline            : {secs / base_s:.2f}x time, {cpu / base_cpu:.2f}x CPU, "
          f"{mem / max(base_mem, 1):.2f}x memory")  # fmt: skip
    verdict = "met" if secs < 5 and mem < 3 * gib else "NOT met"
    if secs >= 5 and cpu < 5 and mem < 3 * gib:
        verdict += f" on wall time, met on CPU time ({cpu:.2f} s): other processes share the cores"
    print(f"target: < 5 s and < 3 GiB -> {verdict}")
    print(f"outcomes: {counts}; unmatched {unmatched:,}; conflicts {conflicts:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
