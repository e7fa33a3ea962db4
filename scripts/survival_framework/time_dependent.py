"""Time-dependent IPCW metrics: Brier score, integrated Brier score, cumulative/dynamic AUC.

Same definitions, arguments, return values and errors as scikit-survival's
``brier_score``, ``integrated_brier_score`` and ``cumulative_dynamic_auc``, computed one
time point at a time so memory stays O(n) beyond the estimate itself (scikit-survival's
AUC materialises seven ``n x n_times`` arrays, 2.2 GB at 2M test rows x 20 times). The AUC
sorts each time point's marker; when a column is already in the order of the previous one
(every proportional-hazards model) the sort is replaced by a linear check.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .kaplan_meier import CensoringDistribution, SurvivalFunction, censoring_distribution
from .outcome import check_estimate_2d, check_y_survival

__all__ = ["brier_score", "integrated_brier_score", "cumulative_dynamic_auc"]


def brier_score(
    survival_train: np.ndarray | CensoringDistribution,
    survival_test: np.ndarray,
    estimate: np.ndarray,
    times: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """IPCW Brier score of survival probabilities at each of ``times``.

    Parameters
    ----------
    survival_train : structured ndarray or CensoringDistribution
        Training outcome the censoring distribution is estimated from (or that estimate).
    survival_test : structured ndarray
    estimate : ndarray of shape (n_test, n_times) or (n_test,)
        Predicted survival probabilities.
    times : array-like
        Evaluation times inside the test follow-up (sorted and made unique).

    Returns
    -------
    times : ndarray
    brier_scores : ndarray
    """
    test_event, test_time = check_y_survival(survival_test)
    estimate, times = check_estimate_2d(estimate, test_time, times, estimator="brier_score")
    if estimate.ndim == 1 and times.shape[0] == 1:
        estimate = estimate.reshape(-1, 1)
    cens = censoring_distribution(survival_train)
    prob_cens_t = cens.predict_proba(times)
    prob_cens_t[prob_cens_t == 0] = np.inf
    prob_cens_y = cens.predict_proba(test_time)
    prob_cens_y[prob_cens_y == 0] = np.inf
    scores = np.empty(times.shape[0], dtype=float)
    for i, t in enumerate(times):
        est = estimate[:, i]
        is_case = (test_time <= t) & test_event
        is_control = test_time > t
        scores[i] = np.mean(
            np.square(est) * is_case.astype(int) / prob_cens_y
            + np.square(1.0 - est) * is_control.astype(int) / prob_cens_t[i]
        )
    return times, scores


def integrated_brier_score(
    survival_train: np.ndarray | CensoringDistribution,
    survival_test: np.ndarray,
    estimate: np.ndarray,
    times: np.ndarray,
) -> float:
    """Brier score integrated over ``times`` (trapezoids) and divided by their range.

    Raises
    ------
    ValueError
        With fewer than two time points, or as :func:`brier_score`.
    """
    times, scores = brier_score(survival_train, survival_test, estimate, times)
    if times.shape[0] < 2:
        raise ValueError("At least two time points must be given")
    return float(np.trapezoid(scores, times) / (times[-1] - times[0]))


def _auc_scores(
    columns: Callable[[int], np.ndarray],
    test_time: np.ndarray,
    test_event: np.ndarray,
    ipcw: np.ndarray,
    times: np.ndarray,
    tied_tol: float,
) -> np.ndarray:
    """AUC at each of ``times``; ``columns(i)`` is the marker at ``times[i]``."""
    scores = np.empty(times.shape[0], dtype=float)
    order = None
    for i, t in enumerate(times):
        marker = columns(i)
        m = None if order is None else marker[order]
        if m is None or np.any(np.diff(m) > 0):  # not in the previous column's order
            order = np.argsort(-marker)  # any order of equal markers gives the same AUC
            m = marker[order]
            time_o, event_o, ipcw_o = test_time[order], test_event[order], ipcw[order]
        is_case = (time_o <= t) & event_o
        cumsum_tp = np.cumsum(np.where(is_case, ipcw_o, 0.0))
        cumsum_fp = np.cumsum(time_o > t)
        # of a run of tied markers only the last threshold counts
        keep = np.r_[np.absolute(np.diff(m)) > tied_tol, True]
        true_pos = np.compress(keep, cumsum_tp) / cumsum_tp[-1]
        false_pos = np.compress(keep, cumsum_fp) / cumsum_fp[-1]
        scores[i] = np.trapezoid(np.r_[0.0, true_pos], np.r_[0.0, false_pos])
    return scores


def cumulative_dynamic_auc(
    survival_train: np.ndarray | CensoringDistribution,
    survival_test: np.ndarray,
    estimate: np.ndarray,
    times: np.ndarray,
    tied_tol: float = 1e-8,
    marker: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, float]:
    """Cumulative/dynamic AUC at each of ``times`` and its mean (Uno et al., Hung & Chiang).

    Parameters
    ----------
    survival_train : structured ndarray or CensoringDistribution
        Training outcome the censoring distribution is estimated from (or that estimate).
    survival_test : structured ndarray
    estimate : ndarray of shape (n_test, n_times) or (n_test,)
        Risk marker (higher = earlier event); one column per time or one for all.
    times : array-like
    tied_tol : float
        Markers closer than this are ties.
    marker : callable, optional
        Applied to each column of ``estimate`` to give the marker, one column at a time
        (e.g. ``lambda s: 1.0 - s`` for survival probabilities, without an
        ``n_test x n_times`` copy).

    Returns
    -------
    auc : ndarray of shape (n_times,)
    mean_auc : float
        The AUC integrated over the test Kaplan-Meier estimate, as scikit-survival's.
    """
    test_event, test_time = check_y_survival(survival_test)
    estimate, times = check_estimate_2d(
        estimate, test_time, times, estimator="cumulative_dynamic_auc"
    )
    ipcw = censoring_distribution(survival_train).predict_ipcw(survival_test)

    def columns(i: int) -> np.ndarray:
        col = estimate if estimate.ndim == 1 else estimate[:, i]
        return col if marker is None else marker(col)

    scores = _auc_scores(columns, test_time, test_event, ipcw, times, tied_tol)
    if times.shape[0] == 1:
        return scores, float(scores[0])
    s_times = SurvivalFunction(survival_test).predict_proba(times)
    d = -np.diff(np.r_[1.0, s_times])
    return scores, float((scores * d).sum() / (1.0 - s_times[-1]))
