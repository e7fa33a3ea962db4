"""The plan's Python entry point: :func:`run_pipeline` drives the workflow in-process.

``run_pipeline("data.csv", run_type="production", execution_mode="mp", n_jobs=8)`` runs
this repository's ``Snakefile`` through Snakemake's own Python entry
(:func:`snakemake.cli.parse_args` and :func:`snakemake.cli.args_to_api`, the functions
the ``snakemake`` command calls; no shell), in a spawned child process (Snakemake cannot
run inside a Jupyter kernel's event loop, and building a workflow changes process-wide
state), so profiles, executor plugins and any extra Snakemake option behave exactly as on
the command line. The console script
``survival-workflow`` (:mod:`survival_framework.cli`) is a thin layer over it.

Execution modes (:data:`EXECUTION_MODES`; ``docs/entry-points.md`` has the table):

``pandas``
    one core, pandas ETL.
``mp``
    ``n_jobs`` cores (``-1``: all), pandas ETL: the scheduler runs the model x fold jobs
    side by side.
``spark_local``
    Spark ETL on ``local[n_jobs]``, jobs on ``n_jobs`` cores.
``spark_cluster``
    Spark ETL against ``spark_master`` (``spark://``, ``yarn``, ``k8s://``), jobs on
    ``n_jobs`` local cores (or a cluster ``profile``).
``auto``
    the workflow's own size rule (:func:`survival_framework.engine.select_etl_engine`):
    pandas ETL up to ``execution.size_threshold_mb``; above it Dask for an
    ``execution.dask_scheduler`` address when dask is installed, else Spark for a cluster
    master when pyspark and Java are available, else the pandas ETL; jobs on ``n_jobs``
    cores.

A ``profile`` (e.g. ``profiles/slurm``) sends the jobs to a cluster in any mode.

The configuration is merged, in this order, from the repository's ``config/config.yaml``
(the defaults), the ``config`` file or mapping and the arguments, checked with the same
schema and checks as the Snakefile before anything runs, and written to
``<workdir>/.snakemake/survival-workflow/run_pipeline.yaml``, the one ``--configfile``
Snakemake gets (so the run is auditable and ``snakemake --configfile`` of that file
repeats it).
"""

from __future__ import annotations

import copy
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXECUTION_MODES",
    "REPO",
    "ExecutionPlan",
    "PipelineError",
    "PipelineResult",
    "merged_config",
    "plan_execution",
    "resolve_profile",
    "run_pipeline",
    "snakemake_argv",
]

EXECUTION_MODES = ("auto", "pandas", "mp", "spark_local", "spark_cluster")
REPO = Path(__file__).resolve().parents[2]
"""The repository this package lives in (its ``Snakefile``, ``config/``, ``profiles/``)."""

RUN_CONFIG = Path(".snakemake") / "survival-workflow" / "run_pipeline.yaml"
"""Where, under the working directory, the merged configuration of a run is written."""


class PipelineError(RuntimeError):
    """A run of the workflow failed; the message holds the Snakemake log's last error line.

    Attributes
    ----------
    log_path : Path or None
        The Snakemake log of the failed run (``<workdir>/.snakemake/log/``).
    """

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


class PipelineResult(NamedTuple):
    """What :func:`run_pipeline` returns: the leaderboard and the results folder."""

    leaderboard: pd.DataFrame | None
    """``results/leaderboard.csv`` (None when the run did not make it: a dry run, or
    targets that stop before it)."""
    results: Path
    """The run's ``results/`` folder (absolute)."""


@dataclass(frozen=True)
class ExecutionPlan:
    """An execution mode resolved to what Snakemake is given.

    Attributes
    ----------
    mode : str
        The mode that runs: ``auto`` resolved to ``pandas``, ``mp`` (also with the Dask
        ETL on a scheduler address) or ``spark_cluster``.
    cores : int or None
        ``--cores`` (None: a profile's own setting).
    etl_engine : {"pandas", "spark", "dask"}
        ``execution.etl_engine`` of the run.
    spark_master : str or None
        ``execution.spark_master`` of the run (None: the configuration's).
    reason : str
        Why, one line (printed once when the run starts).
    """

    mode: str
    cores: int | None
    etl_engine: str
    spark_master: str | None
    reason: str


def _cores(n_jobs: int) -> int:
    """``n_jobs`` as a core count (-1: all cores of this machine)."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive number of cores or -1 (all), got {n_jobs!r}")
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def plan_execution(
    execution_mode: str,
    n_jobs: int,
    *,
    input_mb: float,
    spark_master: str | None,
    config_master: str,
    size_threshold_mb: float,
    profile: str | None = None,
    dask_scheduler: str = "local",
) -> ExecutionPlan:
    """Resolve an execution mode (module docstring) to cores, ETL engine and master.

    Parameters
    ----------
    execution_mode : str
        One of :data:`EXECUTION_MODES`.
    n_jobs : int
        Cores (-1: all). ``pandas`` accepts only -1 or 1.
    input_mb : float
        Size of the input table (``auto``'s size rule).
    spark_master : str or None
        The ``spark_master`` argument (required by ``spark_cluster``).
    config_master : str
        ``execution.spark_master`` of the merged configuration (``auto`` without the
        argument).
    size_threshold_mb : float
        ``execution.size_threshold_mb``.
    profile : str or None
        A Snakemake profile: with ``n_jobs=-1`` the profile sets the job count.
    dask_scheduler : str
        ``execution.dask_scheduler`` of the merged configuration (``auto``: an address
        sends the ETL to that Dask cluster, as in the workflow).

    Raises
    ------
    ValueError
        For an unknown mode, a bad ``n_jobs`` or a master that does not fit the mode.
    survival_framework.engine.SparkUnavailableError
        For a Spark mode without pyspark or Java.
    """
    from .engine import (
        SparkUnavailableError,
        is_local_master,
        select_etl_engine,
        spark_available,
    )

    if execution_mode not in EXECUTION_MODES:
        raise ValueError(
            f"execution_mode must be one of {', '.join(EXECUTION_MODES)}, got {execution_mode!r}"
        )
    cores = _cores(n_jobs)
    chosen = None if profile is not None and n_jobs == -1 else cores
    if profile is None:
        where = f"{cores} core(s)"
    else:
        where = f"profile {profile}" + (f", {chosen} jobs at once" if chosen is not None else "")
    if spark_master is not None and execution_mode in ("pandas", "mp", "spark_local"):
        raise ValueError(
            f"spark_master is given but execution_mode {execution_mode!r} does not use it; "
            "use execution_mode='spark_cluster' (or 'auto')"
        )
    if execution_mode == "pandas":
        if n_jobs not in (-1, 1):
            raise ValueError(
                f"execution_mode 'pandas' runs on one core, but n_jobs={n_jobs}; "
                "use execution_mode='mp' for several cores"
            )
        return ExecutionPlan("pandas", 1, "pandas", None, "pandas ETL on one core")
    if execution_mode == "mp":
        return ExecutionPlan("mp", chosen, "pandas", None, f"pandas ETL, jobs on {where}")
    if execution_mode in ("spark_local", "spark_cluster"):
        if execution_mode == "spark_cluster" and (
            spark_master is None or is_local_master(spark_master)
        ):
            raise ValueError(
                "execution_mode 'spark_cluster' needs spark_master, a cluster URL "
                f"(spark://host:7077, yarn, k8s://...), got {spark_master!r}"
            )
        ok, why = spark_available()
        if not ok:
            raise SparkUnavailableError(f"execution_mode {execution_mode!r} needs Spark, but {why}")
        master = spark_master or f"local[{cores}]"
        return ExecutionPlan(
            execution_mode, chosen, "spark", master, f"Spark ETL on {master}, jobs on {where}"
        )
    # auto: the workflow's size rule picks the engine; the jobs always spread over n_jobs
    master = spark_master or config_master
    engine, why = select_etl_engine("auto", input_mb, size_threshold_mb, master, dask_scheduler)
    if engine == "spark":
        mode = "spark_cluster"
    else:  # the pandas ETL, or Dask's on its own cluster: the jobs on this machine's cores
        mode = "pandas" if chosen == 1 and engine == "pandas" else "mp"
    return ExecutionPlan(
        mode, chosen, engine, spark_master, f"auto -> {mode}: {why}; jobs on {where}"
    )


def _deep_merge(base: dict, update: Mapping) -> dict:
    """``base`` updated by ``update`` recursively (as Snakemake merges config files)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(
            f"config file {path}: expected a mapping of keys, got {type(data).__name__}"
        )
    return data


def merged_config(
    config: str | os.PathLike | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The defaults, then ``config`` (a YAML file or a mapping), then ``overrides``, checked.

    See :func:`_checked_config`; this is its merged mapping.
    """
    return _checked_config(config, overrides)[0]


def _checked_config(
    config: str | os.PathLike | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The merged configuration, and a checked copy with the defaults filled in.

    Checked by the Snakefile's own function (:func:`.configcheck.check_and_complete`:
    unknown keys with the closest valid one, the JSON schema, settings that conflict, model
    names and parameters, ``predict.model``) on a copy. The merged mapping is what the run
    is given (the Snakefile fills in the defaults again); the completed copy is where a
    caller reads a setting, defaults included (no default is repeated here).

    Raises
    ------
    survival_framework.configcheck.ConfigError
        One line naming the key and the problem.
    """
    import yaml

    from .configcheck import check_and_complete
    from .modelspec import read_registry

    merged = _read_yaml(REPO / "config" / "config.yaml")
    if config is not None:
        given = _read_yaml(Path(config)) if isinstance(config, (str, os.PathLike)) else config
        merged = _deep_merge(merged, given)
    merged = _deep_merge(merged, overrides)
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text(encoding="utf-8"))
    completed = copy.deepcopy(merged)
    check_and_complete(completed, schema, read_registry())
    return merged, completed


def resolve_profile(profile: str | os.PathLike | None) -> str | None:
    """A profile folder as given, or this repository's (``profiles/slurm`` works from any
    directory); a bare name Snakemake looks up itself (``~/.config/snakemake/<name>``)."""
    if profile is None:
        return None
    given = Path(profile)
    if not given.exists() and not given.is_absolute() and (REPO / given).is_dir():
        return str(REPO / given)
    return str(profile)


def snakemake_argv(
    *,
    workdir: Path,
    configfile: Path,
    cores: int | None,
    profile: str | None = None,
    targets: Sequence[str] = (),
    dry_run: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The Snakemake arguments of a run (targets first, so no option swallows them)."""
    argv = [*targets, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    argv += ["--configfile", str(configfile)]
    if cores is not None:
        argv += ["--cores", str(cores)] if profile is None else ["--jobs", str(cores)]
    if profile is not None:
        argv += ["--profile", str(profile)]
    if dry_run:
        argv.append("--dry-run")
    return [*argv, *extra]


_ERROR_LINE = re.compile(r"error|exception|failed|missing", re.IGNORECASE)
_RULE_ERROR = re.compile(r"^Error in rule (\S+?):?$")
_JOB_LOG = re.compile(r"^log: (\S+)")


def _last_error_line(workdir: Path) -> tuple[str, Path | None]:
    """What failed, from the newest Snakemake log: its last ``Error in rule`` line with the
    last error line of that job's own log (the rule scripts write the one-line input error
    there), else the log's last line that reports an error."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"), key=os.path.getmtime)
    if not logs:
        return "no Snakemake log was written", None
    lines = [ln.strip() for ln in logs[-1].read_text(errors="replace").splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        rule = _RULE_ERROR.match(lines[i])
        if not rule:
            continue
        found = (_JOB_LOG.match(ln) for ln in lines[i + 1 : i + 8])
        job_log = next((m.group(1) for m in found if m), None)
        detail = _last_job_error(workdir / job_log) if job_log else None
        where = f" (log {job_log})" if job_log else ""
        return f"Error in rule {rule.group(1)}{where}" + (f": {detail}" if detail else ""), logs[-1]
    errors = [ln for ln in lines if _ERROR_LINE.search(ln)]
    return (errors or lines or ["(empty log)"])[-1], logs[-1]


def _last_job_error(job_log: Path) -> str | None:
    """The message of the last ERROR line of a job's log (None if it has none)."""
    if not job_log.is_file():
        return None
    found = [ln for ln in job_log.read_text(errors="replace").splitlines() if " ERROR " in ln]
    return found[-1].split(": ", 1)[-1].strip() if found else None


def _snakemake_main(argv: list[str]) -> None:
    """Child process: Snakemake's command-line entry on ``argv``; exits with its status."""
    from snakemake.cli import args_to_api, parse_args

    try:
        parser, args = parse_args(argv)
        ok = args_to_api(args, parser)
    except Exception as exc:  # as the snakemake command reports it
        from snakemake.exceptions import print_exception

        print_exception(exc)
        ok = False
    sys.exit(0 if ok else 1)


def _run_snakemake(argv: list[str], workdir: Path) -> None:
    """Snakemake's Python entry in a spawned child process; PipelineError on failure.

    A child, because Snakemake runs its scheduler in an event loop of its own and refuses
    to start inside a running one (a Jupyter kernel), and because building the workflow
    changes process-wide state (working directory, ``sys.path``, logging handlers) that a
    caller's process must keep. The child writes to this process's stdout and stderr.
    """
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(target=_snakemake_main, args=(argv,))
    child.start()
    try:
        child.join()
    except BaseException:  # KeyboardInterrupt: Snakemake stops its jobs on SIGTERM
        child.terminate()
        child.join()
        raise
    if child.exitcode != 0:
        line, log = _last_error_line(workdir)
        where = f"; log: {log}" if log else ""
        raise PipelineError(f"snakemake failed: {line}{where}", log)


def run_pipeline(
    path: str | os.PathLike,
    *,
    duration_col: str | None = None,
    event_col: str | None = None,
    run_type: str = "sample",
    execution_mode: str = "auto",
    n_jobs: int = -1,
    spark_master: str | None = None,
    spark_memory: str | None = None,
    config: str | os.PathLike | Mapping[str, Any] | None = None,
    profile: str | os.PathLike | None = None,
    targets: Sequence[str] | None = None,
    workdir: str | os.PathLike | None = None,
    dry_run: bool = False,
    snakemake_args: Sequence[str] = (),
) -> PipelineResult:
    """Run the workflow on a table and return its leaderboard.

    Parameters
    ----------
    path : str or PathLike
        The input table (CSV, Parquet or pickle), relative to the current directory.
    duration_col, event_col : str, optional
        Its time and event columns (default: the configuration's ``data.*``).
    run_type : {"sample", "production"}
        ``sample``: a stratified sample of ``sample_size`` rows; ``production``: all rows.
        Like every argument it overrides the ``config`` file (its default too).
    execution_mode : str
        One of :data:`EXECUTION_MODES` (module docstring).
    n_jobs : int
        Cores for the jobs (-1: all).
    spark_master : str, optional
        A cluster master URL (``spark_cluster``, or ``auto``'s choice).
    spark_memory : str, optional
        ``execution.spark_memory`` (e.g. ``"8g"``).
    config : str, PathLike or Mapping, optional
        A YAML file or mapping merged over the defaults (``config/config.yaml``).
    profile : str or PathLike, optional
        A Snakemake profile (e.g. ``profiles/slurm``): where and how the jobs run.
    targets : sequence of str, optional
        Snakemake targets (default: everything ``rule all`` makes).
    workdir : str or PathLike, optional
        Where ``results/``, ``logs/`` and ``.snakemake/`` go (default: the current
        directory). The process's own working directory is never changed.
    dry_run : bool
        Only show what would run.
    snakemake_args : sequence of str
        Further Snakemake command-line arguments, passed through.

    Returns
    -------
    PipelineResult
        ``(leaderboard, results)``.

    Raises
    ------
    FileNotFoundError
        If ``path`` or the ``config`` file does not exist.
    ValueError
        For a bad argument (mode, ``n_jobs``, master), including
        :class:`~survival_framework.configcheck.ConfigError` for the configuration.
    PipelineError
        If the run fails; the message holds the Snakemake log's last error line.
    """
    data = Path(path).resolve()
    if not data.is_file():
        raise FileNotFoundError(f"input table {path} does not exist ({data})")
    wd = Path(workdir).resolve() if workdir is not None else Path.cwd()
    overrides: dict[str, Any] = {"run_type": run_type, "data": {"path": str(data)}}
    for key, value in (("duration_col", duration_col), ("event_col", event_col)):
        if value is not None:
            overrides["data"][key] = value
    execution: dict[str, Any] = {}
    if spark_memory is not None:
        execution["spark_memory"] = spark_memory
    if execution:
        overrides["execution"] = execution
    cfg, completed = _checked_config(config, overrides)
    profile = resolve_profile(profile)
    plan = plan_execution(
        execution_mode,
        n_jobs,
        input_mb=data.stat().st_size / 1e6,
        spark_master=spark_master,
        config_master=completed["execution"]["spark_master"],
        size_threshold_mb=completed["execution"]["size_threshold_mb"],
        profile=profile,
        dask_scheduler=completed["execution"]["dask_scheduler"],
    )
    cfg["execution"] = {**cfg.get("execution", {}), "etl_engine": plan.etl_engine}
    if plan.spark_master is not None:
        cfg["execution"]["spark_master"] = plan.spark_master
    print(f"survival-workflow: execution mode {plan.mode} ({plan.reason})", flush=True)

    import yaml

    configfile = wd / RUN_CONFIG
    configfile.parent.mkdir(parents=True, exist_ok=True)
    configfile.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    argv = snakemake_argv(
        workdir=wd,
        configfile=configfile,
        cores=plan.cores,
        profile=profile,
        targets=list(targets or ()),
        dry_run=dry_run,
        extra=list(snakemake_args),
    )
    _run_snakemake(argv, wd)
    board = wd / "results" / "leaderboard.csv"
    leaderboard = None
    if board.is_file() and not dry_run:
        import pandas as pd

        leaderboard = pd.read_csv(board)
    return PipelineResult(leaderboard, wd / "results")
