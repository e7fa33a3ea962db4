# Config validation, helpers, input functions and wildcard constraints.
import os
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.sourcecache import LocalSourceFile
from snakemake.utils import min_version

min_version("9.0")


def workflow_dir():
    """This repository's top folder, from this file's folder (rules/): not
    `workflow.basedir`, the folder of the *main* Snakefile, which is the user's project when
    this workflow runs as a module (`module ...: snakefile: ".../Snakefile"`, docs/module.md)."""
    here = workflow.current_basedir
    if not isinstance(here, LocalSourceFile):
        source = here.get_path_or_uri(secret_free=True).rpartition("/")[0]  # above rules/
        raise WorkflowError(
            "survival-workflow needs a local copy of its files (its Python package is imported "
            f"while the DAG is built), not {source}: git clone the repository and give the "
            'module `snakefile: "<clone>/Snakefile"` (docs/module.md)'
        )
    return Path(here.get_path_or_uri(secret_free=True)).resolve().parent


WORKFLOW_DIR = workflow_dir()
SCRIPTS_DIR = WORKFLOW_DIR / "scripts"
sys.path.insert(0, str(SCRIPTS_DIR))  # the package, for the DAG-time checks below
# ... and for the jobs: Snakemake's script preamble appends the script's folder to sys.path,
# after site-packages, where an installed survival_framework (`make venv` installs a checkout
# editable, maybe another one than this workflow) would shadow this workflow's own package.
# PYTHONPATH comes first; the jobs (local or Slurm) inherit it.
_paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
if _paths[0] != str(SCRIPTS_DIR):
    # set, not required from the user: update() (Snakemake's lint reads os.environ[...] as a
    # variable the user must provide, an `envvars:` case)
    os.environ.update(PYTHONPATH=os.pathsep.join([str(SCRIPTS_DIR), *filter(None, _paths)]))
from survival_framework.codehash import code_hash  # noqa: E402
from survival_framework.configcheck import ConfigError, check_and_complete  # noqa: E402
from survival_framework.contract import PREDICT_SUFFIXES  # noqa: E402
from survival_framework.demo import DEMO_DATASETS  # noqa: E402
from survival_framework.engine import select_etl_engine, select_job_worker  # noqa: E402
from survival_framework.integrity import find_broken, input_changed, mark_broken  # noqa: E402
from survival_framework.modelspec import read_registry  # noqa: E402
from survival_framework.resources import request_mb  # noqa: E402

SCHEMA = WORKFLOW_DIR / "config" / "schema.yaml"
# The registry read from models.py's source: importing it (scikit-learn) would add a second
# to every invocation, every Slurm job included (survival_framework.modelspec).
REGISTRY = read_registry()
MODEL_NAMES = tuple(REGISTRY)


def check_configuration():
    """Strict config: unknown keys and model names/params stop the run before any job,
    with one line naming the key, its path and the closest valid one."""
    check_and_complete(config, yaml.safe_load(SCHEMA.read_text()), REGISTRY)


try:
    check_configuration()
except ConfigError as exc:
    logger.error(str(exc))
    sys.exit(1)

MODELS = [name for name, spec in config["models"].items() if spec["enabled"]]
# Resample ids: fold k of cross-validation repeat r is resample r * n_folds + k, the {fold}
# of results/splits/fold_{fold}/ and results/cv/{model}/fold_{fold}/ (survival_framework.splits);
# with cv.n_repeats 1 these are the folds 0 .. n_folds-1.
FOLDS = list(range(config["cv"]["n_folds"] * config["cv"]["n_repeats"]))

# Content decides, not time stamps (survival_framework.integrity): an input whose content
# differs from the one results/data/ was made from, and an unreadable intermediate, are made
# older than what they feed, so the rules downstream run again (instead of nothing rerunning,
# or of the jobs reading a broken file failing and losing their valid outputs).
stale_input = input_changed(
    config["data"]["path"],
    "results/data/provenance.json",
    cache=".snakemake/survival-workflow/input_sha256.json",
)
if stale_input:
    logger.warning(f"{config['data']['path']}: {stale_input}; validate_data runs again")
    mark_broken(["results/data/provenance.json"])
for stage in ("data", "splits", "cv"):
    for broken, reason in find_broken(Path("results") / stage):
        logger.warning(f"{broken}: {reason}; the rule that writes it runs again")
        mark_broken([broken])


wildcard_constraints:
    model="|".join(MODELS),
    fold=r"\d+",
    dataset="|".join(DEMO_DATASETS),


def code_version(script):
    """Hash of the package modules that scripts/<script> imports, directly or indirectly
    (survival_framework.codehash); a param, so editing a module reruns exactly the rules
    whose scripts can run it."""
    return code_hash(SCRIPTS_DIR / script)


def input_size_mb(path):
    """Size of a file in MB (0 if it does not exist yet, e.g. during a dry run)."""
    return os.path.getsize(path) / 1e6 if os.path.exists(path) else 0.0


def data_size_mb():
    return input_size_mb(config["data"]["path"])


# ETL engine of the split stage, decided here, once, from execution.* and the size of
# data.path (0 MB while it does not exist yet); rules/spark.smk turns it into a ruleorder.
# `auto` picks Spark or Dask only for a cluster (a Spark master, a Dask scheduler address);
# it falls back to pandas, with one log line saying why, when the engine is missing.
ETL_ENGINE, ETL_REASON = select_etl_engine(
    config["execution"]["etl_engine"],
    data_size_mb(),
    config["execution"]["size_threshold_mb"],
    config["execution"]["spark_master"],
    config["execution"]["dask_scheduler"],
)
(logger.warning if "falling back" in ETL_REASON else logger.info)(
    f"ETL engine: {ETL_ENGINE} ({ETL_REASON})"
)


def jobs_run_here():
    """None when this Snakemake process runs the jobs itself, as its children on this
    machine with its own Python; else why not."""
    if not sys.platform.startswith("linux"):
        return f"jobs run fresh on {sys.platform} (the worker needs Linux)"
    if not workflow.local_exec or workflow.remote_exec:
        return "jobs run on a cluster executor"
    if workflow.deployment_settings.deployment_method:
        return "jobs run in conda environments or containers"
    return None


# Job worker (survival_framework.worker): on small inputs, local jobs fork from one process
# that imported the libraries once instead of each starting a fresh interpreter. Decided
# here from execution.job_worker and the input size; started by `onstart` (below), stopped
# by `onsuccess`/`onerror`.
WARM_JOBS, WARM_REASON = select_job_worker(
    config["execution"]["job_worker"], data_size_mb(), jobs_run_here()
)
(logger.warning if "but" in WARM_REASON else logger.info)(
    f"Job worker: {'warm' if WARM_JOBS else 'fresh processes'} ({WARM_REASON})"
)


def start_job_worker(snakemake_log):
    """Start the run's job worker; its log beside Snakemake's (.snakemake/log/)."""
    if not WARM_JOBS or workflow.touch:
        return
    from survival_framework.worker import start_worker

    if isinstance(snakemake_log, (list, tuple)):  # Snakemake 9: the list of its log files
        snakemake_log = snakemake_log[0] if snakemake_log else None
    log = Path(snakemake_log or ".snakemake/log/snakemake.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    if start_worker(log.with_name(log.name.removesuffix(".snakemake.log") + ".worker.log")) is None:
        logger.warning("the job worker did not start: jobs run in fresh processes")


def stop_job_worker():
    if WARM_JOBS:
        from survival_framework.worker import stop_worker

        stop_worker()


def mem_mb_spark(wildcards, attempt):
    """Spark driver heap (execution.spark_memory, e.g. 4g or 512m) plus 3 GB per attempt
    for the JVM's off-heap memory and the Python side (make bench-etl, spark_memory 4g:
    peak RSS 4.8 GB at 1M rows, 6.3 GB at 10M)."""
    text = str(config["execution"]["spark_memory"]).strip().lower()
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024**2}
    mb = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    return int(mb + 3000 * attempt)


# Memory requests grow with the input: survival_framework.resources holds the measured
# linear model (fixed MB + MB per MB of Parquet input) of each stage's peak RSS
# (docs/benchmarks.md#memory). Profiles may override.
def mem_mb_validate(wildcards, input, attempt):
    return request_mb("validate_data", input.size_mb, attempt)


def mem_mb_split(wildcards, input, attempt):
    return request_mb("split_data", sum(input_size_mb(f) for f in input), attempt)


def mem_mb_dask(wildcards, input, threads, attempt):
    """The Dask split's measured process tree with 2 workers (survival_framework.resources),
    plus 1 GB for each worker beyond 2 (one per thread; shared as their memory limit)."""
    inputs = sum(input_size_mb(f) for f in input)
    return request_mb("split_data_dask", inputs, attempt) + 1000 * max(0, threads - 2)


def mem_mb_fit(wildcards, input, attempt):
    return request_mb("fit_model", input.size_mb, attempt)


def mem_mb_final(wildcards, input, attempt):
    return request_mb("fit_final_model", input.size_mb, attempt)


def attempt_number(wildcards, attempt):
    """Not a request: the attempt number (1, 2, ...), which a job script does not otherwise
    know. With it, a retry of a job that stopped with an input error on the same inputs
    exits at once, silently (survival_framework.job.rule_job); a job killed for lack of
    memory is retried as usual. Executors pass on only the resources they know."""
    return attempt


def runtime_fit(wildcards, input, attempt):
    return int((20 + input.size_mb) * attempt)


def model_params(wildcards):
    return config["models"][wildcards.model]["params"]


# --- nested tuning (rules/tuning.smk; survival_framework.tuning, docs/tuning.md) ---
# A model with a `tune` space has its candidates listed here, once, from the space, the
# seed and its name (survival_framework.search_space): every outer fold and every job sees
# the same list. Models without one have no tuning job and no selection input. One job
# scores a group of candidates: one candidate, or all those that differ only in the
# model's regularisation path parameter (Coxnet's alpha, read from the registry).
TUNED = {m: config["models"][m]["tune"] for m in MODELS if "tune" in config["models"][m]}
if TUNED:
    from survival_framework.modelspec import read_path_params
    from survival_framework.search_space import candidate_groups, candidates

    CANDIDATES = {
        m: candidates(space, config["tuning"]["n_candidates"], config["cv"]["seed"], m)
        for m, space in TUNED.items()
    }
    _PATH_PARAMS = read_path_params()
    CANDIDATE_GROUPS = {m: candidate_groups(c, _PATH_PARAMS.get(m)) for m, c in CANDIDATES.items()}
else:
    CANDIDATES, CANDIDATE_GROUPS = {}, {}
INNER_FOLDS = list(range(config["tuning"]["inner_folds"]))


wildcard_constraints:
    group=r"\d+",
    resample=r"\d+|all",


def inner_split(part):
    """Inner split files of {resample} (an outer resample, or all rows): one per inner fold."""
    return expand(f"results/tuning/splits/fold_{{{{resample}}}}/fold_{{i}}/{part}", i=INNER_FOLDS)


def outer_folds_input(wildcards):
    """An outer resample's inner CV reads the outer folds; the final model's (all) not."""
    return [] if wildcards.resample == "all" else "results/splits/folds.parquet"


def group_candidates(wildcards):
    """Candidate group {group}: its candidates' indices and the model's params with each
    candidate's values set."""
    model = wildcards.model
    indices = CANDIDATE_GROUPS[model][int(wildcards.group)]
    params = config["models"][model]["params"]
    return {"indices": indices, "params": [{**params, **CANDIDATES[model][c]} for c in indices]}


def candidate_scores(wildcards):
    n = len(CANDIDATE_GROUPS[wildcards.model])
    return expand(
        "results/tuning/{model}/fold_{resample}/group_{g}.json",
        model=wildcards.model,
        resample=wildcards.resample,
        g=range(n),
    )


def selection_input(wildcards):
    """A tuned model's CV fit reads its fold's selection; an untuned one nothing more."""
    if wildcards.model not in TUNED:
        return []
    return f"results/tuning/{wildcards.model}/fold_{wildcards.fold}/selection.json"


def final_selection_input(wildcards):
    """A tuned model's final fit reads the selection of the inner CV on every row."""
    if wildcards.model not in TUNED:
        return []
    return f"results/tuning/{wildcards.model}/fold_all/selection.json"


def final_selections_named(wildcards):
    """The best model is known only after the CV: every tuned model's final selection,
    as input selection_<model>."""
    return {f"selection_{m}": f"results/tuning/{m}/fold_all/selection.json" for m in TUNED}


def tuning_selections(wildcards):
    """The outer resamples' selections of every tuned model (the report's tuning plot)."""
    return expand("results/tuning/{model}/fold_{fold}/selection.json", model=TUNED, fold=FOLDS)


def tuning_targets():
    """The nested-tuning targets of `all`: the plot, when some model is tuned."""
    return ["results/report/tuning.png"] if TUNED else []


def mem_mb_tune(wildcards, input, attempt):
    """One inner fold's matrices at a time: the fit model's line on their share."""
    return request_mb("fit_model", input.size_mb / max(1, len(INNER_FOLDS)), attempt)


def cv_metrics_inputs(wildcards):
    return expand("results/cv/{model}/fold_{fold}/metrics.json", model=MODELS, fold=FOLDS)


# --- diagnostics, final model, predictions, report (rules/ph.smk, final.smk, report.smk) ---

NEW_DATA_DIR = "data/new"


wildcard_constraints:
    name=r"[^/]+",


def all_model_params():
    """Parameters of every enabled model (the best model is only known after the CV)."""
    return {m: config["models"][m]["params"] for m in MODELS}


def final_targets():
    """Default final model outputs: the leaderboard's best (final.models: best) or all."""
    if config["final"]["models"] == "best":
        return ["results/final/best/model.joblib", "results/final/best/provenance.json"]
    return expand("results/final/{model}/{f}", model=MODELS, f=["model.joblib", "provenance.json"])


def predict_model_path():
    """The artifact that scores new data: results/final/<predict.model>/model.joblib."""
    return f"results/final/{config['predict']['model']}/model.joblib"


def predict_input_file(wildcards):
    """data/new/{name}.parquet|.pq|.csv, or the file given with --config predict_input=..."""
    extra = config.get("predict_input")
    if extra and Path(extra).stem == wildcards.name:
        return extra
    for suffix in sorted(PREDICT_SUFFIXES, key=".csv".__eq__):  # Parquet first
        path = f"{NEW_DATA_DIR}/{wildcards.name}{suffix}"
        if os.path.exists(path):
            return path
    return f"{NEW_DATA_DIR}/{wildcards.name}.csv"  # missing: Snakemake names it


def predict_targets(wildcards):
    """Predictions for every file in data/new/ and for --config predict_input=..."""
    names = {p.stem for p in Path(NEW_DATA_DIR).glob("*") if p.suffix.lower() in PREDICT_SUFFIXES}
    if config.get("predict_input"):
        names.add(Path(config["predict_input"]).stem)
    if not names:
        raise ValueError(
            f"nothing to predict: put CSV/Parquet files in {NEW_DATA_DIR}/ or pass "
            "--config predict_input=path/to/new.csv"
        )
    return expand("results/predictions/{name}.parquet", name=sorted(names))


def cv_predictions_inputs(wildcards):
    return expand("results/cv/{model}/fold_{fold}/predictions.parquet", model=MODELS, fold=FOLDS)


# --- end of run: failed model x fold fits (onsuccess/onerror) ---
# With strict: false a failing fit is recorded in its metrics.json, not raised
# (survival_framework.cv): Snakemake sees a successful job. These hooks end the console output
# of a run whose targets depend on the CV results with the failed fits among them, and fail
# the run (exit status 1) if no fit of any model succeeded. The outputs stay: the leaderboard,
# written as usual, then ranks no model (outputs of a failed aggregate_metrics job would be
# deleted). Snakemake runs no hook when there is nothing to be done.
import json  # noqa: E402

# The names these rules get in the main workflow (`use rule * from ... as prefix_*`).
CV_RULES = {workflow.modifier.modify_rulename(r) for r in ("fit_model", "aggregate_metrics")}


def run_uses_cv():
    """Whether this run's jobs (run now or already up to date) include the CV fits or the
    aggregation; True if Snakemake's DAG cannot be inspected."""
    dag = getattr(workflow, "dag", None)
    if dag is None:
        return True
    return any(job.rule.name in CV_RULES for job in dag.jobs)


def report_cv_failures(fail_if_none_ok):
    """Log the failed model x fold fits (enabled models, configured folds); with
    ``fail_if_none_ok``, raise if none of them succeeded."""
    paths = [p for p in cv_metrics_inputs(None) if os.path.exists(p)]
    if not paths or not run_uses_cv():
        return
    from survival_framework.aggregate import failure_summary

    records = [json.loads(Path(p).read_text()) for p in paths]
    summary = failure_summary(records)
    if summary is None:
        return
    if any(r["status"] == "ok" for r in records):
        logger.warning(summary)
        return
    logger.error(summary)
    message = (
        "no model x fold fit succeeded: results/leaderboard.csv ranks no model "
        "(errors above and in results/cv/<model>/fold_<k>/metrics.json)"
    )
    if fail_if_none_ok:
        raise WorkflowError(message)
    logger.error(message)


def retire_stale_summaries():
    """After a failed run, a leaderboard older than (or missing some of) the fold results
    it summarises is renamed *.stale.csv: never mistaken for the current one, and rebuilt
    by the next run."""
    fold_results = cv_metrics_inputs(None)
    for summary in ("results/leaderboard.csv", "results/cv_metrics.csv"):
        if not os.path.exists(summary):
            continue
        made = os.path.getmtime(summary)
        stale = [p for p in fold_results if not os.path.exists(p) or os.path.getmtime(p) > made]
        if stale:
            moved = summary.removesuffix(".csv") + ".stale.csv"
            os.replace(summary, moved)
            logger.warning(
                f"{summary} is older than {len(stale)} fold result(s) (e.g. {stale[0]}, "
                f"missing or rewritten by this run); moved to {moved}"
            )


def on_start(log):
    start_job_worker(log)


def on_success():
    stop_job_worker()
    report_cv_failures(fail_if_none_ok=True)


def on_error():
    stop_job_worker()
    report_cv_failures(fail_if_none_ok=False)
    retire_stale_summaries()


def chain_hooks_of_the_main_workflow():
    """As a module (docs/module.md), this workflow's `onstart:`/`onsuccess:`/`onerror:` below
    are ignored: Snakemake runs only the main Snakefile's handlers. A run where every fit
    failed would then end with exit status 0 and no summary (and no job worker would start). So a module adds its hooks to the main
    workflow's handlers (after those defined so far; a handler the main Snakefile defines
    after its `use rule` statement replaces them). Once, however many `use rule` statements
    read this file."""
    if workflow.modifier.is_main_snakefile():
        return
    hooks = (("_onstart", on_start), ("_onsuccess", on_success), ("_onerror", on_error))
    for name, ours in hooks:
        theirs = getattr(workflow, name)
        if getattr(theirs, "survival_workflow", False):
            continue

        def handler(log, theirs=theirs, ours=ours, name=name):
            if name == "_onstart":  # ours first: the worker must listen before any job runs
                ours(log)
                theirs(log)
            else:
                theirs(log)
                ours()

        handler.survival_workflow = True
        setattr(workflow, name, handler)


chain_hooks_of_the_main_workflow()


onstart:
    on_start(log)


onsuccess:
    on_success()


onerror:
    on_error()
