"""Parity of the Spark ETL (survival_framework.spark_etl, rule split_data_spark) with pandas.

* in process: run_pandas_etl and run_spark_etl on the same clean table (missing values,
  rare and unseen levels, an id column, odd feature names, non-contiguous ``_row``);
* the real workflow on config/test/config.yaml with the Spark overlay, its rule
  split_data_spark running on a real Spark standalone cluster (master + worker on
  127.0.0.1, tests/cluster/spark_up.sh, ``spark_master: spark://127.0.0.1:<port>``),
  against the pandas run of conftest's ``test_workflow_run``: same folds, matrices,
  states and cv_metrics.csv.

Java 17 is installed with apt by tests/cluster/install_java.sh where it is missing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import REPO, copy_workflow, custom_split_paths
from etl_parity import (
    TOL,
    assert_exact_states,
    assert_same_cv_metrics,
    assert_same_splits,
    tricky_clean_table,
)
from survival_framework.contract import FOLD_COL, REPEAT_COL, ROW_COL
from survival_framework.etl import run_pandas_etl, split_paths
from survival_framework.io import write_parquet

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark
CLUSTER = REPO / "tests" / "cluster"
N_FOLDS_TEST_CONFIG = 3


@pytest.fixture(scope="session")
def java_runtime() -> str:
    """Path of a Java 17+ runtime, apt-installed if missing (skip where impossible)."""
    proc = subprocess.run(
        [str(CLUSTER / "install_java.sh")], capture_output=True, text=True, timeout=900
    )
    if proc.returncode == 3:
        pytest.skip(f"no Java 17+ and it cannot be installed here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def spark(java_runtime, tmp_path_factory):
    """One local[2] SparkSession for the in-process tests."""
    from survival_framework.spark_session import start_spark_session

    log = tmp_path_factory.mktemp("spark") / "spark.log"
    session = start_spark_session("local[*]", 2, "1g", log_path=log)
    assert session.sparkContext.master == "local[2]"  # local[*] -> the given threads
    yield session
    session.stop()


# ------------------------------------------------------------------------------------
# in process
# ------------------------------------------------------------------------------------


def test_in_process_parity(spark, tmp_path):
    from survival_framework.spark_etl import run_spark_etl

    clean, schema = tricky_clean_table(tmp_path)
    # max_levels=3 caps 'site' (4 frequent levels) and 'cat'; min_frequency pools the rare ones
    args = dict(
        n_folds=4, seed=5, min_frequency=0.02, n_times=12, quantiles=(0.1, 0.8), max_levels=3
    )
    pandas_out = split_paths(tmp_path / "pandas", 4)
    run_pandas_etl(clean, schema, **pandas_out, **args)
    # Spark writes exactly the paths it is given, here not the workflow's layout
    spark_dir = tmp_path / "spark"
    spark_out = custom_split_paths(spark_dir, 4)
    # a tiny chunk size exercises the chunked, ordered write to one Parquet file
    run_spark_etl(spark, clean, schema, **spark_out, chunk_mb=0.05, **args)
    written = {p for p in spark_dir.rglob("*") if p.is_file()}
    assert written == {spark_out["folds_path"], spark_out["grid_path"]} | {
        p for part in ("train", "test", "preprocessor") for p in spark_out[f"{part}_paths"]
    }
    assert_same_splits(pandas_out, spark_out, 4)
    state = json.loads(spark_out["preprocessor_paths"][0].read_text())
    site = state["categorical"]["site"]
    assert site["has_other"] and site["n_rare_levels"] == 2 and len(site["levels"]) == 2
    assert "dose.mg" in state["numeric"]
    test0 = pd.read_parquet(spark_out["test_paths"][0])
    assert test0[ROW_COL].is_monotonic_increasing and test0["customer id"].str.startswith("c").all()


@pytest.mark.dask
def test_in_process_dask_matches_spark(spark, tmp_path):
    """Spark and Dask on the same table, compared directly: identical folds and grid,
    medians and level states identical, matrices within 1e-9."""
    pytest.importorskip("distributed")
    from survival_framework.dask_etl import dask_client, run_dask_etl
    from survival_framework.spark_etl import run_spark_etl

    clean, schema = tricky_clean_table(tmp_path)
    pq.write_table(pq.read_table(clean), clean, row_group_size=150)  # 5 Dask partitions
    args = dict(
        n_folds=4, seed=5, min_frequency=0.02, n_times=12, quantiles=(0.1, 0.8), max_levels=3
    )
    spark_out = split_paths(tmp_path / "spark", 4)
    run_spark_etl(spark, clean, schema, **spark_out, **args)
    dask_out = split_paths(tmp_path / "dask", 4)
    with dask_client("local", 2, 2048) as client:
        run_dask_etl(client, clean, schema, **dask_out, **args, batch_rows=150)
    assert_same_splits(spark_out, dask_out, 4)
    assert_exact_states(spark_out, dask_out, 4)


def test_in_process_parity_with_repeats(spark, tmp_path):
    """cv.n_repeats 2: both engines write the same 2 x 3 resamples (the folds of
    splits.assign_repeated_folds through etl.folds_and_grid in both)."""
    from survival_framework.spark_etl import run_spark_etl

    clean, schema = tricky_clean_table(tmp_path)
    args = dict(
        n_folds=3, n_repeats=2, seed=5, min_frequency=0.02, n_times=12, quantiles=(0.1, 0.8)
    )
    pandas_out = split_paths(tmp_path / "pandas", 3, 2)
    run_pandas_etl(clean, schema, **pandas_out, **args)
    spark_out = split_paths(tmp_path / "spark", 3, 2)
    run_spark_etl(spark, clean, schema, **spark_out, **args)
    assert len(spark_out["train_paths"]) == 6
    assert_same_splits(pandas_out, spark_out, 6)
    folds = pd.read_parquet(spark_out["folds_path"])
    assert sorted(folds[REPEAT_COL].unique()) == [0, 1]
    assert sorted(folds.loc[folds[REPEAT_COL] == 1, FOLD_COL].unique()) == [3, 4, 5]


def test_spark_rejects_a_table_not_written_by_validate_data(spark, tmp_path):
    from survival_framework.spark_etl import run_spark_etl

    clean, schema = tricky_clean_table(tmp_path)
    df = pd.read_parquet(clean)
    df["event"] = df["event"].astype("float64")
    write_parquet(df, clean)
    args = dict(n_folds=3, seed=1, min_frequency=0.01, n_times=10, quantiles=(0.1, 0.8))
    with pytest.raises(ValueError, match="column 'event': type double, expected int8"):
        run_spark_etl(spark, clean, schema, **split_paths(tmp_path / "out", 3), **args)


def test_spark_rejects_one_path_too_few_before_any_work(spark, tmp_path):
    from survival_framework.spark_etl import run_spark_etl

    out = split_paths(tmp_path / "out", 3)
    out["test_paths"] = out["test_paths"][:2]
    args = dict(n_folds=3, seed=1, min_frequency=0.01, n_times=10, quantiles=(0.1, 0.8))
    with pytest.raises(ValueError, match=r"test_paths: 2 path\(s\) for n_folds=3"):
        run_spark_etl(spark, tmp_path / "missing.parquet", tmp_path / "missing.json", **out, **args)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layout", ["ordered", "unsorted_inside", "round_robin"])
def test_write_split_orders_rows_with_the_driver_bounded(spark, tmp_path, layout):
    """Executors write the parts; the file holds exactly the split's rows in ``_row`` order
    under the real column names, with no part directory left. Partitions with disjoint
    ``_row`` ranges (how ``validate_data`` writes) are copied in order (a row group sorted
    on the driver if it is not sorted inside); round-robin partitions, whose ranges
    overlap, are range-sorted by Spark first."""
    import logging

    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from survival_framework.spark_etl import _write_split

    rng = np.random.default_rng(7)
    n = 5000
    rows = np.sort(rng.choice(20 * n, size=n, replace=False)).astype(np.int64)
    df = pd.DataFrame(
        {ROW_COL: rows, "a=b c": rng.normal(size=n), "site,x": rng.choice(["u", "v"], n)}
    )
    sdf = spark.createDataFrame(df)
    if layout == "round_robin":
        sdf = sdf.coalesce(1).repartition(3)
    else:
        sdf = sdf.repartitionByRange(3, ROW_COL)
        key = F.col(ROW_COL) if layout == "ordered" else F.rand(seed=3)
        sdf = sdf.sortWithinPartitions(key)
    out = tmp_path / "fold_0" / "train.parquet"
    how = _write_split(sdf, rows, out, 0.01, logging.getLogger("t"))
    assert how == ("sorted" if layout == "round_robin" else "ordered")
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.parquet"]
    got = pq.read_table(out)
    assert got.schema.names == [ROW_COL, "a=b c", "site,x"]
    assert str(got.schema.field("site,x").type) == "string"
    # chunk_mb=0.01: sorted row groups are copied in chunks, an unsorted one sorted whole
    n_groups = pq.ParquetFile(out).num_row_groups
    assert n_groups == 3 if layout == "unsorted_inside" else n_groups > 3
    pd.testing.assert_frame_equal(got.to_pandas(), df)
    with pytest.raises(RuntimeError, match="rows other than the split"):
        _write_split(sdf, rows + 1, out, 0.01, logging.getLogger("t"))
    pd.testing.assert_frame_equal(pq.read_table(out).to_pandas(), df)  # the old file stays
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.parquet"]


def load_script(path: Path):
    """A script (not a package module) imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_case(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """One column of a median test case."""
    if kind == "continuous":
        x = rng.normal(10.0, 3.0, n)
    elif kind == "ties":  # a point mass at the median, and 0.0 / -0.0 both present
        x = rng.choice([-1.0, -0.0, 0.0, 2.5, 7.0], size=n, p=[0.2, 0.15, 0.3, 0.2, 0.15])
    elif kind == "skewed":
        x = rng.lognormal(0.0, 2.0, n)
    else:  # "sparse": mostly missing
        x = np.where(rng.random(n) < 0.97, np.nan, rng.integers(0, 50, n).astype(float))
    if kind != "sparse":
        x[rng.random(n) < 0.1] = np.nan
    return x


@pytest.mark.parametrize(
    ("n", "sample_rows", "probs"),
    [
        (2001, 200_000, None),  # the sample is the whole table
        (2000, 150, None),  # a poor sample: wide buckets
        (1999, 500, [0.02, 0.05]),  # brackets that miss every median: end buckets
    ],
)
def test_exact_fold_medians_equal_numpy(spark, n, sample_rows, probs):
    """Bit-identical to np.median of each fold's training values, for odd and even counts,
    ties, signed zeros, skew, a mostly-missing column and a fold with no value at all."""
    from survival_framework.spark_stats import exact_fold_medians

    rng = np.random.default_rng(n)
    kinds = ["continuous", "ties", "skewed", "sparse"]
    df = pd.DataFrame({k: median_case(rng, n, k) for k in kinds})
    df[FOLD_COL] = rng.integers(0, 4, n).astype(np.int32)
    df["nofold3"] = np.where(df[FOLD_COL] == 3, rng.normal(size=n), np.nan)  # only fold 3
    cols = [*kinds, "nofold3"]
    sdf = spark.createDataFrame(df[[FOLD_COL, *cols]])
    got = exact_fold_medians(sdf, cols, 4, n, sample_rows=sample_rows, probs=probs, seed=1)
    for k in range(4):
        for j, c in enumerate(cols):
            x = df.loc[df[FOLD_COL] != k, c].to_numpy()
            x = x[~np.isnan(x)]
            if x.size == 0:
                assert np.isnan(got[k, j]), (k, c)
            else:
                assert got[k, j] == np.median(x), (k, c, got[k, j], np.median(x))


def test_pooled_mean_std_equals_numpy():
    from survival_framework.spark_stats import pooled_mean_std

    rng = np.random.default_rng(4)
    # a large mean and a small spread: raw sums of squares would lose every digit
    groups = [1e8 + rng.normal(0, 1e-3, m) for m in (5, 0, 17, 1, 40)]
    n = np.array([g.size for g in groups])
    mean = np.array([g.mean() if g.size else 0.0 for g in groups])
    m2 = np.array([((g - g.mean()) ** 2).sum() if g.size else 0.0 for g in groups])
    everything = np.concatenate(groups)
    got_mean, got_std = pooled_mean_std(n, mean, m2)
    assert got_mean == pytest.approx(everything.mean(), rel=1e-15)
    assert got_std == pytest.approx(everything.std(), rel=1e-7)
    assert pooled_mean_std(np.array([0, 0]), np.zeros(2), np.zeros(2)) == (0.0, 0.0)


def test_etl_benchmark_runs_the_three_engines_and_reports_medians(java_runtime, tmp_path):
    """``make bench-etl``'s script on a tiny table: per-run lines, medians, ratios, --append."""
    pytest.importorskip("distributed")
    from survival_framework.synthetic import write_survival_table

    n = 4000
    write_survival_table(tmp_path / "data" / f"survival_{n}.parquet", n, seed=3)
    out, summary = tmp_path / "etl.csv", tmp_path / "etl.md"
    cmd = [sys.executable, str(REPO / "scripts/bench/etl_bench.py"), "--rows", str(n)]
    cmd += ["--data-dir", str(tmp_path / "data"), "--work", str(tmp_path / "work")]
    cmd += ["--out", str(out), "--summary", str(summary), "--memory", "1g"]
    cmd += ["--dask-mem-mb", "2000"]
    proc = subprocess.run(
        [*cmd, "--repeats", "2", "--engines", "pandas", "spark", "dask"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = pd.read_csv(out)
    assert len(runs) == 6 and (runs["status"] == "ok").all()
    assert runs["same_folds"].all()
    assert sorted(runs["repeat"].unique()) == [0, 1]
    for engine in ("spark", "dask"):  # a session or cluster started, more than one process
        started = runs[runs["engine"] == engine]
        assert (started["session_s"] > 0).all() and (started["peak_rss_mb"] > 100).all()
    bench = load_script(REPO / "scripts/bench/etl_bench.py")
    table = bench.medians(runs).set_index("engine")
    expected = runs.groupby("engine")[["wall_s", "peak_rss_mb"]].median()
    pd.testing.assert_frame_equal(table[["wall_s", "peak_rss_mb"]], expected, check_names=False)
    assert table["runs"].tolist() == [2, 2, 2] and table["same_folds"].all()
    ratio = bench.ratios(runs).set_index("engine")
    for engine in ("pandas", "spark", "dask"):
        want = expected.loc[engine, "wall_s"] / expected.loc["pandas", "wall_s"]
        assert ratio.loc[engine, "wall_vs_pandas"] == pytest.approx(want, rel=1e-12)
    text = summary.read_text()
    table_lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    for engine in ("pandas", "spark", "dask"):  # one median and one ratio line each
        assert sum(f" {engine} " in ln for ln in table_lines) == 2, text
    for name in ("Spark local[2]", "Dask LocalCluster(2)"):
        assert f"{name}: " in text and f"{name}: memory crossover" in text, text
    # --append adds a third pandas run and keeps the others
    proc = subprocess.run(
        [*cmd, "--append", "--engines", "pandas"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = pd.read_csv(out)
    assert len(runs) == 7
    assert runs.loc[runs["engine"] == "pandas", "repeat"].tolist() == [0, 1, 2]


# ------------------------------------------------------------------------------------
# the real workflow, both ways; the Spark run on a real standalone cluster on 127.0.0.1
# ------------------------------------------------------------------------------------


def free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


@pytest.fixture(scope="module")
def spark_cluster(java_runtime, tmp_path_factory):
    """Master + worker (2 cores, 1536 MB) from the venv's pyspark; stopped by PID afterwards."""
    state = tmp_path_factory.mktemp("spark_cluster")
    port = free_port(7077)
    env = dict(
        os.environ,
        SPARK_STATE_DIR=str(state),
        PYTHON=sys.executable,
        SPARK_MASTER_PORT=str(port),
        SPARK_MASTER_WEBUI_PORT=str(free_port()),
        SPARK_WORKER_WEBUI_PORT=str(free_port()),
        SPARK_WORKER_CORES="2",
        SPARK_WORKER_MEMORY="1536m",
    )
    try:
        up = subprocess.run(
            [str(CLUSTER / "spark_up.sh")], env=env, capture_output=True, text=True, timeout=300
        )
        if up.returncode == 3:
            pytest.skip(f"Spark cluster cannot be provided here: {up.stdout}{up.stderr}")
        assert up.returncode == 0, up.stdout + up.stderr
        yield {"url": f"spark://127.0.0.1:{port}", "state": state, "env": env}
    finally:
        down = subprocess.run(
            [str(CLUSTER / "spark_down.sh")], env=env, capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="module")
def spark_workflow_run(spark_cluster, tmp_path_factory) -> Path:
    """config/test/config.yaml + config/test/spark.yaml, with the master pointed at the
    standalone cluster (one more overlay), run end to end by Snakemake."""
    wd = copy_workflow(tmp_path_factory.mktemp("wf_spark"))
    (wd / "cluster.yaml").write_text(
        f'execution:\n  spark_master: "{spark_cluster["url"]}"\n'
        "  spark_memory: 768m\n"  # below the worker's 1536m, or the app waits forever
    )
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile"]
    cmd += ["config/test/config.yaml", "config/test/spark.yaml", "cluster.yaml"]
    env = dict(spark_cluster["env"], SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return wd


@pytest.mark.integration
def test_workflow_on_spark_cluster_matches_pandas(
    test_workflow_run, spark_workflow_run, spark_cluster
):
    pandas_wd, spark_wd = test_workflow_run, spark_workflow_run
    # each run used exactly one of the two ETL rules
    assert (pandas_wd / "logs/splits/split_data.log").exists()
    assert not (pandas_wd / "logs/splits/split_data_spark.log").exists()
    assert not (spark_wd / "logs/splits/split_data.log").exists()
    log = (spark_wd / "logs/splits/split_data_spark.log").read_text()
    assert f"spark {spark_cluster['url']}: 686 rows" in log
    assert "INFO spark SparkContext: Running Spark version" in log  # Spark's own log4j
    assert list((spark_cluster["state"] / "work").glob("app-*")), "no app ran on the worker"
    assert (spark_wd / "benchmarks/splits/split_data_spark.tsv").exists()
    # same folds, grid, matrices, states
    assert_same_splits(
        split_paths(pandas_wd / "results/splits", N_FOLDS_TEST_CONFIG),
        split_paths(spark_wd / "results/splits", N_FOLDS_TEST_CONFIG),
        N_FOLDS_TEST_CONFIG,
    )
    # and the same model metrics
    assert_same_cv_metrics(pandas_wd, spark_wd, N_FOLDS_TEST_CONFIG)


@pytest.mark.integration
@pytest.mark.dask
def test_workflow_on_spark_cluster_matches_dask(spark_workflow_run, dask_workflow_run):
    """The third pair, directly (each against pandas: above and in tests/test_dask_etl.py):
    the same folds, exact medians and level states, matrices and cv_metrics.csv within
    1e-9."""
    dask_wd, _ = dask_workflow_run
    spark_out = split_paths(spark_workflow_run / "results/splits", N_FOLDS_TEST_CONFIG)
    dask_out = split_paths(dask_wd / "results/splits", N_FOLDS_TEST_CONFIG)
    assert_same_splits(spark_out, dask_out, N_FOLDS_TEST_CONFIG)
    assert_exact_states(spark_out, dask_out, N_FOLDS_TEST_CONFIG)
    assert_same_cv_metrics(spark_workflow_run, dask_wd, N_FOLDS_TEST_CONFIG)


# ------------------------------------------------------------------------------------
# run_pipeline's Spark modes (tests/test_pipeline.py holds the pandas and mp modes)
# ------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["spark_local", "spark_cluster"])
def test_run_pipeline_spark_modes_match_the_plain_run(
    mode, test_workflow_run, spark_cluster, tmp_path, monkeypatch
):
    from test_pipeline import assert_same_rows, run_mode

    from survival_framework.pipeline import RUN_CONFIG

    for key, value in spark_cluster["env"].items():  # the cluster's Spark settings
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    master = spark_cluster["url"] if mode == "spark_cluster" else None
    result = run_mode(
        test_workflow_run, tmp_path, mode, n_jobs=2, spark_master=master, spark_memory="768m"
    )
    log = (tmp_path / "logs/splits/split_data_spark.log").read_text()
    assert f"spark {master or 'local[2]'}: 686 rows" in log
    assert not (tmp_path / "logs/splits/split_data.log").exists()  # the Spark rule only
    assert "etl_engine: spark" in (tmp_path / RUN_CONFIG).read_text()
    want = pd.read_csv(test_workflow_run / "results/leaderboard.csv")
    assert_same_rows(result.leaderboard, want, atol=TOL)  # as the workflow's Spark parity
