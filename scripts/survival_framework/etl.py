"""The split stage: folds, time grid and fold-fitted preprocessing, written as Parquet.

What the two engines share lives here (the outputs, the folds and the grid, how they are
written), with the pandas engine, :func:`run_pandas_etl`; the Spark engine is
:func:`survival_framework.spark_etl.run_spark_etl`. Both write exactly the paths they are
given: the outputs that rules ``split_data`` and ``split_data_spark`` declare, the last
three one per fold, in fold order::

    folds_path             folds.parquet             _row, fold (test fold of every row)
    grid_path              time_grid.json            evaluation times, tau, admissible range
    train_paths[k]         fold_{k}/train.parquet    _row, [id], duration, event, features
    test_paths[k]          fold_{k}/test.parquet     same columns, test rows of fold k
    preprocessor_paths[k]  fold_{k}/preprocessor.json  statistics fitted on fold k's training
                                                       rows only

(file names as the workflow declares them, under ``results/splits``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import preprocess
from .contract import FOLD_COL, ROW_COL
from .io import read_json, read_table, write_json, write_parquet
from .splits import assign_folds
from .timegrid import evaluation_time_grid

__all__ = [
    "etl_arguments",
    "split_paths",
    "check_split_paths",
    "key_columns",
    "folds_and_grid",
    "write_folds_and_grid",
    "fold_frames",
    "run_pandas_etl",
]


def etl_arguments(smk: Any) -> dict[str, Any]:
    """Arguments of :func:`run_pandas_etl` and ``run_spark_etl`` from a split rule.

    Both rules declare the same inputs, outputs and params (``rules/splits.smk``,
    ``rules/spark.smk``); the outputs are passed as declared, never rebuilt.

    Parameters
    ----------
    smk : snakemake.script.Snakemake
        The rule script's ``snakemake`` object.

    Returns
    -------
    dict
        Keyword arguments: input and output paths, the fold, grid and preprocessing params.
    """
    out, p = smk.output, smk.params
    return {
        "clean_path": smk.input.clean,
        "schema_path": smk.input.schema,
        "folds_path": out.folds,
        "grid_path": out.grid,
        "train_paths": list(out.train),
        "test_paths": list(out.test),
        "preprocessor_paths": list(out.preprocessor),
        "n_folds": p.n_folds,
        "seed": p.seed,
        "min_frequency": p.min_frequency,
        "max_levels": p.max_levels,
        "n_times": p.n_times,
        "quantiles": tuple(p.time_quantiles),
    }


def split_paths(out_dir: str | os.PathLike, n_folds: int) -> dict[str, Any]:
    """The workflow's output paths under ``out_dir``, for callers outside Snakemake.

    Tests and the ETL benchmark use it; the rules declare the same layout themselves and
    their scripts pass those paths (:func:`etl_arguments`).

    Returns
    -------
    dict
        ``folds_path``, ``grid_path``, ``train_paths``, ``test_paths``,
        ``preprocessor_paths`` (lists in fold order).
    """
    out_dir = Path(out_dir)
    folds = [out_dir / f"fold_{k}" for k in range(n_folds)]
    return {
        "folds_path": out_dir / "folds.parquet",
        "grid_path": out_dir / "time_grid.json",
        "train_paths": [d / "train.parquet" for d in folds],
        "test_paths": [d / "test.parquet" for d in folds],
        "preprocessor_paths": [d / "preprocessor.json" for d in folds],
    }


def check_split_paths(
    n_folds: int,
    train_paths: Sequence[str | os.PathLike],
    test_paths: Sequence[str | os.PathLike],
    preprocessor_paths: Sequence[str | os.PathLike],
) -> None:
    """Check that there is one train, test and preprocessor path per fold.

    Raises
    ------
    ValueError
        If a list's length is not ``n_folds`` (e.g. ``cv.n_folds`` and the rule's
        ``expand(..., fold=FOLDS)`` disagree).
    """
    for name, paths in (
        ("train_paths", train_paths),
        ("test_paths", test_paths),
        ("preprocessor_paths", preprocessor_paths),
    ):
        if len(paths) != n_folds:
            raise ValueError(
                f"{name}: {len(paths)} path(s) for n_folds={n_folds}; "
                "expected one per fold, in fold order"
            )


def key_columns(schema: dict) -> list[str]:
    """``_row``, the id column (if any), duration and event: the split files' first columns."""
    keys = [ROW_COL] + ([schema["id_col"]] if schema["id_col"] else [])
    return keys + [schema["duration_col"], schema["event_col"]]


def folds_and_grid(
    time: np.ndarray,
    event: np.ndarray,
    n_folds: int,
    seed: int,
    n_times: int,
    quantiles: tuple[float, float],
) -> tuple[np.ndarray, dict]:
    """Test fold of every row (:func:`~survival_framework.splits.assign_folds`) and the
    evaluation grid valid for every fold
    (:func:`~survival_framework.timegrid.evaluation_time_grid`), rows in ``_row`` order."""
    folds = assign_folds(event, n_folds, seed)
    return folds, evaluation_time_grid(time, event, folds, n_times, quantiles)


def write_folds_and_grid(
    row: np.ndarray,
    folds: np.ndarray,
    grid: dict,
    folds_path: str | os.PathLike,
    grid_path: str | os.PathLike,
) -> None:
    """Write the time grid (JSON) and the fold of every ``_row`` (Parquet)."""
    write_json(grid, grid_path)
    write_parquet(pd.DataFrame({ROW_COL: row, FOLD_COL: folds}), folds_path)


def fold_frames(clean: pd.DataFrame, schema: dict, state: dict) -> pd.DataFrame:
    """Key columns of ``clean`` followed by its transformed features."""
    return pd.concat(
        [
            clean[key_columns(schema)].reset_index(drop=True),
            preprocess.transform(clean, state).reset_index(drop=True),
        ],
        axis=1,
    )


def run_pandas_etl(
    clean_path: str | os.PathLike,
    schema_path: str | os.PathLike,
    *,
    folds_path: str | os.PathLike,
    grid_path: str | os.PathLike,
    train_paths: Sequence[str | os.PathLike],
    test_paths: Sequence[str | os.PathLike],
    preprocessor_paths: Sequence[str | os.PathLike],
    n_folds: int,
    seed: int,
    min_frequency: float,
    n_times: int,
    quantiles: tuple[float, float],
    log: logging.Logger | None = None,
    max_levels: int | None = None,
) -> None:
    """Write folds, time grid and per-fold preprocessed splits with pandas.

    Parameters
    ----------
    clean_path, schema_path : path-like
        ``results/data/clean.parquet`` and ``schema.json`` (written by ``validate_data``).
    folds_path, grid_path : path-like
        Where to write the folds and the time grid.
    train_paths, test_paths, preprocessor_paths : sequence of path-like
        Where to write fold k's matrices and fitted state: one path per fold, in fold order.
    n_folds, seed : int
        Number of folds and the seed of their assignment.
    min_frequency : float
        Rare-level threshold (``preprocess.rare_min_frequency``).
    n_times : int
        Points of the evaluation time grid.
    quantiles : (float, float)
        Range of the grid in quantiles of the event times.
    log : logging.Logger, optional
    max_levels : int, optional
        Most levels kept per categorical column (``preprocess.max_levels``).

    Raises
    ------
    ValueError
        If the path lists do not hold one path per fold (:func:`check_split_paths`).
    """
    check_split_paths(n_folds, train_paths, test_paths, preprocessor_paths)
    log = log or logging.getLogger(__name__)
    schema = read_json(schema_path)
    clean = read_table(clean_path)
    dur, ev = schema["duration_col"], schema["event_col"]
    folds, grid = folds_and_grid(
        clean[dur].to_numpy(), clean[ev].to_numpy(), n_folds, seed, n_times, quantiles
    )
    log.info(
        "time grid: %d points in [%g, %g], tau=%g",
        len(grid["times"]),
        grid["times"][0],
        grid["tau"],
        grid["tau"],
    )
    for k in range(n_folds):
        train, test = clean[folds != k], clean[folds == k]
        state = preprocess.fit_state(
            train, schema["numeric"], schema["categorical"], min_frequency, max_levels
        )
        write_parquet(fold_frames(train, schema, state), train_paths[k])
        write_parquet(fold_frames(test, schema, state), test_paths[k])
        write_json(state, preprocessor_paths[k])
        log.info(
            "fold %d: %d train / %d test rows, %d features",
            k,
            len(train),
            len(test),
            len(preprocess.output_columns(state)),
        )
    write_folds_and_grid(clean[ROW_COL].to_numpy(), folds, grid, folds_path, grid_path)
