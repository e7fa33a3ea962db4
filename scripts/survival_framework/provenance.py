"""Provenance records: what went into a result directory, written as ``provenance.json``.

Every result directory (``results/data``, ``results/splits``, ``results/cv/{model}/fold_{k}``,
``results/ph``, ``results/final/{model}``, the aggregate outputs in ``results/``) carries a
small JSON with

``data_sha256``
    sha256 of the input table named by ``data.path`` (computed by ``validate_data`` and
    inherited by every later stage from the upstream ``provenance.json`` it declares as input);
``folds_sha256``
    sha256 of the fold assignment (``_row`` and ``fold`` of ``results/splits/folds.parquet``
    as little-endian int64, ordered by ``_row`` then ``fold``: every repeat's resample ids),
    plus, in fold jobs, ``fold_rows_sha256`` of that fold's training and test row numbers;
``inputs``
    path, size and sha256 of every declared input file of the job;
``params``, ``seed``, ``model_params``
    the rule's params (config values that reached the script) and the seed;
``versions``
    python, numpy, pandas, scikit-learn, scikit-survival, lifelines, snakemake, ...;
``code``
    ``git_commit`` (``null`` outside a git checkout) and ``package_sha256``, a hash of the
    ``survival_framework`` sources, which identifies the code in any case;
``started_utc``, ``finished_utc``
    ISO timestamps of the job.

Provenance is metadata: it never feeds back into results, and it is written last, so a
result directory with a ``provenance.json`` is complete.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import platform
import socket
import subprocess
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .contract import FOLD_COL, ROW_COL
from .io import read_json, read_table, write_json

__all__ = [
    "PACKAGES",
    "utc_now",
    "sha256_file",
    "sha256_arrays",
    "folds_sha256",
    "package_versions",
    "code_version",
    "build_provenance",
    "snakemake_provenance",
    "write_provenance",
]

PACKAGES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scikit-survival",
    "lifelines",
    "joblib",
    "matplotlib",
    "snakemake",
)
"""Distributions whose versions are recorded (``python`` is added)."""

_PACKAGE_DIR = Path(__file__).resolve().parent


def utc_now() -> str:
    """Current UTC time as an ISO 8601 string (seconds)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in chunks (bounded memory for any size)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def sha256_arrays(*arrays: np.ndarray) -> str:
    """sha256 of integer arrays, as little-endian int64 (independent of the source dtype)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a), dtype="<i8").tobytes())
        h.update(b"|")
    return h.hexdigest()


def folds_sha256(folds_path: str | os.PathLike) -> str:
    """Hash of a fold assignment table (``_row``, ``fold``), independent of row order.

    With repeated cross-validation a ``_row`` has one resample id per repeat (all distinct),
    so ``(_row, fold)`` orders the rows; with one repeat that is the order by ``_row``.
    """
    df = read_table(folds_path, columns=[ROW_COL, FOLD_COL])
    df = df.sort_values([ROW_COL, FOLD_COL], kind="stable")
    return sha256_arrays(df[ROW_COL].to_numpy(), df[FOLD_COL].to_numpy())


@functools.cache
def package_versions() -> dict[str, str | None]:
    """Versions of python and of :data:`PACKAGES` (``None`` if a package is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.cache
def code_version(package_dir: str | None = None) -> dict[str, str | None]:
    """Code identity: the git commit of the checkout (if any) and a hash of the package.

    ``package_sha256`` hashes every ``*.py`` file of ``survival_framework`` (names and
    contents, sorted), so it identifies the code even outside git or with local edits.
    """
    pkg = Path(package_dir) if package_dir else _PACKAGE_DIR
    h = hashlib.sha256()
    for f in sorted(pkg.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    commit = None
    try:
        proc = subprocess.run(
            ["git", "-C", str(pkg), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
        if proc.returncode == 0:
            commit = proc.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"git_commit": commit, "package_sha256": h.hexdigest()}


def _file_record(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        return {"path": str(path), "sha256": None, "bytes": None}
    return {"path": str(path), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def _jsonable(value: Any) -> Any:
    """Params as plain JSON (Snakemake's Namedlist and numpy scalars included)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def build_provenance(
    rule: str,
    inputs: Mapping[str, str | os.PathLike | Iterable[str | os.PathLike]],
    *,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    data_sha256: str | None = None,
    folds_sha256: str | None = None,
    started_utc: str | None = None,
    wildcards: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a provenance record (see the module docstring for the fields).

    Parameters
    ----------
    rule : str
        Name of the rule (or tool) that produced the results.
    inputs : mapping
        Input name -> file path or list of paths; each file is hashed.
    params : mapping, optional
        Parameters of the job (JSON-serialisable after conversion).
    seed : int, optional
        Random seed of the job.
    data_sha256, folds_sha256 : str, optional
        Hashes of the input table and of the fold assignment.
    started_utc : str, optional
        Start time of the job (:func:`utc_now`); the finish time is taken now.
    wildcards : mapping, optional
        Wildcards of the job.
    extra : mapping, optional
        Further fields (e.g. ``model_params``, ``fold_rows_sha256``).

    Returns
    -------
    dict
    """
    files: dict[str, Any] = {}
    for name, value in inputs.items():
        if isinstance(value, str | os.PathLike):
            files[name] = _file_record(value)
        else:
            files[name] = [_file_record(v) for v in value]
    record: dict[str, Any] = {
        "rule": rule,
        "wildcards": dict(wildcards or {}),
        "data_sha256": data_sha256,
        "folds_sha256": folds_sha256,
        "seed": seed,
        "params": _jsonable(dict(params or {})),
        "inputs": files,
        "versions": package_versions(),
        "code": code_version(),
        "host": socket.gethostname(),
        "started_utc": started_utc,
        "finished_utc": utc_now(),
    }
    record.update(_jsonable(dict(extra or {})))
    return record


def _named_items(namedlist: Any) -> dict[str, Any]:
    """Named entries of a Snakemake ``Namedlist`` (unnamed ones as ``input_<i>``)."""
    named = dict(namedlist.items())
    if named:
        return named
    return {f"input_{i}": v for i, v in enumerate(namedlist)}


def snakemake_provenance(
    smk: Any,
    started_utc: str,
    *,
    data_sha256: str | None = None,
    folds_sha256: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Provenance record of a Snakemake ``script:`` job.

    Hashes every declared input; inherits ``data_sha256``/``folds_sha256`` (unless given)
    from declared inputs whose name ends in ``provenance`` (upstream ``provenance.json``);
    records ``params`` (``seed`` and ``model_params`` also at the top level).
    """
    inputs = _named_items(smk.input)
    for name, value in inputs.items():
        if not name.endswith("provenance"):
            continue
        for path in [value] if isinstance(value, str) else list(value):
            upstream = read_json(path)
            data_sha256 = data_sha256 or upstream.get("data_sha256")
            folds_sha256 = folds_sha256 or upstream.get("folds_sha256")
    params = dict(smk.params.items())
    fields = dict(extra or {})
    if "model_params" in params:
        fields.setdefault("model_params", params["model_params"])
    return build_provenance(
        smk.rule,
        inputs,
        params=params,
        seed=params.get("seed"),
        data_sha256=data_sha256,
        folds_sha256=folds_sha256,
        started_utc=started_utc,
        wildcards=dict(smk.wildcards.items()),
        extra=fields,
    )


def write_provenance(record: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a provenance record as JSON (atomically)."""
    write_json(dict(record), path)
