"""Memory requests of the heavy jobs: a linear model of peak RSS in the job's input size.

Each stage's peak RSS is ``fixed MB + slope x MB of Parquet input``, fitted to the peaks
Snakemake records (``benchmarks/**/*.tsv``) on the production generator's tables at 287K, 1M
and 10M rows (``make bench-scale``, ``docs/bench/scale_jobs.csv``; ``docs/benchmarks.md#memory``
gives the same model in bytes per row). ``rules/common.smk`` requests ``HEADROOM`` times it,
doubled on each retry; ``tests/test_memory.py`` checks measured peaks against it, so a change
that materialises another copy of a table fails there before it fails on a cluster node.
Input MB rather than rows, because Parquet size follows rows x columns, as memory does.
"""

from __future__ import annotations

__all__ = ["MEMORY_MODEL", "HEADROOM", "peak_mb", "request_mb"]

# stage: (fixed MB, MB of peak RSS per MB of Parquet input)
MEMORY_MODEL: dict[str, tuple[float, float]] = {
    # one column at a time plus one row batch (input: the raw table)
    "validate_data": (500.0, 3.6),
    # fold masks, one column, one batch (input: clean.parquet)
    "split_data": (600.0, 1.7),
    # the Dask split's whole process tree: the rule's process (keys, folds, the scheduler,
    # the appends) and a LocalCluster of 2 worker processes (~550 MB each at any size: one
    # partition at a time); medians of 3: 1,098 MB at 48.9 MB (1M rows), 1,694 MB at
    # 489 MB (10M rows) (make bench-etl, 2026-12-06)
    "split_data_dask": (1030.0, 1.36),
    # one fold's train + test matrices once, plus the model (input: train + test Parquet);
    # the largest models (coxph, coxnet, float64) set the line: 838 MB at 60 MB, 4,850 MB
    # at 593 MB (coxnet fold 0 at 10M rows)
    "fit_model": (500.0, 7.5),
    # every row's matrix, filled a batch at a time, plus the model (input: clean.parquet);
    # the largest of the five final models and the PH test set the line: 905 MB at 49 MB
    # (PH test, 1M rows), 5,051 MB at 487 MB (coxnet on all 10M rows)
    "fit_final_model": (450.0, 9.5),
}
HEADROOM = 1.3


def peak_mb(stage: str, input_mb: float) -> float:
    """Modelled peak RSS (MB) of ``stage`` for ``input_mb`` MB of input."""
    fixed, slope = MEMORY_MODEL[stage]
    return fixed + slope * float(input_mb)


def request_mb(stage: str, input_mb: float, attempt: int = 1) -> int:
    """Memory to request (MB): the modelled peak with headroom, times the attempt."""
    return int(HEADROOM * peak_mb(stage, input_mb) * attempt)
