"""Benchmark: recipients -> plan -> serialised request bodies.

One million recipients, a personalised two-placeholder body, clean numbers
(``0031...``) and messy numbers (``+31 6 1234 5678``, ``06-12345678``, ...)
separately. For each, cmframe (``build`` + ``request_bodies``) is timed against
a naive per-row Python loop that builds the same documents with ``json.dumps``
(normalising each number with ``phonenumbers`` unless it is already clean,
estimating parts per body), measured in the same run. The naive loop runs on a
sample (``--naive-rows``) and is reported as a rate. Both outputs are checked to
be the same documents.

Usage::

    python benchmarks/build.py [--rows 1000000] [--naive-rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

import numpy as np
import orjson
import pandas as pd
import phonenumbers

import cmframe  # noqa: F401  (registers df.cm)
from cmframe.build import request_bodies
from cmframe.encode import estimate_one

BODY = "Hi {first_name}, your {city} store has a spring sale!"
FIRST = ["Anna", "Bram", "Daan", "Emma", "Femke", "Lars", "Sanne", "José", "Zoë", "Thijs"]
CITIES = ["Amsterdam", "Rotterdam", "Utrecht", "Breda", "Den Haag", "Eindhoven"]
SPEC = dict(sender="CMFrame", body=BODY, reference="spring", channels=["SMS"], region="NL")
_CLEAN = re.compile(r"^00[1-9][0-9]{6,15}$")


def recipients(n: int, messy: bool, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    second = rng.choice(list("1234558"), n)
    rest = rng.integers(0, 10**7, n)
    digits = np.char.add(np.char.add("6", second), np.char.zfill(rest.astype(str), 7))  # valid NL mobiles
    if messy:
        d = pd.Series(digits, dtype=object)
        forms = [
            "+31 6 " + d.str[1:5] + " " + d.str[5:],
            "0" + d,
            "06-" + d.str[1:],
            "+31 (0)6 " + d.str[1:3] + " " + d.str[3:5] + " " + d.str[5:7] + " " + d.str[7:],
        ]
        style = rng.integers(0, len(forms), n)
        phones = np.select([style == k for k in range(len(forms))], [f.to_numpy() for f in forms])
    else:
        phones = np.char.add("0031", digits)
    return pd.DataFrame(
        {
            "phone": pd.array(phones, dtype="string"),
            "first_name": pd.array(rng.choice(FIRST, n), dtype="string"),
            "city": pd.array(rng.choice(CITIES, n), dtype="string"),
        }
    )


def run_cmframe(df: pd.DataFrame) -> tuple[float, float, int, list[bytes], float]:
    c0, t0 = time.process_time(), time.perf_counter()
    plan = df.cm.build(to="phone", **SPEC)
    t1 = time.perf_counter()
    bodies = [body for _, body, _ in request_bodies(plan)]
    t2, c2 = time.perf_counter(), time.process_time()
    return t1 - t0, t2 - t1, int(plan["error_code"].isna().sum()), bodies, c2 - c0


def naive(df: pd.DataFrame) -> list[bytes]:
    """The obvious loop: one dict per row, json.dumps per request of 1000."""
    out, msgs = [], []
    raw_estimate = estimate_one.__wrapped__  # no cache: the loop does the work per row
    for phone, first, city in zip(df["phone"].tolist(), df["first_name"].tolist(), df["city"].tolist(), strict=True):
        if _CLEAN.match(phone):
            number = phone
        else:
            try:
                num = phonenumbers.parse(phone, "NL")
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_valid_number(num):
                continue
            number = f"00{num.country_code}{phonenumbers.national_significant_number(num)}"
        body = BODY.format(first_name=first, city=city)
        raw_estimate(body)  # the loop also estimates parts, as build does
        msgs.append(
            {
                "from": "CMFrame",
                "body": {"type": "auto", "content": body},
                "allowedChannels": ["SMS"],
                "reference": "spring",
                "to": [{"number": number}],
            }
        )
        if len(msgs) == 1000:
            out.append(json.dumps({"messages": {"msg": msgs}}).encode())
            msgs = []
    if msgs:
        out.append(json.dumps({"messages": {"msg": msgs}}).encode())
    return out


def best(fn, repeat: int):
    results = [fn() for _ in range(repeat)]
    return min(results, key=lambda r: r[0] + r[1]), results[-1]  # best wall time


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--naive-rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"rows={args.rows:,}  naive sample={args.naive_rows:,}  best of {args.repeat}")
    for messy in (False, True):
        label = "messy" if messy else "clean"
        df = recipients(args.rows, messy)
        run_cmframe(df.head(1000))  # warm caches of metadata and patterns
        (t_build, t_ser, valid, bodies, cpu), _ = best(lambda df=df: run_cmframe(df), args.repeat)
        sample = df.head(args.naive_rows)
        c0, t0 = time.process_time(), time.perf_counter()
        ref = naive(sample)
        t_naive, cpu_naive = time.perf_counter() - t0, time.process_time() - c0
        # same documents: compare the sample's requests
        ours = [b for _, b, _ in request_bodies(sample.cm.build(to="phone", **SPEC))]
        assert [orjson.loads(b) for b in ours] == [orjson.loads(b) for b in ref], "documents differ"
        rate = args.rows / (t_build + t_ser)
        naive_rate = args.naive_rows / t_naive
        cpu_rate, cpu_naive_rate = args.rows / cpu, args.naive_rows / cpu_naive
        print(
            f"{label:5s}  cmframe {rate:>11,.0f} rows/s  (build {t_build:.2f}s + serialise {t_ser:.2f}s,"
            f" {valid:,} valid, {sum(map(len, bodies)) / 1e6:.0f} MB)  naive {naive_rate:>9,.0f} rows/s"
            f"  ratio {rate / naive_rate:.1f}x"
        )
        print(
            f"{'':5s}  per CPU-second: cmframe {cpu_rate:>11,.0f} rows  naive {cpu_naive_rate:>9,.0f} rows"
            f"  ratio {cpu_rate / cpu_naive_rate:.1f}x   (load average {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
