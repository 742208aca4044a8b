"""The monitoring report really renders in headless Chromium, from a file, with the network cut off: every
plot is drawn at a visible size, and a screenshot of the page is not blank."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from liveml.monitoring.report import render_html
from tests.browser import require_chromium, run_chromium
from tests.unit.monitoring.test_report import GENERATED, churn_window

pytest.importorskip("matplotlib")

#: added to a copy of the page (the report itself has no script): each plot's size as laid out
PROBE = """<script>
window.addEventListener("load", () => {
  const sizes = [...document.querySelectorAll("figure svg")].map((svg) => {
    const box = svg.getBoundingClientRect();
    return {width: box.width, height: box.height, section: svg.closest("[id]")?.id ?? null};
  });
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(sizes);
  document.body.appendChild(out);
});
</script>"""


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_chromium(url, profile, *extra, budget_ms=5000, offline=True)


@pytest.fixture
def chromium() -> str:
    return require_chromium("the monitoring report")


@pytest.mark.slow
def test_report_renders_its_plots_in_headless_chromium(chromium: str, tmp_path: Path) -> None:
    window = churn_window()
    page = render_html(window.result, window.profile, window.inputs, window.outputs, generated_at=GENERATED)
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")

    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    run = _chromium(probed.as_uri(), tmp_path / "profile-dom", "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, flags=re.DOTALL)
    assert found, f"the page did not load; DOM starts: {run.stdout[:500]!r}; stderr: {run.stderr[-800:]}"
    sizes = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(sizes) == window.plots, sizes
    small = [s for s in sizes if s["width"] < 300 or s["height"] < 100]
    assert not small, f"plots drawn too small or not at all: {small}"
    assert {s["section"] for s in sizes} >= {
        "input-age",
        "input-plan",
        "drift-over-time",
        "performance-over-time",
    }
    assert "Dataset drift: 2 of 4 input columns drifted" in run.stdout

    shot = tmp_path / "report.png"
    _chromium(
        report.as_uri(),
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1280,3000",  # tall enough for the summary and the first columns' plots
        "--hide-scrollbars",
    )
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "no screenshot was written"
    if keep := os.environ.get("LIVEML_SCREENSHOT_DIR"):  # to look at it
        shutil.copy(shot, Path(keep) / "monitoring-report.png")
    image = pytest.importorskip("PIL.Image").open(shot).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 24)
    assert colors is not None and len(colors) > 200, "the screenshot is (nearly) blank"
    # the plots' fills and lines: reference blue and current orange, drawn in many pixels
    blue = sum(n for n, (r, g, b) in colors if b > 140 and b - r > 40 and b - g > 20)
    orange = sum(n for n, (r, g, b) in colors if r > 180 and r - b > 60 and 90 < g < 180)
    assert blue > 5_000 and orange > 2_000, (blue, orange)
