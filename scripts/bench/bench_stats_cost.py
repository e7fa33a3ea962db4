"""Cost of the benchmark statistics (``make bench-stats``): the km reference model and the
calibration / scoring-rule metrics, against the code without them, in one run set.

At ``--rows`` production rows (default 287,000), ``--cores 2``, target
``results/cv_metrics.csv`` + ``results/leaderboard.csv`` (validate, split, every fit job,
aggregate): the workflow of commit ``--before`` (default: the last commit before them) and
of ``--now`` (default ``HEAD``; both snapshots made with ``git archive``, so editing the
working tree during the run changes nothing), alternating (before, now, before, now, ...),
each run in a fresh copy under ``results/bench/work/stats_<label>_<i>``. Also checks that
the metrics both versions compute (the four original ones, of the five original models) are
identical.

Writes ``docs/bench/stats_cost.csv`` (one row per run: version, wall and CPU seconds, the
1-minute load average before and after, fit jobs, their summed score seconds and the km
jobs' summed wall seconds) and prints the median wall time of each version and their ratio,
the number the issue's target is about, plus a direct accounting inside the new runs: the km
jobs' seconds and the scoring seconds beyond the old version's, over the cores, as a share of
the new wall time (the ratio also contains every other change between the two commits).
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


def _fit_jobs(wd: Path) -> tuple[int, float, float]:
    """Number of fit jobs, their summed scoring seconds and the summed wall seconds of the
    km reference jobs (their benchmark files)."""
    records = [json.loads(p.read_text()) for p in (wd / "results/cv").glob("*/fold_*/metrics.json")]
    km = [pd.read_csv(p, sep="\t")["s"].iloc[0] for p in (wd / "benchmarks/cv/km").glob("*.tsv")]
    return len(records), float(sum(r["score_seconds"] or 0.0 for r in records)), float(sum(km))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--now", default="HEAD", help="commit measured as 'now' (a snapshot)")
    parser.add_argument("--rows", type=int, default=287_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    rel = ensure_table(args.rows)
    sources = {}
    for label, commit in (("before", args.before), ("now", args.now)):
        src = WORK / f"stats_{label}_src"
        if src.exists():
            shutil.rmtree(src)
        sources[label] = _source_of(commit, src)
    runs, metrics = [], {}
    for i in range(args.repeats):
        for label, src in sources.items():
            wd = _workdir(src, f"stats_{label}_{i}")
            run = snakemake(wd, "--cores", str(args.cores), *production_args(rel, CV_TARGETS))
            n_jobs, score_s, km_s = _fit_jobs(wd)
            runs.append(
                {
                    "version": label,
                    "repeat": i,
                    **run,
                    "fit_jobs": n_jobs,
                    "score_s": score_s,
                    "km_jobs_s": km_s,
                }
            )
            metrics[label] = pd.read_csv(wd / "results/cv_metrics.csv")
            print(f"{label} {i}: {run['wall_s']:.1f} s (load {run['load_before']:.2f})", flush=True)
    table = pd.DataFrame(runs)
    table["commit_before"] = args.before
    table["commit_now"] = subprocess.run(
        ["git", "rev-parse", "--short", args.now], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    table["rows"] = args.rows
    DOCS.mkdir(parents=True, exist_ok=True)
    table.to_csv(DOCS / "stats_cost.csv", index=False)
    med = table.groupby("version")["wall_s"].median()
    old = metrics["before"].merge(
        metrics["now"], on=["model", "fold", "metric"], suffixes=("", "_now")
    )
    diff = float(np.max(np.abs(old["value"] - old["value_now"])))
    now = table[table.version == "now"]
    # direct accounting within the new runs: the km jobs and the scoring seconds beyond the
    # old version's, spread over the cores, as a share of the new run's wall time
    extra = now["km_jobs_s"] + now["score_s"] - table[table.version == "before"]["score_s"].median()
    share = float((extra / args.cores / now["wall_s"]).median())
    print(
        f"median wall: before {med['before']:.1f} s, now {med['now']:.1f} s, "
        f"ratio {med['now'] / med['before']:.3f}; km jobs + added scoring {share:.1%} of the "
        f"new wall; old metrics max |difference| {diff:.3g}"
    )


if __name__ == "__main__":
    main()
