"""Fold-fitted preprocessing statistics computed with Spark, for every fold at once.

Five Spark aggregations whatever the number of folds (:func:`fit_fold_states`): per-fold
moments of the numeric columns, exact medians located through bucket counts
(:func:`exact_fold_medians`) and level counts; fold k's training statistics are combined on
the driver from the other folds' (:func:`pooled_mean_std`). Parity with pandas: categorical
states go through the same :func:`~survival_framework.preprocess.categorical_state`, the
median is ``np.median``'s bit for bit, and means/stds agree to rounding (pooled per-fold
moments against numpy's pairwise sum: ~1e-15 relative).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .contract import FOLD_COL
from .fold_stats import (
    MEDIAN_PROBS,
    fold_states,
    locate_median_ranks,
    median_bucket_splits,
    medians_from_ranks,
    pooled_mean_std,
)

if TYPE_CHECKING:  # pyspark is an optional extra: imported lazily at run time
    from pyspark.sql import Column, DataFrame

__all__ = [
    "nan_to_null",
    "fit_fold_states",
    "exact_fold_medians",
    "median_bucket_splits",  # from .fold_stats, shared with the Dask engine
    "pooled_mean_std",  # idem
]


def nan_to_null(c: Column) -> Column:
    """``c`` with NaN turned into null, as numpy's ``isnan`` mask treats it (Spark's
    aggregates skip nulls but count NaN as a value)."""
    from pyspark.sql import functions as F

    return F.when(~F.isnan(c), c)


def fit_fold_states(
    sdf: DataFrame,
    names: dict[str, str],
    numeric: Sequence[str],
    categorical: Sequence[str],
    fold_sizes: np.ndarray,
    min_frequency: float,
    max_levels: int | None = None,
    seed: int = 0,
) -> list[dict]:
    """Preprocessing state of every fold, fitted on that fold's training rows only.

    Five Spark jobs whatever the number of folds: per-fold moments of the numeric columns
    (:func:`_fold_moments`), the exact training medians (:func:`exact_fold_medians`, three
    jobs) and the level counts (:func:`_level_counts`). Fold k's training statistics are
    then combined on the driver from the statistics of the other folds.

    Parameters
    ----------
    sdf : pyspark.sql.DataFrame
        Clean table with safe column names (see :func:`read_clean`) and a ``fold`` column.
    names : dict
        Original column name -> safe column name.
    numeric, categorical : sequence of str
        Feature columns by kind (original names, in ``schema.json`` order).
    fold_sizes : ndarray
        Rows per test fold.
    min_frequency : float
        Rare-level threshold.
    max_levels : int, optional
        Most levels kept per categorical column (``preprocess.max_levels``).
    seed : int
        Seed of the sample that places the median brackets (the medians are exact
        whatever it is).

    Returns
    -------
    list of dict
        One :func:`~survival_framework.preprocess.fit_state`-compatible state per fold.
    """
    n_folds = len(fold_sizes)
    n_total = int(fold_sizes.sum())
    safe_numeric = [names[c] for c in numeric]
    moments = {"n": None, "mean": None, "m2": None}
    medians = np.empty((n_folds, 0))
    if numeric:
        moments = _fold_moments(sdf, safe_numeric, n_folds)
        medians = exact_fold_medians(sdf, safe_numeric, n_folds, n_total, seed=seed)
    level_counts = {}
    for c, per_fold in _level_counts(sdf, names, categorical).items():
        counts: dict[str | None, np.ndarray] = {}
        for fold, level, n in per_fold.itertuples(index=False):
            key = None if level is None or level != level else str(level)
            counts.setdefault(key, np.zeros(n_folds, dtype=np.int64))[int(fold)] += int(n)
        level_counts[c] = counts
    return fold_states(
        numeric, categorical, fold_sizes, moments, medians, level_counts, min_frequency,
        max_levels,
    )  # fmt: skip


def _fold_moments(sdf: DataFrame, cols: Sequence[str], n_folds: int) -> dict[str, np.ndarray]:
    """Non-missing count, mean and sum of squared deviations of each column per test fold
    (one Spark job); arrays of shape ``(n_folds, len(cols))``."""
    from pyspark.sql import functions as F

    aggs = []
    for j, c in enumerate(cols):
        x = nan_to_null(F.col(c))
        aggs += [
            F.count(x).alias(f"n{j}"),
            F.avg(x).alias(f"m{j}"),
            F.var_pop(x).alias(f"v{j}"),
        ]
    rows = sdf.groupBy(FOLD_COL).agg(*aggs).toPandas().set_index(FOLD_COL)
    rows = rows.reindex(range(n_folds))
    n = rows[[f"n{j}" for j in range(len(cols))]].fillna(0).to_numpy(dtype=np.int64)
    mean = rows[[f"m{j}" for j in range(len(cols))]].fillna(0.0).to_numpy(dtype=np.float64)
    var = rows[[f"v{j}" for j in range(len(cols))]].fillna(0.0).to_numpy(dtype=np.float64)
    return {"n": n, "mean": mean, "m2": var * n}


def exact_fold_medians(
    sdf: DataFrame,
    cols: Sequence[str],
    n_folds: int,
    n_rows: int,
    sample_rows: int = 200_000,
    probs: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Exact median of the non-missing training values of every column and fold.

    Equal to ``np.median`` of fold k's training values, bit for bit, in three Spark jobs
    for all folds and columns (instead of one exact ``percentile`` sort per fold):

    1. a sample of about ``sample_rows`` rows places bucket boundaries around the median
       (:func:`median_bucket_splits`; ``probs`` defaults to the 0.3..0.7 quantiles by
       0.001, which contain every training median when folds are 20 % of the rows);
    2. rows per (test fold, column, bucket), with Spark ML's ``Bucketizer``;
    3. for each fold, column and the one or two ranks numpy averages, the training counts
       (sums over the other folds) locate the bucket that holds the rank; a one-value
       bucket gives the value at once, the values of the others are collected (about
       0.1 % of the rows each) and the rank is read from them sorted.

    The result is exact for any sample: a poor one only makes step 3 collect more.

    Returns
    -------
    ndarray of shape (n_folds, len(cols))
        NaN where a fold's training rows have no value in the column.
    """
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import functions as F

    probs = MEDIAN_PROBS if probs is None else np.asarray(probs, float)
    xs = [f"x{j}" for j in range(len(cols))]
    bs = [f"b{j}" for j in range(len(cols))]
    values = sdf.select(
        F.col(FOLD_COL),
        *[
            F.coalesce(F.col(c), F.lit(float("nan"))).alias(x)
            for c, x in zip(cols, xs, strict=True)
        ],
    )
    # 1. boundaries from a sample
    fraction = min(1.0, sample_rows / max(n_rows, 1))
    sample = values.select(*xs).sample(fraction=fraction, seed=seed).toArrow()
    splits = [median_bucket_splits(sample.column(x).to_numpy(), probs) for x in xs]
    del sample
    bucketed = Bucketizer(
        splitsArray=[s.tolist() for s in splits],
        inputCols=xs,
        outputCols=bs,
        handleInvalid="keep",  # NaN -> bucket len(splits) - 1, ignored below
    ).transform(values)
    # 2. rows per (fold, column, bucket)
    long = _counts_by_fold(bucketed, [F.col(b).cast("int") for b in bs])
    long = long.rename(columns={"value": "b"})
    # 3. locate every rank: a one-value bucket answers directly, the others are collected
    ranks: dict[int, dict[int, list]] = {}  # column -> fold -> answers
    wanted: dict[int, set[int]] = {}  # column -> buckets whose values are needed
    for j, s in enumerate(splits):
        n_buckets = len(s) - 1  # finite values only; the NaN bucket is dropped
        sub = long[(long["j"] == j) & (long["b"] < n_buckets)]
        counts = np.zeros((n_folds, n_buckets), dtype=np.int64)
        np.add.at(counts, (sub[FOLD_COL].to_numpy(), sub["b"].to_numpy()), sub["n"].to_numpy())
        ranks[j], buckets = locate_median_ranks(counts, s)
        if buckets:
            wanted[j] = buckets
    got = None
    if wanted:  # the values of the wanted buckets, all columns in one job
        picked = F.explode(
            F.array(
                *[
                    F.when(
                        F.col(bs[j]).isin(sorted(wanted[j])),
                        F.struct(
                            F.lit(j).alias("j"),
                            F.col(bs[j]).cast("int").alias("b"),
                            F.col(xs[j]).alias("v"),
                        ),
                    )
                    for j in sorted(wanted)
                ]
            )
        ).alias("p")
        got = (
            bucketed.select(FOLD_COL, picked)
            .filter(F.col("p").isNotNull())
            .select(FOLD_COL, "p.j", "p.b", "p.v")
            .toPandas()
        )
    medians = np.full((n_folds, len(cols)), np.nan)
    for j in range(len(cols)):
        if j in wanted:
            col = got[got["j"] == j]

            def bucket_values(k: int, b: int, col=col) -> np.ndarray:
                return col.loc[(col["b"] == b) & (col[FOLD_COL] != k), "v"].to_numpy()
        else:
            bucket_values = None  # every rank is answered by a one-value bucket
        medians[:, j] = medians_from_ranks(ranks[j], bucket_values, n_folds)
    return medians


def _counts_by_fold(sdf: DataFrame, values: Sequence[Column]) -> pd.DataFrame:
    """Rows per (test fold, column index ``j``, value) of several columns, in one Spark job.

    ``values`` are column expressions; the result has the columns ``fold``, ``j``,
    ``value`` and ``n`` (missing values form their own group). Training counts of fold k
    are then the sums over the other folds (exact integers).
    """
    from pyspark.sql import functions as F

    pairs = F.explode(
        F.array(*[F.struct(F.lit(j).alias("j"), v.alias("value")) for j, v in enumerate(values)])
    ).alias("p")
    return (
        sdf.select(FOLD_COL, pairs)
        .groupBy(FOLD_COL, F.col("p.j").alias("j"), F.col("p.value").alias("value"))
        .agg(F.count(F.lit(1)).alias("n"))
        .toPandas()
    )


def _level_counts(
    sdf: DataFrame, names: dict[str, str], categorical: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Rows per (test fold, level) of every categorical column, in one Spark job."""
    from pyspark.sql import functions as F

    if not categorical:
        return {}
    long = _counts_by_fold(sdf, [F.col(names[c]).cast("string") for c in categorical])
    long = long.rename(columns={"value": "level"})
    long["level"] = long["level"].astype(object).where(long["level"].notna(), None)
    return {
        c: long.loc[long["j"] == i, [FOLD_COL, "level", "n"]].reset_index(drop=True)
        for i, c in enumerate(categorical)
    }
