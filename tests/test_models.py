import numpy as np
import pandas as pd
import pytest
from sksurv.linear_model import CoxPHSurvivalAnalysis

from survival_framework import metrics
from survival_framework.models import MODEL_NAMES, WeibullAFT, get_model, model_seed

LIGHT = {
    "rsf": {"n_estimators": 20, "min_samples_leaf": 10, "n_time_bins": 30},
    "gbsa": {"n_estimators": 20, "max_depth": 2},
}


@pytest.fixture(scope="module")
def data(gbsg2):
    num = gbsg2[["age", "pnodes", "tsize", "progrec", "estrec"]].to_numpy(float)
    X = (num - num.mean(0)) / num.std(0)
    y = metrics.to_structured(gbsg2["event"], gbsg2["time"])
    times = np.quantile(y["time"][y["event"]], np.linspace(0.1, 0.8, 12))
    return X[:500], y[:500], X[500:], y[500:], times


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fit_predict_shapes_and_sanity(data, name):
    X_tr, y_tr, X_te, y_te, times = data
    model = get_model(name, random_state=0, **LIGHT.get(name, {})).fit(X_tr, y_tr)
    risk = model.predict(X_te)
    surv = model.predict_survival(X_te, times, batch_size=37)  # several batches
    assert risk.shape == (len(X_te),) and surv.shape == (len(X_te), len(times))
    assert np.all((surv >= 0) & (surv <= 1))
    assert np.all(np.diff(surv, axis=1) <= 1e-12)  # non-increasing in time
    np.testing.assert_allclose(surv, model.predict_survival(X_te, times, batch_size=10_000))
    if model.uses_features:  # the reference model km has C exactly 0.5 (test_reference_km_*)
        assert metrics.harrell_c(y_te["event"], y_te["time"], risk) > 0.6


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_survival_at_own_times_is_the_curve_at_each_time(data, name):
    """``predict_risk_and_survival(..., at=t)`` gives S(t_i | x_i) on the model's own curve:
    the one-row, one-time predict_survival at each row's time (also at times before any
    training time and after the last), and leaves risk and the grid unchanged."""
    X_tr, y_tr, X_te, y_te, times = data
    model = get_model(name, random_state=0, **LIGHT.get(name, {})).fit(X_tr, y_tr)
    at = y_te["time"].copy()
    at[:3] = [0.5, y_tr["time"].max() * 3, y_tr["time"].min()]
    risk, surv, surv_at = model.predict_risk_and_survival(X_te, times, batch_size=41, at=at)
    r0, s0 = model.predict_risk_and_survival(X_te, times, batch_size=41)
    np.testing.assert_array_equal(risk, r0)
    np.testing.assert_array_equal(surv, s0)
    expected = [model.predict_survival(X_te[i : i + 1], at[i : i + 1])[0, 0] for i in range(60)]
    np.testing.assert_allclose(surv_at[:60], expected, rtol=1e-12, atol=1e-15)
    assert surv_at[0] == pytest.approx(1.0) or name == "weibull_aft"  # before any event time
    with pytest.raises(ValueError, match="one time per row"):
        model.predict_risk_and_survival(X_te, times, at=at[:-1])


def test_reference_km_is_the_kaplan_meier_curve_with_constant_risk(data):
    """Hand computation of the product-limit estimate on the training rows, and the
    constant risk's concordance and AUC: every comparable pair is tied, so 0.5 exactly."""
    X_tr, y_tr, X_te, y_te, times = data
    km = get_model("km").fit(X_tr, y_tr)
    assert not km.uses_features
    expected = []
    for t in times:
        s = 1.0
        for u in np.unique(y_tr["time"][y_tr["event"]]):
            if u <= t:
                d = np.sum(y_tr["event"] & (y_tr["time"] == u))
                s *= 1.0 - d / np.sum(y_tr["time"] >= u)
        expected.append(s)
    surv = km.predict_survival(np.empty((len(y_te), 0)), times)
    np.testing.assert_allclose(surv, np.tile(expected, (len(y_te), 1)), rtol=1e-12)
    risk = km.predict(np.empty((len(y_te), 0)))
    assert np.all(risk == 0.0)
    tau = float(times[-1])
    scores = metrics.evaluate_predictions(y_tr, y_te, risk, surv, times, tau)
    assert scores["harrell_c"] == 0.5 and scores["uno_c"] == 0.5
    assert scores["mean_auc"] == pytest.approx(0.5, abs=1e-12)


def test_random_models_are_reproducible(data):
    X_tr, y_tr, X_te, _, times = data
    a = get_model("rsf", random_state=5, **LIGHT["rsf"]).fit(X_tr, y_tr).predict(X_te)
    b = get_model("rsf", random_state=5, **LIGHT["rsf"]).fit(X_tr, y_tr).predict(X_te)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["numpy", "sksurv"])
def test_coxph_survival_matches_sksurv(data, solver):
    X_tr, y_tr, X_te, _, times = data
    ours = get_model("coxph", alpha=0.0, solver=solver).fit(X_tr, y_tr)
    ref = CoxPHSurvivalAnalysis(alpha=0.0).fit(X_tr, y_tr)
    np.testing.assert_allclose(ours.predict(X_te), ref.predict(X_te), rtol=1e-9)
    ref_surv = np.vstack([fn(times) for fn in ref.predict_survival_function(X_te)])
    np.testing.assert_allclose(ours.predict_survival(X_te, times), ref_surv, atol=1e-9)


def test_weibull_closed_form_matches_lifelines(data):
    X_tr, y_tr, X_te, _, times = data
    model = WeibullAFT(penalizer=0.01, solver="lifelines").fit(X_tr, y_tr)
    df = pd.DataFrame(X_te, columns=[f"x{i}" for i in range(X_te.shape[1])])
    ref = model.model_.predict_survival_function(df, times=times).to_numpy().T
    np.testing.assert_allclose(model.predict_survival(X_te, times), ref, atol=1e-9)


def test_registry_errors_list_valid_names():
    with pytest.raises(ValueError, match="coxph"):
        get_model("nope")
    with pytest.raises(ValueError, match="does not accept"):
        get_model("coxph", n_estimators=3)


def test_model_seed_is_stable_and_distinct():
    assert model_seed(42, "rsf", 0) == model_seed(42, "rsf", 0)
    seeds = {model_seed(42, m, k) for m in MODEL_NAMES for k in range(5)}
    assert len(seeds) == 5 * len(MODEL_NAMES)


def test_coxph_numpy_solver_rejects_efron(data):
    X_tr, y_tr, *_ = data
    with pytest.raises(ValueError, match="breslow"):
        get_model("coxph", ties="efron", solver="numpy").fit(X_tr, y_tr)
    efron = get_model("coxph", ties="efron", solver="sksurv").fit(X_tr, y_tr)
    assert np.all(np.isfinite(efron.coef_))


def test_gbsa_xgboost_as_accurate_as_sksurv(data):
    """The fast default (XGBoost hist, survival:cox) vs scikit-survival's exact boosting."""
    X_tr, y_tr, X_te, y_te, times = data
    scores = {}
    for impl in ("xgboost", "sksurv"):
        model = get_model("gbsa", random_state=0, implementation=impl, n_estimators=50)
        model.fit(X_tr, y_tr)
        risk = model.predict(X_te)
        surv = model.predict_survival(X_te, times)
        scores[impl] = (
            metrics.harrell_c(y_te["event"], y_te["time"], risk),
            metrics.integrated_brier(y_tr, y_te, surv, times),
        )
    assert abs(scores["xgboost"][0] - scores["sksurv"][0]) < 0.03, scores
    assert abs(scores["xgboost"][1] - scores["sksurv"][1]) < 0.01, scores
    with pytest.raises(ValueError, match="implementation"):
        get_model("gbsa", implementation="lightgbm").fit(X_tr, y_tr)


def test_gbsa_xgboost_is_reproducible_and_threads_do_not_change_it(data):
    X_tr, y_tr, X_te, *_ = data
    kw = {"random_state": 3, "n_estimators": 20, "subsample": 0.8}
    a = get_model("gbsa", n_jobs=1, **kw).fit(X_tr, y_tr).predict(X_te)
    b = get_model("gbsa", n_jobs=2, **kw).fit(X_tr, y_tr).predict(X_te)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_rsf_max_samples_cap_is_noop_on_small_data(data):
    X_tr, y_tr, X_te, _, times = data
    capped = get_model("rsf", random_state=2, max_samples=5000, **LIGHT["rsf"])
    full = get_model("rsf", random_state=2, **LIGHT["rsf"])
    np.testing.assert_array_equal(
        capped.fit(X_tr, y_tr).predict_survival(X_te, times),
        full.fit(X_tr, y_tr).predict_survival(X_te, times),
    )
    small = get_model("rsf", random_state=2, max_samples=100, **LIGHT["rsf"]).fit(X_tr, y_tr)
    assert not np.allclose(small.predict(X_te), full.predict(X_te))
