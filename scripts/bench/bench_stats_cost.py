"""Cost of the benchmark statistics (``make bench-stats``): the km reference model and the
calibration / scoring-rule metrics, against the code without them, in one run set.

At ``--rows`` production rows (default 287,000), ``--cores 2``, target
``results/cv_metrics.csv`` + ``results/leaderboard.csv`` (validate, split, every fit job,
aggregate): the workflow of commit ``--before`` (default: the last commit before them) and
the current one, alternating (before, now, before, now, ...), each run in a fresh copy under
``results/bench/work/stats_<label>_<i>``. Also checks that the metrics both versions compute
(the four original ones, of the five original models) are identical.

Writes ``docs/bench/stats_cost.csv`` (one row per run: version, wall and CPU seconds, the
1-minute load average before and after, fit jobs and their summed score seconds) and prints
the median wall time of each version and their ratio, the number the issue's target is about.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cv import CV_TARGETS, PARTS, REPO, WORK, ensure_table, production_args, snakemake  # noqa: E402

DOCS = REPO / "docs" / "bench"
BEFORE = "e2f10bc"  # main before the km reference and the new metrics (issue 14)

__all__ = ["main"]


def _source_of(commit: str, dest: Path) -> Path:
    """The workflow files of ``commit`` (``git archive``) in ``dest``."""
    dest.mkdir(parents=True)
    with tempfile.TemporaryFile() as tmp:
        subprocess.run(["git", "archive", commit, *PARTS], cwd=REPO, stdout=tmp, check=True)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            tar.extractall(dest, filter="data")
    return dest


def _workdir(src: Path, name: str) -> Path:
    """A fresh copy of the workflow in ``src`` under ``results/bench/work/<name>``."""
    wd = WORK / name
    if wd.exists():
        shutil.rmtree(wd)
    wd.mkdir(parents=True)
    for part in PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, wd / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif (src / part).exists():
            shutil.copy2(src / part, wd / part)
    (wd / "resources").mkdir()
    for sub in ("synthetic", "demo"):
        (wd / "resources" / sub).symlink_to(REPO / "resources" / sub)
    return wd


def _fit_jobs(wd: Path) -> tuple[int, float]:
    """Number of fit jobs and their summed scoring seconds."""
    records = [json.loads(p.read_text()) for p in (wd / "results/cv").glob("*/fold_*/metrics.json")]
    return len(records), float(sum(r["score_seconds"] or 0.0 for r in records))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--rows", type=int, default=287_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    rel = ensure_table(args.rows)
    before_src = WORK / "stats_before_src"
    if before_src.exists():
        shutil.rmtree(before_src)
    sources = {"before": _source_of(args.before, before_src), "now": REPO}
    runs, metrics = [], {}
    for i in range(args.repeats):
        for label, src in sources.items():
            wd = _workdir(src, f"stats_{label}_{i}")
            run = snakemake(wd, "--cores", str(args.cores), *production_args(rel, CV_TARGETS))
            n_jobs, score_s = _fit_jobs(wd)
            runs.append(
                {"version": label, "repeat": i, **run, "fit_jobs": n_jobs, "score_s": score_s}
            )
            metrics[label] = pd.read_csv(wd / "results/cv_metrics.csv")
            print(f"{label} {i}: {run['wall_s']:.1f} s (load {run['load_before']:.2f})", flush=True)
    table = pd.DataFrame(runs)
    table["commit_before"] = args.before
    table["rows"] = args.rows
    DOCS.mkdir(parents=True, exist_ok=True)
    table.to_csv(DOCS / "stats_cost.csv", index=False)
    med = table.groupby("version")["wall_s"].median()
    old = metrics["before"].merge(
        metrics["now"], on=["model", "fold", "metric"], suffixes=("", "_now")
    )
    diff = float(np.max(np.abs(old["value"] - old["value_now"])))
    print(
        f"median wall: before {med['before']:.1f} s, now {med['now']:.1f} s, "
        f"ratio {med['now'] / med['before']:.3f}; old metrics max |difference| {diff:.3g}"
    )


if __name__ == "__main__":
    main()
