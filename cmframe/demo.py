"""The demo campaign behind ``make demo`` (``cmframe demo``): everything, on loopback.

One run goes through every stage with the embedded defaults::

    data/recipients.csv --build--> plan --send--> embedded gateway --status reports-->
    receiver store --read + merge--> campaign --> demo-output/ (frames, report, charts)

The gateway and the receiver listen on 127.0.0.1 (random free ports), time is
accelerated so that minutes of simulated delivery pass in seconds, and a few
realistic problems are switched on so the report has something to show: a
blacklisted number, WhatsApp failing over to SMS, and one request whose
connection drops *after* the gateway accepted it (its rows are ``unknown``
until their status reports arrive).

The product token is a random one made up for the run: the embedded gateway
accepts it, it is never printed or written.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEMO_SPEC",
    "DEMO_GATEWAY",
    "DEMO_PRICES",
    "DemoResult",
    "find_recipients",
    "sample_recipients",
    "load_recipients",
    "build_plan",
    "run_campaign",
    "write_outputs",
    "run_demo",
    "main",
]

#: How the demo builds its plan from ``data/recipients.csv`` (``build`` keywords).
DEMO_SPEC: dict[str, Any] = {
    "to": "phone",
    "region": "NL",
    "sender": "CMFrame",
    "body": "Hi {first_name}, our spring sale starts today: 20% off everything until Sunday.",
    "channels": ["WhatsApp", "SMS"],
    "reference": "spring-demo",
    "custom_grouping": "{segment}",
    "validity": "2h",
}

#: Embedded-gateway options of the demo (see :mod:`cmframe.gateway`).
DEMO_GATEWAY: dict[str, Any] = {
    "time_scale": 120.0,  # two simulated minutes per real second
    "accepted_delay": 2.0,
    "delivery_delay": 45.0,
    "delivered_rate": 0.92,
    "failed_rate": 0.06,
    "rejected_rate": 0.02,
    "channel_rules": {"WhatsApp": {"failed_rate": 0.35}},  # then SMS takes over
    "faults": {3: "drop_after"},  # the 3rd request: accepted, then the connection drops
    "report_batch": 50,  # status reports per webhook POST (CM batches them too)
    "seed": 7,
}

#: Price per message part by region for the demo's cost figures (EUR, made up).
DEMO_PRICES: dict[str, float] = {"NL": 0.075, "BE": 0.081, "DE": 0.079, "*": 0.095}

_CHUNK = 200


@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    out_dir: Path
    campaign: pd.DataFrame
    paths: dict[str, Path] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


# -- recipients ------------------------------------------------------------------------
def find_recipients() -> Path | None:
    """``data/recipients.csv`` of the working directory or of the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        path = base / "data" / "recipients.csv"
        if path.is_file():
            return path
    return None


def sample_recipients(n: int = 2000, *, seed: int = 0) -> pd.DataFrame:
    """A synthetic recipient list (used when ``data/recipients.csv`` is not there).

    Numbers come in the usual shapes (``+31 6 …``, ``06…``, ``0031…``), with a
    few invalid ones and duplicates; names include accents and emoji.
    """
    rng = np.random.default_rng(seed)
    # 06-1… to 06-5…: ranges phonenumbers knows as Dutch mobile numbers
    national = rng.integers(1, 6, n) * 10_000_000 + rng.integers(0, 10_000_000, n)
    style = rng.integers(0, 3, n)
    phone = np.where(
        style == 0,
        [f"+31 6 {x:08d}"[:10] + " " + f"{x:08d}"[4:] for x in national],
        np.where(style == 1, [f"06{x:08d}" for x in national],
                 [f"00316{x:08d}" for x in national]),  # fmt: skip
    ).astype(object)
    bad = rng.random(n) < 0.02
    phone[bad] = "06-CALL-ME"
    dup = rng.choice(n, size=max(n // 100, 1), replace=False)
    phone[dup[1:]] = phone[dup[0]]
    first = np.array(["Anna", "Daan", "Émile", "Sofie", "Noah", "Zoë", "Lars", "Fatima",
                      "Jan", "Mila 🌷"])  # fmt: skip
    segment = np.array(["loyal", "new", "lapsed"])
    channel = np.array(["WhatsApp", "SMS"])
    return pd.DataFrame(
        {
            "phone": pd.array(phone, dtype="string"),
            "first_name": pd.array(first[rng.integers(0, len(first), n)], dtype="string"),
            "segment": pd.array(segment[rng.integers(0, 3, n)], dtype="string"),
            "preferred_channel": pd.array(channel[rng.integers(0, 2, n)], dtype="string"),
        }
    )


def load_recipients(path: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """Read the recipients (as text: phone numbers are strings) and say where from."""
    path = Path(path) if path is not None else find_recipients()
    if path is None:
        return sample_recipients(), "built-in sample (data/recipients.csv not found)"
    return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""]), str(path)


def build_plan(recipients: pd.DataFrame, **overrides: Any) -> pd.DataFrame:
    """Build the demo plan: :data:`DEMO_SPEC` with ``overrides``."""
    from .build import build

    spec = {**DEMO_SPEC, **overrides}
    if "segment" not in recipients.columns and spec.get("custom_grouping") == "{segment}":
        spec.pop("custom_grouping")
    return build(recipients, **spec)


# -- the campaign ----------------------------------------------------------------------
def _new_token() -> str:
    """A product token made up for one run: the embedded gateway is told to accept it."""
    return str(uuid.uuid4())


def run_campaign(
    plan: pd.DataFrame,
    work_dir: str | Path,
    *,
    gateway: dict[str, Any] | None = None,
    progress: bool = False,
    report_timeout: float = 40.0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Send a plan to the embedded gateway and merge the status reports it pushes.

    Starts a receiver and a gateway on loopback (the gateway pushes its status
    reports to the receiver), sends with a journal, waits until every report is
    pushed, then reads the receiver's store and merges it.

    Returns
    -------
    (campaign, info)
        The merged frame and a dict with ``journal``, ``store``, ``ledger``
        paths, ``requests`` sent, ``ledger_messages`` and ``reports`` counts.
    """
    from .gateway import serve_gateway
    from .receiver import serve_receiver
    from .reports import merge_status, read_status_reports
    from .send import send

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    journal, store, ledger = work / "campaign.cmjournal", work / "reports.sqlite", work / "ledger.sqlite"
    for stale in (journal, store, ledger):  # a demo run always starts afresh
        for p in (stale, Path(f"{stale}-wal"), Path(f"{stale}-shm"), Path(f"{stale}-journal")):
            p.unlink(missing_ok=True)
    token = _new_token()
    options = {**DEMO_GATEWAY, **(gateway or {})}
    with serve_receiver(store) as receiver, serve_gateway(
        tokens=[token], ledger=ledger, webhook=receiver.url, **options
    ) as gw:
        results = send(plan, url=gw.message_url, token=token, journal=journal,
                       chunk_size=_CHUNK, progress=progress)  # fmt: skip
        done = gw.wait_reports(timeout=report_timeout)
        ledger_messages = len(gw.ledger_frame())
        requests = gw.request_count
    reports = read_status_reports(store)
    campaign = merge_status(results, reports)
    info = {
        "journal": journal, "store": store, "ledger": ledger, "requests": requests,
        "ledger_messages": ledger_messages, "reports": len(reports), "reports_complete": done,
    }  # fmt: skip
    return campaign, info


# -- outputs ---------------------------------------------------------------------------
def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    if "latency" in out.columns:
        out["latency_seconds"] = out["latency"].dt.total_seconds()
    return out


def write_outputs(
    campaign: pd.DataFrame, out_dir: str | Path, *, prices: dict[str, float] | None = None,
    title: str = "cmframe demo campaign", notes: list[str] | None = None,
) -> dict[str, Path]:  # fmt: skip
    """Write the campaign frame (parquet + CSV), the HTML report and the charts (PNG)."""
    from matplotlib.figure import Figure

    from . import plotting
    from .report import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["parquet"] = out / "campaign.parquet"
    campaign.to_parquet(paths["parquet"])
    paths["csv"] = out / "campaign.csv"
    _csv_safe(campaign).to_csv(paths["csv"], index_label="row")
    charts = {
        "outcomes": (lambda ax: plotting.plot_outcomes(campaign, by="custom_grouping", ax=ax), (9, 3)),
        "errors": (lambda ax: plotting.plot_errors(campaign, ax=ax), (9, 4)),
        "latency": (lambda ax: plotting.plot_latency(campaign, by="custom_grouping", ax=ax), (9, 4)),
        "timeline": (lambda ax: plotting.plot_timeline(campaign, ax=ax), (10, 4)),
    }
    if "custom_grouping" not in campaign.columns:
        charts["outcomes"] = (lambda ax: plotting.plot_outcomes(campaign, ax=ax), (9, 2))
        charts["latency"] = (lambda ax: plotting.plot_latency(campaign, ax=ax), (9, 4))
    for name, (draw, size) in charts.items():
        fig = Figure(figsize=size, layout="constrained")
        draw(fig.add_subplot())
        paths[name] = out / f"{name}.png"
        fig.savefig(paths[name], dpi=100)
    paths["report"] = write_report(campaign, out / "report.html", title=title, prices=prices,
                                   notes=notes or [])  # fmt: skip
    return paths


def run_demo(
    out_dir: str | Path = "demo-output",
    *,
    recipients: str | Path | pd.DataFrame | None = None,
    gateway: dict[str, Any] | None = None,
    progress: bool = False,
    echo=print,
) -> DemoResult:
    """Run the whole demo campaign and write ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Where the outputs go (created; earlier demo files are replaced).
    recipients : path or DataFrame, optional
        Default ``data/recipients.csv`` (or a built-in sample when missing).
    gateway : dict, optional
        Gateway options overriding :data:`DEMO_GATEWAY`.
    progress : bool
        Show the sender's progress bar.
    echo : callable
        Where progress lines go (``print``; ``lambda *a: None`` for silence).

    Returns
    -------
    DemoResult
    """
    from .report import format_headline, headline

    started = time.perf_counter()
    out = Path(out_dir)
    if isinstance(recipients, pd.DataFrame):
        frame, where = recipients, "the given frame"
    else:
        frame, where = load_recipients(recipients)
    echo(f"1/4 build: {len(frame):,} recipients from {where}")
    plan = build_plan(frame)
    invalid = int(plan["error_code"].notna().sum())
    echo(f"    plan: {len(plan) - invalid:,} valid rows, {invalid:,} invalid, "
         f"{int(plan['parts_estimate'][plan['error_code'].isna()].sum()):,} parts estimated")  # fmt: skip
    echo("2/4 send: embedded gateway and status-report receiver on 127.0.0.1, accelerated time")
    # a few recipients are on the account's blacklist: the gateway rejects them (402)
    numbers = plan["number"].dropna().drop_duplicates(keep=False)
    blacklist = frozenset(numbers.iloc[::400].tolist())
    gateway = {"blacklist": blacklist, **(gateway or {})}
    campaign, info = run_campaign(plan, out, gateway=gateway, progress=progress)
    echo(f"    {info['requests']} requests, {info['ledger_messages']:,} messages accepted by the "
         f"gateway, {info['reports']:,} status reports received")  # fmt: skip
    echo("3/4 analyse and chart")
    notes = [f"recipients: {where}",
             "sent to the embedded CM gateway on loopback (accelerated time); "
             "one request's connection was dropped after acceptance on purpose, and a few "
             "numbers are blacklisted"]  # fmt: skip
    paths = write_outputs(campaign, out, prices=DEMO_PRICES, notes=notes)
    paths.update({k: info[k] for k in ("journal", "store", "ledger")})
    head = headline(campaign, prices=DEMO_PRICES)
    seconds = time.perf_counter() - started
    echo(f"4/4 done in {seconds:.1f} s; outputs in {out.resolve()}/")
    width = max(len(k) for k in paths)
    for name, path in paths.items():
        echo(f"    {name:<{width}}  {path}")
    echo("headline: " + format_headline(head))
    if head.get("cost") is not None:
        echo(f"cost: €{head['cost']:,.2f} (predicted before sending €{head['predicted_cost']:,.2f})")
    echo(f"open {paths['report'].resolve()} in a browser for the full report")
    return DemoResult(out_dir=out, campaign=campaign, paths=paths, headline=head, seconds=seconds)


def main(argv: list[str] | None = None) -> int:
    """``cmframe demo``: run the demo campaign on loopback and write ``demo-output/``."""
    p = argparse.ArgumentParser(prog="cmframe demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    p.add_argument("--recipients", default=None, help="recipient CSV (default data/recipients.csv)")
    p.add_argument("--progress", action="store_true", help="show the sender's progress bar")
    args = p.parse_args(argv)
    from .exceptions import CMFrameError

    try:
        run_demo(args.out, recipients=args.recipients, progress=args.progress)
    except CMFrameError as exc:
        print(f"cmframe demo: {exc}", file=sys.stderr)
        return 1
    return 0
