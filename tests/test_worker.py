"""The warm job worker (survival_framework.worker): jobs run in forks of one process that
imported the libraries once, with the job process's status, streams, environment and
signals, and the same results as fresh processes."""

from __future__ import annotations

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

from conftest import REPO, alive, processes_with, snakemake
from survival_framework import worker
from survival_framework.engine import WARM_MAX_MB, select_job_worker
from survival_framework.jobusage import format_usage_note, read_job_usage
from survival_framework.report import read_benchmarks

SCRIPTS = REPO / "scripts"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

# What Snakemake's script: preamble does that matters here (`__real_file__`), then a rule
# script's first statement, then a body driven by argv.
JOB = """
__real_file__ = __file__
import sys
from survival_framework.worker import hand_over

hand_over(globals())

import json, os, time
from survival_framework import worker

mode, out = sys.argv[1], sys.argv[2]
record = {"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(),
          "in_worker": worker._IN_WORKER, "marker": os.environ.get("JOB_MARKER"),
          "argv": sys.argv[1:]}
if mode == "threads":
    from threadpoolctl import threadpool_info
    record["blas_threads"] = sorted({p["num_threads"] for p in threadpool_info()
                                     if p["user_api"] == "blas"})
with open(out, "w") as f:
    json.dump(record, f)
if mode == "print":
    print("to stdout", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
elif mode == "exit3":
    sys.exit(3)
elif mode == "raise":
    raise ValueError("boom")
elif mode == "sleep":
    time.sleep(120)
"""


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A worker started by this test process (numpy and threadpoolctl preloaded)."""
    tmp = tmp_path_factory.mktemp("worker")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), old]))
    address = worker.start_worker(tmp / "worker.log", preload=("numpy", "threadpoolctl"))
    assert address is not None, (tmp / "worker.log").read_text()
    job = tmp / "job.py"
    job.write_text(JOB)
    yield {"address": address, "job": job, "tmp": tmp, "proc": worker._WORKER}
    worker.stop_worker()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def _run(served, mode, tmp_path, env=None, wait=True, **kwargs):
    out = tmp_path / f"{mode}.json"
    environment = {**os.environ, "JOB_MARKER": "the job's own environment", **(env or {})}
    cmd = [sys.executable, str(served["job"]), mode, str(out)]
    if not wait:
        return subprocess.Popen(cmd, cwd=tmp_path, env=environment, **kwargs), out
    proc = subprocess.run(cmd, cwd=tmp_path, env=environment, capture_output=True, text=True)
    record = json.loads(out.read_text()) if out.exists() else None
    return proc, record


def test_a_job_runs_in_a_fork_of_the_worker_as_its_own_process_would(served, tmp_path):
    proc, record = _run(served, "print", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert record["in_worker"] is True
    assert record["ppid"] == served["proc"].pid  # forked by the worker, not this client
    assert record["cwd"] == str(tmp_path)  # the job process's directory,
    assert record["marker"] == "the job's own environment"  # environment
    assert record["argv"] == ["print", str(tmp_path / "print.json")]  # and arguments
    # ... and its standard streams
    assert proc.stdout == "to stdout\n"
    assert "to stderr" in proc.stderr


@pytest.mark.parametrize(("mode", "code"), [("exit3", 3), ("raise", 1)])
def test_the_job_process_exits_with_the_forks_status(served, tmp_path, mode, code):
    proc, record = _run(served, mode, tmp_path)
    assert record["in_worker"] is True
    assert proc.returncode == code
    if mode == "raise":
        assert "Traceback" in proc.stderr and "ValueError: boom" in proc.stderr


def test_the_job_gets_the_threads_its_environment_asks_for(served, tmp_path):
    """The worker imports numpy with one BLAS thread; a 2-thread job gets 2 (threadpoolctl)."""
    one, r1 = _run(served, "threads", tmp_path, env={"OMP_NUM_THREADS": "1"})
    two, r2 = _run(served, "threads", tmp_path, env={"OMP_NUM_THREADS": "2"})
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert r1["in_worker"] and r2["in_worker"]
    assert r1["blas_threads"] == [1] and r2["blas_threads"] == [2]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_signalled_job_process_takes_its_fork_with_it(served, tmp_path, signum):
    """SIGTERM is forwarded (the job process then dies of it too); after SIGKILL, which
    cannot be forwarded, the worker kills the fork as soon as the job process is gone."""
    proc, out = _run(served, "sleep", tmp_path, wait=False)
    assert _wait_until(out.exists), "the job did not start"
    time.sleep(0.1)
    fork = json.loads(out.read_text())["pid"]
    assert fork != proc.pid and alive(fork)
    proc.send_signal(signum)
    assert proc.wait(timeout=10) == -signum
    assert _wait_until(lambda: not alive(fork)), f"fork {fork} outlived its job process"


def test_a_job_with_other_code_is_refused_and_runs_in_its_own_process(served, tmp_path):
    """A job importing another copy of the package (another checkout, or edited files)."""
    other = tmp_path / "other"
    shutil.copytree(SCRIPTS / "survival_framework", other / "survival_framework")
    proc, record = _run(served, "ok", tmp_path, env={"PYTHONPATH": str(other)})
    assert proc.returncode == 0, proc.stderr
    assert record["in_worker"] is False and record["ppid"] == os.getpid()  # not forked
    assert "refused this job" in proc.stderr and "package" in proc.stderr


def test_without_a_worker_the_job_runs_in_its_own_process(served, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != worker.ENV_VAR}
    out = tmp_path / "alone.json"
    proc = subprocess.run([sys.executable, str(served["job"]), "ok", str(out)], env=env)
    assert proc.returncode == 0
    assert json.loads(out.read_text())["in_worker"] is False
    # a worker that has gone away: the same
    gone = {**env, worker.ENV_VAR: "survival-workflow-no-such-worker"}
    proc = subprocess.run([sys.executable, str(served["job"]), "ok", str(out)], env=gone)
    assert proc.returncode == 0
    assert json.loads(out.read_text())["in_worker"] is False


def test_the_worker_exits_with_the_process_that_started_it(tmp_path):
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
        "from survival_framework.worker import start_worker\n"
        f"print(start_worker({str(tmp_path / 'w.log')!r}, preload=('json',)), flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    address = parent.stdout.readline().decode().strip()
    assert address.startswith("survival-workflow-")
    assert _wait_until(lambda: len(processes_with(address)) == 1)
    parent.kill()
    parent.wait()
    assert _wait_until(lambda: not processes_with(address)), "the worker outlived Snakemake"


def test_job_usage_note_round_trip(tmp_path):
    log = tmp_path / "logs/cv/rsf/fold_0.log"
    log.parent.mkdir(parents=True)
    log.write_text(
        "some line\n"
        + format_usage_note(11, 100.0, 1.0, 0, [])
        + "\n"
        + format_usage_note(12, 212.34, 0.47, 3, ["PIL"])
        + "\n"
    )
    assert read_job_usage(log) == {"max_rss_mb": 212.3, "cpu_s": 0.47}  # the last note
    assert read_job_usage(tmp_path / "missing.log") is None
    bench = tmp_path / "benchmarks"
    for job in ("cv/rsf/fold_0", "data/validate_data"):
        (bench / job).parent.mkdir(parents=True, exist_ok=True)
        (bench / f"{job}.tsv").write_text("s\th:m:s\tmax_rss\n0.5\t0:00:00\t3.2\n")
    table = read_benchmarks(bench, tmp_path / "logs")
    assert table["max_rss_mb"].tolist() == [212.3, 3.2]
    assert table["memory_of"].tolist() == ["worker fork", "job process"]


@pytest.mark.parametrize(
    ("requested", "mb", "local_why", "warm"),
    [
        ("auto", 0.5, None, True),
        ("auto", WARM_MAX_MB + 1, None, False),
        ("auto", 0.5, "jobs run on a cluster executor", False),
        ("warm", WARM_MAX_MB + 100, None, True),
        ("warm", 0.5, "jobs run on a cluster executor", False),
        ("fresh", 0.5, None, False),
    ],
)
def test_select_job_worker(requested, mb, local_why, warm):
    chosen, reason = select_job_worker(requested, mb, local_why)
    assert chosen is warm and reason
    if local_why:
        assert local_why in reason
    with pytest.raises(ValueError, match="job_worker"):
        select_job_worker("sometimes", mb, local_why)


# --------------------------------------------------------------------------- real runs
HEAVY = {"sklearn", "sksurv", "xgboost", "lifelines", "scipy", "pandas", "pyarrow", "pandera"}
HEAVY |= {"matplotlib", "numpy"}


def _worker_log(wd: Path) -> str:
    logs = sorted((wd / ".snakemake/log").glob("*.worker.log"))
    assert logs, "no job worker log: the run did not use the worker"
    return logs[-1].read_text()


@pytest.mark.integration
def test_the_test_run_used_the_worker_and_left_no_process(test_workflow_run):
    text = _worker_log(test_workflow_run)
    served = int(re.findall(r"served (\d+) job\(s\)", text)[-1])
    n_fits = len(list(test_workflow_run.glob("results/cv/*/fold_*/metrics.json")))
    assert served >= n_fits + 3  # validate, split, the fits, aggregate, report...
    address = re.search(r"listening as (\S+)", text).group(1)
    assert not processes_with(address)
    # every fit job's log ends with the fork's usage, which the report's table shows
    for log in test_workflow_run.glob("logs/cv/*/fold_*.log"):
        assert read_job_usage(log) is not None, log
    bench = pd.read_csv(test_workflow_run / "results/report/benchmarks.csv")
    fits = bench[bench.stage == "cv"]
    assert len(fits) == n_fits and (fits.memory_of == "worker fork").all()
    assert (fits.max_rss_mb > 50).all()  # the fork's memory, not the waiting process's


@pytest.mark.integration
def test_jobs_forked_after_the_imports_import_no_library_themselves(test_workflow_run):
    """The worker's PRELOAD covers what the jobs need: every job forked once the worker
    had imported everything loaded no heavy library itself (a drifting list fails here)."""
    text = _worker_log(test_workflow_run)
    after = text.split("all imports done", 1)[1]
    pids = {int(p) for p in re.findall(r"job (\d+): /", after)}
    notes = {}
    for log in test_workflow_run.glob("logs/**/*.log"):
        for pid, libraries in re.findall(
            r"ran in process (\d+), .*new libraries: (.*)$", log.read_text(), re.M
        ):
            notes[int(pid)] = (log, {s.strip() for s in libraries.split(",")})
    checked = [notes[p] for p in pids if p in notes]
    assert len(checked) >= 10
    for log, libraries in checked:
        assert not HEAVY & libraries, f"{log}: {libraries}"


@pytest.mark.integration
def test_fresh_processes_give_the_same_results_as_the_worker(test_workflow_run, tmp_path):
    """The whole test run again with a fresh process per job: every result file is the
    same bytes, except provenance records, run times and the benchmark table."""
    wd = tmp_path / "fresh"
    shutil.copytree(test_workflow_run, wd, symlinks=True)
    shutil.rmtree(wd / "results")
    shutil.rmtree(wd / ".snakemake")
    fresh = {"execution": {"job_worker": "fresh"}}
    snakemake(
        wd, "--cores", "2", "--configfile", "config/test/config.yaml",
        "--config", f"execution={json.dumps(fresh['execution'])}",
    )  # fmt: skip
    assert not list((wd / ".snakemake/log").glob("*.worker.log"))
    timing = re.compile(r"_seconds$")

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not timing.search(k)}
        return [strip(v) for v in value] if isinstance(value, list) else value

    ours = sorted(p.relative_to(test_workflow_run) for p in test_workflow_run.rglob("results/**/*"))
    theirs = sorted(p.relative_to(wd) for p in wd.rglob("results/**/*"))
    # rule all's files; other tests may have made more in the shared run (its report)
    assert set(theirs) <= set(ours) and len(theirs) > 100
    compared = 0
    for rel in theirs:
        a, b = test_workflow_run / rel, wd / rel
        if a.is_dir() or a.name == "provenance.json" or "benchmarks" in a.name:
            continue
        if a.suffix == ".joblib":  # the artifact: its fit time and provenance differ
            import joblib

            x, y = joblib.load(a), joblib.load(b)
            # the estimator by what it predicts: scikit-learn's tree nodes hold
            # uninitialised padding bytes, which differ between any two processes
            rows = np.random.default_rng(0).normal(size=(50, len(x["features"])))
            np.testing.assert_array_equal(
                x["estimator"].predict(rows), y["estimator"].predict(rows)
            )
            for key in set(x) - {"fit_seconds", "provenance", "estimator"}:
                assert joblib.hash(x[key]) == joblib.hash(y[key]), f"{rel}: {key}"
        elif a.name == "metrics.json":
            assert strip(json.loads(a.read_text())) == strip(json.loads(b.read_text())), rel
        else:
            assert a.read_bytes() == b.read_bytes(), rel
        compared += 1
    assert compared > 50
    assert np.isfinite(pd.read_csv(wd / "results/leaderboard.csv").select_dtypes("number")).any(
        axis=None
    )
