"""Benchmark the split-stage ETL: pandas vs Spark vs Dask, wall time and peak memory
(``make bench-etl``).

For each size, the synthetic table ``resources/synthetic/survival_{n}.parquet`` (rule
``generate_synthetic_data``; the Makefile builds it first) is turned into the validated
layout the split stage reads (``clean.parquet`` + ``schema.json``: ``_row`` added, column
roles recorded; streamed with pyarrow so that preparing 10M rows stays small). Each engine
then runs in its own process, like the rule would run it:

* ``pandas``: :func:`survival_framework.etl.run_pandas_etl`;
* ``spark``: a ``local[2]`` SparkSession (start-up included in the wall time) and
  :func:`survival_framework.spark_etl.run_spark_etl`;
* ``dask``: a ``LocalCluster`` of 2 single-thread worker processes (start-up included),
  as rule ``split_data_dask`` starts it, and
  :func:`survival_framework.dask_etl.run_dask_etl`.

Peak memory is the largest sum of the resident set sizes of the process and all its
children (the Spark JVM and the Dask workers included), sampled every 0.1 s. Every engine
must write pandas' folds and categorical states (checked after each size). The clean table
has row groups of ``BATCH_ROWS`` rows, as ``validate_data`` writes it (Dask's partitions are
runs of row groups). Every (size, engine) runs ``--repeats`` times, the engines
alternating; ``results/bench/etl.csv`` has one line per run, and the summary
``results/bench/etl.md`` the medians, their ratios to pandas and the crossovers computed
from them. ``--append`` adds runs to those already in the CSV (more repeats later, on an
idle machine).

    PYTHONPATH=scripts python scripts/bench/etl_bench.py --rows 1000000 10000000 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from survival_framework.batches import BATCH_ROWS  # noqa: E402
from survival_framework.contract import ROW_COL  # noqa: E402

ETL_ARGS = dict(n_folds=5, seed=42, min_frequency=0.01, n_times=20, quantiles=(0.1, 0.8))
ID, DURATION, EVENT = "customer_id", "duration", "event"


def prepare_clean(source: Path, work: Path) -> tuple[Path, Path]:
    """``clean.parquet`` + ``schema.json`` from a synthetic table, one row group at a time."""
    work.mkdir(parents=True, exist_ok=True)
    clean, schema_path = work / "clean.parquet", work / "schema.json"
    pf = pq.ParquetFile(source)
    names = pf.schema_arrow.names
    numeric = [c for c in names if c.startswith("num_")]
    categorical = [c for c in names if c.startswith("cat_")]
    order = [ROW_COL, ID, DURATION, EVENT, *numeric, *categorical]
    group_rows = min(BATCH_ROWS, pf.metadata.num_rows)
    if (
        not clean.exists()
        or clean.stat().st_mtime < source.stat().st_mtime
        or pq.ParquetFile(clean).metadata.row_group(0).num_rows != group_rows
    ):
        offset = 0
        tmp = work / ".clean.parquet.tmp"
        writer = None
        for i in range(pf.num_row_groups):
            t = pf.read_row_group(i)
            rows = pa.array(np.arange(offset, offset + t.num_rows, dtype=np.int64))
            t = t.append_column(ROW_COL, rows).select(order).replace_schema_metadata(None)
            writer = writer or pq.ParquetWriter(tmp, t.schema)
            for start in range(0, t.num_rows, BATCH_ROWS):  # as validate_data writes it
                writer.write_table(t.slice(start, BATCH_ROWS))
            offset += t.num_rows
        writer.close()
        os.replace(tmp, clean)
    n = pf.metadata.num_rows
    schema = {
        "source": str(source),
        "duration_col": DURATION,
        "event_col": EVENT,
        "id_col": ID,
        "numeric": numeric,
        "categorical": categorical,
        "dropped": [],
        "n_rows": n,
        "n_rows_used": n,
    }
    schema_path.write_text(json.dumps(schema, indent=2))
    return clean, schema_path


def child(args: argparse.Namespace) -> None:
    """Run one engine in this process and print its timings as JSON."""
    from survival_framework.log import setup_logging

    log = setup_logging(None)
    t0 = time.perf_counter()
    out: dict = {}
    if args.engine == "pandas":
        from survival_framework.etl import run_pandas_etl, split_paths

        outputs = split_paths(args.out, ETL_ARGS["n_folds"])
        run_pandas_etl(args.clean, args.schema, **outputs, log=log, **ETL_ARGS)
    elif args.engine == "dask":
        from survival_framework.dask_etl import dask_client, run_dask_etl
        from survival_framework.etl import split_paths

        with dask_client("local", 2, args.dask_mem_mb, log) as client:
            out["session_s"] = time.perf_counter() - t0
            outputs = split_paths(args.out, ETL_ARGS["n_folds"])
            run_dask_etl(client, args.clean, args.schema, **outputs, log=log, **ETL_ARGS)
    else:
        from survival_framework.etl import split_paths
        from survival_framework.spark_etl import run_spark_etl
        from survival_framework.spark_session import start_spark_session

        spark = start_spark_session(args.master, 2, args.memory, log_path=args.spark_log)
        out["session_s"] = time.perf_counter() - t0
        try:
            outputs = split_paths(args.out, ETL_ARGS["n_folds"])
            run_spark_etl(spark, args.clean, args.schema, **outputs, log=log, **ETL_ARGS)
        finally:
            spark.stop()
    out["etl_s"] = time.perf_counter() - t0 - out.get("session_s", 0.0)
    print("RESULT " + json.dumps(out), flush=True)


def measure(cmd: list[str], log_path: Path) -> dict:
    """Wall time and peak RSS (process tree) of a command."""
    t0 = time.perf_counter()
    peak = 0
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [ps, *ps.children(recursive=True)]
                rss = 0
                for p in procs:
                    with contextlib.suppress(psutil.Error):  # a child may just have exited
                        rss += p.memory_info().rss
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.1)
        stdout = proc.stdout.read()
    wall = time.perf_counter() - t0
    result = {"wall_s": wall, "peak_rss_mb": peak / 2**20, "status": "ok"}
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        result["status"] = f"failed ({proc.returncode}); see {log_path}"
    else:
        result.update(json.loads(lines[-1][len("RESULT ") :]))
    return result


def same_folds(a: Path, b: Path) -> bool:
    fa, fb = pd.read_parquet(a / "folds.parquet"), pd.read_parquet(b / "folds.parquet")
    states_equal = all(
        json.loads((a / f"fold_{k}/preprocessor.json").read_text())["categorical"]
        == json.loads((b / f"fold_{k}/preprocessor.json").read_text())["categorical"]
        for k in range(ETL_ARGS["n_folds"])
    )
    return fa.equals(fb) and states_equal


def medians(df: pd.DataFrame) -> pd.DataFrame:
    """Median wall time, start-up, ETL time and peak RSS per (size, engine) over the
    successful runs, with the number of runs and the range of the wall time."""
    ok = df[df["status"] == "ok"]
    keys = ["n_rows", "engine", "master"]
    g = ok.assign(master=ok["master"].fillna("")).groupby(keys, sort=True)
    out = g[["input_mb", "wall_s", "session_s", "etl_s", "peak_rss_mb"]].median()
    out["runs"] = g.size()
    out["wall_min_s"] = g["wall_s"].min()
    out["wall_max_s"] = g["wall_s"].max()
    if "same_folds" in ok:
        out["same_folds"] = g["same_folds"].agg(lambda s: bool(s.fillna(False).astype(bool).all()))
    out["failed_runs"] = (
        df.assign(master=df["master"].fillna(""))
        .groupby(keys)["status"]
        .agg(lambda s: int((s != "ok").sum()))
        .reindex(out.index, fill_value=0)
    )
    return out.reset_index()


NAMES = {"spark": "Spark local[2]", "dask": "Dask LocalCluster(2)"}


def _by_size(df: pd.DataFrame, value: str, engine: str) -> pd.DataFrame | None:
    """Median ``value`` per size (columns ``pandas`` and ``engine``) over the sizes measured
    with both; None if either has no successful run."""
    wide = medians(df).pivot_table(index=["n_rows", "input_mb"], columns="engine", values=value)
    if not {"pandas", engine} <= set(wide.columns):
        return None
    return wide[["pandas", engine]].dropna().reset_index()


def _linear_crossover(
    wide: pd.DataFrame, engine: str
) -> tuple[np.ndarray, np.ndarray, float | None, float]:
    """Linear fits ``a + b * input MB`` of pandas and ``engine``, the input MB where they
    meet (None if pandas' slope is not the larger) and the table's rows per MB."""
    bp = np.polyfit(wide["input_mb"], wide["pandas"], 1)
    bs = np.polyfit(wide["input_mb"], wide[engine], 1)
    mb = (bs[1] - bp[1]) / (bp[0] - bs[0]) if bp[0] > bs[0] else None
    return bp, bs, mb, float((wide["n_rows"] / wide["input_mb"]).mean())


def crossover(df: pd.DataFrame, engine: str = "spark") -> str:
    """Where ``engine``'s median wall time drops below pandas' (measured or linearly
    extrapolated)."""
    name = NAMES.get(engine, engine)
    wide = _by_size(df, "wall_s", engine)
    if wide is None or not len(wide):
        return f"{name}: crossover not measured (an engine failed or was not run)"
    faster = wide[wide[engine] < wide["pandas"]]
    if len(faster):
        r = faster.iloc[0]
        return (
            f"{name}: faster than pandas from {int(r['n_rows']):,} rows "
            f"({r['input_mb']:.0f} MB Parquet) on: the smallest measured size where it wins"
        )
    if len(wide) < 2:
        return f"{name}: no crossover at the measured size (one size only: no extrapolation)"
    bp, bs, mb, rows_per_mb = _linear_crossover(wide, engine)  # wall time ~ a + b * MB
    if mb is None:
        return (
            f"{name}: no crossover in sight: it grows at least as fast as pandas "
            f"({bs[0]:.2f} vs {bp[0]:.2f} s/MB)"
        )
    return (
        f"{name}: crossover (linear extrapolation of wall time) at ~{mb:.0f} MB Parquet "
        f"(~{mb * rows_per_mb / 1e6:.1f}M rows of this table)"
    )


def memory_crossover(df: pd.DataFrame, engine: str = "spark") -> str:
    """Where pandas' peak memory exceeds ``engine``'s (linear fits of median peak RSS on
    input MB)."""
    name = NAMES.get(engine, engine)
    wide = _by_size(df, "peak_rss_mb", engine)
    if wide is None or len(wide) < 2:
        return f"{name}: memory crossover needs two sizes measured with it and pandas"
    bp, bs, mb, rows_per_mb = _linear_crossover(wide, engine)
    if mb is None:
        return f"{name}: no memory crossover: pandas' peak memory grows no faster than {name}'s"
    return (
        f"{name}: memory crossover (linear fits of peak RSS, {bp[0]:.1f} vs {bs[0]:.1f} MB RSS "
        f"per MB of input) at ~{mb:.0f} MB Parquet (~{mb * rows_per_mb / 1e6:.1f}M rows); "
        "above it pandas needs more memory"
    )


def ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Per size and engine: median wall time and peak RSS as ratios to pandas' medians of
    the same size (the machine's speed drifts between sessions: the ratios are what
    compare)."""
    m = medians(df).set_index(["n_rows", "engine"])
    base = m.xs("pandas", level="engine") if "pandas" in m.index.get_level_values(1) else None
    rows = []
    for (n, engine), r in m.iterrows():
        if base is None or n not in base.index:
            continue
        rows.append(
            {
                "n_rows": n,
                "engine": engine,
                "wall_vs_pandas": r["wall_s"] / base.loc[n, "wall_s"],
                "peak_rss_vs_pandas": r["peak_rss_mb"] / base.loc[n, "peak_rss_mb"],
            }
        )
    return pd.DataFrame(rows, columns=["n_rows", "engine", "wall_vs_pandas", "peak_rss_vs_pandas"])


def _markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False)


def write_summary(df: pd.DataFrame, path: Path, master: str, memory: str) -> str:
    load = os.getloadavg()
    table = medians(df).round(2)
    engines = [e for e in ("spark", "dask") if e in set(df["engine"])]
    loads = df["load1_before"] if "load1_before" in df else pd.Series(dtype=float)
    lines = [
        "# ETL benchmark: pandas vs " + " vs ".join(NAMES[e] for e in engines) + " (split stage)",
        "",
        f"Machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) when written"
        + (f", {loads.min():.1f}-{loads.max():.1f} before the runs" if len(loads) else "")
        + f". 5 folds; Spark {master}, {memory} driver; Dask: a LocalCluster of 2 single-thread "
        "worker processes; wall time includes the JVM or cluster start-up; peak memory is the "
        "RSS of the process tree (Python + JVM or Dask workers). Medians over `runs` runs per "
        "line, the engines alternating (every run: the CSV next to this file).",
        "",
        _markdown(table),
        "",
        "Ratios to pandas at the same size (medians):",
        "",
        _markdown(ratios(df).round(2)),
        "",
    ]
    for engine in engines:
        lines += [crossover(df, engine), "", memory_crossover(df, engine), ""]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--engines", nargs="+", default=["pandas", "spark", "dask"])
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--memory", default="4g")
    ap.add_argument(
        "--dask-mem-mb", type=int, default=8192, help="memory of the Dask LocalCluster (2 workers)"
    )
    ap.add_argument("--data-dir", type=Path, default=Path("resources/synthetic"))
    ap.add_argument("--work", type=Path, default=Path("results/bench/etl_work"))
    ap.add_argument("--out", type=Path, default=Path("results/bench/etl.csv"))
    ap.add_argument("--summary", type=Path, default=Path("results/bench/etl.md"))
    ap.add_argument("--repeats", type=int, default=1, help="runs per size and engine")
    ap.add_argument(
        "--append", action="store_true", help="add these runs to those already in --out"
    )
    ap.add_argument("--keep", action="store_true", help="keep the written splits")
    ap.add_argument(
        "--summary-only", action="store_true", help="rewrite the summary from --out, run nothing"
    )
    # internal: one engine in a child process
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--clean", help=argparse.SUPPRESS)
    ap.add_argument("--schema", help=argparse.SUPPRESS)
    ap.add_argument("--spark-log", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", dest="child_out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.out = args.child_out
        child(args)
        return 0
    if args.summary_only:
        print(write_summary(pd.read_csv(args.out), args.summary, args.master, args.memory))
        return 0

    old = pd.read_csv(args.out) if args.out.exists() else None
    rows = []
    for n in args.rows:
        source = args.data_dir / f"survival_{n}.parquet"
        if not source.exists():
            sys.exit(f"{source} missing: snakemake --cores 1 {source}")
        work = args.work / str(n)
        clean, schema = prepare_clean(source, work)
        first = 0
        if args.append and old is not None and "repeat" in old:
            done = old.loc[old["n_rows"] == n, "repeat"]
            first = int(done.max()) + 1 if len(done) else 0
        for rep in range(first, first + args.repeats):
            outs, these = {}, []
            for engine in args.engines:
                out = work / f"out_{engine}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = [sys.executable, __file__, "--child", "--engine", engine]
                cmd += ["--clean", str(clean), "--schema", str(schema), "--out-dir", str(out)]
                cmd += ["--master", args.master, "--memory", args.memory]
                cmd += ["--dask-mem-mb", str(args.dask_mem_mb)]
                cmd += ["--spark-log", str(work / f"{engine}.spark.log")]
                print(f"[etl_bench] {n:,} rows, {engine}, run {rep} ...", flush=True)
                started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                res = measure(cmd, work / f"{engine}.log")
                row = {
                    "n_rows": n,
                    "repeat": rep,
                    "input_mb": round(source.stat().st_size / 1e6, 2),
                    "clean_mb": round(clean.stat().st_size / 1e6, 2),
                    "engine": engine,
                    "master": {"spark": args.master, "dask": "LocalCluster(2)"}.get(engine, ""),
                    "cpus": os.cpu_count(),
                    "load1_before": round(os.getloadavg()[0], 2),
                    "wall_s": round(res["wall_s"], 2),
                    "session_s": round(res.get("session_s", 0.0), 2),
                    "etl_s": round(res.get("etl_s", float("nan")), 2),
                    "peak_rss_mb": round(res["peak_rss_mb"], 1),
                    "status": res["status"],
                    "started_utc": started,
                }
                print(f"[etl_bench] {row}", flush=True)
                these.append(row)
                if res["status"] == "ok":
                    outs[engine] = out
            if "pandas" in outs and len(outs) > 1:
                agree = all(same_folds(outs["pandas"], o) for o in outs.values())
                print(f"[etl_bench] {n:,} rows: same folds and categorical states: {agree}")
                for r in these:
                    r["same_folds"] = agree
            rows += these
            if not args.keep:
                for out in outs.values():
                    shutil.rmtree(out, ignore_errors=True)
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if old is not None:  # keep what this run did not replace
        if not args.append:
            old = old[
                ~old.set_index(["n_rows", "engine"]).index.isin(
                    df.set_index(["n_rows", "engine"]).index
                )
            ]
        df = pd.concat([old, df], ignore_index=True)
        df = df.sort_values(["n_rows", "engine", "repeat"], kind="stable")
    df.to_csv(args.out, index=False)
    print(write_summary(df, args.summary, args.master, args.memory))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
