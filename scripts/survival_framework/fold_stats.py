"""Fold-fitted preprocessing states from per-test-fold aggregates: the engine-independent
half of the distributed ETL engines (:mod:`.spark_stats`, :mod:`.dask_stats`).

A distributed engine cannot hand one process a column's training values; it can count and
sum per test fold. Every statistic of a fold's training rows is then a combination of the
*other* folds' aggregates, done here, once for every engine:

* mean and standard deviation of the median-imputed column from per-fold counts, means and
  sums of squared deviations (:func:`pooled_mean_std`; agree with numpy's pairwise sums to
  ~1e-15 relative);
* the exact median, ``np.median``'s bit for bit: bucket boundaries from a sample
  (:func:`median_bucket_splits`), rows per (test fold, bucket), the bucket that holds each
  rank numpy averages (:func:`locate_median_ranks`), and the values of those buckets only
  (:func:`medians_from_ranks`);
* level counts, exact integers, into the same
  :func:`~survival_framework.preprocess.categorical_state` as the pandas path
  (:func:`fold_states`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import preprocess

__all__ = [
    "group_moments",
    "pool_moments",
    "pooled_mean_std",
    "median_bucket_splits",
    "order_statistics",
    "locate_median_ranks",
    "medians_from_ranks",
    "fold_states",
]

MEDIAN_PROBS = np.linspace(0.3, 0.7, 401)
"""Quantiles of the sample that bound the median buckets: they contain every training
median when test folds are 20 % of the rows (any other sample is still exact, only slower)."""

Answer = tuple[int, float]
"""How one median rank is answered: ``(-1, value)`` (a one-value bucket) or ``(bucket, rank
within the bucket's training values)``."""


def group_moments(x: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Count, mean and sum of squared deviations of the non-missing ``x`` in each group.

    Returns
    -------
    ndarray of shape (3, n_groups)
        Rows ``n``, ``mean``, ``m2`` (0 for an empty group).
    """
    keep = ~np.isnan(x)
    x, group = x[keep], group[keep]
    n = np.bincount(group, minlength=n_groups).astype(np.float64)
    mean = np.bincount(group, weights=x, minlength=n_groups) / np.maximum(n, 1)
    m2 = np.bincount(group, weights=(x - mean[group]) ** 2, minlength=n_groups)
    return np.stack([n, mean, m2])


def pool_moments(parts: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`group_moments` of several row sets pooled into those of their union, group by
    group (Chan et al.: deviations pooled around the common mean, no cancellation).

    Parameters
    ----------
    parts : sequence of ndarray of shape (3, ...)
        ``n``, ``mean``, ``m2`` of each row set, same shape.
    """
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in parts])
    n, mean, m2 = stacked[:, 0], stacked[:, 1], stacked[:, 2]
    total = n.sum(axis=0)
    grand = (n * mean).sum(axis=0) / np.maximum(total, 1)
    ss = (m2 + n * (mean - grand) ** 2).sum(axis=0)
    return np.stack([total, grand, ss])


def pooled_mean_std(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation of the union of groups.

    Parameters
    ----------
    n, mean, m2 : ndarray
        Size, mean and sum of squared deviations from the mean of each group (empty groups
        allowed).

    Returns
    -------
    (float, float)
        Chan et al.'s pairwise-update formula in closed form: the squared deviations are
        pooled around the common mean, never as a difference of raw sums of squares, so no
        cancellation (0.0, 0.0 for no rows).
    """
    n = np.asarray(n, dtype=np.float64)
    keep = n > 0
    n, mean, m2 = n[keep], np.asarray(mean, float)[keep], np.asarray(m2, float)[keep]
    total = n.sum()
    if total == 0:
        return 0.0, 0.0
    grand = float((n * mean).sum() / total)
    ss = float((m2 + n * (mean - grand) ** 2).sum())
    return grand, float(np.sqrt(max(ss, 0.0) / total))


def median_bucket_splits(sample: np.ndarray, probs: np.ndarray = MEDIAN_PROBS) -> np.ndarray:
    """Bucket boundaries that bracket the median of one column.

    The ``probs`` quantiles of a sample of the column, each followed by its next
    representable double, between -inf and +inf: every sampled quantile value gets a bucket
    of its own (``[v, nextafter(v))`` holds exactly ``v``, so heavy ties cost nothing) and
    the buckets in between hold about ``probs`` spacing of the rows. Bucket ``b`` holds the
    values ``splits[b] <= x < splits[b + 1]`` (the last one includes +inf).
    """
    x = np.asarray(sample, dtype=np.float64)
    x = x[np.isfinite(x)]
    cuts = np.unique(np.quantile(x, probs) + 0.0) if x.size else np.array([0.0])
    cuts = np.concatenate([cuts, np.nextafter(cuts, np.inf)])
    cuts = np.unique(cuts[np.isfinite(cuts)])
    return np.concatenate([[-np.inf], cuts, [np.inf]])


def order_statistics(n: int) -> list[int]:
    """0-based ranks whose mean is the median of ``n`` sorted values (numpy's rule)."""
    return [(n - 1) // 2] if n % 2 else [n // 2 - 1, n // 2]


def locate_median_ranks(
    counts: np.ndarray, splits: np.ndarray
) -> tuple[dict[int, list[Answer]], set[int]]:
    """Where each fold's training median ranks of one column fall.

    Parameters
    ----------
    counts : ndarray of int, shape (n_folds, len(splits) - 1)
        Non-missing rows per (test fold, bucket of ``splits``).
    splits : ndarray
        :func:`median_bucket_splits` of the column.

    Returns
    -------
    answers : dict
        Fold k (those with training values) -> one :data:`Answer` per rank of
        :func:`order_statistics`.
    wanted : set of int
        The buckets whose values are needed (those that hold more than one value).
    """
    all_folds = counts.sum(axis=0)
    answers: dict[int, list[Answer]] = {}
    wanted: set[int] = set()
    for k in range(counts.shape[0]):
        train = all_folds - counts[k]
        if train.sum() == 0:
            continue
        cum = np.cumsum(train)
        found: list[Answer] = []
        for r in order_statistics(int(cum[-1])):
            b = int(np.searchsorted(cum, r, side="right"))
            lo, hi = splits[b], splits[b + 1]
            if np.isfinite(lo) and hi == np.nextafter(lo, np.inf):
                found.append((-1, float(lo)))  # the bucket holds lo only
            else:
                found.append((b, r - int(cum[b] - train[b])))  # rank within the bucket
                wanted.add(b)
        answers[k] = found
    return answers, wanted


def medians_from_ranks(
    answers: Mapping[int, Sequence[Answer]],
    bucket_values: Callable[[int, int], np.ndarray],
    n_folds: int,
) -> np.ndarray:
    """The exact training medians of one column, from :func:`locate_median_ranks`.

    Parameters
    ----------
    answers : mapping
        :func:`locate_median_ranks`' answers.
    bucket_values : callable
        ``bucket_values(k, b)``: the training values of fold k (every other test fold's
        values) in bucket ``b``, in any order.
    n_folds : int

    Returns
    -------
    ndarray of shape (n_folds,)
        ``np.median`` of each fold's training values, bit for bit; NaN for a fold without
        any.
    """
    medians = np.full(n_folds, np.nan)
    for k, found in answers.items():
        picked = []
        for b, x in found:
            if b < 0:
                picked.append(x)
            else:
                picked.append(np.sort(np.asarray(bucket_values(k, b), dtype=np.float64))[int(x)])
        # numpy's median of an even count is the mean of the two middle values
        medians[k] = float(np.mean(np.array(picked, dtype=np.float64)))
    return medians


def fold_states(
    numeric: Sequence[str],
    categorical: Sequence[str],
    fold_sizes: np.ndarray,
    moments: Mapping[str, np.ndarray],
    medians: np.ndarray,
    level_counts: Mapping[str, Mapping[str | None, np.ndarray]],
    min_frequency: float,
    max_levels: int | None = None,
) -> list[dict]:
    """Every fold's preprocessing state from per-test-fold aggregates.

    Parameters
    ----------
    numeric, categorical : sequence of str
        Feature columns by kind (``schema.json`` order).
    fold_sizes : ndarray of int, shape (n_folds,)
        Rows per test fold.
    moments : mapping
        ``n`` (non-missing count), ``mean`` and ``m2`` (sum of squared deviations) of each
        numeric column per test fold: arrays of shape ``(n_folds, len(numeric))``.
    medians : ndarray of shape (n_folds, len(numeric))
        Each fold's exact training median (NaN: no training value).
    level_counts : mapping
        Categorical column -> level (str; None for missing) -> rows per test fold (int
        array of shape (n_folds,)).
    min_frequency : float
    max_levels : int, optional

    Returns
    -------
    list of dict
        One :func:`~survival_framework.preprocess.fit_state`-compatible state per fold.
    """
    fold_sizes = np.asarray(fold_sizes, dtype=np.int64)
    n_folds = len(fold_sizes)
    n_total = int(fold_sizes.sum())
    states = []
    for k in range(n_folds):
        n = n_total - int(fold_sizes[k])
        others = [f for f in range(n_folds) if f != k]
        num_state = {}
        for j, c in enumerate(numeric):
            med = 0.0 if np.isnan(medians[k, j]) else float(medians[k, j])
            counts = moments["n"][others, j]
            # training rows with a missing value are imputed with the median: one more
            # group of (n_missing, med, 0) in the pooled moments
            n_missing = n - int(counts.sum())
            mean, std = pooled_mean_std(
                np.append(counts, n_missing),
                np.append(moments["mean"][others, j], med),
                np.append(moments["m2"][others, j], 0.0),
            )
            num_state[c] = preprocess.numeric_state(med, mean, std)
        cat_state = {}
        for c in categorical:
            train = {lv: int(v.sum() - v[k]) for lv, v in level_counts[c].items()}
            n_missing = train.pop(None, 0)
            observed = {lv: m for lv, m in sorted(train.items()) if m > 0}
            counts = pd.Series(list(observed.values()), index=list(observed), dtype=np.int64)
            cat_state[c] = preprocess.categorical_state(
                counts, n_missing, n, min_frequency, max_levels
            )
        states.append(
            {
                "numeric": num_state,
                "categorical": cat_state,
                "min_frequency": min_frequency,
                "max_levels": max_levels,
                "n_train": n,
            }
        )
    return states
