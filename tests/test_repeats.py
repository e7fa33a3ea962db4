"""Repeated cross-validation (``cv.n_repeats``): R x K resamples, ``fold = repeat * K + k``.

* the fold assignment (:func:`survival_framework.splits.assign_repeated_folds`): R x K
  distinct test sets, every repeat a stratified partition, reproducible, repeat 0 the plain
  K-fold of ``cv.seed``;
* the pandas ETL with R = 2: every resample's files equal their in-memory definition
  (``preprocess.fit_state`` on the resample's training rows, ``etl.fold_frames``); with R = 1
  the files of the plain K-fold, byte for byte (the Spark engine with R = 2:
  ``tests/test_spark_etl.py::test_in_process_parity_with_repeats``);
* a real Snakemake run of ``config/test/config.yaml`` with ``cv: {n_repeats: 2}``: 2 x 3 fit
  jobs per model, ``cv_metrics.csv`` with repeats 0 and 1, ``comparison.csv`` with k = 6,
  repeat 0 equal to the one-repeat run (``conftest.test_workflow_run``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import copy_workflow, random_survival_table, snakemake
from survival_framework import preprocess
from survival_framework.aggregate import failure_summary
from survival_framework.batches import ParquetColumns
from survival_framework.comparison import corrected_resampled_ttest
from survival_framework.contract import FOLD_COL, REPEAT_COL, ROW_COL
from survival_framework.etl import (
    check_split_paths,
    fit_fold_states,
    fold_frames,
    folds_and_grid,
    run_pandas_etl,
    split_paths,
    training_rows,
    write_fold_frames,
)
from survival_framework.io import read_json, write_json, write_parquet
from survival_framework.metrics import METRIC_NAMES
from survival_framework.models import MODEL_NAMES
from survival_framework.provenance import folds_sha256
from survival_framework.schema import validate_survival_table
from survival_framework.splits import (
    assign_folds,
    assign_repeated_folds,
    repeat_seed,
    stratified_sample,
)
from survival_framework.timegrid import evaluation_time_grid

MODELS = list(MODEL_NAMES)


def _partition(folds: np.ndarray) -> frozenset:
    """A repeat's partition of the rows, independent of the fold labels."""
    return frozenset(frozenset(np.flatnonzero(folds == f).tolist()) for f in np.unique(folds))


# --------------------------------------------------------------------------- fold assignment


@pytest.mark.parametrize(("n_folds", "n_repeats"), [(2, 4), (3, 2), (5, 3)])
def test_repeated_folds_are_distinct_stratified_partitions(gbsg2, n_folds, n_repeats):
    event = gbsg2["event"].to_numpy()
    folds = assign_repeated_folds(event, n_folds, n_repeats, seed=7)
    assert folds.shape == (n_repeats, len(event)) and folds.dtype == np.int64
    test_sets = set()
    for r in range(n_repeats):
        # repeat r holds the resample ids r*K .. r*K + K-1, every row in exactly one of them
        assert set(np.unique(folds[r])) == set(range(r * n_folds, (r + 1) * n_folds))
        sizes = np.bincount(folds[r] - r * n_folds, minlength=n_folds)
        events = np.bincount(folds[r] - r * n_folds, weights=event, minlength=n_folds)
        assert sizes.max() - sizes.min() <= 1  # stratified K-fold: sizes and event
        assert events.max() - events.min() <= 1  # counts differ by at most one
        test_sets |= {frozenset(np.flatnonzero(folds[r] == f)) for f in np.unique(folds[r])}
    assert len(test_sets) == n_repeats * n_folds  # R x K distinct test sets
    partitions = {_partition(folds[r]) for r in range(n_repeats)}
    assert len(partitions) == n_repeats  # no two repeats give the same partition
    # training rows of resample f: the other rows of its repeat
    for f, train in enumerate(training_rows(folds, n_folds)):
        np.testing.assert_array_equal(train, folds[f // n_folds] != f)


def test_repeated_folds_are_reproducible_and_repeat_0_is_the_plain_k_fold(gbsg2):
    event = gbsg2["event"].to_numpy()
    a = assign_repeated_folds(event, 5, 3, seed=42)
    np.testing.assert_array_equal(a, assign_repeated_folds(event, 5, 3, seed=42))
    np.testing.assert_array_equal(a[0], assign_folds(event, 5, 42))  # today's folds
    for r in range(3):
        np.testing.assert_array_equal(a[r], assign_folds(event, 5, repeat_seed(42, r)) + 5 * r)
    # more repeats leave the earlier ones as they were; another seed changes every repeat
    np.testing.assert_array_equal(assign_repeated_folds(event, 5, 5, seed=42)[:3], a)
    np.testing.assert_array_equal(assign_repeated_folds(event, 5, 1, seed=42), a[:1])
    b = assign_repeated_folds(event, 5, 3, seed=43)
    assert all(_partition(a[r]) != _partition(b[r]) for r in range(3))


def test_repeat_seed():
    assert repeat_seed(42, 0) == 42 and repeat_seed(0, 0) == 0
    # the documented rule: the r-th child of SeedSequence(seed), first 32-bit word
    child = np.random.SeedSequence(42).spawn(3)[2]
    assert repeat_seed(42, 2) == int(child.generate_state(1)[0])
    seeds = [repeat_seed(42, r) for r in range(50)]
    assert len(set(seeds)) == 50 and all(0 <= s < 2**32 for s in seeds)
    assert repeat_seed(7, 1) != repeat_seed(8, 1)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="repeat"):
            repeat_seed(42, bad)
    with pytest.raises(ValueError, match="n_repeats"):
        assign_repeated_folds(np.array([0, 1] * 5), 2, 0, seed=1)


def test_time_grid_is_valid_for_every_resample(gbsg2):
    time, event = gbsg2["time"].to_numpy(float), gbsg2["event"].to_numpy()
    folds, grid = folds_and_grid(time, event, 5, 3, 20, (0.1, 0.8), n_repeats=4)
    assert folds.shape == (4, len(time))
    times = np.asarray(grid["times"])
    for f, train in enumerate(training_rows(folds, 5)):
        test = folds[f // 5] == f
        assert times.min() >= time[test].min() and times.max() < time[test].max()
        assert times.max() < time[train].max()
    # one repeat: the grid of the plain K-fold, from 1-D or 2-D folds alike
    one, grid1 = folds_and_grid(time, event, 5, 3, 20, (0.1, 0.8))
    np.testing.assert_array_equal(one[0], assign_folds(event, 5, 3))
    assert grid1 == evaluation_time_grid(time, event, one[0], 20, (0.1, 0.8))


# --------------------------------------------------------------------------- pandas ETL

ARGS = dict(seed=4, min_frequency=0.02, n_times=8, quantiles=(0.1, 0.8))
K = 3


def _clean(tmp_path: Path, n: int = 400):
    """A validated table (missing values, rare levels), sampled: non-contiguous ``_row``."""
    df = random_survival_table(np.random.default_rng(21), n)
    clean, schema = validate_survival_table(df, "t.csv", "time", "event", min_rows=10)
    clean = stratified_sample(clean, "event", n - 50, seed=1)
    path = tmp_path / "clean.parquet"
    write_parquet(clean, path)
    write_json(schema, tmp_path / "schema.json")
    return clean, schema, path


@pytest.mark.parametrize("batch_rows", [7, 100_000])
def test_pandas_etl_with_two_repeats_equals_the_in_memory_definition(tmp_path, batch_rows):
    clean, schema, path = _clean(tmp_path)
    paths = split_paths(tmp_path / "splits", K, 2)
    assert len(paths["train_paths"]) == 2 * K
    run_pandas_etl(
        path,
        tmp_path / "schema.json",
        **paths,
        n_folds=K,
        n_repeats=2,
        batch_rows=batch_rows,
        **ARGS,
    )
    expected = assign_repeated_folds(clean["event"].to_numpy(), K, 2, ARGS["seed"])
    folds = pd.read_parquet(paths["folds_path"])
    assert list(folds.columns) == [ROW_COL, REPEAT_COL, FOLD_COL]
    assert folds[REPEAT_COL].tolist() == [0] * len(clean) + [1] * len(clean)  # repeat by repeat
    for r in range(2):
        sub = folds[folds[REPEAT_COL] == r]
        np.testing.assert_array_equal(sub[ROW_COL], clean[ROW_COL])  # in _row order
        np.testing.assert_array_equal(sub[FOLD_COL], expected[r])
    for f in range(2 * K):
        fold = expected[f // K]
        train, test = clean[fold != f], clean[fold == f]
        state = preprocess.fit_state(train, schema["numeric"], schema["categorical"], 0.02)
        assert read_json(paths["preprocessor_paths"][f]) == json.loads(json.dumps(state))
        for part, file in ((train, paths["train_paths"][f]), (test, paths["test_paths"][f])):
            got = pd.read_parquet(file)
            pd.testing.assert_frame_equal(got, fold_frames(part, schema, state), check_exact=True)
    grid = read_json(paths["grid_path"])
    time, event = clean["time"].to_numpy(float), clean["event"].to_numpy()
    assert grid == json.loads(json.dumps(evaluation_time_grid(time, event, expected, 8)))


def test_one_repeat_writes_the_files_of_the_plain_k_fold(tmp_path):
    """n_repeats 1 (the default) writes, byte for byte, what the one-fold-array functions
    write from ``assign_folds(event, K, seed)`` (the split stage before repeated CV), and a
    second repeat leaves the first repeat's files byte for byte as they were."""
    clean, schema, path = _clean(tmp_path)
    one = split_paths(tmp_path / "one", K)
    run_pandas_etl(path, tmp_path / "schema.json", **one, n_folds=K, batch_rows=50, **ARGS)

    # the plain K-fold, by hand from the 1-D fold array
    event, time = clean["event"].to_numpy(), clean["time"].to_numpy(float)
    plain = assign_folds(event, K, ARGS["seed"])
    ref = split_paths(tmp_path / "ref", K)
    states = fit_fold_states(ParquetColumns(path), plain, K, schema, 0.02)
    for p in ref["train_paths"]:
        p.parent.mkdir(parents=True)
    write_fold_frames(
        ParquetColumns(path), plain, schema, states, ref["train_paths"], ref["test_paths"], 50
    )
    for k in range(K):
        for part in ("train", "test"):
            assert one[f"{part}_paths"][k].read_bytes() == ref[f"{part}_paths"][k].read_bytes()
        assert read_json(one["preprocessor_paths"][k]) == json.loads(json.dumps(states[k]))
    folds = pd.read_parquet(one["folds_path"])
    pd.testing.assert_frame_equal(
        folds, pd.DataFrame({ROW_COL: clean[ROW_COL].to_numpy(), REPEAT_COL: 0, FOLD_COL: plain})
    )
    grid = evaluation_time_grid(time, event, plain, 8)
    assert read_json(one["grid_path"]) == json.loads(json.dumps(grid))

    two = split_paths(tmp_path / "two", K, 2)
    run_pandas_etl(
        path, tmp_path / "schema.json", **two, n_folds=K, n_repeats=2, batch_rows=50, **ARGS
    )
    for k in range(K):
        for part in ("train", "test", "preprocessor"):
            assert two[f"{part}_paths"][k].read_bytes() == one[f"{part}_paths"][k].read_bytes()
    assert pd.read_parquet(two["folds_path"]).iloc[: len(clean)].equals(folds)


def test_path_lists_must_hold_one_path_per_resample(tmp_path):
    paths = split_paths(tmp_path, 3, 2)
    parts = [paths[f"{p}_paths"] for p in ("train", "test", "preprocessor")]
    check_split_paths(3, *parts, n_repeats=2)
    with pytest.raises(ValueError, match=r"train_paths: 6 path\(s\) for n_folds=3; "):
        check_split_paths(3, *parts)
    with pytest.raises(ValueError, match=r"test_paths: 3 path\(s\) for n_folds=3 x n_repeats=2"):
        check_split_paths(3, parts[0], parts[1][:3], parts[2], n_repeats=2)


# --------------------------------------------------------------------------- the workflow

N_REPEATS = 2
N_FOLDS = 3  # config/test/config.yaml


def _job_counts(dryrun_stdout: str) -> dict[str, int]:
    table = dryrun_stdout.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture(scope="module")
def repeats_run(tmp_path_factory):
    """config/test/config.yaml with ``cv: {n_repeats: 2}``; the dry run's job counts."""
    wd = copy_workflow(tmp_path_factory.mktemp("repeats"))
    (wd / "repeats.yaml").write_text(f"cv: {{n_repeats: {N_REPEATS}}}\n")
    args = ["--cores", "2", "--configfile", "config/test/config.yaml", "repeats.yaml"]
    targets = ["--", "results/leaderboard.csv", "results/report/time_dependent_metrics.csv"]
    counts = _job_counts(snakemake(wd, "-n", *args, *targets).stdout)
    snakemake(wd, *args, *targets)
    return wd, counts


@pytest.mark.integration
def test_one_job_per_model_repeat_and_fold(repeats_run):
    wd, counts = repeats_run
    n_resamples = N_REPEATS * N_FOLDS
    assert counts["fit_model"] == n_resamples * len(MODELS)
    assert counts["split_data"] == 1 and counts["aggregate_metrics"] == 1
    for model in MODELS:
        for f in range(n_resamples):
            rec = read_json(wd / f"results/cv/{model}/fold_{f}/metrics.json")
            assert rec["status"] == "ok" and rec["fold"] == f and rec["repeat"] == f // N_FOLDS
            assert (wd / f"logs/cv/{model}/fold_{f}.log").exists()
            assert (wd / f"benchmarks/cv/{model}/fold_{f}.tsv").exists()
            prov = read_json(wd / f"results/cv/{model}/fold_{f}/provenance.json")
            assert prov["folds_sha256"] == folds_sha256(wd / "results/splits/folds.parquet")
        assert not (wd / f"results/cv/{model}/fold_{n_resamples}").exists()


@pytest.mark.integration
def test_split_files_of_every_resample(repeats_run):
    wd, _ = repeats_run
    folds = pd.read_parquet(wd / "results/splits/folds.parquet")
    clean = pd.read_parquet(wd / "results/data/clean.parquet")
    assert list(folds.columns) == [ROW_COL, REPEAT_COL, FOLD_COL]
    assert len(folds) == N_REPEATS * len(clean)
    expected = assign_repeated_folds(clean["event"].to_numpy(), N_FOLDS, N_REPEATS, seed=7)
    partitions = set()
    for r in range(N_REPEATS):
        sub = folds[folds[REPEAT_COL] == r]
        np.testing.assert_array_equal(sub[ROW_COL], clean[ROW_COL])
        np.testing.assert_array_equal(sub[FOLD_COL], expected[r])
        partitions.add(_partition(sub[FOLD_COL].to_numpy()))
        for f in range(r * N_FOLDS, (r + 1) * N_FOLDS):
            d = wd / f"results/splits/fold_{f}"
            train, test = pd.read_parquet(d / "train.parquet"), pd.read_parquet(d / "test.parquet")
            assert set(test[ROW_COL]) == set(sub.loc[sub[FOLD_COL] == f, ROW_COL])
            assert set(train[ROW_COL]) == set(sub.loc[sub[FOLD_COL] != f, ROW_COL])
            assert read_json(d / "preprocessor.json")["n_train"] == len(train)
    assert len(partitions) == N_REPEATS


@pytest.mark.integration
def test_cv_metrics_leaderboard_and_comparison_over_all_resamples(repeats_run):
    wd, _ = repeats_run
    long = pd.read_csv(wd / "results/cv_metrics.csv")
    assert list(long.columns) == ["model", "repeat", "fold", "metric", "value"]
    assert len(long) == len(MODELS) * N_REPEATS * N_FOLDS * len(METRIC_NAMES)
    assert long["value"].notna().all()
    by_repeat = long.groupby("repeat")["fold"].unique()
    assert {r: sorted(f) for r, f in by_repeat.items()} == {0: [0, 1, 2], 1: [3, 4, 5]}
    board = pd.read_csv(wd / "results/leaderboard.csv").set_index("model")
    assert (board["n_folds"] == N_REPEATS * N_FOLDS).all() and (board["n_failed"] == 0).all()
    wide = long.pivot_table(index=["model", "fold"], columns="metric", values="value")
    for model in MODELS:
        np.testing.assert_allclose(board.loc[model, "uno_c_mean"], wide.loc[model, "uno_c"].mean())
        np.testing.assert_allclose(board.loc[model, "ibs_std"], wide.loc[model, "ibs"].std(ddof=1))
    # the corrected resampled t-test with k = R x K = 6 paired resamples
    records = [read_json(p) for p in sorted((wd / "results/cv").glob("*/fold_*/metrics.json"))]
    ratio = float(np.mean([r["n_test"] / r["n_train"] for r in records]))
    comparison = pd.read_csv(wd / "results/comparison.csv")
    assert set(comparison["reference"]) == {board.index[0], "km"}
    for _, row in comparison.iterrows():
        d = wide.loc[row["model"], row["metric"]] - wide.loc[row["reference"], row["metric"]]
        assert len(d) == 6
        res = corrected_resampled_ttest(d.to_numpy(), ratio, n_repeats=N_REPEATS)
        assert res.n == 6 and res.df == 5
        assert row["diff"] == pytest.approx(res.mean, abs=1e-12)
        if row["model"] != row["reference"]:
            assert (row["ci_low"], row["ci_high"], row["p_value"]) == pytest.approx(
                (res.ci_low, res.ci_high, res.p_value), abs=1e-12
            )
    assert failure_summary(records) is None


@pytest.mark.integration
def test_repeat_0_equals_the_one_repeat_run(repeats_run, test_workflow_run):
    """Repeat 0 is the plain K-fold: the same split files and, with the same time grid (as
    here: the second repeat does not narrow it), the same predictions and metrics."""
    wd, _ = repeats_run
    one = test_workflow_run
    grid = read_json(wd / "results/splits/time_grid.json")
    assert grid == read_json(one / "results/splits/time_grid.json")
    for f in range(N_FOLDS):
        for name in ("train.parquet", "test.parquet", "preprocessor.json"):
            a = (wd / f"results/splits/fold_{f}" / name).read_bytes()
            assert a == (one / f"results/splits/fold_{f}" / name).read_bytes()
    long = pd.read_csv(wd / "results/cv_metrics.csv")
    first = long[long["repeat"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, pd.read_csv(one / "results/cv_metrics.csv"))


@pytest.mark.integration
def test_report_tables_cover_every_resample_and_calibration_each_row_once(repeats_run):
    wd, _ = repeats_run
    td = pd.read_csv(wd / "results/report/time_dependent_metrics.csv")
    assert set(td["fold"]) == set(range(N_REPEATS * N_FOLDS))
    assert td[["auc", "brier"]].notna().all().all()
    cal = pd.read_csv(wd / "results/report/calibration.csv")
    n_rows = len(pd.read_parquet(wd / "results/data/clean.parquet"))
    assert (cal.groupby(["model", "horizon"])["n"].sum() == n_rows).all()


# The workflow before the km reference, the new metrics and repeated CV (issue 14).
BEFORE_ISSUE_14 = "e2f10bc"


@pytest.mark.integration
def test_one_repeat_keeps_the_metrics_of_the_code_before(test_workflow_run, tmp_path):
    """cv.n_repeats 1: the metrics the earlier code computed (its four, of its five models)
    are exactly those of a run of that code (``git archive`` of it, run here), and its
    split files are byte for byte the same."""
    import subprocess
    import tarfile

    from conftest import REPO, WORKFLOW_PARTS

    parts = [p for p in WORKFLOW_PARTS if (REPO / p).exists()]
    archive = tmp_path / "before.tar"
    with archive.open("wb") as out:
        done = subprocess.run(
            ["git", "archive", BEFORE_ISSUE_14, *parts],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.PIPE,
        )
    if done.returncode != 0:
        pytest.skip(f"commit {BEFORE_ISSUE_14} is not in this checkout: {done.stderr[-200:]!r}")
    wd = tmp_path / "before"
    with tarfile.open(archive) as tar:
        tar.extractall(wd, filter="data")
    config = ("--configfile", "config/test/config.yaml")
    snakemake(wd, "results/cv_metrics.csv", "--cores", "2", *config)
    before = pd.read_csv(wd / "results/cv_metrics.csv")
    now = pd.read_csv(test_workflow_run / "results/cv_metrics.csv")
    both = before.merge(now, on=["model", "fold", "metric"], suffixes=("_before", ""))
    assert len(both) == len(before) and set(both["model"]) == set(before["model"])
    np.testing.assert_array_equal(both["value"], both["value_before"])
    assert (both["repeat"] == 0).all()
    for name in ("train.parquet", "test.parquet", "preprocessor.json"):
        for k in range(3):
            rel = f"results/splits/fold_{k}/{name}"
            assert (wd / rel).read_bytes() == (test_workflow_run / rel).read_bytes(), rel
