"""Tests of survival_framework.scoring_rules: the right-censored log loss and the ERV."""

from __future__ import annotations

import numpy as np
import pytest

from survival_framework.outcome import censor_after, to_structured
from survival_framework.scoring_rules import ibs_erv, rcll

TIMES = np.array([1.0, 2.0, 4.0])

# one row per case: (event, time, curve S(1), S(2), S(4), expected score by hand)
HAND_CASES = [
    ("event before t_0", True, 0.5, [0.9, 0.6, 0.2], -np.log(1 - 0.9)),
    ("event inside (t_1, t_2]", True, 3.0, [0.8, 0.7, 0.3], -np.log(0.7 - 0.3)),
    ("event exactly on t_1", True, 2.0, [0.95, 0.5, 0.1], -np.log(0.95 - 0.5)),
    ("event exactly on t_0", True, 1.0, [0.7, 0.5, 0.1], -np.log(1 - 0.7)),
    ("event exactly on the last time", True, 4.0, [0.9, 0.6, 0.25], -np.log(0.6 - 0.25)),
    ("censored before t_0", False, 0.3, [0.9, 0.6, 0.2], 0.0),
    ("censored between t_1 and t_2", False, 3.5, [0.85, 0.65, 0.2], -np.log(0.65)),
    ("censored exactly on t_1", False, 2.0, [0.85, 0.55, 0.2], -np.log(0.55)),
    ("censored after the last time", False, 9.0, [0.9, 0.6, 0.15], -np.log(0.15)),
    ("event after the last time", True, 5.0, [0.9, 0.6, 0.35], -np.log(0.35)),
]


def _hand_fixture():
    event = np.array([c[1] for c in HAND_CASES])
    time = np.array([c[2] for c in HAND_CASES])
    surv = np.array([c[3] for c in HAND_CASES])
    expected = np.array([c[4] for c in HAND_CASES])
    return to_structured(event, time), surv, expected


@pytest.mark.parametrize("case", range(len(HAND_CASES)), ids=[c[0] for c in HAND_CASES])
def test_rcll_hand_computed_rows(case):
    """Each discretisation case, one row at a time, against the hand computation."""
    y, surv, expected = _hand_fixture()
    got = rcll(y[case : case + 1], surv[case : case + 1], TIMES)
    assert got == pytest.approx(expected[case], abs=1e-14)


def test_rcll_hand_computed_mean():
    """All cases together (different curves per row: catches row/column mix-ups)."""
    y, surv, expected = _hand_fixture()
    assert rcll(y, surv, TIMES) == pytest.approx(expected.mean(), abs=1e-14)
    # the same rows in another order, and a non-contiguous surv
    perm = np.random.default_rng(0).permutation(len(y))
    assert rcll(y[perm], np.asfortranarray(surv[perm]), TIMES) == pytest.approx(
        expected.mean(), abs=1e-14
    )


def test_rcll_float32_and_all_censored():
    """float32 curves are read without conversion (same score to float32 precision); an
    all-censored fold is valid (only survival probabilities are scored)."""
    y, surv, expected = _hand_fixture()
    assert rcll(y, surv.astype(np.float32), TIMES) == pytest.approx(expected.mean(), rel=1e-6)
    censored = to_structured(np.zeros(2, bool), np.array([1.5, 5.0]))
    curves = np.array([[0.9, 0.6, 0.2], [0.8, 0.5, 0.4]])
    assert rcll(censored, curves, TIMES) == pytest.approx(-(np.log(0.9) + np.log(0.4)) / 2)


def test_rcll_rows_after_the_grid_are_censored_at_its_end():
    """Rows observed after the last grid time score as ``censor_after(y, times[-1])``."""
    rng = np.random.default_rng(1)
    n = 500
    y = to_structured(rng.random(n) < 0.6, rng.exponential(3.0, n))
    surv = np.sort(rng.random((n, 3)), axis=1)[:, ::-1]
    assert rcll(y, surv, TIMES) == pytest.approx(
        rcll(censor_after(y, TIMES[-1]), surv, TIMES), abs=1e-14
    )


def test_rcll_eps_clips_zero_and_negative_masses():
    """A zero interval mass (and the negative mass of a rising curve) costs -log(eps)."""
    y = to_structured(np.array([True, True, False]), np.array([0.5, 3.0, 1.5]))
    surv = np.array([[1.0, 0.5, 0.2], [0.8, 0.3, 0.6], [0.0, 0.0, 0.0]])
    eps = 1e-12
    expected = np.array([-np.log(eps), -np.log(eps), -np.log(eps)])
    assert rcll(y, surv, TIMES, eps=eps) == pytest.approx(expected.mean(), rel=1e-14)
    assert rcll(y, surv, TIMES) == pytest.approx(-np.log(1e-15), rel=1e-14)


def test_rcll_monotone_curves():
    """On decreasing curves: a censored row's score grows with its censoring time, and an
    event's score is -log of a positive interval mass; a curve that never drops has
    infinite-like cost for events only (capped at -log(eps))."""
    curve = np.array([[0.9, 0.6, 0.2]])
    scores = [
        rcll(to_structured(np.array([False]), np.array([t])), curve, TIMES)
        for t in (0.1, 1.0, 1.5, 2.0, 3.9, 4.0, 10.0)
    ]
    assert np.all(np.diff(scores) >= 0)
    assert scores[0] == 0.0 and scores[-1] == pytest.approx(-np.log(0.2))
    flat = np.ones((1, 3))
    assert rcll(to_structured(np.array([False]), np.array([3.0])), flat, TIMES) == 0.0
    assert rcll(to_structured(np.array([True]), np.array([3.0])), flat, TIMES) == pytest.approx(
        -np.log(1e-15)
    )


def _discrete_truth_sample(rng, n, times, beta=0.8):
    """Discrete-time truth on the grid: the event happens at a grid time (or after the
    last one), with logistic discrete hazard h_k(x) = expit(a_k + beta x); censoring is
    continuous, uniform and independent. Returns (y, x, true curves on the grid)."""
    m = times.shape[0]
    a = np.linspace(-2.5, -1.0, m)
    x = rng.normal(size=n)
    hazard = 1.0 / (1.0 + np.exp(-(a[None, :] + beta * x[:, None])))
    surv = np.cumprod(1.0 - hazard, axis=1)
    # the grid index of the event: first k with U_k < h_k (m = after the grid)
    hit = rng.random((n, m)) < hazard
    k = np.where(hit.any(axis=1), hit.argmax(axis=1), m)
    t_event = np.where(k < m, times[np.minimum(k, m - 1)], times[-1] + 1.0)
    t_cens = rng.uniform(0.0, times[-1] * 1.2, n)
    y = to_structured(t_event <= t_cens, np.minimum(t_event, t_cens))
    return y, x, a, surv


def _curves(a, beta, x):
    hazard = 1.0 / (1.0 + np.exp(-(a[None, :] + beta * x[:, None])))
    return np.cumprod(1.0 - hazard, axis=1)


def test_rcll_is_proper_for_a_discrete_time_truth():
    """Properness: the true curves score lower than perturbed ones on a large sample.

    Reference: the definition of a proper scoring rule (Gneiting & Raftery 2007) applied to
    the log-likelihood of the coarsened data; with event times on the grid and independent
    censoring the coarsening is at random, so the expected score is minimised by the truth.
    The same sample scores every curve (common random numbers); each perturbation's
    excess over the truth is compared with 4 standard errors of the paired difference.
    """
    rng = np.random.default_rng(20240601)
    times = np.arange(1.0, 9.0)
    y, x, a, true_surv = _discrete_truth_sample(rng, 200_000, times)
    n = len(y)

    base = rcll(y, true_surv, times)
    perturbed = {
        "steeper covariate effect": _curves(a, 1.2, x),
        "flatter covariate effect": _curves(a, 0.4, x),
        "no covariate effect": _curves(a, 0.0, x),
        "higher baseline hazard": _curves(a + 0.3, 0.8, x),
        "lower baseline hazard": _curves(a - 0.3, 0.8, x),
        "hazard shape tilted": _curves(a + np.linspace(-0.4, 0.4, len(a)), 0.8, x),
        "true curve squared": true_surv**2,
        "true curve square root": np.sqrt(true_surv),
        "shrunk towards 1": 0.5 + 0.5 * true_surv,
    }
    for name, surv in perturbed.items():
        score = rcll(y, surv, times)
        # standard error of the paired per-row difference, from a by-hand row score
        diff = _row_scores(y, surv, times) - _row_scores(y, true_surv, times)
        se = diff.std() / np.sqrt(n)
        assert score - base == pytest.approx(diff.mean(), abs=1e-10), name
        assert score > base + 4 * se, (name, score, base, se)


def _row_scores(y, surv, times):
    """Row scores written out independently (a loop over grid intervals, not rows)."""
    event, t = y["event"], y["time"]
    m = len(times)
    upper = np.r_[-np.inf, times]  # interval k = (times[k-1], times[k]]
    padded = np.hstack([np.ones((len(y), 1)), surv])  # padded[:, k] = S(times[k-1])
    prob = np.full(len(y), np.nan)
    for k in range(m):
        in_k = event & (t > upper[k]) & (t <= times[k])
        prob[in_k] = padded[in_k, k] - padded[in_k, k + 1]
        last_seen = (t >= times[k]) & ((t < times[k + 1]) if k + 1 < m else True)
        survived = (~event | (t > times[-1])) & last_seen
        prob[survived] = padded[survived, k + 1]
    prob[~event & (t < times[0])] = 1.0
    assert not np.isnan(prob).any()
    return -np.log(np.maximum(prob, 1e-15))


def test_rcll_matches_lifelines_interval_censored_weibull_likelihood():
    """Independent reference: lifelines' log-likelihood of interval-censored data.

    Weibull event times and continuous independent censoring are coarsened to the grid as
    the docstring of :func:`rcll` says (an event in ``(t_{j-1}, t_j]`` becomes the interval
    ``[t_{j-1}, t_j]``, ``t_{-1} = 0``; a censoring at ``c`` in ``[t_j, t_{j+1})`` becomes
    ``[t_j, inf)``; after the grid, ``[t_last, inf)``) and fitted by
    ``lifelines.WeibullFitter.fit_interval_censoring``, which builds the likelihood
    ``S(l) - S(u)`` from the exact Weibull survival function. Our score of the fitted
    Weibull's curve, given only at the grid times, must be ``-log_likelihood_ / n``.
    """
    from lifelines import WeibullFitter

    rng = np.random.default_rng(7)
    n = 3000
    times = np.array([0.3, 0.6, 1.0, 1.5, 2.0, 3.0])
    t_event = 1.4 * rng.weibull(1.6, n)
    t_cens = rng.uniform(0.0, 4.0, n)
    event, time = t_event <= t_cens, np.minimum(t_event, t_cens)
    grid = np.r_[0.0, times]
    j = np.searchsorted(times, time, side="left")  # events: (grid[j], grid[j + 1]]
    c = np.searchsorted(times, time, side="right")  # censored: last grid time <= t is grid[c]
    in_grid = event & (j < len(times))
    lower = np.where(in_grid, grid[np.minimum(j, len(times))], grid[c])
    upper = np.where(in_grid, grid[np.minimum(j + 1, len(times))], np.inf)
    assert np.all(lower < upper)
    wf = WeibullFitter().fit_interval_censoring(lower, upper)
    curve = np.exp(-((times / wf.lambda_) ** wf.rho_))
    surv = np.broadcast_to(curve, (n, len(times)))
    got = rcll(to_structured(event, time), surv, times)
    assert got == pytest.approx(-wf.log_likelihood_ / n, rel=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"surv": np.full((3, 2), 0.5)}, "expected"),
        ({"surv": np.full(3, 0.5)}, "2-D"),
        ({"surv": np.array([[0.5, np.nan, 0.1]] * 3)}, "finite"),
        ({"surv": np.array([[0.5, np.inf, 0.1]] * 3)}, "finite"),
        ({"surv": np.array([[1.5, 0.5, 0.1]] * 3)}, r"\[0, 1\]"),
        ({"surv": np.array([[0.5, 0.4, -0.1]] * 3)}, r"\[0, 1\]"),
        ({"times": np.array([1.0, 1.0, 4.0])}, "strictly increasing"),
        ({"times": np.array([1.0, np.nan, 4.0])}, "finite"),
        ({"times": np.array([[1.0, 2.0, 4.0]])}, "1-D"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_rcll_rejects_invalid_input(kwargs, message):
    args = {
        "y_test": to_structured(np.array([True, False, True]), np.array([1.0, 2.0, 3.0])),
        "surv": np.array([[0.9, 0.5, 0.1]] * 3),
        "times": TIMES,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        rcll(**args)


def test_rcll_rejects_invalid_outcome():
    with pytest.raises(ValueError, match="structured array"):
        rcll(np.array([1.0, 2.0]), np.full((2, 3), 0.5), TIMES)
    y = to_structured(np.array([True, False]), np.array([1.0, np.nan]))
    with pytest.raises(ValueError):
        rcll(y, np.full((2, 3), 0.5), TIMES)


def test_ibs_erv():
    assert ibs_erv(0.2, 0.2) == 0.0
    assert ibs_erv(0.0, 0.25) == 1.0
    assert ibs_erv(0.15, 0.2) == pytest.approx(0.25)
    assert ibs_erv(0.3, 0.2) == pytest.approx(-0.5)
    for bad in (0.0, -0.1, np.nan, np.inf):
        with pytest.raises(ValueError, match="reference"):
            ibs_erv(0.1, bad)
    with pytest.raises(ValueError, match="model"):
        ibs_erv(np.nan, 0.2)
