"""Benchmark of the cross-validation workflow at production scale (``make bench``).

Steps (``--steps``, default all, in this order):

``accuracy``
    Demo config (flchain sample, 5 folds): every fast default against its slow setting
    (scikit-survival CoxPH solver, exact-time full-bootstrap RSF, scikit-survival boosting,
    scikit-survival concordance), mean C-index / IBS over the folds ->
    ``results/bench/defaults_accuracy.csv``.
``baseline``
    The naive sequential baseline: one Python loop over models and folds with library
    defaults (``CoxPHSurvivalAnalysis()``, ``CoxnetSurvivalAnalysis(fit_baseline_model=True)``,
    ``RandomSurvivalForest()``, ``GradientBoostingSurvivalAnalysis()``,
    ``WeibullAFTFitter()``, scikit-survival metrics) on the production folds. Fold 0 of each
    model is run for real (each fit in its own process, bounded by ``--baseline-budget``
    seconds); the other folds have the same size and are taken as equal to fold 0. Default
    RSF does not fit at this size (6.6 GB already at 10K rows), so it is measured on
    ``--rsf-rows`` training rows and extrapolated with the fitted power law of its time ->
    ``results/bench/baseline.csv``.
``workflow``
    The real workflow (validate, split, 25 fits, aggregate) on the production table with
    ``--cores 1`` and ``--cores 2``, ``--repeats`` times each, alternating ->
    ``results/bench/workflow_runs.csv`` (one row per run) and ``workflow_jobs.csv`` (one
    row per job: wall, CPU, peak RSS, fit/predict/score seconds).
``scaling``
    The workflow with ``--cores 2`` on ``--scaling`` rows -> ``results/bench/scaling.csv``.
``full``
    What ``snakemake --cores 2 --configfile config/production.yaml`` really runs: ``rule
    all`` (the CV above plus proportional-hazards tests, the final-model refit and the
    report's plots and tables), ``--repeats`` times -> ``results/bench/full_runs.csv`` and
    ``full_jobs.csv``.
``report``
    ``results/bench/summary.csv`` and ``results/bench/bench.png`` from the CSVs above.

Every measurement records the 1-minute load average before and after it (other work on
the machine distorts timings). Runs happen in ``results/bench/work/`` (a copy of the
workflow), never in the repository's own ``results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

OUT = REPO / "results" / "bench"
WORK = OUT / "work"
PARTS = ("Snakefile", "rules", "scripts", "config", "profiles", "envs")

from survival_framework.models import MODEL_NAMES as MODELS  # noqa: E402 - the registry

CV_TARGETS = ("results/cv_metrics.csv", "results/leaderboard.csv")

__all__ = ["main"]


# --------------------------------------------------------------------------- helpers
def load1() -> float:
    """1-minute load average."""
    return os.getloadavg()[0]


def make_workdir(name: str) -> Path:
    """A fresh copy of the workflow under ``results/bench/work/<name>`` sharing resources/."""
    wd = WORK / name
    if wd.exists():
        shutil.rmtree(wd)
    wd.mkdir(parents=True)
    for part in PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, wd / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, wd / part)
    (wd / "resources").mkdir()
    for sub in ("synthetic", "demo"):
        (REPO / "resources" / sub).mkdir(parents=True, exist_ok=True)
        (wd / "resources" / sub).symlink_to(REPO / "resources" / sub)
    return wd


def snakemake(wd: Path, *args: str, timeout: int = 3600) -> dict:
    """Run Snakemake in ``wd``; return wall and CPU seconds of the run and the load."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = load1()
    start = time.perf_counter()
    # the workflow folder's own package first (a snapshot of another commit must not run its
    # jobs with the editable install's package; today's rules/common.smk does this itself)
    paths = [str(Path(wd).resolve() / "scripts"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-6000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "load_before": load_before, "load_after": load1()}


def ensure_table(n_rows: int) -> str:
    """Generate ``resources/synthetic/survival_<n_rows>.parquet`` if missing; its path."""
    rel = f"resources/synthetic/survival_{n_rows}.parquet"
    if not (REPO / rel).exists():
        subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "1", rel], cwd=REPO, check=True
        )
    return rel


def production_args(
    rel_path: str, targets: tuple[str, ...] = CV_TARGETS, overlays: tuple[str, ...] = ()
) -> list[str]:
    """Snakemake arguments of a production run: the targets, config/production.yaml (then
    the ``overlays``' config files) and the table at ``rel_path``."""
    return [
        *targets,
        "--configfile",
        "config/production.yaml",
        *overlays,
        "--config",
        f"data={{path: {rel_path}}}",
    ]


def collect_jobs(wd: Path) -> pd.DataFrame:
    """One row per workflow job: Snakemake benchmark TSV plus fit/predict/score seconds."""
    rows = []
    for tsv in sorted((wd / "benchmarks").rglob("*.tsv")):
        bench = pd.read_csv(tsv, sep="\t").iloc[-1]
        rel = tsv.relative_to(wd / "benchmarks").with_suffix("")
        row = {
            "job": str(rel),
            "stage": rel.parts[0],
            "wall_s": float(bench["s"]),
            "cpu_s": float(bench["cpu_time"]),
            "max_rss_mb": float(bench["max_rss"]),
        }
        if rel.parts[0] == "cv":
            row["model"], row["fold"] = rel.parts[1], int(rel.parts[2].split("_")[1])
            rec = json.loads((wd / "results" / rel / "metrics.json").read_text())
            row.update(
                status=rec["status"],
                fit_s=rec["fit_seconds"],
                predict_s=rec["predict_seconds"],
                score_s=rec["score_seconds"],
                # the share of the job's wall time spent scoring (issue 11: at most 15 %)
                score_share=rec["score_seconds"] / float(bench["s"]),
                **{m: v for m, v in rec["metrics"].items()},
            )
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- accuracy
def _fold_data(wd: Path, fold: int):
    from survival_framework.io import read_json, read_table
    from survival_framework.preprocess import output_columns

    feats = output_columns(read_json(wd / f"results/splits/fold_{fold}/preprocessor.json"))
    train = read_table(wd / f"results/splits/fold_{fold}/train.parquet")
    test = read_table(wd / f"results/splits/fold_{fold}/test.parquet")
    return feats, train, test


def _cv_scores(wd: Path, model: str, params: dict, duration: str, event: str) -> dict:
    from survival_framework.cv import fit_and_evaluate
    from survival_framework.io import read_json
    from survival_framework.matrix import FoldArrays

    grid = read_json(wd / "results/splits/time_grid.json")
    recs, secs = [], 0.0
    for fold in range(5):
        feats, train, test = _fold_data(wd, fold)
        start = time.perf_counter()
        rec, _ = fit_and_evaluate(
            model, params,
            FoldArrays.from_frame(train, feats, duration, event),
            FoldArrays.from_frame(test, feats, duration, event),
            np.asarray(grid["times"]), grid["tau"], seed=fold, strict=True,
        )  # fmt: skip
        secs += time.perf_counter() - start
        recs.append(rec["metrics"])
    out = pd.DataFrame(recs).mean().to_dict()
    out["seconds"] = secs
    return out


def step_accuracy(args) -> None:
    """Fast defaults vs slow settings on the demo config -> defaults_accuracy.csv."""
    import yaml

    wd = make_workdir("demo")
    snakemake(wd, "--cores", "2", "results/splits/time_grid.json")
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    dur, ev = cfg["data"]["duration_col"], cfg["data"]["event_col"]
    params = {m: dict(cfg["models"][m]["params"]) for m in MODELS}
    comparisons = [
        ("coxph", "solver=sksurv", {**params["coxph"], "solver": "sksurv"}),
        (
            "rsf",
            "exact times, full bootstrap (n_time_bins=None, max_samples=None)",
            {**params["rsf"], "n_time_bins": None, "max_samples": None},
        ),
        ("gbsa", "implementation=sksurv", {**params["gbsa"], "implementation": "sksurv"}),
    ]
    rows = []
    for model, slow_name, slow_params in comparisons:
        fast = _cv_scores(wd, model, params[model], dur, ev)
        slow = _cv_scores(wd, model, slow_params, dur, ev)
        for metric in ("harrell_c", "uno_c", "ibs", "mean_auc"):
            rows.append(
                {
                    "model": model,
                    "fast_setting": json.dumps(params[model], sort_keys=True),
                    "slow_setting": slow_name,
                    "metric": metric,
                    "fast": fast[metric],
                    "slow": slow[metric],
                    "abs_diff": abs(fast[metric] - slow[metric]),
                    "fast_seconds_5_folds": fast["seconds"],
                    "slow_seconds_5_folds": slow["seconds"],
                }
            )
    rows.extend(_concordance_rows(wd, params, dur, ev))
    df = pd.DataFrame(rows)
    df["within_0.005"] = df["abs_diff"] <= 0.005
    OUT.mkdir(parents=True, exist_ok=True)
    df.to_csv(OUT / "defaults_accuracy.csv", index=False)
    print(df[["model", "metric", "fast", "slow", "abs_diff"]].to_string())


def _concordance_rows(wd: Path, params: dict, dur: str, ev: str) -> list[dict]:
    """Vectorised concordance vs scikit-survival's on the coxph risk scores of the demo."""
    from sksurv.metrics import concordance_index_censored, concordance_index_ipcw

    from survival_framework.io import read_json
    from survival_framework.metrics import harrell_c, to_structured, uno_c
    from survival_framework.models import get_model

    tau = read_json(wd / "results/splits/time_grid.json")["tau"]
    rows = []
    for fold in range(5):
        feats, train, test = _fold_data(wd, fold)
        y_tr = to_structured(train[ev], train[dur])
        y_te = to_structured(test[ev], test[dur])
        risk = get_model("coxph", **params["coxph"]).fit(train[feats].to_numpy(float), y_tr)
        risk = risk.predict(test[feats].to_numpy(float))
        pairs = [
            ("harrell_c", harrell_c(y_te["event"], y_te["time"], risk),
             concordance_index_censored(y_te["event"], y_te["time"], risk)[0]),
            ("uno_c", uno_c(y_tr, y_te, risk, tau),
             concordance_index_ipcw(y_tr, y_te, risk, tau=tau)[0]),
        ]  # fmt: skip
        for metric, fast, slow in pairs:
            rows.append(
                {
                    "model": "metrics (coxph risk)",
                    "fast_setting": "survival_framework.concordance",
                    "slow_setting": "sksurv.metrics",
                    "metric": f"{metric} fold {fold}",
                    "fast": fast,
                    "slow": slow,
                    "abs_diff": abs(fast - slow),
                }
            )
    return rows


# --------------------------------------------------------------------------- baseline
def baseline_fit(wd: Path, model: str, fold: int, max_rows: int | None) -> dict:
    """One naive fit: library defaults, scikit-survival metrics; runs in its own process."""
    import warnings

    from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
    from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis
    from sksurv.metrics import (
        concordance_index_censored,
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )

    from survival_framework.io import read_json
    from survival_framework.metrics import censor_after, to_structured

    warnings.simplefilter("ignore")
    grid = read_json(wd / "results/splits/time_grid.json")
    times, tau = np.asarray(grid["times"]), grid["tau"]
    feats, train, test = _fold_data(wd, fold)
    if max_rows is not None and max_rows < len(train):
        train = train.sample(n=max_rows, random_state=0)
    X_tr, X_te = train[feats].to_numpy(float), test[feats].to_numpy(float)
    y_tr = to_structured(train["event"], train["duration"])
    y_te = to_structured(test["event"], test["duration"])
    cpu0, t0 = time.process_time(), time.perf_counter()
    if model == "weibull_aft":
        from lifelines import WeibullAFTFitter

        df = pd.DataFrame(X_tr, columns=feats).assign(_T=y_tr["time"], _E=y_tr["event"])
        est = WeibullAFTFitter().fit(df, "_T", "_E")
        t1 = time.perf_counter()
        df_te = pd.DataFrame(X_te, columns=feats)
        risk = -np.asarray(est.predict_median(df_te), dtype=float)
        surv = est.predict_survival_function(df_te, times=times).to_numpy().T
    else:
        est = {
            "coxph": CoxPHSurvivalAnalysis,
            "coxnet": lambda: CoxnetSurvivalAnalysis(fit_baseline_model=True),
            "rsf": RandomSurvivalForest,
            "gbsa": GradientBoostingSurvivalAnalysis,
        }[model]()
        est.fit(X_tr, y_tr)
        t1 = time.perf_counter()
        risk = est.predict(X_te)
        # even the naive loop needs batches: scikit-survival builds one step function per
        # row over all unique training times (57K x 230K floats = 105 GB at once)
        surv = np.vstack(
            [
                fn(times)
                for start in range(0, len(X_te), 500)
                for fn in est.predict_survival_function(X_te[start : start + 500])
            ]
        )
    t2 = time.perf_counter()
    y_eval = censor_after(y_te, float(times.max()))
    metrics = {
        "harrell_c": concordance_index_censored(y_te["event"], y_te["time"], risk)[0],
        "uno_c": concordance_index_ipcw(y_tr, y_te, risk, tau=tau)[0],
        "ibs": integrated_brier_score(y_tr, y_eval, surv, times),
        "mean_auc": cumulative_dynamic_auc(y_tr, y_eval, 1 - surv, times)[1],
    }
    t3 = time.perf_counter()
    return {
        "model": model,
        "fold": fold,
        "n_train": len(train),
        "fit_s": t1 - t0,
        "predict_s": t2 - t1,
        "score_s": t3 - t2,
        "wall_s": t3 - t0,
        "cpu_s": time.process_time() - cpu0,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **{k: float(v) for k, v in metrics.items()},
    }


def _run_baseline_child(wd: Path, model: str, rows: int | None, budget: int) -> dict:
    cmd = [sys.executable, __file__, "_baseline_fit", str(wd), model, str(rows or 0)]
    load_before = load1()
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget)
    except subprocess.TimeoutExpired:
        return {"model": model, "n_train": rows, "status": f"timeout>{budget}s",
                "wall_s": time.perf_counter() - start, "load_before": load_before}  # fmt: skip
    if proc.returncode != 0:
        return {"model": model, "n_train": rows, "status": "failed: " + proc.stderr[-300:],
                "wall_s": time.perf_counter() - start, "load_before": load_before}  # fmt: skip
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**rec, "status": "ok", "load_before": load_before, "load_after": load1()}


def step_baseline(args) -> None:
    """Naive sequential baseline (see module docstring) -> baseline.csv."""
    wd = production_workdir(args.rows)
    rows = []
    for model in args.baseline_models:
        if model == "rsf":
            for n in args.rsf_rows:
                rows.append({**_run_baseline_child(wd, "rsf", n, args.baseline_budget),
                             "kind": "measured (subsample)"})  # fmt: skip
                print(rows[-1], flush=True)
            continue
        rec = _run_baseline_child(wd, model, None, args.baseline_budget)
        rows.append({**rec, "kind": "measured"})
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    if (OUT / "baseline.csv").exists():  # keep earlier measurements of the other models
        old = pd.read_csv(OUT / "baseline.csv")
        df = pd.concat([old[~old.model.isin(args.baseline_models)], df], ignore_index=True)
    train0 = wd / "results/splits/fold_0/train.parquet"
    n_full = len(pd.read_parquet(train0, columns=["event"]))
    df = df[df.status != "extrapolated"]
    rsf = df[(df.model == "rsf") & (df.status == "ok")]
    if len(rsf) >= 2:
        # CPU seconds (= idle wall time of the single-threaded fit, see step_report)
        idle = np.minimum(rsf.wall_s, rsf.cpu_s)
        slope, icpt = np.polyfit(np.log(rsf.n_train), np.log(idle), 1)
        mem_slope, mem_icpt = np.polyfit(np.log(rsf.n_train), np.log(rsf.max_rss_mb), 1)
        df = pd.concat([df, pd.DataFrame([{
            "model": "rsf", "fold": 0, "n_train": n_full, "status": "extrapolated",
            "kind": f"extrapolated: time ~ n^{slope:.2f}, memory ~ n^{mem_slope:.2f}",
            "wall_s": float(np.exp(icpt) * n_full**slope),
            "cpu_s": float(np.exp(icpt) * n_full**slope),
            "max_rss_mb": float(np.exp(mem_icpt) * n_full**mem_slope),
        }])], ignore_index=True)  # fmt: skip
    df.to_csv(OUT / "baseline.csv", index=False)
    print(df.to_string())


def production_workdir(n_rows: int) -> Path:
    """Workdir with the production splits in place (created once, reused)."""
    wd = WORK / f"prod_{n_rows}"
    if not (wd / "results/splits/time_grid.json").exists():
        wd = make_workdir(f"prod_{n_rows}")
        rel = ensure_table(n_rows)
        snakemake(wd, "--cores", "2", "results/splits/time_grid.json",
                  *production_args(rel)[2:])  # fmt: skip
    return wd


# --------------------------------------------------------------------------- workflow
def run_workflow(
    n_rows: int, cores: int, tag: str, targets: tuple[str, ...] = CV_TARGETS
) -> tuple[dict, pd.DataFrame]:
    """One timed run in a fresh workdir: validate, split, 25 fits and aggregation (the
    default ``targets``), or ``rule all`` with ``targets=()``."""
    rel = ensure_table(n_rows)
    wd = make_workdir(f"run_{tag}")
    run = snakemake(wd, "--cores", str(cores), *production_args(rel, targets))
    jobs = collect_jobs(wd)
    cv = jobs[jobs.stage == "cv"]
    run.update(
        tag=tag,
        n_rows=n_rows,
        cores=cores,
        cpu_utilisation=run["cpu_s"] / (run["wall_s"] * cores),
        n_fits=len(cv),
        n_failed=int((cv.status != "ok").sum()),
        max_job_rss_mb=float(jobs.max_rss_mb.max()),
        max_job_rss_job=str(jobs.loc[jobs.max_rss_mb.idxmax(), "job"]),
        uptime=subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    )
    jobs.insert(0, "tag", tag)
    jobs.insert(1, "cores", cores)
    jobs.insert(2, "n_rows", n_rows)
    print({k: run[k] for k in ("tag", "wall_s", "cpu_s", "load_before", "load_after",
                               "max_job_rss_mb", "n_failed")}, flush=True)  # fmt: skip
    return run, jobs


def _append(df: pd.DataFrame, name: str) -> None:
    path = OUT / name
    if path.exists():
        df = pd.concat([pd.read_csv(path), df], ignore_index=True)
    df.to_csv(path, index=False)


def step_workflow(args) -> None:
    """--cores 1 and --cores 2 on the production table, alternating, --repeats times."""
    for rep in range(args.repeats):
        for cores in (1, 2):
            tag = f"prod{args.rows}_c{cores}_r{rep}_{time.strftime('%H%M%S')}"
            run, jobs = run_workflow(args.rows, cores, tag)
            _append(pd.DataFrame([run]), "workflow_runs.csv")
            _append(jobs, "workflow_jobs.csv")


def step_scaling(args) -> None:
    """--cores 2 on each size of --scaling -> scaling.csv (+ its jobs in scaling_jobs.csv)."""
    for n in args.scaling:
        run, jobs = run_workflow(n, 2, f"scale{n}_c2_{time.strftime('%H%M%S')}")
        _append(pd.DataFrame([run]), "scaling.csv")
        _append(jobs, "scaling_jobs.csv")


def step_full(args) -> None:
    """``rule all`` with --cores 2 on the production table, --repeats times."""
    for rep in range(args.repeats):
        tag = f"full{args.rows}_c2_r{rep}_{time.strftime('%H%M%S')}"
        run, jobs = run_workflow(args.rows, 2, tag, targets=())
        run["n_jobs"] = len(jobs)
        _append(pd.DataFrame([run]), "full_runs.csv")
        _append(jobs, "full_jobs.csv")


def full_run_summary(rows: int) -> tuple[list[dict], pd.DataFrame | None, pd.DataFrame | None]:
    """Summary lines, runs and per-stage job table of the ``full`` step (if it ran)."""
    if not (OUT / "full_runs.csv").exists():
        return [], None, None
    runs = pd.read_csv(OUT / "full_runs.csv")
    runs = runs[runs.n_rows == rows]
    if runs.empty:
        return [], None, None
    jobs = pd.read_csv(OUT / "full_jobs.csv")
    jobs = jobs[jobs.tag.isin(runs.tag)]
    lines = [
        {"measure": f"rule all --cores 2 wall s (median of {len(runs)})",
         "value": float(runs.wall_s.median())},
        {"measure": "rule all --cores 2 load average before (median)",
         "value": float(runs.load_before.median())},
        {"measure": "rule all: peak RSS of any job (MB)", "value": float(jobs.max_rss_mb.max())},
    ]  # fmt: skip
    # per run: jobs, summed job wall time and largest job of each stage; then the median run
    per_run = jobs.groupby(["tag", "stage"]).agg(
        jobs=("job", "size"), job_wall_s=("wall_s", "sum"), longest_job_s=("wall_s", "max"),
        max_rss_mb=("max_rss_mb", "max"),
    )  # fmt: skip
    stages = per_run.groupby("stage").median()
    return lines, runs, stages.sort_values("job_wall_s", ascending=False).reset_index()


# --------------------------------------------------------------------------- report
def step_report(args) -> None:
    """Summary table and figure from the CSVs of the other steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = pd.read_csv(OUT / "workflow_runs.csv")
    runs = runs[runs.n_rows == args.rows]
    jobs = pd.read_csv(OUT / "workflow_jobs.csv")
    jobs = jobs[jobs.tag.isin(runs.tag)]
    med = runs.groupby("cores").agg(
        wall_s=("wall_s", "median"), cpu_s=("cpu_s", "median"),
        cpu_utilisation=("cpu_utilisation", "median"), runs=("wall_s", "size"),
        max_job_rss_mb=("max_job_rss_mb", "max"), load_before=("load_before", "median"),
    )  # fmt: skip
    rows = [{"measure": f"workflow --cores {c} wall s (median of {int(r.runs)})",
             "value": r.wall_s} for c, r in med.iterrows()]  # fmt: skip
    rows += [{"measure": f"workflow --cores {c} CPU utilisation", "value": r.cpu_utilisation}
             for c, r in med.iterrows()]  # fmt: skip
    rows += [{"measure": f"workflow --cores {c} load average before (median)",
              "value": r.load_before} for c, r in med.iterrows()]  # fmt: skip
    if {1, 2} <= set(med.index):
        speedup = med.wall_s[1] / med.wall_s[2]
        rows += [{"measure": "speedup --cores 2 over --cores 1", "value": speedup},
                 {"measure": "parallel efficiency at --cores 2", "value": speedup / 2}]  # fmt: skip
    rows.append({"measure": "peak RSS of any job (MB)", "value": float(jobs.max_rss_mb.max())})
    base_total = None
    if (OUT / "baseline.csv").exists():
        base = pd.read_csv(OUT / "baseline.csv")
        usable = base.status.isin(["ok", "extrapolated"]) | base.status.str.startswith("timeout")
        full = base[usable & ~base.kind.str.contains("subsample")]
        # single-threaded Python on a shared machine: CPU seconds are the idle-machine wall
        # time (min with wall, in case a library used several threads); a fit stopped at the
        # time budget counts with the budget (so the total is then a lower bound)
        full = full.assign(idle_s=full[["wall_s", "cpu_s"]].min(axis=1))
        per_model = full.groupby("model").idle_s.max()
        base_total = 5 * per_model.sum()  # 5 equal-size folds
        rows.append({"measure": "naive baseline, 5 models x 5 folds, s (fold 0 x 5; RSF "
                     "extrapolated)", "value": base_total})  # fmt: skip
        for c, r in med.iterrows():
            rows.append({"measure": f"speedup of --cores {c} over the naive baseline",
                         "value": base_total / r.wall_s})  # fmt: skip
    full_lines, full_runs, full_stages = full_run_summary(args.rows)
    rows += full_lines
    pd.DataFrame(rows).to_csv(OUT / "summary.csv", index=False)
    per_model = jobs[jobs.stage == "cv"].groupby(["cores", "model"]).agg(
        wall_s=("wall_s", "median"), max_rss_mb=("max_rss_mb", "max"),
        fit_s=("fit_s", "median"), predict_s=("predict_s", "median"),
        score_s=("score_s", "median"), harrell_c=("harrell_c", "mean"), ibs=("ibs", "mean"),
    )  # fmt: skip
    per_model.to_csv(OUT / "per_model.csv")
    print(pd.DataFrame(rows).to_string(), per_model.to_string(), sep="\n")

    write_markdown(runs, per_model, full_runs, full_stages)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    labels = list(med.index.map(lambda c: f"workflow\n--cores {c}"))
    values = list(med.wall_s)
    if base_total is not None:
        labels.insert(0, "naive baseline\n(RSF extrapolated)")
        values.insert(0, base_total)
    ax.bar(labels, values, color=["#999999"] * (len(values) - len(med)) + ["#4c72b0"] * len(med))
    ax.set_yscale("log")
    ax.set_ylabel("wall time (s, log)")
    ax.set_title(f"5 models x 5 folds, {args.rows:,} rows")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:,.0f} s", ha="center", va="bottom")
    ax = axes[1]
    pm = per_model.reset_index()
    pm1 = pm[pm.cores == pm.cores.min()].set_index("model")
    pm1[["fit_s", "predict_s", "score_s"]].plot.bar(stacked=True, ax=ax)
    ax.set_ylabel("seconds per fold job (median)")
    ax.set_title("where a job's time goes")
    ax = axes[2]
    if (OUT / "scaling.csv").exists():
        sc = pd.read_csv(OUT / "scaling.csv")
        prod = runs[runs.cores == 2][["n_rows", "wall_s", "max_job_rss_mb"]]
        sc = pd.concat([sc, prod]).groupby("n_rows").median(numeric_only=True)
        ax.loglog(sc.index, sc.wall_s, "o-", label="wall (s), --cores 2")
        ax.loglog(sc.index, sc.max_job_rss_mb, "s--", label="peak job RSS (MB)")
        ax.set_xlabel("rows")
        ax.legend()
        ax.set_title("scaling")
    fig.tight_layout()
    fig.savefig(OUT / "bench.png", dpi=120)


def _md(df: pd.DataFrame, floatfmt: str = "{:,.1f}") -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    cells = [[floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
             for row in df.itertuples(index=False)]  # fmt: skip
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])


def write_markdown(
    runs: pd.DataFrame,
    per_model: pd.DataFrame,
    full: pd.DataFrame | None = None,
    full_stages: pd.DataFrame | None = None,
) -> None:
    """``results/bench/summary.md``: the tables quoted in the README."""
    parts = ["## workflow runs\n"]
    cols = ["tag", "cores", "wall_s", "cpu_s", "cpu_utilisation", "load_before", "load_after",
            "max_job_rss_mb", "n_failed"]  # fmt: skip
    parts.append(_md(runs[cols], "{:,.2f}"))
    parts.append("\n\n## per model (median over folds and runs)\n")
    parts.append(_md(per_model.reset_index(), "{:,.3f}"))
    if full is not None:
        cols = ["tag", "cores", "wall_s", "cpu_s", "cpu_utilisation", "load_before",
                "load_after", "max_job_rss_mb", "max_job_rss_job", "n_jobs"]  # fmt: skip
        parts.append("\n\n## full runs (rule all: CV, PH tests, final model, report)\n")
        parts.append(_md(full[[c for c in cols if c in full.columns]], "{:,.2f}"))
        parts.append("\n\n## full run by stage (median over runs; job wall times summed)\n")
        parts.append(_md(full_stages, "{:,.1f}"))
    for name in ("baseline", "scaling", "defaults_accuracy"):
        if (OUT / f"{name}.csv").exists():
            df = pd.read_csv(OUT / f"{name}.csv")
            keep = {
                "baseline": ["model", "n_train", "status", "kind", "fit_s", "predict_s",
                             "score_s", "wall_s", "cpu_s", "max_rss_mb", "harrell_c",
                             "load_before"],
                "scaling": ["n_rows", "wall_s", "cpu_s", "cpu_utilisation", "load_before",
                            "load_after", "max_job_rss_mb", "max_job_rss_job", "n_failed"],
                "defaults_accuracy": ["model", "slow_setting", "metric", "fast", "slow",
                                      "abs_diff"],
            }[name]  # fmt: skip
            parts.append(f"\n\n## {name}\n")
            parts.append(_md(df[[c for c in keep if c in df.columns]], "{:,.4g}"))
    (OUT / "summary.md").write_text("".join(parts) + "\n")


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_baseline_fit":
        wd, model, rows = Path(argv[1]), argv[2], int(argv[3]) or None
        print(json.dumps(baseline_fit(wd, model, 0, rows)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", default=["accuracy", "baseline", "workflow",
                        "scaling", "full", "report"])  # fmt: skip
    parser.add_argument("--rows", type=int, default=287_000, help="production table rows")
    parser.add_argument("--repeats", type=int, default=2, help="runs per --cores setting")
    parser.add_argument("--scaling", type=int, nargs="+", default=[10_000, 50_000, 1_000_000])
    parser.add_argument(
        "--baseline-budget",
        type=int,
        default=900,
        help="seconds allowed for one naive fit (a timeout is a lower bound)",
    )
    parser.add_argument(
        "--baseline-models",
        nargs="*",
        default=list(MODELS),
        help="models to (re)measure; none: only redo the RSF extrapolation",
    )
    parser.add_argument("--rsf-rows", type=int, nargs="+", default=[1000, 2000, 4000])
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    steps = {"accuracy": step_accuracy, "baseline": step_baseline, "workflow": step_workflow,
             "scaling": step_scaling, "full": step_full, "report": step_report}  # fmt: skip
    for name in args.steps:
        print(f"== {name} ({time.strftime('%H:%M:%S')}, load {load1():.2f})", flush=True)
        steps[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
