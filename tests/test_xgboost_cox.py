"""The gbsa model's Cox objective (survival_framework.xgboost_cox) against XGBoost's own.

XGBoost's ``survival:cox`` gradient (``CoxRegression::GetGradient`` in its
``src/objective/regression_obj.cu``) is transcribed below as a loop, to check that
:class:`CoxObjective` computes the same gradient pairs, row for row, ties included, and that
the loop's risk sets (a running subtraction from the total) cancel where ours do not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from survival_framework.metrics import to_structured
from survival_framework.models import get_model
from survival_framework.xgboost_cox import CoxObjective

xgb = pytest.importorskip("xgboost")


def xgboost_loop(label: np.ndarray, margin: np.ndarray):
    """XGBoost's CoxRegression::GetGradient, line by line; also returns its risk sets."""
    y = label.astype(np.float32)
    order = np.argsort(np.abs(y), kind="stable")  # MetaInfo::LabelAbsSort
    exp_p_sum = 0.0
    for i in order:
        exp_p_sum += math.exp(float(margin[i]))
    r_k = s_k = last_exp_p = last_abs_y = accumulated = 0.0
    grad, hess, risk = np.empty(y.size), np.empty(y.size), np.empty(y.size)
    for ind in order:
        exp_p = math.exp(float(margin[ind]))
        yy = float(y[ind])
        abs_y = abs(yy)
        accumulated += last_exp_p
        if last_abs_y < abs_y:
            exp_p_sum -= accumulated
            accumulated = 0.0
        if yy > 0:
            r_k += 1.0 / exp_p_sum
            s_k += 1.0 / (exp_p_sum * exp_p_sum)
        grad[ind] = exp_p * r_k - (yy > 0)
        hess[ind] = exp_p * r_k - exp_p * exp_p * s_k
        risk[ind] = exp_p_sum
        last_abs_y, last_exp_p = abs_y, exp_p
    return grad, hess, risk


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_pairs_equal_xgboosts_own_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    time = np.round(rng.exponential(10.0, n)) + 1.0  # ~40 distinct times: large tie groups
    event = rng.random(n) < 0.6
    label = np.where(event, time, -time)
    margin = rng.normal(0.0, 1.5, n).astype(np.float32)
    g_ref, h_ref, _ = xgboost_loop(label, margin)
    g, h = CoxObjective(label).gradient_hessian(margin)
    np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(h, h_ref, rtol=1e-11, atol=1e-12)
    # a shift of every margin changes nothing (the shift by the maximum inside relies on it)
    g2, h2 = CoxObjective(label).gradient_hessian(margin.astype(np.float64) + 40.0)
    np.testing.assert_allclose(g2, g, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h2, h, rtol=1e-9, atol=1e-12)


def test_late_risk_sets_do_not_cancel():
    """A few early rows with a large hazard ratio: their exp(margin) leaves the running
    subtraction with a rounding error larger than the late risk sets themselves."""
    n = 20_000
    time = np.arange(1.0, n + 1.0)
    label = time.copy()  # all events, no ties
    margin = np.zeros(n, dtype=np.float32)
    margin[:5] = 36.0  # exp(36) = 4.3e15: one ulp of the total is 1
    _, _, risk_loop = xgboost_loop(label, margin)
    exact = np.array([n - i for i in range(n)], dtype=float)  # the later rows, exp(0) each
    exact[:5] = [5 * math.exp(36.0) - i * math.exp(36.0) + (n - 5) for i in range(5)]
    late = slice(n - 50, n)  # risk sets of 50 rows down to 1
    assert np.max(np.abs(risk_loop[late] - exact[late]) / exact[late]) > 0.1  # the defect
    obj = CoxObjective(label)
    g, h = obj.gradient_hessian(margin)
    # ours, from exact risk sets: the last event's gradient is exp(0) * sum(1/R) - 1
    r_exact = np.cumsum(1.0 / exact)
    np.testing.assert_allclose(g[late], r_exact[late] - 1.0, rtol=1e-12)
    np.testing.assert_allclose(h[late], r_exact[late] - np.cumsum(1.0 / exact**2)[late])
    assert np.isfinite(g).all() and np.isfinite(h).all()


def test_gbsa_trees_equal_survival_cox_up_to_the_margin_shift():
    """The model with this objective grows XGBoost's survival:cox trees: the same margins
    but for one constant (the intercept survival:cox starts from), the same survival."""
    rng = np.random.default_rng(3)
    n = 6000
    X = rng.normal(size=(n, 6))
    lp = X[:, 0] - 0.5 * X[:, 1] ** 2
    t = np.round(rng.exponential(np.exp(-lp)) * 100, 1) + 0.1
    c = np.round(rng.exponential(1.5, n) * 100, 1) + 0.1
    y = to_structured(t <= c, np.minimum(t, c))
    train, test = slice(0, 4500), slice(4500, n)
    model = get_model("gbsa", random_state=0, n_estimators=60).fit(X[train], y[train])
    label = np.where(y["event"][train], y["time"][train], -y["time"][train])
    params = {
        "objective": "survival:cox",
        "tree_method": "hist",
        "eta": model.learning_rate,
        "max_depth": model.max_depth,
        "max_bin": model.max_bin,
        "min_child_weight": model.min_child_weight,
        "lambda": model.reg_lambda,
        "subsample": model.subsample,
        "seed": 0,
        "nthread": 1,
        "verbosity": 0,
    }
    dtrain = xgb.QuantileDMatrix(X[train].astype(np.float32), label=label, max_bin=model.max_bin)
    builtin = xgb.train(params, dtrain, num_boost_round=60)
    ours = model.booster_
    assert [_structure(d) for d in ours.get_dump()] == [_structure(d) for d in builtin.get_dump()]
    dtest = xgb.DMatrix(X[test].astype(np.float32))
    shift = builtin.predict(dtest, output_margin=True) - ours.predict(dtest, output_margin=True)
    assert np.std(shift) < 1e-5 and abs(np.mean(shift)) > 0  # one constant
    # survival:cox's trees with their own Breslow baseline: the baseline absorbs the shift
    times = np.quantile(y["time"], [0.2, 0.5, 0.8])
    got = model.predict_survival(X[test], times)
    model.booster_ = builtin
    model._fit_baseline(X[train], y[train])
    np.testing.assert_allclose(got, model.predict_survival(X[test], times), atol=1e-6)


def _structure(dump: str) -> list[str]:
    """A tree's splits without its leaf values (those differ in the last float32 digits)."""
    return [line.split("leaf=")[0] for line in dump.splitlines()]
