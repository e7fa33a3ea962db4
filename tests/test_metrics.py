import numpy as np
import pytest
from lifelines.utils import concordance_index
from sksurv.metrics import (
    brier_score,
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)

from survival_framework import metrics
from survival_framework.models import get_model


@pytest.fixture(scope="module")
def fitted(gbsg2):
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(gbsg2))
    num = gbsg2[["age", "pnodes", "tsize", "progrec", "estrec"]].to_numpy(float)
    X = (num - num.mean(0)) / num.std(0)
    y = metrics.to_structured(gbsg2["event"], gbsg2["time"])
    tr, te = idx[:480], idx[480:]
    model = get_model("coxph").fit(X[tr], y[tr])
    times = np.quantile(y["time"][te][y["event"][te]], np.linspace(0.1, 0.7, 8))
    return y[tr], y[te], model.predict(X[te]), model.predict_survival(X[te], times), times


def test_harrell_matches_sksurv_and_lifelines(fitted):
    _, y_te, risk, _, _ = fitted
    ours = metrics.harrell_c(y_te["event"], y_te["time"], risk)
    ref = concordance_index_censored(y_te["event"], y_te["time"], risk)[0]
    ll = concordance_index(y_te["time"], -risk, y_te["event"])
    assert ours == pytest.approx(ref, abs=1e-12)
    assert ours == pytest.approx(ll, abs=1e-6)
    assert 0.6 < ours < 0.8


def test_uno_matches_sksurv(fitted):
    y_tr, y_te, risk, _, times = fitted
    tau = times[-1]
    ref = concordance_index_ipcw(y_tr, y_te, risk, tau=tau)[0]
    assert metrics.uno_c(y_tr, y_te, risk, tau) == pytest.approx(ref, abs=1e-12)


def test_ibs_and_auc_match_sksurv_and_are_unchanged_by_admin_censoring(fitted):
    y_tr, y_te, _, surv, times = fitted
    ref_ibs = integrated_brier_score(y_tr, y_te, surv, times)
    ref_auc = cumulative_dynamic_auc(y_tr, y_te, 1 - surv, times)[1]
    assert metrics.integrated_brier(y_tr, y_te, surv, times) == pytest.approx(ref_ibs, abs=1e-12)
    assert metrics.mean_auc(y_tr, y_te, surv, times) == pytest.approx(ref_auc, abs=1e-12)
    # the Brier score at each grid time is unchanged by censoring after the grid
    _, b1 = brier_score(y_tr, y_te, surv, times)
    _, b2 = brier_score(y_tr, metrics.censor_after(y_te, times.max()), surv, times)
    np.testing.assert_allclose(b1, b2, atol=1e-12)


def test_ibs_of_perfect_and_useless_predictions(fitted):
    y_tr, y_te, _, surv, times = fitted
    useless = np.full_like(surv, 0.5)
    assert metrics.integrated_brier(y_tr, y_te, surv, times) < metrics.integrated_brier(
        y_tr, y_te, useless, times
    )


def test_evaluate_predictions_returns_all_metrics(fitted):
    """Every metric, each equal to its own function; the reference IBS of ibs_erv is
    scikit-survival's integrated Brier score of its Kaplan-Meier curve of the training rows;
    without each row's survival at its own time, D-calibration is missing."""
    from sksurv.nonparametric import kaplan_meier_estimator

    from survival_framework.calibration import d_calibration, ici

    y_tr, y_te, risk, surv, times = fitted
    tau = times[-1]
    # some survival probability per row (here the curve at the next grid time)
    col = np.searchsorted(times, y_te["time"]).clip(max=len(times) - 1)
    model_at = surv[np.arange(len(y_te)), col]
    out = metrics.evaluate_predictions(y_tr, y_te, risk, surv, times, tau, model_at)
    assert list(out) == list(metrics.METRIC_NAMES)
    assert all(np.isfinite(v) for v in out.values())
    km_t, km_s = kaplan_meier_estimator(y_tr["event"], y_tr["time"])
    km_curve = np.array([km_s[km_t <= t][-1] if np.any(km_t <= t) else 1.0 for t in times])
    km_ibs = integrated_brier_score(y_tr, y_te, np.tile(km_curve, (len(y_te), 1)), times)
    assert out["ibs_erv"] == pytest.approx(1 - out["ibs"] / km_ibs, abs=1e-12)
    assert out["ibs_erv"] > 0  # the Cox model beats the Kaplan-Meier curve here
    assert (out["dcal_stat"], out["dcal_p"]) == d_calibration(y_te, model_at, 10)
    for name, q in (("ici_25", 0.25), ("ici_50", 0.5), ("ici_75", 0.75)):
        j = int(round(q * (len(times) - 1)))
        # the same fit on the concordance's sort of the test times (another order within
        # equal times, so sums in another order)
        assert out[name] == pytest.approx(ici(y_te, surv[:, j], times[j]), rel=1e-12)
    without = metrics.evaluate_predictions(y_tr, y_te, risk, surv, times, tau)
    assert np.isnan(without["dcal_stat"]) and np.isnan(without["dcal_p"])
    assert {k: v for k, v in without.items() if not k.startswith("dcal")} == {
        k: v for k, v in out.items() if not k.startswith("dcal")
    }
