"""Strict checks of the workflow's configuration, run when the DAG is built.

:func:`unknown_keys` finds keys that ``config/schema.yaml`` does not define (jsonschema's own
message for ``additionalProperties: false`` names neither the path nor a fix), and
:func:`model_settings` resolves the ``models`` block against the registry: unknown model
names and parameters are errors naming the valid ones, an omitted model runs with its
default parameters. Every problem is a :class:`ConfigError` with a one-line message.
Only the standard library is imported here; the registry is passed in.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from .contract import MEDIAN_COL, RISK_COL, ROW_COL, SURV_PREFIX
from .modelspec import check_params

__all__ = [
    "ConfigError",
    "check_and_complete",
    "check_config",
    "check_predict_model",
    "check_settings",
    "fill_defaults",
    "model_settings",
    "schema_errors",
    "unknown_keys",
]


class ConfigError(ValueError):
    """An invalid configuration: one line naming the key, its path and the problem."""


def _closest(key: str, valid: list[str]) -> str | None:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not match:  # 'nfolds' vs 'n_folds': compare without separators too
        bare = {v.replace("_", ""): v for v in valid}
        match = [bare[m] for m in difflib.get_close_matches(key.replace("_", ""), bare, n=1)]
    return match[0] if match else None


def _unknown(path: str, key: str, valid: list[str]) -> str:
    where = f"'{path}.{key}'" if path else f"'{key}'"
    hint = _closest(key, valid)
    fix = f"; did you mean '{path + '.' if path else ''}{hint}'?" if hint else ""
    valid_text = ", ".join(sorted(valid))
    return f"config: unknown key {where}{fix} (valid under '{path or '<top level>'}': {valid_text})"


def unknown_keys(config: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Messages for the keys of ``config`` that ``schema`` does not define, depth first.

    Parameters
    ----------
    config : Any
        The loaded configuration (or a part of it).
    schema : Mapping
        The JSON schema (or the part describing ``config``): ``properties`` lists the
        valid keys, ``additionalProperties`` (a schema) describes the entries of free-form
        mappings such as ``models``.
    path : str
        Dotted path of ``config`` in the whole configuration.

    Yields
    ------
    str
        ``"config: unknown key 'cv.nfolds'; did you mean 'cv.n_folds'? (...)"``.
    """
    if not isinstance(config, Mapping):
        return
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, value in config.items():
        key = str(key)
        sub = f"{path}.{key}" if path else key
        if key in props:
            yield from unknown_keys(value, props[key], sub)
        elif isinstance(extra, Mapping):
            yield from unknown_keys(value, extra, sub)
        elif extra is False:
            yield _unknown(path, key, list(props))


def _check_model_names(models: Any, names: tuple[str, ...]) -> None:
    for name in models if isinstance(models, Mapping) else ():
        if name not in names:
            hint = _closest(str(name), list(names))
            fix = f"; did you mean 'models.{hint}'?" if hint else ""
            raise ConfigError(
                f"config: unknown model 'models.{name}'{fix} (registry models: {', '.join(names)})"
            )


def check_config(
    config: Mapping[str, Any], schema: Mapping[str, Any], model_names: tuple[str, ...]
) -> None:
    """Raise :class:`ConfigError` for the first unknown key or model name of ``config``.

    Run before the schema validation, whose messages name neither path nor fix.
    """
    for message in unknown_keys(config, schema):
        raise ConfigError(message)
    _check_model_names(config.get("models"), model_names)


def _tune_space(
    name: str, tune: Mapping[str, Any] | None, registry: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    """``models.<name>.tune`` checked (:func:`.search_space.parse_space`) and its values
    against the model's parameters (every grid value, both ends of a range)."""
    if tune is None:
        return None
    from .search_space import parse_space

    try:
        space = parse_space(name, tune)
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    for param, spec in space.items():
        values = spec if isinstance(spec, list) else [spec["low"], spec["high"]]
        for value in values:
            try:
                check_params(name, {param: value}, registry)
            except ValueError as exc:
                raise ConfigError(f"config: models.{name}.tune.{param}: {exc}") from None
    return space


def model_settings(
    models: Mapping[str, Any] | None, registry: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The ``models`` block resolved against the registry.

    Parameters
    ----------
    models : Mapping or None
        ``config["models"]``: ``{name: {"enabled": bool, "params": {...}}}``; missing
        entries and keys take their defaults (enabled, default parameters).
    registry : Mapping
        ``{model name: {parameter: type hint}}`` in registry order
        (:func:`survival_framework.modelspec.read_registry`).

    Returns
    -------
    dict
        ``{name: {"enabled": bool, "params": dict}}`` for every registry model, in
        registry order, plus ``"tune"`` (the checked search space) for a tuned model.

    Raises
    ------
    ConfigError
        For an unknown model name, an invalid parameter or when every model is disabled.
    """
    models, names = dict(models or {}), tuple(registry)
    _check_model_names(models, names)
    resolved = {}
    for name in names:
        spec = dict(models.get(name) or {})
        params = dict(spec.get("params") or {})
        try:
            check_params(name, params, registry)
        except ValueError as exc:
            raise ConfigError(f"config: models.{name}.params: {exc}") from None
        resolved[name] = {"enabled": bool(spec.get("enabled", True)), "params": params}
        space = _tune_space(name, spec.get("tune"), registry)
        if space is not None:  # untuned models keep exactly their former settings
            resolved[name]["tune"] = space
    if not any(spec["enabled"] for spec in resolved.values()):
        raise ConfigError("config: every model is disabled; set models.<name>.enabled: true")
    return resolved


def schema_errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterator[str]:
    """One line per violation of ``schema`` (type, range, enum ...), naming the key's path.

    Snakemake's own validation reports the first error on several lines without the
    path; this runs the same JSON-schema check (``jsonschema``, a Snakemake dependency).
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or "<top level>"
        yield f"config: {path}: {error.message}"


def _reserved(name: str) -> bool:
    return name in (ROW_COL, RISK_COL, MEDIAN_COL) or name.startswith(SURV_PREFIX)


def check_settings(config: Mapping[str, Any]) -> None:
    """Reject settings that are valid one by one but not together, before any job.

    Parameters
    ----------
    config : Mapping
        The validated configuration, defaults filled in.

    Raises
    ------
    ConfigError
        One line naming the key(s), the value and the problem.
    """
    data, cv, ev = config["data"], config["cv"], config["evaluation"]
    roles = {"data.duration_col": data["duration_col"], "data.event_col": data["event_col"]}
    if data.get("id_col") is not None:
        roles["data.id_col"] = data["id_col"]
    seen: dict[str, str] = {}
    for key, column in roles.items():
        if column in seen:
            raise ConfigError(
                f"config: {key} {column!r} is the same column as {seen[column]}; "
                "time, event and id must be three different columns"
            )
        seen[column] = key
        if _reserved(column):
            raise ConfigError(
                f"config: {key} {column!r} is a reserved output column name (reserved: "
                f"{ROW_COL}, {RISK_COL}, {MEDIAN_COL}, {SURV_PREFIX}<t>); rename the column"
            )
    low, high = ev["time_quantiles"]
    if not low < high:
        raise ConfigError(
            f"config: evaluation.time_quantiles {[low, high]}: the first quantile must be "
            "below the second (the grid spans the event times between them)"
        )
    needed = cv["n_folds"] * cv["min_rows_per_fold"]
    if config["run_type"] == "sample" and config["sample_size"] < needed:
        raise ConfigError(
            f"config: sample_size {config['sample_size']} is too small for cv.n_folds "
            f"{cv['n_folds']} x cv.min_rows_per_fold {cv['min_rows_per_fold']} "
            f"(needs at least {needed} rows)"
        )


def check_predict_model(config: Mapping[str, Any]) -> None:
    """``predict.model`` must be ``best`` or an enabled model (after :func:`model_settings`).

    Raises
    ------
    ConfigError
        Naming the value and the valid choices.
    """
    wanted = config["predict"]["model"]
    enabled = [m for m, spec in config["models"].items() if spec["enabled"]]
    if wanted != "best" and wanted not in enabled:
        raise ConfigError(
            f"config: predict.model {wanted!r} is not an enabled model; use 'best' or one of "
            + ", ".join(enabled)
        )


def fill_defaults(config: dict, schema: Mapping[str, Any]) -> None:
    """Fill in the schema's defaults, in place, as ``snakemake.utils.validate`` does.

    The same rule (jsonschema's FAQ validator extended to ``setdefault`` every property
    with a ``default`` wherever validation descends, so also inside ``additionalProperties``
    and nested objects), with ``jsonschema`` itself: importing Snakemake here would put its
    deployment folders on the caller's ``sys.path``.

    Raises
    ------
    jsonschema.ValidationError
        If ``config`` violates the schema (run :func:`schema_errors` first for one line
        per violation).
    """
    import copy

    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, copy.deepcopy(prop["default"]))
        yield from validate_properties(validator, properties, instance, subschema)

    validators.extend(base, {"properties": set_defaults})(schema).validate(config)


def check_and_complete(
    config: dict, schema: Mapping[str, Any], registry: Mapping[str, Any]
) -> None:
    """Every check of a configuration, in order, and its defaults filled in (in place).

    What the Snakefile runs before any job and ``run_pipeline`` before it starts
    Snakemake: unknown keys (:func:`check_config`), the JSON schema (:func:`schema_errors`),
    defaults (:func:`fill_defaults`), joint settings (:func:`check_settings`), the
    ``models`` block against the registry (:func:`model_settings`, which completes it) and
    ``predict.model`` (:func:`check_predict_model`).

    Raises
    ------
    ConfigError
        The first problem, one line naming the key.
    """
    check_config(config, schema, tuple(registry))
    for message in schema_errors(config, schema):
        raise ConfigError(message)
    fill_defaults(config, schema)
    check_settings(config)
    config["models"] = model_settings(config.get("models"), registry)
    check_predict_model(config)
