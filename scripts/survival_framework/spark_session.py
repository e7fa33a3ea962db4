"""The Spark session of the ETL: master URL, log4j2 configuration, settings, start-up.

Used by rule ``split_data_spark`` (``scripts/split_data_spark.py``) and the ETL benchmark.
pyspark is an optional extra: only :func:`start_spark_session` imports it, at call time.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyspark is an optional extra: imported lazily at run time
    from pyspark.sql import SparkSession

__all__ = [
    "spark_master_url",
    "spark_conf",
    "log4j2_properties",
    "start_spark_session",
]


def spark_master_url(master: str, threads: int) -> str:
    """Master URL to use: ``local[*]``/``local`` become ``local[threads]`` (the rule's
    threads, so Snakemake's core accounting holds); anything else is passed through."""
    if master in ("local", "local[*]"):
        return f"local[{max(int(threads), 1)}]"
    return master


def log4j2_properties(log_path: str | os.PathLike, level: str = "warn") -> str:
    """A log4j2 configuration that appends Spark's own log records to ``log_path``."""
    return "\n".join(
        [
            "status = error",
            f"rootLogger.level = {level}",
            "rootLogger.appenderRef.file.ref = file",
            "appender.file.type = File",
            "appender.file.name = file",
            f"appender.file.fileName = {Path(log_path).resolve()}",
            "appender.file.append = true",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %p spark %c{1}: %m%n%ex",
            # Spark version, application id, start and stop: always in the rule's log
            "logger.sc.name = org.apache.spark.SparkContext",
            "logger.sc.level = info",
            # the same noise Spark's own defaults silence
            "logger.jetty.name = org.sparkproject.jetty",
            "logger.jetty.level = warn",
            "",
        ]
    )


def spark_conf(
    master: str,
    threads: int,
    memory: str,
    log4j_file: str | os.PathLike | None = None,
) -> dict[str, str]:
    """Spark settings of the ETL session.

    Parameters
    ----------
    master : str
        ``execution.spark_master`` (``local[*]``, ``spark://host:7077``, ``yarn``, ``k8s://...``).
    threads : int
        The rule's threads (used for ``local[*]``).
    memory : str
        ``execution.spark_memory``, for both ``spark.driver.memory`` and
        ``spark.executor.memory`` (keep it below a standalone worker's ``--memory``).
    log4j_file : path-like, optional
        log4j2 configuration for the driver (see :func:`log4j2_properties`).

    Returns
    -------
    dict of str to str
    """
    url = spark_master_url(master, threads)
    # No -XX:TieredStopAtLevel=1: it saves ~1 s of JVM start-up but, with C1 only, made
    # the ETL itself 1.5-1.9x slower (1M rows).
    driver_opts = ""
    if log4j_file is not None:
        driver_opts = f"-Dlog4j2.configurationFile=file:{Path(log4j_file).resolve()}"
    conf = {
        "spark.master": url,
        "spark.app.name": "survival-workflow split_data_spark",
        "spark.driver.memory": memory,
        "spark.executor.memory": memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
    }
    if driver_opts:
        conf["spark.driver.extraJavaOptions"] = driver_opts
    if url.startswith("local"):
        # the default of 200 shuffle partitions is far too many for one machine
        conf["spark.sql.shuffle.partitions"] = str(max(4, 2 * max(int(threads), 1)))
    return conf


def start_spark_session(
    master: str,
    threads: int,
    memory: str,
    log_path: str | os.PathLike | None = None,
    capture_stderr: bool = False,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Start the SparkSession of the ETL (imports pyspark; starts a JVM).

    Parameters
    ----------
    master, threads, memory
        See :func:`spark_conf`.
    log_path : path-like, optional
        The rule's log file: Spark's log4j records are appended to it.
    capture_stderr : bool
        Also point file descriptor 2 at ``log_path`` before the JVM starts, so the JVM's
        own messages land in the log (rule scripts only; never inside pytest).
    extra_conf : dict, optional
        More Spark settings (override the defaults).

    Returns
    -------
    pyspark.sql.SparkSession
    """
    from pyspark.sql import SparkSession

    # executors (and Arrow conversions) use this interpreter, not whatever `python` is
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    log4j_file = None
    if log_path is not None:
        fd, log4j_file = tempfile.mkstemp(prefix="log4j2-", suffix=".properties")
        with os.fdopen(fd, "w") as fh:
            fh.write(log4j2_properties(log_path))
        if capture_stderr:
            with open(log_path, "a", encoding="utf-8") as log_fh:
                os.dup2(log_fh.fileno(), 2)  # fd 2 stays open after the `with`
    conf = spark_conf(master, threads, memory, log4j_file)
    conf.update(extra_conf or {})
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    finally:
        if log4j_file is not None:  # read once by the JVM at start-up
            os.unlink(log4j_file)
