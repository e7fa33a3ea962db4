"""Final model artifact and batch predictions for new data."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from snakemake.iocontainers import Namedlist

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
from survival_framework.predict import (
    PARQUET_METADATA_KEY,
    load_artifact,
    predict_file,
    training_time_range,
)
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
    """The leaderboard's rank decides (it is empty for a model without a finite mean of the
    primary metric); a ranked model without successful folds is skipped too."""
    board = pd.DataFrame(
        {
            "rank": pd.array([1, 2, 3, pd.NA], dtype="Int64"),
            "model": ["rsf", "coxph", "gbsa", "km"],
            "uno_c_mean": [0.8, 0.7, 0.65, np.nan],
            "n_folds": [0, 5, 5, 0],
        }
    )
    assert best_model(board) == "coxph"
    assert best_model(board.assign(rank=pd.array([3, 2, 1, pd.NA], dtype="Int64"))) == "gbsa"
    with pytest.raises(ValueError, match="no model"):
        best_model(board.assign(rank=pd.array([pd.NA] * 4, dtype="Int64")))


def _metadata(path) -> dict:
    return json.loads(pq.read_schema(path).metadata[PARQUET_METADATA_KEY])


def test_times_beyond_the_training_data_warn_once_and_are_recorded(
    artifact, new_data, gbsg2, tmp_path, caplog
):
    art, _ = artifact
    last_event = float(gbsg2.loc[gbsg2["event"] == 1, "time"].max())
    last_obs = float(gbsg2["time"].max())
    assert training_time_range(art) == (last_event, last_obs) == (2456.0, 2659.0)
    src, out = tmp_path / "new.parquet", tmp_path / "pred.parquet"
    new_data.to_parquet(src)
    times = [600.0, 2500.0, 3000.0]
    with caplog.at_level(logging.WARNING, logger="survival_framework.predict"):
        summary = predict_file(art, src, out, times=times, batch_size=100)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [summary["time_range"]["warning"]] and "\n" not in warnings[0]
    assert warnings[0].startswith(
        "prediction time(s) 2500, 3000 beyond the last training event time 2456 "
        "(last training observation 2659; beyond it: 3000)"
    )
    expected = {
        "last_event_time": 2456.0,
        "last_observation_time": 2659.0,
        "beyond_last_event": [2500.0, 3000.0],
        "beyond_last_observation": [3000.0],
    }
    assert _metadata(out) == {"times": times, **expected}  # in the file itself
    assert {k: v for k, v in summary["time_range"].items() if k != "warning"} == expected
    # what the warning is about: the Cox model repeats its value at the last event time
    pred = pd.read_parquet(out)
    X = preprocess.transform(new_data, art["preprocessor"]).to_numpy(float)
    at_last = art["estimator"].predict_survival(X, np.array([last_event]))[:, 0]
    for t in (2500, 3000):
        np.testing.assert_allclose(pred[prediction_column(t)], at_last, rtol=1e-12)


def test_times_within_the_training_data_give_no_warning(artifact, new_data, tmp_path, caplog):
    art, _ = artifact
    src, out = tmp_path / "new.csv", tmp_path / "pred.parquet"
    new_data.to_csv(src, index=False)
    with caplog.at_level(logging.WARNING, logger="survival_framework.predict"):
        summary = predict_file(art, src, out, times=[600.0, 2456.0], batch_size=64)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert summary["time_range"]["warning"] is None
    meta = _metadata(out)
    assert meta["beyond_last_event"] == [] and meta["beyond_last_observation"] == []
    assert meta["times"] == [600.0, 2456.0]
    assert pd.read_parquet(out).shape == (250, 5)  # metadata does not change the columns


@pytest.fixture
def predict_job(artifact, new_data, tmp_path, monkeypatch):
    """A ``snakemake`` object of a predict_new_data job; stderr and logging restored."""
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    monkeypatch.setattr(sys, "__stderr__", io.StringIO())  # the console
    root = logging.getLogger()
    handlers = root.handlers[:]
    art, _ = artifact
    model = tmp_path / "model.joblib"
    joblib.dump({**art, "provenance": {"data_sha256": "0" * 64}}, model)  # as fit_final_model.py
    new_data.to_csv(tmp_path / "new.csv", index=False)
    yield SimpleNamespace(
        rule="predict_new_data",
        input=Namedlist(fromdict={"model": str(model), "data": str(tmp_path / "new.csv")}),
        output=Namedlist(
            fromdict={
                "predictions": str(tmp_path / "out/new.parquet"),
                "provenance": str(tmp_path / "out/new.provenance.json"),
            }
        ),
        params=Namedlist(fromdict={"times": [600.0, 3000.0], "batch_size": 100}),
        wildcards=Namedlist(fromdict={"name": "new"}),
        log=[str(tmp_path / "job.log")],
    )
    for handler in set(root.handlers) - set(handlers):
        handler.stream.close()  # the log file, opened by setup_logging
    root.handlers[:] = handlers


def test_predict_script_warns_on_the_console_and_in_the_log_and_records_it(predict_job):
    import predict_new_data

    predict_new_data.main(predict_job)
    console = sys.__stderr__.getvalue().splitlines()
    assert len(console) == 1 and console[0].startswith(
        f"predict_new_data {predict_job.input.data}: "
    )
    assert "prediction time(s) 3000 beyond the last training event time 2456" in console[0]
    log = Path(predict_job.log[0]).read_text()
    assert "WARNING survival_framework: prediction time(s) 3000 beyond" in log
    record = json.loads(Path(predict_job.output.provenance).read_text())
    time_range = record["prediction"]["time_range"]
    assert time_range["beyond_last_event"] == [3000.0]
    assert time_range["beyond_last_observation"] == [3000.0]
    assert _metadata(predict_job.output.predictions)["beyond_last_event"] == [3000.0]
