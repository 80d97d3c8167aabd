"""Campaign charts with matplotlib: outcomes, error codes, latency and a timeline.

Every chart takes a frame from any stage (see :mod:`cmframe.analysis`),
draws on ``ax=`` when given (or on a new figure), and returns the Axes. Each
outcome has one colour in every chart (:data:`OUTCOME_COLORS`), and error
codes take the colour of the outcome they cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import analysis
from .exceptions import SpecError

__all__ = [
    "OUTCOME_COLORS",
    "SOURCE_COLORS",
    "plot_outcomes",
    "plot_errors",
    "plot_latency",
    "plot_timeline",
]

#: One colour per outcome, the same in every chart (colour-blind-friendly-ish hues).
OUTCOME_COLORS: dict[str, str] = {
    "delivered": "#2e7d32",
    "accepted": "#64b5f6",
    "pending": "#fbc02d",
    "planned": "#1565c0",
    "failed": "#d32f2f",
    "rejected": "#ef6c00",
    "unknown": "#7b1fa2",
    "not_sent": "#9e9e9e",
    "invalid": "#5d4037",
}

#: Error sources take the colour of the outcome they cause.
SOURCE_COLORS: dict[str, str] = {
    "validation": OUTCOME_COLORS["invalid"],
    "gateway": OUTCOME_COLORS["rejected"],
    "delivery": OUTCOME_COLORS["failed"],
}

# status-report statuses on the timeline of a reports frame
_REPORT_STATUS_OUTCOME = {
    "accepted": "pending",
    "delivered": "delivered",
    "failed": "failed",
    "rejected": "rejected",
}
_GROUP_COLORS = ("#1f77b4", "#ff7f0e", "#17becf", "#bcbd22", "#e377c2", "#8c564b",
                 "#7f7f7f", "#9467bd", "#2ca02c", "#d62728")  # fmt: skip


def _axes(ax: Any, figsize: tuple[float, float]):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _label(value: Any) -> str:
    if isinstance(value, tuple):
        return " / ".join(_label(v) for v in value)
    return "(none)" if pd.isna(value) else str(value)


def _by_text(by: Any) -> str:
    names = [by] if isinstance(by, str) else list(by or [])
    return ", ".join(names)


# -- outcomes ------------------------------------------------------------------------
def plot_outcomes(
    df: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    ax: Any = None,
    normalize: bool = True,
    title: str | None = None,
):
    """Stacked horizontal bars of outcomes per group.

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.
    by : str or list of str, optional
        Group keys, as for :func:`cmframe.analysis.summary`; ``None`` draws one bar.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.
    normalize : bool
        Bars as percentages of each group's rows (default) or as row counts.
    title : str, optional
        Overrides the default title.

    Returns
    -------
    matplotlib.axes.Axes
    """
    out = analysis.outcome(df)
    keys = analysis.group_keys(df, by)
    if keys:
        labels = pd.MultiIndex.from_arrays([k.to_numpy() for k in keys]) if len(keys) > 1 \
            else pd.Index(keys[0].to_numpy())
        table = pd.crosstab(labels, out.to_numpy(), dropna=False)
    else:
        table = out.value_counts(sort=False).to_frame("all").T
    table = table.reindex(columns=list(analysis.OUTCOMES), fill_value=0)
    table = table.loc[:, table.sum() > 0]
    totals = table.sum(axis=1)
    values = table.div(totals.where(totals > 0), axis=0) * 100 if normalize else table
    ax = _axes(ax, (8, 1.2 + 0.45 * max(len(values), 1)))
    names = [_label(i) for i in values.index]
    y = np.arange(len(values))
    left = np.zeros(len(values))
    for name in values.columns:
        width = values[name].fillna(0).to_numpy(dtype=float)
        ax.barh(y, width, left=left, color=OUTCOME_COLORS[name],
                label=analysis.OUTCOME_LABELS[name], edgecolor="white", linewidth=0.5)  # fmt: skip
        share = table[name].to_numpy() / np.maximum(totals.to_numpy(), 1)
        for yi, (x0, w, s) in enumerate(zip(left, width, share, strict=True)):
            if s >= 0.06:  # label segments wide enough to hold a figure
                ax.text(x0 + w / 2, yi, f"{s:.0%}", ha="center", va="center",
                        fontsize=8, color="white")  # fmt: skip
        left += width
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("share of rows (%)" if normalize else "rows")
    if normalize:
        ax.set_xlim(0, 100)
    if by:
        ax.set_ylabel(_by_text(by))
    ax.set_title(title or (f"Outcomes by {_by_text(by)}" if by else "Outcomes"))
    if len(values.columns):
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax


# -- errors --------------------------------------------------------------------------
def _code_label(row: Any) -> str:
    desc = row.description if not pd.isna(row.description) else (
        row.example if not pd.isna(row.example) else "")  # fmt: skip
    desc = desc if len(desc) <= 42 else desc[:41] + "…"
    return f"{row.source} {row.code}: {desc}"


def plot_errors(
    df: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    ax: Any = None,
    top: int = 10,
    title: str | None = None,
):
    """Horizontal bars of the most frequent error codes (per group when ``by`` is given).

    Without ``by`` each bar takes the colour of the outcome its source causes
    (validation → invalid, gateway → rejected, delivery → failed); with ``by``
    the bars are stacked by group.

    Parameters
    ----------
    df : pandas.DataFrame
        A plan, result or campaign frame.
    by : str or list of str, optional
        Group keys, as for :func:`cmframe.analysis.errors`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.
    top : int
        How many codes to show (the most frequent overall).
    title : str, optional
        Overrides the default title.

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = analysis.errors(df, by=by)
    names = [c for c in table.columns if c not in analysis.ERRORS_COLUMNS]
    overall = analysis.errors(df) if names else table
    overall = overall.head(top)
    ax = _axes(ax, (8, 1.2 + 0.4 * max(len(overall), 1)))
    ax.set_title(title or (f"Error codes by {_by_text(by)}" if by else "Error codes"))
    ax.set_xlabel("rows")
    if overall.empty:
        ax.text(0.5, 0.5, "no errors", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        return ax
    labels = [_code_label(r) for r in overall.itertuples()]
    y = np.arange(len(overall))
    if not names:
        colors = [SOURCE_COLORS.get(s, "#555555") for s in overall["source"]]
        counts = overall["count"].to_numpy(dtype=float)
        ax.barh(y, counts, color=colors)
        for yi, (c, r) in enumerate(zip(counts, overall["rate"], strict=True)):
            ax.text(c, yi, f" {int(c)} ({r:.1%})", va="center", fontsize=8)
        ax.set_xlim(0, counts.max() * 1.25)
        handles = [
            _patch(SOURCE_COLORS[s], s) for s in SOURCE_COLORS if s in set(overall["source"])
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
                  frameon=False)  # fmt: skip
    else:
        key = table[names].apply(tuple, axis=1) if len(names) > 1 else table[names[0]]
        table = table.assign(_group=key.map(_label))
        wide = table.pivot_table(index=["source", "code"], columns="_group", values="count",
                                 aggfunc="sum", fill_value=0, observed=True)  # fmt: skip
        wide = wide.reindex(pd.MultiIndex.from_frame(overall[["source", "code"]]), fill_value=0)
        left = np.zeros(len(wide))
        for i, group in enumerate(wide.columns):
            width = wide[group].to_numpy(dtype=float)
            ax.barh(y, width, left=left, color=_GROUP_COLORS[i % len(_GROUP_COLORS)],
                    label=str(group))  # fmt: skip
            left += width
        ax.legend(title=_by_text(by), loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  fontsize=8, frameon=False)  # fmt: skip
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    return ax


def _patch(color: str, label: str):
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


# -- latency -------------------------------------------------------------------------
def _unit(seconds: np.ndarray) -> tuple[float, str]:
    top = float(np.nanmax(seconds)) if seconds.size else 0.0
    if top < 120:
        return 1.0, "s"
    if top < 7200:
        return 60.0, "min"
    return 3600.0, "h"


def plot_latency(
    df: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    ax: Any = None,
    outcomes: Sequence[str] | None = ("delivered",),
    title: str | None = None,
):
    """Empirical CDF of delivery latency (final report minus ``sent_at``) per group.

    Parameters
    ----------
    df : pandas.DataFrame
        A campaign frame (with ``latency``); earlier stages draw an empty chart
        that says no latency was measured yet.
    by : str or list of str, optional
        Group keys, as for :func:`cmframe.analysis.latency`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.
    outcomes : sequence of str or None
        Rows with these outcomes only (default delivered); ``None`` for all.
    title : str, optional
        Overrides the default title.

    Returns
    -------
    matplotlib.axes.Axes
    """
    seconds = analysis._latency_seconds(df)
    if outcomes is not None:
        seconds = seconds.where(analysis.outcome(df).isin(list(outcomes)).to_numpy())
    keys = analysis.group_keys(df, by)
    ax = _axes(ax, (8, 4))
    what = " and ".join(outcomes) if outcomes else "all"
    ax.set_title(title or (f"Delivery latency by {_by_text(by)}" if by else "Delivery latency"))
    ax.set_ylabel(f"share of {what} rows reached (%)")
    ax.set_ylim(0, 100)
    valid = seconds.dropna()
    if valid.empty:
        ax.set_xlabel("latency")
        ax.text(0.5, 0.5, "no latency measured yet", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
        return ax
    scale, unit = _unit(valid.to_numpy())
    frame = pd.DataFrame({"s": seconds.to_numpy()}, index=df.index)
    if keys:
        groups = frame.groupby(keys, sort=True, dropna=False, observed=True)["s"]
        items = [(_label(name), grp) for name, grp in groups]
    else:
        items = [(None, frame["s"])]
    for i, (name, values) in enumerate(items):
        x = np.sort(values.dropna().to_numpy()) / scale
        if not x.size:
            continue
        y = np.arange(1, x.size + 1) / x.size * 100
        color = OUTCOME_COLORS["delivered"] if name is None else _GROUP_COLORS[i % 10]
        label = None if name is None else f"{name} (n={x.size})"
        ax.step(np.r_[0, x], np.r_[0, y], where="post", color=color, label=label)
    median = float(np.median(valid.to_numpy())) / scale
    ax.axhline(50, color="#bbbbbb", linewidth=0.8, linestyle=":")
    ax.set_xlabel(f"latency ({unit}); overall median {median:.3g} {unit}")
    ax.set_xlim(left=0)
    if keys:
        ax.legend(title=_by_text(by), fontsize=8, frameon=False, loc="lower right")
    return ax


# -- timeline ------------------------------------------------------------------------
_FREQS = ("1s", "5s", "10s", "30s", "1min", "5min", "15min", "1h", "6h", "1D")


def _auto_freq(times: pd.Series, bins: int = 60) -> str:
    span = times.max() - times.min()
    for freq in _FREQS:
        if span / pd.Timedelta(freq) <= bins:
            return freq
    return "1D"


def _events(df: pd.DataFrame) -> tuple[pd.Series, pd.Series, str]:
    """(timestamps, outcome names, what they count) for the timeline."""
    if "received_at" in df.columns and "delivery_status" not in df.columns:
        status = df["status"].astype("string")
        names = status.map(_REPORT_STATUS_OUTCOME).fillna("unknown")
        return pd.to_datetime(df["received_at"], utc=True), names, "status reports"
    kind = analysis.stage(df)
    if kind == "plan":
        raise SpecError("a plan has no timeline yet: send it first (df.cm.send)")
    out = analysis.outcome(df).astype("string")
    if kind == "campaign":
        final = out.isin(["delivered", "failed", "rejected"]) & df["final_report_at"].notna()
        when = pd.to_datetime(df["final_report_at"], utc=True).where(final)
        return when, out.where(final), "final status reports"
    when = pd.to_datetime(df["sent_at"], utc=True)
    return when, out, "send outcomes"


def plot_timeline(
    df: pd.DataFrame,
    *,
    freq: str | None = None,
    ax: Any = None,
    title: str | None = None,
):
    """Outcomes over time: stacked bars of events per interval.

    A campaign frame counts final status reports (delivered / failed /
    rejected at ``final_report_at``), with the time the messages went out as a shaded
    span; a results frame counts send outcomes at ``sent_at``; a reports frame
    (``read_status_reports``) counts every report at ``received_at``.

    Parameters
    ----------
    df : pandas.DataFrame
        A result, campaign or status-report frame.
    freq : str, optional
        Interval (``"1min"``, ``"1h"``…); by default the smallest of a few
        round intervals that gives at most 60 bars.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.
    title : str, optional
        Overrides the default title.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.dates as mdates

    when, names, what = _events(df)
    frame = pd.DataFrame({"t": when.to_numpy(), "o": names.to_numpy()}).dropna()
    ax = _axes(ax, (9, 4))
    ax.set_title(title or f"Outcomes over time ({what})")
    if frame.empty:
        ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes)
        return ax
    freq = freq or _auto_freq(frame["t"])
    frame["bin"] = frame["t"].dt.floor(freq)
    table = pd.crosstab(frame["bin"], frame["o"])
    full = pd.date_range(table.index.min(), table.index.max(), freq=freq)
    table = table.reindex(full, fill_value=0)
    order = [o for o in analysis.OUTCOMES if o in table.columns]
    step = pd.Timedelta(freq)
    x = mdates.date2num(table.index.tz_convert("UTC").tz_localize(None).to_pydatetime())
    width = step / pd.Timedelta("1D") * 0.9
    bottom = np.zeros(len(table))
    for name in order:
        h = table[name].to_numpy(dtype=float)
        ax.bar(x, h, width=width, bottom=bottom, align="edge", color=OUTCOME_COLORS[name],
               label=analysis.OUTCOME_LABELS[name])  # fmt: skip
        bottom += h
    if what == "final status reports" and "sent_at" in df.columns:
        # when the messages went out: a shaded span (their counts would dwarf the reports)
        sent = pd.to_datetime(df["sent_at"], utc=True).dropna()
        if len(sent):
            first, last = (t.tz_convert("UTC").tz_localize(None) for t in (sent.min(), sent.max()))
            ax.axvspan(mdates.date2num(first), mdates.date2num(last) + width / 0.9,
                       color="#9e9e9e", alpha=0.2, linewidth=0, label="sending")  # fmt: skip
    ax.set_ylim(0, max(float(bottom.max()), 1.0) * 1.08)
    ax.xaxis_date()
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel(f"time (UTC), per {freq}")
    ax.set_ylabel(f"{what} per {freq}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax
