"""Strict configuration: unknown keys, model names and parameters stop before any job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_workflow, snakemake
from survival_framework.configcheck import (
    ConfigError,
    check_config,
    check_settings,
    model_settings,
    schema_errors,
    unknown_keys,
)
from survival_framework.models import MODEL_NAMES, check_params, get_model
from survival_framework.modelspec import read_registry

REGISTRY = read_registry()

SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _objects(schema: dict, path: str = "") -> list[tuple[str, dict]]:
    found = [(path, schema)] if schema.get("type") == "object" else []
    for key, sub in schema.get("properties", {}).items():
        found += _objects(sub, f"{path}.{key}" if path else key)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        found += _objects(extra, f"{path}.<name>")
    return found


def test_every_level_of_the_schema_rejects_unknown_keys():
    for path, obj in _objects(SCHEMA):
        if path.endswith(".params"):
            continue  # checked against the estimator's signature instead
        assert obj.get("additionalProperties") is not True, path
        assert "additionalProperties" in obj, path


def test_every_key_of_the_shipped_configs_is_known():
    for name in ("config.yaml", "production.yaml", "test/config.yaml"):
        cfg = yaml.safe_load((REPO / "config" / name).read_text())
        assert list(unknown_keys(cfg, SCHEMA)) == [], name
        model_settings(cfg.get("models"), REGISTRY)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            {"cv": {"nfolds": 3}},
            "config: unknown key 'cv.nfolds'; did you mean 'cv.n_folds'? "
            "(valid under 'cv': min_rows_per_fold, n_folds, n_repeats, seed)",
        ),
        (
            {"evaluation": {"ntimes": 3}},
            "config: unknown key 'evaluation.ntimes'; did you mean 'evaluation.n_times'? "
            "(valid under 'evaluation': batch_size, n_times, primary_metric, time_quantiles)",
        ),
        ({"run_typ": "sample"}, "config: unknown key 'run_typ'; did you mean 'run_type'?"),
        ({"models": {"rsf": {"enable": False}}}, "config: unknown key 'models.rsf.enable'"),
        ({"models": {"rfs": {}}}, "config: unknown model 'models.rfs'; did you mean 'models.rsf'?"),
        ({"zzz": 1}, "config: unknown key 'zzz' (valid under '<top level>': cv, data,"),
    ],
)
def test_unknown_keys_name_path_and_closest_key(cfg, message):
    with pytest.raises(ConfigError) as err:
        check_config(cfg, SCHEMA, MODEL_NAMES)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (
            "rsf",
            {"n_trees": 10},
            "model 'rsf' does not accept parameter 'n_trees'; valid parameters: n_estimators, "
            "min_samples_leaf, max_features, max_depth, max_samples, n_time_bins",
        ),
        ("gbsa", {"n_estimators": 1.5}, "model 'gbsa', parameter 'n_estimators': expected int"),
        ("coxph", {"alpha": "0.1"}, "model 'coxph', parameter 'alpha': expected float"),
        ("coxph", {"alpha": True}, "model 'coxph', parameter 'alpha': expected float"),
        (
            "coxph",
            {"ties": "exact"},
            "model 'coxph', parameter 'ties': expected 'breslow' | 'efron', got 'exact'",
        ),
        (
            "gbsa",
            {"implementation": "lightgbm"},
            "model 'gbsa', parameter 'implementation': expected 'xgboost' | 'sksurv'",
        ),
        ("rsf", {"random_state": 1}, "model 'rsf' does not accept parameter 'random_state'"),
    ],
)
def test_model_parameters_are_checked_against_the_signature(model, params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_params(model, params)
    with pytest.raises(ConfigError, match=re.escape(f"config: models.{model}.params: {message}")):
        model_settings({model: {"params": params}}, REGISTRY)


def test_valid_parameters_pass_with_yaml_types():
    check_params("coxph", {"alpha": 1, "tol": 1e-9, "solver": "sksurv"})  # int for float
    check_params("rsf", {"max_samples": None, "max_features": 0.5, "max_depth": 3})
    check_params("rsf", {"max_samples": 0.5, "n_time_bins": None})
    # what passes the check also builds the estimator
    assert get_model("rsf", max_samples=0.5, n_time_bins=None).max_samples == 0.5


def test_omitted_models_run_with_default_parameters():
    resolved = model_settings(None, REGISTRY)
    assert list(resolved) == list(MODEL_NAMES)
    assert all(spec == {"enabled": True, "params": {}} for spec in resolved.values())
    partial = model_settings({"rsf": {"enabled": False}}, REGISTRY)
    assert [m for m, s in partial.items() if s["enabled"]] == [m for m in MODEL_NAMES if m != "rsf"]
    with pytest.raises(ConfigError, match="every model is disabled"):
        model_settings({m: {"enabled": False} for m in MODEL_NAMES}, REGISTRY)


def test_source_registry_equals_the_imported_one():
    """The DAG-time reading of models.py (ast, no import) agrees with the classes."""
    from survival_framework.models import _REGISTRY, _constructor_params

    assert tuple(REGISTRY) == MODEL_NAMES
    for name, cls in _REGISTRY.items():
        assert REGISTRY[name] == _constructor_params(cls), name


def test_the_path_params_read_from_source_match_the_imported_classes():
    from survival_framework.models import MODEL_NAMES, model_path_param
    from survival_framework.modelspec import read_path_params

    expected = {m: model_path_param(m) for m in MODEL_NAMES if model_path_param(m)}
    assert read_path_params() == expected and expected["coxnet"] == "alpha"


def test_demo_config_model_params_equal_the_constructor_defaults_or_are_documented():
    """The demo's model blocks only set parameters the estimator accepts."""
    for name, spec in DEMO["models"].items():
        check_params(name, spec.get("params", {}))


def _with_defaults(**changes) -> dict:
    """The demo config with defaults filled in, then ``changes`` (dotted keys)."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = cfg
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    validate(cfg, str(REPO / "config" / "schema.yaml"))
    return cfg


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"evaluation__time_quantiles": [0.5, 0.5]},
            "config: evaluation.time_quantiles [0.5, 0.5]: the first quantile must be below "
            "the second (the grid spans the event times between them)",
        ),
        (
            {"data__event_col": "time"},
            "config: data.event_col 'time' is the same column as data.duration_col; time, event "
            "and id must be three different columns",
        ),
        (
            {"data__id_col": "event"},
            "config: data.id_col 'event' is the same column as data.event_col;",
        ),
        (
            {"data__id_col": "_row"},
            "config: data.id_col '_row' is a reserved output column name (reserved: _row, risk, "
            "median_time, surv@<t>); rename the column",
        ),
        ({"data__duration_col": "risk"}, "config: data.duration_col 'risk' is a reserved"),
        ({"data__id_col": "surv@1"}, "config: data.id_col 'surv@1' is a reserved"),
        (
            {"sample_size": 20, "cv__n_folds": 5},
            "config: sample_size 20 is too small for cv.n_folds 5 x cv.min_rows_per_fold 5 "
            "(needs at least 25 rows)",
        ),
    ],
)
def test_settings_that_cannot_work_are_rejected_with_one_line(changes, message):
    with pytest.raises(ConfigError) as err:
        check_settings(_with_defaults(**changes))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_production_run_ignores_sample_size_and_defaults_pass():
    check_settings(_with_defaults())
    check_settings(_with_defaults(sample_size=10, run_type="production"))


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"cv": {"seed": -1}}, "config: cv.seed: -1 is less than the minimum of 0"),
        ({"run_type": "full"}, "config: run_type: 'full' is not one of ['sample', 'production']"),
        ({"evaluation": {"n_times": 1}}, "config: evaluation.n_times: 1 is less than the minimum"),
        ({"evaluation": {"time_quantiles": [0.1]}}, "config: evaluation.time_quantiles: [0.1] is"),
        ({"models": {"rsf": {"enabled": "yes"}}}, "config: models.rsf.enabled: 'yes' is not of"),
    ],
)
def test_schema_violations_name_the_key(cfg, message):
    base = {"data": {"path": "x.csv", "duration_col": "t", "event_col": "e"}}
    errors = list(schema_errors({**base, **cfg}, SCHEMA))
    assert errors and errors[0].startswith(message), errors


# --- real Snakemake: the checks run when the DAG is built, before any job ---------------


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("config"))


def _dry_run(wd: Path, cfg: dict, *args: str, tmp: Path):
    user = tmp / "user.yaml"
    user.write_text(yaml.safe_dump(cfg))
    return snakemake(wd, "-n", "--cores", "1", "--configfile", str(user), *args, check=False)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("cfg", "line"),
    [
        ({"cv": {"nfolds": 3}}, "config: unknown key 'cv.nfolds'; did you mean 'cv.n_folds'?"),
        (
            {"models": {"rsf": {"params": {"n_trees": 10}}}},
            "config: models.rsf.params: model 'rsf' does not accept parameter 'n_trees'; "
            "valid parameters: n_estimators,",
        ),
        ({"cv": {"seed": -1}}, "config: cv.seed: -1 is less than the minimum of 0"),
        (
            {"evaluation": {"time_quantiles": [0.5, 0.5]}},
            "config: evaluation.time_quantiles [0.5, 0.5]: the first quantile must be below",
        ),
        (
            {"predict": {"model": "cox"}},
            "config: predict.model 'cox' is not an enabled model; use 'best' or one of coxph,",
        ),
    ],
)
def test_snakemake_stops_with_one_line(workflow_copy, tmp_path, cfg, line):
    proc = _dry_run(workflow_copy, cfg, tmp=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    lines = [x for x in out.splitlines() if x.startswith("config:")]
    assert len(lines) == 1 and lines[0].startswith(line), out[-2000:]
    assert "Traceback" not in out and "Building DAG" not in out
    assert not (workflow_copy / "results" / "data").exists()


@pytest.mark.integration
def test_config_with_only_data_runs_every_model_from_another_directory(workflow_copy, tmp_path):
    """A deployed workflow: Snakefile elsewhere, the user's directory holds one small
    config with the data keys only; the demo config is not found there."""
    user = tmp_path / "user.yaml"
    user.write_text(
        "data:\n  path: resources/demo/gbsg2.csv\n  duration_col: time\n  event_col: event\n"
    )
    proc = snakemake(
        workflow_copy,
        "-s",
        str(workflow_copy / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(user),
        "-n",
        "--cores",
        "1",
        "results/leaderboard.csv",
    )
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    assert (
        int(stats["fit_model"])
        == len(MODEL_NAMES) * SCHEMA["properties"]["cv"]["properties"]["n_folds"]["default"]
    )


def test_primary_metric_choices_are_the_ranked_metrics():
    """The schema's choices of evaluation.primary_metric are the metrics with a direction
    (survival_framework.metrics.HIGHER_IS_BETTER), in its order: one list of names."""
    from survival_framework.metrics import HIGHER_IS_BETTER

    enum = SCHEMA["properties"]["evaluation"]["properties"]["primary_metric"]["enum"]
    assert enum == [m for m, d in HIGHER_IS_BETTER.items() if d is not None]
