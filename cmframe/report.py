"""A self-contained HTML campaign report, and the ``cmframe report`` command.

One file, no external resources: the charts are embedded as base64 PNG, the
style sheet is inline, there is no script. It shows the headline numbers, the
charts of :mod:`cmframe.plotting`, the tables of :mod:`cmframe.analysis` and
the rows that need a decision (invalid, rejected, unknown, not sent, failed).

Each headline figure carries ``data-metric="NAME"`` so tools (and the tests)
can find it in the page.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import analysis, plotting
from .exceptions import CMFrameError, SpecError

__all__ = ["headline", "format_headline", "render_report", "write_report", "load_campaign", "main"]

_DEFAULT_BY = ("reference", "custom_grouping", "channel", "country")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.meta{color:#666;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1.2rem 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.6rem 1rem;min-width:8.5rem;
border-top:5px solid var(--c,#999)}
.card .value{font-size:1.6rem;font-weight:600}.card .label{color:#555;font-size:.85rem}
.card .sub{color:#777;font-size:.8rem}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f5f5f5}td.text,th.text{text-align:left}
figure{margin:1rem 0}figure img{max-width:100%;height:auto}
figcaption{color:#666;font-size:.85rem}
.note{color:#666;font-size:.85rem}.scroll{overflow-x:auto}
"""


# -- numbers -------------------------------------------------------------------------
def _num(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    if isinstance(value, float | np.floating) and not float(value).is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _pct(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.1%}"


def _duration(value: Any) -> str:
    if value is None or pd.isna(value):
        return "–"
    seconds = pd.Timedelta(value).total_seconds()
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def headline(
    df: pd.DataFrame,
    *,
    prices: Mapping[str, float] | pd.Series | None = None,
    summary: pd.DataFrame | None = None,
    latency: pd.DataFrame | None = None,
) -> dict:
    """Return the headline figures of a campaign (plain Python values).

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.
    prices : mapping or Series, optional
        Price per part by region, as for :func:`cmframe.analysis.summary`.
    summary, latency : DataFrame, optional
        ``analysis.summary(df, prices=prices)`` and ``analysis.latency(df)`` when
        the caller has them already (the report shows them as tables too).

    Returns
    -------
    dict
        ``stage``, the counts of :func:`cmframe.analysis.summary` (``None`` for
        stages not run), ``accept_rate``, ``delivery_rate``, ``parts``,
        ``parts_estimate``, ``cost``/``predicted_cost`` with prices, and
        ``median_latency`` (a Timedelta or ``None``); for a campaign also
        ``reconciled``: rows sent with an unknown outcome that status reports settled.
    """
    table = analysis.summary(df, prices=prices) if summary is None else summary
    out: dict[str, Any] = {"stage": analysis.stage(df)}
    for name in table.columns:  # column by column: keeps integers integers
        value = table[name].iloc[0]
        out[str(name)] = None if pd.isna(value) else value.item() if hasattr(value, "item") else value
    if out["stage"] == "campaign":
        # rows the sender left "unknown" whose status reports settled the outcome
        unknown = df["status"].astype("string").eq("unknown").fillna(False).to_numpy()
        out["reconciled"] = int((unknown & (analysis.outcome(df) != "unknown").to_numpy()).sum())
    lat = (analysis.latency(df) if latency is None else latency).iloc[0]
    out["median_latency"] = None if pd.isna(lat["p50"]) else lat["p50"]
    return out


def _cards(head: dict, currency: str) -> str:
    stage = head["stage"]
    items: list[tuple[str, str, str, str, str]] = []  # metric, label, value, sub, colour

    def add(metric: str, label: str, value: str, sub: str = "", colour: str = "#999") -> None:
        items.append((metric, label, value, sub, colour))

    c = plotting.OUTCOME_COLORS
    add("rows", "recipients", _num(head["rows"]), f"{_num(head['valid'])} valid", "#1565c0")
    add("invalid", "invalid", _num(head["invalid"]), "never sent", c["invalid"])
    if stage != "plan":
        add("accepted", "accepted by the gateway", _num(head["accepted"]),
            f"{_pct(head['accept_rate'])} of valid", c["accepted"])  # fmt: skip
        add("rejected", "rejected", _num(head["rejected"]), "gateway or operator", c["rejected"])
        sub = "outcome to reconcile"
        if head.get("reconciled"):
            sub = f"{head['reconciled']:,} more settled by status reports"
        add("unknown", "unknown", _num(head["unknown"]), sub, c["unknown"])
        if head.get("not_sent"):
            add("not_sent", "not sent", _num(head["not_sent"]), "campaign stopped", c["not_sent"])
    if stage == "campaign":
        add("delivered", "delivered", _num(head["delivered"]),
            f"{_pct(head['delivery_rate'])} of accepted", c["delivered"])  # fmt: skip
        add("delivery_rate", "delivery rate", _pct(head["delivery_rate"]), "delivered / accepted",
            c["delivered"])  # fmt: skip
        add("failed", "failed", _num(head["failed"]), "", c["failed"])
        add("pending", "pending", _num(head["pending"]), "no final report yet", c["pending"])
        add("median_latency", "median latency", _duration(head["median_latency"]),
            "delivered rows", c["delivered"])  # fmt: skip
    if stage == "plan":
        add("parts_estimate", "parts (estimated)", _num(head["parts_estimate"]), "valid rows")
    else:
        add("parts", "parts sent", _num(head["parts"]),
            f"{_num(head['parts_estimate'])} estimated")  # fmt: skip
    if "predicted_cost" in head:
        value = head["predicted_cost"] if stage == "plan" else head["cost"]
        label = "predicted cost" if stage == "plan" else "cost"
        text = "–" if value is None else f"{currency}{value:,.2f}"
        add("cost", label, text, "" if stage == "plan" else
            f"predicted {currency}{head['predicted_cost'] or 0:,.2f}")  # fmt: skip
    cards = [
        f'<div class="card" style="--c:{colour}"><div class="value" data-metric="{m}">'
        f'{html.escape(v)}</div><div class="label">{html.escape(lbl)}</div>'
        f'<div class="sub">{html.escape(sub)}</div></div>'
        for m, lbl, v, sub, colour in items
    ]
    return '<div class="cards">' + "".join(cards) + "</div>"


# -- charts and tables -----------------------------------------------------------------
def _png(draw, *, size: tuple[float, float], alt: str, caption: str = "") -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"{cap}</figure>")  # fmt: skip


def _format_cell(value: Any, column: str) -> str:
    if value is None or (not isinstance(value, str) and np.ndim(value) == 0 and pd.isna(value)):
        return "–"
    if isinstance(value, pd.Timedelta):
        return _duration(value)
    if column.endswith("_rate") or column in ("share", "rate"):
        return _pct(value)
    if column.endswith("cost"):
        return f"{float(value):,.2f}"
    if isinstance(value, int | np.integer | float | np.floating) and not isinstance(value, bool):
        return _num(value)
    return str(value)


def _table(frame: pd.DataFrame, *, index: bool = True, limit: int | None = None) -> str:
    shown = frame if limit is None else frame.head(limit)
    if index:
        shown = shown.reset_index()
        shown.columns = [
            ("group" if str(c) == "index" else str(c)) for c in shown.columns
        ]
    cols = [str(c) for c in shown.columns]
    numeric = {c for c in cols if pd.api.types.is_numeric_dtype(shown[c])
               or pd.api.types.is_timedelta64_dtype(shown[c])}  # fmt: skip
    head = "".join(
        f'<th class="{"" if c in numeric else "text"}">{html.escape(c)}</th>' for c in cols
    )
    body = []
    for row in shown.itertuples(index=False, name=None):
        cells = "".join(
            f'<td class="{"" if c in numeric else "text"}">{html.escape(_format_cell(v, c))}</td>'
            for c, v in zip(cols, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    more = ""
    if limit is not None and len(frame) > limit:
        more = f'<p class="note">… and {len(frame) - limit:,} more rows.</p>'
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>{more}")


def _useful_keys(df: pd.DataFrame, by: Sequence[str] | None) -> list[str]:
    if by is not None:
        return [by] if isinstance(by, str) else list(by)
    keys = []
    for name in _DEFAULT_BY:
        try:
            values = analysis.group_keys(df, name)[0]
        except CMFrameError:
            continue
        distinct = values.nunique(dropna=True)
        minimum = 1 if name in ("reference", "custom_grouping") else 2
        if minimum <= distinct <= 50:
            keys.append(name)
    return keys


def _derivable(df: pd.DataFrame, name: str) -> bool:
    return {"country": "number", "channel": "channels"}[name] in df.columns


def render_report(
    df: pd.DataFrame,
    *,
    title: str = "Campaign report",
    by: str | Sequence[str] | None = None,
    prices: Mapping[str, float] | pd.Series | None = None,
    currency: str = "€",
    attention_limit: int = 500,
    notes: Sequence[str] = (),
) -> str:
    """Render a campaign (or a plan, or send results) as one self-contained HTML page.

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.
    title : str
        Page title.
    by : str or list of str, optional
        Group keys of the per-group tables and charts; by default those of
        ``reference``, ``custom_grouping``, ``channel`` and ``country`` that
        split the campaign into at most 50 groups.
    prices : mapping or Series, optional
        Price per part by region, as for :func:`cmframe.analysis.summary`.
    currency : str
        Symbol shown before costs.
    attention_limit : int
        At most this many rows needing attention are listed (their count is
        always given).
    notes : sequence of str
        Extra lines shown under the title (e.g. the sources read).

    Returns
    -------
    str
        The HTML document.
    """
    stage = analysis.stage(df)
    # derive the computed group keys once (country, channel), not in every table and chart
    derived = {name: analysis.group_keys(df, name)[0] for name in ("country", "channel")
               if name not in df.columns and _derivable(df, name)}  # fmt: skip
    df = df.assign(**derived) if derived else df
    keys = _useful_keys(df, by)
    overall, overall_latency = analysis.summary(df, prices=prices), analysis.latency(df)
    head = headline(df, prices=prices, summary=overall, latency=overall_latency)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    stage_text = {"plan": "plan (not sent yet)", "results": "send results (no status reports "
                  "merged)", "campaign": "campaign with status reports"}[stage]  # fmt: skip
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{len(df):,} rows · {html.escape(stage_text)} · generated {generated}'
        " by cmframe</p>",
    ]
    parts += [f'<p class="meta">{html.escape(n)}</p>' for n in notes]
    parts.append('<h2 id="headline">Headline</h2>')
    parts.append(_cards(head, currency))

    parts.append('<h2 id="outcomes">Outcomes</h2>')
    parts.append(_png(lambda ax: plotting.plot_outcomes(df, ax=ax), size=(9, 1.9),
                      alt="Outcomes of all rows"))  # fmt: skip
    for key in keys:
        n = analysis.group_keys(df, key)[0].nunique(dropna=False)
        parts.append(_png(lambda ax, key=key: plotting.plot_outcomes(df, by=key, ax=ax),
                          size=(9, 1.3 + 0.4 * n), alt=f"Outcomes by {key}"))  # fmt: skip
    parts.append("<h3>Summary</h3>")
    parts.append(_table(overall))
    for key in keys:
        parts.append(f"<h3>By {html.escape(key)}</h3>")
        parts.append(_table(analysis.summary(df, by=key, prices=prices)))

    parts.append('<h2 id="errors">Errors</h2>')
    err = analysis.errors(df)
    if err.empty:
        parts.append('<p class="note">No error codes.</p>')
    else:
        parts.append(_png(lambda ax: plotting.plot_errors(df, ax=ax),
                          size=(9, 1.3 + 0.4 * min(len(err), 10)), alt="Error codes"))  # fmt: skip
        parts.append(_table(err, index=False))
        if keys:
            parts.append(f"<h3>By {html.escape(keys[0])}</h3>")
            parts.append(_table(analysis.errors(df, by=keys[0]), index=False, limit=100))

    if stage == "campaign":
        parts.append('<h2 id="latency">Delivery latency</h2>')
        lat_key = keys[0] if keys else None
        parts.append(_png(lambda ax: plotting.plot_latency(df, by=lat_key, ax=ax), size=(9, 4),
                          alt="Delivery latency"))  # fmt: skip
        parts.append(_table(overall_latency))
        for key in keys:
            parts.append(f"<h3>By {html.escape(key)}</h3>")
            parts.append(_table(analysis.latency(df, by=key)))
    if stage != "plan":
        parts.append('<h2 id="timeline">Over time</h2>')
        parts.append(_png(lambda ax: plotting.plot_timeline(df, ax=ax), size=(9, 3.6),
                          alt="Outcomes over time"))  # fmt: skip

    parts.append('<h2 id="attention">Rows needing attention</h2>')
    att = analysis.attention(df)
    if att.empty:
        parts.append('<p class="note" data-metric="attention">0 rows need attention.</p>')
    else:
        counts = att["outcome"].value_counts()
        listed = ", ".join(f"{n:,} {analysis.OUTCOME_LABELS.get(o, o)}" for o, n in counts.items())
        parts.append(f'<p><span data-metric="attention">{len(att):,}</span> rows need a '
                     f"decision: {html.escape(listed)}.</p>")  # fmt: skip
        parts.append(_table(att, limit=attention_limit))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(df: pd.DataFrame, path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`render_report` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(df, **kwargs), encoding="utf-8")
    return path


# -- loading -------------------------------------------------------------------------
def _first_frame(value: Any) -> pd.DataFrame:
    # reader functions may return (frame, rejects) pairs
    if isinstance(value, tuple):
        value = value[0]
    if not isinstance(value, pd.DataFrame):
        raise SpecError(f"expected a DataFrame, got {type(value).__name__}")
    return value


def load_campaign(source: str | Path, reports: Sequence[str | Path] = ()) -> pd.DataFrame:
    """Load a campaign from a send journal (or a saved frame) and status-report sources.

    Parameters
    ----------
    source : str or Path
        A send journal (``read_journal``), or a plan/results/campaign frame
        saved as ``.parquet`` or ``.csv``.
    reports : sequence of str or Path
        Status-report sources for ``read_status_reports`` (receiver store,
        export files, folders of bodies); merged into the results.

    Returns
    -------
    pandas.DataFrame
    """
    path = Path(source)
    if not path.exists():
        raise SpecError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix == ".csv":
        frame = pd.read_csv(path, dtype={"number": "string", "to": "string"})
        for col in ("sent_at", "first_report_at", "final_report_at"):
            if col in frame.columns:
                frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
        if "latency" in frame.columns:
            frame["latency"] = pd.to_timedelta(frame["latency"])
    else:
        from .journal import read_journal

        frame = _first_frame(read_journal(path))
    if reports:
        from .reports import merge_status, read_status_reports

        read = [_first_frame(read_status_reports(r)) for r in reports]
        merged_reports = pd.concat(read, ignore_index=True) if len(read) > 1 else read[0]
        frame = _first_frame(merge_status(frame, merged_reports))
    return frame


# -- command line ----------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cmframe report",
        description="Write a self-contained HTML campaign report from a send journal "
        "(or a saved .parquet/.csv frame) and status-report sources.",
    )
    p.add_argument("journal", help="send journal, or a plan/results/campaign .parquet/.csv")
    p.add_argument("--reports", nargs="*", default=[], metavar="SOURCE",
                   help="status-report sources: receiver store, export CSV, folder of bodies")  # fmt: skip
    p.add_argument("--out", default="report.html", help="output file (default report.html)")
    p.add_argument("--title", default="Campaign report")
    p.add_argument("--by", action="append", default=None,
                   help="group key for the per-group sections (repeatable)")  # fmt: skip
    p.add_argument("--price", action="append", default=[], metavar="REGION=PRICE",
                   help="price per part, e.g. NL=0.07 or *=0.09 (repeatable)")  # fmt: skip
    p.add_argument("--currency", default="€")
    return p


def _prices(items: Sequence[str]) -> dict[str, float] | None:
    prices = {}
    for item in items:
        region, sep, value = item.partition("=")
        if not sep:
            raise SpecError(f"--price expects REGION=PRICE, got {item!r}")
        try:
            prices[region.strip().upper() if region.strip() != "*" else "*"] = float(value)
        except ValueError:
            raise SpecError(f"--price {item!r}: {value!r} is not a number") from None
    return prices or None


def main(argv: list[str] | None = None) -> int:
    """``cmframe report``: write the HTML report; print where and the headline numbers."""
    args = _parser().parse_args(argv)
    try:
        prices = _prices(args.price)
        frame = load_campaign(args.journal, args.reports)
        notes = [f"source: {args.journal}"] + [f"status reports: {r}" for r in args.reports]
        path = write_report(frame, args.out, title=args.title, by=args.by, prices=prices,
                            currency=args.currency, notes=notes)  # fmt: skip
    except CMFrameError as exc:
        print(f"cmframe report: {exc}", file=sys.stderr)
        return 2
    head = headline(frame, prices=prices)
    print(f"report written to {path.resolve()}")
    print(format_headline(head))
    return 0


def format_headline(head: dict) -> str:
    """One line of headline numbers for a terminal."""
    bits = [f"{_num(head['rows'])} rows", f"{_num(head['invalid'])} invalid"]
    if head["stage"] != "plan":
        bits += [f"{_num(head['accepted'])} accepted", f"{_num(head['rejected'])} rejected",
                 f"{_num(head['unknown'])} unknown"]  # fmt: skip
    if head["stage"] == "campaign":
        if head.get("reconciled"):
            bits.append(f"{_num(head['reconciled'])} unknown at send time settled by reports")
        bits += [f"{_num(head['delivered'])} delivered ({_pct(head['delivery_rate'])})",
                 f"{_num(head['failed'])} failed", f"{_num(head['pending'])} pending",
                 f"median latency {_duration(head['median_latency'])}"]  # fmt: skip
    parts = head["parts_estimate"] if head["stage"] == "plan" else head["parts"]
    bits.append(f"{_num(parts)} parts")
    return ", ".join(bits)
