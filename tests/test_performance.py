"""The vectorised Cox fit, Breslow baseline and concordance indices equal scikit-survival's."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.linear_model.coxph import BreslowEstimator
from sksurv.metrics import concordance_index_censored, concordance_index_ipcw
from sksurv.util import Surv

from survival_framework.cox import breslow_cumulative_hazard, fit_cox_breslow
from survival_framework.metrics import harrell_c, uno_c


@pytest.fixture(scope="module")
def gbsg(gbsg2):
    X = gbsg2[["age", "pnodes", "tsize", "progrec", "estrec"]].to_numpy(float)
    X = (X - X.mean(0)) / X.std(0)
    # coarsened times: many tied event and censoring times
    time = np.ceil(gbsg2["time"].to_numpy(float) / 30.0)
    return X, gbsg2["event"].to_numpy().astype(bool), time


@pytest.mark.parametrize("alpha", [0.0, 0.5, 10.0])
def test_cox_newton_matches_sksurv(gbsg, alpha):
    X, event, time = gbsg
    ours = fit_cox_breslow(X, event, time, alpha=alpha)
    ref = CoxPHSurvivalAnalysis(alpha=alpha, ties="breslow", tol=1e-9).fit(
        X, Surv.from_arrays(event, time)
    )
    np.testing.assert_allclose(ours, ref.coef_, rtol=1e-7, atol=1e-9)


def test_breslow_matches_sksurv(gbsg):
    X, event, time = gbsg
    lp = X @ np.array([0.3, 0.5, 0.1, -0.4, 0.0]) + 5.0  # large shift: overflow guard
    times, cumhaz = breslow_cumulative_hazard(lp, event, time)
    ref = BreslowEstimator().fit(lp, event, time).cum_baseline_hazard_
    np.testing.assert_array_equal(times, ref.x)
    np.testing.assert_allclose(cumhaz, ref.y, rtol=1e-10)


survival_data = st.integers(min_value=2, max_value=400).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1, max(2, n // 4)), min_size=n, max_size=n),  # tied times
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.integers(-5, 5), min_size=n, max_size=n),  # tied risks
        st.lists(st.floats(-1e-9, 1e-9), min_size=n, max_size=n),  # ties within tied_tol
    )
)


def _both(fn_ref, fn_ours):
    try:
        ref = fn_ref()
    except ValueError as exc:  # the same inputs must fail the same way, with the same message
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            fn_ours()
        return
    ours = fn_ours()
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(survival_data)
def test_harrell_matches_sksurv(data):
    time, event, risk, jitter = (np.asarray(a) for a in data)
    time = time.astype(float)
    risk = risk.astype(float) * 0.1 + jitter * (np.arange(len(risk)) % 2)
    _both(
        lambda: concordance_index_censored(event, time, risk)[0],
        lambda: harrell_c(event, time, risk),
    )


@settings(max_examples=150, deadline=None)
@given(survival_data)
def test_uno_matches_sksurv(data):
    time, event, risk, _ = (np.asarray(a) for a in data)
    time = time.astype(float)
    y_test = Surv.from_arrays(event, time)
    train_time = np.r_[time + 0.5, time.max() + 1]
    y_train = Surv.from_arrays(np.r_[~event, False], train_time)
    tau = float(np.quantile(time, 0.8))
    _both(
        lambda: concordance_index_ipcw(y_train, y_test, risk.astype(float), tau=tau)[0],
        lambda: uno_c(y_train, y_test, risk.astype(float), tau=tau),
    )


def test_concordance_is_fast_at_production_size():
    rng = np.random.default_rng(0)
    n = 60_000
    time = np.round(rng.exponential(100, n), 1)
    event = rng.random(n) < 0.6
    risk = -np.log1p(time) + rng.normal(size=n)
    import time as _t

    start = _t.perf_counter()
    c = harrell_c(event, time, risk)
    assert _t.perf_counter() - start < 3.0  # scikit-survival: ~5 s on an idle core
    assert 0.6 < c < 0.9


@pytest.mark.parametrize("name", ["coxph", "rsf", "gbsa"])
def test_predict_survival_memory_is_bounded_by_the_batch(gbsg, name):
    """Peak memory of predict_survival = the output + O(batch_size), not O(n_rows)."""
    import tracemalloc

    from survival_framework.models import get_model

    X, event, time = gbsg
    params = {"rsf": {"n_estimators": 10, "n_time_bins": 50}, "gbsa": {"n_estimators": 10}}
    model = get_model(name, random_state=0, **params.get(name, {}))
    model.fit(X, Surv.from_arrays(event, time))
    rng = np.random.default_rng(0)
    X_big = rng.normal(size=(40_000, X.shape[1]))
    times = np.quantile(time[event], np.linspace(0.1, 0.8, 20))
    out_mb = X_big.shape[0] * len(times) * 8 / 1e6
    peaks = {}
    for batch in (500, 40_000):
        tracemalloc.start()
        model.predict_survival(X_big, times, batch_size=batch)
        peaks[batch] = tracemalloc.get_traced_memory()[1] / 1e6 - out_mb
        tracemalloc.stop()
    # small batches: the working set beyond the output stays small and is far below the
    # one-batch working set (which grows with the number of rows)
    assert peaks[500] < 5.0, peaks
    assert peaks[500] < peaks[40_000] / 4, peaks
