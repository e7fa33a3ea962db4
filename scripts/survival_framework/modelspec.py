"""Model names and constructor parameters of the registry, and the parameter check.

The Snakefile checks ``models.<name>.params`` when it builds the DAG, on every invocation
(each Slurm job too). Importing :mod:`survival_framework.models` for that costs over a
second (scikit-learn), so :func:`read_registry` reads the same facts from the source of
``models.py`` with :mod:`ast`: the names of ``_REGISTRY`` and each class's ``__init__``
signature and type hints. :func:`check_params` is the one check, used both here and by
:func:`survival_framework.models.get_model` (with hints from the imported classes); a test
asserts that both readings of the registry agree. Standard library only.
"""

from __future__ import annotations

import ast
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

__all__ = ["INJECTED", "accepts", "check_params", "read_path_params", "read_registry"]

INJECTED = ("self", "random_state", "n_jobs")
"""Constructor arguments the workflow sets itself (seed per model x fold, threads)."""

_MODELS_PY = Path(__file__).resolve().parent / "models.py"
_HINT_NAMES = {"Any": Any, "Literal": Literal, "None": None, "int": int, "float": float}
_HINT_NAMES |= {"str": str, "bool": bool}


def _assigned_name(node: ast.stmt) -> str | None:
    """The name a statement assigns (``x = ...`` or ``x: T = ...``), or None."""
    target = node.target if isinstance(node, ast.AnnAssign) else None
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
    return target.id if isinstance(target, ast.Name) else None


def _registry_classes(tree: ast.Module) -> dict[str, str]:
    for node in tree.body:
        if _assigned_name(node) == "_REGISTRY":
            value = node.value
            if not isinstance(value, ast.Dict):
                break
            return {
                k.value: v.id
                for k, v in zip(value.keys, value.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(v, ast.Name)
            }
    raise ValueError("models.py: no `_REGISTRY = {name: Class, ...}` literal found")


def _init_hints(classes: dict[str, ast.ClassDef], name: str) -> dict[str, Any]:
    cls = classes[name]
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            args = [*item.args.posonlyargs, *item.args.args, *item.args.kwonlyargs]
            return {
                a.arg: Any
                if a.annotation is None
                else eval(  # noqa: S307 - own source
                    compile(ast.Expression(a.annotation), "<hint>", "eval"),
                    {"__builtins__": {}},
                    _HINT_NAMES,
                )
                for a in args
                if a.arg not in INJECTED
            }
    for base in cls.bases:  # inherited constructor
        if isinstance(base, ast.Name) and base.id in classes:
            return _init_hints(classes, base.id)
    return {}


def read_registry(path: str | os.PathLike = _MODELS_PY) -> dict[str, dict[str, Any]]:
    """``{model name: {parameter: type hint}}`` from the source of ``models.py``.

    Parameters
    ----------
    path : path-like
        The registry module (default: this package's ``models.py``).

    Returns
    -------
    dict
        In registry order; the parameters in signature order, without the arguments the
        workflow injects (:data:`INJECTED`).
    """
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    return {name: _init_hints(classes, cls) for name, cls in _registry_classes(tree).items()}


def _class_constant(classes: dict[str, ast.ClassDef], name: str, attribute: str) -> Any:
    """A class attribute's literal value in the source, looked up through the bases."""
    for item in classes[name].body:
        if _assigned_name(item) == attribute and item.value is not None:
            return ast.literal_eval(item.value)
    for base in classes[name].bases:
        if isinstance(base, ast.Name) and base.id in classes:
            return _class_constant(classes, base.id, attribute)
    return None


def read_path_params(path: str | os.PathLike = _MODELS_PY) -> dict[str, str]:
    """``{model name: path parameter}`` for the models of the registry that fit a
    regularisation path (their class's ``path_param``), from the source of ``models.py``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    found = {
        name: _class_constant(classes, cls, "path_param")
        for name, cls in _registry_classes(tree).items()
    }
    return {name: param for name, param in found.items() if param is not None}


def accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` (as loaded from YAML) fits a simple type hint."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(accepts(h, value) for h in typing.get_args(hint))
    if hint is None or hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _hint_text(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def check_params(
    name: str, params: Mapping[str, Any], registry: Mapping[str, Mapping[str, Any]]
) -> None:
    """Check a model's parameters against its constructor's signature and type hints.

    Parameters
    ----------
    name : str
        Model name.
    params : Mapping
        Constructor parameters (as in ``models.<name>.params`` of the config).
    registry : Mapping
        ``{model name: {parameter: type hint}}`` (:func:`read_registry`).

    Raises
    ------
    ValueError
        Naming the model, the parameter and the valid parameters (or the expected type).
    """
    if name not in registry:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(registry)}")
    accepted = registry[name]
    for key, value in params.items():
        if key not in accepted:
            raise ValueError(
                f"model {name!r} does not accept parameter {key!r}; "
                f"valid parameters: {', '.join(accepted)}"
            )
        if not accepts(accepted[key], value):
            raise ValueError(
                f"model {name!r}, parameter {key!r}: expected {_hint_text(accepted[key])}, "
                f"got {value!r}"
            )
