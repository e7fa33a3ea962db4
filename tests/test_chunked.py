"""Memory-bounded fitting: fold matrices read once, chunked Cox sums, in-place workspaces.

The chunked Cox gradient, Hessian and loss equal the in-memory ones (the previous
implementation, kept below as the reference) with chunk boundaries inside tied-time groups;
every fit that uses ``X`` as its workspace gives ``X`` back; the one-pass and batched
predictions equal the two-pass ones; ``read_fold`` gives ``read_table``'s values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis
from sksurv.util import Surv

from survival_framework.contract import ROW_COL
from survival_framework.cox import _SortedCoxData, fit_cox_breslow, sorted_rows_in_place
from survival_framework.io import read_table
from survival_framework.matrix import FoldArrays, read_fold
from survival_framework.models import get_model, model_input_dtype


class _InMemoryCox:
    """The previous, unchunked implementation (a sorted copy of X, n x p temporaries)."""

    def __init__(self, X: np.ndarray, event: np.ndarray, time: np.ndarray):
        order = np.argsort(-time, kind="mergesort")
        self.x = np.ascontiguousarray(X[order], dtype=float)
        self.event = event[order].astype(bool)
        t = time[order]
        n = len(t)
        starts_new = np.r_[True, t[1:] != t[:-1]]
        self.group = np.cumsum(starts_new) - 1
        self.group_end = np.r_[np.flatnonzero(starts_new)[1:] - 1, n - 1]
        self.deaths = np.bincount(self.group, weights=self.event, minlength=len(self.group_end))
        self.has_death = self.deaths > 0
        self.sum_x_events = self.x[self.event].sum(axis=0)
        self.n = n

    def risk_sums(self, w):
        eta = self.x @ w
        shift = float(eta.max())
        r = np.exp(eta - shift)
        return r, np.cumsum(r)[self.group_end], shift

    def loss(self, w, alpha):
        r, s0, shift = self.risk_sums(w)
        d = self.deaths[self.has_death]
        loglik = self.sum_x_events @ w - np.sum(d * (np.log(s0[self.has_death]) + shift))
        return float(-loglik / self.n + np.sum(alpha * w * w) / (2.0 * self.n))

    def gradient_hessian(self, w, alpha):
        r, s0, _ = self.risk_sums(w)
        s1 = np.cumsum(self.x * r[:, None], axis=0)[self.group_end][self.has_death]
        d = self.deaths[self.has_death]
        s0d = s0[self.has_death]
        z = s1 / s0d[:, None]
        grad = -(self.sum_x_events - d @ z) / self.n + alpha * w / self.n
        per_group = np.zeros(len(self.group_end))
        per_group[self.has_death] = d / s0d
        c = np.cumsum(per_group[::-1])[::-1][self.group]
        h1 = (self.x * (r * c)[:, None]).T @ self.x
        h2 = (z * d[:, None]).T @ z
        hess = (h1 - h2) / self.n
        hess[np.diag_indices_from(hess)] += alpha / self.n
        return grad, hess


def _tied_data(n: int = 400, p: int = 5, n_times: int = 12, seed: int = 0):
    """Heavy ties: ``n`` rows on ``n_times`` distinct times (groups of ~33 rows)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    time = rng.integers(1, n_times + 1, size=n).astype(float)
    event = rng.random(n) < 0.6
    return X, event, time


@pytest.mark.parametrize("gather", [False, True])
@pytest.mark.parametrize("chunk_rows", [7, 64, 10_000])
def test_chunked_gradient_hessian_loss_equal_in_memory(gather, chunk_rows):
    X, event, time = _tied_data()
    ref = _InMemoryCox(X, event, time)
    order = np.argsort(-time, kind="mergesort")
    # chunks of 7 rows end inside tie groups of ~33 rows: the carry must bridge them
    assert np.any(np.diff(time[order])[np.arange(6, len(time) - 1, 7)] == 0)
    Xf = np.asfortranarray(X)
    alpha = np.full(X.shape[1], 0.3)
    rng = np.random.default_rng(1)
    with sorted_rows_in_place(Xf, order) if not gather else _null(Xf) as xs:
        data = _SortedCoxData(xs, event, time, order, gather=gather, chunk_rows=chunk_rows)
        for w in (np.zeros(X.shape[1]), rng.normal(scale=0.5, size=X.shape[1])):
            g, h = data.gradient_hessian(w, alpha)
            g_ref, h_ref = ref.gradient_hessian(w, alpha)
            np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-14)
            assert data.loss(w, alpha) == pytest.approx(ref.loss(w, alpha), rel=1e-13)
    np.testing.assert_array_equal(Xf, X)  # restored exactly


class _null:
    def __init__(self, X):
        self.X = X

    def __enter__(self):
        return self.X

    def __exit__(self, *exc):
        return None


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("order", ["F", "C"])
def test_chunked_fit_matches_sksurv_and_restores_x(alpha, order):
    X, event, time = _tied_data(n=300, p=4)
    Xa = np.array(X, order=order)
    ours = fit_cox_breslow(Xa, event, time, alpha=alpha, chunk_rows=7)
    np.testing.assert_array_equal(Xa, X)  # in-place sort undone exactly (F), untouched (C)
    ref = CoxPHSurvivalAnalysis(alpha=alpha, ties="breslow", tol=1e-9).fit(
        X, Surv.from_arrays(event, time)
    )
    np.testing.assert_allclose(ours, ref.coef_, rtol=1e-7, atol=1e-9)
    # the chunking changes only the order of a few sums
    big = fit_cox_breslow(np.asfortranarray(X), event, time, alpha=alpha, chunk_rows=10**6)
    np.testing.assert_allclose(ours, big, rtol=1e-10, atol=1e-12)


def test_in_place_sort_restores_x_after_an_exception():
    X, event, time = _tied_data(n=50, p=3)
    Xf = np.asfortranarray(X)
    with pytest.raises(RuntimeError), sorted_rows_in_place(Xf, np.argsort(time)):
        raise RuntimeError("fit failed")
    np.testing.assert_array_equal(Xf, X)


def test_coxnet_in_place_equals_sksurv_copying_path():
    X, event, time = _tied_data(n=300, p=6, n_times=40)
    y = Surv.from_arrays(event, time)
    Xf = np.asfortranarray(X)
    ours = get_model("coxnet", l1_ratio=0.5, alpha=0.01).fit(Xf, y)
    ref = CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.01], tol=1e-7, max_iter=100_000)
    ref.fit(np.asfortranarray(X), y)
    np.testing.assert_array_equal(ours.model_.coef_, ref.coef_)  # same solver input
    assert type(ours.model_) is CoxnetSurvivalAnalysis and "_pre_fit" not in vars(ours.model_)
    np.testing.assert_allclose(Xf, X, rtol=0, atol=4 * np.finfo(float).eps * np.abs(X).max())
    # a failing fit (invalid l1_ratio is checked after the preparation) still restores X
    Xf = np.asfortranarray(X)
    with pytest.raises(ValueError, match="l1_ratio"):
        get_model("coxnet", l1_ratio=5.0, alpha=0.01).fit(Xf, y)
    np.testing.assert_allclose(Xf, X, rtol=0, atol=4 * np.finfo(float).eps * np.abs(X).max())


def _survival_data(n: int = 600, p: int = 5, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    t = rng.exponential(np.exp(-X[:, 0])) * 10 + 0.01
    c = rng.exponential(15, n)
    return X, Surv.from_arrays(t <= c, np.minimum(t, c))


def test_rsf_one_pass_equals_predict_and_predict_survival():
    X, y = _survival_data()
    rsf = get_model("rsf", n_estimators=12, random_state=0, n_jobs=1).fit(X[:400], y[:400])
    times = np.quantile(y["time"], [0.0, 0.1, 0.5, 0.9]) - [1.0, 0, 0, 0]  # one before all
    X_test = np.asfortranarray(X[400:], dtype=np.float32)
    risk, surv = rsf.predict_risk_and_survival(X_test, times, batch_size=37)
    np.testing.assert_array_equal(risk, rsf.model_.predict(X[400:]))
    np.testing.assert_array_equal(surv, rsf.predict_survival(X[400:], times))
    assert np.all(surv[:, 0] == 1.0)


@pytest.mark.parametrize("model", ["coxph", "coxnet", "gbsa", "weibull_aft"])
def test_batched_risk_and_survival_equal_unbatched(model):
    X, y = _survival_data(n=300)
    est = get_model(model, random_state=0).fit(np.asfortranarray(X[:200]), y[:200])
    times = np.quantile(y["time"], [0.2, 0.5, 0.8])
    risk, surv = est.predict_risk_and_survival(np.asfortranarray(X[200:]), times, batch_size=7)
    np.testing.assert_allclose(risk, est.predict(X[200:]), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(surv, est.predict_survival(X[200:], times), rtol=1e-12)


def test_gbsa_float32_quantile_dmatrix_equals_float64_dmatrix():
    import xgboost as xgb

    from survival_framework.xgboost_cox import CoxObjective

    X, y = _survival_data(n=2000, p=6)
    est = get_model("gbsa", n_estimators=20, random_state=0)
    assert est.input_dtype == np.float32 and model_input_dtype("gbsa", {}) == np.float32
    est.fit(np.asfortranarray(X, dtype=np.float32), y)
    label = np.where(y["event"], y["time"], -y["time"])
    ref = xgb.train(
        {
            "objective": "survival:cox",
            "tree_method": "hist",
            "eta": 0.1,
            "max_depth": 3,
            "max_bin": 256,
            "min_child_weight": 1e-3,
            "lambda": 1.0,
            "seed": 0,
            "nthread": 1,
            "verbosity": 0,
            "base_score": 1.0,
        },
        xgb.DMatrix(X, label=label),  # the previous input: float64 values in a DMatrix
        num_boost_round=20,
        obj=CoxObjective(label),  # the model's objective (tests/test_xgboost_cox.py)
    )
    np.testing.assert_array_equal(
        est._linear_predictor(X), ref.predict(xgb.DMatrix(X), output_margin=True)
    )


def test_model_input_dtype_never_raises():
    assert model_input_dtype("coxph", {}) == np.float64
    assert model_input_dtype("rsf", {}) == np.float32
    assert model_input_dtype("coxnet", {"no_such_param": 1}) == np.float64


@pytest.fixture
def fold_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 1000
    df = pd.DataFrame(
        {
            ROW_COL: np.arange(n, dtype=np.int64)[::-1],
            "id": [f"c{i}" for i in range(n)],
            "time": rng.exponential(5, n),
            "event": rng.integers(0, 2, n).astype(np.int8),
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, n).astype(np.int64),
            "c": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        }
    )
    path = tmp_path / "train.parquet"
    df.to_parquet(path, index=False, row_group_size=300)  # several row groups
    return path


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_read_fold_equals_read_table(fold_file, dtype):
    keys = [ROW_COL, "id", "time", "event"]
    fold = read_fold(fold_file, ["c", "a", "b"], "time", "event", keys, dtype=dtype)
    df = read_table(fold_file)
    assert fold.X.flags.f_contiguous and fold.X.dtype == dtype
    expected = df[["c", "a", "b"]].to_numpy(dtype=float).astype(dtype)
    np.testing.assert_array_equal(fold.X, expected)  # NaN where null, same values
    np.testing.assert_array_equal(fold.time, df["time"].to_numpy(float))
    np.testing.assert_array_equal(fold.event, df["event"].to_numpy().astype(bool))
    pd.testing.assert_frame_equal(fold.keys.to_pandas(), df[keys])  # same dtypes
    same = FoldArrays.from_frame(df, ["c", "a", "b"], "time", "event", keys, dtype=dtype)
    np.testing.assert_array_equal(same.X, fold.X)
    assert len(fold) == len(df)
