"""Property tests (hypothesis) for the metrics and the fold-fitted preprocessing.

Random small survival tables; kept fast (max_examples <= 50, no deadline).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from survival_framework import preprocess as pp
from survival_framework.contract import ROW_COL
from survival_framework.etl import run_pandas_etl, split_paths
from survival_framework.io import write_json, write_parquet
from survival_framework.metrics import harrell_c, to_structured, uno_c
from survival_framework.splits import assign_folds

FAST = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@st.composite
def survival_data(draw, min_n: int = 6, max_n: int = 40):
    """Integer times (ties likely), events (at least two), integer risk scores (ties likely)."""
    n = draw(st.integers(min_n, max_n))
    time = np.array(draw(st.lists(st.integers(1, 30), min_size=n, max_size=n)), dtype=float)
    event = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    risk = np.array(draw(st.lists(st.integers(-40, 40), min_size=n, max_size=n)), dtype=float)
    assume(event.sum() >= 2)
    # at least one comparable pair: an event strictly before some other time
    assume((time[event][:, None] < time[None, :]).any())
    return time, event, risk


# strictly increasing maps (exact on these integer scores: no new ties, no overflow)
MONOTONE = [
    lambda r: 3.0 * r**3 + r + 7.0,
    lambda r: np.exp(r / 10.0),
    lambda r: r / 1000.0 - 5.0,
]


@FAST
@given(survival_data(), st.sampled_from(range(len(MONOTONE))))
def test_harrell_c_in_unit_interval_and_rank_invariant(data, which):
    time, event, risk = data
    c = harrell_c(event, time, risk)
    assert 0.0 <= c <= 1.0
    assert harrell_c(event, time, MONOTONE[which](risk)) == c
    # reversing the score mirrors the index (tied scores count 1/2 both ways)
    assert abs(harrell_c(event, time, -risk) - (1.0 - c)) < 1e-12


def _uno_or_reject(y, risk, tau):
    try:
        return uno_c(y, y, risk, tau)
    except (ValueError, ZeroDivisionError):  # no comparable pair before tau
        assume(False)


@FAST
@given(survival_data(min_n=8), st.sampled_from(range(len(MONOTONE))))
def test_uno_c_in_unit_interval_and_rank_invariant(data, which):
    time, event, risk = data
    distinct = np.unique(time)
    assume(distinct.size >= 3)
    tau = float(distinct[-2])  # below the last time: censoring weights stay positive
    y = to_structured(event, time)
    c = _uno_or_reject(y, risk, tau)
    assert 0.0 <= c <= 1.0
    assert abs(uno_c(y, y, MONOTONE[which](risk), tau) - c) < 1e-12


# ------------------------------------------------------------------------- preprocessing


@st.composite
def feature_table(draw, min_n: int = 30, max_n: int = 60):
    """Numeric columns with missing values, a categorical with missing and rare levels."""
    n = draw(st.integers(min_n, max_n))
    finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
    maybe_nan = st.one_of(finite, finite, finite, st.just(np.nan))
    x1 = draw(st.lists(finite, min_size=n, max_size=n))
    x2 = draw(st.lists(maybe_nan, min_size=n, max_size=n))
    levels = st.sampled_from(["a", "b", "c", "ü", "d e", None])
    cat = draw(st.lists(levels, min_size=n, max_size=n))
    time = draw(st.lists(st.floats(0.5, 100.0, allow_nan=False), min_size=n, max_size=n))
    event = draw(st.lists(st.sampled_from([0, 1, 1]), min_size=n, max_size=n))
    assume(sum(event) >= 8)
    return pd.DataFrame(
        {
            ROW_COL: np.arange(n, dtype=np.int64),
            "time": np.asarray(time, dtype=float),
            "event": np.asarray(event, dtype=np.int8),
            "x 1": np.asarray(x1, dtype=float),
            "x2": np.asarray(x2, dtype=float),
            "cat": pd.Series(cat, dtype=object),
        }
    )


SCHEMA = {
    "duration_col": "time",
    "event_col": "event",
    "id_col": None,
    "numeric": ["x 1", "x2"],
    "categorical": ["cat"],
}


def _etl(clean: pd.DataFrame, out: Path, n_folds: int, min_frequency: float, max_levels):
    write_parquet(clean, out / "clean.parquet")
    write_json(SCHEMA, out / "schema.json")
    run_pandas_etl(
        out / "clean.parquet",
        out / "schema.json",
        **split_paths(out / "splits", n_folds),
        n_folds=n_folds,
        seed=3,
        min_frequency=min_frequency,
        n_times=4,
        quantiles=(0.1, 0.8),
        max_levels=max_levels,
    )


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    feature_table(),
    st.data(),
    st.sampled_from([0.0, 0.1]),
    st.sampled_from([None, 1, 2]),
)
def test_preprocessing_never_sees_test_rows(clean, data, min_frequency, max_levels):
    """Changing any test row of fold 0 (features, durations, new levels, missing values)
    leaves fold 0's fitted state and its training matrix unchanged, and its test matrix is
    the training state applied to the changed rows."""
    n_folds = 2
    folds = assign_folds(clean["event"].to_numpy(), n_folds, seed=3)
    test_rows = np.flatnonzero(folds == 0)
    changed = clean.copy()
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    k = len(test_rows)
    changed.loc[test_rows, "x 1"] = data.draw(st.lists(finite, min_size=k, max_size=k))
    changed.loc[test_rows, "x2"] = np.nan
    new_levels = st.sampled_from(["zzz", "a", None, "never seen"])
    changed.loc[test_rows, "cat"] = data.draw(st.lists(new_levels, min_size=k, max_size=k))
    changed.loc[test_rows, "time"] = changed.loc[test_rows, "time"] * 1.5
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        try:
            _etl(clean, Path(a), n_folds, min_frequency, max_levels)
            _etl(changed, Path(b), n_folds, min_frequency, max_levels)
        except ValueError as error:  # no evaluation grid fits these times: refused, not leaked
            assume("too few events for this number of folds" not in str(error))
            raise
        fa, fb = Path(a) / "splits/fold_0", Path(b) / "splits/fold_0"
        state_a = json.loads((fa / "preprocessor.json").read_text())
        assert state_a == json.loads((fb / "preprocessor.json").read_text())
        pd.testing.assert_frame_equal(
            pd.read_parquet(fa / "train.parquet"), pd.read_parquet(fb / "train.parquet")
        )
        test_b = pd.read_parquet(fb / "test.parquet")
        expected = pp.transform(changed.iloc[test_rows].reset_index(drop=True), state_a)
        pd.testing.assert_frame_equal(
            test_b[pp.output_columns(state_a)], expected, check_exact=False, rtol=1e-12
        )


@FAST
@given(feature_table(), st.sampled_from([0.0, 0.05, 0.3]), st.sampled_from([None, 1, 2, 3]))
def test_transform_of_training_rows_is_standardised(train, min_frequency, max_levels):
    state = pp.fit_state(train, SCHEMA["numeric"], ["cat"], min_frequency, max_levels)
    assert json.loads(json.dumps(state)) == state
    out = pp.transform(train, state)
    assert list(out.columns) == pp.output_columns(state)
    assert np.isfinite(out.to_numpy()).all()
    for col in SCHEMA["numeric"]:
        z = out[col].to_numpy()
        spread = np.ptp(train[col].dropna()) if train[col].notna().any() else 0.0
        assert abs(z.mean()) < 1e-9
        if spread > 1e-6 * max(1.0, np.nanmax(np.abs(train[col]))):
            assert abs(z.std() - 1.0) < 1e-9
    st_cat = state["categorical"]["cat"]
    one_hot = out[[c for c in out.columns if c.startswith("cat=")]].to_numpy()
    assert set(np.unique(one_hot)) <= {0.0, 1.0}
    assert (one_hot.sum(axis=1) <= 1).all()  # at most one level per row (reference: none)
    kept = 1 + len(st_cat["levels"])
    if max_levels is not None:
        assert kept <= max_levels
    assert st_cat["has_other"] == (st_cat["n_rare_levels"] > 0)
