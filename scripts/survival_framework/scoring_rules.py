"""Scoring rules for survival curves given on an evaluation grid.

- :func:`rcll`: the right-censored log loss (Avati et al. 2020; mlr3proba's ``surv.rcll``)
  of step curves ``S(t_j | x_i)``, with the event density replaced by the predicted mass of
  the grid interval holding the event (the discretisation is described in its docstring).
- :func:`ibs_erv`: explained residual variation of a loss against a reference model's
  (mlr3proba's ``ERV = TRUE``), e.g. the integrated Brier score of a model against the
  Kaplan-Meier reference's.

Every function is O(n log n_times) time and O(n) memory beyond its inputs (one gathered
value per row, no ``n x n_times`` temporary).
"""

from __future__ import annotations

import numpy as np

from .outcome import check_y_survival

__all__ = ["ibs_erv", "rcll"]


def ibs_erv(ibs_model: float, ibs_reference: float) -> float:
    """Explained residual variation of a loss relative to a reference model's.

    ``1 - ibs_model / ibs_reference``, mlr3proba's ERV (``MeasureSurv`` with
    ``ERV = TRUE``): 0 for a model as good as the reference (typically the Kaplan-Meier
    estimate of the training data), 1 for a perfect model (loss 0), negative for a model
    worse than the reference. Any non-negative loss works (the integrated Brier score,
    :func:`rcll`).

    Parameters
    ----------
    ibs_model : float
        Loss of the model.
    ibs_reference : float
        Loss of the reference model on the same test data; finite and positive.

    Returns
    -------
    float
        ``1 - ibs_model / ibs_reference``.

    Raises
    ------
    ValueError
        If the reference loss is not finite and positive, or the model loss is not finite.
    """
    model = float(ibs_model)
    reference = float(ibs_reference)
    if not (np.isfinite(reference) and reference > 0):
        raise ValueError(f"the reference loss must be finite and positive, got {reference}")
    if not np.isfinite(model):
        raise ValueError(f"the model loss must be finite, got {model}")
    return 1.0 - model / reference


def _check_grid_curves(surv: np.ndarray, times: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """``surv`` as an ``(n, n_times)`` float array in [0, 1], ``times`` finite, increasing."""
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.shape[0] == 0:
        raise ValueError(f"times must be a non-empty 1-D array, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError("times must be finite")
    if times.shape[0] > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("times must be strictly increasing")
    surv = np.asarray(surv)
    if not np.issubdtype(surv.dtype, np.floating):  # float32 is read as it is, not copied
        surv = surv.astype(float)
    if surv.ndim != 2:
        raise ValueError(f"surv must be a 2-D array (n_samples, n_times), got {surv.ndim}-D")
    if surv.shape != (n, times.shape[0]):
        raise ValueError(
            f"surv has shape {surv.shape}, expected ({n}, {times.shape[0]}): one row per "
            "test sample and one column per time"
        )
    if n:
        # min/max propagate NaN and see infinities, without an n x n_times temporary
        lo, hi = float(surv.min()), float(surv.max())
        if not np.isfinite(lo) or not np.isfinite(hi):
            raise ValueError("surv must be finite (no NaN or infinite values)")
        if lo < 0 or hi > 1:
            raise ValueError(
                f"surv must hold probabilities in [0, 1], found values in [{lo}, {hi}]"
            )
    return surv, times


def _at(surv: np.ndarray, rows: np.ndarray, col: np.ndarray) -> np.ndarray:
    """``surv[rows, col]``, with column ``-1`` standing for ``S(0) = 1``."""
    out = surv[rows, np.maximum(col, 0)].astype(float)
    out[col < 0] = 1.0
    return out


def rcll(y_test: np.ndarray, surv: np.ndarray, times: np.ndarray, eps: float = 1e-15) -> float:
    """Right-censored log loss of survival curves given as step functions on a grid.

    The mean over test rows of ``-log f_i(t_i)`` for an event and ``-log S_i(t_i)`` for a
    censored row (Avati et al. 2020, "Countdown regression: sharp and calibrated survival
    predictions", UAI; mlr3proba's ``surv.rcll``), for predictions known only at the grid
    ``times`` ``t_0 < ... < t_{m-1}``, read as the distribution of the grid interval that
    holds the event time.

    Discretisation (with ``S(t_{-1}) = 1``, the first interval being ``[0, t_0]``):

    - an event at ``t`` in ``(t_{j-1}, t_j]`` scores ``-log(S(t_{j-1}) - S(t_j))``, the
      predicted probability that the event falls in that interval (for ``t <= t_0``,
      ``1 - S(t_0)``; an event exactly at ``t_j`` belongs to the interval ending there);
    - a censored row at ``t`` with ``t_j <= t < t_{j+1}`` scores ``-log S(t_j)``, the
      predicted probability of surviving the last grid time it was seen to survive
      (``-log 1 = 0`` when ``t < t_0``);
    - a row observed after ``t_{m-1}`` is censored there (what ``censor_after(y, times[-1])``
      does) and scores ``-log S(t_{m-1})``.

    Probabilities below ``eps`` (an exact zero, or the negative mass of a curve that rises
    somewhere) are raised to ``eps`` before the log, so a row costs at most ``-log(eps)``;
    mlr3proba substitutes ``eps`` for exact zeros.

    The score is the negative log-likelihood, per row, of the outcomes coarsened to the
    grid under the discrete distribution the curve defines, so it is a proper scoring rule
    for that distribution: when the true event times fall on the grid (a discrete-time
    truth), independent censoring is coarsening at random and the expected score is
    minimised by the true curve. mlr3proba's ``surv.rcll`` evaluates its distribution's
    density at ``t`` (a probability mass, zero off the support of a step curve, hence its
    ``eps``); the interval mass is the analogue on a step curve, and dividing it by the
    interval width (a density) would only add a term that does not depend on the model.
    For continuous event times, a censoring inside an interval is scored as a survival up
    to the interval's start, so the score favours slightly too high hazards, by an amount
    of the order of the censoring probability within one grid interval (shrinking as the
    grid is refined).

    Parameters
    ----------
    y_test : structured ndarray
        Test outcome (fields ``event`` and ``time``; all censored is allowed).
    surv : ndarray of shape (n_test, n_times)
        Predicted survival probabilities ``S(t_j | x_i)``, in [0, 1].
    times : ndarray of shape (n_times,)
        The grid, strictly increasing.
    eps : float
        Lower bound of the probability of each row's observation.

    Returns
    -------
    float
        The mean score (lower is better; 0 only if every observation had probability 1).

    Raises
    ------
    ValueError
        If ``y_test`` is not a valid outcome, ``surv`` is not an ``(n_test, n_times)``
        array of finite probabilities, ``times`` is not finite and strictly increasing or
        ``eps`` is not in (0, 1).
    """
    event, time = check_y_survival(y_test, allow_all_censored=True)
    time = np.asarray(time, dtype=float)
    n = time.shape[0]
    surv, times = _check_grid_curves(surv, times, n)
    if not (0 < eps < 1):
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    if n == 0:
        raise ValueError("y_test is empty")
    m = times.shape[0]
    # k = number of grid times <= t; the censored row's last grid time survived is k - 1
    k = np.searchsorted(times, time, side="right")
    on_grid = k > 0
    on_grid[on_grid] = times[k[on_grid] - 1] == time[on_grid]
    # an event in (t_{j-1}, t_j]: j = number of grid times < t; only events up to t_{m-1}
    j = k - on_grid
    in_grid_event = event & (j < m)
    rows = np.arange(n)
    # upper = S just before the interval (events) or at the last grid time survived
    upper = _at(surv, rows, np.where(in_grid_event, j - 1, k - 1))
    lower = np.zeros(n)
    lower[in_grid_event] = surv[rows[in_grid_event], j[in_grid_event]]
    prob = np.subtract(upper, lower, out=upper)
    np.maximum(prob, eps, out=prob)
    return float(-np.mean(np.log(prob, out=prob)))
