"""Tests of the synthetic production-shaped survival table generator."""

from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survival_framework import synthetic
from survival_framework.synthetic import (
    categorical_columns,
    iter_survival_tables,
    make_survival_table,
    numeric_columns,
    write_survival_table,
)

SMALL_BLOCK = 1_000  # patched block size: many blocks on a few thousand rows


@pytest.fixture(scope="module")
def table_20k() -> pd.DataFrame:
    return make_survival_table(20_000, seed=11)


def _cat_none_to_nan(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.filter(like="cat_"):
        out[col] = out[col].where(out[col].notna(), np.nan)
    return out


# ---------------------------------------------------------------- determinism


def test_same_seed_same_frame_and_other_seed_differs():
    a = make_survival_table(3_000, seed=5)
    b = make_survival_table(3_000, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = make_survival_table(3_000, seed=6)
    assert not a["duration"].equals(c["duration"])
    assert not a["num_01"].equals(c["num_01"])


def test_smaller_table_is_prefix_of_larger():
    with mock.patch.object(synthetic, "_BLOCK_ROWS", SMALL_BLOCK):
        small = make_survival_table(1_500, seed=3)
        large = make_survival_table(4_200, seed=3)
    pd.testing.assert_frame_equal(small, large.iloc[:1_500])


@pytest.mark.parametrize("chunk_rows", [700, SMALL_BLOCK, 2_600, 10_000])
def test_chunked_parquet_writer_equals_in_memory(tmp_path, chunk_rows):
    n_rows = 4_321  # spans several blocks and (for the small chunk sizes) several chunks
    with mock.patch.object(synthetic, "_BLOCK_ROWS", SMALL_BLOCK):
        expected = make_survival_table(n_rows, seed=9)
        path = write_survival_table(tmp_path / "t.parquet", n_rows, seed=9, chunk_rows=chunk_rows)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == n_rows
    assert meta.num_row_groups == -(-n_rows // chunk_rows)
    pd.testing.assert_frame_equal(pd.read_parquet(path), expected)


def test_chunked_writer_equals_in_memory_with_real_block_size(tmp_path):
    n_rows = 2 * synthetic._BLOCK_ROWS + 1_234
    path = write_survival_table(tmp_path / "t.parquet", n_rows, seed=2024, chunk_rows=70_000)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(pd.read_parquet(path), make_survival_table(n_rows, seed=2024))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    n_rows=st.integers(min_value=0, max_value=3_500),
    chunk_rows=st.integers(min_value=1, max_value=4_000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_chunks_concatenate_to_the_in_memory_table(n_rows, chunk_rows, seed):
    with mock.patch.object(synthetic, "_BLOCK_ROWS", SMALL_BLOCK):
        expected = make_survival_table(n_rows, seed=seed)
        chunks = list(iter_survival_tables(n_rows, seed=seed, chunk_rows=max(chunk_rows, 300)))
    assert all(t.num_rows <= max(chunk_rows, 300) for t in chunks)
    got = pa.concat_tables(chunks).to_pandas() if chunks else expected.iloc[:0]
    pd.testing.assert_frame_equal(got, expected)


def test_csv_output_round_trips(tmp_path):
    expected = make_survival_table(2_500, seed=4)
    path = write_survival_table(tmp_path / "t.csv", 2_500, seed=4, chunk_rows=1_000)
    got = pd.read_csv(path)
    pd.testing.assert_frame_equal(got, _cat_none_to_nan(expected), check_dtype=False)
    gz = write_survival_table(tmp_path / "t.csv.gz", 300, seed=4)
    pd.testing.assert_frame_equal(
        pd.read_csv(gz), _cat_none_to_nan(expected.iloc[:300]), check_dtype=False
    )


def test_writer_creates_parent_dirs_and_leaves_no_temp_files(tmp_path):
    path = write_survival_table(tmp_path / "a" / "b" / "t.parquet", 100, seed=1)
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]


def test_empty_table_has_full_schema(tmp_path):
    df = make_survival_table(0)
    assert len(df) == 0
    assert list(df.columns) == list(make_survival_table(5).columns)
    got = pd.read_parquet(write_survival_table(tmp_path / "e.parquet", 0))
    assert list(got.columns) == list(df.columns)
    assert len(got) == 0


# ------------------------------------------------------------- shape & dtypes


def test_columns_and_dtypes(table_20k):
    df = table_20k
    nums, cats = numeric_columns(15), categorical_columns(5)
    assert list(df.columns) == ["customer_id", "duration", "event", *nums, *cats]
    assert nums[0] == "num_01" and nums[-1] == "num_15" and cats[-1] == "cat_5"
    assert df["customer_id"].dtype == np.int64
    assert df["customer_id"].is_unique
    assert df["duration"].dtype == np.float64
    assert df["event"].dtype == np.int8
    assert set(df["event"].unique()) == {0, 1}
    assert (df[nums].dtypes == np.float64).all()
    for col in cats:
        assert df[col].dtype == object
        assert {type(v) for v in df[col].dropna()} == {str}


def test_categorical_level_counts_are_skewed_with_rare_levels(table_20k):
    for col, n_levels in zip(categorical_columns(5), (3, 5, 8, 12, 40), strict=True):
        freq = table_20k[col].value_counts(normalize=True)
        assert len(freq) == n_levels, col
        assert freq.iloc[0] / freq.iloc[-1] > 4, col  # skewed frequencies
    assert table_20k["cat_5"].value_counts(normalize=True).min() < 0.005  # rare levels


def test_numeric_marginals_are_mixed(table_20k):
    df = table_20k
    assert df["num_01"].between(18, 90).all()  # bounded (clipped) age
    assert (df["num_02"].dropna() > 0).all() and df["num_02"].skew() > 1  # lognormal
    assert df["num_03"].skew() > 1  # right-skewed tenure
    assert df["num_05"].dropna().between(0, 100).all()  # bounded score
    assert (df["num_06"] == df["num_06"].round()).all()  # counts
    assert df["num_09"].between(0, 1).all()  # uniform
    assert (df["num_13"] == 0).mean() > 0.3  # zero-inflated
    assert df["num_01"].corr(df["num_04"]) > 0.4  # correlated pair
    assert df["num_02"].corr(df["num_07"]) > 0.2


def test_extra_and_fewer_columns():
    wide = make_survival_table(2_000, seed=1, n_numeric=18, n_categorical=7)
    assert list(wide.columns[-7:]) == categorical_columns(7)
    assert "num_18" in wide and wide["cat_7"].notna().any()
    core = make_survival_table(2_000, seed=1)
    # Core columns do not depend on how many extra columns are requested.
    pd.testing.assert_frame_equal(wide[core.columns], core)
    narrow = make_survival_table(2_000, seed=1, n_numeric=3, n_categorical=1)
    assert list(narrow.columns) == [
        "customer_id",
        "duration",
        "event",
        *numeric_columns(3),
        "cat_1",
    ]
    pd.testing.assert_frame_equal(narrow, core[narrow.columns])


def test_durations_positive_and_finite(table_20k):
    d = table_20k["duration"].to_numpy()
    assert np.isfinite(d).all()
    assert (d > 0).all()
    assert 100 < np.median(d) < 1_000  # days


def test_missing_values_present(table_20k):
    share = table_20k.isna().mean()
    missing_num = [c for c in numeric_columns(15) if share[c] > 0]
    missing_cat = [c for c in categorical_columns(5) if share[c] > 0]
    assert len(missing_num) >= 3 and len(missing_cat) >= 2
    assert share[["customer_id", "duration", "event"]].eq(0).all()
    assert 0.01 < share[missing_num].mean() < 0.15
    assert make_survival_table(2_000, seed=1, missing_rate=0.0).notna().all().all()


# ------------------------------------------------------------------ censoring


def test_censoring_rate_at_20k(table_20k):
    assert abs((1 - table_20k["event"].mean()) - 0.35) <= 0.03


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.6])
def test_other_censoring_rates(rate):
    df = make_survival_table(20_000, seed=3, censoring_rate=rate, missing_rate=0.0)
    assert abs((1 - df["event"].mean()) - rate) <= 0.03


def test_invalid_arguments():
    for kwargs in (
        {"n_rows": -1},
        {"n_rows": 10, "censoring_rate": 1.0},
        {"n_rows": 10, "censoring_rate": -0.1},
        {"n_rows": 10, "missing_rate": 0.9},
        {"n_rows": 10, "seed": -3},
        {"n_rows": 2.5},
    ):
        with pytest.raises(ValueError):
            make_survival_table(**kwargs)
    with pytest.raises(ValueError, match="extension"):
        write_survival_table("x.json", 10)
    with pytest.raises(ValueError, match="chunk_rows"):
        list(iter_survival_tables(10, chunk_rows=0))


# ---------------------------------------------------------------- the signal


@pytest.fixture(scope="module")
def survival_split():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sksurv.util import Surv

    df = make_survival_table(5_000, seed=7)
    nums, cats = numeric_columns(15), categorical_columns(5)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                cats,
            ),
        ]
    )
    train, test = df.iloc[:3_500], df.iloc[3_500:]
    x_train = pre.fit_transform(train[nums + cats])
    x_test = pre.transform(test[nums + cats])
    y_train = Surv.from_arrays(train["event"].astype(bool), train["duration"])
    return x_train, y_train, x_test, test["event"].astype(bool).to_numpy(), test["duration"]


def _c_index(model, split) -> float:
    from sksurv.metrics import concordance_index_censored

    x_train, y_train, x_test, event, duration = split
    model.fit(x_train, y_train)
    return concordance_index_censored(event, duration, model.predict(x_test))[0]


@pytest.fixture(scope="module")
def cox_c_index(survival_split) -> float:
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    return _c_index(CoxPHSurvivalAnalysis(alpha=0.1), survival_split)


def test_cox_finds_signal(cox_c_index):
    assert cox_c_index > 0.62


def test_random_survival_forest_beats_cox(survival_split, cox_c_index):
    from sksurv.ensemble import RandomSurvivalForest

    rsf = RandomSurvivalForest(
        n_estimators=30, min_samples_leaf=20, random_state=0, n_jobs=1, low_memory=True
    )
    rsf_c_index = _c_index(rsf, survival_split)
    assert rsf_c_index > cox_c_index + 0.02, (rsf_c_index, cox_c_index)


# ------------------------------------------------------------------ the script


def test_script_cli_and_snakemake_entry_points(tmp_path, monkeypatch):
    import generate_synthetic_data as script

    out = tmp_path / "cli.parquet"
    assert script.cli(["--rows", "1500", "--seed", "3", "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), make_survival_table(1_500, seed=3))

    monkeypatch.setattr("sys.stderr", __import__("sys").stderr)
    smk = SimpleNamespace(
        params=SimpleNamespace(n_rows=1_200, seed=3, censoring_rate=0.35),
        output=[str(tmp_path / "smk.parquet")],
        log=[str(tmp_path / "smk.log")],
    )
    script.main_snakemake(smk)
    pd.testing.assert_frame_equal(
        pd.read_parquet(smk.output[0]), make_survival_table(1_200, seed=3)
    )
    assert "wrote" in (tmp_path / "smk.log").read_text()
