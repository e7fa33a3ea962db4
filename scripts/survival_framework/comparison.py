"""Paired comparisons of models across cross-validation resamples (``results/comparison.csv``).

Every (repeat, fold) resample of a repeated K-fold cross-validation is the same split for every
model, so the differences between two models are paired. Those differences are not
independent, though: the training sets of the R x K resamples overlap, and the naive paired
t-test (variance ``s**2 / k``) is far too confident. :func:`corrected_resampled_ttest` is the
corrected resampled t-test of Nadeau & Bengio (2003), in the repeated cross-validation form of
Bouckaert & Frank (2004); :func:`compare_models` applies it to every model and metric of the
long metrics table, against the best model (by a primary metric) and against a reference model
(Kaplan-Meier, ``km``); :func:`leaderboard_additions` derives the leaderboard columns
``tied_with_best`` and ``mean_rank``.

The direction of every metric (higher or lower is better) is a parameter of these functions,
not a constant of this module; a metric without a direction (e.g. the D-calibration p-value
``dcal_p``, which measures the evidence against calibration, not a quality to maximise) is
neither compared by default nor ranked.

References
----------
Nadeau, C. and Bengio, Y. (2003). Inference for the generalization error. *Machine Learning*
52, 239-281.

Bouckaert, R. R. and Frank, E. (2004). Evaluating the replicability of significance tests for
comparing learning algorithms. In *Advances in Knowledge Discovery and Data Mining (PAKDD)*,
LNCS 3056, 3-12.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "COMPARISON_COLUMNS",
    "CorrectedTTest",
    "kfold_test_train_ratio",
    "corrected_resampled_ttest",
    "leaderboard_order",
    "paired_differences",
    "compare_models",
    "leaderboard_additions",
]

COMPARISON_COLUMNS: tuple[str, ...] = (
    "model",
    "metric",
    "reference",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
)
"""Columns of :func:`compare_models` (``results/comparison.csv``), in order."""

_LONG_COLUMNS = ("model", "fold", "metric", "value")


@dataclass(frozen=True)
class CorrectedTTest:
    """Result of :func:`corrected_resampled_ttest`.

    Attributes
    ----------
    n : int
        ``k``, the number of finite paired differences used.
    n_repeats : int
        The number of cross-validation repeats ``R`` (as given; it does not enter the formula).
    test_train_ratio : float
        ``n_test / n_train``.
    alpha : float
        Significance level; the intervals have coverage ``1 - alpha``.
    mean : float
        Mean difference ``d̄`` (NaN if ``n == 0``).
    variance : float
        Sample variance ``s**2`` of the differences (``ddof=1``).
    df : float
        Degrees of freedom ``k - 1`` (NaN if ``n < 2``).
    corrected_variance : float
        ``(1/k + n_test/n_train) * s**2``, the variance of ``d̄`` estimated by the correction.
    t : float
        ``d̄ / sqrt(corrected_variance)``.
    p_value : float
        Two-sided p-value of ``t`` under Student's t with ``df`` degrees of freedom.
    ci_low, ci_high : float
        ``d̄ -/+ t_{1-alpha/2, df} * sqrt(corrected_variance)``.
    naive_variance, naive_t, naive_p_value, naive_ci_low, naive_ci_high : float
        The same quantities for the naive paired t-test (variance ``s**2 / k``); for
        documentation and comparison only, it ignores the overlap of the training sets.
    reason : str or None
        Why the statistics are degenerate (too few differences, zero variance), else None.
    """

    n: int
    n_repeats: int
    test_train_ratio: float
    alpha: float
    mean: float
    variance: float
    df: float
    corrected_variance: float
    t: float
    p_value: float
    ci_low: float
    ci_high: float
    naive_variance: float
    naive_t: float
    naive_p_value: float
    naive_ci_low: float
    naive_ci_high: float
    reason: str | None = None


def kfold_test_train_ratio(n_folds: int) -> float:
    """``n_test / n_train`` of K-fold cross-validation with equal folds: ``1 / (K - 1)``.

    Parameters
    ----------
    n_folds : int
        The number of folds ``K`` (at least 2).

    Returns
    -------
    float
        ``1 / (n_folds - 1)``.
    """
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    return 1.0 / (int(n_folds) - 1)


def _t_summary(
    mean: float, var_of_mean: float, df: float, alpha: float
) -> tuple[float, float, float, float]:
    """``t``, two-sided p-value and the ``1 - alpha`` interval for a mean and its variance.

    A zero variance gives ``t = ±inf``, ``p = 0`` and a zero-width interval at a nonzero mean,
    and ``t = 0``, ``p = 1`` and the interval ``[0, 0]`` at a zero mean: the limits as the
    variance goes to zero.
    """
    from scipy import stats

    if var_of_mean == 0.0:
        if mean == 0.0:
            return 0.0, 1.0, 0.0, 0.0
        return math.copysign(math.inf, mean), 0.0, mean, mean
    se = math.sqrt(var_of_mean)
    t = mean / se
    p = float(2.0 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    return t, p, mean - half, mean + half


def corrected_resampled_ttest(
    diffs: Sequence[float] | np.ndarray,
    test_train_ratio: float,
    n_repeats: int = 1,
    alpha: float = 0.05,
) -> CorrectedTTest:
    """Corrected resampled t-test of paired differences over R x K cross-validation resamples.

    With the ``k`` finite differences ``d_j`` (model minus reference, one per resample), their
    mean ``d̄`` and sample variance ``s**2`` (``ddof=1``), Nadeau & Bengio (2003) estimate the
    variance of ``d̄`` by ``(1/k + n_test/n_train) * s**2`` instead of ``s**2 / k``: the second
    term accounts for the correlation of resamples whose training sets overlap. Bouckaert &
    Frank (2004) use it for R times repeated K-fold cross-validation with ``k = R * K`` and
    ``df = k - 1``:

    * ``t = d̄ / sqrt((1/k + n_test/n_train) * s**2)``, two-sided ``p = 2 * P(T_{k-1} > |t|)``;
    * interval ``d̄ ± t_{1-alpha/2, k-1} * sqrt((1/k + n_test/n_train) * s**2)``.

    The naive paired t-test (variance ``s**2 / k``, the same ``df``) is returned too.

    Parameters
    ----------
    diffs : array-like of shape (n_repeats * n_folds,)
        The paired differences of every resample, NaN where either fit failed (non-finite
        values are dropped; ``k`` counts the finite ones). With failed resamples the
        correction is applied to the remaining ``k`` as if they were a complete design.
    test_train_ratio : float
        ``n_test / n_train`` of one resample, about ``1 / (K - 1)`` for K-fold
        (:func:`kfold_test_train_ratio`); 0 gives the naive test.
    n_repeats : int, default=1
        The number of repeats ``R``. It does not enter the formula (``k`` is the number of
        finite differences) but ``len(diffs)`` must be a multiple of it, which catches the
        differences of a single repeat passed as those of all of them.
    alpha : float, default=0.05
        Significance level of the two-sided intervals (coverage ``1 - alpha``).

    Returns
    -------
    CorrectedTTest
        ``mean``, ``variance``, ``corrected_variance``, ``t``, ``df``, ``p_value``,
        ``ci_low``, ``ci_high`` and the naive test's ``naive_*`` counterparts.

    Notes
    -----
    Degenerate cases (``reason`` says which):

    * fewer than 2 finite differences: ``t``, ``df``, the p-values and the intervals are NaN
      (``mean`` is the single difference, or NaN if there is none);
    * all finite differences exactly equal (zero variance) and nonzero (a model that differs
      from the reference by the same amount on every resample): ``t = ±inf``, ``p = 0`` and the
      zero-width interval ``[d̄, d̄]``;
    * all finite differences exactly zero (e.g. a model compared with itself): ``t = 0``,
      ``p = 1``, the interval ``[0, 0]``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not (math.isfinite(test_train_ratio) and test_train_ratio >= 0.0):
        raise ValueError(f"test_train_ratio must be finite and >= 0, got {test_train_ratio!r}")
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
    n_repeats = int(n_repeats)
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"diffs must be one-dimensional, got shape {d.shape}")
    if d.size % n_repeats:
        raise ValueError(
            f"{d.size} differences are not n_repeats x n_folds with n_repeats={n_repeats}: "
            "pass every resample, NaN where a fit failed"
        )
    d = d[np.isfinite(d)]
    k = int(d.size)
    common = {
        "n": k,
        "n_repeats": n_repeats,
        "test_train_ratio": float(test_train_ratio),
        "alpha": float(alpha),
    }
    nan = math.nan
    if k < 2:
        return CorrectedTTest(
            **common,
            mean=float(d[0]) if k else nan,
            variance=nan,
            df=nan,
            corrected_variance=nan,
            t=nan,
            p_value=nan,
            ci_low=nan,
            ci_high=nan,
            naive_variance=nan,
            naive_t=nan,
            naive_p_value=nan,
            naive_ci_low=nan,
            naive_ci_high=nan,
            reason=f"fewer than 2 finite paired differences (k={k})",
        )
    reason = None
    if np.all(d == d[0]):  # exactly: a rounded mean would leave a spurious tiny variance
        mean, variance = float(d[0]), 0.0
        same = "0" if mean == 0.0 else "the same nonzero value"
        reason = f"zero variance: every difference is {same}"
    else:
        mean, variance = float(np.mean(d)), float(np.var(d, ddof=1))
    df = float(k - 1)
    corrected = (1.0 / k + test_train_ratio) * variance
    naive = variance / k
    t, p, lo, hi = _t_summary(mean, corrected, df, alpha)
    nt, npv, nlo, nhi = _t_summary(mean, naive, df, alpha)
    return CorrectedTTest(
        **common,
        mean=mean,
        variance=variance,
        df=df,
        corrected_variance=corrected,
        t=t,
        p_value=p,
        ci_low=lo,
        ci_high=hi,
        naive_variance=naive,
        naive_t=nt,
        naive_p_value=npv,
        naive_ci_low=nlo,
        naive_ci_high=nhi,
        reason=reason,
    )


def _check_long(long: pd.DataFrame) -> pd.DataFrame:
    """``long`` with a ``repeat`` column (0 if absent) and float values; checks the keys."""
    missing = [c for c in _LONG_COLUMNS if c not in long.columns]
    if missing:
        raise ValueError(f"the metrics table lacks the columns {missing}")
    df = long.loc[:, [*_LONG_COLUMNS, *(["repeat"] if "repeat" in long.columns else [])]].copy()
    if "repeat" not in df.columns:
        df["repeat"] = 0
    df["value"] = df["value"].astype(float)
    dup = df.duplicated(["model", "metric", "repeat", "fold"], keep=False)
    if dup.any():
        first = df.loc[dup, ["model", "metric", "repeat", "fold"]].iloc[0].to_dict()
        raise ValueError(f"the metrics table has duplicate rows, e.g. {first}")
    return df


def _resample_matrix(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Values of ``metric``: one row per (repeat, fold) of the whole table, one column per model.

    The resamples are the (repeat, fold) pairs of the whole table (any model, any metric),
    sorted: the folds may be numbered within each repeat (0 .. K-1 in every repeat) or across
    them (the workflow's resample ids ``repeat * K + k``). Resamples or models without a row
    for the metric are NaN.
    """
    pairs = df[["repeat", "fold"]].drop_duplicates().sort_values(["repeat", "fold"])
    resamples = pd.MultiIndex.from_frame(pairs, names=["repeat", "fold"])
    models = sorted(df["model"].unique())
    sub = df.loc[df["metric"] == metric]
    wide = sub.pivot(index=["repeat", "fold"], columns="model", values="value")
    return wide.reindex(index=resamples, columns=models)


def _means(df: pd.DataFrame, metric: str) -> pd.Series:
    """Mean of the finite values of ``metric`` per model (NaN without one), by model name."""
    sub = df.loc[(df["metric"] == metric) & np.isfinite(df["value"].to_numpy())]
    models = sorted(df["model"].unique())
    return sub.groupby("model")["value"].mean().reindex(models)


def _direction(higher_is_better: Mapping[str, bool], metric: str) -> bool:
    if metric not in higher_is_better:
        raise ValueError(f"no direction for metric {metric!r} in higher_is_better")
    return bool(higher_is_better[metric])


def _order(df: pd.DataFrame, primary_metric: str, higher_is_better: Mapping[str, bool]) -> list:
    means = _means(df, primary_metric)  # by model name
    ranked = means.dropna().sort_values(
        ascending=not _direction(higher_is_better, primary_metric), kind="stable"
    )
    return [*ranked.index, *means.index[means.isna()]]


def leaderboard_order(
    long: pd.DataFrame, *, higher_is_better: Mapping[str, bool], primary_metric: str = "uno_c"
) -> list[str]:
    """Models in leaderboard order: best mean ``primary_metric`` first.

    The order of :func:`survival_framework.aggregate.leaderboard`: models with a finite mean
    (over their finite values) sorted by it in the metric's direction, ties by model name; then
    the models without one, by name. The first model is the *best* model of
    :func:`compare_models` (if it has a finite mean).

    Parameters
    ----------
    long : pandas.DataFrame
        Columns ``model, fold, metric, value`` and optionally ``repeat``.
    higher_is_better : mapping of str to bool
        Direction of each metric; must contain ``primary_metric``.
    primary_metric : str, default="uno_c"
        The metric that ranks the models.

    Returns
    -------
    list of str
    """
    return _order(_check_long(long), primary_metric, higher_is_better)


def paired_differences(long: pd.DataFrame, model: str, reference: str, metric: str) -> pd.Series:
    """``model - reference`` on ``metric`` per (repeat, fold) resample of the table.

    Parameters
    ----------
    long : pandas.DataFrame
        Columns ``model, fold, metric, value`` and optionally ``repeat`` (0 if absent).
    model, reference : str
        The two models.
    metric : str
        The metric.

    Returns
    -------
    pandas.Series
        Indexed by ``(repeat, fold)``: every resample of the table, sorted; NaN where either
        model's value is missing or NaN (a failed fit), so that the finite entries are the
        resamples where both are finite.
    """
    wide = _resample_matrix(_check_long(long), metric)
    for name in (model, reference):
        if name not in wide.columns:
            raise ValueError(f"model {name!r} is not in the metrics table")
    return (wide[model] - wide[reference]).rename(metric)


def compare_models(
    long: pd.DataFrame,
    *,
    higher_is_better: Mapping[str, bool],
    test_train_ratio: float,
    metrics: Sequence[str] | None = None,
    primary_metric: str = "uno_c",
    reference_model: str = "km",
    n_repeats: int | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every model against the best model and against the reference model, metric by metric.

    For each model, metric and reference: the mean over the paired resamples of ``model -
    reference`` in the metric's own units (positive means a larger value, which is better or
    worse depending on the metric's direction), the ``1 - alpha`` interval and the two-sided
    p-value of :func:`corrected_resampled_ttest`. A resample enters a pair only where both
    models have a finite value (a failed fit is NaN), so the pairs of each comparison may
    differ. The intervals are not adjusted for multiple comparisons, and the comparison with
    the best model is conditional on having picked it on the same resamples.

    Parameters
    ----------
    long : pandas.DataFrame
        ``results/cv_metrics.csv``: columns ``model, fold, metric, value`` and optionally
        ``repeat`` (absent: one repeat, 0). At most one row per model, metric, repeat, fold.
    higher_is_better : mapping of str to bool
        Direction of each metric (True: higher is better). Must contain ``primary_metric``.
    test_train_ratio : float
        ``n_test / n_train`` of one resample (:func:`kfold_test_train_ratio`).
    metrics : sequence of str, optional
        Metrics to compare, in this order; each must be in the table. Default: the metrics of
        ``higher_is_better`` that are in the table, in the mapping's order (a metric without a
        direction is not compared unless named here).
    primary_metric : str, default="uno_c"
        The metric whose mean picks the best model (:func:`leaderboard_order`).
    reference_model : str, default="km"
        The baseline every model is also compared with; must be in the table.
    n_repeats : int, optional
        The number of cross-validation repeats; if given, it must equal the number of distinct
        ``repeat`` values of the table.
    alpha : float, default=0.05
        Significance level (coverage of the intervals ``1 - alpha``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMPARISON_COLUMNS` = ``model, metric, reference, diff, ci_low, ci_high,
        p_value``. ``reference`` is the reference model's name: the best model's name on the
        rows against the best model, ``reference_model`` on the rows against it; if the best
        model is ``reference_model``, there is one set of rows. Every model has a row per
        metric and reference, the references themselves included (diff 0, interval [0, 0],
        p 1 where they have at least 2 finite values), so the table is complete for joins.
        Rows are in leaderboard order of the model, then in the order of ``metrics``, then
        against the best model before against ``reference_model``. Without a model with a
        finite mean ``primary_metric`` there is no best model, only the rows against
        ``reference_model``.
    """
    df = _check_long(long)
    _direction(higher_is_better, primary_metric)
    present = set(df["metric"].unique())
    if primary_metric not in present:
        raise ValueError(f"primary metric {primary_metric!r} is not in the metrics table")
    if metrics is None:
        metrics = [m for m in higher_is_better if m in present]
    else:
        metrics = list(metrics)
        absent = [m for m in metrics if m not in present]
        if absent:
            raise ValueError(f"metrics {absent} are not in the metrics table")
    if reference_model not in set(df["model"]):
        raise ValueError(f"reference model {reference_model!r} is not in the metrics table")
    repeats = int(df["repeat"].nunique())
    if n_repeats is not None and n_repeats != repeats:
        raise ValueError(f"n_repeats={n_repeats} but the table has {repeats} repeat(s)")
    order = _order(df, primary_metric, higher_is_better)
    best = order[0] if np.isfinite(_means(df, primary_metric)[order[0]]) else None
    references = [r for r in dict.fromkeys([best, reference_model]) if r is not None]
    rows = []
    wides = {metric: _resample_matrix(df, metric) for metric in metrics}
    for model in order:
        for metric in metrics:
            wide = wides[metric]
            for ref in references:
                diffs = (wide[model] - wide[ref]).to_numpy()
                res = corrected_resampled_ttest(diffs, test_train_ratio, repeats, alpha)
                rows.append((model, metric, ref, res.mean, res.ci_low, res.ci_high, res.p_value))
    out = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    for col in ("diff", "ci_low", "ci_high", "p_value"):
        out[col] = out[col].astype(float)
    return out


def leaderboard_additions(
    long: pd.DataFrame,
    comparison: pd.DataFrame,
    *,
    higher_is_better: Mapping[str, bool],
    primary_metric: str = "uno_c",
    rank_metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per model: ``tied_with_best`` and ``mean_rank``, columns for the leaderboard.

    ``tied_with_best`` is True if the interval of the model's difference from the best model on
    ``primary_metric`` (the row of ``comparison`` with ``reference`` = the best model) contains
    0, False if it excludes 0, and missing (NA) if it is undefined (fewer than 2 paired
    resamples); the best model itself is True. Without a best model (no finite mean
    ``primary_metric``) every value is NA.

    ``mean_rank`` is the mean over ``rank_metrics`` of the model's rank (1 = best) by its mean
    over finite values, in each metric's direction, ties sharing their average rank. A metric
    ranks the models with a finite mean on it; a model lacking one on any ranked metric has no
    ``mean_rank`` (NaN), rather than a mean over fewer metrics than the others.

    Parameters
    ----------
    long : pandas.DataFrame
        The metrics table given to :func:`compare_models`.
    comparison : pandas.DataFrame
        The output of :func:`compare_models` on ``long`` with the same ``primary_metric``.
    higher_is_better : mapping of str to bool
        Direction of each metric.
    primary_metric : str, default="uno_c"
        The metric that picks the best model.
    rank_metrics : sequence of str, optional
        The metrics of ``mean_rank``; each needs a direction. Default: the metrics of
        ``higher_is_better`` that are in the table (so a metric without a direction, such as
        ``dcal_p``, does not count).

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``tied_with_best`` (nullable boolean), ``mean_rank`` (float), one
        row per model in leaderboard order (:func:`leaderboard_order`).
    """
    df = _check_long(long)
    order = _order(df, primary_metric, higher_is_better)
    present = set(df["metric"].unique())
    if rank_metrics is None:
        rank_metrics = [m for m in higher_is_better if m in present]
    ranks = pd.DataFrame(index=pd.Index(order, name="model"))
    for metric in rank_metrics:
        ascending = not _direction(higher_is_better, metric)
        ranks[metric] = _means(df, metric).rank(method="average", ascending=ascending)
    if len(rank_metrics):
        mean_rank = ranks.mean(axis=1, skipna=False).to_numpy(dtype=float)
    else:
        mean_rank = np.full(len(order), np.nan)

    tied = pd.array([pd.NA] * len(order), dtype="boolean")
    if order and np.isfinite(_means(df, primary_metric)[order[0]]):
        best = order[0]
        rows = comparison.loc[
            (comparison["metric"] == primary_metric) & (comparison["reference"] == best)
        ].set_index("model")
        missing = [m for m in order if m not in rows.index]
        if missing:
            raise ValueError(
                f"comparison has no {primary_metric!r} rows against {best!r} for {missing}"
            )
        rows = rows.reindex(order)
        defined = np.isfinite(rows["ci_low"]) & np.isfinite(rows["ci_high"])
        contains = (rows["ci_low"] <= 0.0) & (rows["ci_high"] >= 0.0)
        tied[defined.to_numpy()] = contains.to_numpy()[defined.to_numpy()]
        tied[0] = True
    return pd.DataFrame({"model": order, "tied_with_best": tied, "mean_rank": mean_rank})
