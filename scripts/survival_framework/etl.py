"""The pandas ETL path: folds, time grid and fold-fitted preprocessing, written as Parquet.

Layout written under ``out_dir`` (``results/splits``)::

    folds.parquet                 _row, fold          (test fold of every row)
    time_grid.json                evaluation times, tau, admissible range
    fold_{k}/train.parquet        _row, [id], duration, event, transformed features
    fold_{k}/test.parquet         same columns, test rows of fold k
    fold_{k}/preprocessor.json    statistics fitted on fold k's training rows only
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from . import preprocess
from .io import read_json, read_table, write_json, write_parquet
from .schema import ROW_COL
from .splits import assign_folds
from .timegrid import evaluation_time_grid

__all__ = ["run_pandas_etl", "fold_frames"]


def fold_frames(clean: pd.DataFrame, schema: dict, state: dict) -> pd.DataFrame:
    """Key columns of ``clean`` followed by its transformed features."""
    keys = [ROW_COL] + ([schema["id_col"]] if schema["id_col"] else [])
    keys += [schema["duration_col"], schema["event_col"]]
    return pd.concat(
        [
            clean[keys].reset_index(drop=True),
            preprocess.transform(clean, state).reset_index(drop=True),
        ],
        axis=1,
    )


def run_pandas_etl(
    clean_path: str,
    schema_path: str,
    out_dir: str | Path,
    n_folds: int,
    seed: int,
    min_frequency: float,
    n_times: int,
    quantiles: tuple[float, float],
    log: logging.Logger | None = None,
    max_levels: int | None = None,
) -> None:
    """Write folds, time grid and per-fold preprocessed splits (see module docstring)."""
    log = log or logging.getLogger(__name__)
    out_dir = Path(out_dir)
    schema = read_json(schema_path)
    clean = read_table(clean_path)
    dur, ev = schema["duration_col"], schema["event_col"]
    folds = assign_folds(clean[ev].to_numpy(), n_folds, seed)
    grid = evaluation_time_grid(
        clean[dur].to_numpy(), clean[ev].to_numpy(), folds, n_times, quantiles
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
        write_parquet(fold_frames(train, schema, state), out_dir / f"fold_{k}" / "train.parquet")
        write_parquet(fold_frames(test, schema, state), out_dir / f"fold_{k}" / "test.parquet")
        write_json(state, out_dir / f"fold_{k}" / "preprocessor.json")
        log.info(
            "fold %d: %d train / %d test rows, %d features",
            k,
            len(train),
            len(test),
            len(preprocess.output_columns(state)),
        )
    write_json(grid, out_dir / "time_grid.json")
    write_parquet(
        pd.DataFrame({ROW_COL: clean[ROW_COL].to_numpy(), "fold": folds}), out_dir / "folds.parquet"
    )
