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
import time as _time
from typing import Any

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
    "fit_final_model",
]

ARTIFACT_FORMAT = 1
_log = logging.getLogger(__name__)


def best_model(leaderboard: pd.DataFrame) -> str:
    """Name of the best ranked model of the leaderboard (``rank`` 1).

    Unranked models (no successful fold: an empty ``rank``) are never chosen, nor is a model
    without a finite ``uno_c_mean`` or without successful folds (``n_folds``).

    Raises
    ------
    ValueError
        If no model is ranked (every fold of every model failed).
    """
    usable = np.isfinite(leaderboard["uno_c_mean"].to_numpy(float))
    usable &= leaderboard["rank"].notna().to_numpy()
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


def training_schema(clean: pd.DataFrame, schema: dict) -> dict[str, Any]:
    """Columns a new table must provide: roles, training dtypes and categorical levels.

    ``input_dtype`` is the dtype of the column in the user's training file; ``levels`` are
    the categorical values seen in training (as strings).
    """
    input_dtypes = schema.get("input_dtypes", {})
    columns = []
    for col in schema["numeric"]:
        columns.append({"name": col, "kind": "numeric", "input_dtype": input_dtypes.get(col)})
    for col in schema["categorical"]:
        levels = sorted(pd.unique(clean[col].dropna().astype(str)).tolist())
        columns.append(
            {
                "name": col,
                "kind": "categorical",
                "input_dtype": input_dtypes.get(col),
                "levels": levels,
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
    clean: pd.DataFrame,
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
) -> dict[str, Any]:
    """Fit ``model`` on every row of ``clean`` and return the artifact dictionary.

    The seed is ``model_seed(seed, model, n_folds)``: the "fold" after the CV folds, so the
    final fit never reuses a CV fit's random stream. With ``release_input``, the feature
    columns of ``clean`` are dropped (in place) once they are in the model matrix.
    """
    log = log or _log
    dur, ev = schema["duration_col"], schema["event_col"]
    t0 = _time.perf_counter()
    state = preprocess.fit_state(
        clean, schema["numeric"], schema["categorical"], min_frequency, max_levels=max_levels
    )
    features = preprocess.output_columns(state)
    train_schema = training_schema(clean, schema)
    y = to_structured(clean[ev].to_numpy(), clean[dur].to_numpy(float))
    # the raw columns are dropped as the matrix fills (release=True): the caller's table and
    # the matrix are never both whole in memory
    X = preprocess.transform_matrix(
        clean, state, dtype=model_input_dtype(model, params), release=release_input
    )
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
