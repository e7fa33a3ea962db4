"""Proportional-hazards diagnostics: Schoenfeld-residual tests per covariate and globally.

The Cox model is fitted (lifelines ``CoxPHFitter``, Efron ties) on the whole validated
table, preprocessed with a state fitted on all its rows: the test is a description of the
data, not a performance estimate, so there is no held-out part to protect. Above
``max_rows`` rows a stratified (on event) subsample of ``max_rows`` rows is used for the fit
and the test; the preprocessing state is still fitted on all rows.

Scaling. lifelines' ``compute_residuals(..., "scaled_schoenfeld")`` grows its result row by
row (``np.append`` in a Python loop, quadratic: 4.5 s at 50,000 rows, minutes at 300,000).
:func:`schoenfeld_residuals` computes the same Efron-tie residuals vectorised (suffix sums
over the time-sorted rows, work only at event rows) and the per-covariate statistics then
come from lifelines' ``proportional_hazard_test`` with ``precomputed_residuals``, so the
numbers are lifelines'. After the residuals, each covariate's test is one dot product, so
parallel workers (joblib) do not pay: the Cox fit dominates.

Global test (Grambsch & Therneau 1994, as R ``cox.zph`` before survival 3.0): with ``g`` the
transformed event times centred, ``r`` the scaled residuals (n_events x p), ``V`` the
coefficients' covariance and ``d`` the number of events,
``T = (g'r) V^-1 (r'g) / (d g'g)`` ~ chi2(p); for p = 1 it equals the per-covariate test.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from . import preprocess
from .splits import stratified_sample

__all__ = [
    "TRANSFORMS",
    "GLOBAL",
    "schoenfeld_residuals",
    "scaled_schoenfeld_residuals",
    "transformed_event_times",
    "global_test",
    "fit_cox",
    "proportional_hazards_table",
    "run_ph_tests",
    "plot_scaled_residuals",
]

TRANSFORMS: tuple[str, ...] = ("rank", "km")
GLOBAL = "GLOBAL"
_log = logging.getLogger(__name__)


def schoenfeld_residuals(
    X: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Schoenfeld residuals of a Cox model with Efron ties, at the event rows.

    For an event at time ``t`` in a group of ``m`` tied events the residual is
    ``x_i - (1/m) sum_{l<m} (S1 - l/m D1) / (S0 - l/m D0)`` with ``S0, S1`` the risk-set
    sums of ``exp(x'b)`` and ``x exp(x'b)`` and ``D0, D1`` those of the tied events (what
    lifelines computes, in O(n p) instead of a Python loop).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    time, event : ndarray of shape (n_samples,)
    beta : ndarray of shape (n_features,)
        Fitted coefficients.

    Returns
    -------
    event_times : ndarray of shape (n_events,)
        Times of the event rows, increasing.
    residuals : ndarray of shape (n_events, n_features)
        In the same order.
    """
    order = np.argsort(time, kind="stable")
    X = np.asarray(X, dtype=float)[order]
    t = np.asarray(time, dtype=float)[order]
    e = np.asarray(event).astype(bool)[order]
    eta = X @ np.asarray(beta, dtype=float)
    phi = np.exp(eta - eta.max())  # ratios only: a common factor cancels
    s0 = np.cumsum(phi[::-1])[::-1]  # risk set of row i: rows i.. (sorted by time)
    s1 = np.cumsum((phi[:, None] * X)[::-1], axis=0)[::-1]
    ev = np.flatnonzero(e)
    if ev.size == 0:
        return t[:0], X[:0]
    # first row of each distinct time: the start of its risk set
    first = np.searchsorted(t, t[ev], side="left")
    group_start = np.r_[True, first[1:] != first[:-1]]
    group_id = np.cumsum(group_start) - 1
    starts = np.flatnonzero(group_start)
    m = np.diff(np.r_[starts, ev.size])[group_id].astype(float)
    d0 = np.add.reduceat(phi[ev], starts)[group_id]
    d1 = np.add.reduceat(phi[ev, None] * X[ev], starts, axis=0)[group_id]
    frac = (np.arange(ev.size) - starts[group_id]) / m
    terms = (s1[first] - frac[:, None] * d1) / ((s0[first] - frac * d0) * m)[:, None]
    weighted_mean = np.add.reduceat(terms, starts, axis=0)[group_id]
    return t[ev], X[ev] - weighted_mean


def scaled_schoenfeld_residuals(residuals: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Scaled Schoenfeld residuals ``d * r V`` as lifelines defines them (without ``+ b``)."""
    return residuals.shape[0] * residuals @ np.asarray(variance, dtype=float)


def transformed_event_times(
    transform: str, durations: np.ndarray, events: np.ndarray
) -> np.ndarray:
    """lifelines' time transform (``rank``, ``km``, ``identity``, ``log``) at the event rows,
    in increasing time order (the order of :func:`schoenfeld_residuals`)."""
    from lifelines.statistics import TimeTransformers

    fn = TimeTransformers().get(transform)
    order = np.argsort(np.asarray(durations, float), kind="stable")
    d = pd.Series(np.asarray(durations, float)[order])
    e = pd.Series(np.asarray(events).astype(bool)[order])
    return np.asarray(fn(d, e, pd.Series(np.ones(len(d))))[e.to_numpy()], dtype=float)


def global_test(g: np.ndarray, scaled: np.ndarray, variance: np.ndarray) -> tuple[float, int]:
    """Grambsch-Therneau global statistic and its degrees of freedom (module docstring)."""
    gc = np.asarray(g, float) - np.mean(g)
    u = gc @ scaled
    stat = float(u @ np.linalg.solve(np.asarray(variance, float), u)) / (
        scaled.shape[0] * float(gc @ gc)
    )
    return stat, int(scaled.shape[1])


def fit_cox(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, penalizer: float = 0.0) -> Any:
    """lifelines ``CoxPHFitter`` on a design matrix (columns = covariates)."""
    from lifelines import CoxPHFitter

    df = X.copy()
    df["__T"], df["__E"] = np.asarray(time, float), np.asarray(event).astype(int)
    return CoxPHFitter(penalizer=penalizer).fit(df, duration_col="__T", event_col="__E")


def proportional_hazards_table(
    cph: Any,
    X: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    scaled: np.ndarray,
    transforms: Sequence[str] = TRANSFORMS,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-covariate (lifelines) and global tests for each time transform.

    Returns
    -------
    pandas.DataFrame
        Columns ``covariate, transform, test_statistic, df, p_value, flagged`` (``p < alpha``),
        one row per covariate and transform plus a ``GLOBAL`` row per transform.
    """
    from lifelines.statistics import proportional_hazard_test

    covariates = list(cph.params_.index)
    resid_df = pd.DataFrame(scaled, columns=covariates)
    rows = []
    for tr in transforms:
        res = proportional_hazard_test(
            cph, None, time_transform=[tr], precomputed_residuals=resid_df
        ).summary
        for cov in covariates:
            r = res.loc[(cov, tr)]
            rows.append((cov, tr, float(r["test_statistic"]), 1, float(r["p"])))
        g = transformed_event_times(tr, time, event)
        stat, dof = global_test(g, scaled, cph.variance_matrix_.to_numpy())
        rows.append((GLOBAL, tr, stat, dof, float(stats.chi2.sf(stat, dof))))
    out = pd.DataFrame(rows, columns=["covariate", "transform", "test_statistic", "df", "p_value"])
    out["flagged"] = out["p_value"] < alpha
    return out


def run_ph_tests(
    clean: pd.DataFrame,
    schema: dict,
    *,
    alpha: float = 0.05,
    max_rows: int = 100_000,
    seed: int = 0,
    penalizer: float = 0.0,
    min_frequency: float = 0.01,
    max_levels: int | None = None,
    transforms: Sequence[str] = TRANSFORMS,
    log: logging.Logger | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit the Cox model on the (sub-sampled) table and test proportional hazards.

    Parameters
    ----------
    clean : pandas.DataFrame
        Validated table (``results/data/clean.parquet``).
    schema : dict
        Its schema (``results/data/schema.json``).
    alpha : float
        Significance level of ``flagged``.
    max_rows : int
        Above this many rows, a stratified (on event) subsample of this size is tested.
    seed : int
        Seed of the subsample.
    penalizer : float
        L2 penalty of lifelines' ``CoxPHFitter``.
    min_frequency, max_levels : float, int or None
        Rare-level pooling of the preprocessing (as in the CV).
    transforms : sequence of str
        lifelines time transforms.
    log : logging.Logger, optional

    Returns
    -------
    table : pandas.DataFrame
        See :func:`proportional_hazards_table`.
    details : dict
        ``event_times``, ``scaled`` (scaled residuals + coefficient, i.e. beta(t) estimates),
        ``coef``, ``covariates``, row counts and timings, for plots and provenance.
    """
    log = log or _log
    dur, ev = schema["duration_col"], schema["event_col"]
    t0 = _time.perf_counter()
    state = preprocess.fit_state(
        clean, schema["numeric"], schema["categorical"], min_frequency, max_levels=max_levels
    )
    rows = clean
    if len(clean) > max_rows:
        rows = stratified_sample(clean, ev, max_rows, seed)
        log.info("PH test on a stratified subsample of %d of %d rows", len(rows), len(clean))
    X = preprocess.transform(rows, state).reset_index(drop=True)
    constant = [c for c in X.columns if X[c].nunique() <= 1]
    if constant:
        log.warning("dropping constant design column(s) %s", constant)
        X = X.drop(columns=constant)
    time, event = rows[dur].to_numpy(float), rows[ev].to_numpy().astype(bool)
    t1 = _time.perf_counter()
    log.info("Cox fit started: %d rows, %d events, %d covariates", len(X), event.sum(), X.shape[1])
    cph = fit_cox(X, time, event, penalizer)
    t2 = _time.perf_counter()
    log.info("Cox fit finished in %.1f s", t2 - t1)
    beta = cph.params_.reindex(X.columns).to_numpy(float)
    event_times, resid = schoenfeld_residuals(X.to_numpy(float), time, event, beta)
    variance = cph.variance_matrix_.loc[X.columns, X.columns].to_numpy(float)
    scaled = scaled_schoenfeld_residuals(resid, variance)
    t3 = _time.perf_counter()
    log.info("scaled Schoenfeld residuals (%d x %d) in %.2f s", *scaled.shape, t3 - t2)
    table = proportional_hazards_table(cph, X, time, event, scaled, transforms, alpha)
    t4 = _time.perf_counter()
    log.info("tests (%s) in %.2f s", ", ".join(transforms), t4 - t3)
    details = {
        "event_times": event_times,
        "beta_t": scaled + beta[None, :],
        "coef": beta,
        "covariates": list(X.columns),
        "dropped_constant": constant,
        "n_rows_total": len(clean),
        "n_rows_used": len(X),
        "n_events_used": int(event.sum()),
        "subsampled": len(clean) > max_rows,
        "seconds": {
            "preprocess": t1 - t0,
            "cox_fit": t2 - t1,
            "residuals": t3 - t2,
            "tests": t4 - t3,
        },
    }
    return table, details


def _smooth(x: np.ndarray, y: np.ndarray, n_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``y`` in equal-count bins of ``x`` (a simple, robust trend line)."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    keep = counts > 0
    mx = np.bincount(idx, weights=x, minlength=len(edges) - 1)[keep] / counts[keep]
    my = np.bincount(idx, weights=y, minlength=len(edges) - 1)[keep] / counts[keep]
    return mx, my


def plot_scaled_residuals(
    details: dict[str, Any],
    table: pd.DataFrame,
    path: str,
    transform: str = "km",
    max_plots: int = 12,
    max_points: int = 5000,
    seed: int = 0,
) -> list[str]:
    """Scaled Schoenfeld residuals (beta(t) estimates) against time, one panel per flagged
    covariate (the ``max_plots`` smallest p-values of ``transform``), written as one PNG.

    Returns the plotted covariates (an explanatory figure is written when none is flagged).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = table[(table["transform"] == transform) & (table["covariate"] != GLOBAL)]
    sel = sel[sel["flagged"]].sort_values("p_value").head(max_plots)
    covs = list(sel["covariate"])
    if not covs:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No covariate flagged: proportional hazards not rejected", ha="center")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        return []
    ncol = min(3, len(covs))
    nrow = int(np.ceil(len(covs) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(6.0, 4.2 * ncol), 3.4 * nrow), squeeze=False)
    t = details["event_times"]
    rng = np.random.default_rng(seed)
    pts = rng.choice(len(t), size=min(max_points, len(t)), replace=False)
    for ax, cov in zip(axes.flat, covs, strict=False):
        j = details["covariates"].index(cov)
        y = details["beta_t"][:, j]
        ax.scatter(t[pts], y[pts], s=4, alpha=0.3, color="tab:blue", rasterized=True)
        sx, sy = _smooth(t, y)
        ax.plot(sx, sy, color="tab:red", lw=2, label="binned mean")
        ax.axhline(details["coef"][j], color="k", ls="--", lw=1, label="Cox coefficient")
        p = float(sel.loc[sel["covariate"] == cov, "p_value"].iloc[0])
        ax.set_title(f"{cov} (p={p:.2g}, {transform})", fontsize=9)
        ax.set_xlabel("time")
        ax.set_ylabel("beta(t)")
        lo, hi = np.quantile(y, [0.01, 0.99])
        ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    for ax in list(axes.flat)[len(covs) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Scaled Schoenfeld residuals vs time (flagged covariates)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return covs
