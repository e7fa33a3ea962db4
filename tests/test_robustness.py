"""Robustness of real workflow runs: failing fits, strict mode, odd column names, a run
killed mid-way and resumed, and results independent of ``--cores``."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import copy_workflow, processes_with, snakemake
from survival_framework.contract import RISK_COL
from survival_framework.cv import fit_and_evaluate
from survival_framework.matrix import FoldArrays
from survival_framework.metrics import METRIC_NAMES
from survival_framework.models import model_seed

# ------------------------------------------------------------------------- unit: failing fits


def _small_table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    t = rng.exponential(np.exp(-x[:, 0])) * 10 + 0.01
    c = rng.exponential(15, n)
    return pd.DataFrame(
        {"time": np.minimum(t, c), "event": (t <= c).astype(int), "a": x[:, 0], "b": x[:, 1]}
    )


def _fit(model: str, params: dict, strict: bool = False):
    df = _small_table()
    train, test = (
        FoldArrays.from_frame(part, ["a", "b"], "time", "event") for part in (df[:80], df[80:])
    )
    times = np.quantile(df.loc[df.event == 1, "time"], [0.2, 0.4, 0.6])
    return fit_and_evaluate(
        model,
        params,
        train,
        test,
        times,
        times[-1],
        seed=1,
        strict=strict,
    )


def test_failing_fit_is_recorded_not_raised():
    record, predictions = _fit("coxnet", {"l1_ratio": 5.0, "alpha": 0.01})
    assert record["status"] == "failed" and predictions is None
    assert record["error"]["type"] and "l1_ratio" in record["error"]["message"]
    assert "Traceback" in record["error"]["traceback"]
    assert all(np.isnan(record["metrics"][m]) for m in METRIC_NAMES)
    with pytest.raises(ValueError, match="l1_ratio"):
        _fit("coxnet", {"l1_ratio": 5.0, "alpha": 0.01}, strict=True)


def test_warnings_of_a_fit_are_captured_in_its_record():
    record, _ = _fit("coxnet", {"l1_ratio": 0.5, "alpha": 0.01, "max_iter": 1})
    assert record["status"] == "ok"
    categories = {w["category"] for w in record["warnings"]}
    assert "ConvergenceWarning" in categories, record["warnings"]


# ------------------------------------------------------------------------- a workflow with odd
# names, data warnings and one model that fails at fit time

CV_TARGETS = ("results/cv_metrics.csv", "results/leaderboard.csv")
TEST_CONFIG = ("--configfile", "config/test/config.yaml")

ODD = {
    "time": "follow-up (days)",
    "event": "évènement?",
    "id": "patient #",
    "age": "âge / 10",
    "bmi": "BMI [kg/m²]",
    "blood": "groupe sanguin",
    "zip": "zip code",
    "symbols": "x=1 & y%",
    "const": "constant",
    "empty": "vide 🙂",
}


def _odd_table(n: int = 240, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(6, 1, n)
    bmi = np.where(rng.random(n) < 0.1, np.nan, rng.normal(25, 4, n))
    blood = rng.choice(["A+", "B−", "O", "AB"], n)
    t = rng.exponential(np.exp(-(age - 6) - 0.4 * (blood == "O"))) * 300
    c = rng.exponential(500, n)
    time_ = np.round(np.minimum(t, c), 1)
    time_[:3] = 0.0  # zero durations (fixed with a warning)
    event = np.where(t <= c, "yes", "no")
    return pd.DataFrame(
        {
            ODD["id"]: [f"p-{i:04d}" for i in range(n)],
            ODD["time"]: time_,
            ODD["event"]: event,
            ODD["age"]: age,
            ODD["bmi"]: bmi,
            ODD["blood"]: blood,
            ODD["zip"]: [f"Z{v:03d}" for v in rng.integers(0, 150, n)],
            ODD["symbols"]: rng.normal(size=n),
            ODD["const"]: 1.0,
            ODD["empty"]: np.nan,
        }
    )


ODD_CONFIG = f"""
run_type: production
data:
  path: odd.parquet
  duration_col: {json.dumps(ODD["time"], ensure_ascii=False)}
  event_col: {json.dumps(ODD["event"], ensure_ascii=False)}
  id_col: {json.dumps(ODD["id"], ensure_ascii=False)}
cv: {{n_folds: 2, seed: 11}}
preprocess: {{max_levels: 20}}
evaluation: {{n_times: 5}}
models:
  coxph: {{enabled: true, params: {{alpha: 0.0001}}}}
  coxnet: {{enabled: true, params: {{l1_ratio: 5.0, alpha: 0.01}}}}   # impossible: fails at fit
  rsf: {{enabled: false}}
  gbsa: {{enabled: false}}
  weibull_aft: {{enabled: true, params: {{penalizer: 0.01}}}}
"""


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("odd"))
    _odd_table().to_parquet(wd / "odd.parquet", index=False)
    (wd / "odd.yaml").write_text(ODD_CONFIG, encoding="utf-8")
    # the CV results, and the report rule that pools every model's predictions
    targets = [*CV_TARGETS, "results/report/time_auc.png"]
    snakemake(wd, *targets, "--cores", "2", "--configfile", "config/config.yaml", "odd.yaml")
    return wd


@pytest.mark.integration
def test_failing_model_is_recorded_and_others_unaffected(odd_run):
    wd = odd_run
    for fold in (0, 1):
        rec = json.loads((wd / f"results/cv/coxnet/fold_{fold}/metrics.json").read_text())
        assert rec["status"] == "failed"
        assert rec["error"]["type"] and "l1_ratio" in rec["error"]["message"]
        assert all(v is None or np.isnan(v) for v in rec["metrics"].values())
        assert isinstance(rec["warnings"], list)
        assert "failed" in (wd / f"logs/cv/coxnet/fold_{fold}.log").read_text()
        for model in ("coxph", "weibull_aft"):
            rec = json.loads((wd / f"results/cv/{model}/fold_{fold}/metrics.json").read_text())
            assert rec["status"] == "ok" and rec["error"] is None
            assert isinstance(rec["warnings"], list)
    board = pd.read_csv(wd / "results/leaderboard.csv").set_index("model")
    assert board.loc["coxnet", "n_failed"] == 2 and board.loc["coxnet", "n_folds"] == 0
    for model in ("coxph", "weibull_aft"):
        assert board.loc[model, "n_failed"] == 0 and board.loc[model, "n_folds"] == 2
        assert 0.6 < board.loc[model, "harrell_c_mean"] <= 1.0
    assert board.index[-1] == "coxnet"  # NaN means rank last
    long = pd.read_csv(wd / "results/cv_metrics.csv")
    assert long.query("model == 'coxnet'")["value"].isna().all()
    assert long.query("model != 'coxnet'")["value"].notna().all()


@pytest.mark.integration
def test_odd_column_names_work_end_to_end(odd_run):
    wd = odd_run
    clean = pd.read_parquet(wd / "results/data/clean.parquet")
    roles = ("time", "event", "id", "age", "bmi", "blood", "zip", "symbols")
    assert {ODD[k] for k in roles} <= set(clean.columns)
    cols = set(pd.read_parquet(wd / "results/splits/fold_0/train.parquet").columns)
    assert {ODD["age"], ODD["bmi"], ODD["symbols"], f"{ODD['zip']}=__other__"} <= cols
    assert sum(c.startswith(f"{ODD['blood']}=") for c in cols) == 3  # 4 levels - reference
    state = json.loads((wd / "results/splits/fold_0/preprocessor.json").read_text())
    zip_state = state["categorical"][ODD["zip"]]
    assert state["max_levels"] == 20 and len(zip_state["levels"]) <= 19 and zip_state["has_other"]
    pred = pd.read_parquet(wd / "results/cv/weibull_aft/fold_0/predictions.parquet")
    assert pred[ODD["id"]].str.startswith("p-").all() and pred[RISK_COL].notna().all()


@pytest.mark.integration
def test_data_warnings_reach_the_validation_log(odd_run):
    log = (odd_run / "logs/data/validate_data.log").read_text(encoding="utf-8")
    n_zip = _odd_table()[ODD["zip"]].nunique()
    expected = [
        f"odd.parquet, column '{ODD['time']}': 3 zero duration(s) set to",
        f"odd.parquet, column '{ODD['const']}': feature is constant or entirely missing; dropped",
        f"odd.parquet, column '{ODD['empty']}': feature is constant or entirely missing; dropped",
        f"odd.parquet, column '{ODD['zip']}': categorical with {n_zip} distinct levels; only "
        "the 20 most frequent are kept per fold",
    ]
    for line in expected:
        assert line in log, (line, log)
    assert "DataWarning" in log
    schema = json.loads((odd_run / "results/data/schema.json").read_text())
    assert schema["dropped"] == [ODD["const"], ODD["empty"]] and len(schema["warnings"]) == 4


@pytest.mark.integration
def test_strict_mode_turns_a_failing_fit_into_a_failed_run(odd_run, tmp_path):
    wd = tmp_path / "strict"
    shutil.copytree(odd_run, wd, symlinks=True)
    kept = wd / "results/cv/coxph/fold_0/metrics.json"
    before = kept.stat().st_mtime_ns
    target = "results/cv/coxnet/fold_0/metrics.json"
    args = [target, "--cores", "1", "--config", "strict=True"]
    proc = snakemake(wd, *args, "--configfile", "config/config.yaml", "odd.yaml", check=False)
    assert proc.returncode != 0
    assert not (wd / target).exists()  # no result pretends the failed fit succeeded
    log = (wd / "logs/cv/coxnet/fold_0.log").read_text()
    assert "Traceback" in log and "l1_ratio" in log
    assert kept.stat().st_mtime_ns == before


# ------------------------------------------------------------------------- resume and determinism


def _fit_outputs(wd: Path) -> dict[str, int]:
    """mtime (ns) of every model x fold output that exists."""
    files = [*wd.glob("results/cv/*/fold_*/*.json"), *wd.glob("results/cv/*/fold_*/*.parquet")]
    return {str(f.relative_to(wd)): f.stat().st_mtime_ns for f in files}


def _incomplete(wd: Path) -> set[str]:
    """Outputs Snakemake has marked incomplete (jobs that were running when killed)."""
    marks = wd / ".snakemake" / "incomplete"
    if not marks.is_dir():
        return set()
    return {base64.urlsafe_b64decode(m.name).decode() for m in marks.iterdir() if m.is_file()}


def _running(wd: Path) -> bool:
    """A model x fold job is marked running and has written none of its outputs yet."""
    for path in _incomplete(wd):
        out_dir = (wd / path).parent
        if path.endswith("metrics.json") and not (out_dir.is_dir() and any(out_dir.iterdir())):
            return True
    return False


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, test_workflow_run) -> dict:
    """The test config run with ``--cores 1``, SIGKILLed (whole process group) once a few
    model x fold jobs have finished, unlocked and resumed with ``--cores 1``."""
    wd = copy_workflow(tmp_path_factory.mktemp("killed"))
    n_jobs = len(list(test_workflow_run.glob("results/cv/*/fold_*/metrics.json")))
    cmd = [sys.executable, "-m", "snakemake", *CV_TARGETS, "--cores", "1", *TEST_CONFIG]
    proc = subprocess.Popen(
        cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        # wait until a few model jobs have finished and the next one is running but has not
        # written anything yet (it is starting or fitting): cut it off mid-way
        while len(list(wd.glob("results/cv/*/fold_*/metrics.json"))) < 4 or not _running(wd):
            assert proc.poll() is None, "snakemake ended before it could be killed"
            assert time.monotonic() < deadline, "no model job finished within 10 minutes"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # the run's job worker and its forks die with it (PR_SET_PDEATHSIG): none may go on
    # writing results behind the resumed run
    worker_logs = sorted((wd / ".snakemake/log").glob("*.worker.log"))
    address = re.search(r"listening as (\S+)", worker_logs[-1].read_text()).group(1)
    deadline = time.monotonic() + 10
    while processes_with(address) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = processes_with(address)
    at_kill = sorted(wd.glob("results/cv/*/fold_*/metrics.json"))
    assert 4 <= len(at_kill) < n_jobs
    # nothing partial under a final name: every result that exists parses
    for f in at_kill:
        json.loads(f.read_text())
    for f in wd.glob("results/cv/*/fold_*/predictions.parquet"):
        pd.read_parquet(f)
    incomplete = _incomplete(wd)
    finished = {k: v for k, v in _fit_outputs(wd).items() if k not in incomplete}

    # SIGKILL leaves Snakemake's lock behind: the rerun says so, --unlock clears it;
    # profiles/default sets rerun-incomplete, so the job cut off mid-way is redone
    locked = snakemake(wd, *CV_TARGETS, "--cores", "1", *TEST_CONFIG, check=False)
    snakemake(wd, "--unlock", *TEST_CONFIG)
    resumed = snakemake(wd, *CV_TARGETS, "--cores", "1", *TEST_CONFIG)
    stats = (resumed.stdout + resumed.stderr).split("Job stats:")[1]
    return {
        "wd": wd,
        "n_jobs": n_jobs,
        "finished": finished,
        "incomplete": incomplete,
        "locked": locked,
        "survivors": survivors,
        "n_rerun": next(
            int(ln.split()[1]) for ln in stats.splitlines() if ln.startswith("fit_model")
        ),
    }


@pytest.mark.integration
def test_killed_run_resumes_and_matches_an_uninterrupted_run(killed_and_resumed, test_workflow_run):
    run = killed_and_resumed
    wd, finished = run["wd"], run["finished"]
    locked = run["locked"]
    assert not run["survivors"], "processes of the killed run's job worker survived it"
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    # only the jobs that had not finished were scheduled again ...
    n_finished_jobs = sum(k.endswith("metrics.json") for k in finished)
    assert run["n_rerun"] == run["n_jobs"] - n_finished_jobs
    # ... the finished ones kept their files untouched ...
    after = _fit_outputs(wd)
    for path, mtime in finished.items():
        assert after[path] == mtime, f"{path} was redone although it had finished"
    # ... and the one cut off mid-way was redone
    assert run["incomplete"] and all((wd / path).exists() for path in run["incomplete"])
    assert len([p for p in after if p.endswith("metrics.json")]) == run["n_jobs"]
    assert not list((wd / "results").rglob("*.tmp")), "temporary files left in results/"
    for name in ("cv_metrics.csv", "leaderboard.csv"):
        assert (wd / "results" / name).read_bytes() == (
            test_workflow_run / "results" / name
        ).read_bytes()


@pytest.mark.integration
def test_results_do_not_depend_on_cores(killed_and_resumed, test_workflow_run):
    """Every job of the --cores 1 run (killed and resumed, still one job at a time) gives
    bit-identical metrics and predictions to the --cores 2 fixture run."""
    wd, ref = killed_and_resumed["wd"], test_workflow_run
    cv_seed = yaml.safe_load((wd / "config/test/config.yaml").read_text())["cv"]["seed"]
    assert (wd / "results/cv_metrics.csv").read_bytes() == (
        ref / "results/cv_metrics.csv"
    ).read_bytes()
    preds = sorted(ref.glob("results/cv/*/fold_*/predictions.parquet"))
    assert len(preds) == killed_and_resumed["n_jobs"]
    for f in preds:
        rel = f.relative_to(ref)
        pd.testing.assert_frame_equal(pd.read_parquet(wd / rel), pd.read_parquet(f))
        a = json.loads((wd / rel.parent / "metrics.json").read_text())
        b = json.loads(f.with_name("metrics.json").read_text())
        assert a["metrics"] == b["metrics"]
        # per model x fold seeds derive from cv.seed only
        assert a["seed"] == b["seed"] == model_seed(cv_seed, a["model"], a["fold"])
