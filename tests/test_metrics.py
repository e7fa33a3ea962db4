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
    y_tr, y_te, risk, surv, times = fitted
    out = metrics.evaluate_predictions(y_tr, y_te, risk, surv, times, times[-1])
    assert set(out) == set(metrics.METRIC_NAMES)
    assert all(np.isfinite(v) for v in out.values())
