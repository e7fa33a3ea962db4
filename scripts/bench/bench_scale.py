"""Scale benchmark: everything ``rule all`` makes at 287K, 1M and 10M rows (``make bench-scale``).

For each ``--rows`` size, in a fresh copy of the workflow (``results/bench/work/scale_<n>``):
``snakemake --cores <cores> --configfile config/production.yaml`` with ``data.path`` set to
the production generator's table of that size (generated first if missing, not timed).
Then, for each ``--spark-rows`` size, the Spark ETL (``execution.etl_engine: spark``,
``local[<threads>]``) up to the fold matrices, which is all that differs between the
engines (the fit jobs read the same Parquet files whichever engine wrote them).

Writes, in ``docs/bench/``:

``scale.csv``
    One row per run: rows, engine, targets, wall and CPU seconds, the 1-minute load average
    before and after, jobs, failed fits, the largest peak RSS of any job and which job,
    and the wall-time ratios against the next smaller size of the same run set.
``scale_jobs.csv``
    One row per job (Snakemake's ``benchmarks/**/*.tsv``): wall, CPU, peak RSS, and for the
    fit jobs the fit / predict / score seconds and the status.
``scale_memory.csv``
    Per stage, the peak RSS at each size and a least-squares ``intercept_mb + bytes_per_row
    * rows`` through them: the bytes-per-row model ``rules/common.smk`` requests memory
    from (``docs/benchmarks.md#memory``).

The sizes run one after the other, never in parallel (2-core machine); record the load
average with every number and compare sizes by their ratios within one run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cv import REPO, collect_jobs, ensure_table, make_workdir, snakemake  # noqa: E402

DOCS = REPO / "docs" / "bench"
SPLIT_TARGETS = ("results/splits/time_grid.json",)

__all__ = ["main"]


def _overlay(wd: Path, rel_path: str, engine: str) -> Path:
    """A YAML overlay setting data.path and the ETL engine (nested --config become strings)."""
    path = wd / "config" / "scale_overlay.yaml"
    path.write_text(
        f"data:\n  path: {rel_path}\nexecution:\n  etl_engine: {engine}\n", encoding="utf-8"
    )
    return path


def run_size(
    n_rows: int, engine: str, cores: int, targets: tuple[str, ...]
) -> tuple[dict, pd.DataFrame]:
    """One workflow run at ``n_rows``; its run record and per-job table."""
    rel = ensure_table(n_rows)
    wd = make_workdir(f"scale_{engine}_{n_rows}")
    overlay = _overlay(wd, rel, engine)
    args = [*targets, "--cores", str(cores), "--configfile", "config/production.yaml", str(overlay)]
    print(f"[bench-scale] {n_rows} rows, {engine} ETL, targets {targets or 'rule all'}", flush=True)
    run = snakemake(wd, *args, timeout=6 * 3600)
    jobs = collect_jobs(wd)
    jobs.insert(0, "rows", n_rows)
    jobs.insert(1, "engine", engine)
    worst = jobs.loc[jobs["max_rss_mb"].idxmax()]
    failed = int((jobs.get("status", pd.Series(dtype=object)) == "failed").sum())
    record = {
        "rows": n_rows,
        "engine": engine,
        "targets": " ".join(targets) or "all",
        "cores": cores,
        **run,
        "n_jobs": len(jobs),
        "failed_fits": failed,
        "max_job_rss_mb": float(worst["max_rss_mb"]),
        "max_rss_job": worst["job"],
    }
    print(f"[bench-scale] {record}", flush=True)
    return record, jobs


def memory_model(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per stage: peak RSS at each size and a linear fit ``intercept + bytes/row * rows``."""
    pandas_jobs = jobs[jobs["engine"] == "pandas"]
    peaks = pandas_jobs.groupby(["stage", "rows"])["max_rss_mb"].max().unstack("rows")
    rows = []
    for stage, series in peaks.iterrows():
        series = series.dropna()
        rec = {"stage": stage, **{f"peak_mb_{int(n)}": v for n, v in series.items()}}
        if len(series) >= 2:
            slope, intercept = np.polyfit(series.index.to_numpy(float), series.to_numpy(), 1)
            rec.update(bytes_per_row=slope * 1e6, intercept_mb=intercept)
        rows.append(rec)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[287_000, 1_000_000, 10_000_000])
    ap.add_argument("--spark-rows", type=int, nargs="*", default=[10_000_000])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument(
        "--targets", nargs="*", default=[], help="targets of the pandas runs (default: rule all)"
    )
    ap.add_argument("--append", action="store_true", help="add to the CSVs of an earlier run set")
    args = ap.parse_args(argv)
    runs, jobs = [], []
    if args.append and (DOCS / "scale.csv").exists():
        runs = (
            pd.read_csv(DOCS / "scale.csv")
            .drop(columns=["wall_ratio_to_previous_size", "rows_ratio_to_previous_size"])
            .to_dict("records")
        )
        jobs = [pd.read_csv(DOCS / "scale_jobs.csv")]
    plan = [(n, "pandas", tuple(args.targets)) for n in sorted(args.rows)]
    plan += [(n, "spark", SPLIT_TARGETS) for n in sorted(args.spark_rows)]
    for n, engine, targets in plan:
        record, job_table = run_size(n, engine, args.cores, targets)
        runs.append(record)
        jobs.append(job_table)
        write_results(runs, jobs)  # after every run: a long run set keeps what it measured


def write_results(runs: list[dict], jobs: list[pd.DataFrame]) -> None:
    """Write scale.csv (wall-time ratios between sizes), scale_jobs.csv, scale_memory.csv."""
    runs_df = pd.DataFrame(runs)
    # ratios between sizes only between complete runs (everything rule all makes)
    full = runs_df[(runs_df["engine"] == "pandas") & (runs_df["targets"] == "all")]
    full = full.sort_values("rows")
    runs_df["wall_ratio_to_previous_size"] = (full["wall_s"] / full["wall_s"].shift(1)).reindex(
        runs_df.index
    )
    runs_df["rows_ratio_to_previous_size"] = (full["rows"] / full["rows"].shift(1)).reindex(
        runs_df.index
    )
    jobs_df = pd.concat(jobs, ignore_index=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    runs_df.to_csv(DOCS / "scale.csv", index=False)
    jobs_df.to_csv(DOCS / "scale_jobs.csv", index=False)
    memory_model(jobs_df).to_csv(DOCS / "scale_memory.csv", index=False)
    print(runs_df.to_string(), flush=True)


if __name__ == "__main__":
    main()
