"""Real Snakemake runs of the workflow (integration)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored

from conftest import REPO, copy_workflow, snakemake
from survival_framework.contract import RISK_COL, ROW_COL
from survival_framework.metrics import METRIC_NAMES, to_structured
from survival_framework.models import MODEL_NAMES
from survival_framework.preprocess import output_columns

pytestmark = pytest.mark.integration
MODELS = list(MODEL_NAMES)  # the registry: every model the test config enables


def test_outputs_exist_and_follow_the_contract(test_workflow_run):
    wd = test_workflow_run
    long = pd.read_csv(wd / "results/cv_metrics.csv")
    assert list(long.columns) == ["model", "repeat", "fold", "metric", "value"]
    assert len(long) == len(MODELS) * 3 * len(METRIC_NAMES)
    assert (long["repeat"] == 0).all()  # cv.n_repeats 1
    assert long["value"].notna().all()
    board = pd.read_csv(wd / "results/leaderboard.csv")
    assert set(board["model"]) == set(MODELS)
    assert board["uno_c_mean"].is_monotonic_decreasing
    assert (board["n_failed"] == 0).all() and (board["n_folds"] == 3).all()
    for model in MODELS:
        for fold in range(3):
            d = wd / f"results/cv/{model}/fold_{fold}"
            rec = json.loads((d / "metrics.json").read_text())
            assert rec["status"] == "ok" and rec["model"] == model and rec["fold"] == fold
            pred = pd.read_parquet(d / "predictions.parquet")
            assert len(pred) == rec["n_test"] and RISK_COL in pred
            assert (wd / f"logs/cv/{model}/fold_{fold}.log").exists()
            assert (wd / f"benchmarks/cv/{model}/fold_{fold}.tsv").exists()


def test_one_repeat_is_the_plain_k_fold(test_workflow_run):
    """cv.n_repeats 1 (the default): resample ids are the folds 0..K-1, all of repeat 0
    (that the values equal those of the code before repeats was checked by a run of the
    earlier commit when repeats were added, not pinned here: no stored results)."""
    long = pd.read_csv(test_workflow_run / "results/cv_metrics.csv")
    assert (long["repeat"] == 0).all() and set(long["fold"]) == {0, 1, 2}
    folds = pd.read_parquet(test_workflow_run / "results/splits/folds.parquet")
    assert list(folds.columns) == [ROW_COL, "repeat", "fold"] and (folds["repeat"] == 0).all()


def test_cindex_is_sane(test_workflow_run):
    board = pd.read_csv(test_workflow_run / "results/leaderboard.csv").set_index("model")
    assert board.loc["coxph", "harrell_c_mean"] > 0.62
    learners = board.drop(index="km")
    assert (learners["harrell_c_mean"] > 0.6).all()
    assert (board["ibs_mean"] < 0.25).all()
    # the reference: constant risk, so every comparable pair is tied
    assert board.loc["km", "harrell_c_mean"] == 0.5 and board.loc["km", "uno_c_mean"] == 0.5


def test_reference_and_comparison_outputs(test_workflow_run):
    """km's ibs_erv is 0 in every fold and every other model's is 1 - IBS / IBS(km) of the
    same fold; comparison.csv pairs the folds (its diff is the mean paired difference) and
    the leaderboard's tied_with_best follows its intervals on the primary metric."""
    wd = test_workflow_run
    long = pd.read_csv(wd / "results/cv_metrics.csv")
    wide = long.pivot_table(index=["model", "fold"], columns="metric", values="value")
    assert (wide.loc["km", "ibs_erv"] == 0.0).all()
    for model in MODELS:
        erv = 1 - wide.loc[model, "ibs"] / wide.loc["km", "ibs"]
        np.testing.assert_allclose(wide.loc[model, "ibs_erv"], erv, rtol=1e-12)
    comparison = pd.read_csv(wd / "results/comparison.csv")
    assert list(comparison.columns) == [
        "model",
        "metric",
        "reference",
        "diff",
        "ci_low",
        "ci_high",
        "p_value",
    ]
    board = pd.read_csv(wd / "results/leaderboard.csv")
    best = board["model"].iloc[0]
    assert set(comparison["reference"]) == {best, "km"}
    for _, row in comparison.iterrows():
        d = wide.loc[row["model"], row["metric"]] - wide.loc[row["reference"], row["metric"]]
        assert row["diff"] == pytest.approx(d.mean(), abs=1e-12)
        assert row["ci_low"] <= row["diff"] <= row["ci_high"]
    vs_best = comparison.query("metric == 'uno_c' and reference == @best").set_index("model")
    tied = (vs_best["ci_low"] <= 0) & (vs_best["ci_high"] >= 0)
    assert board.set_index("model")["tied_with_best"].to_dict() == tied.to_dict()
    assert board["mean_rank"].between(1, len(MODELS)).all()


def test_coxph_harrell_matches_independent_fit_on_saved_folds(test_workflow_run):
    wd = test_workflow_run
    long = pd.read_csv(wd / "results/cv_metrics.csv")
    folds = pd.read_parquet(wd / "results/splits/folds.parquet")
    assert sorted(folds["fold"].unique()) == [0, 1, 2]
    for fold in range(3):
        d = wd / f"results/splits/fold_{fold}"
        feats = output_columns(json.loads((d / "preprocessor.json").read_text()))
        train, test = pd.read_parquet(d / "train.parquet"), pd.read_parquet(d / "test.parquet")
        assert set(test[ROW_COL]) == set(folds.loc[folds["fold"] == fold, ROW_COL])
        assert not set(train[ROW_COL]) & set(test[ROW_COL])
        model = CoxPHSurvivalAnalysis(alpha=0.0001, ties="breslow").fit(
            train[feats].to_numpy(), to_structured(train["event"], train["time"])
        )
        risk = model.predict(test[feats].to_numpy())
        expected = concordance_index_censored(test["event"].astype(bool), test["time"], risk)[0]
        got = long.query("model == 'coxph' and fold == @fold and metric == 'harrell_c'")["value"]
        assert got.item() == pytest.approx(expected, abs=1e-6)


def test_time_grid_recorded_and_shared_by_all_jobs(test_workflow_run):
    wd = test_workflow_run
    grid = json.loads((wd / "results/splits/time_grid.json").read_text())
    for model in MODELS:
        rec = json.loads((wd / f"results/cv/{model}/fold_0/metrics.json").read_text())
        assert rec["times"] == grid["times"] and rec["tau"] == grid["tau"]


def test_unchanged_rerun_schedules_nothing(test_workflow_run):
    out = snakemake(test_workflow_run, "-n", "--configfile", "config/test/config.yaml").stdout
    assert "Nothing to be done" in out


def _job_counts(dryrun_stdout: str) -> dict[str, int]:
    table = dryrun_stdout.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_default_config_dry_run_has_one_job_per_model_and_fold(tmp_path):
    wd = copy_workflow(tmp_path)
    counts = _job_counts(snakemake(wd, "-n", "--cores", "2").stdout)
    assert counts["fit_model"] == 5 * len(MODELS)  # the five models and the km reference
    assert counts["split_data"] == 1 and counts["aggregate_metrics"] == 1


def test_disabling_a_model_removes_its_jobs(tmp_path):
    wd = copy_workflow(tmp_path)
    (wd / "no_rsf.yaml").write_text("models:\n  rsf: {enabled: false}\n")
    out = snakemake(wd, "-n", "--cores", "2", "--configfile", "config/config.yaml", "no_rsf.yaml")
    assert _job_counts(out.stdout)["fit_model"] == 5 * (len(MODELS) - 1)


def test_snakemake_lint_is_clean():
    proc = snakemake(REPO, "--lint", "--cores", "1", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
