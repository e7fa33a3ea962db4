"""The corrected resampled t-test and the model comparison table (comparison.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from survival_framework.comparison import (
    COMPARISON_COLUMNS,
    compare_models,
    corrected_resampled_ttest,
    kfold_test_train_ratio,
    leaderboard_additions,
    leaderboard_order,
    paired_differences,
)

HIB = {"harrell_c": True, "uno_c": True, "ibs": False}
NAN = math.nan


# --------------------------------------------------------------------------- the t-test


def test_hand_computation_five_differences():
    """d = (0.02, 0.05, -0.01, 0.03, 0.04), n_test/n_train = 0.25, worked out by hand."""
    d = [0.02, 0.05, -0.01, 0.03, 0.04]
    res = corrected_resampled_ttest(d, 0.25)
    mean = 0.13 / 5  # 0.026
    # deviations -0.006, 0.024, -0.036, 0.004, 0.014; squares sum to 0.00212
    s2 = 0.00212 / 4  # 0.00053
    corrected = (1 / 5 + 0.25) * s2  # 0.0002385
    t = mean / math.sqrt(corrected)
    p = 2 * stats.t.sf(abs(t), 4)
    half = stats.t.ppf(0.975, 4) * math.sqrt(corrected)
    assert res.n == 5 and res.df == 4
    assert res.mean == pytest.approx(0.026, abs=1e-12)
    assert res.variance == pytest.approx(0.00053, abs=1e-12)
    assert res.corrected_variance == pytest.approx(0.0002385, abs=1e-12)
    assert res.t == pytest.approx(t, abs=1e-12)
    assert res.p_value == pytest.approx(p, abs=1e-12)
    assert res.ci_low == pytest.approx(mean - half, abs=1e-12)
    assert res.ci_high == pytest.approx(mean + half, abs=1e-12)
    naive_t = mean / math.sqrt(s2 / 5)
    assert res.naive_t == pytest.approx(naive_t, abs=1e-12)
    assert res.naive_p_value == pytest.approx(2 * stats.t.sf(naive_t, 4), abs=1e-12)
    assert res.reason is None


def test_naive_part_is_scipys_one_sample_t_test():
    rng = np.random.default_rng(1)
    d = rng.normal(0.01, 0.02, size=10)
    res = corrected_resampled_ttest(d, 0.25, alpha=0.1)
    ref = stats.ttest_1samp(d, 0.0)
    ci = ref.confidence_interval(0.9)
    assert res.naive_t == pytest.approx(ref.statistic, abs=1e-12)
    assert res.naive_p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert (res.naive_ci_low, res.naive_ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_corrected_interval_contains_naive_and_p_is_larger(seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.01, 0.02, size=10)
    res = corrected_resampled_ttest(d, 0.25)
    assert res.ci_low < res.naive_ci_low < res.naive_ci_high < res.ci_high
    assert res.p_value > res.naive_p_value
    assert res.corrected_variance / res.naive_variance == pytest.approx(1 + 0.25 * 10)
    # the interval excludes 0 exactly when p < alpha
    assert (res.p_value < 0.05) == (res.ci_low > 0 or res.ci_high < 0)


def test_repeats_use_k_equal_r_times_k():
    """R=3 repeats of K=5 folds: 15 differences, df = 14, the 1/k term with k = 15."""
    rng = np.random.default_rng(2)
    d = rng.normal(0.01, 0.02, size=15)
    ratio = kfold_test_train_ratio(5)
    assert ratio == 0.25
    res = corrected_resampled_ttest(d, ratio, n_repeats=3)
    assert res.n == 15 and res.df == 14 and res.n_repeats == 3
    s2 = float(np.var(d, ddof=1))
    assert res.corrected_variance == pytest.approx((1 / 15 + 0.25) * s2, rel=1e-12)
    half = stats.t.ppf(0.975, 14) * math.sqrt((1 / 15 + 0.25) * s2)
    assert res.ci_high - res.ci_low == pytest.approx(2 * half, rel=1e-12)
    with pytest.raises(ValueError, match="n_repeats"):
        corrected_resampled_ttest(d[:14], ratio, n_repeats=3)


def _sklearn_example_corrected_ttest(differences, n_train, n_test):
    """Transcription of ``corrected_std`` and ``compute_corrected_ttest`` of scikit-learn's
    example "Statistical comparison of models using grid search"
    (``examples/model_selection/plot_grid_search_stats.py``, the revision with
    ``kr = len(differences)``, e.g. commit 0c27a07f68e0eda7e1fcbce44a7615addec7f232; older
    revisions used ``1 / (n_train + n_test)`` in place of ``1 / kr``). The p-value there is
    right-tailed; the example's posterior ``t(df, loc=mean, scale=corrected_std)`` gives the
    same interval as the frequentist one."""
    kr = len(differences)
    corrected_var = np.var(differences, ddof=1) * (1 / kr + n_test / n_train)
    corrected_std = np.sqrt(corrected_var)
    df = kr - 1
    mean = np.mean(differences)
    t_stat = mean / corrected_std
    p_right = stats.t.sf(np.abs(t_stat), df)
    interval = stats.t(df, loc=mean, scale=corrected_std).interval(0.95)
    return t_stat, p_right, interval


def _weles_t_test_corrected(a, b):
    """Transcription of ``t_test_corrected`` of w4k2/weles (``weles/statistics/statistics.py``):
    the corrected t-test for J repetitions x k folds of Bouckaert & Frank (2004), with
    ``n_test / n_train = 1 / (k - 1)``."""
    J, k = a.shape
    d = a - b
    bar_d = np.mean(d)
    bar_sigma_2 = np.var(d.reshape(-1), ddof=1)
    bar_sigma_2_mod = (1 / (J * k) + 1 / (k - 1)) * bar_sigma_2
    t_stat = bar_d / np.sqrt(bar_sigma_2_mod)
    pval = stats.t.sf(np.abs(t_stat), (k * J) - 1) * 2
    return t_stat, pval


def test_matches_scikit_learn_example():
    """Against scikit-learn's example implementation (see the transcription's docstring)."""
    rng = np.random.default_rng(3)
    d = rng.normal(0.005, 0.01, size=100)  # 10 x 10-fold, as in the example
    n_train, n_test = 900, 100
    t_stat, p_right, (lo, hi) = _sklearn_example_corrected_ttest(d, n_train, n_test)
    res = corrected_resampled_ttest(d, n_test / n_train, n_repeats=10)
    assert res.t == pytest.approx(t_stat, rel=1e-12)
    assert res.p_value == pytest.approx(2 * p_right, rel=1e-10)
    assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi), rel=1e-12)


def test_matches_weles_repeated_cv_form():
    """Against w4k2/weles ``t_test_corrected`` (R x K arrays of two models' scores)."""
    rng = np.random.default_rng(4)
    a = 0.70 + rng.normal(0, 0.02, size=(3, 5))
    b = 0.69 + rng.normal(0, 0.02, size=(3, 5))
    t_stat, pval = _weles_t_test_corrected(a, b)
    res = corrected_resampled_ttest((a - b).ravel(), kfold_test_train_ratio(5), n_repeats=3)
    assert res.t == pytest.approx(t_stat, rel=1e-12)
    assert res.p_value == pytest.approx(pval, rel=1e-10)


def test_non_finite_differences_are_dropped():
    d = [0.02, NAN, 0.05, -0.01, 0.03, 0.04]
    res = corrected_resampled_ttest(d, 0.25, n_repeats=2)
    ref = corrected_resampled_ttest([0.02, 0.05, -0.01, 0.03, 0.04], 0.25)
    assert res.n == 5 and res.df == 4
    assert (res.mean, res.t, res.p_value, res.ci_low, res.ci_high) == (
        ref.mean,
        ref.t,
        ref.p_value,
        ref.ci_low,
        ref.ci_high,
    )


@pytest.mark.parametrize(("d", "mean"), [([], NAN), ([NAN, NAN], NAN), ([0.3, NAN], 0.3)])
def test_fewer_than_two_differences(d, mean):
    res = corrected_resampled_ttest(d, 0.25)
    assert res.n == len([x for x in d if np.isfinite(x)])
    assert np.isnan(res.mean) if np.isnan(mean) else res.mean == mean
    for v in (res.t, res.df, res.p_value, res.ci_low, res.ci_high, res.naive_p_value):
        assert np.isnan(v)
    assert "fewer than 2" in res.reason


def test_zero_variance_nonzero_mean():
    # 0.1 five times: an exact test, since a rounded mean would leave a tiny variance
    res = corrected_resampled_ttest([0.1] * 5, 0.25)
    assert res.variance == 0.0 and res.mean == 0.1
    assert res.p_value == 0.0 and res.naive_p_value == 0.0
    assert res.ci_low == res.ci_high == 0.1
    assert res.t == math.inf
    assert corrected_resampled_ttest([-0.1] * 5, 0.25).t == -math.inf
    assert "same nonzero" in res.reason


def test_zero_variance_zero_mean():
    res = corrected_resampled_ttest([0.0] * 5, 0.25)
    assert (res.mean, res.ci_low, res.ci_high, res.p_value, res.t) == (0.0, 0.0, 0.0, 1.0, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": 0.0}, {"alpha": 1.0}, {"test_train_ratio": -0.1}, {"n_repeats": 0}],
)
def test_bad_arguments(kwargs):
    args = {"test_train_ratio": 0.25, **kwargs}
    with pytest.raises(ValueError):
        corrected_resampled_ttest([0.1, 0.2], **args)


def _null_rejection_rates(n_sims=400, n=60, k=5, r=3, seed=0):
    """Rejection rates at 5% of the corrected and naive tests on r x k-fold CV of two
    one-feature least-squares fits on symmetric features (equal expected error)."""
    rng = np.random.default_rng(seed)
    corrected = naive = 0
    for _ in range(n_sims):
        x = rng.normal(size=(n, 2))
        y = x[:, 0] + x[:, 1] + rng.normal(size=n)
        d = []
        for _ in range(r):
            perm = rng.permutation(n)
            for test in np.array_split(perm, k):
                train = np.setdiff1d(perm, test)
                errors = []
                for j in (0, 1):
                    design = np.column_stack([np.ones(train.size), x[train, j]])
                    coef = np.linalg.lstsq(design, y[train], rcond=None)[0]
                    errors.append(np.mean((y[test] - coef[0] - coef[1] * x[test, j]) ** 2))
                d.append(errors[0] - errors[1])
        res = corrected_resampled_ttest(d, kfold_test_train_ratio(k), n_repeats=r)
        corrected += res.p_value < 0.05
        naive += res.naive_p_value < 0.05
    return corrected / n_sims, naive / n_sims


def test_type_one_error_under_the_null():
    """Repeated CV resamples are correlated: the naive test rejects a true null far too often
    (about 0.28 here), the corrected one about as often as it should (conservatively)."""
    corrected, naive = _null_rejection_rates()
    assert abs(corrected - 0.05) < abs(naive - 0.05)
    assert corrected <= 0.09
    assert naive >= 0.15


# --------------------------------------------------------------------------- the table


def _long(values: dict, repeat: int | None = None) -> pd.DataFrame:
    """``{metric: {model: [value per fold]}}`` as a long table."""
    rows = [
        {"model": model, "fold": fold, "metric": metric, "value": v}
        for metric, by_model in values.items()
        for model, folds in by_model.items()
        for fold, v in enumerate(folds)
    ]
    df = pd.DataFrame(rows)
    if repeat is not None:
        df.insert(1, "repeat", repeat)
    return df


VALUES = {
    "uno_c": {
        "km": [0.50, 0.52, 0.40, 0.51, 0.49],
        "gbsa": [0.72, 0.70, 0.74, 0.69, 0.71],  # best: mean 0.712
        "cox": [0.71, 0.72, 0.70, 0.70, 0.72],  # mean 0.710, differs from gbsa by noise
        "bad": [0.55, 0.56, NAN, 0.54, 0.55],  # fold 2 failed; clearly worse than gbsa
        "weibull": [NAN] * 5,  # every fold failed
    },
    "ibs": {
        "km": [0.25, 0.24, 0.26, 0.25, 0.25],  # highest ibs: worst
        "gbsa": [0.19, 0.18, 0.20, 0.18, 0.20],
        "cox": [0.17, 0.18, 0.16, 0.17, 0.17],  # lowest ibs: best
        "bad": [0.23, 0.22, NAN, 0.24, 0.23],
        "weibull": [NAN] * 5,
    },
    "harrell_c": {
        "km": [0.5] * 5,
        "gbsa": [0.70] * 5,
        "cox": [0.68, 0.72, 0.70, 0.70, 0.70],  # the same mean as gbsa: a tie
        "bad": [0.6, 0.6, NAN, 0.6, 0.6],
        "weibull": [NAN] * 5,
    },
    "dcal_p": {  # no direction: neither compared by default nor ranked
        "km": [0.9] * 5,
        "gbsa": [0.1, 0.2, 0.3, 0.2, 0.1],
        "cox": [0.5] * 5,
        "bad": [0.01, 0.02, NAN, 0.03, 0.02],
        "weibull": [NAN] * 5,
    },
}


@pytest.fixture
def long():
    return _long(VALUES)


def _compare(long, **kwargs):
    return compare_models(long, higher_is_better=HIB, test_train_ratio=0.25, **kwargs)


def _row(table, model, metric, reference):
    sel = table[
        (table["model"] == model) & (table["metric"] == metric) & (table["reference"] == reference)
    ]
    assert len(sel) == 1
    return sel.iloc[0]


def test_columns_and_row_order(long):
    table = _compare(long)
    assert tuple(table.columns) == COMPARISON_COLUMNS
    order = ["gbsa", "cox", "bad", "km", "weibull"]  # by mean uno_c; weibull has none
    assert leaderboard_order(long, higher_is_better=HIB) == order
    metrics = ["harrell_c", "uno_c", "ibs"]  # the order of higher_is_better; no dcal_p
    expected = [(m, metric, ref) for m in order for metric in metrics for ref in ("gbsa", "km")]
    assert list(table[["model", "metric", "reference"]].itertuples(index=False, name=None)) == (
        expected
    )
    explicit = _compare(long, metrics=["ibs", "dcal_p"])
    assert list(explicit["metric"].unique()) == ["ibs", "dcal_p"]


def test_pairing_skips_the_failed_fold(long):
    table = _compare(long)
    row = _row(table, "bad", "uno_c", "km")
    paired = [0.55 - 0.50, 0.56 - 0.52, 0.54 - 0.51, 0.55 - 0.49]  # fold 2 dropped
    assert row["diff"] == pytest.approx(0.045, abs=1e-12)
    assert row["diff"] != pytest.approx(0.55 - np.mean(VALUES["uno_c"]["km"]))  # unpaired
    ref = corrected_resampled_ttest(paired, 0.25)
    assert ref.n == 4
    assert (row["ci_low"], row["ci_high"], row["p_value"]) == pytest.approx(
        (ref.ci_low, ref.ci_high, ref.p_value), abs=1e-12
    )
    diffs = paired_differences(long, "bad", "km", "uno_c")
    assert diffs.index.names == ["repeat", "fold"] and len(diffs) == 5
    assert np.isnan(diffs.loc[(0, 2)])


def test_rows_against_the_best_and_against_km(long):
    table = _compare(long)
    for model, ref in (("gbsa", "gbsa"), ("km", "km")):
        row = _row(table, model, "uno_c", ref)
        assert (row["diff"], row["ci_low"], row["ci_high"], row["p_value"]) == (0, 0, 0, 1)
    row = _row(table, "cox", "uno_c", "gbsa")
    assert row["diff"] == pytest.approx(-0.002, abs=1e-12)
    assert row["ci_low"] < 0 < row["ci_high"]
    row = _row(table, "bad", "uno_c", "gbsa")
    assert row["diff"] == pytest.approx(-0.155, abs=1e-12)
    assert row["ci_high"] < 0 and row["p_value"] < 0.05
    row = _row(table, "gbsa", "ibs", "km")  # in ibs units: negative = better than km
    assert row["diff"] == pytest.approx(0.19 - 0.25, abs=1e-12)
    assert row["ci_high"] < 0
    assert table.loc[table["model"] == "weibull", ["diff", "p_value"]].isna().all().all()


def test_direction_of_the_primary_metric(long):
    """ibs is lower-is-better: the best model is cox (lowest ibs), not km (highest)."""
    assert leaderboard_order(long, higher_is_better=HIB, primary_metric="ibs")[0] == "cox"
    table = _compare(long, primary_metric="ibs")
    assert set(table["reference"]) == {"cox", "km"}
    assert _row(table, "cox", "ibs", "cox")["diff"] == 0
    assert _row(table, "gbsa", "ibs", "cox")["diff"] == pytest.approx(0.02, abs=1e-12)
    flipped = {**HIB, "ibs": True}
    assert leaderboard_order(long, higher_is_better=flipped, primary_metric="ibs")[0] == "km"


def test_reference_model_best_gives_one_set_of_rows():
    values = {"uno_c": {"km": [0.8, 0.81, 0.79], "cox": [0.6, 0.62, 0.61]}}
    table = _compare(_long(values))
    assert list(table["reference"]) == ["km", "km"]
    assert list(table["model"]) == ["km", "cox"]


def test_repeat_column(long):
    without = _compare(long)
    with_zero = _compare(_long(VALUES, repeat=0), n_repeats=1)
    pd.testing.assert_frame_equal(without, with_zero)
    with pytest.raises(ValueError, match="n_repeats"):
        _compare(long, n_repeats=2)
    # two repeats: (repeat, fold) pairs are distinct resamples, k = 10 pairs
    shifted = {
        metric: {model: [v + 0.01 for v in folds] for model, folds in by_model.items()}
        for metric, by_model in VALUES.items()
    }
    shifted["uno_c"]["gbsa"] = [0.73, 0.74, 0.72, 0.73, 0.75]  # gbsa stays the best
    two = pd.concat([_long(VALUES, repeat=0), _long(shifted, repeat=1)], ignore_index=True)
    table = _compare(two, n_repeats=2)
    row = _row(table, "cox", "uno_c", "gbsa")
    d = np.subtract(
        VALUES["uno_c"]["cox"] + shifted["uno_c"]["cox"],
        VALUES["uno_c"]["gbsa"] + shifted["uno_c"]["gbsa"],
    )
    ref = corrected_resampled_ttest(d, 0.25, n_repeats=2)
    assert ref.n == 10
    assert (row["diff"], row["ci_low"], row["p_value"]) == pytest.approx(
        (ref.mean, ref.ci_low, ref.p_value), abs=1e-12
    )


def test_table_errors(long):
    with pytest.raises(ValueError, match="reference model"):
        _compare(long, reference_model="rsf")
    with pytest.raises(ValueError, match="duplicate"):
        _compare(pd.concat([long, long.iloc[:1]]))
    with pytest.raises(ValueError, match="no direction"):
        _compare(long, primary_metric="dcal_p")
    with pytest.raises(ValueError, match="not in the metrics table"):
        _compare(long, metrics=["rcll"])


def test_leaderboard_additions(long):
    table = _compare(long)
    extra = leaderboard_additions(long, table, higher_is_better=HIB)
    assert list(extra.columns) == ["model", "tied_with_best", "mean_rank"]
    assert list(extra["model"]) == ["gbsa", "cox", "bad", "km", "weibull"]
    tied = extra["tied_with_best"]
    assert tied.dtype == "boolean"
    # gbsa is the best, cox differs by noise only, bad and km are clearly worse
    assert tied.iloc[:4].tolist() == [True, True, False, False]
    assert pd.isna(tied.iloc[4])  # weibull: no paired resample
    # ranks:     harrell_c (tie)   uno_c   ibs
    # gbsa        1.5               1       2    -> 1.5
    # cox         1.5               2       1    -> 1.5
    # bad         3                 3       3    -> 3
    # km          4                 4       4    -> 4
    ranks = dict(zip(extra["model"], extra["mean_rank"], strict=True))
    assert ranks["gbsa"] == ranks["cox"] == 1.5
    assert (ranks["bad"], ranks["km"]) == (3.0, 4.0)
    assert np.isnan(ranks["weibull"])
    two = leaderboard_additions(long, table, higher_is_better=HIB, rank_metrics=["uno_c", "ibs"])
    assert list(two["mean_rank"][:4]) == [1.5, 1.5, 3.0, 4.0]
    one = leaderboard_additions(long, table, higher_is_better=HIB, rank_metrics=["ibs"])
    assert list(one["mean_rank"][:4]) == [2.0, 1.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="no direction"):
        leaderboard_additions(long, table, higher_is_better=HIB, rank_metrics=["dcal_p"])


def test_mean_rank_needs_every_ranked_metric():
    values = {
        "uno_c": {"km": [0.5, 0.5], "cox": [0.7, 0.71], "rsf": [0.6, 0.62]},
        "ibs": {"km": [0.25, 0.25], "cox": [NAN, NAN], "rsf": [0.2, 0.21]},
    }
    long = _long(values)
    table = _compare(long)
    extra = leaderboard_additions(long, table, higher_is_better=HIB).set_index("model")
    assert np.isnan(extra.loc["cox", "mean_rank"])  # no ibs: not a mean of fewer metrics
    assert extra.loc["rsf", "mean_rank"] == (2 + 1) / 2  # ibs ranks rsf 1, km 2 (cox absent)
    assert extra.loc["km", "mean_rank"] == (3 + 2) / 2
