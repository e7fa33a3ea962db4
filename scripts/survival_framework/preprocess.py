"""Fold-fitted preprocessing with a JSON-serialisable state.

Numeric columns: median imputation, then standard scaling (mean and population standard
deviation of the imputed training column). Categorical columns: most-frequent imputation,
levels rarer than ``min_frequency`` in the training part pooled into ``__other__``, one-hot
encoding with the most frequent level as the dropped reference (so Cox and AFT models stay
identifiable); levels unseen in training map to ``__other__`` when the training part had
rare levels, otherwise to the reference.

The state is plain JSON (``fit_state``) and the transform is a pure function of it
(``transform``), so the pandas and Spark ETL paths produce the same matrices and every
fitted statistic can be audited in ``results/splits/fold_{k}/preprocessor.json``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["OTHER", "fit_state", "transform", "output_columns"]

OTHER = "__other__"


def _as_str_levels(s: pd.Series) -> pd.Series:
    """Categorical values as strings, missing values kept as missing."""
    return s.astype("object").where(s.notna(), None).map(lambda v: None if v is None else str(v))


def fit_state(
    train: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    min_frequency: float = 0.01,
) -> dict:
    """Fit preprocessing statistics on training rows only.

    Parameters
    ----------
    train : pandas.DataFrame
        Training rows of one fold.
    numeric, categorical : sequence of str
        Feature columns by kind.
    min_frequency : float
        Levels whose share of training rows is below this are pooled into ``__other__``.

    Returns
    -------
    dict
        JSON-serialisable state for :func:`transform`.
    """
    n = len(train)
    num_state = {}
    for col in numeric:
        x = train[col].to_numpy(dtype=float)
        observed = x[~np.isnan(x)]
        median = float(np.median(observed)) if observed.size else 0.0
        filled = np.where(np.isnan(x), median, x)
        mean = float(filled.mean())
        std = float(filled.std())
        num_state[col] = {"median": median, "mean": mean, "scale": std if std > 0 else 1.0}
    cat_state = {}
    for col in categorical:
        values = _as_str_levels(train[col])
        counts = values.value_counts(dropna=True)
        # deterministic order: by count desc, then level name
        counts = counts.sort_index().sort_values(ascending=False, kind="stable")
        fill = str(counts.index[0]) if len(counts) else OTHER
        n_missing = int(values.isna().sum())
        counts_filled = counts.copy()
        if len(counts):
            counts_filled[fill] += n_missing
        kept = [str(lv) for lv, c in counts_filled.items() if c / n >= min_frequency]
        if not kept:
            kept = [fill]
        reference = kept[0]
        rare = [str(lv) for lv in counts_filled.index if str(lv) not in kept]
        cat_state[col] = {
            "fill": fill,
            "reference": reference,
            "levels": sorted(lv for lv in kept if lv != reference),
            "has_other": bool(rare),
            "n_rare_levels": len(rare),
        }
    return {
        "numeric": num_state,
        "categorical": cat_state,
        "min_frequency": min_frequency,
        "n_train": n,
    }


def output_columns(state: dict) -> list[str]:
    """Names of the transformed feature columns, in order."""
    cols = list(state["numeric"])
    for col, st in state["categorical"].items():
        cols += [f"{col}={lv}" for lv in st["levels"]]
        if st["has_other"]:
            cols.append(f"{col}={OTHER}")
    return cols


def transform(df: pd.DataFrame, state: dict) -> pd.DataFrame:
    """Apply a fitted state to any rows (training, test or new data).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with the raw feature columns named in ``state``.
    state : dict
        Output of :func:`fit_state`.

    Returns
    -------
    pandas.DataFrame
        Float64 design matrix with columns :func:`output_columns` and ``df``'s index.
    """
    out = {}
    for col, st in state["numeric"].items():
        x = df[col].to_numpy(dtype=float)
        x = np.where(np.isnan(x), st["median"], x)
        out[col] = (x - st["mean"]) / st["scale"]
    for col, st in state["categorical"].items():
        values = _as_str_levels(df[col]).fillna(st["fill"]).to_numpy(dtype=object)
        known = set(st["levels"]) | {st["reference"]}
        for lv in st["levels"]:
            out[f"{col}={lv}"] = (values == lv).astype(float)
        if st["has_other"]:
            out[f"{col}={OTHER}"] = (~pd.Series(values).isin(known)).to_numpy(dtype=float)
    return pd.DataFrame(out, index=df.index, columns=output_columns(state))
