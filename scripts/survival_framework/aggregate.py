"""Long-format CV metrics, the leaderboard and the summary of failed fits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .contract import METRIC_COLUMNS
from .metrics import METRIC_NAMES

__all__ = ["metrics_long", "leaderboard", "failed_fits", "failure_summary"]

# Sort direction of each metric on the leaderboard: True = higher is better.
HIGHER_IS_BETTER = {"harrell_c": True, "uno_c": True, "ibs": False, "mean_auc": True}
RANK_METRIC = "uno_c"


def metrics_long(records: Iterable[dict]) -> pd.DataFrame:
    """One row per model, fold and metric: columns ``model, fold, metric, value``.

    A failed fold's metrics are NaN, whatever its record holds.
    """
    rows = [
        {
            "model": r["model"],
            "fold": int(r["fold"]),
            "metric": m,
            "value": r["metrics"][m] if r["status"] == "ok" else float("nan"),
        }
        for r in records
        for m in METRIC_NAMES
    ]
    df = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    df["value"] = df["value"].astype(float)
    return df.sort_values(["model", "fold", "metric"], kind="stable").reset_index(drop=True)


def leaderboard(long: pd.DataFrame, records: Iterable[dict]) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1) per model and metric, ranked by ``uno_c``.

    Only folds with ``status == "ok"`` enter the statistics: ``n_folds`` counts them,
    ``n_failed`` counts the others. A model is ranked (``rank`` 1, 2, ...; best mean
    ``uno_c`` first) only if it has a successful fold and a finite mean ``uno_c``; the
    other models follow, unranked (``rank`` missing: an empty cell in the CSV).

    Parameters
    ----------
    long : pandas.DataFrame
        Output of :func:`metrics_long`.
    records : iterable of dict
        The ``metrics.json`` records of every model x fold (``model``, ``fold``, ``status``).

    Returns
    -------
    pandas.DataFrame
        ``rank`` (nullable integer), ``model``, ``<metric>_mean``, ``<metric>_std`` per
        metric, ``n_folds``, ``n_failed``.
    """
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
    key = f"{RANK_METRIC}_mean"
    ranked = (out["n_folds"] > 0) & np.isfinite(out[key].to_numpy(float))
    ascending = not HIGHER_IS_BETTER[RANK_METRIC]
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
    return order


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
