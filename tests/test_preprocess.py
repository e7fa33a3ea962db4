import numpy as np
import pandas as pd
import pytest

from conftest import random_survival_table
from survival_framework import preprocess as pp
from survival_framework.contract import OTHER


@pytest.fixture
def table():
    return random_survival_table(np.random.default_rng(0), 300)


def test_statistics_come_from_training_rows_only(table):
    train, test = table.iloc[:200], table.iloc[200:]
    state = pp.fit_state(train, ["x1", "x2"], ["cat"])
    x2 = train["x2"].to_numpy()
    med = np.nanmedian(x2)
    filled = np.where(np.isnan(x2), med, x2)
    assert state["numeric"]["x2"]["median"] == pytest.approx(med, abs=1e-12)
    assert state["numeric"]["x2"]["mean"] == pytest.approx(filled.mean(), abs=1e-12)
    assert state["numeric"]["x2"]["scale"] == pytest.approx(filled.std(), abs=1e-12)
    # wildly different test rows do not change the state
    test_shifted = test.assign(x1=test["x1"] * 1e6, x2=np.nan, cat="zzz")
    again = pp.fit_state(train, ["x1", "x2"], ["cat"])
    assert again == state
    out = pp.transform(test_shifted, state)
    assert np.allclose(out["x2"], (med - filled.mean()) / filled.std())


def test_transform_train_is_standardised(table):
    state = pp.fit_state(table, ["x1", "x2"], ["cat"])
    out = pp.transform(table, state)
    assert np.allclose(out[["x1", "x2"]].mean(), 0, atol=1e-12)
    assert np.allclose(out[["x1", "x2"]].std(ddof=0), 1, atol=1e-12)
    assert not out.isna().any().any()


def test_rare_levels_pooled_and_unseen_levels_handled():
    train = pd.DataFrame({"c": ["a"] * 60 + ["b"] * 38 + ["r1", "r2"]})
    state = pp.fit_state(train, [], ["c"], min_frequency=0.05)
    st = state["categorical"]["c"]
    assert st["reference"] == "a" and st["levels"] == ["b"] and st["has_other"]
    new = pd.DataFrame({"c": ["a", "b", "r1", "never-seen", None]})
    out = pp.transform(new, state)
    assert list(out.columns) == ["c=b", f"c={OTHER}"]
    np.testing.assert_array_equal(out["c=b"], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(out[f"c={OTHER}"], [0, 0, 1, 1, 0])  # missing -> mode 'a'


def test_unseen_level_without_rare_levels_maps_to_reference():
    train = pd.DataFrame({"c": ["a"] * 6 + ["b"] * 4})
    state = pp.fit_state(train, [], ["c"])
    out = pp.transform(pd.DataFrame({"c": ["new"]}), state)
    assert list(out.columns) == ["c=b"] and out.iloc[0, 0] == 0


def test_state_is_json_serialisable(table):
    import json

    state = pp.fit_state(table, ["x1", "x2"], ["cat"])
    assert json.loads(json.dumps(state)) == state


def test_transform_matrix_equals_transform_and_releases_columns():
    rng = np.random.default_rng(11)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=300),
            "b": rng.choice(["x", "y", "z", None], 300),
            "c": rng.choice(["u", "v", "w"], 300, p=[0.6, 0.399, 0.001]),
            "keep": np.arange(300),
        }
    )
    df.loc[[3, 7], "a"] = np.nan
    state = pp.fit_state(df, ["a"], ["b", "c"], 0.01)
    expected = pp.transform(df, state).to_numpy()
    raw = df.copy()
    X = pp.transform_matrix(raw, state, release=True)
    assert X.flags.f_contiguous
    np.testing.assert_array_equal(X, expected)
    assert list(raw.columns) == ["keep"]  # the raw feature columns were dropped
    X32 = pp.transform_matrix(df, state, dtype=np.float32)
    assert X32.dtype == np.float32
    np.testing.assert_array_equal(X32, expected.astype(np.float32))
