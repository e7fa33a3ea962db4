"""Choices of the execution path: the ETL engine of the split stage (pandas, Spark or
Dask) and whether jobs run in the warm job worker.

Called by ``rules/common.smk`` while Snakemake builds the DAG, so it imports nothing
heavy: whether pyspark or dask is importable is checked with
:func:`importlib.util.find_spec` (no JVM, no cluster is started) and Java with one
``java -version`` call, made only when Spark is actually being considered.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = [
    "ENGINES",
    "JOB_WORKERS",
    "WARM_MAX_MB",
    "MIN_JAVA_MAJOR",
    "SparkUnavailableError",
    "DaskUnavailableError",
    "dask_available",
    "is_local_scheduler",
    "find_java",
    "java_major_version",
    "spark_available",
    "is_local_master",
    "select_etl_engine",
    "select_job_worker",
]

ENGINES = ("auto", "pandas", "spark", "dask")
MIN_JAVA_MAJOR = 17
"""pyspark 4.x runs on Java 17 or 21."""


class SparkUnavailableError(RuntimeError):
    """``execution.etl_engine: spark`` was requested but pyspark or Java is missing."""


class DaskUnavailableError(RuntimeError):
    """``execution.etl_engine: dask`` was requested but dask.distributed is missing."""


def dask_available() -> tuple[bool, str]:
    """Whether the Dask ETL can run here: ``dask`` and ``distributed`` importable.

    Returns
    -------
    ok : bool
    reason : str
        What was found, or the missing package and how to install it.
    """
    for package in ("dask", "distributed"):
        if importlib.util.find_spec(package) is None:
            return False, (
                f"the package {package!r} is not installed "
                "(pip install -r requirements-dask.txt, i.e. dask[distributed])"
            )
    return True, "dask and distributed importable"


def is_local_scheduler(scheduler: str) -> bool:
    """Whether ``execution.dask_scheduler`` starts a cluster on this machine (``local``)
    rather than naming an existing scheduler (``tcp://host:8786``)."""
    return scheduler == "local"


def find_java() -> str | None:
    """Path of the ``java`` executable Spark would use, or None.

    Spark's launcher uses ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set and ``java``
    on ``PATH`` otherwise; this follows the same order.
    """
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        return str(java) if java.is_file() and os.access(java, os.X_OK) else None
    return shutil.which("java")


def java_major_version(java: str, timeout: float = 20.0) -> int | None:
    """Major version of a Java runtime (``java -version``), or None if it cannot be run."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_..."
    return int(match.group(2) or 0) if major == 1 else major


def spark_available() -> tuple[bool, str]:
    """Whether the Spark ETL can run in this environment.

    Returns
    -------
    ok : bool
        True if pyspark is importable and a Java >= 17 runtime is found.
    reason : str
        What was found, or exactly what is missing (``pyspark`` or ``java``).
    """
    spec = importlib.util.find_spec("pyspark")
    if spec is None:
        return False, "pyspark is not installed (pip install -r requirements-spark.txt)"
    java = find_java()
    if java is None:
        where = "$JAVA_HOME/bin/java" if os.environ.get("JAVA_HOME") else "java on PATH"
        return False, (
            f"no Java runtime found ({where}); install Java {MIN_JAVA_MAJOR}+, "
            "e.g. tests/cluster/install_java.sh"
        )
    major = java_major_version(java)
    if major is None:
        return False, f"java at {java} does not run (java -version failed)"
    if major < MIN_JAVA_MAJOR:
        return False, f"java at {java} is version {major}; pyspark 4 needs {MIN_JAVA_MAJOR}+"
    return True, f"pyspark importable, java {major} at {java}"


def is_local_master(master: str) -> bool:
    """Whether a Spark master URL runs everything on this machine (``local``, ``local[N]``,
    ``local[*]``, ``local[N,F]``)."""
    return master == "local" or master.startswith("local[")


def select_etl_engine(
    requested: str,
    input_mb: float,
    threshold_mb: float,
    master: str = "local[*]",
    dask_scheduler: str = "local",
) -> tuple[str, str]:
    """Pick the ETL engine of the split stage.

    ``auto`` picks a distributed engine only for an input above ``threshold_mb`` *and* a
    cluster to distribute to: a ``dask_scheduler`` address (``tcp://...``) for Dask, a
    cluster master (``spark://``, ``yarn``, ``k8s://``...) for Spark. On this machine's own
    cores it keeps the streaming pandas ETL: Spark ``local[2]`` took 2-4x its time and
    memory, and a Dask ``LocalCluster(2)``, 10-21 % faster, needs more memory up to ~9.5M
    rows, and would make the last bits of the results depend on whether dask is installed
    (``make bench-etl``; ``docs/dask.md``). When both clusters are configured, Dask is
    preferred: on the same cores it took 0.21-0.37x Spark's time and 0.23-0.28x its memory
    at 1M and 10M rows, its tasks being the pandas path's own code on row groups.

    Parameters
    ----------
    requested : {"auto", "pandas", "spark", "dask"}
        ``execution.etl_engine`` from the config.
    input_mb : float
        Size of the input table (``data.path``) in MB.
    threshold_mb : float
        ``execution.size_threshold_mb``: ``auto`` considers Spark or Dask only above it.
    master : str
        ``execution.spark_master``.
    dask_scheduler : str
        ``execution.dask_scheduler``: ``local`` or the address of a running scheduler.

    Returns
    -------
    engine : {"pandas", "spark", "dask"}
    reason : str
        One line saying why, suitable for the log (including why ``auto`` fell back).

    Raises
    ------
    SparkUnavailableError
        If ``requested`` is ``"spark"`` and pyspark or Java is missing.
    DaskUnavailableError
        If ``requested`` is ``"dask"`` and dask or distributed is missing.
    ValueError
        If ``requested`` is not one of :data:`ENGINES`.
    """
    if requested not in ENGINES:
        raise ValueError(f"execution.etl_engine must be one of {ENGINES}, got {requested!r}")
    size = f"input {input_mb:.1f} MB"
    if requested == "pandas":
        return "pandas", "execution.etl_engine is 'pandas'"
    if requested == "spark":
        ok, why = spark_available()
        if not ok:
            raise SparkUnavailableError(f"execution.etl_engine is 'spark' but {why}")
        return "spark", f"execution.etl_engine is 'spark' ({why})"
    if requested == "dask":
        ok, why = dask_available()
        if not ok:
            raise DaskUnavailableError(f"execution.etl_engine is 'dask' but {why}")
        return "dask", f"execution.etl_engine is 'dask' ({why}, scheduler {dask_scheduler})"
    if input_mb <= threshold_mb:
        return "pandas", f"auto: {size} <= size_threshold_mb {threshold_mb:g}"
    above = f"auto: {size} > size_threshold_mb {threshold_mb:g}"
    # a distributed engine only with a cluster to distribute to (docs/dask.md); Dask before
    # Spark, faster and lighter on the same cores (make bench-etl)
    why_not = []
    if not is_local_scheduler(dask_scheduler):
        ok, why = dask_available()
        if ok:
            also = "" if is_local_master(master) else f", preferred to Spark master {master!r}"
            return "dask", f"{above}, Dask scheduler {dask_scheduler!r}{also} ({why})"
        why_not.append(f"Dask is unavailable: {why}")
    if not is_local_master(master):
        ok, why = spark_available()
        if ok:
            instead = "".join(f"; {w}" for w in why_not)  # Dask's, if it was asked for
            return "spark", f"{above}, cluster master {master!r} ({why}){instead}"
        why_not.append(f"Spark is unavailable: {why}")
    if why_not:
        return "pandas", f"{above} but {'; '.join(why_not)}; falling back to pandas"
    return "pandas", (
        f"{above} but spark_master {master!r} is this machine, and so is dask_scheduler "
        f"{dask_scheduler!r}, where auto keeps the streaming pandas ETL; a distributed "
        "engine is chosen for a cluster (or set etl_engine: dask or spark)"
    )


JOB_WORKERS = ("auto", "warm", "fresh")
WARM_MAX_MB = 5.0
"""``execution.job_worker: auto`` uses the warm worker for inputs up to this size (MB)."""


def select_job_worker(requested: str, input_mb: float, local_why: str | None) -> tuple[bool, str]:
    """Whether this run's jobs run in the warm job worker (:mod:`survival_framework.worker`).

    ``auto`` uses it for a local run on an input of at most :data:`WARM_MAX_MB`: there a
    job's start-up and imports take longer than its work (the demo: 0.2-1.4 s per job for
    2-400 ms of fitting and scoring), and every job's memory is small. Larger inputs run each
    job in a fresh process, as Snakemake does, so that the ``benchmark:`` records (which then
    measure the job's own process) hold each job's exact peak memory and CPU time.

    Parameters
    ----------
    requested : {"auto", "warm", "fresh"}
        ``execution.job_worker`` from the config.
    input_mb : float
        Size of the input table (``data.path``) in MB.
    local_why : str or None
        None when Snakemake runs the jobs itself, as children on this machine (with this
        Python, on Linux); else why not (a cluster executor, conda or containers...).

    Returns
    -------
    warm : bool
    reason : str
        One line for the log.
    """
    if requested not in JOB_WORKERS:
        raise ValueError(f"execution.job_worker must be one of {JOB_WORKERS}, got {requested!r}")
    if requested == "fresh":
        return False, "execution.job_worker is 'fresh'"
    if local_why is not None:
        if requested == "warm":
            return False, f"execution.job_worker is 'warm' but {local_why}; jobs run fresh"
        return False, f"auto: {local_why}"
    if requested == "warm":
        return True, "execution.job_worker is 'warm'"
    size = f"input {input_mb:.1f} MB"
    if input_mb <= WARM_MAX_MB:
        return True, f"auto: local run, {size} <= {WARM_MAX_MB:g} MB"
    return False, f"auto: {size} > {WARM_MAX_MB:g} MB (per-job benchmark records stay exact)"
