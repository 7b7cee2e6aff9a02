"""report.html in a real headless Chromium: every embedded plot decodes and the summary table is there.

A copy of the report gets a small script that, once the page has loaded, writes what the browser
sees (each image's naturalWidth, the tables) into the page as JSON; ``chromium --dump-dom`` prints
the page and the test reads that JSON back. No driver or extra package is needed.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import TRIALS, missing_environment, write_mixed_statuses, write_optuna_sweep
from sweeplab.report.build import write_report

pytestmark = pytest.mark.slow

PROBE = """<script>
window.addEventListener("load", () => {
  const summaries = [...document.querySelectorAll("table.summary")];
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    images: [...document.images].map(img => ({complete: img.complete, naturalWidth: img.naturalWidth})),
    tables: document.querySelectorAll("table").length,
    summaries: summaries.map(table => ({rows: table.tBodies[0].rows.length, text: table.innerText})),
  });
  document.body.appendChild(probe);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        missing_environment("Chromium is not installed: `make test-deps` installs it (Debian package chromium)")
    return found


def seen_by_browser(page: Path, profile: Path) -> dict:
    """Load ``page`` in headless Chromium and return what the probe script saw."""
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    probe = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert probe, f"the probe script did not run; chromium printed:\n{result.stdout[:2000]}\n{result.stderr[-2000:]}"
    return json.loads(html.unescape(probe.group(1)))


def test_every_plot_loads_and_the_summary_tables_are_shown(tmp_path):
    grid, study, out = tmp_path / "lr", tmp_path / "study", tmp_path / "report"
    write_mixed_statuses(grid)
    write_optuna_sweep(study, ["maximize"], [values for _, values in TRIALS])
    report = write_report([grid, study], out)
    pngs = [path for path in report.files if path.suffix == ".png"]
    assert {"optuna_history_study.png", "optuna_importance_study.png", "curves_lr.png", "accuracy_vs_lr.png"} <= {
        path.name for path in pngs}
    page = tmp_path / "probed.html"
    page.write_text((out / "report.html").read_text().replace("</body>", PROBE + "\n</body>"))

    seen = seen_by_browser(page, tmp_path / "chromium-profile")

    assert len(seen["images"]) == len(pngs)
    assert all(image["complete"] and image["naturalWidth"] > 0 for image in seen["images"]), seen["images"]
    assert [summary["rows"] for summary in seen["summaries"]] == [2, len(TRIALS)]  # lr: 2 configs; study: 1 per trial
    assert "vs best" in seen["summaries"][0]["text"] and "0.820 ± 0.028" in seen["summaries"][0]["text"]
    assert seen["tables"] >= 5  # status, two summaries, bests, jobs
