"""Proportional-hazards diagnostics: residuals and tests against lifelines, scaling, plots."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import proportional_hazard_test

from survival_framework import ph


def _table(
    rng: np.random.Generator, n: int, nonph: bool = False
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Covariates x0..x3 (x3 binary); times rounded so that events are tied.

    With ``nonph``, x1's log hazard ratio flips sign at t = 30 (a strong PH violation).
    """
    X = rng.normal(size=(n, 4))
    X[:, 3] = (X[:, 3] > 0.3).astype(float)
    if nonph:
        # piecewise hazard: x1 effect +1 before t0, -1 after
        t0 = 30.0
        u = rng.exponential(size=n)
        base = np.exp(0.5 * X[:, 0])
        h1 = base * np.exp(X[:, 1]) / 50
        h2 = base * np.exp(-X[:, 1]) / 50
        t = np.where(u < h1 * t0, u / h1, t0 + (u - h1 * t0) / h2)
    else:
        t = rng.exponential(np.exp(-(0.5 * X[:, 0] + 0.3 * X[:, 3]))) * 50
    c = rng.exponential(80, size=n)
    time_ = np.round(np.minimum(t, c)) + 1.0
    event = t <= c
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(4)]), time_, event


def _lifelines_df(X: pd.DataFrame, t: np.ndarray, e: np.ndarray) -> pd.DataFrame:
    return X.assign(__T=t, __E=e.astype(int))


def test_residuals_match_lifelines_with_ties():
    X, t, e = _table(np.random.default_rng(0), 800)
    assert len(np.unique(t[e])) < e.sum()  # there are tied event times
    cph = ph.fit_cox(X, t, e)
    ref = cph.compute_residuals(_lifelines_df(X, t, e), "scaled_schoenfeld")
    et, resid = ph.schoenfeld_residuals(X.to_numpy(), t, e, cph.params_.to_numpy())
    scaled = ph.scaled_schoenfeld_residuals(resid, cph.variance_matrix_.to_numpy())
    ref_t = t[ref.index.to_numpy()]
    np.testing.assert_allclose(np.sort(ref_t), et)
    # order within tied times is arbitrary: compare after sorting rows by (time, values)
    a = np.lexsort(np.c_[ref.to_numpy(), ref_t][:, ::-1].T)
    b = np.lexsort(np.c_[scaled, et][:, ::-1].T)
    np.testing.assert_allclose(scaled[b], ref.to_numpy()[a], rtol=1e-9, atol=1e-9)


def test_table_matches_lifelines_test_and_has_global_rows():
    X, t, e = _table(np.random.default_rng(1), 600)
    cph = ph.fit_cox(X, t, e)
    _, resid = ph.schoenfeld_residuals(X.to_numpy(), t, e, cph.params_.to_numpy())
    scaled = ph.scaled_schoenfeld_residuals(resid, cph.variance_matrix_.to_numpy())
    table = ph.proportional_hazards_table(cph, X, t, e, scaled, ("rank", "km"), alpha=0.05)
    ref = proportional_hazard_test(cph, _lifelines_df(X, t, e), time_transform=["rank", "km"])
    ref = ref.summary
    for _, row in table[table["covariate"] != ph.GLOBAL].iterrows():
        expected = ref.loc[(row["covariate"], row["transform"])]
        assert row["test_statistic"] == pytest.approx(expected["test_statistic"], rel=1e-8)
        assert row["p_value"] == pytest.approx(expected["p"], rel=1e-8)
    glob = table[table["covariate"] == ph.GLOBAL]
    assert list(glob["transform"]) == ["rank", "km"] and (glob["df"] == 4).all()
    assert list(table.columns) == [
        "covariate",
        "transform",
        "test_statistic",
        "df",
        "p_value",
        "flagged",
    ]
    assert (table["flagged"] == (table["p_value"] < 0.05)).all()


def test_global_test_equals_per_covariate_test_for_one_covariate():
    X, t, e = _table(np.random.default_rng(2), 500)
    X1 = X[["x0"]]
    cph = ph.fit_cox(X1, t, e)
    _, resid = ph.schoenfeld_residuals(X1.to_numpy(), t, e, cph.params_.to_numpy())
    scaled = ph.scaled_schoenfeld_residuals(resid, cph.variance_matrix_.to_numpy())
    table = ph.proportional_hazards_table(cph, X1, t, e, scaled, ("km",))
    assert table.loc[0, "test_statistic"] == pytest.approx(
        table.loc[1, "test_statistic"], rel=1e-10
    )


def test_global_test_matches_the_unscaled_residual_formula():
    """R cox.zph (survival < 3): T = (g'S) V (S'g) d / g'g with unscaled residuals S."""
    X, t, e = _table(np.random.default_rng(3), 700)
    cph = ph.fit_cox(X, t, e)
    V = cph.variance_matrix_.to_numpy()
    _, S = ph.schoenfeld_residuals(X.to_numpy(), t, e, cph.params_.to_numpy())
    g = ph.transformed_event_times("rank", t, e)
    gc = g - g.mean()
    expected = float((gc @ S) @ V @ (S.T @ gc)) * len(S) / float(gc @ gc)
    stat, dof = ph.global_test(g, ph.scaled_schoenfeld_residuals(S, V), V)
    assert stat == pytest.approx(expected, rel=1e-8) and dof == 4


def test_detects_a_time_varying_effect_and_not_a_constant_one():
    X, t, e = _table(np.random.default_rng(4), 3000, nonph=True)
    clean = X.assign(time=t, event=e.astype(np.int8), _row=np.arange(len(t)))
    schema = {
        "duration_col": "time",
        "event_col": "event",
        "numeric": ["x0", "x1", "x2", "x3"],
        "categorical": [],
    }
    table, details = ph.run_ph_tests(clean, schema, alpha=0.01, max_rows=10**6)
    km = table[table["transform"] == "km"].set_index("covariate")
    assert km.loc["x1", "flagged"] and km.loc["x1", "p_value"] < 1e-6
    assert km.loc[ph.GLOBAL, "flagged"]
    assert km.loc["x2", "p_value"] > 0.01  # no effect at all: not flagged here
    assert details["n_rows_used"] == 3000 and not details["subsampled"]


def test_subsample_above_max_rows_keeps_event_share(tmp_path):
    X, t, e = _table(np.random.default_rng(5), 4000)
    clean = X.assign(time=t, event=e.astype(np.int8), _row=np.arange(len(t)))
    clean["grp"] = np.where(np.arange(len(t)) % 3 == 0, "a", "b")
    schema = {
        "duration_col": "time",
        "event_col": "event",
        "numeric": ["x0", "x1", "x2", "x3"],
        "categorical": ["grp"],
    }
    table, details = ph.run_ph_tests(clean, schema, max_rows=1000, seed=3)
    assert details["subsampled"] and details["n_rows_used"] == 1000
    assert details["n_events_used"] / 1000 == pytest.approx(e.mean(), abs=0.002)
    assert "grp=b" in set(table["covariate"]) or "grp=a" in set(table["covariate"])
    png = tmp_path / "res.png"
    table.loc[table["covariate"] == "x0", "flagged"] = True  # force a panel
    assert ph.plot_scaled_residuals(details, table, str(png)) == ["x0"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_residuals_scale_linearly():
    """200,000 rows (lifelines' loop needs minutes): the vectorised residuals take seconds."""
    rng = np.random.default_rng(6)
    n, p = 200_000, 8
    X = rng.normal(size=(n, p))
    t = np.round(rng.exponential(50, size=n)) + 1
    e = rng.random(n) < 0.6
    start = time.perf_counter()
    et, resid = ph.schoenfeld_residuals(X, t, e, np.full(p, 0.1))
    assert time.perf_counter() - start < 10
    assert resid.shape == (e.sum(), p) and np.all(np.diff(et) >= 0)
    # residuals at each event time sum to ~0 in expectation under the model; finite here
    assert np.isfinite(resid).all()
