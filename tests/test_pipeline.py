"""The plan's entry points: ``run_pipeline`` and the ``survival-workflow`` command.

Real runs through Snakemake's own Python entry (survival_framework.pipeline), each
compared with the plain ``snakemake`` run of the same configuration (conftest's
``test_workflow_run``). The Spark modes run in tests/test_spark_etl.py, beside the
standalone cluster they need.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from survival_framework.configcheck import ConfigError
from survival_framework.engine import dask_available
from survival_framework.pipeline import (
    EXECUTION_MODES,
    RUN_CONFIG,
    PipelineError,
    merged_config,
    plan_execution,
    run_pipeline,
    snakemake_argv,
)

TEST_CONFIG = REPO / "config" / "test" / "config.yaml"
# three models keep each run short; their leaderboard rows must equal the full run's
FAST_MODELS = ("coxph", "weibull_aft", "km")
CLI = Path(sys.executable).parent / "survival-workflow"


def fast_config() -> dict:
    """config/test/config.yaml's settings with only FAST_MODELS enabled (a mapping)."""
    import yaml

    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    from survival_framework.modelspec import read_registry

    cfg["models"] = {
        name: {**cfg["models"].get(name, {}), "enabled": name in FAST_MODELS}
        for name in read_registry()
    }
    return cfg


def assert_same_rows(
    got: pd.DataFrame, want: pd.DataFrame, models=FAST_MODELS, atol: float = 0.0
) -> None:
    """The metric columns of ``models`` equal within 1e-12 relative (the same jobs, same
    numbers), or within ``atol`` (another ETL engine, whose matrices are equal only to
    ~1e-15: the ICI's Newton fit, tolerance 1e-9, can move by ~1e-10 from that)."""
    cols = [c for c in want.columns if c.endswith(("_mean", "_std"))]
    a = got.set_index("model").loc[list(models), cols]
    b = want.set_index("model").loc[list(models), cols]
    rtol = 0.0 if atol else 1e-12
    np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=atol)
    assert (got.set_index("model").loc[list(models), "n_failed"] == 0).all()


# ---------------------------------------------------------------------------------------
# modes, arguments, configuration
# ---------------------------------------------------------------------------------------


def plan(mode, n_jobs=-1, **kw):
    args = {
        "input_mb": 1.0,
        "spark_master": None,
        "config_master": "local[*]",
        "size_threshold_mb": 140,
    }
    return plan_execution(mode, n_jobs, **{**args, **kw})


def test_modes_map_onto_cores_and_etl_engine():
    cpus = os.cpu_count()
    p = plan("pandas")
    assert (p.mode, p.cores, p.etl_engine) == ("pandas", 1, "pandas")
    p = plan("mp", 3)
    assert (p.mode, p.cores, p.etl_engine) == ("mp", 3, "pandas")
    assert plan("mp").cores == cpus  # -1: all cores
    # auto, small input: the pandas ETL, the jobs on every core
    p = plan("auto")
    assert (p.mode, p.cores, p.etl_engine) == ("mp" if cpus > 1 else "pandas", cpus, "pandas")
    assert "size_threshold_mb 140" in p.reason
    # auto above the threshold on a local master keeps pandas and says why
    p = plan("auto", 2, input_mb=500)
    assert p.etl_engine == "pandas" and "this machine" in p.reason
    # ... and sends the ETL to the configured Dask cluster, as the workflow's auto does
    if dask_available()[0]:
        p = plan("auto", 1, input_mb=500, dask_scheduler="tcp://10.0.0.2:8786")
        assert (p.mode, p.cores, p.etl_engine) == ("mp", 1, "dask")
        assert "Dask scheduler 'tcp://10.0.0.2:8786'" in p.reason
    assert plan("auto", 1).mode == "pandas"
    # a profile sets the job count unless n_jobs is given
    assert plan("mp", profile="profiles/slurm").cores is None
    assert plan("mp", 4, profile="profiles/slurm").cores == 4
    assert (
        plan("mp", profile="profiles/slurm").reason == "pandas ETL, jobs on profile profiles/slurm"
    )


@pytest.mark.parametrize(
    ("mode", "n_jobs", "kw", "message"),
    [
        ("threads", -1, {}, "execution_mode must be one of auto, pandas, mp"),
        ("mp", 0, {}, "n_jobs must be a positive number of cores or -1"),
        ("mp", -2, {}, "n_jobs must be a positive number of cores or -1"),
        ("mp", True, {}, "n_jobs must be a positive number"),
        ("mp", 2.5, {}, "n_jobs must be a positive number"),
        ("pandas", 4, {}, "runs on one core, but n_jobs=4"),
        ("spark_cluster", 2, {}, "needs spark_master, a cluster URL"),
        ("spark_cluster", 2, {"spark_master": "local[2]"}, "needs spark_master, a cluster URL"),
        ("mp", 2, {"spark_master": "spark://h:7077"}, "does not use it"),
    ],
)
def test_bad_arguments_are_one_clear_message(mode, n_jobs, kw, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        plan(mode, n_jobs, **kw)


def test_config_merges_defaults_file_and_arguments(tmp_path):
    (tmp_path / "c.yaml").write_text("cv:\n  n_folds: 3\nevaluation:\n  n_times: 7\n")
    cfg = merged_config(tmp_path / "c.yaml", {"evaluation": {"n_times": 9}})
    assert cfg["cv"]["n_folds"] == 3  # the file over the defaults
    assert cfg["cv"]["seed"] == 42  # the defaults kept beside it
    assert cfg["evaluation"]["n_times"] == 9  # the arguments over the file
    assert cfg["data"]["path"] == "resources/demo/flchain.csv"  # config/config.yaml
    with pytest.raises(ConfigError, match=r"unknown key 'cv.nfolds'; did you mean 'cv.n_folds'"):
        merged_config({"cv": {"nfolds": 3}}, {})
    with pytest.raises(ConfigError, match=r"cv.n_folds: 1 is less than the minimum of 2"):
        merged_config({"cv": {"n_folds": 1}}, {})
    with pytest.raises(ConfigError, match="model 'rsf' does not accept parameter 'n_trees'"):
        merged_config({"models": {"rsf": {"params": {"n_trees": 3}}}}, {})
    with pytest.raises(FileNotFoundError, match="nope.yaml does not exist"):
        merged_config(tmp_path / "nope.yaml", {})
    # the checks that need the defaults and the completed models block, as the Snakefile's
    with pytest.raises(ConfigError, match="predict.model 'rsf' is not an enabled model"):
        merged_config({"models": {"rsf": {"enabled": False}}, "predict": {"model": "rsf"}}, {})
    with pytest.raises(ConfigError, match="predict.model 'cox' is not an enabled model"):
        merged_config({"predict": {"model": "cox"}}, {})


def test_defaults_filled_as_snakemake_fills_them():
    """configcheck.fill_defaults (jsonschema, no Snakemake import) = snakemake's validate."""
    import copy

    import yaml
    from snakemake.utils import validate

    from survival_framework.configcheck import fill_defaults

    schema_path = REPO / "config" / "schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    cases = [
        yaml.safe_load(path.read_text()) or {}
        for path in sorted((REPO / "config").rglob("*.yaml"))
        if path.name != "schema.yaml"
    ]
    cases += [{}, {"models": {"rsf": {"params": {"n_estimators": 5}}}}]
    required = {"path": "x.csv", "duration_col": "t", "event_col": "e"}
    for case in cases:
        case["data"] = {**required, **case.get("data", {})}
        ours, theirs = copy.deepcopy(case), copy.deepcopy(case)
        fill_defaults(ours, schema)
        validate(theirs, schema=str(schema_path))
        assert ours == theirs
    # the minimal config gets every top-level default, nested ones included
    minimal = {"data": dict(required)}
    fill_defaults(minimal, schema)
    cv_schema = schema["properties"]["cv"]["properties"]
    assert minimal["cv"]["n_folds"] == cv_schema["n_folds"]["default"]
    engine = schema["properties"]["execution"]["properties"]["etl_engine"]["default"]
    assert minimal["execution"]["etl_engine"] == engine


def test_argv_puts_targets_first_and_profile_jobs(tmp_path):
    argv = snakemake_argv(
        workdir=tmp_path, configfile=tmp_path / "c.yaml", cores=2, targets=["a", "b"]
    )
    assert argv[:2] == ["a", "b"]
    assert argv[argv.index("--cores") + 1] == "2"
    assert argv[argv.index("--snakefile") + 1] == str(REPO / "Snakefile")
    argv = snakemake_argv(
        workdir=tmp_path, configfile=tmp_path / "c.yaml", cores=4, profile="profiles/slurm"
    )
    assert "--cores" not in argv and argv[argv.index("--jobs") + 1] == "4"
    assert argv[argv.index("--profile") + 1] == "profiles/slurm"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"execution_mode": "fast"}, ValueError, "execution_mode must be one of"),
        ({"n_jobs": 0}, ValueError, "n_jobs must be a positive number of cores or -1"),
        ({"execution_mode": "spark_cluster"}, ValueError, "needs spark_master"),
        ({"config": {"cv": {"n_fold": 2}}}, ConfigError, "did you mean 'cv.n_folds'"),
        ({"run_type": "full"}, ConfigError, "run_type: 'full' is not one of"),
    ],
)
def test_run_pipeline_rejects_bad_arguments_before_anything_runs(
    tmp_path, gbsg2, kwargs, error, message
):
    data = tmp_path / "in.csv"
    gbsg2.to_csv(data, index=False)
    wd = tmp_path / "wd"
    with pytest.raises(error, match=message):
        run_pipeline(data, workdir=wd, **kwargs)
    assert not wd.exists()  # nothing was written, nothing ran


def test_run_pipeline_rejects_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="input table nope.csv does not exist"):
        run_pipeline("nope.csv", workdir=tmp_path / "wd")
    assert not (tmp_path / "wd").exists()


def test_package_import_stays_light_and_exposes_run_pipeline():
    code = (
        "import sys, survival_framework as sf\n"
        "assert 'survival_framework.pipeline' not in sys.modules\n"
        "assert 'snakemake' not in sys.modules and 'pandas' not in sys.modules\n"
        "from survival_framework import run_pipeline\n"
        "assert run_pipeline.__module__ == 'survival_framework.pipeline'\n"
        "assert 'snakemake' not in sys.modules  # loaded only when a run starts\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_modes_table_in_the_docs_names_every_mode():
    text = (REPO / "docs" / "entry-points.md").read_text()
    for mode in EXECUTION_MODES:
        assert f"| `{mode}` |" in text


# ---------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------


def test_cli_is_on_the_venv_path_and_documents_its_flags():
    assert CLI.is_file(), "make venv installs the console script (pip install -e .)"
    out = subprocess.run([str(CLI), "--help"], capture_output=True, text=True, check=True).stdout
    for flag in (
        "--input",
        "--run-type",
        "--execution-mode",
        "--n-jobs",
        "--spark-master",
        "--spark-memory",
        "--config",
        "--profile",
        "--dry-run",
    ):
        assert flag in out
    assert "passed to Snakemake" in out


def test_cli_bad_argument_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [str(CLI), "--input", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"survival-workflow: error: input table {tmp_path / 'x.csv'} does not exist "
        f"({tmp_path / 'x.csv'})"
    ]
    assert not (tmp_path / ".snakemake").exists()


@pytest.mark.integration
def test_cli_dry_run_and_real_run_with_pass_through(tmp_path, test_workflow_run):
    import yaml

    data = test_workflow_run / "resources/demo/gbsg2.csv"
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump(fast_config()))
    base = [str(CLI), "--input", str(data), "--run-type", "production"]
    base += ["--config", "fast.yaml", "--execution-mode", "mp", "--n-jobs", "2"]
    dry = subprocess.run(
        [*base, "--dry-run"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "execution mode mp (pandas ETL, jobs on 2 core(s))" in dry.stdout
    assert "This was a dry-run" in dry.stdout + dry.stderr
    assert not (tmp_path / "results").exists()
    # a real run; the leaderboard target and --keep-going pass through to Snakemake
    real = subprocess.run(
        [*base, "--", "results/leaderboard.csv", "--keep-going"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert real.returncode == 0, real.stderr[-3000:]
    assert "leaderboard (" in real.stdout
    assert not (tmp_path / "results/report").exists()  # only the target was made
    want = pd.read_csv(test_workflow_run / "results/leaderboard.csv")
    assert_same_rows(pd.read_csv(tmp_path / "results/leaderboard.csv"), want)


# ---------------------------------------------------------------------------------------
# real runs of run_pipeline
# ---------------------------------------------------------------------------------------


def run_mode(test_workflow_run: Path, wd: Path, mode: str, **kw):
    return run_pipeline(
        test_workflow_run / "resources/demo/gbsg2.csv",
        run_type="production",
        execution_mode=mode,
        config=fast_config(),
        workdir=wd,
        targets=["results/leaderboard.csv"],
        **kw,
    )


@pytest.mark.integration
@pytest.mark.parametrize(("mode", "n_jobs", "cores"), [("pandas", -1, 1), ("mp", 2, 2)])
def test_run_pipeline_matches_the_plain_snakemake_run(
    tmp_path, test_workflow_run, capfd, mode, n_jobs, cores
):
    cwd, path, env = os.getcwd(), list(sys.path), dict(os.environ)
    handlers = list(logging.getLogger().handlers)
    result = run_mode(test_workflow_run, tmp_path, mode, n_jobs=n_jobs)
    # the process's working directory and global state are as they were
    assert os.getcwd() == cwd and sys.path == path and dict(os.environ) == env
    assert logging.getLogger().handlers == handlers
    assert result.results == tmp_path / "results"
    assert_same_rows(result.leaderboard, pd.read_csv(test_workflow_run / "results/leaderboard.csv"))
    # the mode, once, and the cores Snakemake was given
    out = capfd.readouterr()  # Snakemake's child process writes to the same fds
    assert out.out.count("survival-workflow: execution mode") == 1
    assert f"execution mode {mode} " in out.out
    assert f"Provided cores: {cores}" in out.out + out.err
    # the merged configuration is kept with the run
    cfg = (tmp_path / RUN_CONFIG).read_text()
    assert "etl_engine: pandas" in cfg and str(test_workflow_run) in cfg


@pytest.mark.integration
def test_run_pipeline_profile_from_any_directory(tmp_path, gbsg2, capfd, monkeypatch):
    """profiles/slurm names this repository's profile from any directory; a dry run shows
    Snakemake loading it (no job is submitted)."""
    gbsg2.to_csv(tmp_path / "in.csv", index=False)
    monkeypatch.chdir(tmp_path)
    result = run_pipeline(
        "in.csv", run_type="production", profile="profiles/slurm", n_jobs=3, dry_run=True
    )
    assert result.leaderboard is None and result.results == tmp_path / "results"
    out = capfd.readouterr()
    text = out.out + out.err
    assert f"Using profiles {REPO / 'profiles/slurm'}" in text
    assert "profile " + str(REPO / "profiles/slurm") + ", 3 jobs at once" in text
    assert "This was a dry-run" in text
    assert not (tmp_path / "results").exists()


@pytest.mark.integration
def test_run_pipeline_failure_raises_with_the_log_line(tmp_path, gbsg2):
    data = tmp_path / "in.csv"
    gbsg2.assign(time=-gbsg2["time"]).to_csv(data, index=False)  # negative durations
    with pytest.raises(PipelineError) as info:
        run_pipeline(data, run_type="production", workdir=tmp_path / "wd", n_jobs=1)
    err = info.value
    assert err.log_path is not None and err.log_path.is_file()
    # the failed rule, its log and the job's own one-line error
    assert "Error in rule validate_data (log logs/data/validate_data.log)" in str(err)
    assert "column 'time': 686 negative duration(s)" in str(err)
