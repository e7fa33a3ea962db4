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

from .modelspec import check_params

__all__ = ["ConfigError", "check_config", "model_settings", "unknown_keys"]


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
        registry order.

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
    if not any(spec["enabled"] for spec in resolved.values()):
        raise ConfigError("config: every model is disabled; set models.<name>.enabled: true")
    return resolved
