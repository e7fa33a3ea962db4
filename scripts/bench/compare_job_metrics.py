"""Largest difference of every metric between two per-job tables of the same runs.

``python scripts/bench/compare_job_metrics.py BEFORE.csv AFTER.csv`` with two versions of
``docs/bench/scale_jobs.csv`` (e.g. ``git show <commit>:docs/bench/scale_jobs.csv``): the
fit jobs (``cv/<model>/fold_<k>``) of each size and engine are matched, and for every
metric the largest absolute difference is printed, per size and over all. "Same answers"
(issue 11) asks for at most 1e-6, identical where the arithmetic is unchanged.
"""

from __future__ import annotations

import sys

import pandas as pd

KEYS = ["rows", "engine", "job"]


def compare(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per size and engine, each metric's largest absolute difference (and jobs matched)."""
    from survival_framework.metrics import METRIC_NAMES

    names = [m for m in METRIC_NAMES if m in before and m in after]
    fits = [df[df["stage"] == "cv"].set_index(KEYS)[names] for df in (before, after)]
    joined = fits[0].join(fits[1], lsuffix="_before", rsuffix="_after", how="inner")
    diff = pd.DataFrame(
        {m: (joined[f"{m}_after"] - joined[f"{m}_before"]).abs() for m in names},
        index=joined.index,
    )
    out = diff.groupby(level=["rows", "engine"]).max()
    out.insert(0, "jobs", diff.groupby(level=["rows", "engine"]).size())
    return out


def main(before: str, after: str) -> None:
    table = compare(pd.read_csv(before), pd.read_csv(after))
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        print(table.to_string())
    print(f"largest difference over all metrics and jobs: {table.iloc[:, 1:].max().max():.3g}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
