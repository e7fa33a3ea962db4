"""The workflow's metrics of right-censored predictions, as pure functions.

Discrimination and overall error: Harrell's C, Uno's C, the integrated Brier score and the
mean cumulative/dynamic AUC, computed by :mod:`.concordance` and :mod:`.time_dependent`:
scikit-survival's definitions and input checks, vectorised (O(n log n) per concordance
index; the Brier score and AUC in blocks of rows, O(n) memory plus a block;
``tests/test_metric_parity.py`` checks equality with scikit-survival to 1e-12 and runs its
own metric tests against these functions).

Against the reference and calibration (:mod:`.scoring_rules`, :mod:`.calibration`):
``ibs_erv``, the integrated Brier score's explained residual variation against the training
Kaplan-Meier curve on the same fold (mlr3proba's ERV; 0 for the reference model ``km``);
``rcll``, the right-censored log loss of the curves on the grid's intervals (a proper
scoring rule); ``dcal_stat`` / ``dcal_p``, D-calibration's chi-square statistic and p-value
over 10 bins of each row's predicted survival at its own observed time (Haider et al.
2020); ``ici_25`` / ``ici_50`` / ``ici_75``, the integrated calibration index (Austin et
al. 2020) at the grid times a quarter, half and three quarters along the grid
(:func:`ici_horizons`).

Test rows observed beyond the last grid time are administratively censored just after it
(:func:`censor_after`). That leaves every metric on the grid unchanged (such rows are
controls at every grid time and their own weights are never used) and avoids undefined
inverse-probability-of-censoring weights beyond the training follow-up.
"""

from __future__ import annotations

import numpy as np

from .calibration import calibration_errors_at, d_calibration
from .concordance import _harrell_and_uno, concordance_index_censored, concordance_index_ipcw
from .kaplan_meier import CensoringDistribution
from .outcome import censor_after, to_structured
from .scoring_rules import ibs_erv, rcll
from .time_dependent import cumulative_dynamic_auc, integrated_brier_score

__all__ = [
    "METRIC_NAMES",
    "HIGHER_IS_BETTER",
    "to_structured",
    "censor_after",
    "harrell_c",
    "uno_c",
    "integrated_brier",
    "mean_auc",
    "ici_horizons",
    "evaluate_predictions",
]

ICI_QUANTILES: dict[str, float] = {"ici_25": 0.25, "ici_50": 0.5, "ici_75": 0.75}
"""ICI metrics and how far along the evaluation grid their horizon lies."""
D_CALIBRATION_BINS = 10

HIGHER_IS_BETTER: dict[str, bool | None] = {
    "harrell_c": True,
    "uno_c": True,
    "ibs": False,
    "mean_auc": True,
    "ibs_erv": True,
    "rcll": False,
    "dcal_stat": False,
    "dcal_p": None,
    "ici_25": False,
    "ici_50": False,
    "ici_75": False,
}
"""Every metric of a model x fold with its direction (True: higher is better; None: not a
score to rank, e.g. a p-value), in the order of the output files."""
METRIC_NAMES: tuple[str, ...] = tuple(HIGHER_IS_BETTER)


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


def ici_horizons(times: np.ndarray) -> dict[str, float]:
    """Horizon of each ICI metric: the grid time at that fraction of the grid's points
    (``times[round(q * (n_times - 1))]``), so the predictions there are on the grid."""
    times = np.asarray(times, dtype=float)
    last = len(times) - 1
    return {name: float(times[int(round(q * last))]) for name, q in ICI_QUANTILES.items()}


def evaluate_predictions(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    surv: np.ndarray,
    times: np.ndarray,
    tau: float,
    surv_at: np.ndarray | None = None,
) -> dict[str, float]:
    """All metrics of one model x fold, keyed by :data:`METRIC_NAMES`.

    The same values as the metric functions. Shared work: one censoring estimate for the
    three IPCW metrics, one counting pass for Harrell's and Uno's C, and its sort of the risk
    scores as the AUC's row order (no AUC time point is sorted when the survival curves are
    ordered by ``risk``, as for every proportional-hazards model).

    Parameters
    ----------
    y_train, y_test : structured ndarray
        Training and test outcomes (``event``, ``time``).
    risk : ndarray of shape (n_test,)
        Risk scores.
    surv : ndarray of shape (n_test, n_times)
        Survival probabilities on ``times``.
    times : ndarray of shape (n_times,)
        The evaluation grid.
    tau : float
        Truncation time of Uno's C.
    surv_at : ndarray of shape (n_test,), optional
        Each test row's predicted survival at its own observed time, for D-calibration
        (``dcal_stat`` and ``dcal_p`` are NaN without it).

    Raises
    ------
    ValueError
        If a risk score or probability is NaN or infinite, or the arrays disagree in
        length (a model that outputs NaN yields a failed fold, never a metric).
    """
    cens = CensoringDistribution(y_train)  # estimated once for the three IPCW metrics
    # one counting pass for both; its sort of the risk scores orders the AUC's rows
    harrell, uno, by_risk, by_time = _harrell_and_uno(cens, y_test, risk, tau)
    y_eval = censor_after(y_test, float(np.max(times)))
    ibs = integrated_brier_score(cens, y_eval, surv, times)
    out = {
        "harrell_c": harrell[0],
        "uno_c": uno[0],
        "ibs": ibs,
        "mean_auc": _mean_auc(cens, y_eval, surv, times, order=by_risk[::-1]),
        "ibs_erv": ibs_erv(ibs, _reference_ibs(cens, y_eval, times)),
        "rcll": rcll(y_test, surv, times),
    }
    if surv_at is None:
        out["dcal_stat"] = out["dcal_p"] = float("nan")
    else:
        out["dcal_stat"], out["dcal_p"] = d_calibration(y_test, surv_at, D_CALIBRATION_BINS)
    column = {float(t): j for j, t in enumerate(np.asarray(times, dtype=float))}
    horizons = ici_horizons(times)
    # the three calibration fits use the concordance's sort of the test times, reversed
    at = _columns(surv, [column[t0] for t0 in horizons.values()])
    errors = calibration_errors_at(
        y_test,
        dict(zip(horizons.values(), at, strict=True)),
        order=by_time[::-1],
        measures=("ici",),
    )
    for name, t0 in horizons.items():
        out[name] = errors[t0]["ici"]
    return {name: float(out[name]) for name in METRIC_NAMES}


def _columns(surv: np.ndarray, columns: list[int]) -> np.ndarray:
    """``surv[:, columns].T`` as contiguous rows: one pass over the matrix's rows (a
    column of a row-major matrix is read a cache line per value)."""
    return np.ascontiguousarray(np.take(surv, columns, axis=1).T)


def _reference_ibs(cens: CensoringDistribution, y_eval: np.ndarray, times: np.ndarray) -> float:
    """Integrated Brier score of the training Kaplan-Meier curve (the ``km`` model's
    prediction, the same for every row) on the test rows."""
    km_times, km_surv = cens.survival_estimate()  # the training KM, from cens's sort
    idx = np.searchsorted(km_times, times, side="right") - 1
    curve = np.where(idx >= 0, km_surv[np.clip(idx, 0, None)], 1.0)
    surv = np.broadcast_to(curve, (len(y_eval), len(curve)))
    return integrated_brier_score(cens, y_eval, surv, times)
