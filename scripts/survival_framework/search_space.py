"""Search spaces of hyperparameter tuning (``models.<name>.tune``) and their candidates.

Light (numpy only): the DAG lists the candidates when it is built, and the config check
parses the spaces.

* A search space maps each parameter to a list of values (a grid) or to
  ``{low, high, log}`` (a range, drawn from by random search). :func:`parse_space` checks
  it, naming the key at fault.
* :func:`candidates` lists the parameter sets to try: every combination of a grid, or
  ``n_candidates`` seeded draws when a range is given. The list depends only on the space,
  the seed and the model, so every outer fold (and every job) sees the same candidates in
  the same order.
* :func:`candidate_groups` puts together the candidates that differ only in a model's
  regularisation path parameter (Coxnet's ``alpha``): one job and one path fit per inner
  fold scores all of them.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["parse_space", "is_grid", "candidates", "candidate_groups"]

_RANGE_KEYS = {"low", "high", "log"}


def _where(model: str, param: str | None = None) -> str:
    return f"models.{model}.tune" + (f".{param}" if param is not None else "")


def parse_space(model: str, tune: Mapping[str, Any]) -> dict[str, list | dict]:
    """Check a search space and return it in its normal form.

    Parameters
    ----------
    model : str
        The model's name (for the messages).
    tune : mapping
        Parameter -> a non-empty list of values (a grid), or ``{low, high, log}`` (a range:
        ``low < high``; ``log: true`` draws log-uniformly and needs ``low > 0``). A range of
        two integers draws integers.

    Returns
    -------
    dict
        Parameter -> list of values, or ``{"low", "high", "log"}`` with ``log`` a bool.

    Raises
    ------
    ValueError
        Naming ``models.<model>.tune.<param>`` and what is wrong with it.
    """
    if not isinstance(tune, Mapping) or not tune:
        raise ValueError(
            f"{_where(model)}: expected a mapping of parameter -> values, got {tune!r}"
        )
    space: dict[str, list | dict] = {}
    for param, values in tune.items():
        where = _where(model, param)
        if isinstance(values, (list, tuple)):
            if not values:
                raise ValueError(f"{where}: the list of values is empty")
            space[param] = list(values)
        elif isinstance(values, Mapping):
            unknown = set(values) - _RANGE_KEYS
            if unknown or not {"low", "high"} <= set(values):
                raise ValueError(
                    f"{where}: a range is {{low, high, log}}, got keys {sorted(values)}"
                )
            low, high, log = values["low"], values["high"], values.get("log", False)
            for name, v in (("low", low), ("high", high)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ValueError(f"{where}.{name}: expected a finite number, got {v!r}")
            if not low < high:
                raise ValueError(f"{where}: low ({low}) must be below high ({high})")
            if not isinstance(log, bool):
                raise ValueError(f"{where}.log: expected true or false, got {log!r}")
            if log and low <= 0:
                raise ValueError(f"{where}: log: true needs low > 0, got {low}")
            space[param] = {"low": low, "high": high, "log": log}
        else:
            raise ValueError(
                f"{where}: expected a list of values or {{low, high, log}}, got {values!r}"
            )
    return space


def is_grid(space: Mapping[str, list | dict]) -> bool:
    """Whether every parameter of ``space`` is a list of values (no range)."""
    return all(isinstance(v, list) for v in space.values())


def _params_key(params: Mapping[str, Any]) -> str:
    """A parameter set as a hashable key (equal iff the sets are)."""
    return repr(sorted(params.items()))


def _native(value: Any) -> Any:
    """numpy scalars as Python ones (candidates go into JSON and model parameters)."""
    return value.item() if isinstance(value, np.generic) else value


def candidates(
    space: Mapping[str, list | dict], n_candidates: int, seed: int, model: str
) -> list[dict[str, Any]]:
    """The parameter sets to try, in a fixed order.

    A grid gives every combination, the parameters varying in the order of ``space``, the
    last fastest (:func:`itertools.product`); ``n_candidates`` is then not used. With a
    range, ``n_candidates`` sets are drawn with a generator seeded by ``seed`` and the
    model's name: a list is drawn from uniformly, a range uniformly or log-uniformly
    (integers for a range of two integers). Repeated draws are dropped, so integer ranges
    can give fewer sets.

    Parameters
    ----------
    space : mapping
        :func:`parse_space`'s output.
    n_candidates : int
        Draws of a random search (``tuning.n_candidates``).
    seed : int
        ``cv.seed``.
    model : str

    Returns
    -------
    list of dict
        Parameter -> value, JSON-ready.
    """
    names = list(space)
    if is_grid(space):
        return [
            {p: _native(v) for p, v in zip(names, combo, strict=True)}
            for combo in itertools.product(*(space[p] for p in names))
        ]
    if n_candidates < 1:
        raise ValueError(f"tuning.n_candidates must be >= 1, got {n_candidates}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(model.encode())]))
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(n_candidates):
        draw: dict[str, Any] = {}
        for p in names:
            spec = space[p]
            if isinstance(spec, list):
                draw[p] = _native(spec[int(rng.integers(len(spec)))])
                continue
            low, high, log = spec["low"], spec["high"], spec["log"]
            integer = isinstance(low, int) and isinstance(high, int)
            if log:
                x = math.exp(rng.uniform(math.log(low), math.log(high)))
            else:
                x = float(rng.uniform(low, high))
            draw[p] = int(min(high, max(low, round(x)))) if integer else float(x)
        key = _params_key(draw)
        if key not in seen:
            seen.add(key)
            out.append(draw)
    return out


def candidate_groups(
    cands: list[Mapping[str, Any]], path_param: str | None = None
) -> list[list[int]]:
    """Indices of the candidates scored together, one job per group.

    Parameters
    ----------
    cands : list of mapping
        :func:`candidates`' output.
    path_param : str, optional
        The model's regularisation path parameter (``path_param`` in the registry), whose
        values one path fit gives at once. None: every candidate is a group of its own.

    Returns
    -------
    list of list of int
        Candidates equal in every other parameter form a group; groups in the order of
        their first candidate, the indices ascending. Together they hold every index once.
    """
    if path_param is None or not any(path_param in c for c in cands):
        return [[i] for i in range(len(cands))]
    groups: dict[str, list[int]] = {}
    for i, cand in enumerate(cands):
        rest = {k: v for k, v in cand.items() if k != path_param}
        groups.setdefault(_params_key(rest), []).append(i)
    return list(groups.values())
