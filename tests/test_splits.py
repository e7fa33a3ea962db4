from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sksurv.metrics import brier_score, cumulative_dynamic_auc

from conftest import custom_split_paths, random_survival_table
from survival_framework.contract import FOLD_COL, REPEAT_COL, ROW_COL
from survival_framework.etl import etl_arguments, run_pandas_etl, split_paths
from survival_framework.io import read_json, write_json, write_parquet
from survival_framework.metrics import censor_after, to_structured
from survival_framework.schema import validate_survival_table
from survival_framework.splits import assign_folds, stratified_sample
from survival_framework.timegrid import evaluation_time_grid


def test_folds_are_stratified_and_cover_every_row(gbsg2):
    event = gbsg2["event"].to_numpy()
    folds = assign_folds(event, 5, seed=1)
    assert set(folds) == set(range(5))
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1
    rate = event.mean()
    for k in range(5):
        assert abs(event[folds == k].mean() - rate) < 0.01


def test_folds_are_reproducible_and_depend_on_seed(gbsg2):
    event = gbsg2["event"].to_numpy()
    np.testing.assert_array_equal(assign_folds(event, 5, 3), assign_folds(event, 5, 3))
    assert (assign_folds(event, 5, 3) != assign_folds(event, 5, 4)).any()


def test_stratified_sample_keeps_event_rate(gbsg2):
    sample = stratified_sample(gbsg2, "event", 300, seed=0)
    assert len(sample) == 300
    assert abs(sample["event"].mean() - gbsg2["event"].mean()) < 0.01
    assert stratified_sample(gbsg2, "event", 10_000, seed=0) is gbsg2


@pytest.mark.parametrize("n_folds", [2, 5, 10])
def test_time_grid_is_valid_for_every_fold(gbsg2, n_folds):
    time, event = gbsg2["time"].to_numpy(), gbsg2["event"].to_numpy()
    folds = assign_folds(event, n_folds, seed=0)
    grid = evaluation_time_grid(time, event, folds, n_times=15)
    times = np.asarray(grid["times"])
    assert np.all(np.diff(times) > 0) and grid["tau"] == times[-1]
    for k in range(n_folds):
        tr, te = folds != k, folds == k
        assert times.min() >= time[te].min() and times.max() < time[te].max()
        assert times.max() < time[tr].max()
        y_tr, y_te = to_structured(event[tr], time[tr]), to_structured(event[te], time[te])
        surv = np.full((te.sum(), times.size), 0.5)
        # must not raise for any fold
        brier_score(y_tr, censor_after(y_te, times.max()), surv, times)
        cumulative_dynamic_auc(y_tr, censor_after(y_te, times.max()), 1 - surv, times)


ETL_ARGS = dict(n_folds=3, seed=2, min_frequency=0.02, n_times=6, quantiles=(0.1, 0.8))


@pytest.fixture
def clean_table(tmp_path):
    clean, schema = validate_survival_table(
        random_survival_table(np.random.default_rng(5), n=240), "t.csv", "time", "event"
    )
    write_parquet(clean, tmp_path / "clean.parquet")
    write_json(schema, tmp_path / "schema.json")
    return tmp_path / "clean.parquet", tmp_path / "schema.json"


def test_pandas_etl_writes_exactly_the_paths_it_is_given(clean_table, tmp_path):
    out = tmp_path / "anywhere"
    paths = custom_split_paths(out, 3)
    run_pandas_etl(*clean_table, **paths, **ETL_ARGS)
    written = {p for p in out.rglob("*") if p.is_file()}
    assert written == {paths["folds_path"], paths["grid_path"]} | {
        p for part in ("train", "test", "preprocessor") for p in paths[f"{part}_paths"]
    }
    folds = pd.read_parquet(paths["folds_path"])
    assert list(folds.columns) == [ROW_COL, REPEAT_COL, FOLD_COL]
    assert (folds[REPEAT_COL] == 0).all()  # one repeat
    for k in range(3):  # path k holds fold k
        test = pd.read_parquet(paths["test_paths"][k])
        assert set(test[ROW_COL]) == set(folds.loc[folds[FOLD_COL] == k, ROW_COL])
        assert read_json(paths["preprocessor_paths"][k])["n_train"] == (folds[FOLD_COL] != k).sum()
    assert read_json(paths["grid_path"])["times"]


@pytest.mark.parametrize("part", ["train", "test", "preprocessor"])
def test_pandas_etl_rejects_a_path_list_not_one_per_fold(clean_table, tmp_path, part):
    paths = split_paths(tmp_path / "out", 3)
    paths[f"{part}_paths"] = [*paths[f"{part}_paths"], tmp_path / "extra"]
    with pytest.raises(ValueError, match=rf"{part}_paths: 4 path\(s\) for n_folds=3"):
        run_pandas_etl(*clean_table, **paths, **ETL_ARGS)
    assert not (tmp_path / "out").exists()


def test_etl_arguments_pass_the_rule_outputs_as_declared():
    declared = split_paths("results/splits", 2)
    smk = SimpleNamespace(
        input=SimpleNamespace(clean="c.parquet", schema="s.json"),
        output=SimpleNamespace(
            folds=str(declared["folds_path"]),
            grid=str(declared["grid_path"]),
            train=[str(p) for p in declared["train_paths"]],
            test=[str(p) for p in declared["test_paths"]],
            preprocessor=[str(p) for p in declared["preprocessor_paths"]],
        ),
        params=SimpleNamespace(
            n_folds=2,
            n_repeats=1,
            seed=1,
            min_frequency=0.1,
            max_levels=None,
            n_times=5,
            time_quantiles=[0, 1],
        ),
    )
    args = etl_arguments(smk)
    assert args["folds_path"] is smk.output.folds and args["grid_path"] is smk.output.grid
    assert args["train_paths"] == smk.output.train and args["test_paths"] == smk.output.test
    assert args["preprocessor_paths"] == smk.output.preprocessor
    assert args["quantiles"] == (0, 1) and args["clean_path"] == "c.parquet"
    assert args["n_folds"] == 2 and args["n_repeats"] == 1
