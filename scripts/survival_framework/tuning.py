"""Hyperparameter search inside the cross-validation (nested): search spaces, their
candidates, the inner splits of an outer training fold and the choice of a winner.

The rules of ``rules/tuning.smk`` call these (docs/tuning.md).

* The search spaces and their candidates are in :mod:`.search_space` (light: the DAG
  lists the candidates when it is built).
* :func:`write_inner_splits` runs the pandas ETL (:func:`.etl.run_pandas_etl`, not a second
  implementation) on the training rows of one outer resample only: stratified inner folds,
  preprocessing fitted on each inner training fold, and a time grid valid for every inner
  fold. No outer test row is read into them.
* :func:`score_candidates` fits a group of candidates on every inner training fold and
  scores them on the inner test fold with the tuning metric alone: one fit per candidate,
  or one regularisation path fit for candidates that differ only in the model's path
  parameter (Coxnet's ``alpha``). :func:`inner_fold_skip_reason` says
  why an inner fold cannot score (too few events), and a failed fit is recorded, never
  raised. :func:`select_candidate` picks the winner from the candidates' inner scores, by
  the metric's direction, with a recorded reason for everything left out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .contract import FOLD_COL, REPEAT_COL, ROW_COL
from .metrics import HIGHER_IS_BETTER

__all__ = [
    "TUNING_METRICS",
    "MIN_INNER_EVENTS",
    "inner_seed",
    "outer_training_rows",
    "write_rows",
    "write_inner_splits",
    "inner_fold_skip_reason",
    "score_candidate",
    "score_candidates",
    "select_candidate",
    "resample_index",
    "tuned_params",
]

TUNING_METRICS = ("uno_c", "ibs")
"""Metrics an inner fold can rank candidates by (``tuning.metric``)."""

MIN_INNER_EVENTS = 2
"""Fewest events an inner test fold (and its training fold) needs to score a candidate:
a concordance needs a comparable pair, the censoring weights of the Brier score an event."""


def inner_seed(seed: int, resample: int) -> int:
    """Seed of the inner folds of outer resample ``resample``.

    A child of ``seed`` (``SeedSequence(seed, spawn_key=("tune", resample))``), apart from
    the outer repeats' seeds (:func:`~survival_framework.splits.repeat_seed` uses
    ``spawn_key=(r,)``), so inner folds never repeat an outer assignment. Stable across
    runs, hosts and numpy versions.
    """
    seq = np.random.SeedSequence(int(seed), spawn_key=(0x7475_6E65, int(resample)))  # "tune"
    return int(seq.generate_state(1)[0])


def outer_training_rows(folds_path: str | os.PathLike, resample: int, n_folds: int) -> np.ndarray:
    """The ``_row`` values of outer resample ``resample``'s training rows, ascending.

    ``folds_path``: ``results/splits/folds.parquet`` (``_row, repeat, fold``); resample
    ``f`` is fold ``f`` of repeat ``f // n_folds``.
    """
    import pyarrow.parquet as pq

    table = pq.read_table(folds_path, columns=[ROW_COL, REPEAT_COL, FOLD_COL])
    row = table.column(ROW_COL).to_numpy()
    repeat = table.column(REPEAT_COL).to_numpy()
    fold = table.column(FOLD_COL).to_numpy()
    if not (repeat == resample // n_folds).any():
        raise ValueError(f"{folds_path}: no repeat {resample // n_folds} (resample {resample})")
    keep = (repeat == resample // n_folds) & (fold != resample)
    return np.sort(row[keep])


def write_rows(clean_path: str | os.PathLike, rows: np.ndarray, out_path: str | os.PathLike) -> int:
    """Write the rows of ``clean_path`` whose ``_row`` is in ``rows`` to ``out_path``, one
    row group of the input at a time, with the input's schema (the pandas metadata
    included) and in its order. Returns the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .io import atomic_path

    pf = pq.ParquetFile(clean_path)
    wanted = np.sort(np.asarray(rows, dtype=np.int64))
    written = 0
    with atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, pf.schema_arrow) as writer:
        for g in range(pf.num_row_groups):
            table = pf.read_row_group(g)
            row = table.column(ROW_COL).to_numpy()
            at = np.minimum(np.searchsorted(wanted, row), max(wanted.size - 1, 0))
            keep = wanted[at] == row if wanted.size else np.zeros(row.size, dtype=bool)
            if keep.any() or (g == pf.num_row_groups - 1 and not written):
                part = table.filter(pa.array(keep))
                writer.write_table(part, row_group_size=max(part.num_rows, 1))
                written += part.num_rows
    return written


def write_inner_splits(
    clean_path: str | os.PathLike,
    schema_path: str | os.PathLike,
    outer_folds_path: str | os.PathLike | None,
    resample: int,
    *,
    subset_path: str | os.PathLike,
    folds_path: str | os.PathLike,
    grid_path: str | os.PathLike,
    train_paths: Sequence[str | os.PathLike],
    test_paths: Sequence[str | os.PathLike],
    preprocessor_paths: Sequence[str | os.PathLike],
    n_folds: int,
    seed: int,
    min_frequency: float,
    n_times: int,
    quantiles: tuple[float, float],
    max_levels: int | None = None,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """The inner cross-validation of one outer training fold, written as the outer one is.

    The training rows of outer resample ``resample`` are copied from ``clean_path`` to
    ``subset_path``, and :func:`~survival_framework.etl.run_pandas_etl` splits them into
    ``len(train_paths)`` stratified folds (seed :func:`inner_seed`), each inner fold's
    preprocessing fitted on its inner training rows, and one time grid valid for every
    inner fold. It writes exactly the paths it is given.

    Parameters
    ----------
    clean_path, schema_path, outer_folds_path : path-like
        ``results/data/clean.parquet``, ``schema.json`` and ``results/splits/folds.parquet``;
        ``outer_folds_path`` None: every row of the table (the final model's inner CV).
    resample : int
        The outer resample (fold ``k`` of repeat ``r`` is ``r * n_folds + k``); for every
        row, the number of resamples (the final fit's convention): it seeds the inner folds.
    subset_path, folds_path, grid_path : path-like
        Where to write the outer training rows, the inner folds and the inner time grid.
    train_paths, test_paths, preprocessor_paths : sequence of path-like
        One per inner fold (``tuning.inner_folds`` of them).
    n_folds : int
        Outer folds per repeat (``cv.n_folds``).
    seed, min_frequency, n_times, quantiles, max_levels :
        As for the outer split (``cv.seed``, ``preprocess.*``, ``evaluation.*``).
    log : logging.Logger, optional

    Returns
    -------
    dict
        ``n_rows`` and ``seed`` of the inner split.
    """
    from .etl import run_pandas_etl

    if outer_folds_path is None:  # the final model's inner CV: every row
        import pyarrow.parquet as pq

        rows = np.sort(pq.read_table(clean_path, columns=[ROW_COL]).column(0).to_numpy())
    else:
        rows = outer_training_rows(outer_folds_path, resample, n_folds)
    n = write_rows(clean_path, rows, subset_path)
    if n != rows.size:
        raise ValueError(
            f"{clean_path}: {rows.size} training rows of resample {resample} in "
            f"{outer_folds_path}, {n} found in the table (are they from the same run?)"
        )
    s = inner_seed(seed, resample)
    run_pandas_etl(
        subset_path, schema_path, folds_path=folds_path, grid_path=grid_path,
        train_paths=list(train_paths), test_paths=list(test_paths),
        preprocessor_paths=list(preprocessor_paths), n_folds=len(train_paths), seed=s,
        min_frequency=min_frequency, n_times=n_times, quantiles=quantiles,
        max_levels=max_levels, log=log,
    )  # fmt: skip
    return {"n_rows": n, "seed": s}


def inner_fold_skip_reason(event_train: np.ndarray, event_test: np.ndarray) -> str | None:
    """Why an inner fold cannot score candidates, or None if it can.

    A fold is skipped (for every candidate alike) when its test or training rows hold
    fewer than :data:`MIN_INNER_EVENTS` events.
    """
    n_test, n_train = int(np.sum(event_test)), int(np.sum(event_train))
    if n_test < MIN_INNER_EVENTS:
        return f"{n_test} event(s) in the inner test fold (need {MIN_INNER_EVENTS})"
    if n_train < MIN_INNER_EVENTS:
        return f"{n_train} event(s) in the inner training fold (need {MIN_INNER_EVENTS})"
    return None


def score_candidate(
    model: str,
    params: Mapping[str, Any],
    inner: Mapping[str, Any],
    schema: Mapping[str, Any],
    metric: str,
    seed: int,
    n_jobs: int = 1,
    batch_size: int = 50_000,
) -> dict[str, Any]:
    """One candidate's :func:`score_candidates` result, with its ``seconds``."""
    group = score_candidates(model, [params], inner, schema, metric, seed, n_jobs, batch_size)
    return {**group["results"][0], "seconds": group["seconds"]}


def _path_values(param: str | None, candidates: Sequence[Mapping[str, Any]]) -> list[Any] | None:
    """The path parameter's values if ``candidates`` can share one path fit, else None."""
    if param is None or len(candidates) < 2 or any(param not in c for c in candidates):
        return None
    rest = [{k: v for k, v in c.items() if k != param} for c in candidates]
    values = [c[param] for c in candidates]
    if any(r != rest[0] for r in rest) or len(set(values)) != len(values):
        return None
    return values


def score_candidates(
    model: str,
    candidates: Sequence[Mapping[str, Any]],
    inner: Mapping[str, Any],
    schema: Mapping[str, Any],
    metric: str,
    seed: int,
    n_jobs: int = 1,
    batch_size: int = 50_000,
) -> dict[str, Any]:
    """Fit candidates on every inner training fold; score them on the inner test folds.

    One candidate, or a group that differs only in the model's regularisation path
    parameter (``path_param``, Coxnet's ``alpha``;
    :func:`~survival_framework.search_space.candidate_groups` makes the groups): each inner
    fold's matrices are read once and one path fit per inner fold (``fit_path``) gives
    every candidate. (Other candidates are not fitted one after another on the same
    matrices: they could need another dtype, and Coxnet's in-place fit gives ``X`` back
    to within one rounding only.)

    Parameters
    ----------
    model : str
        Registry name.
    candidates : sequence of mapping
        The model's parameters with each candidate's values set.
    inner : mapping
        The inner split's paths (:func:`write_inner_splits`: ``grid_path``,
        ``train_paths``, ``test_paths``, ``preprocessor_paths``).
    schema : mapping
        ``results/data/schema.json``.
    metric : {"uno_c", "ibs"}
    seed : int
        Seed of the inner split (:func:`inner_seed`): inner fold ``i``'s model seed is
        :func:`~survival_framework.models.model_seed` of it, the model and ``i``, the same
        for every candidate (so candidates differ by their parameters only).
    n_jobs, batch_size : int
        Threads of the model; test rows predicted at once.

    Returns
    -------
    dict
        ``results``: per candidate, in order, ``params``, ``metric``, ``scores`` (one per
        inner fold; None where skipped or failed), ``skipped`` (inner fold -> reason) and
        ``errors`` (inner fold -> ``type: message``); ``path``: the path parameter if one
        path fit scored them, else None; ``seconds``.

    Raises
    ------
    ValueError
        For an unknown metric, no candidate, or several that cannot share a path fit.
    """
    import time as _time
    import warnings

    from threadpoolctl import threadpool_limits

    from .io import read_json
    from .matrix import read_resample
    from .metrics import integrated_brier, to_structured, uno_c
    from .models import get_model, model_path_param, model_seed

    if metric not in TUNING_METRICS:
        raise ValueError(f"tuning.metric must be one of {TUNING_METRICS}, got {metric!r}")
    candidates = [dict(c) for c in candidates]
    if not candidates:
        raise ValueError("score_candidates needs at least one candidate")
    path = model_path_param(model)
    path_values = _path_values(path, candidates)
    if len(candidates) > 1 and path_values is None:
        raise ValueError(
            f"{model}: candidates scored together must differ only in the model's path "
            f"parameter ({path}), each with its own value; got {candidates}"
        )
    grid = read_json(inner["grid_path"])
    times = np.asarray(grid["times"], dtype=float)
    n = len(candidates)
    scores: list[list[float | None]] = [[] for _ in range(n)]
    skipped: dict[str, str] = {}
    errors: list[dict[str, str]] = [{} for _ in range(n)]
    t0 = _time.perf_counter()
    for i, (train_path, test_path, state_path) in enumerate(
        zip(inner["train_paths"], inner["test_paths"], inner["preprocessor_paths"], strict=True)
    ):
        train, test = read_resample(
            train_path, test_path, read_json(state_path), dict(schema), model, candidates[0]
        )
        reason = inner_fold_skip_reason(train.event, test.event)
        if reason is not None:
            for row in scores:
                row.append(None)
            skipped[str(i)] = reason
            continue
        y_train = to_structured(train.event, train.time)
        y_test = to_structured(test.event, test.time)
        random_state = model_seed(seed, model, i)
        with threadpool_limits(limits=max(1, int(n_jobs))), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the outer fit records warnings; not this
            fitted: list[Any] = [None] * n
            if path_values is not None:
                try:
                    estimator = get_model(
                        model, random_state=random_state, n_jobs=n_jobs, **candidates[0]
                    )
                    fitted = estimator.fit_path(train.X, y_train, path_values)
                except Exception as exc:  # every candidate of the path failed
                    fitted = [exc] * n
            for c in range(n):
                try:
                    estimator = fitted[c]
                    if isinstance(estimator, Exception):
                        raise estimator
                    if estimator is None:
                        estimator = get_model(
                            model, random_state=random_state, n_jobs=n_jobs, **candidates[c]
                        )
                        estimator.fit(train.X, y_train)
                    risk, surv = estimator.predict_risk_and_survival(test.X, times, batch_size)
                    if metric == "uno_c":
                        value = uno_c(y_train, y_test, risk, grid["tau"])
                    else:
                        value = integrated_brier(y_train, y_test, surv, times)
                    if not np.isfinite(value):
                        raise FloatingPointError(f"{metric} is {value}")
                    scores[c].append(float(value))
                except Exception as exc:  # a failed candidate is recorded, never raised
                    scores[c].append(None)
                    errors[c][str(i)] = f"{type(exc).__name__}: {exc}"
    results = [
        {
            "params": candidates[c],
            "metric": metric,
            "scores": scores[c],
            "skipped": dict(skipped),
            "errors": errors[c],
        }
        for c in range(n)
    ]
    return {
        "results": results,
        "path": None if path_values is None else path,
        "seconds": _time.perf_counter() - t0,
    }


def select_candidate(
    scores: Sequence[Sequence[float | None]],
    metric: str,
    skipped: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """The winning candidate from the inner scores.

    Parameters
    ----------
    scores : sequence of sequence of float or None
        ``scores[c][i]``: candidate ``c``'s ``metric`` on inner fold ``i``; None or NaN
        where its fit or scoring failed.
    metric : {"uno_c", "ibs"}
        Ranks by its direction (:data:`~survival_framework.metrics.HIGHER_IS_BETTER`).
    skipped : mapping of int to str, optional
        Inner folds skipped for every candidate, with the reason
        (:func:`inner_fold_skip_reason`).

    Returns
    -------
    dict
        ``best``: the winner's index (None if no candidate has a score on every usable
        fold); ``mean``: each candidate's mean over the usable folds (None when left out);
        ``excluded``: candidate -> why it was left out; ``used_folds``; ``skipped``. Ties
        go to the earlier candidate, so the choice never depends on job order.

    Raises
    ------
    ValueError
        For a metric outside :data:`TUNING_METRICS` or ragged scores.
    """
    if metric not in TUNING_METRICS:
        raise ValueError(f"tuning.metric must be one of {TUNING_METRICS}, got {metric!r}")
    skipped = dict(skipped or {})
    n_inner = {len(s) for s in scores}
    if len(n_inner) > 1:
        raise ValueError(f"every candidate needs one score per inner fold, got {sorted(n_inner)}")
    n = n_inner.pop() if n_inner else 0
    used = [i for i in range(n) if i not in skipped]
    means: list[float | None] = []
    excluded: dict[int, str] = {}
    for c, row in enumerate(scores):
        values = [row[i] for i in used]
        bad = [i for i, v in zip(used, values, strict=True) if v is None or not np.isfinite(v)]
        if not used:
            excluded[c] = "no usable inner fold"
            means.append(None)
        elif bad:
            excluded[c] = f"no score on inner fold(s) {bad}"
            means.append(None)
        else:
            means.append(float(np.mean(values)))
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    ranked = [c for c, m in enumerate(means) if m is not None]
    best = max(ranked, key=lambda c: (sign * means[c], -c)) if ranked else None
    return {
        "metric": metric,
        "best": best,
        "mean": means,
        "excluded": {str(c): why for c, why in excluded.items()},
        "used_folds": used,
        "skipped": {str(i): why for i, why in skipped.items()},
    }


def resample_index(resample: str, n_resamples: int) -> int:
    """The ``{resample}`` wildcard as a resample number: an outer resample's own, or
    ``n_resamples`` for ``all`` (the final model's inner CV, as the final fit's seed)."""
    return n_resamples if resample == "all" else int(resample)


def tuned_params(
    params: Mapping[str, Any], selection: Mapping[str, Any], log: logging.Logger
) -> dict[str, Any]:
    """``params`` with a selection's chosen values set (:func:`select_candidate`, as
    ``select_parameters`` writes it); ``params`` as they are, with a warning, when no
    candidate had an inner score."""
    if selection["params"] is None:
        log.warning("tuned: no candidate had an inner score; the configured params")
        return dict(params)
    log.info(
        "tuned: candidate %d of %d, %s",
        selection["best"], len(selection["candidates"]), selection["params"],
    )  # fmt: skip
    return {**params, **selection["params"]}
