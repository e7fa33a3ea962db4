"""The split stage: folds, time grid and fold-fitted preprocessing, written as Parquet.

What the two engines share lives here (the outputs, the folds and the grid, how they are
written), with the pandas engine, :func:`run_pandas_etl`; the Spark engine is
:func:`survival_framework.spark_etl.run_spark_etl`. Both write exactly the paths they are
given: the outputs that rules ``split_data`` and ``split_data_spark`` declare, the last
three one per resample, in resample order::

    folds_path             folds.parquet             _row, repeat, fold (test resample of
                                                     every row in every repeat)
    grid_path              time_grid.json            evaluation times, tau, admissible range
    train_paths[f]         fold_{f}/train.parquet    _row, [id], duration, event, features
    test_paths[f]          fold_{f}/test.parquet     same columns, test rows of resample f
    preprocessor_paths[f]  fold_{f}/preprocessor.json  statistics fitted on resample f's
                                                       training rows only

(file names as the workflow declares them, under ``results/splits``). With ``cv.n_repeats``
= R and ``cv.n_folds`` = K there are R x K resamples: resample ``f = r * K + k`` is fold ``k``
of repeat ``r`` (:mod:`survival_framework.splits`); its test rows are the rows of repeat ``r``
with ``fold == f``, its training rows the other rows. ``folds.parquet`` is long: one row per
row and repeat, repeat by repeat, each in ``_row`` order. With R = 1 the resamples are the K
folds and every file but ``folds.parquet`` (which gains ``repeat``, all 0) is what the plain
K-fold wrote.

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
from .contract import FOLD_COL, REPEAT_COL, ROW_COL
from .io import read_json, read_table, write_json, write_parquet
from .splits import assign_repeated_folds
from .timegrid import evaluation_time_grid

__all__ = [
    "etl_arguments",
    "split_paths",
    "check_split_paths",
    "key_columns",
    "folds_and_grid",
    "repeat_folds",
    "training_rows",
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
        "n_repeats": p.n_repeats,
        "seed": p.seed,
        "min_frequency": p.min_frequency,
        "max_levels": p.max_levels,
        "n_times": p.n_times,
        "quantiles": tuple(p.time_quantiles),
    }


def split_paths(out_dir: str | os.PathLike, n_folds: int, n_repeats: int = 1) -> dict[str, Any]:
    """The workflow's output paths under ``out_dir``, for callers outside Snakemake.

    Tests and the ETL benchmark use it; the rules declare the same layout themselves and
    their scripts pass those paths (:func:`etl_arguments`).

    Returns
    -------
    dict
        ``folds_path``, ``grid_path``, ``train_paths``, ``test_paths``,
        ``preprocessor_paths`` (lists in resample order: ``fold_0 .. fold_{R*K-1}``).
    """
    out_dir = Path(out_dir)
    folds = [out_dir / f"fold_{f}" for f in range(n_folds * n_repeats)]
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
    n_repeats: int = 1,
) -> None:
    """Check that there is one train, test and preprocessor path per resample.

    Raises
    ------
    ValueError
        If a list's length is not ``n_folds * n_repeats`` (e.g. ``cv.n_folds`` or
        ``cv.n_repeats`` and the rule's ``expand(..., fold=FOLDS)`` disagree).
    """
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
    design = f"n_folds={n_folds}" + (f" x n_repeats={n_repeats}" if n_repeats != 1 else "")
    for name, paths in (
        ("train_paths", train_paths),
        ("test_paths", test_paths),
        ("preprocessor_paths", preprocessor_paths),
    ):
        if len(paths) != n_folds * n_repeats:
            raise ValueError(
                f"{name}: {len(paths)} path(s) for {design}; expected one per fold, in fold order"
            )


def check_keys(row: np.ndarray, time_: np.ndarray, event: np.ndarray, schema: dict) -> None:
    """The checks of the clean table's keys that the folds and the grid rely on (the
    distributed engines, which read the table without :func:`run_pandas_etl`'s reads)."""
    src = schema.get("source", "clean table")
    expected_rows = schema.get("n_rows_used")
    if expected_rows is not None and row.size != expected_rows:
        raise ValueError(
            f"{src}: clean table has {row.size} rows, schema.json says {expected_rows}"
        )
    if row.size > 1 and not (np.diff(row) > 0).all():
        raise ValueError(f"{src}: clean table is not ordered by {ROW_COL} (unique, increasing)")
    if not np.isfinite(time_).all() or (time_ < 0).any():
        raise ValueError(f"{src}, column {schema['duration_col']!r}: missing or negative durations")
    if not np.isin(event, (0, 1)).all():
        raise ValueError(f"{src}, column {schema['event_col']!r}: events must be 0/1")


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
    n_repeats: int = 1,
) -> tuple[np.ndarray, dict]:
    """Test resample of every row in every repeat and the evaluation grid valid for every
    resample, rows in ``_row`` order: what both engines split by.

    Returns
    -------
    folds : ndarray of shape (n_repeats, n_samples), dtype int64
        :func:`~survival_framework.splits.assign_repeated_folds` (row 0 is the plain K-fold
        of ``seed``).
    grid : dict
        :func:`~survival_framework.timegrid.evaluation_time_grid` of every resample.
    """
    folds = assign_repeated_folds(event, n_folds, n_repeats, seed)
    return folds, evaluation_time_grid(time, event, folds, n_times, quantiles)


def repeat_folds(folds: np.ndarray) -> np.ndarray:
    """``folds`` as an array of shape (n_repeats, n_samples): a 1-D fold array (one
    repeat) becomes one row."""
    folds = np.asarray(folds)
    return folds.reshape(1, -1) if folds.ndim == 1 else folds


def training_rows(folds: np.ndarray, n_folds: int) -> list[np.ndarray]:
    """Boolean mask of the training rows of every resample, in resample order.

    Resample ``f`` is fold ``f % K`` of repeat ``f // K``: its training rows are the rows
    of that repeat whose fold is not ``f``.

    Parameters
    ----------
    folds : ndarray of shape (n_samples,) or (n_repeats, n_samples)
        Test resample of every row in every repeat (:func:`folds_and_grid`).
    n_folds : int
        Folds per repeat ``K``.
    """
    folds = repeat_folds(folds)
    return [folds[f // n_folds] != f for f in range(folds.shape[0] * n_folds)]


def write_folds_and_grid(
    row: np.ndarray,
    folds: np.ndarray,
    grid: dict,
    folds_path: str | os.PathLike,
    grid_path: str | os.PathLike,
) -> None:
    """Write the time grid (JSON) and the test resample of every ``_row`` in every repeat
    (Parquet, long: ``_row, repeat, fold``, repeat by repeat, each in the order of ``row``)."""
    folds = repeat_folds(folds)
    n_repeats, n_rows = folds.shape
    write_json(grid, grid_path)
    table = pd.DataFrame(
        {
            ROW_COL: np.tile(np.asarray(row), n_repeats),
            REPEAT_COL: np.repeat(np.arange(n_repeats, dtype=np.int64), n_rows),
            FOLD_COL: folds.reshape(-1),
        }
    )
    write_parquet(table, folds_path)


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
    n_repeats: int = 1,
) -> None:
    """Write folds, time grid and per-resample preprocessed splits with pandas, streamed.

    Parameters
    ----------
    clean_path, schema_path : path-like
        ``results/data/clean.parquet`` and ``schema.json`` (written by ``validate_data``).
    folds_path, grid_path : path-like
        Where to write the folds and the time grid.
    train_paths, test_paths, preprocessor_paths : sequence of path-like
        Where to write resample f's matrices and fitted state: one path per resample
        (``n_folds * n_repeats``), in resample order.
    n_folds, seed : int
        Number of folds per repeat and the seed of their assignment (``cv.seed``).
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
        column while it fits the statistics, and one batch of every resample's matrices.
    n_repeats : int
        Repeats of the K-fold (``cv.n_repeats``); 1 writes exactly the plain K-fold.

    Raises
    ------
    ValueError
        If the path lists do not hold one path per resample (:func:`check_split_paths`).
    """
    check_split_paths(n_folds, train_paths, test_paths, preprocessor_paths, n_repeats)
    log = log or logging.getLogger(__name__)
    schema = read_json(schema_path)
    read_table(clean_path, columns=[])  # the checks and messages of a whole read
    clean = ParquetColumns(clean_path)
    dur, ev = schema["duration_col"], schema["event_col"]
    folds, grid = folds_and_grid(
        clean.column(dur).to_numpy(),
        clean.column(ev).to_numpy(),
        n_folds,
        seed,
        n_times,
        quantiles,
        n_repeats,
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
    for f, state in enumerate(states):
        write_json(state, preprocessor_paths[f])
        log.info(
            "fold %d: %d train / %d test rows, %d features",
            f,
            state["n_train"],
            int((folds[f // n_folds] == f).sum()),
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
    """Every resample's preprocessing state, fitted a column at a time on its training rows.

    Equal to :func:`survival_framework.preprocess.fit_state` of each resample's training rows
    (same statistics, same bits: :func:`~survival_framework.preprocess.fit_numeric` sees
    the training values in table order; level counts come from integer codes), while only
    one column, and its training subset, is held at a time.

    Parameters
    ----------
    clean : ParquetColumns
        The clean table.
    folds : ndarray of int, shape (n_samples,) or (n_repeats, n_samples)
        Test fold of every row, or test resample of every row in every repeat
        (:func:`folds_and_grid`).
    n_folds : int
        Folds per repeat ``K``.
    schema : dict
        ``schema.json`` (``numeric`` and ``categorical`` features).
    min_frequency : float
    max_levels : int, optional

    Returns
    -------
    list of dict
        The states of resamples ``0 .. n_repeats * n_folds - 1`` (:func:`training_rows`).
    """
    return fit_states(clean, training_rows(folds, n_folds), schema, min_frequency, max_levels)


def fit_states(
    clean: ParquetColumns,
    trains: Sequence[np.ndarray | None],
    schema: dict,
    min_frequency: float,
    max_levels: int | None = None,
    observed: dict[str, list[str]] | None = None,
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
    observed : dict, optional
        Filled with each categorical column's sorted levels that occur in ``clean``
        (:func:`.preprocess.observed_levels`), from the same read of its codes.

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
        if observed is not None:
            observed[col] = preprocess.observed_levels(codes, levels)
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
    """Write every resample's train and test matrices (:func:`fold_frames`) in row batches.

    One pass over ``clean``: each batch is transformed with each resample's state (the
    transform is row by row, so a batch gives the rows of the whole-table transform) and
    its rows appended to that resample's train or test file, in table order. With ``folds``
    of shape (n_repeats, n_samples) (:func:`folds_and_grid`), resample ``f`` splits by repeat
    ``f // K`` (``K = len(states) // n_repeats``). The files hold the rows, columns, dtypes
    and values of ``fold_frames(clean[fold != f], ...)`` and ``fold_frames(clean[fold == f],
    ...)``, ``fold`` the resample's repeat; they are moved into place together at the end.
    """
    keys = key_columns(schema)
    folds = repeat_folds(folds)
    n_resamples = len(states)
    n_folds = n_resamples // folds.shape[0]
    with write_chunks([*train_paths, *test_paths]) as writers:
        for offset, batch in clean.batches(
            [*keys, *schema["numeric"], *schema["categorical"]], batch_rows
        ):
            key_arrays = {c: batch[c].to_numpy() for c in keys}
            for f, state in enumerate(states):
                fold = folds[f // n_folds, offset : offset + len(batch)]
                # the columns of fold_frames(batch, schema, state), as arrays
                arrays = {**key_arrays, **preprocess.transform_columns(batch, state)}
                test = fold == f
                for rows, writer in ((~test, writers[f]), (test, writers[n_resamples + f])):
                    writer.write_arrays({c: a[rows] for c, a in arrays.items()})
                del arrays
