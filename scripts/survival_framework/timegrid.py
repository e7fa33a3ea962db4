"""One evaluation time grid, valid for every cross-validation fold (of every repeat)."""

from __future__ import annotations

import numpy as np

__all__ = ["evaluation_time_grid"]


def evaluation_time_grid(
    time: np.ndarray,
    event: np.ndarray,
    folds: np.ndarray,
    n_times: int = 20,
    quantiles: tuple[float, float] = (0.1, 0.8),
) -> dict:
    """Derive the evaluation time grid once, from all rows, valid for every fold.

    The grid spans the ``quantiles`` of the observed event times, clipped so that for
    every fold ``k`` it lies inside the test fold's follow-up (``[min, max)``, required by
    scikit-survival's Brier score and time-dependent AUC) and strictly below the training
    fold's largest time, where the Kaplan-Meier estimate of the censoring distribution is
    still positive (required by the IPCW weights). No fold can then fail on an
    out-of-range time.

    Parameters
    ----------
    time, event : ndarray of shape (n_samples,)
        Observed times and event indicators of all rows.
    folds : ndarray of shape (n_samples,) or (n_repeats, n_samples)
        Test-fold index of each row; with repeated cross-validation one row per repeat
        (:func:`~survival_framework.splits.assign_repeated_folds`): the grid is then valid
        for every fold of every repeat.
    n_times : int
        Number of grid points (fewer if event times are heavily tied).
    quantiles : (float, float)
        Lower and upper quantile of the event times spanned by the grid.

    Returns
    -------
    dict
        ``times`` (list of float, increasing), ``tau`` (the last grid time, used as the
        truncation time of Uno's C), ``lower_bound``/``upper_bound`` (the admissible range)
        and ``quantiles``.

    Raises
    ------
    ValueError
        If the folds leave no admissible range containing an event time.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    folds = np.asarray(folds)
    lower = -np.inf
    upper = np.inf
    for repeat in folds.reshape(-1, time.shape[0]):  # one row per repeat
        for k in np.unique(repeat):
            test, train = time[repeat == k], time[repeat != k]
            lower = max(lower, test.min())
            upper = min(upper, test.max(), train.max())
    event_times = np.sort(time[event])
    q_lo, q_hi = np.quantile(event_times, quantiles)
    lo = max(q_lo, lower)
    admissible = event_times[(event_times >= lo) & (event_times < upper)]
    if admissible.size == 0:
        raise ValueError(
            f"no event time lies in the range valid for every fold [{lower}, {upper}); "
            "too few events for this number of folds"
        )
    hi = min(q_hi, admissible.max())
    inside = admissible[admissible <= hi]
    grid = np.unique(np.quantile(inside, np.linspace(0.0, 1.0, n_times), method="inverted_cdf"))
    return {
        "times": grid.tolist(),
        "tau": float(grid[-1]),
        "lower_bound": float(lower),
        "upper_bound": float(upper),
        "quantiles": list(quantiles),
    }
