"""ETL engine selection (survival_framework.engine) and its use when Snakemake builds the DAG.

The "pyspark missing" and "no Java" conditions are real: the check runs in a subprocess
whose sys.path has no site-packages (no pyspark), or whose JAVA_HOME/PATH has no java.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, copy_workflow, snakemake
from survival_framework.engine import (
    SparkUnavailableError,
    dask_available,
    find_java,
    java_major_version,
    select_etl_engine,
    spark_available,
)

SCRIPTS = str(REPO / "scripts")

CHECK = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from survival_framework.engine import select_etl_engine, spark_available
    out = {"available": spark_available()}
    out["auto"] = select_etl_engine("auto", 500.0, 100.0, "spark://127.0.0.1:7077")
    out["auto_local"] = select_etl_engine("auto", 500.0, 100.0, "local[*]")
    try:
        out["spark"] = select_etl_engine("spark", 500.0, 100.0)
    except Exception as exc:
        out["spark_error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
    """
)


def run_check(*python_flags: str, env: dict | None = None) -> dict:
    """Run the engine check in a fresh interpreter (stdlib-only imports)."""
    proc = subprocess.run(
        [sys.executable, *python_flags, "-c", CHECK, SCRIPTS],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)


CHECK_DASK = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from survival_framework.engine import dask_available, select_etl_engine
    out = {"available": dask_available()}
    out["auto"] = select_etl_engine("auto", 500.0, 100.0, "local[*]", "tcp://127.0.0.1:8786")
    try:
        out["dask"] = select_etl_engine("dask", 500.0, 100.0)
    except Exception as exc:
        out["dask_error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
    """
)


def java_ok() -> bool:
    java = find_java()
    return java is not None and (java_major_version(java) or 0) >= 17


def test_pandas_requested_never_looks_for_spark():
    engine, reason = select_etl_engine("pandas", 1e6, 100)
    assert engine == "pandas" and "'pandas'" in reason


def test_auto_below_threshold_is_pandas():
    engine, reason = select_etl_engine("auto", 99.0, 100)
    assert engine == "pandas"
    assert "99.0 MB <= size_threshold_mb 100" in reason


def test_unknown_engine_is_an_error():
    with pytest.raises(ValueError, match="auto"):
        select_etl_engine("polars", 1.0, 100)


@pytest.mark.skipif(not java_ok(), reason="needs Java 17+ (tests/cluster/install_java.sh)")
def test_auto_above_threshold_picks_spark_when_available():
    pytest.importorskip("pyspark")
    ok, why = spark_available()
    assert ok, why
    engine, reason = select_etl_engine("auto", 150.0, 100, "spark://10.0.0.1:7077")
    assert engine == "spark"
    assert "150.0 MB > size_threshold_mb 100" in reason and "java" in reason
    assert "cluster master 'spark://10.0.0.1:7077'" in reason


@pytest.mark.parametrize("master", ["local[*]", "local", "local[2]", "local[4,2]"])
def test_auto_on_a_local_master_is_pandas_at_any_size(master):
    """On this machine's own cores auto keeps the streaming pandas ETL (docs/dask.md)."""
    engine, reason = select_etl_engine("auto", 1e6, 100, master)
    assert engine == "pandas"
    assert f"spark_master {master!r} is this machine" in reason
    assert "falling back" not in reason  # a choice, not a fallback: no warning line


def test_local_master_choice_does_not_look_for_spark():
    out = run_check("-S", "-I")  # no pyspark importable: the local choice never asks
    engine, reason = out["auto_local"]
    assert engine == "pandas" and "is this machine" in reason and "pyspark" not in reason


def test_fallback_when_pyspark_is_missing():
    # -S: no site-packages on sys.path, so pyspark really cannot be imported
    out = run_check("-S", "-I")
    assert out["available"][0] is False and "pyspark" in out["available"][1]
    engine, reason = out["auto"]
    assert engine == "pandas"
    assert "falling back to pandas" in reason and "pyspark is not installed" in reason
    assert out["spark_error"].startswith("SparkUnavailableError")
    assert "pyspark" in out["spark_error"]


@pytest.mark.parametrize("how", ["JAVA_HOME", "PATH"])
def test_fallback_when_java_is_missing(tmp_path, how):
    pytest.importorskip("pyspark")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    if how == "JAVA_HOME":
        env["JAVA_HOME"] = str(tmp_path / "no-jdk")  # no bin/java in there
    else:
        env["PATH"] = str(tmp_path)  # an empty folder: no java anywhere on PATH
    out = run_check(env=env)
    assert out["available"][0] is False
    assert "no Java runtime found" in out["available"][1]
    engine, reason = out["auto"]
    assert engine == "pandas" and "falling back to pandas" in reason
    assert "java" in out["spark_error"].lower() and "pyspark" not in out["spark_error"]


def test_spark_forced_without_java_raises_in_process(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(SparkUnavailableError, match="no Java runtime found"):
        select_etl_engine("spark", 1.0, 100)


def test_fallback_when_dask_is_missing():
    # -S: no site-packages on sys.path, so dask really cannot be imported
    proc = subprocess.run(
        [sys.executable, "-S", "-I", "-c", CHECK_DASK, SCRIPTS],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert out["available"][0] is False and "'dask' is not installed" in out["available"][1]
    engine, reason = out["auto"]
    assert engine == "pandas" and "falling back to pandas" in reason
    assert "requirements-dask.txt" in reason
    assert out["dask_error"].startswith("DaskUnavailableError: execution.etl_engine is 'dask'")
    assert "'dask' is not installed" in out["dask_error"]


@pytest.mark.skipif(not java_ok(), reason="needs Java 17+ (tests/cluster/install_java.sh)")
def test_auto_prefers_dask_to_spark_when_both_clusters_are_given():
    pytest.importorskip("distributed")
    pytest.importorskip("pyspark")
    spark, dask = "spark://10.0.0.1:7077", "tcp://10.0.0.2:8786"
    engine, reason = select_etl_engine("auto", 150.0, 100.0, spark, dask)
    assert engine == "dask", reason
    assert f"Dask scheduler {dask!r}, preferred to Spark master {spark!r}" in reason
    # a local scheduler: Spark's cluster, as before Dask existed
    assert select_etl_engine("auto", 150.0, 100.0, spark, "local")[0] == "spark"


@pytest.mark.skipif(not java_ok(), reason="needs Java 17+ (tests/cluster/install_java.sh)")
def test_auto_falls_back_from_a_missing_dask_to_the_spark_cluster(tmp_path):
    """A real interpreter with pyspark and without dask: site-packages hidden (-S), pyspark
    alone linked onto its path."""
    pyspark = pytest.importorskip("pyspark")
    (tmp_path / "pyspark").symlink_to(Path(pyspark.__file__).parent)
    code = textwrap.dedent(
        """
        import json, sys
        sys.path[:0] = sys.argv[1:]
        from survival_framework.engine import select_etl_engine
        print(json.dumps(select_etl_engine(
            "auto", 500.0, 100.0, "spark://10.0.0.1:7077", "tcp://10.0.0.2:8786"
        )))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code, SCRIPTS, str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    engine, reason = json.loads(proc.stdout)
    assert engine == "spark", reason
    assert "cluster master 'spark://10.0.0.1:7077'" in reason
    assert "Dask is unavailable: the package 'dask' is not installed" in reason


def test_auto_picks_dask_for_a_scheduler_address_only():
    pytest.importorskip("distributed")
    assert dask_available()[0]
    address = "tcp://10.0.0.2:8786"
    engine, reason = select_etl_engine("auto", 150.0, 100.0, "local[*]", address)
    assert engine == "dask" and f"Dask scheduler {address!r}" in reason
    # below the threshold, or a local scheduler: the streaming pandas ETL
    assert select_etl_engine("auto", 50.0, 100.0, "local[*]", address)[0] == "pandas"
    engine, reason = select_etl_engine("auto", 150.0, 100.0, "local[*]", "local")
    assert engine == "pandas" and "so is dask_scheduler 'local'" in reason
    assert "falling back" not in reason
    # forced: whatever the size and scheduler
    assert select_etl_engine("dask", 0.1, 100.0)[0] == "dask"


# ------------------------------------------------------------------------------------
# the decision where the DAG is built (rules/common.smk + ruleorder in rules/spark.smk)
# ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dag_workdir(tmp_path_factory, gbsg2):
    wd = copy_workflow(tmp_path_factory.mktemp("dag"))
    (wd / "resources/demo").mkdir(parents=True)
    gbsg2.to_csv(wd / "resources/demo/gbsg2.csv", index=False)  # ~30 kB
    return wd


def dry_run(wd, execution: str, env: dict | None = None, check: bool = True):
    # an overlay config file: `--config execution={...}` would pass the values as strings
    overlay = wd / "execution.yaml"
    overlay.write_text(f"execution: {execution}\n")
    args = ["-n", "--cores", "1", "--configfile", "config/test/config.yaml", overlay.name]
    if env is None:
        return snakemake(wd, *args, check=check, timeout=120)
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=wd, capture_output=True, text=True, env=env, timeout=120)


def jobs_of(proc) -> set[str]:
    rules = ("split_data_spark", "split_data_dask", "split_data")
    return {rule for rule in rules if f"rule {rule}:" in proc.stdout}


def test_dag_small_input_uses_pandas(dag_workdir):
    proc = dry_run(dag_workdir, "{etl_engine: auto, size_threshold_mb: 100}")
    assert jobs_of(proc) == {"split_data"}
    assert "ETL engine: pandas (auto: input 0.0 MB <= size_threshold_mb 100)" in (
        proc.stdout + proc.stderr
    )


@pytest.mark.skipif(not java_ok(), reason="needs Java 17+ (tests/cluster/install_java.sh)")
def test_dag_big_input_uses_spark(dag_workdir):
    pytest.importorskip("pyspark")
    master = "spark_master: 'spark://127.0.0.1:7077'"  # a dry run never connects
    proc = dry_run(dag_workdir, f"{{etl_engine: auto, size_threshold_mb: 0.001, {master}}}")
    assert jobs_of(proc) == {"split_data_spark"}
    assert "ETL engine: spark (auto: input" in proc.stdout + proc.stderr


def test_dag_big_input_on_a_local_master_uses_pandas(dag_workdir):
    proc = dry_run(dag_workdir, "{etl_engine: auto, size_threshold_mb: 0.001}")
    assert jobs_of(proc) == {"split_data"}
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ETL engine:" in ln]
    assert len(lines) == 1 and "spark_master 'local[*]' is this machine" in lines[0], lines


def test_dag_falls_back_with_one_clear_line_without_java(dag_workdir, tmp_path):
    env = dict(os.environ, JAVA_HOME=str(tmp_path / "no-jdk"))
    overlay = "{etl_engine: auto, size_threshold_mb: 0.001, spark_master: 'yarn'}"
    proc = dry_run(dag_workdir, overlay, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert jobs_of(proc) == {"split_data"}
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ETL engine:" in ln]
    assert len(lines) == 1, lines
    assert "falling back to pandas" in lines[0] and "no Java runtime found" in lines[0]


def test_dag_dask_engine(dag_workdir):
    pytest.importorskip("distributed")
    proc = dry_run(dag_workdir, "{etl_engine: dask}")
    assert jobs_of(proc) == {"split_data_dask"}
    overlay = "{etl_engine: auto, size_threshold_mb: 0.001, dask_scheduler: 'tcp://127.0.0.1:1'}"
    proc = dry_run(dag_workdir, overlay)  # a dry run never connects
    assert jobs_of(proc) == {"split_data_dask"}
    assert "ETL engine: dask (auto: input" in proc.stdout + proc.stderr


def test_dag_rejects_a_bad_dask_scheduler(dag_workdir):
    proc = dry_run(dag_workdir, "{etl_engine: dask, dask_scheduler: '127.0.0.1:8786'}", check=False)
    assert proc.returncode != 0
    assert "dask_scheduler" in proc.stdout + proc.stderr


def test_dag_forced_spark_without_java_is_a_clear_error(dag_workdir, tmp_path):
    env = dict(os.environ, JAVA_HOME=str(tmp_path / "no-jdk"))
    proc = dry_run(dag_workdir, "{etl_engine: spark}", env=env)
    assert proc.returncode != 0
    assert "execution.etl_engine is 'spark' but no Java runtime found" in proc.stdout + proc.stderr
