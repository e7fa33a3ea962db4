"""Small tables (``make bench-small``): the workflow's CV leaderboard against a plain loop, the
overhead per fit job, and ``make run`` on the demo before and after, in one run set.

Tables (``--tables``, default both):

``demo``
    ``config/config.yaml`` as it is: the 3,000-row stratified sample of the bundled flchain
    table (``resources/demo/flchain.csv``), 5 folds, seed 42, every enabled model.
``flchain``
    The same config with ``run_type: production`` (``--config run_type=production``): all
    7,874 rows of the table.

Steps (``--steps``, default all; ``loop`` and ``workflow`` on each table):

``workflow``
    ``snakemake --cores 2 [--config run_type=production] -- results/leaderboard.csv`` in a
    fresh copy of the workflow (``results/bench/work/small_<table>_workflow_<i>``), timed from
    the start of the command to its end: validation, the split stage (folds, fold-fitted
    preprocessing, time grid), one job per model x fold and the aggregation. The demo CSV is
    exported once beforehand (rule ``export_demo_data``; never timed; every copy links the
    same ``resources/demo``). Per-job overhead: for each ``results/cv/<model>/fold_<k>``, the
    job's wall time (column ``s`` of ``benchmarks/cv/<model>/fold_<k>.tsv``) minus the
    ``fit_seconds + predict_seconds + score_seconds`` of its ``metrics.json`` (interpreter
    start, imports, reading the fold, writing outputs and provenance, Snakemake's job
    handling); the median over the run's fit jobs is ``median_job_overhead_s``. The config's
    ``execution.job_worker: auto`` applies: these inputs are small, so the jobs run in forks
    of the warm job worker (``survival_framework.worker``), as a user's run would.
``loop``
    What a user would write instead: one fresh Python process (``python bench_small.py _loop``;
    wall time from before the process starts to its exit, so interpreter start and imports
    count, as a user's script pays them) that reads the workflow's own folds (the split
    stage's ``results/splits/fold_<k>/{train,test}.parquet`` and ``time_grid.json``, made
    once per table in ``results/bench/work/small_<table>_splits``, untimed: the loop gets the
    validation and preprocessing for free; every workflow run's ``folds.parquet`` is checked
    to be the same) and fits every (model, fold) pair with
    ``joblib.Parallel(n_jobs=2)`` (loky processes; joblib limits each worker's BLAS/OpenMP
    pools to one thread, as the workflow's ``fit_model: 1`` thread does), calling the
    libraries directly, with the config's settings wherever the library exposes them:

    * ``coxph``: ``sksurv.linear_model.CoxPHSurvivalAnalysis(alpha=, ties=)`` (``solver:
      numpy``, the package's vectorised Newton-Raphson, has no library equivalent);
    * ``coxnet``: ``CoxnetSurvivalAnalysis(l1_ratio=, alphas=[alpha],
      fit_baseline_model=True)``;
    * ``rsf``: ``sksurv.ensemble.RandomSurvivalForest(n_estimators=, min_samples_leaf=,
      max_features=, max_samples=, random_state=seed, n_jobs=1, low_memory=False)``;
      ``max_samples`` at or above the training rows is passed as None (scikit-learn rejects
      a count above them; the workflow reads it as the full bootstrap, too). ``n_time_bins``
      has no library equivalent: the forest keeps every distinct training time;
    * ``gbsa``: ``xgboost.train`` with ``objective: survival:cox``, ``tree_method: hist``,
      ``eta`` = learning_rate, ``max_depth``, ``n_estimators`` rounds, ``nthread: 1``, seed
      (labels: the time, negative when censored), everything else XGBoost's defaults (the
      package's ``min_child_weight`` 1e-3 and exact gradient are not config settings), and a
      Breslow baseline of the margins for the survival curves (the package's
      :func:`survival_framework.cox.breslow_cumulative_hazard`);
    * ``weibull_aft``: ``lifelines.WeibullAFTFitter(penalizer=)`` (risk: minus the predicted
      median; each row's survival at its own time from ``predict_survival_function``);
    * ``km``: ``sksurv.nonparametric.kaplan_meier_estimator`` of the training rows, risk 0.

    Survival curves from scikit-survival's step functions, evaluated on the grid (clipped to
    their domain); every metric from the workflow's own
    :func:`survival_framework.metrics.evaluate_predictions`, called as
    :func:`survival_framework.cv.fit_and_evaluate` calls it (so both compute the same
    metrics; the mean ``uno_c``, ``harrell_c`` and ``ibs`` of each model from both are
    printed and written to ``<out>_metrics.csv``).
``make_run``
    ``snakemake --cores 2`` (``rule all`` on the demo config: CV, PH tests, final model,
    report) in a fresh copy of the workflow of commit ``--before`` (``git archive``, default
    ``BEFORE``, the code before the small-table work) and of the current checkout.

Runs alternate so load drifts hit both sides: for each of ``--repeats`` (default 3): per
table loop, workflow; then make_run before, now. Each records the 1-minute load average
before and after it.

Writes ``--out`` (default ``docs/bench/small.csv``; rewritten after every run), one row per
run: ``table`` (demo / flchain / make_run), ``version`` (loop / workflow / before / now),
``repeat``, ``wall_s``, ``load_before``, ``load_after``, ``median_job_overhead_s`` (workflow
runs), ``jobs`` ((model, fold) fits of a loop run; Snakemake's steps of a workflow or make_run
run, from its log). Prints per table the median loop and workflow wall time, their ratio
(target <= 1.0) and the median per-job overhead (target < 0.6 s), and for make_run the
median before and now and their ratio (target < 0.5). Work directories are removed after
use unless ``--keep-work``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "scripts"))

BEFORE = "e1628d1"  # the code before the small-table work
DEFAULT_OUT = REPO / "docs" / "bench" / "small.csv"
DEMO_CSV = "resources/demo/flchain.csv"
LEADERBOARD = "results/leaderboard.csv"
TABLES: dict[str, tuple[str, ...]] = {"demo": (), "flchain": ("--config", "run_type=production")}
STEPS = ("loop", "workflow", "make_run")
CHECK_METRICS = ("uno_c", "harrell_c", "ibs")
COLUMNS = [
    "table",
    "version",
    "repeat",
    "wall_s",
    "load_before",
    "load_after",
    "median_job_overhead_s",
    "jobs",
]

__all__ = ["main"]

# The parent's helpers come from bench_cv / bench_stats_cost, imported inside the functions
# that use them: the timed loop process runs this file too and must import only what a
# user's loop imports (bench_cv loads the package's model registry and scikit-learn).


# --------------------------------------------------------------------------- the plain loop
def _step_functions(fns: Any, times: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, ...]:
    """scikit-survival step functions on the grid and each at its row's own time."""
    lo, hi = fns[0].domain
    grid = np.clip(times, lo, hi)
    surv = np.vstack([fn(grid) for fn in fns])
    surv_at = np.array([fn(min(max(t, lo), hi)) for fn, t in zip(fns, at, strict=True)])
    return surv, surv_at


def _library_fit_predict(
    model: str,
    params: dict[str, Any],
    fold: dict[str, Any],
    times: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Fit ``model`` with its library on a fold; risk, curves, survival at own time, seconds."""
    from survival_framework.metrics import to_structured
    from survival_framework.models import _step_lookup  # the models' own step-curve lookup

    X_tr, X_te = fold["X_train"], fold["X_test"]
    e_tr, t_tr, t_te = fold["event_train"], fold["time_train"], fold["time_test"]
    y_tr = to_structured(e_tr, t_tr)
    t0 = time.perf_counter()
    if model in ("coxph", "coxnet", "rsf"):
        if model == "coxph":
            from sksurv.linear_model import CoxPHSurvivalAnalysis

            est = CoxPHSurvivalAnalysis(
                alpha=params.get("alpha", 0.0), ties=params.get("ties", "breslow")
            )
            kwargs: dict[str, Any] = {}
        elif model == "coxnet":
            from sksurv.linear_model import CoxnetSurvivalAnalysis

            alpha = params.get("alpha", 0.01)
            est = CoxnetSurvivalAnalysis(
                l1_ratio=params.get("l1_ratio", 0.5), alphas=[alpha], fit_baseline_model=True
            )
            kwargs = {"alpha": alpha}
        else:
            from sksurv.ensemble import RandomSurvivalForest

            max_samples = params.get("max_samples")
            if isinstance(max_samples, int) and max_samples >= len(t_tr):
                max_samples = None
            est = RandomSurvivalForest(
                n_estimators=params.get("n_estimators", 100),
                min_samples_leaf=params.get("min_samples_leaf", 3),
                max_features=params.get("max_features", "sqrt"),
                max_samples=max_samples,
                random_state=seed,
                n_jobs=1,
                low_memory=False,
            )
            kwargs = {}
        est.fit(X_tr, y_tr)
        t1 = time.perf_counter()
        risk = est.predict(X_te, **kwargs)
        surv, surv_at = _step_functions(est.predict_survival_function(X_te, **kwargs), times, t_te)
    elif model == "gbsa":
        import xgboost as xgb

        from survival_framework.cox import breslow_cumulative_hazard

        xgb_params = {
            "objective": "survival:cox",
            "tree_method": "hist",
            "eta": params.get("learning_rate", 0.1),
            "max_depth": params.get("max_depth", 3),
            "nthread": 1,
            "seed": seed,
            "verbosity": 0,
        }
        dtrain = xgb.DMatrix(X_tr, label=np.where(e_tr, t_tr, -t_tr), nthread=1)
        booster = xgb.train(xgb_params, dtrain, num_boost_round=params.get("n_estimators", 100))
        base_t, base_h = breslow_cumulative_hazard(
            booster.predict(dtrain, output_margin=True), e_tr, t_tr
        )
        t1 = time.perf_counter()
        risk = booster.predict(xgb.DMatrix(X_te, nthread=1), output_margin=True).astype(float)
        hr = np.exp(risk)
        surv = np.exp(-hr[:, None] * _step_lookup(base_t, base_h, times, 0.0)[None, :])
        surv_at = np.exp(-hr * _step_lookup(base_t, base_h, t_te, 0.0))
    elif model == "weibull_aft":
        from lifelines import WeibullAFTFitter

        df = pd.DataFrame(X_tr, columns=fold["features"]).assign(_T=t_tr, _E=e_tr.astype(int))
        est = WeibullAFTFitter(penalizer=params.get("penalizer", 0.0)).fit(df, "_T", "_E")
        t1 = time.perf_counter()
        df_te = pd.DataFrame(X_te, columns=fold["features"])
        risk = -np.asarray(est.predict_median(df_te), dtype=float)
        surv = est.predict_survival_function(df_te, times=times).to_numpy().T
        # lifelines evaluates every row at every given time: the diagonal is own-time survival
        surv_at = np.diag(est.predict_survival_function(df_te, times=t_te).to_numpy()).copy()
    elif model == "km":
        from sksurv.nonparametric import kaplan_meier_estimator

        km_t, km_s = kaplan_meier_estimator(e_tr, t_tr)
        t1 = time.perf_counter()
        risk = np.zeros(len(t_te))
        surv = np.tile(_step_lookup(km_t, km_s, times, 1.0), (len(t_te), 1))
        surv_at = _step_lookup(km_t, km_s, t_te, 1.0)
    else:
        raise ValueError(f"no library equivalent for model {model!r}")
    return risk, surv, surv_at, t1 - t0, time.perf_counter() - t1


def _loop_task(
    model: str, params: dict[str, Any], k: int, fold: dict[str, Any], grid: dict, seed: int
) -> dict[str, Any]:
    """One (model, fold) pair of the plain loop: fit, predict, the workflow's metrics."""
    from survival_framework.metrics import evaluate_predictions, to_structured

    times = np.asarray(grid["times"], dtype=float)
    risk, surv, surv_at, fit_s, predict_s = _library_fit_predict(model, params, fold, times, seed)
    t2 = time.perf_counter()
    metrics = evaluate_predictions(
        to_structured(fold["event_train"], fold["time_train"]),
        to_structured(fold["event_test"], fold["time_test"]),
        risk,
        surv,
        times,
        grid["tau"],
        surv_at,
    )
    return {
        "model": model,
        "fold": k,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "score_s": time.perf_counter() - t2,
        "metrics": {m: float(v) for m, v in metrics.items()},
    }


def _read_fold(directory: Path, duration: str, event: str) -> dict[str, Any]:
    """A fold's training and test rows as arrays (the split stage's feature columns)."""
    train = pd.read_parquet(directory / "train.parquet")
    test = pd.read_parquet(directory / "test.parquet")
    from survival_framework.contract import ROW_COL

    features = [c for c in train.columns if c not in (ROW_COL, duration, event)]
    return {
        "features": features,
        "X_train": train[features].to_numpy(dtype=float),
        "X_test": test[features].to_numpy(dtype=float),
        "time_train": train[duration].to_numpy(dtype=float),
        "time_test": test[duration].to_numpy(dtype=float),
        "event_train": train[event].to_numpy().astype(bool),
        "event_test": test[event].to_numpy().astype(bool),
    }


def loop_main(splits_wd: Path, out: Path) -> None:
    """The timed plain loop (a process of its own): every (model, fold) pair of the config
    on the split stage's folds in ``splits_wd``, two worker processes; records to ``out``."""
    import yaml
    from joblib import Parallel, delayed

    cfg = yaml.safe_load((splits_wd / "config" / "config.yaml").read_text())
    schema = json.loads((splits_wd / "results/data/schema.json").read_text())
    grid = json.loads((splits_wd / "results/splits/time_grid.json").read_text())
    dirs = sorted((splits_wd / "results/splits").glob("fold_*"), key=lambda p: int(p.name[5:]))
    folds = {
        int(d.name[5:]): _read_fold(d, schema["duration_col"], schema["event_col"]) for d in dirs
    }
    models = {
        name: dict(spec.get("params") or {})
        for name, spec in cfg["models"].items()
        if (spec or {}).get("enabled", True)
    }
    seed = int(cfg["cv"]["seed"])
    records = Parallel(n_jobs=2)(
        delayed(_loop_task)(model, params, k, fold, grid, seed)
        for model, params in models.items()
        for k, fold in folds.items()
    )
    out.write_text(json.dumps(records))


# --------------------------------------------------------------------------- the runs
def _snakemake_steps(wd: Path) -> int:
    """Jobs of the last Snakemake run in ``wd`` (its log's "N of N steps")."""
    logs = sorted((wd / ".snakemake" / "log").glob("*.snakemake.log"))
    found = re.findall(r"(\d+) of (\d+) steps", logs[-1].read_text()) if logs else []
    return int(found[-1][1]) if found else 0


def _remove(wd: Path, keep: bool) -> None:
    if not keep and wd.exists():
        shutil.rmtree(wd)


def ensure_demo_csv(keep: bool) -> None:
    """Export ``resources/demo/flchain.csv`` (shared by every work dir) if missing; untimed."""
    from bench_cv import make_workdir, snakemake

    if not (REPO / DEMO_CSV).exists():
        wd = make_workdir("small_export")
        snakemake(wd, "--cores", "1", DEMO_CSV)
        _remove(wd, keep)


def prepare_splits(table: str) -> Path:
    """The split stage of ``table`` in its own work dir (untimed): the loop's folds."""
    from bench_cv import make_workdir, snakemake

    wd = make_workdir(f"small_{table}_splits")
    snakemake(wd, "--cores", "2", *TABLES[table], "--", "results/splits/time_grid.json")
    return wd


def run_loop(table: str, rep: int, splits_wd: Path) -> tuple[dict, pd.DataFrame]:
    """One timed loop process; its row and its per-(model, fold) metrics."""
    from bench_cv import load1

    out = splits_wd / f"loop_{rep}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "_loop", str(splits_wd), str(out)]
    load_before = load1()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    load_after = load1()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-6000:]}")
    records = json.loads(out.read_text())
    metrics = pd.DataFrame(
        [{"model": r["model"], "fold": r["fold"], **r["metrics"]} for r in records]
    )
    row = {"table": table, "version": "loop", "repeat": rep, "wall_s": wall,
           "load_before": load_before, "load_after": load_after,
           "median_job_overhead_s": np.nan, "jobs": len(records)}  # fmt: skip
    return row, metrics


def run_workflow(
    table: str, rep: int, splits_wd: Path | None, keep: bool
) -> tuple[dict, pd.DataFrame]:
    """One timed workflow run to the leaderboard in a fresh work dir; its row and metrics."""
    from bench_cv import collect_jobs, make_workdir, snakemake

    wd = make_workdir(f"small_{table}_workflow_{rep}")
    run = snakemake(wd, "--cores", "2", *TABLES[table], "--", LEADERBOARD)
    cv = collect_jobs(wd).query("stage == 'cv'")
    overhead = cv.wall_s - cv[["fit_s", "predict_s", "score_s"]].fillna(0.0).sum(axis=1)
    long = pd.read_csv(wd / "results/cv_metrics.csv")
    metrics = long.pivot_table(index=["model", "fold"], columns="metric", values="value")
    if splits_wd is not None:  # the loop's folds must be this run's folds
        ours = pd.read_parquet(wd / "results/splits/folds.parquet")
        theirs = pd.read_parquet(splits_wd / "results/splits/folds.parquet")
        if not ours.equals(theirs):
            print(f"WARNING: {table} workflow run {rep} made other folds than the loop's")
    if (cv.status != "ok").any():
        print(f"WARNING: {table} workflow run {rep}: {(cv.status != 'ok').sum()} failed fits")
    row = {"table": table, "version": "workflow", "repeat": rep, "wall_s": run["wall_s"],
           "load_before": run["load_before"], "load_after": run["load_after"],
           "median_job_overhead_s": float(overhead.median()),
           "jobs": _snakemake_steps(wd)}  # fmt: skip
    _remove(wd, keep)
    return row, metrics.reset_index()


def run_make(label: str, src: Path, rep: int, keep: bool) -> dict:
    """One timed ``snakemake --cores 2`` (rule all, demo config) of the code in ``src``."""
    from bench_cv import snakemake
    from bench_stats_cost import _workdir

    wd = _workdir(src, f"small_make_run_{label}_{rep}")
    run = snakemake(wd, "--cores", "2")
    row = {"table": "make_run", "version": label, "repeat": rep, "wall_s": run["wall_s"],
           "load_before": run["load_before"], "load_after": run["load_after"],
           "median_job_overhead_s": np.nan, "jobs": _snakemake_steps(wd)}  # fmt: skip
    _remove(wd, keep)
    return row


# --------------------------------------------------------------------------- summary
def agreement(loop: dict[str, pd.DataFrame], flow: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Mean of each check metric per table and model, from the loop and from the workflow."""
    rows = []
    for table in loop.keys() & flow.keys():
        a = loop[table].groupby("model")[list(CHECK_METRICS)].mean()
        b = flow[table].groupby("model")[list(CHECK_METRICS)].mean()
        for model in a.index.intersection(b.index):
            for metric in CHECK_METRICS:
                x, y = a.at[model, metric], b.at[model, metric]
                rows.append({"table": table, "model": model, "metric": metric, "loop": x,
                             "workflow": y, "abs_diff": abs(x - y)})  # fmt: skip
    return pd.DataFrame(rows, columns=["table", "model", "metric", "loop", "workflow", "abs_diff"])


def summary(table: pd.DataFrame, before: str) -> str:
    """Medians, ratios and the issue's targets."""
    lines = []
    med = table.groupby(["table", "version"]).wall_s.median()
    for name in table.table.unique():
        if name == "make_run":
            continue
        part = table[table.table == name]
        loop = med.get((name, "loop"), np.nan)
        flow = med.get((name, "workflow"), np.nan)
        overhead = part[part.version == "workflow"].median_job_overhead_s.median()
        lines.append(
            f"{name}: loop {loop:.1f} s, workflow {flow:.1f} s, ratio {flow / loop:.3f} "
            f"(target <= 1.0, aim 0.8); median per-job overhead {overhead:.2f} s (target < 0.6)"
        )
    if "make_run" in set(table.table):
        old, new = med.get(("make_run", "before"), np.nan), med.get(("make_run", "now"), np.nan)
        lines.append(
            f"make run (demo, rule all, --cores 2): before ({before}) {old:.1f} s, "
            f"now {new:.1f} s, ratio {new / old:.3f} (target < 0.5)"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def _split_list(values: list[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_loop":
        loop_main(Path(argv[1]), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), help="demo flchain")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), help="loop workflow make_run")
    parser.add_argument("--before", default=BEFORE, help="commit of the make_run 'before'")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep-work", action="store_true", help="keep the work directories")
    args = parser.parse_args(argv)
    tables, steps = _split_list(args.tables), _split_list(args.steps)
    if unknown := (set(tables) - set(TABLES)) | (set(steps) - set(STEPS)):
        parser.error(f"unknown tables/steps: {sorted(unknown)}")

    from bench_cv import WORK
    from bench_stats_cost import _source_of

    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    ensure_demo_csv(args.keep_work)
    cv_tables = tables if {"loop", "workflow"} & set(steps) else []
    splits = {t: prepare_splits(t) for t in cv_tables} if "loop" in steps else {}
    sources: dict[str, Path] = {}
    if "make_run" in steps:
        before_src = WORK / "small_before_src"
        if before_src.exists():
            shutil.rmtree(before_src)
        sources = {"before": _source_of(args.before, before_src), "now": REPO}
    rows: list[dict] = []
    loop_metrics: dict[str, pd.DataFrame] = {}
    flow_metrics: dict[str, pd.DataFrame] = {}

    def record(row: dict) -> None:
        rows.append(row)
        pd.DataFrame(rows, columns=COLUMNS).to_csv(out, index=False)
        extra = row["median_job_overhead_s"]
        print(f"{row['table']} {row['version']} {row['repeat']}: {row['wall_s']:.1f} s, "
              f"load {row['load_before']:.2f} -> {row['load_after']:.2f}, {row['jobs']} jobs"
              + ("" if np.isnan(extra) else f", median job overhead {extra:.2f} s"),
              flush=True)  # fmt: skip

    for rep in range(args.repeats):
        for table in cv_tables:
            if "loop" in steps:
                row, loop_metrics[table] = run_loop(table, rep, splits[table])
                record(row)
            if "workflow" in steps:
                row, flow_metrics[table] = run_workflow(
                    table, rep, splits.get(table), args.keep_work
                )
                record(row)
        for label, src in sources.items():
            record(run_make(label, src, rep, args.keep_work))

    check = agreement(loop_metrics, flow_metrics)
    if not check.empty:
        check.to_csv(out.with_name(f"{out.stem}_metrics.csv"), index=False)
        print("mean over folds, loop vs workflow:")
        print(check.pivot_table(index=["table", "model"], columns="metric",
                                values=["loop", "workflow"]).round(4).to_string())  # fmt: skip
    print(summary(pd.DataFrame(rows, columns=COLUMNS), args.before))
    for wd in [*splits.values(), *([WORK / "small_before_src"] if sources else [])]:
        _remove(wd, args.keep_work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
