"""Failed fits and failed jobs reach the user: unranked models, the end-of-run summary, the
exit status, one console line per failed job and input errors that are not retried.

Fits fail for real (no mock of the fitting code): ``coxph`` with scikit-survival's solver
and ``n_iter: 0`` is rejected by scikit-survival at fit time, ``coxnet`` with
``l1_ratio: 5.0`` by glmnet's parameter check.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.iocontainers import Namedlist

from conftest import copy_workflow, snakemake
from survival_framework.aggregate import failed_fits, failure_summary, leaderboard, metrics_long
from survival_framework.errors import InputValidationError
from survival_framework.final import best_model
from survival_framework.io import write_csv
from survival_framework.job import INPUT_ERROR_STATUS, rule_job
from survival_framework.metrics import METRIC_NAMES
from survival_framework.models import MODEL_NAMES

# ------------------------------------------------------------------------- unit: leaderboard


def _record(model: str, fold: int, uno_c: float | None, error: str = "ValueError") -> dict:
    """A metrics.json record: ``uno_c`` None = a failed fold."""
    if uno_c is None:
        return {
            "model": model,
            "fold": fold,
            "status": "failed",
            "metrics": dict.fromkeys(METRIC_NAMES, float("nan")),
            "error": {"type": error, "message": f"{model} broke\nsecond line", "traceback": ""},
        }
    metrics = {m: uno_c for m in METRIC_NAMES}
    return {"model": model, "fold": fold, "status": "ok", "metrics": metrics, "error": None}


def _board(records: list[dict]) -> pd.DataFrame:
    return leaderboard(metrics_long(records), records)


def test_leaderboard_never_ranks_a_model_without_a_successful_fold():
    records = [
        *(_record("aaa", k, None) for k in range(3)),  # alphabetically first, all failed
        _record("mid", 0, 0.70),
        _record("mid", 1, None),
        _record("mid", 2, 0.72),
        *(_record("top", k, 0.80 + k / 100) for k in range(3)),
    ]
    board = _board(records)
    assert board["model"].tolist() == ["top", "mid", "aaa"]  # unranked after the ranked
    assert board["rank"].tolist()[:2] == [1, 2] and pd.isna(board["rank"].iloc[2])
    by = board.set_index("model")
    assert by.loc["aaa", "n_folds"] == 0 and by.loc["aaa", "n_failed"] == 3
    assert by.loc["mid", "n_folds"] == 2 and by.loc["mid", "n_failed"] == 1
    assert by.loc["mid", "uno_c_mean"] == pytest.approx(0.71)  # the failed fold left out
    assert by.loc["mid", "uno_c_std"] == pytest.approx(np.std([0.70, 0.72], ddof=1))
    assert by.loc["aaa", [f"{m}_mean" for m in METRIC_NAMES]].isna().all()
    assert best_model(board) == "top"


def test_a_failed_fold_counts_as_failed_even_with_metrics_in_its_record():
    records = [_record("m", 0, 0.9), _record("m", 1, 0.7), _record("x", 0, 0.8)]
    records[0]["status"] = "failed"  # e.g. failed after scoring: metrics must not count
    board = _board(records).set_index("model")
    assert board.loc["m", "n_folds"] == 1 and board.loc["m", "n_failed"] == 1
    assert board.loc["m", "uno_c_mean"] == pytest.approx(0.7)
    assert np.isnan(metrics_long(records).query("model == 'm' and fold == 0")["value"]).all()


def test_leaderboard_with_every_fit_failed_ranks_nothing(tmp_path):
    records = [_record(m, k, None) for m in ("coxph", "rsf") for k in range(3)]
    board = _board(records)
    assert board["rank"].isna().all() and (board["n_folds"] == 0).all()
    assert (board["n_failed"] == 3).all()
    # in the CSV the missing rank is an empty cell; read back, the best model is refused
    write_csv(board, tmp_path / "leaderboard.csv")
    assert (tmp_path / "leaderboard.csv").read_text().splitlines()[1].startswith(",coxph,")
    read = pd.read_csv(tmp_path / "leaderboard.csv")
    with pytest.raises(ValueError, match=r"no model is ranked.*coxph \(3 failed\)"):
        best_model(read)


def test_best_model_skips_unranked_models():
    board = pd.DataFrame(
        {
            "rank": pd.array([1, 2, pd.NA], dtype="Int64"),
            "model": ["rsf", "coxph", "gbsa"],
            "uno_c_mean": [0.71, 0.7, np.nan],
            "n_folds": [3, 3, 0],
            "n_failed": [0, 0, 3],
        }
    )
    assert best_model(board.iloc[::-1]) == "rsf"  # by rank, not by row order
    assert best_model(board.assign(rank=pd.array([pd.NA, 1, pd.NA], dtype="Int64"))) == "coxph"


def test_failure_summary_names_each_failed_fit_with_its_first_error_line():
    records = [_record("rsf", 1, None), _record("rsf", 0, None, "KeyError"), _record("cox", 0, 0.7)]
    assert failed_fits(records) == [
        "rsf fold 0: KeyError: rsf broke",
        "rsf fold 1: ValueError: rsf broke",
    ]
    assert failure_summary(records).splitlines() == [
        "2 of 3 model x fold fits failed:",
        "  rsf fold 0: KeyError: rsf broke",
        "  rsf fold 1: ValueError: rsf broke",
    ]
    assert failure_summary(records[2:]) is None
    many = [_record("m", k, None) for k in range(25)]
    lines = failure_summary(many, max_lines=20).splitlines()
    assert len(lines) == 22 and lines[-1].startswith("  ... and 5 more")


# ------------------------------------------------------------------------- unit: rule_job


def _console() -> str:
    return sys.__stderr__.getvalue()


def test_a_failing_job_prints_one_line_with_its_log(fake_job):
    with pytest.raises(ZeroDivisionError), rule_job(fake_job):
        raise ZeroDivisionError("division by zero\nmore detail")
    log = fake_job.log[0]
    line = "fit_model model=rsf, fold=2: ZeroDivisionError: division by zero"
    assert _console() == f"{line} (full traceback: {log})\n"
    assert not Path(fake_job.output.provenance).exists()


def _attempt(smk, attempt: int | None, error: Exception | None = None) -> int | None:
    """Run one attempt of the job (``attempt`` None: number unknown) whose body raises
    ``error``; return the exit status (None: the body ran and the job succeeded)."""
    smk.resources = Namedlist(fromdict={} if attempt is None else {"attempt": attempt})
    status = None
    try:
        with rule_job(smk):
            if error is not None:
                raise error
    except SystemExit as exit_:
        status = exit_.code
    finally:
        sys.stderr.close()  # the job's log, opened by setup_logging
    return status


BAD = InputValidationError("in.csv", "bad value", column="a")
MESSAGE = "InputValidationError: in.csv, column 'a': bad value"


def test_input_error_is_not_rerun_by_a_retry_on_the_same_input(fake_job):
    assert _attempt(fake_job, 1, BAD) == INPUT_ERROR_STATUS
    assert _console() == MESSAGE + "\n"
    # Snakemake's retry: exits at once, with the same status, silently; the log says why
    ran = []
    fake_job.resources = Namedlist(fromdict={"attempt": 2})
    with pytest.raises(SystemExit) as exit_, rule_job(fake_job):
        ran.append(True)
    sys.stderr.close()
    assert not ran and exit_.value.code == INPUT_ERROR_STATUS
    assert _console() == MESSAGE + "\n"
    log = Path(fake_job.log[0]).read_text()
    assert "attempt 2: same inputs as attempt 1" in log and log.endswith(MESSAGE + "\n")


def test_only_a_retry_on_the_same_input_after_an_input_error_is_skipped(fake_job):
    assert _attempt(fake_job, 1, BAD) == INPUT_ERROR_STATUS
    Path(fake_job.input.table).write_text("a\n2\n")  # the input changed: the retry runs
    assert _attempt(fake_job, 2) is None
    # a new run (attempt 1) on the same input runs and prints the error again
    assert _attempt(fake_job, 1, BAD) == _attempt(fake_job, 1, BAD) == INPUT_ERROR_STATUS
    assert _console().count(MESSAGE) == 3
    # other parameters: the retry runs
    fake_job.params = Namedlist(fromdict={"seed": 4})
    assert _attempt(fake_job, 2) is None
    # a failure that records nothing (a bug, memory), then a retry: it runs
    with pytest.raises(MemoryError):
        _attempt(fake_job, 1, MemoryError("out of memory"))
    assert _attempt(fake_job, 2, BAD) == INPUT_ERROR_STATUS
    assert _console().count(MESSAGE) == 4
    # without the attempt number (no profile), every attempt runs and prints
    assert _attempt(fake_job, None, BAD) == _attempt(fake_job, None, BAD) == INPUT_ERROR_STATUS
    assert _console().count(MESSAGE) == 6


# ------------------------------------------------------------------------- real runs

LEADERBOARD = "results/leaderboard.csv"
FAILING = {"solver": "sksurv", "ties": "efron", "n_iter": 0}  # scikit-survival rejects n_iter 0


ALL_FAIL = {"coxph": FAILING}
PARTIAL = {"coxph": {"alpha": 0.0001}, "coxnet": {"l1_ratio": 5.0, "alpha": 0.01}}


def _run(wd: Path, models: dict[str, dict], *args: str):
    """Snakemake on the test config (GBSG2, 3 folds) with only ``models`` (name -> params)
    enabled, through an extra config file."""
    spec = {m: {"enabled": False} for m in MODEL_NAMES}
    spec.update({m: {"enabled": True, "params": p} for m, p in models.items()})
    (wd / "models.yaml").write_text(yaml.safe_dump({"models": spec}))
    config = ("--configfile", "config/test/config.yaml", "models.yaml")
    return snakemake(wd, *args, *config, check=False, timeout=600)


@pytest.fixture(scope="module")
def all_fail(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("allfail"))
    return wd, _run(wd, ALL_FAIL, LEADERBOARD, "--cores", "2")


@pytest.mark.integration
def test_a_run_where_every_fit_fails_exits_nonzero_with_a_summary(all_fail):
    wd, proc = all_fail
    assert proc.returncode != 0
    console = proc.stderr
    summary = console[console.index("3 of 3 model x fold fits failed:") :]
    for fold in range(3):
        assert f"coxph fold {fold}: InvalidParameterError: The 'n_iter' parameter" in summary
    assert "no model x fold fit succeeded: results/leaderboard.csv ranks no model" in summary
    # the outputs stay, for the user to read
    board = pd.read_csv(wd / LEADERBOARD)
    assert board["model"].tolist() == ["coxph"] and board["rank"].isna().all()
    assert board.loc[0, "n_folds"] == 0 and board.loc[0, "n_failed"] == 3
    assert pd.read_csv(wd / "results/cv_metrics.csv")["value"].isna().all()


@pytest.mark.integration
def test_the_best_model_of_a_run_without_ranked_models_fails_clearly(all_fail, tmp_path):
    wd = tmp_path / "allfail"
    shutil.copytree(all_fail[0], wd, symlinks=True)
    proc = _run(wd, ALL_FAIL, "results/final/best/model.joblib", "--cores", "1", "--retries", "0")
    assert proc.returncode != 0
    assert (
        "fit_best_model: ValueError: no model is ranked on the leaderboard: every "
        "cross-validation fit failed (coxph (3 failed))"
    ) in proc.stderr
    assert "(full traceback: logs/final/best.log)" in proc.stderr
    assert "3 of 3 model x fold fits failed:" in proc.stderr  # onerror: the summary too


@pytest.mark.integration
def test_a_failing_job_prints_its_error_line_on_the_console(all_fail, tmp_path):
    wd = tmp_path / "allfail"
    shutil.copytree(all_fail[0], wd, symlinks=True)
    target = "results/cv/coxph/fold_1/metrics.json"
    proc = _run(wd, ALL_FAIL, target, "--cores", "1", "--retries", "0", "--config", "strict=True")
    assert proc.returncode != 0
    line = (
        "fit_model model=coxph, fold=1: InvalidParameterError: The 'n_iter' parameter of "
        "CoxPHSurvivalAnalysis must be an int in the range [1, inf). Got 0 instead. "
        "(full traceback: logs/cv/coxph/fold_1.log)"
    )
    assert proc.stderr.count(line) == 1, proc.stderr[-3000:]
    assert "Traceback" in (wd / "logs/cv/coxph/fold_1.log").read_text()


@pytest.mark.integration
def test_partial_failure_keeps_the_others_ranked_and_exits_0(tmp_path):
    wd = copy_workflow(tmp_path)
    proc = _run(wd, PARTIAL, LEADERBOARD, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    board = pd.read_csv(wd / LEADERBOARD)
    assert board["model"].tolist() == ["coxph", "coxnet"]
    assert board["rank"].iloc[0] == 1 and pd.isna(board["rank"].iloc[1])
    by = board.set_index("model")
    assert by.loc["coxph", "n_folds"] == 3 and by.loc["coxph", "n_failed"] == 0
    assert by.loc["coxnet", "n_folds"] == 0 and by.loc["coxnet", "n_failed"] == 3
    assert 0.6 < by.loc["coxph", "uno_c_mean"] < 1
    summary = proc.stderr[proc.stderr.index("3 of 6 model x fold fits failed:") :]
    assert summary.count("coxnet fold ") == 3 and "l1_ratio" in summary
    assert "no model x fold fit succeeded" not in proc.stderr


@pytest.mark.integration
def test_a_validation_error_is_printed_once_despite_retries(tmp_path):
    wd = copy_workflow(tmp_path)
    assert yaml.safe_load((wd / "profiles/default/config.yaml").read_text())["retries"] == 1
    rows = "".join(f"{i + 1},{int(i == 4)},{i % 7}\n" for i in range(60))
    (wd / "single.csv").write_text("time,event,age\n" + rows)
    data = "data={'path': 'single.csv', 'duration_col': 'time', 'event_col': 'event'}"
    proc = snakemake(
        wd, "results/data/clean.parquet", "--cores", "1", "--config", data, check=False
    )
    assert proc.returncode != 0
    message = (
        "InputValidationError: single.csv, column 'event': a single event (row 4); at least 25 "
        "events are needed (cv.n_folds x cv.min_rows_per_fold)"
    )
    console = proc.stdout + proc.stderr
    assert "Trying to restart job" in console and "attempt=2" in console  # it was retried
    assert console.count(message) == 1, console[-4000:]
    log = (wd / "logs/data/validate_data.log").read_text()
    assert "attempt 2: same inputs as attempt 1" in log
    # the error ends the job's own output (the warm worker's usage note may follow it)
    lines = [line for line in log.splitlines() if not line.startswith("job worker: ran in")]
    assert lines[-1].endswith(message) and log.endswith("\n")
    marker = json.loads((wd / "logs/data/.validate_data.log.input-error.json").read_text())
    assert marker["attempt"] == 1 and marker["message"] in message
