"""Tests of survival_framework.calibration: D-calibration and the ICI (E50, E90, Emax)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from survival_framework.calibration import (
    calibration_errors,
    d_calibration,
    d_calibration_histogram,
    ici,
    rcs_basis,
    rcs_knots,
)
from survival_framework.outcome import to_structured

# --------------------------------------------------------------------------------------
# D-calibration
# --------------------------------------------------------------------------------------


def test_d_calibration_hand_computed():
    """Four bins [0, .25), [.25, .5), [.5, .75), [.75, 1]; Haider et al. (2020), section
    "D-calibration" with censored patients: an event adds 1 to the bin of S(t); a
    censored row adds (s - lower edge) / s to its bin and (1/B) / s to each bin below."""
    event = np.array([True, True, True, False, False, False, False])
    s = np.array([0.1, 1.0, 0.5, 0.6, 0.0, 1.0, 0.2])
    expected = np.zeros(4)
    expected[0] += 1  # event at 0.1
    expected[3] += 1  # event at 1.0: the top bin is closed at 1
    expected[2] += 1  # event at 0.5: an edge belongs to the bin above it
    expected[2] += (0.6 - 0.5) / 0.6  # censored at 0.6 ...
    expected[:2] += 0.25 / 0.6  # ... and (1/4) / 0.6 to each of the two bins below
    expected[0] += 1  # censored at 0: all of it in the lowest bin
    expected += 0.25  # censored at 1: uniform
    expected[0] += 1  # censored at 0.2: (0.2 - 0) / 0.2 in its bin, no bin below
    y = to_structured(event, np.arange(1.0, 8.0))
    counts = d_calibration_histogram(y, s, n_bins=4)
    np.testing.assert_allclose(counts, expected, rtol=0, atol=1e-14)
    assert counts.sum() == pytest.approx(7.0, abs=1e-14)
    stat, pvalue = d_calibration(y, s, n_bins=4)
    e = 7 / 4
    assert stat == pytest.approx(np.sum((expected - e) ** 2 / e), rel=1e-13)
    assert pvalue == pytest.approx(stats.chi2.sf(stat, 3), rel=1e-13)


def _survivaleval_histogram(s, event, n_bins):
    """Transcription (loops, top bin first) of the binning in the SurvivalEVAL package:
    github.com/shi-ang/SurvivalEVAL, SurvivalEVAL/Evaluations/DistributionCalibration.py,
    ``d_calibration`` and ``create_censor_hist`` (quantiles ``linspace(1, 0, B + 1)``,
    events by ``np.digitize`` with probability 1 in the first bin; a censored row: its
    bin gets (s - lower) / s, every later (lower) bin 1 / (B s); s == 1 uniform; s == 0
    all in its bin). Returned lowest bin first, as ours."""
    q = np.linspace(1, 0, n_bins + 1)
    hist = np.zeros(n_bins)
    for si, ei in zip(s, event, strict=True):
        if ei:
            pos = max(int(np.digitize(si, q)), 1)
            hist[pos - 1] += 1
            continue
        if si == 1:
            hist += 1 / n_bins
            continue
        for i in range(n_bins):
            if q[i] > si >= q[i + 1]:
                hist[i] += (si - q[i + 1]) / si if si != 0 else 1
                hist[i + 1 :] += 1 / (n_bins * si) if si != 0 else 0
                break
    return hist[::-1]


@pytest.mark.parametrize("n_bins", [5, 10, 20])
def test_d_calibration_matches_survivaleval_transcription(n_bins):
    """Independent reference: SurvivalEVAL's D-calibration binning (transcribed above) and
    ``scipy.stats.chisquare`` of its histogram (what SurvivalEVAL returns). Random values
    avoid the interior bin edges (SurvivalEVAL's edges from ``linspace(1, 0, B + 1)`` may
    differ from k / B by an ulp); 0 and 1 are included."""
    rng = np.random.default_rng(n_bins)
    n = 600
    s = rng.random(n)
    s[:6] = [0.0, 1.0, 0.0, 1.0, 1e-12, 1 - 1e-12]
    event = rng.random(n) < 0.55
    event[:4] = [True, True, False, False]
    y = to_structured(event, rng.exponential(size=n))
    ref = _survivaleval_histogram(s, event, n_bins)
    counts = d_calibration_histogram(y, s, n_bins)
    np.testing.assert_allclose(counts, ref, rtol=0, atol=1e-10)
    ref_stat, ref_p = stats.chisquare(ref)
    stat, pvalue = d_calibration(y, s, n_bins)
    assert stat == pytest.approx(ref_stat, rel=1e-9)
    assert pvalue == pytest.approx(ref_p, rel=1e-8, abs=1e-300)


def test_d_calibration_counts_sum_to_n():
    rng = np.random.default_rng(3)
    for n in (1, 2, 17, 1000):
        y = to_structured(rng.random(n) < 0.5, rng.exponential(size=n))
        s = rng.random(n) ** rng.uniform(0.2, 5)
        counts = d_calibration_histogram(y, s, 10)
        assert counts.shape == (10,)
        assert np.all(counts >= 0)
        assert counts.sum() == pytest.approx(n, rel=1e-12)


def _exponential_sample(rng, n, censor_scale=None):
    """Exponential event times with hazard exp(0.8 x), independent exponential censoring
    (none if ``censor_scale`` is None). Returns (y, hazard)."""
    x = rng.normal(size=n)
    hazard = np.exp(0.8 * x)
    t_event = rng.exponential(1.0 / hazard)
    if censor_scale is None:
        return to_structured(np.ones(n, bool), t_event), hazard
    t_cens = rng.exponential(censor_scale, n)
    return to_structured(t_event <= t_cens, np.minimum(t_event, t_cens)), hazard


def test_d_calibration_of_the_true_distribution_is_not_rejected():
    """Under the true model the p-values are not concentrated near 0.

    Without censoring the counts are multinomial with equal probabilities, so the
    p-values are close to uniform (KS test). With censoring the spread fractional counts
    vary less than multinomial ones, so the test is conservative: few small p-values."""
    rng = np.random.default_rng(11)
    uncensored, censored = [], []
    for _ in range(50):
        y, hazard = _exponential_sample(rng, 1000)
        uncensored.append(d_calibration(y, np.exp(-hazard * y["time"]))[1])
        y, hazard = _exponential_sample(rng, 1000, censor_scale=1.5)
        censored.append(d_calibration(y, np.exp(-hazard * y["time"]))[1])
    uncensored, censored = np.array(uncensored), np.array(censored)
    assert np.mean(uncensored < 0.05) < 0.2
    assert stats.kstest(uncensored, "uniform").pvalue > 0.01
    assert np.mean(censored < 0.05) < 0.2
    assert np.median(censored) > 0.2


@pytest.mark.parametrize("wrong", ["hazard x 2", "S cubed", "no covariate"])
def test_d_calibration_rejects_miscalibrated_predictions(wrong):
    rng = np.random.default_rng(5)
    y, hazard = _exponential_sample(rng, 2000, censor_scale=1.5)
    t = y["time"]
    s = {
        "hazard x 2": np.exp(-2 * hazard * t),
        "S cubed": np.exp(-hazard * t) ** 3,
        "no covariate": np.exp(-np.mean(hazard) * t),
    }[wrong]
    assert d_calibration(y, s)[1] < 1e-3
    assert d_calibration(y, np.exp(-hazard * t))[1] > 1e-3


@pytest.mark.parametrize(
    ("s", "n_bins", "message"),
    [
        (np.full(2, 0.5), 10, "3 rows"),
        (np.full((3, 1), 0.5), 10, "1-D"),
        (np.array([0.5, np.nan, 0.2]), 10, "finite"),
        (np.array([0.5, 1.2, 0.2]), 10, r"\[0, 1\]"),
        (np.array([0.5, -0.1, 0.2]), 10, r"\[0, 1\]"),
        (np.full(3, 0.5), 1, "n_bins"),
    ],
)
def test_d_calibration_rejects_invalid_input(s, n_bins, message):
    y = to_structured(np.array([True, False, True]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=message):
        d_calibration(y, s, n_bins)


# --------------------------------------------------------------------------------------
# Restricted cubic splines
# --------------------------------------------------------------------------------------


def _harrell_rcs_unnormalised(x, knots):
    """Harrell's restricted cubic spline terms (Regression Modeling Strategies, 2nd ed.,
    eq. 2.25), without normalisation, written out independently of the module."""
    k = len(knots)
    tk, tk1 = knots[-1], knots[-2]

    def pos3(u):
        return np.where(u > 0, u, 0.0) ** 3

    cols = [
        pos3(x - knots[j])
        - pos3(x - tk1) * (tk - knots[j]) / (tk - tk1)
        + pos3(x - tk) * (tk1 - knots[j]) / (tk - tk1)
        for j in range(k - 2)
    ]
    return np.column_stack([x, *cols])


@pytest.mark.parametrize("n_knots", [3, 4, 5])
def test_rcs_basis_is_harrells_normalised_by_the_outer_knot_distance(n_knots):
    rng = np.random.default_rng(n_knots)
    x = rng.normal(size=400)
    knots = rcs_knots(x, n_knots)
    assert len(knots) == n_knots
    basis = rcs_basis(x, knots)
    ref = _harrell_rcs_unnormalised(x, knots)
    ref[:, 1:] /= (knots[-1] - knots[0]) ** 2
    np.testing.assert_allclose(basis, ref, rtol=1e-12, atol=1e-14)
    assert basis.flags.f_contiguous
    # restricted: linear beyond the outer knots (zero second differences), zero below t_1
    right = np.linspace(knots[-1], knots[-1] + 3, 7)
    np.testing.assert_allclose(np.diff(rcs_basis(right, knots), 2, axis=0), 0, atol=1e-12)
    left = np.linspace(knots[0] - 3, knots[0], 7)
    np.testing.assert_allclose(rcs_basis(left, knots)[:, 1:], 0, atol=0)


def test_rcs_knots_follow_rms_defaults():
    rng = np.random.default_rng(0)
    x = rng.normal(size=1000)
    np.testing.assert_allclose(rcs_knots(x, 3), np.quantile(x, [0.1, 0.5, 0.9]))
    np.testing.assert_allclose(rcs_knots(x, 4), np.quantile(x, [0.05, 0.35, 0.65, 0.95]))
    np.testing.assert_allclose(rcs_knots(x, 5), np.quantile(x, [0.05, 0.275, 0.5, 0.725, 0.95]))
    small = rng.normal(size=50)  # fewer than 100 values: outer knots at the 5th extremes
    knots = rcs_knots(small, 3)
    xs = np.sort(small)
    np.testing.assert_allclose(knots, [xs[4], np.quantile(small, 0.5), xs[-5]])
    with pytest.raises(ValueError, match="n_knots"):
        rcs_knots(x, 2)


# --------------------------------------------------------------------------------------
# ICI
# --------------------------------------------------------------------------------------


def _untied_sample(rng, n):
    """Continuous exponential times (no ties), hazard exp(0.7 x), independent censoring;
    a miscalibrated prediction S(t0) (wrong baseline and covariate effect)."""
    x = rng.normal(size=n)
    hazard = np.exp(0.7 * x)
    t_event = rng.exponential(1.0 / hazard)
    t_cens = rng.exponential(2.0, n)
    y = to_structured(t_event <= t_cens, np.minimum(t_event, t_cens))
    t0 = float(np.sort(y["time"])[n // 2])  # an observed time: no interpolation question
    surv_t0 = np.exp(-0.6 * np.exp(1.0 * x) * t0)
    return y, surv_t0, t0, hazard


def _cll(surv_t0):
    p = np.clip(1 - surv_t0, 1e-10, 1 - 1e-10)
    return p, np.log(-np.log(1 - p))


def _lifelines_errors(y, surv_t0, t0, design):
    """Observed probabilities from lifelines' CoxPHFitter on the given design columns."""
    from lifelines import CoxPHFitter

    p, _ = _cll(surv_t0)
    df = pd.DataFrame(design, columns=[f"c{j}" for j in range(design.shape[1])])
    covariates = list(df.columns)
    df["T"], df["E"] = y["time"], y["event"].astype(int)
    cph = CoxPHFitter(penalizer=0.0).fit(
        df, "T", "E", fit_options={"precision": 1e-12, "r_precision": 1e-14}
    )
    obs = 1 - cph.predict_survival_function(df[covariates], times=[t0]).to_numpy()[0]
    return np.abs(obs - p)


def test_ici_matches_lifelines_cox_on_the_rcs_basis():
    """Independent reference: the same calibration model fitted by lifelines.

    The test builds the spline basis itself (Harrell's formula, unnormalised: the fitted
    curve does not depend on the scaling of the columns), with knots at the 10/50/90 %
    quantiles of cll, fits ``lifelines.CoxPHFitter(penalizer=0)`` and takes the observed
    probability from ``predict_survival_function(df, times=[t0])``. lifelines uses Efron
    ties, equal to Breslow's here because the simulated times have no ties; its baseline
    is Breslow's estimator; t0 is an observed time, so lifelines' linear interpolation of
    the baseline between times does not come in."""
    rng = np.random.default_rng(42)
    y, surv_t0, t0, _ = _untied_sample(rng, 2000)
    assert len(np.unique(y["time"])) == len(y)
    _, cll = _cll(surv_t0)
    design = _harrell_rcs_unnormalised(cll, np.quantile(cll, [0.1, 0.5, 0.9]))
    ref = _lifelines_errors(y, surv_t0, t0, design)
    got = calibration_errors(y, surv_t0, t0)
    assert got["ici"] > 0.02  # the prediction is miscalibrated: a real comparison
    assert got["ici"] == pytest.approx(ref.mean(), abs=1e-6)
    assert got["e50"] == pytest.approx(np.median(ref), abs=1e-6)
    assert got["e90"] == pytest.approx(np.quantile(ref, 0.9), abs=1e-6)
    assert got["emax"] == pytest.approx(ref.max(), abs=1e-6)
    assert ici(y, surv_t0, t0) == got["ici"]


def test_ici_with_two_distinct_predictions_is_linear_in_cll():
    """Two distinct predictions: no spline, a Cox model linear in cll (lifelines)."""
    rng = np.random.default_rng(8)
    y, surv_t0, t0, hazard = _untied_sample(rng, 1500)
    surv_t0 = np.where(hazard > 1, 0.4, 0.8)
    _, cll = _cll(surv_t0)
    ref = _lifelines_errors(y, surv_t0, t0, cll[:, None])
    assert ici(y, surv_t0, t0) == pytest.approx(ref.mean(), abs=1e-6)


def test_ici_on_gbsg2_cox_predictions_matches_sksurv():
    """GBSG2 (bundled with scikit-survival): a ``CoxPHSurvivalAnalysis`` fitted on half of
    the patients predicts S(t0) for the other half. Independent reference: the
    calibration model fitted by scikit-survival's ``CoxPHSurvivalAnalysis`` (Breslow
    ties, as ours; the data have tied times) on the test-built spline basis, observed
    probabilities from its ``predict_survival_function`` at t0."""
    from sksurv.column import encode_categorical
    from sksurv.datasets import load_gbsg2
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    X, y_all = load_gbsg2()
    X = encode_categorical(X).astype(float)
    y = to_structured(y_all["cens"], y_all["time"])
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[: len(y) // 2], order[len(y) // 2 :]
    model = CoxPHSurvivalAnalysis().fit(X.iloc[train], y[train])
    t0 = 1500.0
    surv_t0 = np.array([f(t0) for f in model.predict_survival_function(X.iloc[test])])
    y_test = y[test]
    assert len(np.unique(y_test["time"][y_test["event"]])) < y_test["event"].sum()  # ties

    p, cll = _cll(surv_t0)
    design = _harrell_rcs_unnormalised(cll, np.quantile(cll, [0.1, 0.5, 0.9]))
    ref_model = CoxPHSurvivalAnalysis(ties="breslow").fit(design, y_test)
    obs = 1 - np.array([f(t0) for f in ref_model.predict_survival_function(design)])
    ref = np.abs(obs - p)
    got = calibration_errors(y_test, surv_t0, t0)
    assert got["ici"] == pytest.approx(ref.mean(), abs=1e-6)
    assert got["e90"] == pytest.approx(np.quantile(ref, 0.9), abs=1e-6)
    assert 0 < got["ici"] < 0.2


def test_ici_small_when_calibrated_large_when_not():
    rng = np.random.default_rng(2020)
    n = 5000
    x = rng.normal(size=n)
    hazard = np.exp(0.8 * x)
    t_event = rng.exponential(1.0 / hazard)
    t_cens = rng.exponential(2.0, n)
    y = to_structured(t_event <= t_cens, np.minimum(t_event, t_cens))
    t0 = 0.7
    assert ici(y, np.exp(-hazard * t0), t0) < 0.02
    assert ici(y, np.exp(-2 * hazard * t0), t0) > 0.1
    assert ici(y, np.exp(-hazard * t0) ** 0.4, t0) > 0.1
    assert ici(y, np.exp(-np.exp(0.2 * x) * t0), t0) > 0.05


def test_ici_of_constant_predictions_uses_the_test_kaplan_meier():
    """Constant predictions (a Kaplan-Meier reference model): the calibration curve is
    1 - KM_test(t0) (reference: scikit-survival's ``kaplan_meier_estimator``)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    rng = np.random.default_rng(4)
    y, _, t0, _ = _untied_sample(rng, 800)
    km_t, km = kaplan_meier_estimator(y["event"], y["time"])
    km_t0 = km[np.searchsorted(km_t, t0, side="right") - 1]
    n = len(y)
    at_km = calibration_errors(y, np.full(n, km_t0), t0)
    assert at_km["ici"] == pytest.approx(0.0, abs=1e-12)
    assert at_km["emax"] == pytest.approx(0.0, abs=1e-12)
    assert ici(y, np.full(n, 0.3), t0) == pytest.approx(abs(1 - km_t0 - 0.7), abs=1e-12)
    # before the first time the curve is 0: the error is the predicted probability
    assert ici(y, np.full(n, 0.9), float(y["time"].min()) / 2) == pytest.approx(0.1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # lifelines' own log(0) on its grid
def test_ici_loosely_agrees_with_lifelines_smoothed_calibration():
    """Loose reference: lifelines' ``survival_probability_calibration`` (Austin et al.'s
    ICI with a different smoother, a Royston-Parmar spline model of cll, and its own
    predictions) for a Weibull AFT model fitted on data with another baseline hazard."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lifelines import WeibullAFTFitter
    from lifelines.calibration import survival_probability_calibration

    rng = np.random.default_rng(1)

    def sample(n, scale):
        x = rng.normal(size=n)
        t_event = scale * rng.weibull(1.5, n) * np.exp(-0.5 * x)
        t_cens = rng.exponential(3.0, n)
        return pd.DataFrame(
            {"x": x, "T": np.minimum(t_event, t_cens), "E": (t_event <= t_cens).astype(int)}
        )

    train, test = sample(2000, 1.5), sample(2000, 1.0)
    aft = WeibullAFTFitter().fit(train, "T", "E")
    t0 = 1.0
    fig, ax = plt.subplots()
    try:
        _, ref_ici, ref_e50 = survival_probability_calibration(aft, test, t0, ax=ax)
    finally:
        plt.close(fig)
    surv_t0 = aft.predict_survival_function(test, times=[t0]).to_numpy()[0]
    got = calibration_errors(to_structured(test["E"].to_numpy(), test["T"].to_numpy()), surv_t0, t0)
    assert ref_ici > 0.05  # miscalibrated, so the agreement means something
    assert got["ici"] == pytest.approx(ref_ici, abs=0.02)
    assert got["e50"] == pytest.approx(ref_e50, abs=0.02)


def test_ici_rejects_invalid_input():
    y = to_structured(np.array([True, False, True]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="no event"):
        ici(to_structured(np.zeros(3, bool), np.array([1.0, 2.0, 3.0])), np.full(3, 0.5), 1.0)
    with pytest.raises(ValueError, match="3 rows"):
        ici(y, np.full(4, 0.5), 1.0)
    with pytest.raises(ValueError, match="finite"):
        ici(y, np.array([0.5, np.nan, 0.2]), 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ici(y, np.array([0.5, 1.5, 0.2]), 1.0)
    with pytest.raises(ValueError, match="t0"):
        ici(y, np.full(3, 0.5), np.nan)
    with pytest.raises(ValueError, match="n_knots"):
        ici(y, np.array([0.5, 0.4, 0.2]), 1.0, n_knots=2)
