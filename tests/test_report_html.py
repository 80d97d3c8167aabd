"""The HTML campaign report: self-contained, rendered by headless Chromium.

Chromium is Debian's package, installed by ``make test``'s set-up (``make chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_analysis_fixtures import KINDS, make_campaign, make_plan, make_results

from cmframe import report
from cmframe.plotting import OUTCOME_COLORS

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)  # fmt: skip

# Injected into a *copy* of the report only: records how each image decoded.
PROBE = """<script>
window.addEventListener('load', () => {
  for (const img of document.images) {
    img.setAttribute('data-natural-width', String(img.naturalWidth));
    img.setAttribute('data-complete', String(img.complete));
  }
  document.body.setAttribute('data-probed', 'yes');
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is missing: `make chromium` (part of `make test`) installs it"
    return found


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=120, check=False)


class _DOM(HTMLParser):
    """Collects data-metric texts and image attributes from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self.body: dict[str, str] = {}
        self._metric: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(attrs)
        if tag == "body":
            self.body = attrs
        if "data-metric" in attrs:
            self._metric = attrs["data-metric"]
            self.metrics[self._metric] = ""

    def handle_endtag(self, tag):
        self._metric = None

    def handle_data(self, data):
        if self._metric:
            self.metrics[self._metric] += data


@pytest.fixture(scope="module")
def campaign() -> pd.DataFrame:
    return make_campaign(list(KINDS) * 30, seed=5)


@pytest.fixture(scope="module")
def rendered(campaign, tmp_path_factory) -> Path:
    """The report of the campaign, rendered once for the tests below."""
    return report.write_report(campaign, tmp_path_factory.mktemp("report") / "report.html",
                               title="Spring campaign", prices={"NL": 0.07, "*": 0.1})  # fmt: skip


def test_report_is_self_contained(rendered):
    text = rendered.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # no external resource of any kind: every src is a data URI, no script, no link
    srcs = re.findall(r'src="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in text and "<link" not in text and "url(" not in text
    assert 'data-metric="delivered">60<' in text


def test_chromium_renders_headline_figures_and_images(tmp_path, campaign, rendered):
    probe = tmp_path / "probe.html"
    probe.write_text(rendered.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                     encoding="utf-8")  # fmt: skip
    done = _run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    dom = _DOM()
    dom.feed(done.stdout.decode("utf-8"))
    assert dom.body.get("data-probed") == "yes", "the page did not finish loading"
    head = report.headline(campaign)
    expected = {
        "rows": f"{head['rows']:,}",
        "delivered": f"{head['delivered']:,}",
        "accepted": f"{head['accepted']:,}",
        "invalid": f"{head['invalid']:,}",
        "unknown": f"{head['unknown']:,}",
        "delivery_rate": f"{head['delivery_rate']:.1%}",
        "attention": f"{(campaign.pipe(report.analysis.attention)).shape[0]:,}",
    }
    for metric, value in expected.items():
        assert dom.metrics.get(metric, "").strip() == value, metric
    # every chart decoded into a real image
    assert len(dom.images) >= 5
    for img in dom.images:
        assert img["data-complete"] == "true" and int(img["data-natural-width"]) > 300, img["alt"]
    alts = {img["alt"] for img in dom.images}
    assert {"Outcomes of all rows", "Error codes", "Delivery latency",
            "Outcomes over time"} <= alts  # fmt: skip


def test_chromium_screenshot_shows_the_charts(tmp_path, rendered):
    import matplotlib.image as mpimg

    path = rendered
    shot = tmp_path / "shot.png"
    done = _run_chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}",
                         path.as_uri())  # fmt: skip
    assert done.returncode == 0 and shot.exists(), done.stderr.decode(errors="replace")[-2000:]
    pixels = (mpimg.imread(shot)[..., :3] * 255).round().astype(int)
    colours = {tuple(p) for p in pixels.reshape(-1, 3)[::7]}
    for outcome in ("delivered", "failed", "rejected"):
        rgb = tuple(int(OUTCOME_COLORS[outcome][i:i + 2], 16) for i in (1, 3, 5))
        near = np.abs(np.array(list(colours)) - rgb).sum(axis=1).min()
        assert near <= 6, f"no {outcome} colour on screen"


def test_report_of_a_plan_and_of_results(tmp_path):
    plan = make_plan(list(KINDS) * 3)
    plan_html = report.render_report(plan, prices={"*": 0.1})
    parts = int(plan.loc[plan["error_code"].isna(), "parts_estimate"].sum())  # 27 valid rows
    assert parts > 27  # some rows take two parts
    assert f'data-metric="cost">€{parts * 0.1:.2f}<' in plan_html
    assert 'data-metric="delivered"' not in plan_html and "Over time" not in plan_html
    res_html = report.render_report(make_results(list(KINDS) * 3))
    assert 'data-metric="accepted">15<' in res_html
    assert "Delivery latency" not in res_html and "Over time" in res_html


def test_cli_writes_report_from_a_saved_frame(tmp_path, campaign, capsys):
    saved = tmp_path / "campaign.parquet"
    campaign.to_parquet(saved)
    out = tmp_path / "out" / "report.html"
    code = report.main([str(saved), "--out", str(out), "--price", "NL=0.07", "--price", "*=0.1",
                        "--by", "custom_grouping"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed and "60 delivered (33.3%)" in printed
    text = out.read_text(encoding="utf-8")
    assert "By custom_grouping" in text and "By country" not in text
    assert report.main([str(tmp_path / "missing.cmjournal"), "--out", str(out)]) == 2
    assert report.main([str(saved), "--price", "NL=abc"]) == 2
