"""Final model artifact and batch predictions for new data."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from survival_framework import preprocess
from survival_framework.contract import (
    MEDIAN_COL,
    RISK_COL,
    ROW_COL,
    SURV_PREFIX,
    prediction_column,
)
from survival_framework.errors import InputValidationError
from survival_framework.final import best_model, fit_final_model
from survival_framework.predict import load_artifact, predict_file
from survival_framework.schema import validate_survival_table

TIMES = [300.0, 600.0, 900.0]


@pytest.fixture(scope="module")
def artifact(gbsg2, tmp_path_factory):
    clean, schema = validate_survival_table(gbsg2, "gbsg2.csv", "time", "event")
    art = fit_final_model("coxph", {"alpha": 1e-4}, clean, schema, TIMES, seed=1, n_folds=3)
    path = tmp_path_factory.mktemp("final") / "model.joblib"
    joblib.dump(art, path)
    return load_artifact(path), clean


@pytest.fixture(scope="module")
def new_data(gbsg2):
    return gbsg2.drop(columns=["time", "event"]).iloc[:250].reset_index(drop=True)


def _expected(art, df):
    X = preprocess.transform(df, art["preprocessor"]).to_numpy(float)
    est = art["estimator"]
    return est.predict(X), est.predict_survival(X, np.asarray(TIMES))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batched_predictions_equal_direct_predictions(artifact, new_data, tmp_path, suffix):
    art, _ = artifact
    src = tmp_path / f"new{suffix}"
    if suffix == ".csv":
        new_data.to_csv(src, index=False)
    else:
        new_data.to_parquet(src, row_group_size=60)
    out = tmp_path / "pred.parquet"
    summary = predict_file(art, src, out, batch_size=64)
    assert summary["n_rows"] == 250 and summary["n_batches"] == 4
    pred = pd.read_parquet(out)
    risk, surv = _expected(art, new_data)
    assert list(pred[ROW_COL]) == list(range(250))
    np.testing.assert_allclose(pred[RISK_COL], risk, rtol=1e-10)
    np.testing.assert_allclose(
        pred[[prediction_column(300), prediction_column(600), prediction_column(900)]],
        surv,
        rtol=1e-10,
    )
    # median time: S(median) <= 0.5 on the model's curve, and S is > 0.5 just before it
    ok = pred[MEDIAN_COL].notna()
    grid = np.asarray(art["median_grid"])
    X = preprocess.transform(new_data, art["preprocessor"]).to_numpy(float)
    curve = art["estimator"].predict_survival(X, grid)
    for i in np.flatnonzero(ok.to_numpy())[:20]:
        j = int(np.searchsorted(grid, pred[MEDIAN_COL][i]))
        assert curve[i, j] <= 0.5 and (j == 0 or curve[i, j - 1] > 0.5)
    assert (curve[~ok.to_numpy()] > 0.5).all()


def test_default_times_and_batch_size_do_not_change_results(artifact, new_data, tmp_path):
    art, _ = artifact
    src = tmp_path / "new.parquet"
    new_data.to_parquet(src)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    predict_file(art, src, a, times=[450.0], batch_size=7)
    predict_file(art, src, b, times=[450.0], batch_size=10_000)
    pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))
    assert prediction_column(450) in pd.read_parquet(a)
    predict_file(art, src, a)  # default: the artifact's times
    assert [c for c in pd.read_parquet(a) if c.startswith(SURV_PREFIX)] == [
        prediction_column(300),
        prediction_column(600),
        prediction_column(900),
    ]


def test_missing_column_is_rejected_naming_file_and_column(artifact, new_data, tmp_path):
    art, _ = artifact
    src = tmp_path / "bad.csv"
    new_data.drop(columns=["pnodes"]).to_csv(src, index=False)
    with pytest.raises(InputValidationError) as err:
        predict_file(art, src, tmp_path / "out.parquet")
    msg = str(err.value)
    assert "bad.csv" in msg and "'pnodes'" in msg and "missing" in msg
    assert not (tmp_path / "out.parquet").exists()


def test_non_numeric_value_is_rejected_with_row(artifact, new_data, tmp_path):
    art, _ = artifact
    df = new_data.astype({"age": object})
    df.loc[130, "age"] = "old"
    src = tmp_path / "bad.csv"
    df.to_csv(src, index=False)
    with pytest.raises(InputValidationError, match=r"bad.csv, column 'age'.*row 130 = 'old'"):
        predict_file(art, src, tmp_path / "out.parquet", batch_size=50)
    assert not (tmp_path / "out.parquet").exists()  # nothing half-written


def test_parquet_types_are_checked(artifact, new_data, tmp_path):
    art, _ = artifact
    src = tmp_path / "bad.parquet"
    new_data.assign(tsize=new_data["tsize"].astype(str)).to_parquet(src)
    with pytest.raises(InputValidationError, match=r"column 'tsize': expected a numeric column"):
        predict_file(art, src, tmp_path / "out.parquet")
    new_data.assign(horTh=(new_data["horTh"] == "yes").astype(int)).to_parquet(src)
    with pytest.raises(InputValidationError, match=r"column 'horTh': categorical column"):
        predict_file(art, src, tmp_path / "out.parquet")


def test_unseen_levels_and_extra_columns_are_tolerated(artifact, new_data, tmp_path):
    art, _ = artifact
    df = new_data.assign(extra=1.0)
    df.loc[:9, "tgrade"] = "IV"  # not a training level
    src = tmp_path / "new.csv"
    df.to_csv(src, index=False)
    summary = predict_file(art, src, tmp_path / "out.parquet")
    assert summary["unseen_levels"] == {"tgrade": 10}
    assert pd.read_parquet(tmp_path / "out.parquet")[RISK_COL].notna().all()


def test_artifact_holds_model_preprocessing_and_schema(artifact):
    art, clean = artifact
    assert art["model_name"] == "coxph" and art["n_train"] == len(clean)
    cols = {c["name"]: c for c in art["training_schema"]["columns"]}
    assert cols["tgrade"]["kind"] == "categorical" and cols["tgrade"]["levels"] == [
        "I",
        "II",
        "III",
    ]
    assert cols["age"]["kind"] == "numeric" and cols["age"]["input_dtype"] == "float64"
    assert art["preprocessor"]["n_train"] == len(clean)


def test_best_model_skips_failed_models():
    board = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "model": ["rsf", "coxph", "gbsa"],
            "uno_c_mean": [np.nan, 0.7, 0.65],
            "n_folds": [0, 5, 5],
        }
    )
    assert best_model(board) == "coxph"
    with pytest.raises(ValueError, match="no model"):
        best_model(board.assign(uno_c_mean=np.nan))
