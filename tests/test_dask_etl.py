"""Parity of the Dask ETL (survival_framework.dask_etl, rule split_data_dask) with pandas.

* in process: run_pandas_etl and run_dask_etl on the same clean table (missing values,
  rare and unseen levels, an id column, odd feature names, non-contiguous ``_row``), on a
  real ``LocalCluster`` of worker processes, the table in several partitions;
* a real Dask cluster: ``dask scheduler`` and two ``dask worker`` processes started on
  127.0.0.1 from the installed package, the ETL run against ``tcp://127.0.0.1:<port>``,
  everything stopped by PID;
* the real workflow on config/test/config.yaml with ``etl_engine: dask``, against the
  pandas run of conftest's ``test_workflow_run``: same folds, matrices, states and
  cv_metrics.csv within 1e-9.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import REPO, alive, custom_split_paths
from etl_parity import (
    assert_exact_states,
    assert_same_cv_metrics,
    assert_same_splits,
    tricky_clean_table,
)
from survival_framework.etl import run_pandas_etl, split_paths

pytest.importorskip("distributed")
pytestmark = pytest.mark.dask

N_FOLDS_TEST_CONFIG = 3
ARGS = dict(n_folds=4, seed=5, min_frequency=0.02, n_times=12, quantiles=(0.1, 0.8), max_levels=3)


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster of two single-threaded worker processes (what ``local`` starts)."""
    from survival_framework.dask_etl import dask_client

    with dask_client("local", 2, 2048) as c:
        assert len(c.scheduler_info()["workers"]) == 2
        yield c


def small_groups(clean: Path, rows: int = 97) -> None:
    """Rewrite ``clean`` in row groups of ``rows`` rows (same schema and pandas metadata),
    so that the Dask path sees several partitions."""
    pq.write_table(pq.read_table(clean), clean, row_group_size=rows)


def test_in_process_parity(client, tmp_path):
    from survival_framework.dask_etl import run_dask_etl

    clean, schema = tricky_clean_table(tmp_path)
    small_groups(clean)
    pandas_out = split_paths(tmp_path / "pandas", 4)
    run_pandas_etl(clean, schema, **pandas_out, **ARGS)
    dask_dir = tmp_path / "dask"
    dask_out = custom_split_paths(dask_dir, 4)  # exactly the paths it is given
    # batch_rows 150: partitions of 2 row groups; sample_rows 100: a poor sample, so the
    # medians come from collected bucket values, not from one-value buckets
    run_dask_etl(client, clean, schema, **dask_out, **ARGS, batch_rows=150, sample_rows=100)
    written = {p for p in dask_dir.rglob("*") if p.is_file()}
    assert written == {dask_out["folds_path"], dask_out["grid_path"]} | {
        p for part in ("train", "test", "preprocessor") for p in dask_out[f"{part}_paths"]
    }
    assert not list(dask_dir.rglob(".dask-parts-*"))
    assert_same_splits(pandas_out, dask_out, 4)
    assert_exact_states(pandas_out, dask_out, 4)
    # each partition's rows are one row group, in _row order
    from survival_framework.dask_etl import partitions

    test0 = pq.ParquetFile(dask_out["test_paths"][0])
    assert test0.num_row_groups == len(partitions(clean, 150)) == 4
    assert test0.read().to_pandas()["_row"].is_monotonic_increasing


def test_in_process_parity_with_repeats(client, tmp_path):
    from survival_framework.dask_etl import run_dask_etl

    clean, schema = tricky_clean_table(tmp_path)
    small_groups(clean, 200)
    args = dict(ARGS, n_folds=3, n_repeats=2)
    pandas_out = split_paths(tmp_path / "pandas", 3, 2)
    run_pandas_etl(clean, schema, **pandas_out, **args)
    dask_out = split_paths(tmp_path / "dask", 3, 2)
    run_dask_etl(client, clean, schema, **dask_out, **args, batch_rows=200)
    assert_same_splits(pandas_out, dask_out, 6)
    assert_exact_states(pandas_out, dask_out, 6)


@pytest.mark.parametrize("kind", ["continuous", "ties", "skewed", "sparse"])
def test_fold_medians_equal_numpy_bit_for_bit(client, tmp_path, kind):
    """The distributed median of every fold's training values is np.median's, whatever
    the sample (heavy ties, signed zeros, mostly missing columns)."""
    import pyarrow as pa
    from test_spark_etl import median_case

    from survival_framework.dask_etl import run_dask_etl

    rng = np.random.default_rng(["continuous", "ties", "skewed", "sparse"].index(kind))
    clean, schema = tricky_clean_table(tmp_path)
    table = pq.read_table(clean)
    x1 = pa.array(median_case(rng, table.num_rows, kind), from_pandas=False)
    table = table.set_column(table.schema.get_field_index("x1"), "x1", x1)
    pq.write_table(table, clean, row_group_size=64)
    out = split_paths(tmp_path / "dask", 4)
    run_dask_etl(client, clean, schema, **out, **ARGS, batch_rows=64, sample_rows=50)
    folds = pd.read_parquet(out["folds_path"])
    x = pd.read_parquet(clean)["x1"].to_numpy()
    for k in range(4):
        train = ~folds["fold"].eq(k).to_numpy()
        values = x[train][~np.isnan(x[train])]
        state = json.loads(Path(out["preprocessor_paths"][k]).read_text())
        expected = float(np.median(values)) if values.size else 0.0
        assert state["numeric"]["x1"]["median"] == expected, (kind, k)


def test_a_task_error_names_the_file_and_keeps_old_outputs(client, tmp_path):
    """A table that breaks in a worker fails the ETL with the worker's error, and leaves
    no part directory and no half-written output."""
    from survival_framework.dask_etl import run_dask_etl

    clean, schema = tricky_clean_table(tmp_path)
    out = split_paths(tmp_path / "out", 4)
    bad = json.loads(schema.read_text())
    bad["numeric"] = [*bad["numeric"], "no such column"]
    schema.write_text(json.dumps(bad))
    with pytest.raises(Exception, match="no such column"):
        run_dask_etl(client, clean, schema, **out, **ARGS)
    assert not (tmp_path / "out").exists() or not [
        p for p in (tmp_path / "out").rglob("*") if p.is_file()
    ]


# ------------------------------------------------------------------------------------
# a real cluster: dask scheduler + 2 dask workers on 127.0.0.1
# ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes of the installed package on
    127.0.0.1; stopped (by PID) at the end, and checked gone."""
    from distributed import Client

    state = tmp_path_factory.mktemp("dask_cluster")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).with_name("dask"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    common = ["--no-dashboard"]
    procs = []
    with ExitStack() as logs:
        try:
            out = logs.enter_context(open(state / "scheduler.log", "w"))
            procs.append(subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), *common],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            ))  # fmt: skip
            for i in range(2):
                out = logs.enter_context(open(state / f"worker{i}.log", "w"))
                procs.append(subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--memory-limit", "1GB",
                     "--name", f"w{i}", "--local-directory", str(state / f"w{i}"), *common],
                    stdout=out, stderr=subprocess.STDOUT, env=env,
                ))  # fmt: skip
            deadline = time.monotonic() + 90
            while True:
                try:
                    with Client(address, timeout=5) as c:
                        if len(c.scheduler_info()["workers"]) == 2:
                            break
                except OSError:
                    pass
                log = (state / "scheduler.log").read_text()[-3000:]
                assert time.monotonic() < deadline, log
                time.sleep(0.5)
            yield {"address": address, "state": state, "pids": [p.pid for p in procs]}
        finally:
            for p in reversed(procs):
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    assert not [p.pid for p in procs if alive(p.pid)]


def test_etl_on_a_real_dask_cluster_matches_pandas(dask_cluster, tmp_path):
    from survival_framework.dask_etl import dask_client, run_dask_etl

    clean, schema = tricky_clean_table(tmp_path)
    small_groups(clean)
    pandas_out = split_paths(tmp_path / "pandas", 4)
    run_pandas_etl(clean, schema, **pandas_out, **ARGS)
    dask_out = split_paths(tmp_path / "dask", 4)
    with dask_client(dask_cluster["address"], 1, None) as c:
        workers = c.scheduler_info()["workers"]
        assert {w["name"] for w in workers.values()} == {"w0", "w1"}
        run_dask_etl(c, clean, schema, **dask_out, **ARGS, batch_rows=150)
        # both workers ran tasks (the cluster's processes, not this one)
        ran = c.run(lambda dask_worker: dask_worker.state.executed_count)
        assert len(ran) == 2 and all(n > 0 for n in ran.values()), ran
    assert_same_splits(pandas_out, dask_out, 4)
    assert_exact_states(pandas_out, dask_out, 4)


# ------------------------------------------------------------------------------------
# the workflow with etl_engine: dask
# ------------------------------------------------------------------------------------


@pytest.mark.integration
def test_workflow_with_dask_matches_pandas(test_workflow_run, dask_workflow_run):
    wd, output = dask_workflow_run
    assert "ETL engine: dask (execution.etl_engine is 'dask'" in output
    assert not (wd / "logs/splits/split_data.log").exists()
    log = (wd / "logs/splits/split_data_dask.log").read_text()
    assert "dask: local cluster of 2 worker(s)" in log  # threads: 4, scaled to --cores 2
    assert (wd / "benchmarks/splits/split_data_dask.tsv").exists()
    pandas_out = split_paths(test_workflow_run / "results/splits", N_FOLDS_TEST_CONFIG)
    dask_out = split_paths(wd / "results/splits", N_FOLDS_TEST_CONFIG)
    assert_same_splits(pandas_out, dask_out, N_FOLDS_TEST_CONFIG)
    assert_exact_states(pandas_out, dask_out, N_FOLDS_TEST_CONFIG)
    assert_same_cv_metrics(test_workflow_run, wd, N_FOLDS_TEST_CONFIG)
    prov = json.loads((wd / "results/splits/provenance.json").read_text())
    assert prov["etl_engine"] == "dask" and prov["dask_scheduler"] == "local"
