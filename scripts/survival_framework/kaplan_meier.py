"""Kaplan-Meier estimates of survival and of censoring, vectorised.

scikit-survival's ``kaplan_meier_estimator`` counts events and rows at risk in a Python
loop over the sorted samples (about 1 s per million rows); here the same counts come from
the sorted times and the sorted event times (runs of equal values). ``SurvivalFunction``
and ``CensoringDistribution`` evaluate the step functions exactly as scikit-survival's
``SurvivalFunctionEstimator`` and ``CensoringDistributionEstimator`` do (same tolerance for
a time equal to a jump, same errors), so IPCW metrics built on them equal scikit-survival's.
"""

from __future__ import annotations

import numpy as np

from .outcome import check_y_survival

__all__ = [
    "kaplan_meier_estimator",
    "SurvivalFunction",
    "CensoringDistribution",
    "censoring_distribution",
]


def _counts(
    event: np.ndarray, time: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique times, events, rows at risk and censored rows at each unique time."""
    # sorted values, not an argsort: the counts need no permutation, and sorting the values
    # (all times, then the event times) is several times faster than one argsort
    t = np.sort(time)
    first = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    uniq = t[first]
    total = np.diff(np.r_[first, len(t)])
    event_time = np.sort(time[event])
    # the event times are among the unique times: those at uniq[j] lie in [uniq[j], uniq[j+1])
    n_events = np.diff(np.searchsorted(event_time, uniq, side="left"), append=len(event_time))
    n_at_risk = len(t) - np.r_[0, np.cumsum(total)[:-1]]
    return uniq, n_events.astype(np.int64), n_at_risk, total - n_events


def kaplan_meier_estimator(
    event: np.ndarray, time: np.ndarray, reverse: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of the survival (or, ``reverse``, the censoring) function.

    Parameters
    ----------
    event : ndarray of bool, shape (n_samples,)
    time : ndarray, shape (n_samples,)
    reverse : bool
        Estimate the censoring distribution: censorings are the events, and rows with an
        event at a time leave the risk set before the censorings at that time.

    Returns
    -------
    times : ndarray
        Unique observed times, ascending.
    prob : ndarray
        The estimate just after each of ``times``.
    """
    event = np.asarray(event).astype(bool)
    time = np.asarray(time)
    return _estimate(*_counts(event, time), reverse=reverse)


def _estimate(
    uniq: np.ndarray,
    n_events: np.ndarray,
    n_at_risk: np.ndarray,
    n_censored: np.ndarray,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kaplan_meier_estimator` from the counts of :func:`_counts`."""
    if reverse:
        n_at_risk = n_at_risk - n_events
        n_events = n_censored
    ratio = np.divide(
        n_events, n_at_risk, out=np.zeros(uniq.shape[0], dtype=float), where=n_events != 0
    )
    return uniq, np.cumprod(1.0 - ratio)


class SurvivalFunction:
    """A fitted Kaplan-Meier step function (``sksurv.nonparametric.SurvivalFunctionEstimator``).

    Parameters
    ----------
    y : structured ndarray
        Outcome to estimate it from (all censored is allowed).
    """

    def __init__(self, y: np.ndarray):
        event, time = check_y_survival(y, allow_all_censored=True)
        unique_time, prob = kaplan_meier_estimator(event, time)
        self.unique_time_ = np.r_[-np.inf, unique_time]
        self.prob_ = np.r_[1.0, prob]
        self._memo: tuple[np.ndarray, np.ndarray] | None = None

    def predict_proba(self, time: np.ndarray) -> np.ndarray:
        """The estimate at ``time`` (0 beyond the last time if the curve reached 0).

        Raises
        ------
        ValueError
            If a time lies beyond the last observed time and the estimate there is positive.
        """
        time = np.asarray(time)
        recalled = self._recall(time)
        if recalled is not None:
            return recalled.copy()
        out = self._predict_proba(time)
        if time.ndim == 1 and time.shape[0] >= _MEMO_MIN_ROWS:
            self._memo = (time.copy(), out.copy())
        return out

    def _recall(self, time: np.ndarray) -> np.ndarray | None:
        """The last large lookup's estimate if it was of these same times (else None).

        A job's metrics look ``G`` up at the same test times for the Brier score, the
        reference Brier score and the AUC; comparing the times costs a fraction of a
        lookup.
        """
        memo = self._memo
        if memo is None or memo[0].shape != time.shape or memo[0].dtype != time.dtype:
            return None
        return memo[1] if np.array_equal(memo[0], time) else None

    def _predict_proba(self, time: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` without the memo."""
        extends = time > self.unique_time_[-1]
        if self.prob_[-1] > 0 and extends.any():
            raise ValueError(
                f"time must be smaller than largest observed time point: {self.unique_time_[-1]}"
            )
        if time.ndim == 1 and not extends.any():  # no masks needed
            idx = _search_left(self.unique_time_, time)
            # a time within machine epsilon of a jump counts as the jump (scikit-survival's)
            idx -= ~(np.absolute(self.unique_time_[idx] - time) < np.finfo(float).eps)
            return self.prob_[idx]
        out = np.empty(time.shape, dtype=float)
        out[extends] = 0.0
        valid = time[~extends]
        idx = np.searchsorted(self.unique_time_, valid)
        exact = np.absolute(self.unique_time_[idx] - valid) < np.finfo(float).eps
        idx[~exact] -= 1
        out[~extends] = self.prob_[idx]
        return out


class CensoringDistribution(SurvivalFunction):
    """Kaplan-Meier estimate of the censoring distribution ``G`` and IPC weights.

    The estimator behind Uno's C, the Brier score and the cumulative/dynamic AUC
    (``sksurv.nonparametric.CensoringDistributionEstimator``).

    Parameters
    ----------
    y : structured ndarray
        Training outcome (at least one event).
    """

    def __init__(self, y: np.ndarray):
        event, time = check_y_survival(y)
        counts = _counts(event, time)
        if event.all():
            self.unique_time_ = counts[0]
            self.prob_ = np.ones(self.unique_time_.shape[0])
        else:
            unique_time, prob = _estimate(*counts, reverse=True)
            self.unique_time_ = np.r_[-np.inf, unique_time]
            self.prob_ = np.r_[1.0, prob]
        # the survival estimate of the same outcome comes from the same counts (one sort)
        self._survival = _estimate(*counts)
        self._memo = None

    def survival_estimate(self) -> tuple[np.ndarray, np.ndarray]:
        """The Kaplan-Meier estimate of survival (not censoring) of the same outcome:
        ``kaplan_meier_estimator(event, time)``, computed with this estimate's sort."""
        return self._survival

    def predict_ipcw(self, y: np.ndarray) -> np.ndarray:
        """Inverse probability of censoring weights ``event_i / G(t_i)``.

        Raises
        ------
        ValueError
            If ``G`` is zero at an event time.
        """
        event, time = check_y_survival(y)
        recalled = self._recall(time)  # G at all these times, if just looked up
        ghat = recalled[event] if recalled is not None else self.predict_proba(time[event])
        if (ghat == 0.0).any():
            raise ValueError("censoring survival function is zero at one or more time points")
        weights = np.zeros(time.shape[0])
        weights[event] = 1.0 / ghat
        return weights


def censoring_distribution(
    survival_train: np.ndarray | CensoringDistribution,
) -> CensoringDistribution:
    """The censoring distribution of a training outcome, or the given fitted one.

    Lets one job estimate ``G`` once for all its IPCW metrics (sorting 8M training times
    costs about a second).
    """
    if isinstance(survival_train, CensoringDistribution):
        return survival_train
    return CensoringDistribution(survival_train)


_MEMO_MIN_ROWS = 1 << 16
"""Lookups of at least this many times are remembered (one, the last) for a repeat."""


def _search_left(sorted_values: np.ndarray, x: np.ndarray, max_fixups: int = 4) -> np.ndarray:
    """``np.searchsorted(sorted_values, x)`` (side ``"left"``), faster for many unsorted ``x``.

    numpy's binary search costs ~85 ns a needle on unsorted needles (a mispredicted branch
    per step); here a lookup table over a uniform grid of the finite range gives each
    needle a start within a step or two of its position, and a few vectorised steps up or
    down (``sorted_values[i - 1] < x <= sorted_values[i]``) make it exact. Needles still
    off after ``max_fixups`` steps (a dense cluster of values) are searched by numpy.

    Parameters
    ----------
    sorted_values : ndarray of shape (m,)
        Ascending (``-inf`` and ``inf`` allowed), no NaN.
    x : ndarray of shape (n,)

    Returns
    -------
    ndarray of intp, shape (n,)
    """
    finite = sorted_values[np.isfinite(sorted_values)]
    x = np.asarray(x)
    if (
        x.ndim != 1
        or x.shape[0] < 65_536
        or finite.shape[0] < 64
        or not np.issubdtype(x.dtype, np.number)
        or finite[-1] == finite[0]
    ):
        return np.searchsorted(sorted_values, x)
    x = np.asarray(x, dtype=float)  # what searchsorted compares against a float array
    if np.isnan(x).any():
        return np.searchsorted(sorted_values, x)
    lo = float(finite[0])
    n_cells = 4 * finite.shape[0]
    scale = n_cells / (float(finite[-1]) - lo)
    table = np.searchsorted(sorted_values, lo + np.arange(n_cells + 1) / scale)
    cell = np.subtract(x, lo)
    cell *= scale
    np.clip(cell, 0, n_cells, out=cell)
    idx = table[cell.astype(np.intp)]
    upper = np.r_[sorted_values, np.inf]  # upper[i] = sorted_values[i]
    lower = np.r_[-np.inf, sorted_values]  # lower[i] = sorted_values[i - 1]
    for _ in range(max_fixups):
        up, down = upper[idx] < x, (lower[idx] >= x) & (idx > 0)
        if not (up.any() or down.any()):
            return idx
        idx += up
        idx -= down
    off = (upper[idx] < x) | ((lower[idx] >= x) & (idx > 0))
    idx[off] = np.searchsorted(sorted_values, x[off])
    return idx
