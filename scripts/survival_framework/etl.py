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

The pandas engine streams: it holds the time, event, ``_row`` and fold arrays (a few bytes
a row), fits the fold statistics one column at a time (:func:`fit_fold_states`) and
writes the fold matrices one row batch at a time (:func:`write_fold_frames`), so its
memory does not grow with copies of the table.
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
from .batches import BATCH_ROWS, ParquetColumns, write_chunks
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
    "fit_fold_states",
    "fit_states",
    "category_codes",
    "write_fold_frames",
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
    batch_rows: int = BATCH_ROWS,
) -> None:
    """Write folds, time grid and per-fold preprocessed splits with pandas, streamed.

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
    batch_rows : int
        Rows per batch read and written: the job holds the event, time and fold arrays, one
        column while it fits the statistics, and one batch of every fold's matrices.

    Raises
    ------
    ValueError
        If the path lists do not hold one path per fold (:func:`check_split_paths`).
    """
    check_split_paths(n_folds, train_paths, test_paths, preprocessor_paths)
    log = log or logging.getLogger(__name__)
    schema = read_json(schema_path)
    read_table(clean_path, columns=[])  # the checks and messages of a whole read
    clean = ParquetColumns(clean_path)
    dur, ev = schema["duration_col"], schema["event_col"]
    folds, grid = folds_and_grid(
        clean.column(dur).to_numpy(), clean.column(ev).to_numpy(), n_folds, seed, n_times, quantiles
    )
    log.info(
        "time grid: %d points in [%g, %g], tau=%g",
        len(grid["times"]),
        grid["times"][0],
        grid["tau"],
        grid["tau"],
    )
    states = fit_fold_states(clean, folds, n_folds, schema, min_frequency, max_levels)
    write_fold_frames(clean, folds, schema, states, train_paths, test_paths, batch_rows)
    for k, state in enumerate(states):
        write_json(state, preprocessor_paths[k])
        log.info(
            "fold %d: %d train / %d test rows, %d features",
            k,
            state["n_train"],
            int((folds == k).sum()),
            len(preprocess.output_columns(state)),
        )
    write_folds_and_grid(clean.column(ROW_COL).to_numpy(), folds, grid, folds_path, grid_path)


def fit_fold_states(
    clean: ParquetColumns,
    folds: np.ndarray,
    n_folds: int,
    schema: dict,
    min_frequency: float,
    max_levels: int | None = None,
) -> list[dict]:
    """Every fold's preprocessing state, fitted a column at a time on its training rows.

    Equal to :func:`survival_framework.preprocess.fit_state` of each fold's training rows
    (same statistics, same bits: :func:`~survival_framework.preprocess.fit_numeric` sees
    the training values in table order; level counts come from integer codes), while only
    one column, and its training subset, is held at a time.

    Parameters
    ----------
    clean : ParquetColumns
        The clean table.
    folds : ndarray of int
        Test fold of every row.
    n_folds : int
    schema : dict
        ``schema.json`` (``numeric`` and ``categorical`` features).
    min_frequency : float
    max_levels : int, optional

    Returns
    -------
    list of dict
        The states of folds ``0 .. n_folds-1``.
    """
    trains = [folds != k for k in range(n_folds)]
    return fit_states(clean, trains, schema, min_frequency, max_levels)


def fit_states(
    clean: ParquetColumns,
    trains: Sequence[np.ndarray | None],
    schema: dict,
    min_frequency: float,
    max_levels: int | None = None,
) -> list[dict]:
    """Preprocessing states fitted a column at a time on subsets of the rows of ``clean``.

    Parameters
    ----------
    clean : ParquetColumns
        The clean table.
    trains : sequence of (boolean ndarray or None)
        The training rows of each state; ``None``: every row (the final model).
    schema : dict
        ``schema.json`` (``numeric`` and ``categorical`` features).
    min_frequency : float
    max_levels : int, optional

    Returns
    -------
    list of dict
        One state per entry of ``trains``, equal to
        :func:`survival_framework.preprocess.fit_state` of those rows.
    """
    every = slice(None)
    rows = [every if t is None else t for t in trains]
    numeric: list[dict] = [{} for _ in rows]
    for col in schema["numeric"]:
        x = clean.column(col).to_numpy(dtype=float)
        for k, r in enumerate(rows):
            numeric[k][col] = preprocess.fit_numeric(x[r])
        del x
    categorical: list[dict] = [{} for _ in rows]
    for col in schema["categorical"]:
        codes, levels = category_codes(clean, col)
        for k, r in enumerate(rows):
            categorical[k][col] = preprocess.fit_categorical_codes(
                codes[r], levels, min_frequency, max_levels
            )
        del codes
    return [
        preprocess.assemble_state(
            numeric[k],
            categorical[k],
            min_frequency,
            max_levels,
            clean.n_rows if r is every else int(r.sum()),
        )
        for k, r in enumerate(rows)
    ]


def category_codes(clean: ParquetColumns, col: str) -> tuple[np.ndarray, list[str]]:
    """A categorical column as level codes and levels (:func:`~.preprocess.level_codes`).

    A text column is read dictionary-encoded: no Python string per row.
    """
    coded = clean.string_codes(col)
    return coded if coded is not None else preprocess.level_codes(clean.column(col))


def write_fold_frames(
    clean: ParquetColumns,
    folds: np.ndarray,
    schema: dict,
    states: Sequence[dict],
    train_paths: Sequence[str | os.PathLike],
    test_paths: Sequence[str | os.PathLike],
    batch_rows: int = BATCH_ROWS,
) -> None:
    """Write every fold's train and test matrices (:func:`fold_frames`) in row batches.

    One pass over ``clean``: each batch is transformed with each fold's state (the
    transform is row by row, so a batch gives the rows of the whole-table transform) and
    its rows appended to that fold's train or test file, in table order. The files hold
    the rows, columns, dtypes and values of ``fold_frames(clean[folds != k], ...)`` and
    ``fold_frames(clean[folds == k], ...)``; they are moved into place together at the end.
    """
    keys = key_columns(schema)
    n_folds = len(states)
    with write_chunks([*train_paths, *test_paths]) as writers:
        for offset, batch in clean.batches(
            [*keys, *schema["numeric"], *schema["categorical"]], batch_rows
        ):
            fold = folds[offset : offset + len(batch)]
            key_arrays = {c: batch[c].to_numpy() for c in keys}
            for k, state in enumerate(states):
                # the columns of fold_frames(batch, schema, state), as arrays
                arrays = {**key_arrays, **preprocess.transform_columns(batch, state)}
                test = fold == k
                for rows, writer in ((~test, writers[k]), (test, writers[n_folds + k])):
                    writer.write_arrays({c: a[rows] for c, a in arrays.items()})
                del arrays
