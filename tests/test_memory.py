"""Peak memory of each heavy stage at 1M rows stays under the memory model.

A real Snakemake run on the production generator's 1,000,000-row table (generated here, a few
seconds): ``validate_data``, ``split_data``, and fold 0 of the two largest fit jobs. Each
job's peak RSS (Snakemake's ``benchmarks/*.tsv``) must stay under
``survival_framework.resources.peak_mb`` for its input, the model the memory requests are
made from. At this size one more copy of the training matrix (800,000 x 50 float64, 320 MB)
or of the table pushes a stage over it, so a change that re-materialises a copy fails here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import copy_workflow, snakemake
from survival_framework.resources import peak_mb

pytestmark = pytest.mark.integration

ROWS = 1_000_000
TABLE = f"resources/synthetic/survival_{ROWS}.parquet"


def _size_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


@pytest.fixture(scope="module")
def run_1m(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("memory_1m"))
    snakemake(wd, "--cores", "1", TABLE)
    overlay = wd / "config" / "memory_overlay.yaml"
    overlay.write_text(f"data:\n  path: {TABLE}\nexecution:\n  etl_engine: pandas\n")
    targets = [f"results/cv/{m}/fold_0/metrics.json" for m in ("coxph", "weibull_aft")]
    # --cores 1: one job at a time, so each peak is the job's alone
    snakemake(
        wd, *targets, "--cores", "1", "--configfile", "config/production.yaml", str(overlay),
        timeout=1800,
    )  # fmt: skip
    return wd


def _peak(wd: Path, bench: str) -> float:
    return float(pd.read_csv(wd / "benchmarks" / bench, sep="\t")["max_rss"].iloc[-1])


def test_every_heavy_stage_stays_under_the_memory_model(run_1m):
    wd = run_1m
    splits = wd / "results" / "splits" / "fold_0"
    inputs = {
        "data/validate_data.tsv": ("validate_data", _size_mb(wd / TABLE)),
        "splits/split_data.tsv": ("split_data", _size_mb(wd / "results/data/clean.parquet")),
    }
    fold_mb = _size_mb(splits / "train.parquet", splits / "test.parquet")
    for model in ("coxph", "weibull_aft"):
        inputs[f"cv/{model}/fold_0.tsv"] = ("fit_model", fold_mb)
    report = []
    for bench, (stage, input_mb) in inputs.items():
        measured, bound = _peak(wd, bench), peak_mb(stage, input_mb)
        report.append(f"{bench}: {measured:.0f} MB (model {bound:.0f} MB for {input_mb:.0f} MB)")
        print(report[-1])
        assert measured > 0.2 * bound, report  # the benchmark measured the job itself
    for bench, (stage, input_mb) in inputs.items():
        assert _peak(wd, bench) <= peak_mb(stage, input_mb), "\n".join(report)


def test_fit_jobs_scored_every_metric(run_1m):
    import json

    for model in ("coxph", "weibull_aft"):
        rec = json.loads((run_1m / f"results/cv/{model}/fold_0/metrics.json").read_text())
        assert rec["status"] == "ok", rec["error"]
        assert rec["n_train"] + rec["n_test"] == ROWS
        assert 0.5 < rec["metrics"]["harrell_c"] < 1.0
