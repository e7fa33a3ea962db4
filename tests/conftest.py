"""Shared fixtures: small real datasets and real Snakemake runs in scratch copies."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "config", "profiles", "envs", "report")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results) into ``dest`` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def own_package_env(workdir: Path) -> dict[str, str]:
    """The environment with ``workdir``'s own ``scripts/`` first on ``PYTHONPATH``: a copy of
    another commit's workflow runs its jobs with its own package, not the editable install's
    (the current code's ``rules/common.smk`` does this itself; older snapshots do not)."""
    import os

    paths = [str(Path(workdir).resolve() / "scripts"), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900):
    """Run the real Snakemake CLI of this interpreter in ``workdir`` (with its own package)."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=own_package_env(workdir),
    )
    if check and proc.returncode != 0:
        tail = f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    return proc


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def processes_with(text: str) -> list[int]:
    """PIDs whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.fixture
def fake_job(tmp_path, monkeypatch):
    """A ``snakemake`` object of a ``fit_model`` job (an input, a ``provenance`` output, a
    log); the console (``sys.__stderr__``) captured, stderr and logging restored after."""
    from snakemake.iocontainers import Namedlist

    monkeypatch.setattr(sys, "stderr", sys.stderr)
    monkeypatch.setattr(sys, "__stderr__", io.StringIO())  # the console
    root = logging.getLogger()
    handlers = root.handlers[:]
    (tmp_path / "in.csv").write_text("a\n1\n")
    yield SimpleNamespace(
        rule="fit_model",
        input=Namedlist(fromdict={"table": str(tmp_path / "in.csv")}),
        output=Namedlist(fromdict={"provenance": str(tmp_path / "out/provenance.json")}),
        params=Namedlist(fromdict={"seed": 3}),
        wildcards=Namedlist(fromdict={"model": "rsf", "fold": "2"}),
        resources=Namedlist(fromdict={"attempt": 1}),
        log=[str(tmp_path / "job.log")],
    )
    for handler in set(root.handlers) - set(handlers):
        handler.stream.close()  # the log file, opened by setup_logging
    root.handlers[:] = handlers


@pytest.fixture(scope="session")
def gbsg2() -> pd.DataFrame:
    """GBSG2 (686 patients) as one table: time, event, features."""
    from survival_framework.demo import load_demo

    return load_demo("gbsg2")


@pytest.fixture(scope="session")
def test_workflow_run(tmp_path_factory) -> Path:
    """One real run of the workflow on config/test/config.yaml (GBSG2, 5 models x 3 folds)."""
    wd = copy_workflow(tmp_path_factory.mktemp("wf"))
    snakemake(wd, "--cores", "2", "--configfile", "config/test/config.yaml")
    return wd


@pytest.fixture(scope="session")
def dask_workflow_run(tmp_path_factory) -> tuple[Path, str]:
    """config/test/config.yaml with ``etl_engine: dask`` on a LocalCluster, run by Snakemake
    up to results/cv_metrics.csv: its folder and Snakemake's output (tests/test_dask_etl.py
    compares it with pandas, tests/test_spark_etl.py with Spark)."""
    pytest.importorskip("distributed")
    wd = copy_workflow(tmp_path_factory.mktemp("wf_dask"))
    execution = {"etl_engine": "dask", "dask_scheduler": "local"}
    proc = snakemake(
        wd, "--cores", "2", "--configfile", "config/test/config.yaml",
        "--config", f"execution={json.dumps(execution)}", "--", "results/cv_metrics.csv",
    )  # fmt: skip
    return wd, proc.stdout + proc.stderr


def custom_split_paths(out: Path, n_folds: int) -> dict:
    """ETL output paths in a layout unlike the workflow's (entry points must write exactly
    the paths they are given, as the split rules declare them)."""
    return {
        "folds_path": out / "f.parquet",
        "grid_path": out / "g.json",
        **{
            f"{part}_paths": [out / f"{part}{k}.{ext}" for k in range(n_folds)]
            for part, ext in (("train", "pq"), ("test", "pq"), ("preprocessor", "json"))
        },
    }


def random_survival_table(rng: np.random.Generator, n: int = 200) -> pd.DataFrame:
    """A small synthetic table with numeric, categorical and missing values."""
    x1 = rng.normal(size=n)
    x2 = rng.exponential(size=n)
    cat = rng.choice(["a", "b", "c", "rare"], size=n, p=[0.5, 0.3, 0.19, 0.01])
    t_event = rng.exponential(scale=np.exp(-0.7 * x1), size=n) * 100
    t_cens = rng.exponential(scale=150, size=n)
    df = pd.DataFrame(
        {
            "time": np.minimum(t_event, t_cens),
            "event": (t_event <= t_cens).astype(int),
            "x1": x1,
            "x2": np.where(rng.random(n) < 0.1, np.nan, x2),
            "cat": np.where(rng.random(n) < 0.05, None, cat),
        }
    )
    return df
