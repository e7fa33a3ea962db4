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

Robustness: a diagnostic never fails the run. Before the fit, constant design columns and
aliased ones (:func:`aliased_columns`: exact linear dependence on earlier columns, e.g. a
copied feature, a relabelled categorical, a sum of two features) are dropped. The fit uses
``penalizer``; when it raises or does not converge, :data:`FALLBACK_PENALIZERS` larger than it
are tried in turn. When the tests still cannot be computed (no event time spread, no covariate
left, any exception from the fit or the tests), :func:`run_ph_tests` returns a table whose
``GLOBAL`` rows have ``status = failed`` and the ``reason``. The table's shape is
:data:`TABLE_COLUMNS`, documented in :func:`run_ph_tests`.
"""

from __future__ import annotations

import logging
import re
import textwrap
import time as _time
import warnings
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
    "TABLE_COLUMNS",
    "STATUS_OK",
    "STATUS_DROPPED",
    "STATUS_FAILED",
    "FALLBACK_PENALIZERS",
    "aliased_columns",
    "untestable_reason",
    "failed_table",
    "schoenfeld_residuals",
    "scaled_schoenfeld_residuals",
    "transformed_event_times",
    "global_test",
    "fit_cox",
    "proportional_hazards_table",
    "run_ph_tests",
    "plot_scaled_residuals",
    "plot_message",
]

TRANSFORMS: tuple[str, ...] = ("rank", "km")
GLOBAL = "GLOBAL"
STATUS_OK, STATUS_DROPPED, STATUS_FAILED = "ok", "dropped", "failed"
TABLE_COLUMNS: tuple[str, ...] = (
    "covariate",
    "transform",
    "test_statistic",
    "df",
    "p_value",
    "flagged",
    "status",
    "reason",
)
# lifelines' advice for convergence problems is a penalizer of about 0.1; 0.01 first keeps the
# coefficients (and so the tests) closest to the unpenalised fit
FALLBACK_PENALIZERS: tuple[float, ...] = (0.01, 0.1)
# residual norm of a unit-norm centred column below which it counts as a linear combination of
# the columns before it: exact dependence leaves ~1e-15; a correlation of 1 - 1e-12 is kept
ALIAS_TOL = 1e-7
# lifelines ConvergenceWarning texts after which the fit is retried with a larger penalizer
_NOT_CONVERGED = ("failed to converge", "non-unique solutions")
_LIFELINES_TIPS = re.compile(
    r"Please see the following tips in the lifelines documentation: "
    r"https?://\S*?#problems-with-convergence-in-the-cox-proportional-hazard-model"
)
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
        Columns :data:`TABLE_COLUMNS`: one row per covariate and transform plus a ``GLOBAL``
        row per transform; ``flagged`` is ``p < alpha``; ``status`` is ``ok``, or ``failed``
        (with ``reason``) where the statistic is not finite.
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
    out = pd.DataFrame(rows, columns=list(TABLE_COLUMNS[:5]))
    out["flagged"] = out["p_value"] < alpha
    finite = np.isfinite(out["test_statistic"]) & np.isfinite(out["p_value"])
    out["status"] = np.where(finite, STATUS_OK, STATUS_FAILED)
    out["reason"] = np.where(finite, "", "test statistic is not finite")
    return out


def aliased_columns(X: pd.DataFrame, tol: float = ALIAS_TOL) -> dict[str, list[str]]:
    """Design columns that are (exactly) linear combinations of the columns before them.

    The Cox partial likelihood ignores constants, so the columns are centred (as if with an
    intercept) and scaled to unit norm, then orthogonalised in order: a column whose
    residual norm is below ``tol`` is aliased (the rule and tolerance of R's ``lm``, whose
    LINPACK QR ``dqrdc2`` moves such columns last). The first column of a dependent set is
    kept, later ones are reported, so a copied feature, a relabelled categorical's one-hot
    columns or a sum of two features is the one dropped. The work is on the ``p x p``
    triangular factor of one QR decomposition (which keeps every inner product of the
    columns), so it costs about one ``n x p`` QR.

    Parameters
    ----------
    X : pandas.DataFrame of shape (n_samples, n_features)
        Design matrix (columns = covariates).
    tol : float
        Relative residual norm below which a column counts as aliased.

    Returns
    -------
    dict
        ``{aliased column: [kept columns it is a combination of, largest weight first]}``
        in column order (an empty list for a constant column).
    """
    Z = np.asarray(X, dtype=float)
    Z = Z - Z.mean(axis=0)
    norms = np.linalg.norm(Z, axis=0)
    names = [str(c) for c in X.columns]
    out: dict[str, list[str]] = {name: [] for name, nm in zip(names, norms, strict=True) if nm == 0}
    live = [j for j, nm in enumerate(norms) if nm > 0]
    if not live:
        return out
    # Z = Q R with orthonormal Q: the columns of R have the inner products of Z's columns
    R = np.linalg.qr(Z[:, live] / norms[live], mode="r")
    basis = np.empty((R.shape[0], len(live)))
    kept: list[int] = []  # positions in `live`
    for i, j in enumerate(live):
        r = R[:, i].copy()
        for _ in range(2):  # Gram-Schmidt twice: orthogonal to rounding
            q = basis[:, : len(kept)]
            r -= q @ (q.T @ r)
        rn = float(np.linalg.norm(r))
        if rn >= tol:
            basis[:, len(kept)] = r / rn
            kept.append(i)
            continue
        coef = np.linalg.lstsq(R[:, kept], R[:, i], rcond=None)[0]
        order = np.argsort(-np.abs(coef), kind="stable")
        out[names[j]] = [names[live[kept[k]]] for k in order if abs(coef[k]) > 1e-6]
    return {name: out[name] for name in names if name in out}


def untestable_reason(time: np.ndarray, event: np.ndarray, n_covariates: int) -> str | None:
    """Why the tests cannot be computed on these rows, or ``None`` if they can be tried.

    The time transforms (and so every statistic) are constant when the events do not
    span at least two distinct times.
    """
    ev_times = np.unique(np.asarray(time, float)[np.asarray(event).astype(bool)])
    n_events = int(np.asarray(event).astype(bool).sum())
    if n_covariates == 0:
        return "no covariate left to test (every design column was constant or aliased)"
    if n_events == 0:
        return f"no events in the {len(time)} tested rows"
    if len(ev_times) < 2:
        return (
            f"all {n_events} event(s) at one time ({ev_times[0]:g}): the time transforms are "
            "constant, so the Schoenfeld tests are undefined"
        )
    return None


def _one_line(text: str) -> str:
    """``text`` on one line, without lifelines' pointer to its convergence tips (the same
    long URL in every message; docs/bad-input.md links it once)."""
    text = re.sub(r"\s+", " ", _LIFELINES_TIPS.sub(" ", text)).strip()
    return re.sub(r" ([.:;,])", r"\1", text)


def _describe(exc: BaseException, max_chars: int = 300) -> str:
    """``Type: message`` of an exception on one line, at most ``max_chars`` long."""
    text = _one_line(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def failed_table(reason: str, transforms: Sequence[str] = TRANSFORMS) -> pd.DataFrame:
    """The table when the tests could not be computed: one ``GLOBAL`` row per transform with
    ``p_value`` NaN, ``flagged`` False, ``status = failed`` and the ``reason``."""
    return pd.DataFrame(
        [(GLOBAL, tr, np.nan, np.nan, np.nan, False, STATUS_FAILED, reason) for tr in transforms],
        columns=list(TABLE_COLUMNS),
    )


def _dropped_table(constant: Sequence[str], aliased: dict[str, list[str]]) -> pd.DataFrame:
    """One ``status = dropped`` row per design column removed before the fit."""
    rows = [(c, "", "constant in the tested rows") for c in constant]
    for col, partners in aliased.items():
        why = "aliased: constant" if not partners else f"aliased with {', '.join(partners)}"
        rows.append((col, "", f"{why} (exact linear dependence in the design matrix)"))
    return pd.DataFrame(
        [(c, tr, np.nan, np.nan, np.nan, False, STATUS_DROPPED, why) for c, tr, why in rows],
        columns=list(TABLE_COLUMNS),
    )


class _Untestable(Exception):
    """The tests cannot be computed; the message is the reason for the table."""


def _fit_with_fallback(
    X: pd.DataFrame, time: np.ndarray, event: np.ndarray, penalizer: float, log: logging.Logger
) -> tuple[Any, float, list[dict[str, Any]]]:
    """Fit with ``penalizer``, then with each larger :data:`FALLBACK_PENALIZERS` value until
    one fit succeeds and converges.

    Returns the fit, its penalizer and the failed attempts (``penalizer``, ``error``). If no
    fit converges, the last one that ran is returned (its attempt is listed too).

    Raises
    ------
    _Untestable
        If every fit raised.
    """
    from lifelines.exceptions import ConvergenceWarning

    attempts: list[dict[str, Any]] = []
    last = None
    for pen in [penalizer, *(p for p in FALLBACK_PENALIZERS if p > penalizer)]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                cph = fit_cox(X, time, event, pen)
            except Exception as exc:
                attempts.append({"penalizer": pen, "error": _describe(exc)})
                log.warning("Cox fit with penalizer %g failed: %s", pen, attempts[-1]["error"])
                continue
        messages = [_one_line(str(w.message)) for w in caught]
        for w, msg in zip(caught, messages, strict=True):
            log.warning("Cox fit with penalizer %g: %s: %s", pen, w.category.__name__, msg)
        trouble = [
            m
            for w, m in zip(caught, messages, strict=True)
            if issubclass(w.category, ConvergenceWarning) and any(k in m for k in _NOT_CONVERGED)
        ]
        if not trouble:
            return cph, pen, attempts
        attempts.append({"penalizer": pen, "error": f"ConvergenceWarning: {trouble[0][:200]}"})
        last = (cph, pen)
    if last is None:
        raise _Untestable(
            "Cox fit failed with every penalizer tried: "
            + "; ".join(f"penalizer {a['penalizer']:g}: {a['error']}" for a in attempts)
        )
    return last[0], last[1], attempts


def _fit_note(penalizer: float, used: float, attempts: list[dict[str, Any]]) -> str:
    """The GLOBAL rows' ``reason`` of a successful fit: what differed from the plain fit."""
    notes = []
    if attempts and attempts[-1]["penalizer"] == used:
        notes.append(f"Cox fit did not converge (penalizer {used:g}); p-values are unreliable")
    elif used != penalizer:
        first = attempts[0]
        notes.append(
            f"penalizer {used:g} used (penalizer {first['penalizer']:g}: {first['error']})"
        )
    return "; ".join(notes)


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

    Never raises for a problem of the data or the fit (module docstring): the table then
    says what happened.

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
        L2 penalty of lifelines' ``CoxPHFitter`` (larger :data:`FALLBACK_PENALIZERS` values
        are tried if the fit fails or does not converge).
    min_frequency, max_levels : float, int or None
        Rare-level pooling of the preprocessing (as in the CV).
    transforms : sequence of str
        lifelines time transforms.
    log : logging.Logger, optional

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`TABLE_COLUMNS`. ``status`` says what each row is:

        - ``ok``: a test (one row per tested covariate and transform, then a ``GLOBAL`` row
          per transform). ``reason`` is empty, except on the ``GLOBAL`` rows when the fit
          used a fallback penalizer or did not converge.
        - ``failed``: the tests could not be computed. One ``GLOBAL`` row per transform,
          ``test_statistic``, ``df`` and ``p_value`` NaN, ``flagged`` False, ``reason`` why
          (``Type: message`` of the exception, or the failed pre-check).
        - ``dropped``: a design column removed before the fit (constant, or aliased with the
          columns named in ``reason``), ``transform`` empty, statistics NaN; after the others.

        ``df`` is a nullable integer (``Int64``).
    details : dict
        ``status``, ``reason``, ``penalizer_used``, ``fit_attempts`` (failed fits),
        ``dropped_constant``, ``dropped_aliased`` (``{column: [aliased with]}``),
        ``event_times``, ``beta_t`` (scaled residuals + coefficient, i.e. beta(t)
        estimates), ``coef``, ``covariates``, row counts and timings, for plots and
        provenance.
    """
    log = log or _log
    details: dict[str, Any] = {
        "status": STATUS_OK,
        "reason": "",
        "penalizer": float(penalizer),
        "penalizer_used": None,
        "fit_attempts": [],
        "dropped_constant": [],
        "dropped_aliased": {},
        "covariates": [],
        "coef": np.empty(0),
        "event_times": np.empty(0),
        "beta_t": np.empty((0, 0)),
        "n_rows_total": len(clean),
        "n_rows_used": 0,
        "n_events_used": 0,
        "subsampled": len(clean) > max_rows,
        "seconds": {},
    }
    try:
        table = _fit_and_test(
            clean,
            schema,
            details,
            alpha,
            max_rows,
            seed,
            penalizer,
            min_frequency,
            max_levels,
            transforms,
            log,
        )
    except Exception as exc:  # a diagnostic must not fail the run: the table says why
        reason = str(exc) if isinstance(exc, _Untestable) else _describe(exc)
        log.warning(
            "proportional-hazards tests could not be computed: %s",
            reason,
            exc_info=not isinstance(exc, _Untestable),
        )
        details.update(status=STATUS_FAILED, reason=reason)
        table = failed_table(reason, transforms)
    dropped = _dropped_table(details["dropped_constant"], details["dropped_aliased"])
    if not dropped.empty:
        table = pd.concat([table, dropped], ignore_index=True)
    table["df"] = table["df"].astype("Int64")  # integers, missing where untested
    return table, details


def _fit_and_test(
    clean: pd.DataFrame,
    schema: dict,
    details: dict[str, Any],
    alpha: float,
    max_rows: int,
    seed: int,
    penalizer: float,
    min_frequency: float,
    max_levels: int | None,
    transforms: Sequence[str],
    log: logging.Logger,
) -> pd.DataFrame:
    """The work of :func:`run_ph_tests`, filling ``details`` as it goes (so that what was
    dropped before a failure is still reported)."""
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
    time, event = rows[dur].to_numpy(float), rows[ev].to_numpy().astype(bool)
    details.update(n_rows_used=len(X), n_events_used=int(event.sum()))
    constant = [c for c in X.columns if X[c].nunique() <= 1]
    if constant:
        log.warning("dropping constant design column(s) %s", constant)
        details["dropped_constant"] = constant
        X = X.drop(columns=constant)
    aliased = aliased_columns(X)
    if aliased:
        for col, partners in aliased.items():
            log.warning(
                "dropping aliased design column %r (linear combination of %s)", col, partners
            )
        details["dropped_aliased"] = aliased
        X = X.drop(columns=list(aliased))
    t1 = _time.perf_counter()
    details["seconds"]["preprocess"] = t1 - t0
    reason = untestable_reason(time, event, X.shape[1])
    if reason:
        raise _Untestable(reason)
    log.info("Cox fit started: %d rows, %d events, %d covariates", len(X), event.sum(), X.shape[1])
    cph, used, attempts = _fit_with_fallback(X, time, event, penalizer, log)
    details.update(penalizer_used=used, fit_attempts=attempts)
    t2 = _time.perf_counter()
    details["seconds"]["cox_fit"] = t2 - t1
    log.info("Cox fit finished in %.1f s (penalizer %g)", t2 - t1, used)
    beta = cph.params_.reindex(X.columns).to_numpy(float)
    event_times, resid = schoenfeld_residuals(X.to_numpy(float), time, event, beta)
    variance = cph.variance_matrix_.loc[X.columns, X.columns].to_numpy(float)
    scaled = scaled_schoenfeld_residuals(resid, variance)
    t3 = _time.perf_counter()
    details["seconds"]["residuals"] = t3 - t2
    log.info("scaled Schoenfeld residuals (%d x %d) in %.2f s", *scaled.shape, t3 - t2)
    with np.errstate(divide="ignore", invalid="ignore"):
        table = proportional_hazards_table(cph, X, time, event, scaled, transforms, alpha)
    details["seconds"]["tests"] = _time.perf_counter() - t3
    log.info("tests (%s) in %.2f s", ", ".join(transforms), details["seconds"]["tests"])
    note = _fit_note(penalizer, used, attempts)
    if note:
        is_global = table["covariate"] == GLOBAL
        table.loc[is_global, "reason"] = [
            "; ".join(x for x in (r, note) if x) for r in table.loc[is_global, "reason"]
        ]
    details.update(
        event_times=event_times,
        beta_t=scaled + beta[None, :],
        coef=beta,
        covariates=list(X.columns),
        reason=note,
    )
    return table


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_message(path: str, title: str, text: str = "", width: int = 90) -> None:
    """A placeholder PNG holding only ``title`` and ``text`` (wrapped at ``width`` characters),
    where a figure cannot or need not be drawn."""
    plt = _plt()
    lines = textwrap.wrap(text, width) if text else []
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.2 * len(lines)))
    ax.axis("off")
    ax.annotate(title, (0.5, 1.0), xycoords="axes fraction", ha="center", va="top", weight="bold")
    if lines:  # below the title, in points: the saved figure is cropped to the text
        ax.annotate(
            "\n".join(lines),
            (0.5, 1.0),
            xycoords="axes fraction",
            xytext=(0, -20),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=9,
            family="monospace",
        )
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


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

    Returns the plotted covariates. An explanatory figure (:func:`plot_message`) is written
    when none is flagged, and one showing the reason when the tests failed
    (``details["status"] == "failed"``).
    """
    if details.get("status") == STATUS_FAILED:
        plot_message(
            path,
            "Proportional-hazards tests could not be computed",
            details.get("reason", ""),
        )
        return []
    plt = _plt()
    sel = table[
        (table["transform"] == transform)
        & (table["covariate"] != GLOBAL)
        & (table["status"] == STATUS_OK)
    ]
    sel = sel[sel["flagged"]].sort_values("p_value").head(max_plots)
    covs = list(sel["covariate"])
    if not covs:
        plot_message(path, "No covariate flagged: proportional hazards not rejected")
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
