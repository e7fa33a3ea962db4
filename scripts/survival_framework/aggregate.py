"""Long-format CV metrics and the leaderboard."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .contract import METRIC_COLUMNS
from .metrics import METRIC_NAMES

__all__ = ["metrics_long", "leaderboard"]

# Sort direction of each metric on the leaderboard: True = higher is better.
HIGHER_IS_BETTER = {"harrell_c": True, "uno_c": True, "ibs": False, "mean_auc": True}


def metrics_long(records: Iterable[dict]) -> pd.DataFrame:
    """One row per model, fold and metric: columns ``model, fold, metric, value``."""
    rows = [
        {"model": r["model"], "fold": int(r["fold"]), "metric": m, "value": r["metrics"][m]}
        for r in records
        for m in METRIC_NAMES
    ]
    df = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    return df.sort_values(["model", "fold", "metric"], kind="stable").reset_index(drop=True)


def leaderboard(long: pd.DataFrame, records: Iterable[dict]) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1) per model and metric, best ``uno_c`` first.

    Failed folds (NaN metrics) are excluded from the statistics and counted in
    ``n_failed``; ``n_folds`` counts the folds that succeeded.
    """
    failed: dict[str, int] = {}
    for r in records:
        failed[r["model"]] = failed.get(r["model"], 0) + int(r["status"] != "ok")
    wide = long.pivot_table(
        index="model", columns="metric", values="value", aggfunc=["mean", "std"], dropna=False
    )
    out = pd.DataFrame(index=sorted(long["model"].unique()))
    for m in METRIC_NAMES:
        out[f"{m}_mean"] = wide.get(("mean", m), np.nan)
        out[f"{m}_std"] = wide.get(("std", m), np.nan)
    ok = long.dropna(subset=["value"]).groupby("model")["fold"].nunique()
    out["n_folds"] = ok.reindex(out.index).fillna(0).astype(int)
    out["n_failed"] = pd.Series(failed).reindex(out.index).fillna(0).astype(int)
    out = out.sort_values("uno_c_mean", ascending=False, na_position="last", kind="stable")
    out.index.name = "model"
    out = out.reset_index()
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out
