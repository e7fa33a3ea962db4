"""Concordance indices in O(n log n + n * block): scikit-survival's estimators, vectorised.

``sksurv.metrics.concordance_index_censored`` and ``concordance_index_ipcw`` build a boolean
mask over all test rows for every event (O(n^2) work in a Python loop): 5-12 s per call at
57,000 test rows, more than fitting a Cox model. The counts they need are "how many rows
later in time have a lower (or tied) risk", which sorted arrays answer with
``numpy.searchsorted``. The definitions are exactly scikit-survival's: comparable pairs
(event i, any j with t_j > t_i, or censored j with t_j == t_i), risk ties within
``tied_tol`` counted as 1/2, IPCW weights ``1 / G(t_i)^2`` from the training data's
Kaplan-Meier censoring distribution, truncated at ``tau``. ``tests/test_performance.py``
checks equality with scikit-survival on random data with tied times and tied risks.
"""

from __future__ import annotations

import numpy as np
from sksurv.exceptions import NoComparablePairException
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.util import check_y_survival

__all__ = ["weighted_concordance", "harrell_concordance", "uno_concordance"]

_BLOCK = 1024


def weighted_concordance(
    event: np.ndarray,
    time: np.ndarray,
    estimate: np.ndarray,
    weights: np.ndarray,
    tied_tol: float = 1e-8,
) -> float:
    """Weighted concordance index, as scikit-survival's ``_estimate_concordance_index``.

    Parameters
    ----------
    event : ndarray of shape (n,)
        Event indicator.
    time : ndarray of shape (n,)
        Event or censoring times.
    estimate : ndarray of shape (n,)
        Risk scores (higher = earlier event).
    weights : ndarray of shape (n,)
        Weight of each row when it is the earlier (event) member of a pair.
    tied_tol : float
        Risk scores closer than this are ties (counted 1/2).

    Returns
    -------
    float
        The concordance index.

    Raises
    ------
    NoComparablePairException
        If no pair is comparable.
    """
    event = np.asarray(event).astype(bool)
    time = np.asarray(time, dtype=float)
    est = np.asarray(estimate, dtype=float)
    weights = np.asarray(weights, dtype=float)
    n = len(time)
    # time ascending; within equal times events first, so the rows comparable with an event
    # are exactly the positions from the end of its time's events onwards
    order = np.lexsort((~event, time))
    t, e, s, w = time[order], event[order], est[order], weights[order]
    new_time = np.r_[True, t[1:] != t[:-1]]
    group = np.cumsum(new_time) - 1
    group_start = np.flatnonzero(new_time)
    events_per_group = np.bincount(group, weights=e, minlength=len(group_start)).astype(int)
    first_comparable = (group_start + events_per_group)[group]
    # scikit-survival skips a final group made of the last row alone (it has no partner)
    query = np.flatnonzero(e & (group_start[group] < n - 1))
    if query.size == 0:
        raise NoComparablePairException(
            "Data has no comparable pairs, cannot estimate concordance index."
        )
    query = query[w[query] != 0]  # zero-weight events add nothing to either sum
    start = first_comparable[query]
    lower, upper = s[query] - tied_tol, s[query] + tied_tol
    n_less = np.zeros(query.size)  # comparable rows with est < est_i - tol (concordant)
    n_tied = np.zeros(query.size)  # comparable rows with |est - est_i| <= tol
    block_of = start // _BLOCK
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    later = np.empty(0)  # sorted estimates of all rows in blocks after the current one
    for b in range(n_blocks - 1, -1, -1):
        lo, hi = b * _BLOCK, min((b + 1) * _BLOCK, n)
        sel = np.flatnonzero(block_of == b)
        if sel.size:
            below = np.searchsorted(later, lower[sel], side="left")
            n_less[sel] += below
            n_tied[sel] += np.searchsorted(later, upper[sel], side="right") - below
            pos = np.arange(lo, hi)
            inside = pos[None, :] >= start[sel, None]
            blk = s[lo:hi][None, :]
            less = blk < lower[sel, None]
            tied = (blk >= lower[sel, None]) & (blk <= upper[sel, None])
            n_less[sel] += (inside & less).sum(axis=1)
            n_tied[sel] += (inside & tied).sum(axis=1)
        later = np.sort(np.concatenate([later, s[lo:hi]]))
    wq = w[query]
    numerator = np.sum(wq * n_less) + 0.5 * np.sum(wq * n_tied)
    denominator = np.sum(wq * (n - start))
    return float(numerator / denominator) if denominator > 0 else float("nan")


def harrell_concordance(
    event: np.ndarray, time: np.ndarray, estimate: np.ndarray, tied_tol: float = 1e-8
) -> float:
    """Harrell's concordance index (``sksurv.metrics.concordance_index_censored``)."""
    event = np.asarray(event).astype(bool)
    if not event.any():
        raise ValueError("All samples are censored")
    return weighted_concordance(event, time, estimate, np.ones(len(event)), tied_tol)


def uno_concordance(
    survival_train: np.ndarray,
    survival_test: np.ndarray,
    estimate: np.ndarray,
    tau: float | None = None,
    tied_tol: float = 1e-8,
) -> float:
    """Uno's IPCW concordance index (``sksurv.metrics.concordance_index_ipcw``)."""
    test_event, test_time = check_y_survival(survival_test)
    mask = test_time < tau if tau is not None else np.ones(len(test_time), dtype=bool)
    cens = CensoringDistributionEstimator().fit(survival_train)
    ipcw = np.zeros(len(test_time))
    ipcw[mask] = cens.predict_ipcw(survival_test[mask])
    return weighted_concordance(
        test_event, test_time, np.asarray(estimate, float), np.square(ipcw), tied_tol
    )
