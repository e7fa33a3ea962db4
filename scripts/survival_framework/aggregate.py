"""Long-format CV metrics, the leaderboard, the paired comparison of models and the
summary of failed fits.

A "fold" here is a cross-validation resample: with ``cv.n_repeats`` = R repeats of
``cv.n_folds`` = K folds there are R x K of them, ``fold = repeat * K + k``
(:mod:`survival_framework.splits`); the means, standard deviations and counts of the
leaderboard and the paired comparisons are over all R x K.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .contract import METRIC_COLUMNS, REPEAT_COL
from .metrics import HIGHER_IS_BETTER, METRIC_NAMES

__all__ = ["metrics_long", "leaderboard", "compare", "failed_fits", "failure_summary"]

RANK_METRIC = "uno_c"
"""Default of ``evaluation.primary_metric``: the metric that orders the leaderboard."""
REFERENCE_MODEL = "km"
"""The registry's reference model (Kaplan-Meier), compared with every model."""


def metrics_long(records: Iterable[dict]) -> pd.DataFrame:
    """One row per model, resample and metric: columns ``model, repeat, fold, metric, value``
    (:data:`~survival_framework.contract.METRIC_COLUMNS`), sorted by model, repeat, fold and
    metric.

    A failed fold's metrics are NaN, whatever its record holds. A record without
    ``repeat`` (written before repeated cross-validation) is repeat 0.
    """
    rows = [
        {
            "model": r["model"],
            REPEAT_COL: int(r.get(REPEAT_COL, 0)),
            "fold": int(r["fold"]),
            "metric": m,
            "value": r["metrics"][m] if r["status"] == "ok" else float("nan"),
        }
        for r in records
        for m in METRIC_NAMES
    ]
    df = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    df["value"] = df["value"].astype(float)
    order = ["model", REPEAT_COL, "fold", "metric"]
    return df.sort_values(order, kind="stable").reset_index(drop=True)


def leaderboard(
    long: pd.DataFrame,
    records: Iterable[dict],
    primary_metric: str = RANK_METRIC,
    comparison: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1) per model and metric, ranked by ``primary_metric``.

    Over every resample (R x K with repeated cross-validation). Only resamples with
    ``status == "ok"`` enter the statistics: ``n_folds`` counts them, ``n_failed`` counts
    the others. A model is ranked (``rank`` 1, 2, ...; best mean
    ``primary_metric`` first, in its direction) only if it has a successful fold and a finite
    mean ``primary_metric``; the other models follow, unranked (``rank`` missing: an empty
    cell in the CSV).

    Parameters
    ----------
    long : pandas.DataFrame
        Output of :func:`metrics_long`.
    records : iterable of dict
        The ``metrics.json`` records of every model x fold (``model``, ``fold``, ``status``).
    primary_metric : str
        The metric that ranks the models (``evaluation.primary_metric``).
    comparison : pandas.DataFrame, optional
        Output of :func:`compare`: adds ``tied_with_best`` and ``mean_rank``
        (:func:`survival_framework.comparison.leaderboard_additions`).

    Returns
    -------
    pandas.DataFrame
        ``rank`` (nullable integer), ``model``, ``<metric>_mean``, ``<metric>_std`` per
        metric, ``n_folds``, ``n_failed``, ``tuned`` when some model was tuned (nested
        tuning: its ``metrics.json`` records hold ``tuning``), then ``tied_with_best``,
        ``mean_rank``.
    """
    records = list(records)
    status = pd.DataFrame(
        [(r["model"], int(r["fold"]), r["status"] == "ok") for r in records],
        columns=["model", "fold", "ok"],
    )
    models = sorted(set(long["model"]) | set(status["model"]))
    ok = long.merge(status.loc[status["ok"], ["model", "fold"]], on=["model", "fold"])
    wide = ok.pivot_table(
        index="model", columns="metric", values="value", aggfunc=["mean", "std"], dropna=False
    )
    out = pd.DataFrame(index=pd.Index(models, name="model"))
    for m in METRIC_NAMES:
        out[f"{m}_mean"] = wide.get(("mean", m), np.nan)
        out[f"{m}_std"] = wide.get(("std", m), np.nan)
    counts = status.groupby("model")["ok"].agg(["sum", "size"]).reindex(out.index, fill_value=0)
    out["n_folds"] = counts["sum"].astype(int)
    out["n_failed"] = (counts["size"] - counts["sum"]).astype(int)
    tuned = {r["model"] for r in records if r.get("tuning") is not None}
    if tuned:  # a run without tuning keeps its columns (docs/tuning.md)
        out["tuned"] = [m in tuned for m in out.index]
    key = f"{primary_metric}_mean"
    ranked = (out["n_folds"] > 0) & np.isfinite(out[key].to_numpy(float))
    ascending = not HIGHER_IS_BETTER[primary_metric]
    order = pd.concat(
        [
            out[ranked].sort_values(key, ascending=ascending, kind="stable"),
            out[~ranked],  # unranked: after the ranked ones, by name
        ]
    )
    order = order.reset_index()
    rank = pd.array([pd.NA] * len(order), dtype="Int64")
    rank[: int(ranked.sum())] = np.arange(1, int(ranked.sum()) + 1)
    order.insert(0, "rank", rank)
    if comparison is not None:
        from .comparison import leaderboard_additions

        extra = leaderboard_additions(
            long, comparison, higher_is_better=_directions(), primary_metric=primary_metric
        )
        order = order.merge(extra, on="model", how="left")
    return order


def _directions() -> dict[str, bool]:
    """The metrics that are compared and ranked, with their direction (True: higher is
    better); a metric without one (the D-calibration p-value) is neither."""
    return {m: d for m, d in HIGHER_IS_BETTER.items() if d is not None}


def compare(
    long: pd.DataFrame, records: Sequence[dict], primary_metric: str = RANK_METRIC
) -> pd.DataFrame:
    """``results/comparison.csv``: every model against the best one and against ``km``.

    :func:`survival_framework.comparison.compare_models` on the successful resamples,
    paired on (repeat, fold), with the mean ``n_test / n_train`` of the fits as the
    corrected t-test's ratio and the number of repeats of the records as ``n_repeats`` (the
    t-test's ``k`` is then up to R x K). Without the reference model (disabled) the rows
    are against the best model only.

    Parameters
    ----------
    long : pandas.DataFrame
        Output of :func:`metrics_long` (failed folds are NaN there).
    records : sequence of dict
        The ``metrics.json`` records (``n_train``, ``n_test``, ``repeat``: 0 if absent).
    primary_metric : str
        The metric that picks the best model.
    """
    from .comparison import compare_models

    ratio = float(np.mean([r["n_test"] / r["n_train"] for r in records]))
    n_repeats = len({int(r.get(REPEAT_COL, 0)) for r in records})
    models = set(long["model"])
    reference = REFERENCE_MODEL if REFERENCE_MODEL in models else sorted(models)[0]
    table = compare_models(
        long,
        higher_is_better=_directions(),
        test_train_ratio=ratio,
        primary_metric=primary_metric,
        reference_model=reference,
        n_repeats=n_repeats,
    )
    if reference != REFERENCE_MODEL:  # no km: only the rows against the best model
        best = table["reference"].iloc[0] if len(table) else None
        table = table[table["reference"] == best].reset_index(drop=True)
    return table


def failed_fits(records: Iterable[dict]) -> list[str]:
    """One line per failed model x fold: ``<model> fold <k>: <ErrorType>: <first line>``."""
    lines = []
    for r in sorted(records, key=lambda r: (r["model"], int(r["fold"]))):
        if r["status"] == "ok":
            continue
        error = r.get("error") or {}
        message = str(error.get("message") or "").strip().splitlines()
        first = f": {message[0]}" if message else ""
        lines.append(f"{r['model']} fold {r['fold']}: {error.get('type', 'unknown error')}{first}")
    return lines


def failure_summary(records: Sequence[dict], max_lines: int = 20) -> str | None:
    """Summary of the failed model x fold fits, or None if none failed.

    The first line counts them (``3 of 15 model x fold fits failed:``), then one line per
    failure (:func:`failed_fits`), at most ``max_lines`` of them.
    """
    lines = failed_fits(records)
    if not lines:
        return None
    shown = [f"  {line}" for line in lines[:max_lines]]
    if len(lines) > max_lines:
        shown.append(f"  ... and {len(lines) - max_lines} more (results/cv/*/fold_*/metrics.json)")
    head = f"{len(lines)} of {len(records)} model x fold fits failed:"
    return "\n".join([head, *shown])
