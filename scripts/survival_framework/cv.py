"""Fit and evaluate one model on one cross-validation fold, recording failures."""

from __future__ import annotations

import importlib
import logging
import time as _time
import traceback
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from .arrow import from_numpy
from .contract import RISK_COL, prediction_column
from .matrix import FoldArrays
from .metrics import METRIC_NAMES, evaluate_predictions, to_structured
from .models import get_model

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["fit_and_evaluate"]

_log = logging.getLogger(__name__)  # per-stage progress lines in the job's log


def fit_and_evaluate(
    model: str,
    params: dict[str, Any],
    train: FoldArrays,
    test: FoldArrays,
    times: np.ndarray,
    tau: float,
    seed: int,
    n_jobs: int = 1,
    batch_size: int = 50_000,
    strict: bool = False,
    release_matrices: bool = False,
) -> tuple[dict[str, Any], pa.Table | None]:
    """Fit ``model`` on ``train``, predict ``test`` and compute every metric.

    A failure (exception while fitting, predicting or scoring) is recorded in the returned
    record with NaN metrics instead of being raised, unless ``strict``; warnings (e.g.
    convergence warnings) are captured into the record either way.

    Parameters
    ----------
    model : str
        Registry name of the model.
    params : dict
        Its constructor parameters.
    train, test : FoldArrays
        The fold's training and test rows (:func:`survival_framework.matrix.read_fold`).
    times : ndarray
        Evaluation time grid.
    tau : float
        Truncation time of Uno's C.
    seed : int
        Seed of the model.
    n_jobs : int
        Threads of the model and of the BLAS/OpenMP pools.
    batch_size : int
        Test rows predicted at once.
    strict : bool
        Raise instead of recording a failure.
    release_matrices : bool
        Set ``train.X`` to None after the fit and ``test.X`` after predicting, so a caller
        that holds no other reference gets their memory back before the next stage (the
        scoring needs only times, events and predictions).

    Returns
    -------
    record : dict
        Status, metrics, timings, warnings and error of this model x fold.
    predictions : pyarrow.Table or None
        Risk score and survival probabilities per test row, in test row order (None on
        failure).
    """
    times = np.asarray(times, dtype=float)
    record: dict[str, Any] = {
        "status": "ok",
        "metrics": dict.fromkeys(METRIC_NAMES, float("nan")),
        "error": None,
        "warnings": [],
        "n_train": len(train),
        "n_test": len(test),
        "n_events_train": int(train.event.sum()),
        "n_events_test": int(test.event.sum()),
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
            y_train = to_structured(train.event, train.time)
            y_test = to_structured(test.event, test.time)
            estimator = get_model(model, random_state=seed, n_jobs=n_jobs, **params)
            # not timed as fitting (a model outside the registry may not declare them)
            for module in getattr(estimator, "required_modules", tuple)():
                importlib.import_module(module)
            t0 = _time.perf_counter()
            _log.info("%s: fit started (%d rows x %d features)", model, *train.X.shape)
            estimator.fit(train.X, y_train)
            if release_matrices:
                train.X = None
            t1 = _time.perf_counter()
            _log.info("%s: fit finished in %.1f s; predicting %d rows", model, t1 - t0, len(test))
            # risk and survival curves from one pass over the model per row batch
            # and each row's survival at its own time (D-calibration)
            risk, surv, surv_at = estimator.predict_risk_and_survival(
                test.X, times, batch_size=batch_size, at=test.time
            )
            if release_matrices:
                test.X = None
            t2 = _time.perf_counter()
            _log.info("%s: predict finished in %.1f s; scoring", model, t2 - t1)
            if not np.all(np.isfinite(risk)) or not np.all(np.isfinite(surv)):
                raise FloatingPointError("model produced non-finite risk scores or probabilities")
            if not np.all(np.isfinite(surv_at)):
                raise FloatingPointError("model produced non-finite survival probabilities")
            record["metrics"] = evaluate_predictions(
                y_train, y_test, risk, surv, times, tau, surv_at
            )
            t3 = _time.perf_counter()
            record.update(fit_seconds=t1 - t0, predict_seconds=t2 - t1, score_seconds=t3 - t2)
            import pyarrow as pa

            predictions = pa.Table.from_arrays(
                [from_numpy(risk)] + [from_numpy(surv[:, j]) for j in range(len(times))],
                names=[RISK_COL] + [prediction_column(t) for t in times],
            )
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
