"""Proportional-hazards diagnostics: residuals and tests against lifelines, scaling, plots,
and robustness (aliased columns dropped, fallback penalizer, failures reported, not raised)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import proportional_hazard_test

from conftest import copy_workflow, snakemake
from survival_framework import ph, preprocess
from survival_framework.schema import validate_survival_table


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
        "status",
        "reason",
    ]
    assert list(table.columns) == list(ph.TABLE_COLUMNS)
    assert (table["flagged"] == (table["p_value"] < 0.05)).all()
    assert (table["status"] == ph.STATUS_OK).all() and (table["reason"] == "").all()


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


# --------------------------------------------------------------------------- robustness

PNG = b"\x89PNG\r\n\x1a\n"


def _collinear(df: pd.DataFrame) -> pd.DataFrame:
    """GBSG2 plus columns that are exact linear combinations of others: a copy of a numeric,
    the sum of two numerics and a relabelled categorical (its one-hot columns copy tgrade's)."""
    return df.assign(
        age_copy=df["age"],
        size_plus_nodes=df["tsize"] + df["pnodes"],
        grade_label=df["tgrade"].map({"I": "g1", "II": "g2", "III": "g3"}),
    )


def _validated(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    return validate_survival_table(df, "data.csv", "time", "event")


def test_aliased_columns_finds_copies_sums_relabellings_and_keeps_near_collinear():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(size=300)
    grp = rng.choice(3, size=300)
    X = pd.DataFrame(
        {
            "a": a,
            "b": b,
            "near": a + 1e-4 * rng.normal(size=300),  # collinear, not aliased: kept
            "a_copy": 2.0 * a + 3.0,  # constants do not matter in a Cox model
            "a_plus_b": a - b,
            "g=1": (grp == 1).astype(float),
            "g=2": (grp == 2).astype(float),
            "h=2": (grp == 2).astype(float),
            "not_g0": (grp != 0).astype(float),  # = g=1 + g=2
            "const": np.ones(300),
        }
    )
    aliased = ph.aliased_columns(X)
    assert list(aliased) == ["a_copy", "a_plus_b", "h=2", "not_g0", "const"]
    assert aliased["a_copy"] == ["a"] and sorted(aliased["a_plus_b"]) == ["a", "b"]
    assert aliased["h=2"] == ["g=2"] and sorted(aliased["not_g0"]) == ["g=1", "g=2"]
    assert aliased["const"] == []
    assert ph.aliased_columns(X.drop(columns=list(aliased))) == {}


def test_aliased_columns_are_dropped_recorded_and_the_tests_computed(gbsg2):
    """GBSG2 with collinear columns: lifelines alone fails; the test drops the aliased columns,
    records them, and computes exactly the tests of the table without them."""
    clean, schema = _validated(_collinear(gbsg2))
    state = preprocess.fit_state(clean, schema["numeric"], schema["categorical"])
    design = preprocess.transform(clean, state)
    with pytest.raises(ConvergenceError):  # what the rule used to die of
        ph.fit_cox(design, clean["time"].to_numpy(float), clean["event"].to_numpy(bool))

    table, details = ph.run_ph_tests(clean, schema, penalizer=0.0)
    assert list(table.columns) == list(ph.TABLE_COLUMNS)
    dropped = table[table["status"] == ph.STATUS_DROPPED].set_index("covariate")
    assert sorted(dropped.index) == [
        "age_copy",
        "grade_label=g1",
        "grade_label=g3",
        "size_plus_nodes",
    ]  # g2 is the reference level of both categoricals
    assert "aliased with age " in dropped.loc["age_copy", "reason"]
    assert "aliased with tgrade=I " in dropped.loc["grade_label=g1", "reason"]
    assert {"tsize", "pnodes"} <= set(details["dropped_aliased"]["size_plus_nodes"])
    assert dropped["p_value"].isna().all() and not dropped["flagged"].any()
    assert details["status"] == ph.STATUS_OK and details["penalizer_used"] == 0.0
    assert details["fit_attempts"] == [] and details["reason"] == ""
    assert set(details["dropped_aliased"]) == set(dropped.index)
    json.dumps({k: v for k, v in details.items() if k not in ("event_times", "beta_t", "coef")})

    ref, _ = ph.run_ph_tests(*_validated(gbsg2), penalizer=0.0)
    tested = table[table["status"] == ph.STATUS_OK].reset_index(drop=True)
    assert (ref["status"] == ph.STATUS_OK).all() and len(ref) == len(tested)
    assert table["df"].dtype == "Int64" and ref["df"].dtype == "Int64"
    pd.testing.assert_frame_equal(tested, ref, rtol=1e-6)


def test_a_fit_that_fails_falls_back_to_a_penalizer_and_says_so(gbsg2):
    """Near-collinear (not aliased) columns and penalizer 0: lifelines does not converge, a
    larger penalizer is used."""
    rng = np.random.default_rng(1)
    df = gbsg2.assign(age_noisy=gbsg2["age"] + 1e-3 * rng.normal(size=len(gbsg2)))
    clean, schema = _validated(df)
    table, details = ph.run_ph_tests(clean, schema, penalizer=0.0)
    assert details["dropped_aliased"] == {} and "age_noisy" in details["covariates"]
    assert details["status"] == ph.STATUS_OK
    assert details["penalizer_used"] in ph.FALLBACK_PENALIZERS
    assert details["fit_attempts"] == [
        {
            "penalizer": 0.0,
            "error": "ConvergenceWarning: Newton-Raphson failed to converge sufficiently.",
        }
    ]
    glob = table[table["covariate"] == ph.GLOBAL]
    assert glob["reason"].str.startswith(f"penalizer {details['penalizer_used']:g} used").all()
    assert glob["p_value"].notna().all()


def _one_event_time(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(time=np.where(df["event"] == 1, 365.0, df["time"] + 1000.0))


@pytest.mark.parametrize(
    "case, expected",
    [
        ("all events at one time", r"all 299 event\(s\) at one time \(365\)"),
        ("one event", r"all 1 event\(s\) at one time"),
        ("broken schema", r"KeyError: .*no_such_column"),
    ],
)
def test_untestable_data_gives_failed_rows_and_a_placeholder_plot(gbsg2, tmp_path, case, expected):
    df = _collinear(gbsg2)
    if case == "all events at one time":
        df = _one_event_time(df)
    clean, schema = _validated(df)
    if case == "one event":
        clean = clean.assign(event=(np.arange(len(clean)) == 5).astype(np.int8))
    if case == "broken schema":
        schema = {**schema, "numeric": [*schema["numeric"], "no_such_column"]}
    table, details = ph.run_ph_tests(clean, schema, transforms=("rank", "km"))
    assert details["status"] == ph.STATUS_FAILED
    assert pd.Series([details["reason"]]).str.contains(expected).all()
    failed = table[table["status"] == ph.STATUS_FAILED]
    assert list(failed["covariate"]) == [ph.GLOBAL, ph.GLOBAL]
    assert list(failed["transform"]) == ["rank", "km"]
    assert failed["p_value"].isna().all() and failed["test_statistic"].isna().all()
    assert not failed["flagged"].any() and (failed["reason"] == details["reason"]).all()
    if case != "broken schema":  # dropped before the failure, still reported
        assert "age_copy" in set(table.loc[table["status"] == ph.STATUS_DROPPED, "covariate"])
    assert set(table["status"]) <= {ph.STATUS_FAILED, ph.STATUS_DROPPED}

    png = tmp_path / "res.png"
    assert ph.plot_scaled_residuals(details, table, str(png)) == []
    ref = tmp_path / "ref.png"  # the placeholder is exactly the reason's text figure
    ph.plot_message(str(ref), "Proportional-hazards tests could not be computed", details["reason"])
    assert png.read_bytes()[:8] == PNG and png.read_bytes() == ref.read_bytes()


def test_failed_table_has_the_documented_shape():
    table = ph.failed_table("ZeroDivisionError: float division by zero", ("km",))
    assert list(table.columns) == list(ph.TABLE_COLUMNS)
    assert table.iloc[0].to_dict() == {
        "covariate": ph.GLOBAL,
        "transform": "km",
        "test_statistic": pytest.approx(np.nan, nan_ok=True),
        "df": pytest.approx(np.nan, nan_ok=True),
        "p_value": pytest.approx(np.nan, nan_ok=True),
        "flagged": False,
        "status": ph.STATUS_FAILED,
        "reason": "ZeroDivisionError: float division by zero",
    }


def _ph_config(wd: Path, data: str) -> str:
    """A run config: the test config, coxph only (3 folds), ``data`` as input, penalizer 0."""
    cfg = yaml.safe_load((wd / "config/test/config.yaml").read_text())
    cfg["data"]["path"] = data
    cfg["ph"] = {"penalizer": 0.0}
    for name, model in cfg["models"].items():
        model["enabled"] = name == "coxph"
    path = wd / "config/test/ph_robustness.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path.relative_to(wd))


@pytest.mark.integration
def test_workflow_finishes_with_collinear_categoricals_and_reports_a_failed_test(gbsg2, tmp_path):
    """rule all on a table with aliased columns exits 0 with the tests computed; a table whose
    tests cannot be computed exits 0 too, with the reason in the table and the HTML report."""
    wd = copy_workflow(tmp_path / "wf")
    (wd / "resources").mkdir()
    _collinear(gbsg2).to_csv(wd / "resources/collinear.csv", index=False)
    proc = snakemake(wd, "--cores", "2", "--configfile", _ph_config(wd, "resources/collinear.csv"))
    assert "test_proportional_hazards: 4 constant/aliased design column(s)" in proc.stderr
    table = pd.read_csv(wd / "results/ph/schoenfeld.csv")
    assert list(table.columns) == list(ph.TABLE_COLUMNS)
    assert set(table.loc[table["status"] == "dropped", "covariate"]) == {
        "age_copy",
        "size_plus_nodes",
        "grade_label=g1",
        "grade_label=g3",
    }
    ok = table[table["status"] == "ok"]
    assert ok["p_value"].notna().all() and (ok["covariate"] == ph.GLOBAL).sum() == 2
    html = (wd / "results/report/ph_tests.html").read_text()
    assert "aliased with age (exact linear dependence" in html
    prov = json.loads((wd / "results/ph/provenance.json").read_text())["ph"]
    assert prov["status"] == "ok" and "age_copy" in prov["dropped_aliased"]
    assert (wd / "results/leaderboard.csv").exists()  # the rest of the run is there

    _one_event_time(_collinear(gbsg2)).to_csv(wd / "resources/one_time.csv", index=False)
    targets = ("results/ph/schoenfeld.csv", "results/report/ph_tests.html")
    cfg = _ph_config(wd, "resources/one_time.csv")
    proc = snakemake(wd, *targets, "--cores", "2", "--configfile", cfg)  # targets first
    assert "test_proportional_hazards: could not be computed: all 299 event(s)" in proc.stderr
    table = pd.read_csv(wd / "results/ph/schoenfeld.csv")
    failed = table[table["status"] == "failed"]
    assert list(failed["covariate"]) == [ph.GLOBAL, ph.GLOBAL] and failed["p_value"].isna().all()
    reason = failed["reason"].iloc[0]
    assert reason.startswith("all 299 event(s) at one time (365)")
    assert reason in (wd / "results/report/ph_tests.html").read_text()
    assert (wd / "results/ph/scaled_schoenfeld.png").read_bytes()[:8] == PNG
    prov = json.loads((wd / "results/ph/provenance.json").read_text())["ph"]
    assert prov["status"] == "failed" and prov["reason"] == reason
    log = (wd / "logs/ph/test_proportional_hazards.log").read_text()
    assert "proportional-hazards tests could not be computed: all 299 event(s)" in log
