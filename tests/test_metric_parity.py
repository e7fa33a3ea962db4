"""Our metric functions against scikit-survival's.

Part 1 ports scikit-survival's own metric tests (``tests/test_metrics.py`` of
github.com/sebp/scikit-survival, GPL-3.0, at commit 0d71616: expected values and error
cases; ``tests/data/whas500_predictions.csv`` is copied from the same place) and runs them
against ``survival_framework.concordance`` and ``survival_framework.time_dependent``. The
scorer-wrapper tests are left out (we have no scorers).

Part 2 checks equality with scikit-survival to 1e-12 on random data with tied times and
tied scores and on scikit-survival's bundled datasets, and the building blocks (the
wavelet-matrix range count, the Kaplan-Meier estimates) against direct computations.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_almost_equal, assert_array_almost_equal, assert_array_equal
from sklearn.metrics import roc_auc_score
from sksurv import metrics as sk
from sksurv.datasets import load_gbsg2
from sksurv.functions import StepFunction
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.nonparametric import kaplan_meier_estimator as sk_kaplan_meier
from sksurv.util import Surv

from survival_framework import metrics, time_dependent
from survival_framework.concordance import (
    NoComparablePairError,
    concordance_index_censored,
    concordance_index_ipcw,
    count_below_in_suffix,
)
from survival_framework.kaplan_meier import (
    CensoringDistribution,
    _search_left,
    kaplan_meier_estimator,
)
from survival_framework.outcome import censor_after, to_structured
from survival_framework.time_dependent import (
    brier_score,
    cumulative_dynamic_auc,
    integrated_brier_score,
)

DATA = Path(__file__).parent / "data"


def cases(factory) -> list:
    """``pytest.param`` per ``data_*`` method (scikit-survival's FixtureParameterFactory)."""
    return [
        pytest.param(*func(), id=name)
        for name, func in inspect.getmembers(factory)
        if name.startswith("data_")
    ]


def whas500_pred():
    dat = np.loadtxt(DATA / "whas500_predictions.csv", delimiter=",")
    return dat[:, 0] == 1, dat[:, 1], dat[:, 2]


@pytest.fixture()
def no_comparable_pairs():
    times = [849, 28, 55, 727, 505, 1558, 1292, 1737, 944, 750, 2513, 472, 2417, 538, 49]
    times += [723, 3563, 1090, 1167, 587, 1354, 910, 398, 854, 3534, 280, 183, 883, 32, 144]
    event = np.zeros(len(times), dtype=bool)
    event[16] = True  # the only event is the second-largest time: nothing comes after it
    y = Surv.from_arrays(event=event, time=np.asarray(times, float))
    return y, np.random.default_rng(0).standard_normal(len(times))


# --- part 1: scikit-survival's tests -------------------------------------------------------


class ConcordanceIndexCases:
    time = [1, 5, 6, 11, 34, 45, 46, 50]
    estimate = [5, 8, 11, 34, 12, 3, 9, 12]
    time_tied = [1, 5, 6, 11, 11, 34, 45, 45, 50]
    estimate_tied = [5, 8, 11, 19, 34, 12, 3, 9, 12]

    def data_no_censoring_all_correct(self):
        event = np.ones(len(self.time), dtype=bool)
        return event, self.time, np.arange(len(self.time))[::-1], [1.0, 28, 0, 0, 0]

    def data_no_censoring_all_wrong(self):
        event = np.ones(len(self.time), dtype=bool)
        return event, self.time, np.arange(len(self.time)), [0.0, 0, 28, 0, 0]

    def data_no_ties(self):
        event = [False, True, True, False, False, True, False, False]
        return event, self.time, self.estimate, [0.2307692, 3, 10, 0, 0]

    def data_with_tied_time(self):
        event = [False, True, True, False, True, False, True, False, False]
        return event, self.time_tied, self.estimate_tied, [0.4, 8, 12, 0, 2]

    def data_with_tied_time2(self):
        event = [False, True, True, False, False, False, True, False, False]
        return event, self.time_tied, self.estimate_tied, [0.2, 3, 12, 0, 1]

    def data_with_tied_event(self):
        event = [False, True, False, True, True, False, True, False, False]
        return event, self.time_tied, self.estimate_tied, [0.5294118, 9, 8, 0, 1]

    def data_with_tied_risk(self):
        event = [False, True, True, False, True, True, False, False]
        estimate = [5, 15, 11, 34, 12, 3, 9, 12]
        return event, self.time, estimate, [0.59375, 9, 6, 1, 0]

    def data_with_almost_tied_risk(self):
        event, time, estimate, expected = self.data_with_tied_risk()
        estimate = list(map(float, estimate))
        estimate[4] += 4.5e-9
        estimate[-1] -= 4.5e-9
        return event, time, estimate, expected

    def data_with_tied_event_and_time(self):
        event = [True, False, False, False, True, False, True, True, False, False, False, True]
        time = [34, 11, 11, 5, 1, 89, 13, 45, 7, 13, 9, 13]
        estimate = [1, 19, 13, 13, 15, 14, 19, 23, 11, 10, 11, 1]
        return event, time, estimate, [0.5681818, 12, 9, 1, 2]

    def data_whas500(self):
        event, time, estimate = whas500_pred()
        return event, time, estimate, [0.7697907, 57849, 17300, 0, 14]


@pytest.mark.parametrize("event,time,estimate,expected", cases(ConcordanceIndexCases()))
def test_concordance_index(event, time, estimate, expected):
    result = concordance_index_censored(np.asarray(event, bool), time, estimate)
    assert_array_equal(result[1:], expected[1:], strict=True)
    concordant, discordant, tied_risk = result[1:4]
    assert_almost_equal(
        result[0], (concordant + 0.5 * tied_risk) / (concordant + discordant + tied_risk)
    )
    assert_almost_equal(result[0], expected[0])


class ConcordanceIndexFailureCases:
    event = np.array([True, False, False, True, True, False])
    time = np.array([1, 5, 10, 12, 7, 65])
    estimate = np.array([12, 8, 1, 89, 56, 13])
    lengths = r"Found input variables with inconsistent numbers of samples: .+"

    def data_different_length_0(self):
        return (self.event, self.time[:3], self.estimate), self.lengths

    def data_different_length_1(self):
        return (self.event, self.time, self.estimate[:3]), self.lengths

    def data_different_length_2(self):
        return (self.event[:3], self.time, self.estimate), self.lengths

    def data_different_length_3(self):
        return (self.event, self.time[:3], self.estimate[:3]), self.lengths

    def data_boolean_event(self):
        event = np.array([1, 0, 0, 1, 1, 0])
        match = "only boolean arrays are supported as class labels for survival analysis.+"
        return (event, self.time, self.estimate), match

    def data_min_samples(self):
        return (np.array([False]), np.array([10]), np.array([12])), "Need a minimum of two samples"

    def data_all_censored(self):
        inputs = (np.array([False, False]), np.array([10, 12]), np.array([12, 13]))
        return inputs, "All samples are censored"

    def data_all_finite_event_indicator(self):
        event = self.event.tolist()
        event[2] = None
        return (np.array(event), self.time, self.estimate), "Input event_indicator contains NaN"

    def data_all_finite_event_time(self):
        time = self.time.astype(float)
        time[3] = np.nan
        return (self.event, time, self.estimate), "Input event_time contains NaN"

    def data_all_finite_estimate(self):
        estimate = self.estimate.astype(float)
        estimate[5] = np.inf
        match = "Input estimate contains infinity or a value too large"
        return (self.event, self.time, estimate), match

    def data_nan_estimate(self):
        estimate = self.estimate.astype(float)
        estimate[0] = np.nan
        return (self.event, self.time, estimate), "Input estimate contains NaN"

    def data_not_1d_dim2(self):
        event, time, risk = whas500_pred()
        match = "Expected 1D array, got 2D array instead:"
        return (event, time, np.tile(risk[:, None], (1, 2))), match


@pytest.mark.parametrize("inputs,match", cases(ConcordanceIndexFailureCases()))
def test_concordance_index_failure(inputs, match):
    with pytest.raises(ValueError, match=match):
        concordance_index_censored(*inputs)
    with pytest.raises(ValueError, match=match):  # scikit-survival agrees
        sk.concordance_index_censored(*inputs)


def test_concordance_index_no_comparable(no_comparable_pairs):
    y, scores = no_comparable_pairs
    with pytest.raises(NoComparablePairError):
        concordance_index_censored(y["event"], y["time"], scores)
    with pytest.raises(NoComparablePairError):
        concordance_index_ipcw(y, y, scores)


class UnoCCases:
    y_train = Surv.from_arrays(
        time=(2, 4, 6, 8, 10, 11, 15, 19),
        event=(False, True, False, True, False, False, False, False),
    )
    y_ties = Surv.from_arrays(
        event=np.array((0, 1, 1, 0, 1, 0, 1, 0, 0, 1), dtype=bool),
        time=(1, 5, 6, 10, 11, 34, 45, 46, 50, 56),
    )

    def data_no_ties(self):
        estimate = (5, 8, 11, 19, 34, 12, 3, 9, 12, 20)
        return self.y_ties, self.y_ties, estimate, (0.347890360332615, 8, 15, 0, 0), None

    def data_tied_risk_1(self):
        estimate = (5, 8, 11, 11, 34, 12, 3, 9, 12, 20)
        return self.y_ties, self.y_ties, estimate, (0.365629810028969, 8, 14, 1, 0), None

    def data_tied_risk_2(self):
        estimate = (5, 8, 11, 11, 34, 12, 11, 9, 12, 20)
        return self.y_ties, self.y_ties, estimate, (0.387865723332956, 7, 14, 2, 0), None

    def data_truncated_1(self):
        y_test = Surv.from_arrays(
            time=(1, 3, 5, 8, 12, 13), event=(True, False, False, True, True, True)
        )
        estimate = (5, 8, 13, 11, 9, 4)
        return self.y_train, y_test, estimate, (0.7543736528146774, 4, 4, 0, 0), 19

    def data_truncated_2(self):
        y = Surv.from_arrays(
            time=(1, 5, 6, 10, 11, 34, 45, 46, 50, 56),
            event=np.array((0, 1, 1, 0, 1, 0, 1, 1, 1, 1), dtype=bool),
        )
        estimate = (5, 8, 11, 19, 34, 12, 3, 9, 12, 18)
        return y, y, estimate, (0.347890361949191, 8, 18, 0, 0), 45.25

    def data_last_time_censored(self):
        y_test = Surv.from_arrays(
            time=(1, 3, 5, 7, 12, 13, 20), event=(True, False, False, True, True, False, False)
        )
        estimate = (5, 8, 13, 11, 9, 7, 4)
        return self.y_train, y_test, estimate, (0.8126567565914234, 6, 5, 0, 0), None

    def data_tied_event(self):
        y = Surv.from_arrays(
            event=[False, True, False, True, True, False, True, False, False, True],
            time=[1, 5, 6, 11, 11, 34, 45, 45, 50, 55],
        )
        estimate = (5, 8, 11, 19, 34, 12, 3, 9, 12, 18)
        return y, y, estimate, (0.4036321031048623, 11, 10, 0, 1), None

    def data_tied_event_and_time(self):
        y = Surv.from_arrays(
            event=[True, False, False, False, True, False, True, True, False, False, False]
            + [True, True],
            time=[34, 11, 11, 5, 1, 89, 13, 45, 7, 13, 9, 13, 90],
        )
        estimate = (1, 19, 13, 13, 15, 14, 19, 23, 11, 10, 11, 1, 18)
        return y, y, estimate, (0.46795357052737824, 14, 12, 1, 2), None

    def data_whas500(self):
        event, time, estimate = whas500_pred()
        y = Surv.from_arrays(event, time)
        return y, y, estimate, (0.7929275009049014, 57849, 17300, 0, 14), None


@pytest.mark.parametrize("y_train,y_test,estimate,expected,tau", cases(UnoCCases()))
def test_uno_c(y_train, y_test, estimate, expected, tau):
    result = concordance_index_ipcw(y_train, y_test, estimate, tau=tau)
    assert_array_equal(result[1:], expected[1:])
    assert_almost_equal(result[0], expected[0])


class UnoCFailureCases:
    estimate = (5, 8, 13, 11, 9, 7, 4)

    @property
    def y_train(self):
        return Surv.from_arrays(
            time=(2, 4, 6, 8, 10, 11, 15, 19),
            event=(False, True, False, True, False, False, False, True),
        )

    @property
    def y_test(self):
        return Surv.from_arrays(
            time=(1, 3, 5, 7, 12, 13, 19), event=(True, False, False, True, True, False, True)
        )

    def data_last_time_uncensored_1(self):
        y_test = self.y_test
        y_test["time"][-1] = 20
        match = "time must be smaller than largest observed time point:"
        return (self.y_train, y_test, self.estimate), match

    def data_last_time_uncensored_2(self):
        y_test = Surv.from_arrays(time=(1, 23, 5, 27, 12), event=(True, False, True, True, False))
        match = "time must be smaller than largest observed time point:"
        return (self.y_train, y_test, (5, 13, 11, 9, 4)), match

    def data_zero_prob_1(self):
        y_train = self.y_train
        y_train["event"][-1] = False
        match = "censoring survival function is zero at one or more time points"
        return (y_train, self.y_test, self.estimate), match

    def data_zero_prob_2(self):
        y_train = self.y_train
        y_train["time"][-1] = 18
        y_train["event"][-1] = False
        match = "censoring survival function is zero at one or more time points"
        return (y_train, self.y_test, self.estimate), match

    def data_zero_prob_3(self):
        y_train = self.y_train
        y_train["time"][-1] = 18
        y_train["event"][-1] = False
        y_test = self.y_test
        y_test["time"] = (1, 3, 5, 19, 12, 13, 7)
        match = "censoring survival function is zero at one or more time points"
        return (y_train, y_test, self.estimate), match

    def data_not_1d_dim2(self):
        event, time, risk = whas500_pred()
        y = Surv.from_arrays(event, time)
        match = "Expected 1D array, got 2D array instead:"
        return (y, y, np.tile(risk[:, None], (1, 2))), match

    def data_integer_event(self):
        y = np.array([(1, 2.0), (0, 3.0), (1, 4.0)], dtype=[("event", int), ("time", float)])
        return (y, y, (1, 2, 3)), "elements of event indicator must be boolean"


@pytest.mark.parametrize("inputs,expected_msg", cases(UnoCFailureCases()))
def test_uno_c_failure(inputs, expected_msg):
    with pytest.raises(ValueError, match=expected_msg):
        concordance_index_ipcw(*inputs)


def test_uno_c_all_events_in_train_equals_harrell():
    y_train = Surv.from_arrays(time=(2, 4, 6, 8, 10, 11, 15, 19), event=[True] * 8)
    y_test = Surv.from_arrays(
        time=(1, 3, 5, 7, 12, 13, 20), event=(True, False, False, True, True, False, False)
    )
    estimate = (5, 8, 13, 11, 9, 7, 4)
    uno = concordance_index_ipcw(y_train, y_test, estimate)
    assert uno == concordance_index_censored(y_test["event"], y_test["time"], estimate)


class UnoAucData:
    uno_auc_time = [10.88, 19.78, 40.92, 98.7, 70.19, 10.15, 28.95, 29.57, 17.9, 63.78]
    uno_auc_time += [36.22, 83.14, 13.69, 99.51, 3.19]
    uno_auc_event = [1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1]
    estimate_15 = [-1.019, -0.016, 0.132, 0.269, -0.777, -1.077, 0.894, -1.227, -0.417]
    estimate_15 += [0.072, -1.275, -0.91, -0.825, -0.292, -0.045]

    @property
    def uno_auc_y(self):
        return Surv.from_arrays(time=self.uno_auc_time, event=self.uno_auc_event)

    @property
    def uno_auc_data_20(self):
        time = [77.6, 57.6, 66.6, 67.0, 31.5, 5.5, 67.4, 43.7, 31.7, 71.9, 81.1, 56.2, 88.1]
        time += [2.9, 62.0, 17.2, 88.0, 26.4, 93.5, 79.9]
        event = [1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1]
        return Surv.from_arrays(time=time, event=event), self.uno_auc_y, list(self.estimate_15)

    @property
    def uno_auc_time_dependent_20(self):
        y_train, y_test, _ = self.uno_auc_data_20
        estimate = np.array(
            [
                [0.566, 0.576, 0.506, 1.871, -0.04, 0.281, 0.335, -1.181, 1.368, -0.192]
                + [0.955, 0.221, 0.057, -0.996, -1.27],
                [-2.658, -1.121, 1.903, -0.7, -1.013, -0.472, -0.668, -0.537, 1.659, 0.657]
                + [-1.317, -1.103, 2.159, 0.625, -0.067],
                [-1.004, -1.67, 0.775, -2.512, 1.179, 0.073, 0.103, -0.379, -0.082, -0.617]
                + [1.287, -0.449, -0.477, 0.24, 0.838],
            ]
        ).T
        return y_train, y_test, estimate


class UnoCAucCases(UnoAucData):
    def data_single_time(self):
        y = self.uno_auc_y
        return y, y, self.estimate_15, 28, np.array([0.362963]), 0.362963

    def data_two_times(self):
        y = self.uno_auc_y
        return y, y, self.estimate_15, [15, 66], np.array([0.3030303, 0.45]), 0.3943949

    def data_two_times_int(self):
        y = self.uno_auc_y
        y["time"] = y["time"] * 100.0
        y = y.astype([("event", bool), ("time", int)])
        estimate = (np.array(self.estimate_15) * 1000).astype(int)
        times = np.array([1500, 6600], dtype=int)
        return y, y, estimate, times, np.array([0.3030303, 0.45]), 0.3943949

    def data_min_to_max_times(self):
        y = self.uno_auc_y
        times = (y["time"].min(), 15, 66, y["time"].max() - 1e-6)
        expected = np.array([0.6428571, 0.3030303, 0.4500000, 0.3162996])
        return y, y, self.estimate_15, times, expected, 0.3999539

    def data_train_test(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        return y_train, y_test, estimate, [15, 66], np.array([0.3030303, 0.4357061]), 0.385509

    def data_tied_test_time(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        y_test["time"][0] = y_test["time"][1]
        expected = np.array([0.3750000, 0.4357061])
        return y_train, y_test, estimate, [15, 66], expected, 0.4204885

    def data_tied_test_score(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        estimate[0] = estimate[-1]
        expected = np.array([0.4242424, 0.539036])
        return y_train, y_test, estimate, [15, 66], expected, 0.495604291

    def data_tied_test_score_max(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        o = np.argsort(estimate)
        estimate[o[0]] = estimate[o[1]]
        expected = np.array([0.3030303, 0.4357061])
        return y_train, y_test, estimate, [15, 66], expected, 0.385509

    def data_tied_test_score_min(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        o = np.argsort(estimate)
        estimate[o[-1]] = estimate[o[-2]]
        expected = np.array([0.3030303, 0.4174082])
        return y_train, y_test, estimate, [15, 66], expected, 0.374134

    def data_time_dependent(self):
        y_train, y_test, estimate = self.uno_auc_time_dependent_20
        expected = np.array([0.3636364, 0.5247813, 0.7603000])
        return y_train, y_test, estimate, [15, 30, 72], expected, 0.5522067

    def _without_censoring(self, estimate):
        y = Surv.from_arrays(time=[7, 9, 11, 12, 13, 15, 28, 39, 41, 76], event=[True] * 10)
        times = [10, 14, 40]
        expected_auc = np.array(
            [roc_auc_score(y["time"] > t, e) for t, e in zip(times, estimate, strict=True)]
        )
        expected_iauc = np.sum(np.array([0.2, 0.3, 0.3]) * expected_auc) / 0.8
        return y, y, -estimate.T, times, expected_auc, expected_iauc

    def data_time_dependent_without_censoring(self):
        estimate = np.array(
            [
                [1, 6, 18, 56, 32, 3, 99, 7, 67, 541],
                [6, 9, 11, 5, 3, 12, 56, 56.1, 81, 77],
                [13, 11, 12, 76, 55, 134, 70, 78, 75, 99],
            ]
        )
        return self._without_censoring(estimate)

    def data_time_dependent_with_ties_without_censoring(self):
        estimate = np.array(
            [
                [1, 6, 7, 56, 32, 3, 99, 7, 79, 17],
                [3, 6, 11, 5, 17, 12, 17, 56.1, 81, 77],
                [13, 11, 12, 17, 17, 134, 70, 78, 13, 99],
            ]
        )
        return self._without_censoring(estimate)

    def data_whas500(self):
        event, time, estimate = whas500_pred()
        y_train = Surv.from_arrays(event=event[:300], time=time[:300])
        y_test = Surv.from_arrays(event=event[300:], time=time[300:])
        times = (200, 400, 600, 800, 1000, 1200, 1400)
        expected = np.array(
            [0.7720669, 0.7765915, 0.7962623, 0.8759295, 0.8759295, 0.8759513, 0.9147647]
        )
        return y_train, y_test, estimate[300:], times, expected, 0.8045058

    def data_whas500_unordered_time(self):
        y_train, y_test, estimate, _, expected, iauc = self.data_whas500()
        times = (1000, 600, 1400, 200, 400, 1200, 800, 1000, 200)
        return y_train, y_test, estimate, times, expected, iauc


@pytest.mark.parametrize(
    "y_train,y_test,estimate,times,expect_auc,expect_iauc", cases(UnoCAucCases())
)
def test_uno_auc(y_train, y_test, estimate, times, expect_auc, expect_iauc):
    auc, iauc = cumulative_dynamic_auc(y_train, y_test, estimate, times)
    assert_array_almost_equal(auc, expect_auc)
    assert iauc == pytest.approx(expect_iauc)


class UnoCAucFailureCases(UnoAucData):
    times = 33

    def data_time_too_big_1(self):
        y_train, y_test, _ = self.uno_auc_data_20
        y_test["time"][11] = 100
        return y_train, y_test, self.times, "time must be smaller than largest observed time"

    def data_time_too_big_2(self):
        y_train, y_test, _ = self.uno_auc_data_20
        y_test["event"][np.argmax(y_test["time"])] = True
        return y_train, y_test, self.times, "time must be smaller than largest observed time"

    def data_ipcw_undefined_1(self):
        y_train, y_test, _ = self.uno_auc_data_20
        idx = np.argmax(y_train["time"])
        y_train["event"][idx] = 0
        y_test["time"][0] = y_train["time"][idx]
        match = "censoring survival function is zero at one or more time points"
        return y_train, y_test, self.times, match

    def data_ipcw_undefined_2(self):
        y_train, y_test, _ = self.uno_auc_data_20
        idx = np.argmax(y_train["time"])
        y_train["event"][idx] = 0
        y_test["time"][-1] = y_train["time"][idx] * 2
        y_test["event"][-1] = True
        match = "censoring survival function is zero at one or more time points"
        return y_train, y_test, self.times, match

    def data_all_censored_train(self):
        y_train, y_test, _ = self.uno_auc_data_20
        y_train["event"] = False
        return y_train, y_test, self.times, "all samples are censored"

    def data_all_censored_test(self):
        y_train, y_test, _ = self.uno_auc_data_20
        y_test["event"] = False
        return y_train, y_test, self.times, "all samples are censored"

    def data_times_nan(self):
        y_train, y_test, _ = self.uno_auc_data_20
        return y_train, y_test, (0.2, np.nan), r"Input times contains NaN"

    def data_times_infinite(self):
        y_train, y_test, _ = self.uno_auc_data_20
        match = r"Input times contains infinity or a value too large for dtype\('float64'\)."
        return y_train, y_test, (0.2, -np.inf), match

    def data_times_too_big_1(self):
        y_train, y_test, _ = self.uno_auc_data_20
        idx = np.argmax(y_test["time"])
        y_test["event"][idx] = False
        t_max = y_test["time"][idx]
        match = r"all times must be within follow-up time of test data: \[3\.19; 99\.51\["
        return y_train, y_test, (33, t_max / 2, t_max), match

    def data_times_too_big_3(self):
        y_train, y_test, _ = self.uno_auc_data_20
        max_train = np.max(y_train["time"])
        late = y_test["time"] > max_train
        y_test["event"][late] = False
        y_test["time"][late] = max_train
        match = r"all times must be within follow-up time of test data: \[3\.19; 93\.5\["
        return y_train, y_test, (33, max_train), match

    def data_times_too_small(self):
        y_train, y_test, _ = self.uno_auc_data_20
        idx = np.argmin(y_test["time"])
        y_test["event"][idx] = True
        t_min = y_test["time"][idx]
        match = r"all times must be within follow-up time of test data: \[3\.19; 99\.51\["
        return y_train, y_test, (t_min - 1e-6, 33), match

    def data_times_empty(self):
        y_train, y_test, _ = self.uno_auc_data_20
        return y_train, y_test, [], r"Found array with 0 sample\(s\)"


@pytest.mark.parametrize("y_train,y_test,times,match", cases(UnoCAucFailureCases()))
def test_uno_auc_failure(y_train, y_test, times, match):
    estimate = np.random.default_rng(0).standard_normal(y_test.shape[0])
    with pytest.raises(ValueError, match=match):
        cumulative_dynamic_auc(y_train, y_test, estimate, times)


class UnoAucShapeFailureCases(UnoAucData):
    def data_estimate_2d_1col(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        match = r"Found input variables with inconsistent numbers of samples: \[15, 1\]"
        return y_train, y_test, 33, np.atleast_2d(estimate), match

    def data_estimate_2d_2cols(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        estimate = np.tile(estimate, (2, 1)).T
        return (
            y_train,
            y_test,
            [11, 33, 55],
            estimate,
            "expected estimate with 3 columns, but got 2",
        )

    def data_estimate_3d(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        match = r"Found array with dim 3"
        return y_train, y_test, 33, np.atleast_3d(estimate), match

    def data_estimate_nan(self):
        y_train, y_test, estimate = self.uno_auc_data_20
        estimate = np.array(estimate)
        estimate[3] = np.nan
        return y_train, y_test, 33, estimate, "Input estimate contains NaN"


@pytest.mark.parametrize("y_train,y_test,times,estimate,match", cases(UnoAucShapeFailureCases()))
def test_uno_auc_shape_failure(y_train, y_test, times, estimate, match):
    with pytest.raises(ValueError, match=match):
        cumulative_dynamic_auc(y_train, y_test, estimate, times)


@pytest.fixture()
def nottingham_prognostic_index():
    """Kaplan-Meier of three Nottingham prognostic index groups (scikit-survival's fixture)."""

    def _get_npi(times):
        X, y = load_gbsg2()
        grade = X.loc[:, "tgrade"].map({"I": 1, "II": 2, "III": 3}).astype(int)
        npi = 0.2 * X["tsize"] / 10 + 1 + grade
        npi.loc[npi < 3.4] = 1.0
        npi.loc[(npi >= 3.4) & (npi <= 5.4)] = 2.0
        npi.loc[npi > 5.4] = 3.0
        preds = np.empty((X.shape[0], len(times)), dtype=float)
        for j, ts in enumerate(times):
            survs = {}
            for i in npi.unique():
                yi = y[np.flatnonzero(npi == i)]
                t, s = sk_kaplan_meier(yi["cens"], yi["time"])
                survs[i] = 0.0 if t[-1] < ts and s[-1] == 0.0 else StepFunction(t, s)(ts)
            preds[:, j] = npi.map(survs).to_numpy()
        return preds, y

    return _get_npi


BRIER_NPI = {
    365: 0.0762922458520448,
    730: 0.182536421174199,
    1095: 0.220017747254941,
    1460: 0.234133800146671,
    1825: 0.233822955042198,
}


@pytest.mark.parametrize("t", sorted(BRIER_NPI))
def test_brier_nottingham(nottingham_prognostic_index, t):
    pred, y = nottingham_prognostic_index([t])
    _, score = brier_score(y, y, pred.squeeze(), times=t)
    assert score[0] == pytest.approx(BRIER_NPI[t])


def test_brier_nottingham_many(nottingham_prognostic_index):
    times = sorted(BRIER_NPI)
    pred, y = nottingham_prognostic_index(times)
    t1, score = brier_score(y, y, pred, times=times)
    assert_array_almost_equal(score, [BRIER_NPI[t] for t in times])
    t2, score = brier_score(y, y, pred, times=times[::-1])
    assert_array_almost_equal(score, [BRIER_NPI[t] for t in times])
    assert_array_equal(t1, t2)


def test_brier_failures(nottingham_prognostic_index):
    pred, y = nottingham_prognostic_index([720, 1825])
    with pytest.raises(ValueError, match="all times must be within follow-up time of test data:"):
        brier_score(y, y, pred[:, :1], times=9999)
    with pytest.raises(ValueError, match="expected estimate with 2 columns, but got 1"):
        brier_score(y, y, pred[:, :1], times=[720, 1825])
    with pytest.raises(ValueError, match="expected estimate with 3 columns, but got 2"):
        brier_score(y, y, pred, times=[720, 960, 1825])
    match = r"Found input variables with inconsistent numbers of samples: \[686, 10\]"
    with pytest.raises(ValueError, match=match):
        brier_score(y, y, pred[:10], times=[720, 1825])
    with pytest.raises(ValueError, match="At least two time points must be given"):
        integrated_brier_score(y, y, pred[:, 1], times=1825)


def test_brier_score_int_dtype():
    rnd = np.random.default_rng(1)
    times = rnd.choice(np.arange(1, 31, dtype=int), 20)
    y_int = np.empty(20, dtype=[("event", bool), ("time", int)])
    y_int["event"] = np.arange(20) >= 10
    y_int["time"] = times
    pred = rnd.standard_normal((20, 10))
    tp = np.linspace(1.0, 2.0, 10)
    _, bs_int = brier_score(y_int, y_int, pred, times=tp)
    _, bs_float = brier_score(y_int.astype([("event", bool), ("time", float)]), y_int, pred, tp)
    assert_array_almost_equal(bs_float, bs_int)


def test_ibs_nottingham(nottingham_prognostic_index):
    times = np.linspace(365, 1825, 5)
    preds, y = nottingham_prognostic_index(times)
    assert integrated_brier_score(y, y, preds, times=times) == pytest.approx(0.197936392255733)
    assert integrated_brier_score(y, y, preds[:, :4], times[:4]) == pytest.approx(0.185922397142833)
    times = np.arange(1095, 1826)
    preds, y = nottingham_prognostic_index(times)
    assert integrated_brier_score(y, y, preds, times=times) == pytest.approx(0.231553687189643)


# --- part 2: equality with scikit-survival on random and bundled data -----------------------


def random_outcome(rng, n, n_times, p_event):
    time = rng.integers(1, n_times + 1, n).astype(float)  # heavy ties
    event = rng.random(n) < p_event
    event[rng.integers(n)] = True
    return to_structured(event, time)


@pytest.mark.parametrize("seed", range(40))
def test_equal_to_sksurv_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y_test = random_outcome(rng, n, int(rng.integers(6, 60)), rng.uniform(0.2, 0.9))
    y_train = random_outcome(rng, 2 * n, 80, rng.uniform(0.2, 0.9))
    y_train["time"][0], y_train["event"][0] = 1000.0, True  # G > 0 over the test times
    risk = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # tied scores
    ours = concordance_index_censored(y_test["event"], y_test["time"], risk)
    ref = sk.concordance_index_censored(y_test["event"], y_test["time"], risk)
    assert ours[1:] == ref[1:]
    assert ours[0] == pytest.approx(ref[0], abs=1e-12)
    tau = float(np.quantile(y_test["time"], 0.7))
    ours = concordance_index_ipcw(y_train, y_test, risk, tau=tau)
    ref = sk.concordance_index_ipcw(y_train, y_test, risk, tau=tau)
    assert ours[1:] == ref[1:]
    assert ours[0] == pytest.approx(ref[0], abs=1e-12)
    inner = np.unique(y_test["time"])[1:-1]
    assert len(inner) >= 2  # the generator's guarantee, so the checks below always run
    times = inner[np.linspace(0, len(inner) - 1, min(6, len(inner))).astype(int)]
    surv = np.round(np.sort(rng.random((n, len(times))), axis=1)[:, ::-1], 1)  # tied markers
    assert integrated_brier_score(y_train, y_test, surv, times) == pytest.approx(
        sk.integrated_brier_score(y_train, y_test, surv, times), abs=1e-12
    )
    with np.errstate(invalid="ignore"):
        auc, mean = cumulative_dynamic_auc(y_train, y_test, 1 - surv, times)
        ref_auc, ref_mean = sk.cumulative_dynamic_auc(y_train, y_test, 1 - surv, times)
    np.testing.assert_allclose(auc, ref_auc, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-12, equal_nan=True)
    # the marker applied per column gives the same as the marker matrix
    with np.errstate(invalid="ignore"):
        per_column = cumulative_dynamic_auc(y_train, y_test, surv, times, marker=lambda s: 1 - s)
    np.testing.assert_array_equal(per_column[0], auc)


def test_auc_reuses_order_only_when_valid():
    """Columns in one order (PH) and columns that reorder rows both equal scikit-survival."""
    rng = np.random.default_rng(3)
    y = to_structured(rng.random(500) < 0.6, rng.exponential(size=500))
    times = np.quantile(y["time"], [0.2, 0.4, 0.6])
    lp = rng.normal(size=500)
    ph = 1 - np.exp(-np.exp(lp)[:, None] * times[None, :])
    shuffled = ph.copy()
    shuffled[:, 1] = rng.permutation(shuffled[:, 1])
    for estimate in (ph, shuffled):
        ours = cumulative_dynamic_auc(y, y, estimate, times)
        ref = sk.cumulative_dynamic_auc(y, y, estimate, times)
        np.testing.assert_allclose(ours[0], ref[0], atol=1e-12)


def _ph_with_ties(seed: int, n: int = 300):
    """PH survival curves on a grid, rounded (many exact and near ties), and their risk."""
    rng = np.random.default_rng(seed)
    y_train = random_outcome(rng, 2 * n, 40, 0.6)
    y_train["time"][0], y_train["event"][0] = 1000.0, True
    y_test = random_outcome(rng, n, 40, 0.6)
    times = np.unique(y_test["time"])[1:-1][::4]
    risk = np.round(rng.normal(size=n), 1)  # tied risk scores
    surv = np.exp(-np.exp(risk)[:, None] * (times / times.max())[None, :] / 4)
    surv = np.round(surv, int(rng.integers(2, 5)))  # S rounds to 1.0 early: tied markers
    surv[rng.random(surv.shape) < 0.2] += 3e-9  # and markers within tied_tol
    return y_train, y_test, risk, np.clip(surv, 0, 1), times


@pytest.fixture(params=[False, True], ids=["one block", "blocks of 7 rows"])
def auc_blocks(request, monkeypatch):
    """The default blocks, or tiny ones (tie runs and running sums crossing many blocks)."""
    if request.param:
        monkeypatch.setattr(time_dependent, "_BLOCK_CELLS", 7)
        monkeypatch.setattr(time_dependent, "_MIN_BLOCK_ROWS", 7)


@pytest.mark.parametrize("hint", ["by risk", "random", "by increasing risk", "none"])
@pytest.mark.parametrize("seed", range(6))
def test_auc_order_hint_equals_sksurv(seed, hint, auc_blocks):
    """Any order hint (valid, wrong, or none) gives scikit-survival's AUC, ties included."""
    y_train, y_test, risk, surv, times = _ph_with_ties(seed)
    if seed % 2:  # curves that cross: no single order sorts every time point
        surv[::3, : len(times) // 2] = np.sort(surv[::3, : len(times) // 2], axis=0)
    order = {
        "by risk": np.argsort(-risk),
        "random": np.random.default_rng(seed).permutation(len(risk)),
        "by increasing risk": np.argsort(risk),
        "none": None,
    }[hint]
    with np.errstate(invalid="ignore"):
        ours = cumulative_dynamic_auc(
            y_train, y_test, surv, times, marker=lambda s: 1 - s, order=order
        )
        ref = sk.cumulative_dynamic_auc(y_train, y_test, 1 - surv, times)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-12, atol=1e-15, equal_nan=True)
    assert ours[1] == pytest.approx(ref[1], rel=1e-12, abs=1e-15)
    # one marker for all time points, with the same hints
    ours_1d = cumulative_dynamic_auc(y_train, y_test, risk, times, order=order)
    ref_1d = sk.cumulative_dynamic_auc(y_train, y_test, risk, times)
    np.testing.assert_allclose(ours_1d[0], ref_1d[0], rtol=1e-12, atol=1e-15)


def test_auc_in_risk_order_needs_no_sort(monkeypatch):
    """Curves ordered by the risk score, ties included: no time point is sorted."""
    y_train, y_test, risk, _, times = _ph_with_ties(0, n=2000)
    surv = np.exp(-np.exp(risk)[:, None] * (times / times.max())[None, :] / 4)
    # rounded: S is 1.0 for many rows early on, tied rows that later time points separate
    cases = [surv, np.round(surv, 3)]
    expected = [sk.cumulative_dynamic_auc(y_train, y_test, 1 - s, times) for s in cases]
    order = np.argsort(-risk)

    def no_sort(*args, **kwargs):
        raise AssertionError("a time point was sorted")

    monkeypatch.setattr(np, "argsort", no_sort)
    for s, ref in zip(cases, expected, strict=True):
        ours = cumulative_dynamic_auc(
            y_train, y_test, s, times, marker=lambda s: 1 - s, order=order
        )
        np.testing.assert_allclose(ours[0], ref[0], rtol=1e-12)


def test_auc_order_must_be_a_permutation():
    y_train, y_test, risk, surv, times = _ph_with_ties(1, n=50)
    for order in (np.arange(49), np.r_[0, np.arange(49)], np.arange(50) - 1, np.arange(50.0)):
        with pytest.raises(ValueError, match="order must be a permutation of the 50 test rows"):
            cumulative_dynamic_auc(y_train, y_test, 1 - surv, times, order=order)


@pytest.mark.parametrize("seed", range(6))
def test_brier_in_blocks_equals_sksurv(seed, auc_blocks):
    y_train, y_test, _, surv, times = _ph_with_ties(seed)
    ours = brier_score(y_train, y_test, surv, times)[1]
    ref = sk.brier_score(y_train, y_test, surv, times)[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert integrated_brier_score(y_train, y_test, surv, times) == pytest.approx(
        sk.integrated_brier_score(y_train, y_test, surv, times), rel=1e-12
    )


def test_evaluate_predictions_with_ties_equals_sksurv():
    y_train, y_test, risk, surv, times = _ph_with_ties(2, n=3000)
    y_eval = censor_after(y_test, times.max())
    ours = metrics.evaluate_predictions(y_train, y_test, risk, surv, times, times[-1])
    ref = {
        "harrell_c": sk.concordance_index_censored(y_test["event"], y_test["time"], risk)[0],
        "uno_c": sk.concordance_index_ipcw(y_train, y_test, risk, tau=times[-1])[0],
        "ibs": sk.integrated_brier_score(y_train, y_eval, surv, times),
        "mean_auc": sk.cumulative_dynamic_auc(y_train, y_eval, 1 - surv, times)[1],
    }
    assert {m: ours[m] for m in ref} == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_search_left_equals_searchsorted(seed):
    rng = np.random.default_rng(seed)
    haystack = [
        np.sort(rng.normal(size=int(rng.integers(64, 3000)))),
        np.sort(np.r_[rng.random(2000) * 1e-9, rng.random(100) * 1000]),  # a dense cluster
        np.sort(rng.integers(0, 50, 1000)).astype(float),  # repeated values
        np.r_[-np.inf, np.unique(np.round(rng.exponential(100, 5000), 1)), np.inf],
    ][seed % 4]
    finite = haystack[np.isfinite(haystack)]
    needles = np.r_[
        rng.choice(finite, 50_000),
        rng.normal(size=20_000) * rng.choice([1e-9, 1.0, 100.0]),
        np.nextafter(finite, np.inf),
        np.nextafter(finite, -np.inf),
        [np.inf, -np.inf, 0.0, -0.0],
    ]
    rng.shuffle(needles)
    assert_array_equal(_search_left(haystack, needles), np.searchsorted(haystack, needles))
    integers = rng.integers(-5, 60, 70_000)
    assert_array_equal(_search_left(haystack, integers), np.searchsorted(haystack, integers))


@pytest.mark.parametrize("loader", ["load_whas500", "load_gbsg2", "load_veterans_lung_cancer"])
def test_equal_to_sksurv_on_bundled_datasets(loader):
    from sksurv import datasets

    X, y = getattr(datasets, loader)()
    y = to_structured(y[y.dtype.names[0]], y[y.dtype.names[1]])
    num = X.select_dtypes("number").to_numpy(float)
    risk = (num - num.mean(0)) / num.std(0) @ np.linspace(-1, 1, num.shape[1])
    half = len(y) // 2
    y_tr, y_te, r_te = y[:half], y[half:], risk[half:]
    times = np.quantile(y_te["time"][y_te["event"]], np.linspace(0.1, 0.7, 8))
    surv = np.exp(-np.exp(r_te)[:, None] * (times / times.max())[None, :])
    y_eval = censor_after(y_te, times.max())
    pairs = [
        (
            metrics.harrell_c(y_te["event"], y_te["time"], r_te),
            sk.concordance_index_censored(y_te["event"], y_te["time"], r_te)[0],
        ),
        (
            metrics.uno_c(y_tr, y_te, r_te, times[-1]),
            sk.concordance_index_ipcw(y_tr, y_te, r_te, tau=times[-1])[0],
        ),
        (
            metrics.integrated_brier(y_tr, y_te, surv, times),
            sk.integrated_brier_score(y_tr, y_eval, surv, times),
        ),
        (
            metrics.mean_auc(y_tr, y_te, surv, times),
            sk.cumulative_dynamic_auc(y_tr, y_eval, 1 - surv, times)[1],
        ),
    ]
    for ours, ref in pairs:
        assert ours == pytest.approx(ref, abs=1e-12)
    # evaluate_predictions (one censoring estimate for all) gives the same four numbers
    together = metrics.evaluate_predictions(y_tr, y_te, r_te, surv, times, times[-1])
    assert [together[m] for m in ("harrell_c", "uno_c", "ibs", "mean_auc")] == pytest.approx(
        [p[0] for p in pairs], abs=1e-15
    )


@pytest.mark.parametrize("seed", range(30))
def test_count_below_in_suffix_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    values = rng.integers(0, n, n) if seed % 2 else rng.permutation(n)
    start = rng.integers(0, n + 1, 50)
    threshold = rng.integers(0, n + 1, 50)
    expected = [np.sum(values[s:] < t) for s, t in zip(start, threshold, strict=True)]
    assert count_below_in_suffix(values, start, threshold).tolist() == expected


@pytest.mark.parametrize("reverse", [False, True])
def test_kaplan_meier_equals_sksurv(reverse):
    rng = np.random.default_rng(5)
    for _ in range(20):
        n = int(rng.integers(1, 300))
        event = rng.random(n) < 0.5
        time = rng.integers(0, 30, n).astype(float)
        ours = kaplan_meier_estimator(event, time, reverse=reverse)
        ref = sk_kaplan_meier(event, time, reverse=reverse)
        np.testing.assert_array_equal(ours[0], ref[0])
        np.testing.assert_allclose(ours[1], ref[1], rtol=0, atol=1e-15)


def test_censoring_distribution_equals_sksurv_at_any_time():
    rng = np.random.default_rng(6)
    y = to_structured(rng.random(300) < 0.5, rng.integers(0, 40, 300).astype(float))
    y["event"][np.argmax(y["time"])] = True
    ours = CensoringDistribution(y)
    ref = CensoringDistributionEstimator().fit(y)
    t = np.r_[np.linspace(-1, 39, 500), np.unique(y["time"]), np.nextafter(10.0, 0)]
    np.testing.assert_array_equal(ours.predict_proba(t), ref.predict_proba(t))
    early = y[y["time"] < 30]
    np.testing.assert_array_equal(ours.predict_ipcw(early), ref.predict_ipcw(early))
    if ref.predict_proba(y["time"][y["event"]]).min() == 0:  # both refuse a zero G
        with pytest.raises(ValueError, match="censoring survival function is zero"):
            ours.predict_ipcw(y)


def test_censor_after_accepts_integer_times():
    y = np.array([(True, 3), (False, 7), (True, 10)], dtype=[("event", bool), ("time", int)])
    out = censor_after(y, 7)
    assert out["time"][2] > 7 and out["time"][2] == np.nextafter(7.0, np.inf)
    assert out["event"].tolist() == [True, False, False]
    assert out["time"][:2].tolist() == [3.0, 7.0]


def test_metrics_reject_what_sksurv_rejects():
    rng = np.random.default_rng(7)
    y = to_structured(rng.random(50) < 0.6, rng.exponential(size=50))
    risk = rng.normal(size=50)
    times = np.quantile(y["time"], [0.2, 0.5])
    surv = np.full((50, 2), 0.5)
    bad_risk = risk.copy()
    bad_risk[4] = np.nan
    with pytest.raises(ValueError, match="estimate contains NaN"):
        metrics.harrell_c(y["event"], y["time"], bad_risk)
    with pytest.raises(ValueError, match="estimate contains NaN"):
        metrics.uno_c(y, y, bad_risk, times[-1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        metrics.harrell_c(y["event"], y["time"], np.r_[risk, 0.1])  # longer estimate
    with pytest.raises(ValueError, match="only boolean arrays"):
        metrics.harrell_c(y["event"].astype(int), y["time"], risk)
    bad_surv = surv.copy()
    bad_surv[0, 1] = np.inf
    with pytest.raises(ValueError, match="estimate contains infinity"):
        metrics.integrated_brier(y, y, bad_surv, times)
    with pytest.raises(ValueError, match="estimate contains infinity"):
        metrics.mean_auc(y, y, bad_surv, times)


# --- part 3: a model that outputs NaN gives a failed fold, never a metric --------------------


@pytest.mark.parametrize("where", ["risk", "surv", "surv_at"])
def test_nan_predictions_make_a_failed_fold(monkeypatch, where):
    from survival_framework import cv
    from survival_framework.matrix import FoldArrays

    class NaNModel:
        def fit(self, X, y):
            return self

        def predict_risk_and_survival(self, X, times, batch_size=50_000, at=None):
            risk = np.zeros(len(X))
            surv = np.full((len(X), len(times)), 0.5)
            surv_at = np.full(len(X), 0.5)
            {"risk": risk, "surv": surv, "surv_at": surv_at}[where][len(X) // 2] = np.nan
            return risk, surv, surv_at

    monkeypatch.setattr(cv, "get_model", lambda *args, **kwargs: NaNModel())
    rng = np.random.default_rng(8)

    def fold(n):
        return FoldArrays(
            X=rng.normal(size=(n, 2)),
            time=rng.exponential(size=n),
            event=rng.random(n) < 0.7,
            keys=None,
        )

    train, test = fold(200), fold(100)
    times = np.quantile(test.time, [0.2, 0.5])
    record, predictions = cv.fit_and_evaluate("coxph", {}, train, test, times, times[-1], seed=0)
    assert record["status"] == "failed"
    assert record["error"]["type"] == "FloatingPointError"
    assert "non-finite" in record["error"]["message"]
    assert all(np.isnan(v) for v in record["metrics"].values())
    assert predictions is None


@pytest.mark.parametrize("seed", range(10))
def test_harrell_and_uno_from_one_pass_equal_the_separate_functions(seed):
    from survival_framework.concordance import harrell_and_uno

    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(20, 300))
    y_test = random_outcome(rng, n, 30, 0.6)
    y_train = random_outcome(rng, 2 * n, 40, 0.6)
    y_train["time"][0], y_train["event"][0] = 1000.0, True
    risk = np.round(rng.normal(size=n), 1)
    tau = float(np.quantile(y_test["time"], 0.7))
    harrell, uno = harrell_and_uno(y_train, y_test, risk, tau)
    assert harrell == concordance_index_censored(y_test["event"], y_test["time"], risk)
    assert uno == concordance_index_ipcw(y_train, y_test, risk, tau=tau)
