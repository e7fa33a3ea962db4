"""The workflow's four metrics of right-censored predictions, as pure functions.

Harrell's C, Uno's C, the integrated Brier score and the mean cumulative/dynamic AUC,
computed by :mod:`.concordance` and :mod:`.time_dependent`: scikit-survival's definitions
and input checks, vectorised (O(n log n) per concordance index; the Brier score and AUC in
blocks of rows, O(n) memory plus a block; ``tests/test_metric_parity.py`` checks equality
with scikit-survival to 1e-12 and runs its own metric tests against these functions).

Test rows observed beyond the last grid time are administratively censored just after it
(:func:`censor_after`). That leaves every metric on the grid unchanged (such rows are
controls at every grid time and their own weights are never used) and avoids undefined
inverse-probability-of-censoring weights beyond the training follow-up.
"""

from __future__ import annotations

import numpy as np

from .concordance import _harrell_and_uno, concordance_index_censored, concordance_index_ipcw
from .kaplan_meier import CensoringDistribution
from .outcome import censor_after, to_structured
from .time_dependent import cumulative_dynamic_auc, integrated_brier_score

__all__ = [
    "METRIC_NAMES",
    "to_structured",
    "censor_after",
    "harrell_c",
    "uno_c",
    "integrated_brier",
    "mean_auc",
    "evaluate_predictions",
]

METRIC_NAMES: tuple[str, ...] = ("harrell_c", "uno_c", "ibs", "mean_auc")


def harrell_c(event: np.ndarray, time: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index (higher risk should mean earlier event).

    ``sksurv.metrics.concordance_index_censored(event, time, risk)[0]``, in O(n log n).
    ``event`` must be boolean.
    """
    return concordance_index_censored(event, time, risk)[0]


def uno_c(
    y_train: np.ndarray | CensoringDistribution, y_test: np.ndarray, risk: np.ndarray, tau: float
) -> float:
    """Uno's IPCW concordance index truncated at ``tau``.

    ``sksurv.metrics.concordance_index_ipcw(y_train, y_test, risk, tau)[0]``, in O(n log n).
    """
    return concordance_index_ipcw(y_train, y_test, risk, tau=tau)[0]


def integrated_brier(
    y_train: np.ndarray | CensoringDistribution,
    y_test: np.ndarray,
    surv: np.ndarray,
    times: np.ndarray,
) -> float:
    """Integrated Brier score of survival probabilities ``surv`` (n_test x n_times)."""
    y_eval = censor_after(y_test, float(np.max(times)))
    return integrated_brier_score(y_train, y_eval, surv, times)


def mean_auc(
    y_train: np.ndarray | CensoringDistribution,
    y_test: np.ndarray,
    surv: np.ndarray,
    times: np.ndarray,
    order: np.ndarray | None = None,
) -> float:
    """Cumulative/dynamic AUC averaged over ``times`` (weighted as in scikit-survival).

    ``y_train`` here and in :func:`uno_c` and :func:`integrated_brier` may be the
    training outcome or its fitted :class:`.kaplan_meier.CensoringDistribution`.

    The marker at time ``t`` is the predicted event probability ``1 - S(t | x)``.
    ``order``, the test rows by decreasing risk score, spares the AUC's sorts when the
    survival curves are ordered by that score (``cumulative_dynamic_auc``'s hint; any
    permutation gives the same value).
    """
    y_eval = censor_after(y_test, float(np.max(times)))
    return _mean_auc(y_train, y_eval, surv, times, order)


def _mean_auc(
    y_train: np.ndarray | CensoringDistribution,
    y_eval: np.ndarray,
    surv: np.ndarray,
    times: np.ndarray,
    order: np.ndarray | None,
) -> float:
    """:func:`mean_auc` of outcomes already censored after the last time."""
    # the marker 1 - S a block at a time: no n_test x n_times copy
    return cumulative_dynamic_auc(
        y_train, y_eval, surv, times, marker=event_probability, order=order
    )[1]


def event_probability(surv: np.ndarray) -> np.ndarray:
    """The AUC's marker: the predicted event probability ``1 - S(t | x)`` (elementwise)."""
    return 1.0 - surv


def evaluate_predictions(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    surv: np.ndarray,
    times: np.ndarray,
    tau: float,
) -> dict[str, float]:
    """All metrics of one model x fold, keyed by :data:`METRIC_NAMES`.

    The same values as the four metric functions. Shared work: one censoring estimate for
    the three IPCW metrics, one counting pass for Harrell's and Uno's C, and its sort of the
    risk scores as the AUC's row order (no AUC time point is sorted when the survival curves
    are ordered by ``risk``, as for every proportional-hazards model).

    Raises
    ------
    ValueError
        If a risk score or probability is NaN or infinite, or the arrays disagree in
        length (a model that outputs NaN yields a failed fold, never a metric).
    """
    cens = CensoringDistribution(y_train)  # estimated once for the three IPCW metrics
    # one counting pass for both; its sort of the risk scores orders the AUC's rows
    harrell, uno, by_risk = _harrell_and_uno(cens, y_test, risk, tau)
    y_eval = censor_after(y_test, float(np.max(times)))
    return {
        "harrell_c": harrell[0],
        "uno_c": uno[0],
        "ibs": integrated_brier_score(cens, y_eval, surv, times),
        "mean_auc": _mean_auc(cens, y_eval, surv, times, order=by_risk[::-1]),
    }
