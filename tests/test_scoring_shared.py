"""The work one job's scoring shares between metrics equals computing each metric alone.

``evaluate_predictions`` reuses sorts and partial results across metrics (the concordance's
time order for the ICI fits, one sort for both training Kaplan-Meier curves, tie-group keys
for the concordance counts, per-group sums in the ICI's Cox fits, a one-curve Brier score).
Each shortcut is checked here against the computation it replaces, or against
scikit-survival, on random data with ties; which path a case takes is asserted, so a
change of the switching rule cannot leave a path untested.
"""

from __future__ import annotations

import numpy as np
import pytest
from sksurv import metrics as sk
from sksurv.util import Surv

from survival_framework import concordance as C
from survival_framework import time_dependent as TD
from survival_framework.calibration import _has_distinct, calibration_errors_at
from survival_framework.cox import (
    COLUMNWISE_MAX_FEATURES,
    TimeOrder,
    _SortedCoxData,
    breslow_cumulative_hazard,
    fit_cox_breslow,
    fit_cox_presorted,
)
from survival_framework.kaplan_meier import CensoringDistribution, kaplan_meier_estimator


def _outcome(n: int, n_times: int | None, seed: int, event_rate: float = 0.6):
    """Event indicator and times: ``n_times`` distinct integer times, or continuous."""
    rng = np.random.default_rng(seed)
    if n_times is None:
        time = rng.exponential(10.0, n) + 0.01
    else:
        time = rng.integers(1, n_times + 1, n).astype(float)
    return rng.random(n) < event_rate, time


@pytest.mark.parametrize("seed", range(20))
def test_count_below_in_range_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 150))
    n_values = int(rng.integers(1, 2 * n + 2))
    values = rng.integers(0, n_values, n)
    q = 60
    lo = rng.integers(-2, n + 2, q)
    hi = rng.integers(-2, n + 2, q)
    threshold = rng.integers(-1, n_values + 3, q)
    # the shortcuts: whole sequence, thresholds at or past either end, empty ranges
    lo[:8], hi[:8] = 0, n
    threshold[8:12] = 0
    threshold[12:16] = n_values
    expected = [
        int(np.sum(values[max(a, 0) : max(b, 0)] < t))
        for a, b, t in zip(lo, hi, threshold, strict=True)
    ]
    assert C.count_below_in_range(values, lo, hi, threshold, n_values).tolist() == expected
    assert C.count_below_in_range(values, lo, hi, threshold).tolist() == expected


@pytest.mark.parametrize(
    ("n", "n_times", "score", "keys_used"),
    [
        (500, 12, "continuous", True),  # few distinct times: counted over tie-group keys
        (500, 12, "tied", True),
        (500, 12, "constant", True),  # every query answered without a pass
        (500, None, "continuous", False),  # distinct times: counted over positions
        (500, None, "tied", False),
        (64, 400, "tied", False),  # 64 rows in about 60 times: as many bits either way
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_concordance_counts_equal_sksurv_on_either_path(n, n_times, score, keys_used, seed):
    event, time = _outcome(n, n_times, seed)
    rng = np.random.default_rng(100 + seed)
    estimate = {
        "continuous": rng.normal(size=n),
        "tied": rng.integers(0, 8, n) + rng.choice([0.0, 5e-9], n),  # ties within tied_tol
        "constant": np.full(n, 0.25),
    }[score]
    n_groups = np.unique(time).shape[0]
    assert (n_groups.bit_length() < (n - 1).bit_length()) == keys_used
    ours = C.concordance_index_censored(event, time, estimate)
    ref = sk.concordance_index_censored(event, time, estimate)
    assert ours[1:] == ref[1:]  # concordant, discordant, tied risk, tied time: exact
    assert ours[0] == pytest.approx(ref[0], abs=1e-12)
    y = Surv.from_arrays(event, time)
    tau = float(np.quantile(time, 0.8))
    harrell, uno = C.harrell_and_uno(y, y, estimate, tau)
    assert harrell[0] == pytest.approx(ref[0], abs=1e-12)
    assert uno[0] == pytest.approx(sk.concordance_index_ipcw(y, y, estimate, tau)[0], abs=1e-12)


@pytest.mark.parametrize("n_times", [6, None])
def test_concordance_time_order_is_sorted_events_first(n_times):
    event, time = _outcome(300, n_times, 4)
    _, by_risk, by_time = C._weighted_concordance(
        event, time, np.random.default_rng(0).normal(size=300), np.ones(300)
    )
    assert sorted(by_time.tolist()) == list(range(300))
    t, e = time[by_time], event[by_time]
    assert np.all(np.diff(t) >= 0)
    same = np.diff(t) == 0
    assert not np.any(same & ~e[:-1] & e[1:])  # within a time, no event after a censoring
    assert sorted(by_risk.tolist()) == list(range(300))


@pytest.mark.parametrize("n", [1, 2, 70_000])  # 70,000: _search_left's table path
@pytest.mark.parametrize("n_times", [1, 6, None])
def test_packed_time_order_equals_a_lexsort(n, n_times):
    event, time = _outcome(n, n_times, 8)
    if n_times is None:  # -0.0 ties with 0.0
        time[: n // 10] = -0.0
        time[n // 10 : n // 5] = 0.0
    order, group, new_time, event_sorted = C._time_order(event, time)
    expected = np.lexsort((np.arange(n), ~event, time + 0.0))  # ties: by row
    np.testing.assert_array_equal(order, expected)
    t = time[expected] + 0.0
    np.testing.assert_array_equal(new_time, np.r_[True, t[1:] != t[:-1]])
    np.testing.assert_array_equal(group, np.cumsum(new_time) - 1)
    np.testing.assert_array_equal(event_sorted, event[expected])


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("tol", [0.0, 1e-8, 0.3])
def test_tie_bounds_equal_searchsorted(seed, tol):
    rng = np.random.default_rng(seed)
    s = np.sort(np.round(rng.normal(size=int(rng.integers(1, 400))), int(rng.integers(0, 3))))
    s[rng.random(s.shape[0]) < 0.1] += 1e-9  # within 1e-8 of a neighbour, not equal
    s.sort()
    below, up_to = C._tie_bounds(s, tol)
    np.testing.assert_array_equal(below, np.searchsorted(s, s - tol, side="left"))
    np.testing.assert_array_equal(up_to, np.searchsorted(s, s + tol, side="right"))


def test_censoring_lookups_are_recalled_for_the_same_times_only():
    event, time = _outcome(5_000, 40, 9)
    cens = CensoringDistribution(Surv.from_arrays(event, time))
    test_event, test_time = _outcome(100_000, 30, 10)  # above _MEMO_MIN_ROWS
    first = cens.predict_proba(test_time)
    expected = first.copy()
    first[:] = -1.0  # the caller may change what it got: the memo keeps its own copy
    np.testing.assert_array_equal(cens.predict_proba(test_time.copy()), expected)
    other = test_time[::-1].copy()
    np.testing.assert_array_equal(cens.predict_proba(other), expected[::-1])
    # the IPC weights from a recalled lookup equal those computed at the events only
    y = Surv.from_arrays(test_event, other)
    fresh = CensoringDistribution(Surv.from_arrays(event, time)).predict_ipcw(y)
    np.testing.assert_array_equal(cens.predict_ipcw(y), fresh)


@pytest.mark.parametrize("measures", [("ici",), ("e90", "ici"), ("emax",)])
def test_calibration_measures_asked_for_equal_the_full_set(measures):
    event, time = _outcome(2_000, 25, 11)
    rng = np.random.default_rng(11)
    surv = {8.0: rng.uniform(0.2, 0.95, 2_000), 15.0: rng.uniform(0.1, 0.9, 2_000)}
    y = Surv.from_arrays(event, time)
    full = calibration_errors_at(y, surv)
    some = calibration_errors_at(y, surv, measures=measures)
    for t0 in surv:
        assert list(some[t0]) == list(measures)
        assert some[t0] == {name: full[t0][name] for name in measures}
    with pytest.raises(ValueError, match="unknown calibration measures"):
        calibration_errors_at(y, surv, measures=("ici", "e95"))


@pytest.mark.parametrize("n_times", [5, 30, None])
def test_breslow_at_a_horizon_equals_the_baseline_step_function(n_times):
    event, time = _outcome(400, n_times, 7)
    lp = np.random.default_rng(8).normal(size=400)
    step_t, cumhaz = breslow_cumulative_hazard(lp, event, time)
    outcome = TimeOrder(event, time)
    for t0 in np.r_[0.5 * time.min(), np.unique(time)[::7], time.max(), 2 * time.max()]:
        i = np.searchsorted(step_t, t0, side="right") - 1
        expected = cumhaz[i] if i >= 0 else 0.0
        assert outcome.cumulative_hazard_at(lp[outcome.order], t0) == pytest.approx(
            expected, rel=1e-12, abs=1e-300
        )


@pytest.mark.parametrize("n_times", [8, None])
@pytest.mark.parametrize("p", [1, 2, COLUMNWISE_MAX_FEATURES + 2])
def test_presorted_fit_equals_the_sorting_fit(n_times, p):
    event, time = _outcome(600, n_times, 11)
    X = np.random.default_rng(12).normal(size=(600, p)) * 0.5
    expected = fit_cox_breslow(X.copy(), event, time)
    outcome = TimeOrder(event, time)
    ours = fit_cox_presorted(np.asfortranarray(X[outcome.order]), outcome)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)
    # another order within equal times (the concordance's, reversed) fits the same model
    _, _, by_time = C._weighted_concordance(event, time, X[:, 0], np.ones(600))
    other = TimeOrder(event, time, by_time[::-1])
    refit = fit_cox_presorted(np.asfortranarray(X[other.order]), other)
    np.testing.assert_allclose(refit, expected, rtol=1e-9, atol=1e-12)


def test_columnwise_gradient_hessian_equal_the_chunked_ones():
    event, time = _outcome(500, 9, 13)
    outcome = TimeOrder(event, time)
    X = np.asfortranarray(np.random.default_rng(14).normal(size=(500, 3))[outcome.order])
    alpha = np.full(3, 0.2)
    chunked = _SortedCoxData(X, None, None, None, False, chunk_rows=7, outcome=outcome)
    columnwise = _SortedCoxData(X, None, None, None, False, outcome=outcome, columnwise=True)
    with pytest.raises(ValueError, match="Fortran-ordered"):
        _SortedCoxData(np.ascontiguousarray(X), None, None, None, False, outcome, columnwise=True)
    for w in (np.zeros(3), np.array([0.3, -0.2, 0.1])):
        for a, b in zip(
            chunked.gradient_hessian(w, alpha), columnwise.gradient_hessian(w, alpha), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        assert chunked.loss(w, alpha) == pytest.approx(columnwise.loss(w, alpha), rel=1e-13)


def test_risk_sums_are_reused_for_the_same_coefficients_only():
    event, time = _outcome(200, 5, 15)
    outcome = TimeOrder(event, time)
    X = np.asfortranarray(np.random.default_rng(16).normal(size=(200, 2))[outcome.order])
    data = _SortedCoxData(X, None, None, None, False, outcome=outcome)
    first = data.risk_sums(np.array([0.1, 0.2]))
    assert data.risk_sums(np.array([0.1, 0.2]))[0] is first[0]
    other = data.risk_sums(np.array([0.1, 0.3]))
    assert other[0] is not first[0]
    np.testing.assert_allclose(other[0] * np.exp(other[2]), np.exp(X @ [0.1, 0.3]), rtol=1e-12)


@pytest.mark.parametrize("n_times", [4, None])
def test_survival_estimate_of_the_censoring_fit_equals_kaplan_meier(n_times):
    for event_rate in (0.6, 1.0):
        event, time = _outcome(300, n_times, 17, event_rate)
        cens = CensoringDistribution(Surv.from_arrays(event, time))
        ours = cens.survival_estimate()
        ref = kaplan_meier_estimator(event, time)
        np.testing.assert_array_equal(ours[0], ref[0])
        np.testing.assert_array_equal(ours[1], ref[1])


@pytest.mark.parametrize("n_times", [6, 40, None])
def test_one_curve_brier_score_equals_the_row_by_row_sums(n_times):
    event, time = _outcome(700, n_times, 19)
    y = Surv.from_arrays(event, time)
    # inside the follow-up [min, max) (with 6 integer times: 1.5, 2.1, ..., 5.7)
    times = np.linspace(time.min(), time.max(), 12)[1:-1] + 0.1 * (time.max() - time.min()) / 12
    curve = np.linspace(0.95, 0.3, times.shape[0])
    rows = np.tile(curve, (700, 1))
    assert TD._same_rows(rows) and TD._same_rows(np.broadcast_to(curve, rows.shape))
    assert not TD._same_rows(rows + np.r_[0.0, 1e-12, np.zeros(698)][:, None])
    case_weight, g_t = TD._brier_weights(CensoringDistribution(y), event, time, times)
    general = TD._brier_sums(rows, time, times, case_weight, 1.0 / g_t)
    one = TD._brier_sums_one_curve(curve, time, times, case_weight, g_t)
    np.testing.assert_allclose(one, general, rtol=1e-12)
    ours = TD.brier_score(y, y, rows, times)[1]
    np.testing.assert_allclose(ours, sk.brier_score(y, y, rows, times)[1], rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_calibration_on_the_concordance_order_equals_its_own_sort(seed):
    event, time = _outcome(800, 25, seed)
    rng = np.random.default_rng(seed)
    lp = rng.normal(size=800)
    surv_at = {t0: np.exp(-np.exp(lp) * t0 / 30.0) for t0 in (5.0, 12.0, 20.0)}
    y = Surv.from_arrays(event, time)
    alone = calibration_errors_at(y, surv_at)
    _, _, by_time = C._weighted_concordance(event, time, lp, np.ones(800))
    shared = calibration_errors_at(y, surv_at, order=by_time[::-1])
    for t0, errors in alone.items():
        assert shared[t0] == pytest.approx(errors, rel=1e-12, abs=1e-15)


def test_has_distinct_counts_like_unique():
    rng = np.random.default_rng(21)
    for _ in range(50):
        x = rng.integers(0, int(rng.integers(1, 6)), int(rng.integers(1, 30))).astype(float)
        for k in range(1, 6):
            assert _has_distinct(x, k) == (np.unique(x).shape[0] >= k)


@pytest.mark.parametrize("spread", [1.0, 40.0])  # near calibration; extreme predictions
def test_ici_fit_from_the_calibrated_start_equals_the_start_at_zero(spread):
    import warnings

    from survival_framework.calibration import _fit_from_calibrated, rcs_basis, rcs_knots

    event, time = _outcome(3000, 30, 23)
    rng = np.random.default_rng(24)
    p = np.clip(1.0 / (1.0 + np.exp(-spread * rng.normal(size=3000))), 1e-10, 1 - 1e-10)
    outcome = TimeOrder(event, time)
    cll = np.log(-np.log1p(-p[outcome.order]))
    X = rcs_basis(cll, rcs_knots(cll, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = _fit_from_calibrated(X, outcome)
    assert not caught  # a failed calibrated start leaves no warning behind
    np.testing.assert_allclose(ours, fit_cox_presorted(X, outcome), rtol=1e-6, atol=1e-9)
