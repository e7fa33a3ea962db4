"""The output contract: reserved column names, file suffixes and other shared names.

Every name that a rule, a script, a test or the benchmark needs to agree on is defined here,
once (model names come from :data:`survival_framework.models.MODEL_NAMES`, the registry).
The module imports nothing heavy, so the Snakefile, the tests and every stage can use it.
"""

from __future__ import annotations

__all__ = [
    "DATA_SUFFIXES",
    "FOLD_COL",
    "MEDIAN_COL",
    "METRIC_COLUMNS",
    "OTHER",
    "PARQUET_SUFFIXES",
    "PREDICT_SUFFIXES",
    "REPEAT_COL",
    "RESERVED_COLUMNS",
    "RISK_COL",
    "ROW_COL",
    "SURV_PREFIX",
    "prediction_column",
]

ROW_COL = "_row"
"""Column added to the clean table: the row's position in the input file (0-based)."""

FOLD_COL = "fold"
"""Column of ``results/splits/folds.parquet``: the test resample of the row in its repeat.

Resample ``f = r * K + k`` is fold ``k`` of cross-validation repeat ``r`` (``K`` =
``cv.n_folds``); it is the ``{fold}`` of ``results/splits/fold_{fold}/`` and
``results/cv/{model}/fold_{fold}/``, so with ``cv.n_repeats: 1`` it is the plain fold."""

REPEAT_COL = "repeat"
"""Column of ``results/splits/folds.parquet`` and ``results/cv_metrics.csv``: the
cross-validation repeat ``r`` (0 .. ``cv.n_repeats - 1``) of a resample, ``fold // K``."""

RISK_COL = "risk"
"""Predictions column: the model's risk score (higher = earlier event)."""

SURV_PREFIX = "surv@"
"""Predictions columns ``surv@<t>``: survival probability ``S(t | x)`` at grid time ``t``."""

MEDIAN_COL = "median_time"
"""Column of ``predict`` outputs: the predicted median survival time."""

OTHER = "__other__"
"""Pooled categorical level: rare, surplus (over ``max_levels``) and unseen levels."""

RESERVED_COLUMNS = (ROW_COL,)
"""Input column names the workflow adds itself and so rejects in the input."""

PARQUET_SUFFIXES = (".parquet", ".pq")
DATA_SUFFIXES = (".csv", *PARQUET_SUFFIXES, ".pkl", ".pickle")
"""Suffixes of input tables (``data.path``)."""

PREDICT_SUFFIXES = (".csv", *PARQUET_SUFFIXES)
"""Suffixes of tables scored by ``snakemake predict`` (``data/new/`` and ``predict_input``)."""

METRIC_COLUMNS = ("model", REPEAT_COL, "fold", "metric", "value")
"""Columns of ``results/cv_metrics.csv`` (long format; ``fold`` is the resample id)."""


def prediction_column(t: float) -> str:
    """Name of the predictions column holding ``S(t | x)``."""
    return f"{SURV_PREFIX}{t:g}"
