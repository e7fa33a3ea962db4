# Config validation, helpers, input functions and wildcard constraints.
import hashlib
import os
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../config/schema.yaml")

PKG_DIR = Path(workflow.basedir) / "scripts" / "survival_framework"
MODELS = [name for name, spec in config["models"].items() if spec["enabled"]]
FOLDS = list(range(config["cv"]["n_folds"]))
DEMO_DATASETS = ["flchain", "gbsg2", "whas500", "veterans", "aids"]

if not MODELS:
    raise ValueError("config: every model is disabled; enable at least one under 'models'")


wildcard_constraints:
    model="|".join(MODELS),
    fold=r"\d+",
    dataset="|".join(DEMO_DATASETS),


def code_version(*modules):
    """Hash of the package modules a rule depends on, passed as a param so that a code
    change reruns exactly the rules that use the changed module."""
    h = hashlib.sha256()
    for name in sorted(modules):
        h.update((PKG_DIR / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def input_size_mb(path):
    """Size of a file in MB (0 if it does not exist yet, e.g. during a dry run)."""
    return os.path.getsize(path) / 1e6 if os.path.exists(path) else 0.0


def data_size_mb():
    return input_size_mb(config["data"]["path"])


# Memory requests grow with the input (a fold job holds one fold's train and test matrices
# plus the model; ~40 bytes per training cell for the largest model). Profiles may override.
def mem_mb_validate(wildcards, input, attempt):
    return int((1000 + 12 * input.size_mb) * attempt)


def mem_mb_split(wildcards, input, attempt):
    return int((1000 + 30 * sum(input_size_mb(f) for f in input)) * attempt)


def mem_mb_fit(wildcards, input, attempt):
    return int((1500 + 40 * input.size_mb) * attempt)


def runtime_fit(wildcards, input, attempt):
    return int((20 + input.size_mb) * attempt)


def model_params(wildcards):
    return config["models"][wildcards.model]["params"]


def cv_metrics_inputs(wildcards):
    return expand("results/cv/{model}/fold_{fold}/metrics.json", model=MODELS, fold=FOLDS)
