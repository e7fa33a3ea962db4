"""Report figures and the Snakemake HTML report, opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import snakemake
from survival_framework import report
from survival_framework.contract import prediction_column
from survival_framework.models import MODEL_NAMES

MODELS = list(MODEL_NAMES)  # the registry: every model the test config enables


def test_read_benchmarks(tmp_path):
    (tmp_path / "cv/rsf").mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\n"
    (tmp_path / "cv/rsf/fold_0.tsv").write_text(header + "2.5\t0:00:02\t300.5\t900\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data/validate_data.tsv").write_text(header + "1.0\t0:00:01\tNA\tNA\n")
    (tmp_path / "data/empty.tsv").write_text("")
    bench = report.read_benchmarks(tmp_path)
    assert list(bench["job"]) == ["cv/rsf/fold_0", "data/validate_data"]
    assert list(bench["stage"]) == ["cv", "data"]
    assert bench["seconds"].tolist() == [2.5, 1.0]
    assert bench["max_rss_mb"].iloc[0] == 300.5 and np.isnan(bench["max_rss_mb"].iloc[1])
    report.plot_benchmarks(bench, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_calibration_of_the_true_survival_is_close_to_the_diagonal():
    rng = np.random.default_rng(0)
    n = 4000
    rate = np.exp(rng.normal(size=n)) / 100
    t = rng.exponential(1 / rate)
    c = rng.exponential(300, size=n)
    pred = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int)})
    pred[prediction_column(50)] = np.exp(-rate * 50)  # the true S(50 | x)
    cal = report.calibration_table({"true": pred}, [50.0], "time", "event", n_bins=10)
    assert len(cal) == 10 and cal["n"].sum() == n
    assert np.abs(cal["observed"] - cal["predicted"]).max() < 0.06
    assert cal["predicted"].is_monotonic_increasing


# --------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_time_dependent_brier_integrates_to_the_fold_ibs(test_workflow_run):
    """The report's Brier(t) per fold, integrated over the grid, is the fold job's IBS."""
    wd = test_workflow_run
    td = pd.read_csv(wd / "results/report/time_dependent_metrics.csv")
    assert set(td["model"]) == set(MODELS) and set(td["fold"]) == {0, 1, 2}
    for (model, fold), sub in td.groupby(["model", "fold"]):
        rec = json.loads((wd / f"results/cv/{model}/fold_{fold}/metrics.json").read_text())
        t, b = sub["time"].to_numpy(), sub["brier"].to_numpy()
        ibs = np.trapezoid(b, t) / (t[-1] - t[0])
        assert ibs == pytest.approx(rec["metrics"]["ibs"], rel=1e-9)
        assert sub["auc"].between(0, 1).all()
    for name in ["cv_metrics", "kaplan_meier", "time_auc", "time_brier", "calibration"]:
        assert (wd / f"results/report/{name}.png").read_bytes()[:4] == b"\x89PNG"
    bench = pd.read_csv(wd / "results/report/benchmarks.csv")
    assert {f"cv/{m}/fold_0" for m in MODELS} <= set(bench["job"])
    assert (bench["seconds"] > 0).all()


def _chromium() -> str | None:
    """Path of a Chromium binary; installs Debian's chromium if missing (CI machines)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=600, env=env)
        except (subprocess.SubprocessError, OSError):
            return None
    return shutil.which("chromium")


# Appended to a copy of the report: once React has drawn the landing page, the boxes of the
# leaderboard table and of the workflow graph, and whether the table hides columns.
_GEOMETRY = """<script>setTimeout(function () {
  var box = function (e) { var b = e.getBoundingClientRect();
    return {left: b.left, top: b.top, right: b.right, bottom: b.bottom}; };
  var table = document.querySelector("#app .document table");
  var graph = document.querySelector("#rulegraph canvas") || document.querySelector("#rulegraph");
  var out = document.createElement("pre"); out.id = "geometry";
  out.textContent = JSON.stringify({table: box(table), graph: box(graph),
    scroll: table.scrollWidth, client: table.clientWidth, width: window.innerWidth});
  document.body.appendChild(out); }, 3000);</script>"""


def _headless(browser: str, profile, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.integration
def test_report_opens_in_a_browser_and_shows_the_leaderboard(test_workflow_run, tmp_path):
    wd = test_workflow_run
    out = wd / "results/report.html"
    snakemake(wd, "--configfile", "config/test/config.yaml", "--report", str(out))
    html = out.read_text(encoding="utf-8")
    for category in ["1. Leaderboard", "2. Cross-validation", "4. Benchmarks"]:
        assert category in html
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed and apt-get could not install it")
    proc = _headless(browser, tmp_path / "profile", "--dump-dom", out.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    app = dom[dom.index('id="app"') :]  # what React rendered, not the embedded data
    assert "1. Leaderboard" in app and "5. Proportional hazards" in app
    # the landing page shows the leaderboard table: first rows are the ranked models
    table = app[app.index("Leaderboard (best uno_c first") :]
    cells = re.findall(r"<td>([^<]*)</td>", table)
    board = pd.read_csv(wd / "results/leaderboard.csv")
    shown = [c for c in cells if c in MODELS][: len(board)]
    assert shown == board["model"].tolist()
    # the landing page at 1400 x 1000: the table is whole (no hidden columns) and beside the
    # workflow graph, not on top of it
    probe = tmp_path / "report_probe.html"
    head, tail = html.rsplit("</body>", 1)  # the document's own end, not embedded data
    probe.write_text(head + _GEOMETRY + "</body>" + tail, encoding="utf-8")
    size = "--window-size=1400,1000"
    proc = _headless(browser, tmp_path / "profile", size, "--dump-dom", probe.as_uri())
    geometry = json.loads(re.search(r'<pre id="geometry">([^<]*)</pre>', proc.stdout)[1])
    table, graph = geometry["table"], geometry["graph"]
    assert table["right"] - table["left"] > 200 and table["bottom"] - table["top"] > 100
    assert geometry["scroll"] <= geometry["client"] + 1, geometry  # no column scrolled away
    assert table["right"] <= geometry["width"], geometry
    beside = table["right"] <= graph["left"] or graph["right"] <= table["left"]
    apart = table["bottom"] <= graph["top"] or graph["bottom"] <= table["top"]
    assert beside or apart, f"the leaderboard table overlaps the workflow graph: {geometry}"
