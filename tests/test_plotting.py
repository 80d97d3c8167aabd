"""Charts: each returns its Axes, draws on ax=, and keeps one colour per outcome."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from test_analysis_fixtures import KINDS, make_campaign, make_plan, make_results  # noqa: E402

import cmframe  # noqa: E402,F401
from cmframe import analysis  # noqa: E402
from cmframe.exceptions import SpecError  # noqa: E402
from cmframe.plotting import OUTCOME_COLORS, SOURCE_COLORS  # noqa: E402

CAMPAIGN = make_campaign(list(KINDS) * 6, seed=2)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend(ax) -> dict[str, str]:
    legend = ax.get_legend()
    return {
        t.get_text(): to_hex(h.get_facecolor() if hasattr(h, "get_facecolor") else h.get_color())
        for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)
    }


def test_plot_outcomes_stacks_to_100_percent_with_outcome_colours():
    ax = CAMPAIGN.cm.plot_outcomes(by="custom_grouping")
    assert ax.get_title() == "Outcomes by custom_grouping"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B"]
    bars = [p for p in ax.patches]
    # per group bar, the segments' widths add up to 100 %
    ends = {}
    for p in bars:
        y = round(p.get_y() + p.get_height() / 2)
        ends[y] = max(ends.get(y, 0), p.get_x() + p.get_width())
    assert all(v == pytest.approx(100) for v in ends.values())
    legend = _legend(ax)
    for name, color in legend.items():
        key = next(k for k, label in analysis.OUTCOME_LABELS.items() if label == name)
        assert color == OUTCOME_COLORS[key]
    assert "delivered" in legend and "not sent" in legend
    # percentages are written on the wide segments
    assert any(t.get_text().endswith("%") for t in ax.texts)


def test_plot_outcomes_counts_and_given_axes():
    fig, (a1, a2) = plt.subplots(1, 2)
    got = make_plan(list(KINDS)).cm.plot_outcomes(ax=a2, normalize=False)
    assert got is a2 and not a1.patches
    widths = sorted(p.get_width() for p in a2.patches)
    assert widths == [1, 9]  # invalid, planned
    assert a2.get_xlabel() == "rows"
    assert to_hex(a2.patches[0].get_facecolor()) == OUTCOME_COLORS["planned"]


def test_plot_errors_colours_by_source_and_labels_descriptions():
    ax = CAMPAIGN.cm.plot_errors()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any(lbl.startswith("gateway 402: Message has been blacklisted") for lbl in labels)
    assert any(lbl.startswith("delivery 1: Unknown subscriber") for lbl in labels)
    colors = {to_hex(p.get_facecolor()) for p in ax.patches}
    assert colors == set(SOURCE_COLORS.values())
    assert SOURCE_COLORS["delivery"] == OUTCOME_COLORS["failed"]
    # bar lengths equal the counts of analysis.errors
    table = analysis.errors(CAMPAIGN)
    assert sorted(p.get_width() for p in ax.patches) == sorted(table["count"].astype(float))


def test_plot_errors_by_group_and_without_errors():
    ax = CAMPAIGN.cm.plot_errors(by="custom_grouping", top=3)
    assert len(ax.get_yticklabels()) == 3
    assert ax.get_legend().get_title().get_text() == "custom_grouping"
    clean = make_plan(["delivered"] * 4).cm.plot_errors()
    assert [t.get_text() for t in clean.texts] == ["no errors"]


def test_plot_latency_ecdf_reaches_100_percent():
    ax = CAMPAIGN.cm.plot_latency(by="custom_grouping")
    lines = [ln for ln in ax.get_lines() if ln.get_label().startswith(("A", "B"))]
    assert len(lines) == 2
    delivered = (analysis.outcome(CAMPAIGN) == "delivered").groupby(CAMPAIGN["custom_grouping"]).sum()
    for line in lines:
        y = line.get_ydata()
        assert y[-1] == pytest.approx(100) and np.all(np.diff(y) >= 0)
        group = line.get_label()[0]
        assert f"n={delivered[group]}" in line.get_label()
    assert ax.get_xlabel().startswith("latency (")


def test_plot_latency_before_reports_says_so():
    ax = make_results(list(KINDS)).cm.plot_latency()
    assert [t.get_text() for t in ax.texts] == ["no latency measured yet"]


def _bars(ax):
    return [p for container in ax.containers for p in container]


def test_plot_timeline_counts_final_reports():
    ax = CAMPAIGN.cm.plot_timeline(freq="30s")
    heights = sum(p.get_height() for p in _bars(ax))
    final = analysis.outcome(CAMPAIGN).isin(["delivered", "failed", "rejected"])
    final &= CAMPAIGN["final_report_at"].notna()
    assert heights == final.sum()
    colors = {to_hex(p.get_facecolor()) for p in _bars(ax) if p.get_height() > 0}
    assert colors == {OUTCOME_COLORS[o] for o in ("delivered", "failed", "rejected")}
    assert "per 30s" in ax.get_xlabel()
    assert "sending" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_timeline_on_results_and_reports_frames():
    res = make_results(list(KINDS) * 2)
    ax = res.cm.plot_timeline()
    assert sum(p.get_height() for p in _bars(ax)) == res["sent_at"].notna().sum()
    reports = pd.DataFrame(
        {
            "to": ["0031600000001"] * 3,
            "reference": ["r"] * 3,
            "status_code": [0, 2, 3],
            "status": ["accepted", "delivered", "failed"],
            "error_code": [0, 0, 1],
            "error_description": ["", "", "Unknown subscriber"],
            "operator": ["KPN"] * 3,
            "received_at": pd.to_datetime(["2026-11-29 08:00:01", "2026-11-29 08:00:05",
                                           "2026-11-29 08:01:30"], utc=True),  # fmt: skip
            "source": ["test"] * 3,
        }
    )
    ax = cmframe.plotting.plot_timeline(reports)
    assert sum(p.get_height() for p in _bars(ax)) == 3
    assert "status reports" in ax.get_title()
    with pytest.raises(SpecError, match="send it first"):
        make_plan(list(KINDS)).cm.plot_timeline()


def test_charts_save_to_png(tmp_path):
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    CAMPAIGN.cm.plot_outcomes(by="channel", ax=axes[0, 0])
    CAMPAIGN.cm.plot_errors(ax=axes[0, 1])
    CAMPAIGN.cm.plot_latency(ax=axes[1, 0])
    CAMPAIGN.cm.plot_timeline(ax=axes[1, 1])
    path = tmp_path / "all.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
