"""Cost and gain of nested tuning (``make bench-tuning``): ``config/tuned.yaml`` against the
same workflow untuned, in one run set.

At ``--rows`` production rows (default 287,000), ``--cores 2``, target
``results/cv_metrics.csv`` + ``results/leaderboard.csv`` (validate, split, the inner splits
and candidate jobs of every outer fold, every fit job, aggregate): the workflow of commit
``--now`` (default ``HEAD``, a ``git archive`` snapshot, so editing the working tree during
the run changes nothing), untuned and tuned alternately (``--repeats`` pairs), each run in a
fresh copy under ``results/bench/work/tuning_<variant>_<i>``. The final model's own inner
CV (``fold_all``) is not part of these targets: it adds one more resample's tuning jobs.

Writes, in ``docs/bench/``:

* ``tuning_runs.csv``: one row per run (variant, wall and CPU seconds, the 1-minute load
  before and after);
* ``tuning_jobs.csv``: one row per job of every run (Snakemake's benchmark files: wall, CPU,
  peak RSS), with its stage and model;
* ``tuning_gain.csv``: per model and metric, the mean over the outer folds untuned and tuned,
  the mean paired difference (tuned - untuned, in the metric's better direction) and its
  standard error over the folds;
* ``tuning_choices.csv``: the parameters chosen in each outer fold;
* ``tuning_path.csv``: Coxnet's path against one fit per alpha on the same inner split
  (outer fold 0), in this process: seconds of each and the largest score difference;
* ``tuning.md``: the summary, with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cv import (  # noqa: E402
    CV_TARGETS,
    REPO,
    WORK,
    collect_jobs,
    ensure_table,
    production_args,
    snakemake,
)
from bench_stats_cost import _source_of, _workdir  # noqa: E402

DOCS = REPO / "docs" / "bench"
VARIANTS = {"untuned": (), "tuned": ("config/tuned.yaml",)}  # overlays of production.yaml

__all__ = ["main", "gain_table", "path_comparison"]


def _fold_metrics(wd: Path) -> pd.DataFrame:
    """model, fold, metric, value of every CV fit (results/cv/*/fold_*/metrics.json)."""
    rows = []
    for path in sorted((wd / "results/cv").glob("*/fold_*/metrics.json")):
        rec = json.loads(path.read_text())
        fold = int(path.parent.name.split("_")[1])
        for metric, value in rec["metrics"].items():
            rows.append(
                {"model": path.parent.parent.name, "fold": fold, "metric": metric, "value": value}
            )
    return pd.DataFrame(rows)


def gain_table(untuned: pd.DataFrame, tuned: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Per tuned model and metric: the means over the outer folds and the paired gain.

    ``gain`` is the mean of (tuned - untuned) per fold, signed so that positive is better
    (:data:`~survival_framework.metrics.HIGHER_IS_BETTER`; metrics without a direction are
    left out); ``gain_se`` its standard error over the folds.
    """
    from survival_framework.metrics import HIGHER_IS_BETTER

    both = untuned.merge(tuned, on=["model", "fold", "metric"], suffixes=("_untuned", "_tuned"))
    both = both[both["model"].isin(models)]
    rows = []
    for (model, metric), g in both.groupby(["model", "metric"], sort=False):
        direction = HIGHER_IS_BETTER.get(metric)
        if direction is None:
            continue
        sign = 1.0 if direction else -1.0
        diff = sign * (g["value_tuned"].to_numpy(float) - g["value_untuned"].to_numpy(float))
        rows.append(
            {
                "model": model,
                "metric": metric,
                "untuned": float(g["value_untuned"].mean()),
                "tuned": float(g["value_tuned"].mean()),
                "gain": float(diff.mean()),
                "gain_se": float(diff.std(ddof=1) / np.sqrt(len(diff)))
                if len(diff) > 1
                else np.nan,
                "folds_better": int((diff > 0).sum()),
                "folds": len(diff),
            }
        )
    return pd.DataFrame(rows)


def _choices(wd: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((wd / "results/tuning").glob("*/fold_*/selection.json")):
        sel = json.loads(path.read_text())
        rows.append(
            {
                "model": sel["model"],
                "resample": sel["resample"],
                "best": sel["best"],
                "n_candidates": len(sel["candidates"]),
                "params": json.dumps(sel["params"], sort_keys=True),
            }
        )
    return pd.DataFrame(rows)


def path_comparison(wd: Path, resample: str = "0", metric: str = "uno_c", repeats: int = 3) -> dict:
    """Coxnet's largest candidate group on one inner split: one path fit per inner fold
    against one fit per alpha, in this process after an untimed warm-up, alternating,
    medians of ``repeats``."""
    from survival_framework.io import read_json
    from survival_framework.tuning import score_candidate, score_candidates

    base = wd / "results/tuning"
    groups = [
        json.loads(p.read_text()) for p in (base / f"coxnet/fold_{resample}").glob("group_*.json")
    ]
    group = max(groups, key=lambda g: len(g["candidates"]))
    params = [r["params"] for r in group["results"]]
    split = base / f"splits/fold_{resample}"
    n_inner = len(list(split.glob("fold_*/train.parquet")))
    inner = {
        "grid_path": split / "time_grid.json",
        "train_paths": [split / f"fold_{i}/train.parquet" for i in range(n_inner)],
        "test_paths": [split / f"fold_{i}/test.parquet" for i in range(n_inner)],
        "preprocessor_paths": [split / f"fold_{i}/preprocessor.json" for i in range(n_inner)],
    }
    schema = read_json(wd / "results/data/schema.json")
    seed = 0  # Coxnet is deterministic: the seed changes nothing
    score_candidate("coxnet", params[0], inner, schema, metric, seed)  # imports, untimed
    load = os.getloadavg()[0]
    path_s, alone_s = [], []
    for _ in range(repeats):  # alternating
        t0 = time.perf_counter()
        path = score_candidates("coxnet", params, inner, schema, metric, seed)
        path_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        alone = [score_candidate("coxnet", p, inner, schema, metric, seed) for p in params]
        alone_s.append(time.perf_counter() - t0)
    path_s, alone_s = float(np.median(path_s)), float(np.median(alone_s))
    diff = max(
        abs(a - b)
        for r, s in zip(path["results"], alone, strict=True)
        for a, b in zip(r["scores"], s["scores"], strict=True)
        if a is not None and b is not None
    )
    best_path = int(np.argmax([np.mean(r["scores"]) for r in path["results"]]))
    best_alone = int(np.argmax([np.mean(s["scores"]) for s in alone]))
    return {
        "resample": resample,
        "alphas": len(params),
        "l1_ratio": params[0].get("l1_ratio"),
        "inner_folds": n_inner,
        "path_s": path_s,
        "one_fit_per_alpha_s": alone_s,
        "ratio": path_s / alone_s,
        "max_score_diff": diff,
        "same_winner": best_path == best_alone,
        "load_before": load,
    }


def _summary(runs, jobs, gain, choices, path) -> str:
    med = runs.groupby("variant")["wall_s"].median()
    low, high = runs["load_before"].min(), runs[["load_before", "load_after"]].max().max()
    cpu = runs.groupby("variant")["cpu_s"].median()
    lines = [
        f"# Nested tuning at {runs['rows'].iloc[0]:,} rows: cost and gain (`make bench-tuning`)",
        "",
        f"Commit {runs['commit'].iloc[0]}, {runs['rows'].iloc[0]:,} rows, --cores "
        f"{runs['cores'].iloc[0]}, targets results/cv_metrics.csv + leaderboard.csv, "
        f"load {low:.2f}-{high:.2f}.",
        "",
        "| variant | wall s (median) | CPU s | wall ratio |",
        "|---|---|---|---|",
    ]
    for v in ("untuned", "tuned"):
        lines.append(f"| {v} | {med[v]:.1f} | {cpu[v]:.1f} | {med[v] / med['untuned']:.2f}x |")
    tuned_jobs = jobs[(jobs["variant"] == "tuned") & (jobs["stage"] == "tuning")]
    lines += [
        "",
        "Tuning jobs of the tuned run(s), per model (`splits`: the inner splits):",
        "",
        "| model | jobs | wall s summed | median job s | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for model, g in tuned_jobs.groupby("model"):
        lines.append(
            f"| {model} | {len(g)} | {g['wall_s'].sum():.0f} | {g['wall_s'].median():.1f} |"
            f" {g['max_rss_mb'].max():.0f} |"
        )
    lines += [
        "",
        "Outer metrics, mean over the outer folds (gain: tuned - untuned, positive is "
        "better; +- one standard error over the folds):",
        "",
        "| model | metric | untuned | tuned | gain | folds better |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in gain[gain["metric"].isin(["uno_c", "harrell_c", "ibs", "mean_auc"])].iterrows():
        lines.append(
            f"| {r.model} | {r.metric} | {r.untuned:.4f} | {r.tuned:.4f} | "
            f"{r.gain:+.4f} +- {r.gain_se:.4f} | {r.folds_better}/{r.folds} |"
        )
    if path:
        lines += [
            "",
            f"Coxnet path vs one fit per alpha (outer fold 0's inner split, "
            f"{path['alphas']} alphas, l1_ratio {path['l1_ratio']}, in process, load "
            f"{path['load_before']:.2f}, medians of 3): path {path['path_s']:.1f} s, one fit each "
            f"{path['one_fit_per_alpha_s']:.1f} s, ratio {path['ratio']:.2f}; largest "
            f"inner score difference {path['max_score_diff']:.2g}, same winner: "
            f"{path['same_winner']}.",
        ]
    lines += ["", "Chosen parameters per outer fold: tuning_choices.csv.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--now", default="HEAD", help="commit measured (a snapshot)")
    parser.add_argument("--rows", type=int, default=287_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=4 * 3600)
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    rel = ensure_table(args.rows)
    src = WORK / "tuning_src"
    if src.exists():
        shutil.rmtree(src)
    _source_of(args.now, src)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", args.now], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    runs, jobs, workdirs = [], [], {}
    for i in range(args.repeats):
        for variant, overlays in VARIANTS.items():
            wd = _workdir(src, f"tuning_{variant}_{i}")
            run = snakemake(
                wd, "--cores", str(args.cores), *production_args(rel, CV_TARGETS, overlays),
                timeout=args.timeout,
            )  # fmt: skip
            runs.append({"variant": variant, "repeat": i, **run})
            job = collect_jobs(wd)
            job["model"] = [
                j.split("/")[1] if j.split("/")[0] in ("cv", "tuning") else "" for j in job["job"]
            ]
            job["variant"], job["repeat"] = variant, i
            jobs.append(job)
            workdirs[variant] = wd
            print(
                f"{variant} {i}: {run['wall_s']:.1f} s (load {run['load_before']:.2f})", flush=True
            )
    runs = pd.DataFrame(runs).assign(commit=commit, rows=args.rows, cores=args.cores)
    jobs = pd.concat(jobs, ignore_index=True)
    tuned_models = sorted(
        json.loads(p.read_text())["model"]
        for p in (workdirs["tuned"] / "results/tuning").glob("*/fold_0/selection.json")
    )
    gain = gain_table(
        _fold_metrics(workdirs["untuned"]), _fold_metrics(workdirs["tuned"]), tuned_models
    )
    choices = _choices(workdirs["tuned"])
    path = path_comparison(workdirs["tuned"]) if "coxnet" in tuned_models else None
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "tuning_runs.csv", index=False)
    jobs.to_csv(out / "tuning_jobs.csv", index=False)
    gain.to_csv(out / "tuning_gain.csv", index=False)
    choices.to_csv(out / "tuning_choices.csv", index=False)
    if path:
        pd.DataFrame([path]).to_csv(out / "tuning_path.csv", index=False)
    summary = _summary(runs, jobs, gain, choices, path)
    (out / "tuning.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
