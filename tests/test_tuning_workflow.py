"""Nested tuning in the real workflow (rules/tuning.smk): config/test/config.yaml with a
tuned coxnet, run by Snakemake. The choice is known (a penalty that zeroes every
coefficient against a light one), the inner splits hold outer training rows only, the
other models' results equal the untuned run's, and the choices do not depend on --cores."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import copy_workflow, snakemake

N_FOLDS = 3  # config/test/config.yaml
TUNE = "config/test/tuned.yaml"  # coxnet: alpha 5.0 (every coefficient zero) or 0.001
RESAMPLES = [str(k) for k in range(N_FOLDS)] + ["all"]

pytestmark = pytest.mark.integration


def run(wd: Path, cores: int, *targets: str):
    return snakemake(
        wd, "--cores", str(cores), "--configfile", "config/test/config.yaml", TUNE,
        "--config", "final={models: all}", "--", *targets,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("wf_tuned"))
    run(wd, 2)
    return wd


def test_the_known_best_penalty_is_chosen_in_every_fold_and_for_the_final_model(tuned_run):
    for resample in RESAMPLES:
        sel = json.loads(
            (tuned_run / f"results/tuning/coxnet/fold_{resample}/selection.json").read_text()
        )
        assert sel["best"] == 1 and sel["params"] == {"l1_ratio": 0.5, "alpha": 0.001}
        assert [c["params"]["alpha"] for c in sel["candidates"]] == [5.0, 0.001]
        assert sel["mean"][0] == pytest.approx(0.5, abs=1e-12)  # constant risk: all ties
        assert sel["mean"][1] > 0.6
        # both alphas differ only in coxnet's path parameter: one job, one path fit
        group = json.loads(
            (tuned_run / f"results/tuning/coxnet/fold_{resample}/group_0.json").read_text()
        )
        assert group["path"] == "alpha" and group["candidates"] == [0, 1]
        assert not (tuned_run / f"results/tuning/coxnet/fold_{resample}/group_1.json").exists()
    for k in range(N_FOLDS):
        record = json.loads((tuned_run / f"results/cv/coxnet/fold_{k}/metrics.json").read_text())
        assert record["params"]["alpha"] == 0.001 and record["tuning"]["best"] == 1
        assert record["tuning"]["candidates"][0]["scores"]  # the inner scores, per candidate
    final = json.loads((tuned_run / "results/final/coxnet/provenance.json").read_text())
    assert final["model_params"]["alpha"] == 0.001 and final["tuning"]["resample"] == "all"
    board = pd.read_csv(tuned_run / "results/leaderboard.csv").set_index("model")
    assert board["tuned"].to_dict() == {m: m == "coxnet" for m in board.index}
    plot = tuned_run / "results/report/tuning.png"  # rule all adds it when a model is tuned
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000


def test_inner_splits_hold_outer_training_rows_only(tuned_run):
    splits = tuned_run / "results/splits"
    everything = set(pd.read_parquet(splits / "folds.parquet")["_row"])
    for resample in RESAMPLES:
        inner = tuned_run / f"results/tuning/splits/fold_{resample}"
        assert not (inner / "clean.parquet").exists()  # temp(): removed after the split
        if resample == "all":
            outer_train, outer_test = everything, set()
        else:
            outer_train = set(pd.read_parquet(splits / f"fold_{resample}/train.parquet")["_row"])
            outer_test = set(pd.read_parquet(splits / f"fold_{resample}/test.parquet")["_row"])
        seen: set[int] = set()
        for i in range(3):
            for part in ("train", "test"):
                rows = set(pd.read_parquet(inner / f"fold_{i}/{part}.parquet")["_row"])
                assert rows <= outer_train and not rows & outer_test, (resample, i, part)
                seen |= rows
        assert seen == outer_train


def test_untuned_models_are_unchanged(tuned_run, test_workflow_run):
    for model in ("coxph", "rsf", "gbsa", "weibull_aft", "km"):
        for k in range(N_FOLDS):
            a = json.loads(
                (test_workflow_run / f"results/cv/{model}/fold_{k}/metrics.json").read_text()
            )
            b = json.loads((tuned_run / f"results/cv/{model}/fold_{k}/metrics.json").read_text())
            assert a["metrics"] == b["metrics"] and "tuning" not in b, (model, k)
    assert not (test_workflow_run / "results/tuning").exists()
    assert not (test_workflow_run / "results/report/tuning.png").exists()
    assert "tuned" not in pd.read_csv(test_workflow_run / "results/leaderboard.csv")


def test_the_choices_do_not_depend_on_cores(tuned_run, tmp_path):
    wd = copy_workflow(tmp_path)
    targets = [f"results/tuning/coxnet/fold_{r}/selection.json" for r in RESAMPLES]
    run(wd, 1, *targets)
    for target in targets:
        assert (wd / target).read_bytes() == (tuned_run / target).read_bytes(), target


def test_a_bad_search_space_stops_the_run_naming_the_key(tmp_path):
    wd = copy_workflow(tmp_path)
    (wd / "bad.yaml").write_text(
        "models:\n  rsf:\n    tune: {min_samples_leaf: {low: 9, high: 2}}\n"
    )
    proc = snakemake(wd, "-n", "--configfile", "config/test/config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert "models.rsf.tune.min_samples_leaf: low (9) must be below high (2)" in (
        proc.stdout + proc.stderr
    )
    (wd / "bad.yaml").write_text("models:\n  rsf:\n    tune: {n_trees: [10, 20]}\n")
    proc = snakemake(wd, "-n", "--configfile", "config/test/config.yaml", "bad.yaml", check=False)
    assert "models.rsf.tune.n_trees" in proc.stdout + proc.stderr
    assert "does not accept parameter 'n_trees'" in proc.stdout + proc.stderr


def test_config_tuned_yaml_plans_one_job_per_candidate_group_and_resample(tmp_path):
    """config/tuned.yaml (spaces for coxnet, rsf, gbsa, weibull_aft) on the test config:
    the dry run holds one score_candidates job per model x resample x candidate group,
    a group being one candidate, or coxnet's candidates of one l1_ratio (a path)."""
    import re

    import yaml

    from survival_framework.modelspec import read_path_params
    from survival_framework.search_space import candidate_groups, candidates, parse_space

    wd = copy_workflow(tmp_path)
    proc = snakemake(
        wd, "-n", "--cores", "2", "--configfile", "config/test/config.yaml",
        "config/tuned.yaml",
    )  # fmt: skip
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    tuned = yaml.safe_load((wd / "config/tuned.yaml").read_text())
    test = yaml.safe_load((wd / "config/test/config.yaml").read_text())
    seed = test.get("cv", {}).get("seed", 42)
    drawn = {
        m: candidates(parse_space(m, spec["tune"]), tuned["tuning"]["n_candidates"], seed, m)
        for m, spec in tuned["models"].items()
    }
    groups = {m: candidate_groups(c, read_path_params().get(m)) for m, c in drawn.items()}
    assert (
        len(groups["coxnet"])
        == len({c["l1_ratio"] for c in drawn["coxnet"]})
        < len(drawn["coxnet"])
    )
    assert all(len(groups[m]) == len(drawn[m]) for m in ("rsf", "gbsa", "weibull_aft"))
    resamples = N_FOLDS + 1  # the outer folds and every row (the final model)
    assert int(counts["score_candidates"]) == sum(map(len, groups.values())) * resamples
    assert int(counts["select_parameters"]) == len(tuned["models"]) * resamples
    assert int(counts["split_inner_folds"]) == resamples
