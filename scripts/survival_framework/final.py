"""The final model: refit on all rows and saved as one self-describing artifact.

``results/final/{model}/model.joblib`` holds, in one joblib file, everything needed to score
new data without the workflow: the fitted estimator, the preprocessing state (fitted on all
rows, as in the CV but on the whole table), the training schema (column names, roles,
dtypes, categorical levels), the default prediction times (the CV evaluation grid), the
grid used for median survival times, parameters, seed, row counts and provenance.
``results/final/best/`` holds the refit of the leaderboard's first model (``final.models:
best``, the default).
"""

from __future__ import annotations

import logging
import math
import os
import time as _time
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from . import preprocess
from .metrics import to_structured
from .models import get_model, model_input_dtype, model_seed

__all__ = [
    "ARTIFACT_FORMAT",
    "best_model",
    "training_schema",
    "median_grid",
    "FinalInputs",
    "final_inputs",
    "fit_final_model",
]

ARTIFACT_FORMAT = 1
_log = logging.getLogger(__name__)


def best_model(leaderboard: pd.DataFrame) -> str:
    """Name of the best ranked model of the leaderboard (``rank`` 1).

    Unranked models (no successful fold, or no finite mean primary metric: an empty
    ``rank``) are never chosen, nor is a model without successful folds (``n_folds``).

    Raises
    ------
    ValueError
        If no model is ranked (every fold of every model failed).
    """
    usable = leaderboard["rank"].notna().to_numpy()
    if "n_folds" in leaderboard:
        usable &= (leaderboard["n_folds"] > 0).to_numpy()
    ok = leaderboard[usable]
    if ok.empty:
        counts = leaderboard["n_failed"] if "n_failed" in leaderboard else ["?"] * len(leaderboard)
        failed = ", ".join(
            f"{m} ({n} failed)" for m, n in zip(leaderboard["model"], counts, strict=True)
        )
        raise ValueError(
            "no model is ranked on the leaderboard: every cross-validation fit failed "
            f"({failed}); their errors are in results/cv/<model>/fold_<k>/metrics.json"
        )
    return str(ok.sort_values("rank", kind="stable")["model"].iloc[0])


def training_schema(schema: dict, levels: dict[str, list[str]]) -> dict[str, Any]:
    """Columns a new table must provide: roles, training dtypes and categorical levels.

    ``input_dtype`` is the dtype of the column in the user's training file; ``levels`` are
    the categorical values seen in training (as strings, sorted:
    :func:`.preprocess.observed_levels`).
    """
    input_dtypes = schema.get("input_dtypes", {})
    columns = []
    for col in schema["numeric"]:
        columns.append({"name": col, "kind": "numeric", "input_dtype": input_dtypes.get(col)})
    for col in schema["categorical"]:
        columns.append(
            {
                "name": col,
                "kind": "categorical",
                "input_dtype": input_dtypes.get(col),
                "levels": list(levels[col]),
            }
        )
    return {
        "duration_col": schema["duration_col"],
        "event_col": schema["event_col"],
        "id_col": schema.get("id_col"),
        "columns": columns,
        "dropped": list(schema.get("dropped", [])),
    }


def median_grid(time: np.ndarray, event: np.ndarray, n_points: int = 200) -> np.ndarray:
    """Times at which survival curves are evaluated to find median survival times:
    up to ``n_points`` quantiles of the training event times."""
    ev = np.sort(np.asarray(time, float)[np.asarray(event).astype(bool)])
    return np.unique(np.quantile(ev, np.linspace(0, 1, n_points), method="inverted_cdf"))


def fit_final_model(
    model: str,
    params: dict[str, Any],
    clean: pd.DataFrame | str | os.PathLike,
    schema: dict,
    times: list[float],
    *,
    seed: int,
    n_folds: int,
    min_frequency: float = 0.01,
    max_levels: int | None = None,
    n_jobs: int = 1,
    log: logging.Logger | None = None,
    release_input: bool = False,
    batch_rows: int | None = None,
) -> dict[str, Any]:
    """Fit ``model`` on every row of ``clean`` and return the artifact dictionary.

    Parameters
    ----------
    model : str
        Registry name.
    params : dict
        Model parameters.
    clean : pandas.DataFrame or path-like
        The clean table, or its Parquet file (``results/data/clean.parquet``): read a column
        or a row batch at a time into the model matrix, so the table is never in memory
        whole (the workflow's path; the same artifact as from the DataFrame).
    schema : dict
        ``schema.json``.
    times : list of float
        Default prediction times (the CV evaluation grid).
    seed, n_folds : int
        The CV seed and number of CV resamples (``cv.n_folds x cv.n_repeats``; the folds
        with one repeat). The fit's seed is ``model_seed(seed, model, n_folds)``: the
        "fold" after the CV resamples, so the final fit never reuses a CV fit's random
        stream.
    min_frequency, max_levels
        Preprocessing settings (``preprocess.*``).
    n_jobs : int
    log : logging.Logger, optional
    release_input : bool
        With a DataFrame: drop its feature columns (in place) once they are in the model
        matrix.
    batch_rows : int, optional
        With a Parquet file: rows per batch read (default
        :data:`survival_framework.batches.BATCH_ROWS`).
    """
    log = log or _log
    t0 = _time.perf_counter()
    state, train_schema, X, y = final_inputs(
        clean,
        schema,
        dtype=model_input_dtype(model, params),
        min_frequency=min_frequency,
        max_levels=max_levels,
        release_input=release_input,
        batch_rows=batch_rows,
    )
    features = preprocess.output_columns(state)
    fit_seed = model_seed(seed, model, n_folds)
    estimator = get_model(model, random_state=fit_seed, n_jobs=n_jobs, **dict(params))
    log.info(
        "%s final fit started: %d rows, %d events, %d features (preprocessing %.1f s)",
        model,
        X.shape[0],
        int(y["event"].sum()),
        X.shape[1],
        _time.perf_counter() - t0,
    )
    t1 = _time.perf_counter()
    estimator.fit(X, y)
    fit_seconds = _time.perf_counter() - t1
    log.info("%s final fit finished in %.1f s", model, fit_seconds)
    if not all(math.isfinite(t) for t in times):
        raise ValueError(f"prediction times must be finite, got {times}")
    return {
        "format": ARTIFACT_FORMAT,
        "model_name": model,
        "params": dict(params),
        "seed": fit_seed,
        "estimator": estimator,
        "preprocessor": state,
        "features": features,
        "training_schema": train_schema,
        "times": [float(t) for t in times],
        "median_grid": median_grid(y["time"], y["event"]).tolist(),
        "n_train": int(X.shape[0]),
        "n_events": int(y["event"].sum()),
        "max_train_time": float(y["time"].max()),
        "fit_seconds": fit_seconds,
    }


class FinalInputs(NamedTuple):
    """What the final fit needs from the clean table (:func:`final_inputs`)."""

    state: dict
    """Preprocessing state fitted on every row."""
    training_schema: dict
    """:func:`training_schema` of the table."""
    X: np.ndarray
    """Model matrix (Fortran order)."""
    y: np.ndarray
    """Outcome as a structured array (``event``, ``time``)."""


def final_inputs(
    clean: pd.DataFrame | str | os.PathLike,
    schema: dict,
    *,
    dtype: type = np.float64,
    min_frequency: float = 0.01,
    max_levels: int | None = None,
    release_input: bool = False,
    batch_rows: int | None = None,
) -> FinalInputs:
    """Preprocessing state, training schema, model matrix and outcome of every row.

    From a Parquet file the statistics are fitted a column at a time (:func:`.etl.fit_states`,
    as the split stage fits the folds') and the matrix is filled a row batch at a time, so
    the job holds the matrix, the outcome and one column or batch of the raw table; the
    values equal those from the DataFrame read whole, bit for bit.
    (Parameters: :func:`fit_final_model`; ``dtype`` is the matrix's.)
    """
    if isinstance(clean, pd.DataFrame):
        return _frame_inputs(clean, schema, dtype, min_frequency, max_levels, release_input)
    return _parquet_inputs(clean, schema, dtype, min_frequency, max_levels, batch_rows)


def _frame_inputs(
    clean: pd.DataFrame,
    schema: dict,
    dtype: type,
    min_frequency: float,
    max_levels: int | None,
    release: bool,
) -> FinalInputs:
    """:func:`final_inputs` of a DataFrame."""
    dur, ev = schema["duration_col"], schema["event_col"]
    state = preprocess.fit_state(
        clean, schema["numeric"], schema["categorical"], min_frequency, max_levels=max_levels
    )
    levels = {
        col: preprocess.observed_levels(*preprocess.level_codes(clean[col]))
        for col in schema["categorical"]
    }
    y = to_structured(clean[ev].to_numpy(), clean[dur].to_numpy(float))
    # the raw columns are dropped as the matrix fills (release=True): the caller's table and
    # the matrix are never both whole in memory
    X = preprocess.transform_matrix(clean, state, dtype=dtype, release=release)
    return FinalInputs(state, training_schema(schema, levels), X, y)


def _parquet_inputs(
    path: str | os.PathLike,
    schema: dict,
    dtype: type,
    min_frequency: float,
    max_levels: int | None,
    batch_rows: int | None = None,
) -> FinalInputs:
    """:func:`final_inputs` of a Parquet file, streamed."""
    import pyarrow as pa

    from .batches import BATCH_ROWS, ParquetColumns
    from .etl import fit_states
    from .io import read_table

    read_table(path, columns=[])  # the checks and messages of a whole read
    table = ParquetColumns(path)
    dur, ev = schema["duration_col"], schema["event_col"]
    levels: dict[str, list[str]] = {}  # filled from the codes the statistics read
    state = fit_states(table, [None], schema, min_frequency, max_levels, levels)[0]
    y = to_structured(table.column(ev).to_numpy(), table.column(dur).to_numpy(float))
    X = np.empty((table.n_rows, len(preprocess.output_columns(state))), dtype=dtype, order="F")
    columns = [*schema["numeric"], *schema["categorical"]]
    for offset, batch in table.batches(columns, batch_rows or BATCH_ROWS):
        rows = slice(offset, offset + len(batch))
        for j, values in enumerate(preprocess.transform_columns(batch, state).values()):
            X[rows, j] = values
        del batch
    # Arrow's allocator keeps freed batch buffers for reuse; nothing else is read here
    pa.default_memory_pool().release_unused()
    return FinalInputs(state, training_schema(schema, levels), X, y)
