"""Which package modules a rule script runs, found from its imports, and their hash.

Snakemake reruns a job when its script changes, but it cannot see edits to the modules the
script imports. Each rule therefore passes ``code_hash(script)`` as a param: the hash of
every module of this package in the script's import closure (imports inside functions
included, so a lazily imported module counts too). The closure is computed with :mod:`ast`
from the source, never typed by hand, so an edit reruns exactly the rules that can run the
edited code. Standard library only: the Snakefile imports this module.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
from pathlib import Path

__all__ = ["PACKAGE", "code_hash", "import_closure", "package_imports"]

PACKAGE = "survival_framework"
RUNS_ONLY = frozenset({f"{PACKAGE}.worker"})
"""Modules that start a job's process but compute nothing it writes (the warm job worker):
outside every closure, so editing them reruns nothing."""
_PACKAGE_DIR = Path(__file__).resolve().parent


def _module_path(name: str, package_dir: Path) -> Path | None:
    """``survival_framework.x`` -> ``<package_dir>/x.py`` (None outside the package)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1:
        return package_dir / "__init__.py"
    path = package_dir.joinpath(*parts[1:])
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    file = path.with_suffix(".py")
    return file if file.exists() else None


def package_imports(path: str | os.PathLike, package_dir: Path = _PACKAGE_DIR) -> set[Path]:
    """Package modules one file imports directly (at any depth of its syntax tree).

    Parameters
    ----------
    path : path-like
        A rule script or a module of the package.
    package_dir : Path
        The package's directory.

    Returns
    -------
    set of Path
        Module files of the package, ``__init__.py`` included whenever anything of the
        package is imported (Python runs it first).
    """
    return set(_package_imports(Path(path).resolve(), Path(package_dir).resolve()))


@functools.cache
def _package_imports(path: Path, package_dir: Path) -> frozenset[Path]:
    # cached: every rule's hash walks the same modules while the Snakefile is parsed
    in_package = path.parent == package_dir
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: only meaningful inside the package
                if not in_package:
                    continue
                base = PACKAGE if not node.module else f"{PACKAGE}.{node.module}"
            elif node.module:
                base = node.module
            else:
                continue
            names.add(base)
            # `from pkg import mod` imports a module when `mod` is one
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found: set[Path] = set()
    for name in names - RUNS_ONLY:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # parents run first: pkg/__init__.py
            module = _module_path(".".join(parts[:depth]), package_dir)
            if module is not None:
                found.add(module)
    return frozenset(found)


def import_closure(script: str | os.PathLike, package_dir: Path = _PACKAGE_DIR) -> list[Path]:
    """Every package module that running ``script`` can import, directly or indirectly.

    Returns
    -------
    list of Path
        Sorted module files.
    """
    seen: set[Path] = set()
    todo = list(package_imports(script, package_dir))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(package_imports(module, package_dir) - seen)
    return sorted(seen)


def code_hash(script: str | os.PathLike, package_dir: Path = _PACKAGE_DIR) -> str:
    """Hash of the names and contents of the package modules in ``script``'s closure."""
    h = hashlib.sha256()
    for module in import_closure(script, package_dir):
        h.update(module.relative_to(package_dir).as_posix().encode())
        h.update(b"\0")
        h.update(module.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]
