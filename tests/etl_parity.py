"""What the ETL engines' parity tests share (tests/test_spark_etl.py, tests/test_dask_etl.py):
a clean table with what the ETL has to get right, and the comparisons of two engines'
outputs (identical folds and grid, states and matrices within :data:`TOL`; exact medians
and level states; the workflows' cv_metrics.csv within :data:`TOL`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import random_survival_table
from survival_framework.contract import FOLD_COL, REPEAT_COL, ROW_COL
from survival_framework.io import write_json, write_parquet
from survival_framework.metrics import METRIC_NAMES
from survival_framework.models import MODEL_NAMES
from survival_framework.preprocess import output_columns
from survival_framework.schema import validate_survival_table
from survival_framework.splits import stratified_sample

TOL = 1e-9


def assert_close_json(a, b, path="$"):
    """Same structure; numbers within TOL (relative or absolute), everything else equal."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: keys {list(a)} != {b}"
        for k in a:
            assert_close_json(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close_json(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        assert b == pytest.approx(a, rel=TOL, abs=TOL), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def assert_same_splits(pandas_out: dict, spark_out: dict, n_folds: int) -> None:
    """Identical folds and grid; matrices and states equal within TOL (``*_out``: output
    paths as :func:`~survival_framework.etl.split_paths` names them; ``n_folds``: the
    number of resamples, R x K with repeats)."""
    folds_a = pd.read_parquet(pandas_out["folds_path"])
    folds_b = pd.read_parquet(spark_out["folds_path"])
    pd.testing.assert_frame_equal(folds_a, folds_b)
    assert json.loads(Path(pandas_out["grid_path"]).read_text()) == json.loads(
        Path(spark_out["grid_path"]).read_text()
    )
    for k in range(n_folds):
        state_a = json.loads(Path(pandas_out["preprocessor_paths"][k]).read_text())
        state_b = json.loads(Path(spark_out["preprocessor_paths"][k]).read_text())
        assert_close_json(state_a, state_b, f"fold_{k}")
        for part in ("train", "test"):
            a = pd.read_parquet(pandas_out[f"{part}_paths"][k])
            b = pd.read_parquet(spark_out[f"{part}_paths"][k])
            assert list(a.columns) == list(b.columns)
            assert list(a.dtypes) == list(b.dtypes), (a.dtypes, b.dtypes)
            a, b = a.sort_values(ROW_COL), b.sort_values(ROW_COL)
            assert a[ROW_COL].tolist() == b[ROW_COL].tolist()
            # resample k's repeat: its test rows are there with fold == k, the others train
            repeat = folds_a.loc[folds_a[FOLD_COL] == k, REPEAT_COL].unique()
            assert len(repeat) == 1
            same = folds_a[folds_a[REPEAT_COL] == repeat[0]]
            assert set(a[ROW_COL]) == set(
                same.loc[(same[FOLD_COL] == k) == (part == "test"), ROW_COL]
            )
            feats = output_columns(state_a)
            keys = [c for c in a.columns if c not in feats]
            pd.testing.assert_frame_equal(
                a[keys].reset_index(drop=True), b[keys].reset_index(drop=True)
            )
            np.testing.assert_allclose(
                b[feats].to_numpy(),
                a[feats].to_numpy(),
                rtol=TOL,
                atol=TOL,
                err_msg=f"fold {k} {part}",
            )


def assert_exact_states(a_out: dict, b_out: dict, n_folds: int) -> None:
    """Fold states of two engines: medians bit for bit, level states and training sizes
    identical, means and scales within 1e-12 relative (``*_out`` as for
    :func:`assert_same_splits`)."""
    for k in range(n_folds):
        a = json.loads(Path(a_out["preprocessor_paths"][k]).read_text())
        b = json.loads(Path(b_out["preprocessor_paths"][k]).read_text())
        assert a["categorical"] == b["categorical"]
        assert a["n_train"] == b["n_train"]
        for col, st in a["numeric"].items():
            assert b["numeric"][col]["median"] == st["median"], (k, col)
            for key in ("mean", "scale"):
                assert b["numeric"][col][key] == pytest.approx(st[key], rel=1e-12, abs=1e-15)


def assert_same_cv_metrics(a_dir: Path, b_dir: Path, n_folds: int) -> None:
    """The ``results/cv_metrics.csv`` of two workflow runs (their folders): the same rows
    (every model x fold x metric), values within :data:`TOL` absolute."""
    a = pd.read_csv(Path(a_dir) / "results/cv_metrics.csv")
    b = pd.read_csv(Path(b_dir) / "results/cv_metrics.csv")
    assert len(a) == len(MODEL_NAMES) * n_folds * len(METRIC_NAMES)
    pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
    np.testing.assert_allclose(b["value"], a["value"], rtol=0, atol=TOL)


# ------------------------------------------------------------------------------------
# the clean table
# ------------------------------------------------------------------------------------


def tricky_clean_table(tmp_path: Path) -> tuple[Path, Path]:
    """A validated table with what the ETL has to get right, written like validate_data."""
    rng = np.random.default_rng(11)
    df = random_survival_table(rng, n=900)
    df["customer id"] = [f"c{i:05d}" for i in range(len(df))]
    df["dose.mg"] = np.where(rng.random(len(df)) < 0.2, np.nan, rng.integers(0, 4, len(df)))
    df["site"] = rng.choice(
        ["b", "a", "c", "d", "z9"], size=len(df), p=[0.3, 0.3, 0.3, 0.095, 0.005]
    )
    df["score?"] = np.where(rng.random(len(df)) < 0.5, np.nan, 1.0)
    df.loc[df.index[:3], "score?"] = [2.0, 3.0, 4.0]
    clean, schema = validate_survival_table(
        df, "tricky.csv", "time", "event", id_col="customer id", min_rows=15
    )
    clean = stratified_sample(clean, "event", 700, seed=3)  # non-contiguous _row, as sample mode
    schema["n_rows_used"] = len(clean)
    write_parquet(clean, tmp_path / "clean.parquet")
    write_json(schema, tmp_path / "schema.json")
    return tmp_path / "clean.parquet", tmp_path / "schema.json"
