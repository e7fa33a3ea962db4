"""The chunked Newton-Raphson Weibull AFT fit (survival_framework.weibull) against lifelines.

lifelines' own SLSQP stops at ``ftol=1e-10``, which leaves its parameters ~1e-5 from the
optimum (its autograd gradient there is ~1e-9, ours ~1e-16). Parameters are therefore
compared with lifelines run to ``ftol=1e-16`` (absolute tolerance 1e-6 on every coefficient,
the intercept and ``log rho``, i.e. relative 1e-6 on ``rho``), and the objective itself is
pinned by evaluating lifelines' autograd objective and gradient at our solution.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from survival_framework import metrics
from survival_framework.models import WeibullAFT, check_params, get_model
from survival_framework.weibull import column_scale, fit_weibull_aft, weibull_loglik

ATOL = 1e-6
TIGHT = {"ftol": 1e-16, "maxiter": 1000}  # lifelines' SLSQP run to its precision


def _dataset(seed: int, n: int = 600, p: int = 6, *, censor: float = 0.4, ties: bool = True):
    """Random covariates (two binary one-hot-like columns), Weibull times, random censoring."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.3, 4.0, p) + rng.normal(size=p)
    level = rng.integers(0, 3, n)
    X[:, 0], X[:, 1] = level == 1, level == 2
    beta = rng.normal(size=p) * 0.4 / X.std(0)
    log_t = 1.0 + X @ beta + 0.6 * rng.gumbel(size=n)
    t = np.exp(log_t)
    if ties:
        t = np.ceil(t * 2) / 2  # many tied times
    event = rng.random(n) >= censor
    return X, t, event


def _dataset_heavy_censoring():
    return _dataset(11, n=900, censor=0.85)


def _dataset_constant_zero():
    X, t, e = _dataset(12)
    X[:, 3] = 0.0
    return X, t, e


def _dataset_constant_nonzero():
    X, t, e = _dataset(13, ties=False)
    X[:, 2] = 2.5
    return X, t, e


def _whas500():
    from sksurv.datasets import load_whas500
    from sksurv.preprocessing import OneHotEncoder

    X, y = load_whas500()
    X = OneHotEncoder().fit_transform(X).to_numpy(float)
    return X, y["lenfol"].astype(float), y["fstat"].astype(bool)


def _veterans():
    from sksurv.datasets import load_veterans_lung_cancer
    from sksurv.preprocessing import OneHotEncoder

    X, y = load_veterans_lung_cancer()
    X = OneHotEncoder().fit_transform(X).to_numpy(float)
    return X, y["Survival_in_days"].astype(float), y["Status"].astype(bool)


DATASETS = {
    "random_ties": lambda: _dataset(10),
    "random_heavy_censoring": _dataset_heavy_censoring,
    "random_no_ties": lambda: _dataset(14, n=300, p=10, ties=False),
    "constant_zero_column": _dataset_constant_zero,
    "constant_nonzero_column": _dataset_constant_nonzero,
    "whas500": _whas500,
    "veterans": _veterans,
}


def _lifelines(X, t, e, penalizer, l1_ratio=0.0, fit_options=None):
    from lifelines import WeibullAFTFitter

    cols = [f"x{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    df["_T"], df["_E"] = t, e.astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter = WeibullAFTFitter(penalizer=penalizer, l1_ratio=l1_ratio)
        fitter.fit(df, "_T", "_E", fit_options=fit_options)
    lam = fitter.params_.loc["lambda_"]
    coef = lam[cols].to_numpy(float)
    return coef, float(lam["Intercept"]), float(fitter.params_.loc[("rho_", "Intercept")]), fitter


def _assert_same_fit(X, ours, coef, intercept, log_rho, atol=ATOL):
    """Equal parameters; zero-variance columns compared through the linear predictor."""
    _, constant = column_scale(X)
    np.testing.assert_allclose(ours.coef[~constant], coef[~constant], rtol=0, atol=atol)
    assert np.all(ours.coef[constant] == 0.0)
    level = X[0, constant]  # the constant columns' value, absorbed by our intercept
    np.testing.assert_allclose(
        ours.intercept, intercept + level @ coef[constant], rtol=0, atol=atol
    )
    np.testing.assert_allclose(ours.log_rho, log_rho, rtol=0, atol=atol)


@pytest.mark.parametrize("penalizer", [0.0, 0.01])
@pytest.mark.parametrize("name", list(DATASETS))
def test_parameters_equal_lifelines(name, penalizer):
    X, t, e = DATASETS[name]()
    ours = fit_weibull_aft(X, t, e, penalizer)
    assert ours.converged
    coef, intercept, log_rho, _ = _lifelines(X, t, e, penalizer, fit_options=TIGHT)
    _assert_same_fit(X, ours, coef, intercept, log_rho)


@pytest.mark.parametrize("name", ["random_ties", "whas500"])
def test_default_lifelines_is_within_its_own_tolerance(name):
    # lifelines at its defaults (ftol 1e-10): ~1e-5 from the optimum, never better than ours
    X, t, e = DATASETS[name]()
    ours = fit_weibull_aft(X, t, e, 0.01)
    coef, intercept, log_rho, fitter = _lifelines(X, t, e, 0.01)
    _assert_same_fit(X, ours, coef, intercept, log_rho, atol=1e-3)
    theta, args = _lifelines_point(fitter, X, t, e, coef, intercept, log_rho)
    assert ours.objective <= fitter._neg_likelihood_with_penalty_function(theta, *args) + 1e-15


def _lifelines_point(fitter, X, t, e, coef, intercept, log_rho):
    """lifelines' normalised parameter vector for ``(coef, intercept, log_rho)`` and the
    arguments of its objective ``fitter._neg_likelihood_with_penalty_function``."""
    from lifelines.utils import DataframeSlicer, normalize

    cols = [f"x{i}" for i in range(X.shape[1])]
    point = pd.Series(0.0, index=fitter.params_.index)
    for col, value in zip(cols, coef, strict=True):
        point[("lambda_", col)] = value
    point[("lambda_", "Intercept")] = intercept
    point[("rho_", "Intercept")] = log_rho
    theta = (point * fitter._norm_std).to_numpy()
    Xs = fitter.regressors.transform_df(pd.DataFrame(X, columns=cols))
    n = len(t)
    args = (
        (np.asarray(t, float), None),
        np.asarray(e, bool),
        np.ones(n),
        np.zeros(n),
        DataframeSlicer(normalize(Xs, 0, fitter._norm_std)),
    )
    return theta, args


@pytest.mark.parametrize("penalizer", [0.0, 0.01, 0.5])
@pytest.mark.parametrize("name", ["random_ties", "random_heavy_censoring", "veterans"])
def test_objective_and_stationarity_are_lifelines(name, penalizer):
    """lifelines' own (autograd) objective at our solution: our value, zero gradient."""
    from autograd import grad

    X, t, e = DATASETS[name]()
    ours = fit_weibull_aft(X, t, e, penalizer)
    _, _, _, fitter = _lifelines(X, t, e, penalizer)
    theta, args = _lifelines_point(fitter, X, t, e, ours.coef, ours.intercept, ours.log_rho)
    value = fitter._neg_likelihood_with_penalty_function(theta, *args)
    np.testing.assert_allclose(ours.objective, value, rtol=1e-12)
    gradient = grad(fitter._neg_likelihood_with_penalty_function)(theta, *args)
    assert np.abs(gradient).max() < 1e-10


@pytest.mark.parametrize(
    ("penalizer", "l1_ratio", "atol"),
    # pure L1: lifelines' SLSQP stalls ~2e-6 from the optimum of its non-smooth objective
    # (our objective is lower by ~5e-12), so parameters are compared to 1e-5 there
    [(0.02, 0.5, ATOL), (0.05, 0.9, ATOL), (0.05, 1.0, 1e-5)],
)
def test_elastic_net_equals_lifelines(penalizer, l1_ratio, atol):
    # lifelines' parametric fitters use a plain |w| (its soft absolute value is for Cox only)
    X, t, e = _dataset(21, n=800, p=8)
    X[:, 5:] = np.random.default_rng(5).normal(size=(800, 3))  # noise: lasso zeros
    ours = fit_weibull_aft(X, t, e, penalizer, l1_ratio)
    assert ours.converged
    assert np.sum(ours.coef == 0.0) >= 1  # exact zeros (lifelines: ~1e-9)
    coef, intercept, log_rho, fitter = _lifelines(X, t, e, penalizer, l1_ratio, TIGHT)
    _assert_same_fit(X, ours, coef, intercept, log_rho, atol)
    theta, args = _lifelines_point(fitter, X, t, e, ours.coef, ours.intercept, ours.log_rho)
    lifelines_theta = (fitter.params_ * fitter._norm_std).to_numpy()
    objective = fitter._neg_likelihood_with_penalty_function
    np.testing.assert_allclose(ours.objective, objective(theta, *args), rtol=1e-12)
    assert ours.objective <= objective(lifelines_theta, *args) + 1e-15


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64])
def test_chunked_derivatives_equal_unchunked(chunk_size):
    X, t, e = _dataset(31, n=150, p=5)
    rng = np.random.default_rng(0)
    coef, b0, c = rng.normal(size=5) * 0.1, 1.0, 0.2
    full = weibull_loglik(X, np.log(t), e.astype(float), coef, b0, c, 2, chunk_size=10**6)
    part = weibull_loglik(X, np.log(t), e.astype(float), coef, b0, c, 2, chunk_size)
    np.testing.assert_allclose(part[0], full[0], rtol=1e-12)
    np.testing.assert_allclose(part[1], full[1], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(part[2], full[2], rtol=1e-11, atol=1e-11)
    assert np.array_equal(part[2], part[2].T)
    scale, constant = column_scale(X, chunk_size)
    np.testing.assert_allclose(scale, X.std(0, ddof=1), rtol=1e-12)
    assert not constant.any()


def test_gradient_and_hessian_equal_finite_differences():
    X, t, e = _dataset(32, n=200, p=4)
    log_t, ev = np.log(t), e.astype(float)
    rng = np.random.default_rng(1)
    params = np.r_[rng.normal(size=4) * 0.1, 0.8, 0.3]

    def ll(q):
        return weibull_loglik(X, log_t, ev, q[:4], q[4], q[5], order=0)[0]

    def gradient(q):
        return weibull_loglik(X, log_t, ev, q[:4], q[4], q[5], order=1)[1]

    _, g, h = weibull_loglik(X, log_t, ev, params[:4], params[4], params[5], order=2)
    step = 1e-6
    eye = np.eye(params.size) * step
    fd_g = np.array([(ll(params + d) - ll(params - d)) / (2 * step) for d in eye])
    fd_h = np.array([(gradient(params + d) - gradient(params - d)) / (2 * step) for d in eye])
    np.testing.assert_allclose(g, fd_g, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(h, fd_h, rtol=1e-6, atol=1e-5)
    assert np.abs(g).max() > 1.0  # not at a stationary point: the check has teeth


@pytest.mark.parametrize("penalizer", [0.0, 0.01])
def test_survival_predictions_equal_lifelines(penalizer):
    X, t, e = _whas500()
    y = metrics.to_structured(e, t)
    model = WeibullAFT(penalizer=penalizer).fit(X, y)
    *_, fitter = _lifelines(X, t, e, penalizer, fit_options=TIGHT)
    times = np.quantile(t[e], np.linspace(0.05, 0.95, 15))
    df = pd.DataFrame(X[:200], columns=[f"x{i}" for i in range(X.shape[1])])
    ref = fitter.predict_survival_function(df, times=times).to_numpy().T
    ours = model.predict_survival(X[:200], times, batch_size=64)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    assert np.ptp(ours) > 0.5


def test_lifelines_solver_is_kept_and_agrees():
    X, t, e = _veterans()
    y = metrics.to_structured(e, t)
    fast = get_model("weibull_aft").fit(X, y)
    slow = get_model("weibull_aft", solver="lifelines").fit(X, y)
    assert not hasattr(fast, "model_") and hasattr(slow, "model_")
    np.testing.assert_allclose(fast.coef_, slow.coef_, atol=1e-3)
    fast_scalars, slow_scalars = [fast.intercept_, fast.rho_], [slow.intercept_, slow.rho_]
    np.testing.assert_allclose(fast_scalars, slow_scalars, rtol=1e-4)
    with pytest.raises(ValueError, match="solver"):
        WeibullAFT(solver="autograd").fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        check_params("weibull_aft", {"solver": "autograd"})


def test_numpy_solver_does_not_import_lifelines():
    code = (
        "import sys, numpy as np\n"
        "from survival_framework.models import WeibullAFT\n"
        "from survival_framework.metrics import to_structured\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(200, 3))\n"
        "y = to_structured(rng.random(200) < 0.5, rng.exponential(size=200) + 0.1)\n"
        "m = WeibullAFT().fit(X, y)\n"
        "m.predict_survival(X, np.array([0.5, 1.0]))\n"
        "assert 0 < m.rho_ < 10, m.rho_\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('lifelines', 'autograd')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "scripts")},
    )
    assert out.stdout.strip() == "[]"


def test_invalid_inputs_raise_like_lifelines():
    X, t, e = _dataset(41, n=50, p=3)
    t0 = t.copy()
    t0[3] = 0.0
    with pytest.raises(ValueError, match="non-positive durations"):
        fit_weibull_aft(X, t0, e)
    with pytest.raises(ValueError, match="non-positive durations"):
        _lifelines(X, t0, e, 0.0)
    Xn = X.copy()
    Xn[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_weibull_aft(Xn, t, e)
    with pytest.raises(ValueError, match="l1_ratio"):
        fit_weibull_aft(X, t, e, 0.1, 1.5)


def test_non_convergence_warns():
    X, t, e = _dataset(42, n=300, p=5)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        result = fit_weibull_aft(X, t, e, 0.01, max_iter=1)
    assert not result.converged and result.n_iter == 1


def test_memory_is_x_plus_chunks():
    """No copy of X: the fit allocates O(n) vectors and O(chunk x p) temporaries only."""
    n, p, chunk = 40_000, 50, 2_048
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, p))
    t = np.exp(0.2 * X[:, 0] + rng.gumbel(size=n))
    e = rng.random(n) < 0.6
    tracemalloc.start()
    try:
        fit_weibull_aft(X, t, e, 0.01, chunk_size=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    budget = 12 * n * 8 + 4 * chunk * p * 8 + 2**19  # 12 length-n vectors, 4 chunk blocks
    assert peak < budget < X.nbytes / 2, (peak, budget, X.nbytes)
