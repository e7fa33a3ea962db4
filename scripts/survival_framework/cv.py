"""Fit and evaluate one model on one cross-validation fold, recording failures."""

from __future__ import annotations

import logging
import time as _time
import traceback
import warnings
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .contract import RISK_COL, prediction_column
from .metrics import METRIC_NAMES, evaluate_predictions, to_structured
from .models import get_model

__all__ = ["fit_and_evaluate"]

_log = logging.getLogger(__name__)  # per-stage progress lines in the job's log


def fit_and_evaluate(
    model: str,
    params: dict[str, Any],
    train: pd.DataFrame,
    test: pd.DataFrame,
    features: list[str],
    duration_col: str,
    event_col: str,
    times: np.ndarray,
    tau: float,
    seed: int,
    n_jobs: int = 1,
    batch_size: int = 50_000,
    strict: bool = False,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Fit ``model`` on ``train``, predict ``test`` and compute every metric.

    A failure (exception while fitting, predicting or scoring) is recorded in the returned
    record with NaN metrics instead of being raised, unless ``strict``; warnings (e.g.
    convergence warnings) are captured into the record either way.

    Returns
    -------
    record : dict
        Status, metrics, timings, warnings and error of this model x fold.
    predictions : pandas.DataFrame or None
        Risk score and survival probabilities per test row (None on failure).
    """
    times = np.asarray(times, dtype=float)
    record: dict[str, Any] = {
        "status": "ok",
        "metrics": dict.fromkeys(METRIC_NAMES, float("nan")),
        "error": None,
        "warnings": [],
        "n_train": len(train),
        "n_test": len(test),
        "n_events_train": int(train[event_col].sum()),
        "n_events_test": int(test[event_col].sum()),
        "fit_seconds": None,
        "predict_seconds": None,
        "score_seconds": None,
    }
    predictions = None
    # BLAS/OpenMP pools sized to the job's threads: parallel model x fold jobs on N cores
    # must not each start N BLAS threads (oversubscription)
    with (
        threadpool_limits(limits=max(1, int(n_jobs))),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        try:
            X_train = train[features].to_numpy(dtype=float)
            X_test = test[features].to_numpy(dtype=float)
            y_train = to_structured(train[event_col], train[duration_col])
            y_test = to_structured(test[event_col], test[duration_col])
            estimator = get_model(model, random_state=seed, n_jobs=n_jobs, **params)
            t0 = _time.perf_counter()
            _log.info("%s: fit started (%d rows x %d features)", model, *X_train.shape)
            estimator.fit(X_train, y_train)
            t1 = _time.perf_counter()
            _log.info("%s: fit finished in %.1f s; predicting %d rows", model, t1 - t0, len(X_test))
            risk = estimator.predict(X_test)
            surv = estimator.predict_survival(X_test, times, batch_size=batch_size)
            t2 = _time.perf_counter()
            _log.info("%s: predict finished in %.1f s; scoring", model, t2 - t1)
            if not np.all(np.isfinite(risk)) or not np.all(np.isfinite(surv)):
                raise FloatingPointError("model produced non-finite risk scores or probabilities")
            record["metrics"] = evaluate_predictions(y_train, y_test, risk, surv, times, tau)
            t3 = _time.perf_counter()
            record.update(fit_seconds=t1 - t0, predict_seconds=t2 - t1, score_seconds=t3 - t2)
            predictions = pd.DataFrame({RISK_COL: risk}, index=test.index)
            surv_df = pd.DataFrame(
                surv, columns=[prediction_column(t) for t in times], index=test.index
            )
            predictions = pd.concat([predictions, surv_df], axis=1)
        except Exception as exc:
            if strict:
                raise
            # nothing of a failed fold counts: not metrics computed before the failure
            # (the leaderboard ranks on status and metrics), nor partial predictions
            predictions = None
            record["metrics"] = dict.fromkeys(METRIC_NAMES, float("nan"))
            record["status"] = "failed"
            record["error"] = {
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(),
            }
    record["warnings"] = [
        {"category": w.category.__name__, "message": str(w.message)} for w in caught
    ]
    return record, predictions
