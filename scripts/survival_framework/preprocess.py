"""Fold-fitted preprocessing with a JSON-serialisable state.

Numeric columns: median imputation, then standard scaling (mean and population standard
deviation of the imputed training column). Categorical columns: most-frequent imputation,
levels rarer than ``min_frequency`` in the training part, and all but the ``max_levels``
most frequent, pooled into ``__other__``, one-hot encoding with the most frequent level as
the dropped reference (so Cox and AFT models stay identifiable); levels unseen in training
map to ``__other__`` when the training part had pooled levels, otherwise to the reference.

Level rule of one categorical column (:func:`categorical_state`; exact, so that other ETL
engines reproduce it bit for bit):

1. Count the training rows of every observed level (levels are strings, ``str(value)``).
2. Order the levels by count, descending; ties by the level string, ascending in Unicode
   code-point order (the same as UTF-8 byte order, i.e. Spark's string ordering).
3. The first level in that order is ``fill``; the missing values are counted as ``fill``.
4. Level ``i`` (0-based position in that order) is kept iff
   ``count_i / n_train >= min_frequency`` and (``max_levels`` is null or ``i < max_levels``).
   Counts are descending, so the kept levels are a prefix of the order. If none is kept,
   ``fill`` is kept.
5. The first kept level is the ``reference`` (no column); the other kept levels, sorted by
   code point, are ``levels`` (one column ``<col>=<level>`` each); every other level is
   pooled: ``has_other`` is true iff at least one was, ``n_rare_levels`` is how many.
   ``max_levels`` therefore bounds the number of kept levels including the reference:
   at most ``max_levels - 1`` level columns plus one ``<col>=__other__`` column.

State JSON keys: ``numeric`` (per column ``median``, ``mean``, ``scale``), ``categorical``
(per column ``fill``, ``reference``, ``levels``, ``has_other``, ``n_rare_levels``),
``min_frequency``, ``max_levels`` (null = no cap) and ``n_train``.

The state is plain JSON (``fit_state``) and the transform is a pure function of it
(``transform``), so the pandas and Spark ETL paths produce the same matrices and every
fitted statistic can be audited in ``results/splits/fold_{k}/preprocessor.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .contract import OTHER

# pandas is imported by the functions that use it: a fit job needs only output_columns
if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "fit_state",
    "fit_numeric",
    "level_codes",
    "observed_levels",
    "fit_categorical_codes",
    "assemble_state",
    "numeric_state",
    "categorical_state",
    "transform",
    "transform_columns",
    "output_columns",
]


def _as_str_levels(s: pd.Series) -> pd.Series:
    """Categorical values as strings, missing values kept as missing (``None``).

    Validated tables already hold ``str`` values: then no Python call per value (a check
    in C instead; ``str(v)`` per value was half of the split stage's time).
    """
    import pandas as pd

    values = s.astype("object").where(s.notna(), None)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    return values.map(lambda v: None if v is None else str(v))


def fit_state(
    train: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    min_frequency: float = 0.01,
    max_levels: int | None = None,
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
    max_levels : int, optional
        At most this many levels (reference included) are kept per categorical column; the
        less frequent ones are pooled into ``__other__`` (``preprocess.max_levels``).

    Returns
    -------
    dict
        JSON-serialisable state for :func:`transform`.
    """
    n = len(train)
    num_state = {col: fit_numeric(train[col].to_numpy(dtype=float)) for col in numeric}
    cat_state = {}
    for col in categorical:
        values = _as_str_levels(train[col])
        cat_state[col] = categorical_state(
            values.value_counts(dropna=True), int(values.isna().sum()), n, min_frequency, max_levels
        )
    return assemble_state(num_state, cat_state, min_frequency, max_levels, n)


def assemble_state(
    num_state: dict, cat_state: dict, min_frequency: float, max_levels: int | None, n: int
) -> dict:
    """The state JSON from its per-column parts (one place for its keys and their order)."""
    return {
        "numeric": num_state,
        "categorical": cat_state,
        "min_frequency": min_frequency,
        "max_levels": max_levels,
        "n_train": n,
    }


def fit_numeric(x: np.ndarray) -> dict:
    """State of one numeric column from its training values ``x`` (float, NaN = missing).

    The exact median of the observed values, then the mean and population standard
    deviation of the median-imputed column, in the order of ``x`` (numpy's pairwise
    sums depend on it): a column-at-a-time fit (:mod:`survival_framework.etl`) passes the
    training rows in table order and gets the same bits as :func:`fit_state`.
    """
    missing = np.isnan(x)
    observed = x[~missing]
    median = float(np.median(observed)) if observed.size else 0.0
    filled = np.where(missing, median, x)
    return numeric_state(median, float(filled.mean()), float(filled.std()))


def level_codes(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Categorical values as integer codes into their levels (``str(value)``); -1 = missing.

    Counting codes (``numpy.bincount``) gives the level counts of any subset of rows, as
    ``value_counts`` of those rows would, without a Python object per row and subset.
    """
    import pandas as pd

    codes, uniques = pd.factorize(_as_str_levels(s), use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), [str(v) for v in uniques]


def observed_levels(codes: np.ndarray, levels: Sequence[str]) -> list[str]:
    """The sorted levels that occur in ``codes`` (:func:`level_codes`)."""
    counts = np.bincount(codes[codes >= 0], minlength=len(levels))
    return sorted(str(levels[i]) for i in np.flatnonzero(counts))


def fit_categorical_codes(
    codes: np.ndarray,
    levels: Sequence[str],
    min_frequency: float,
    max_levels: int | None = None,
) -> dict:
    """State of one categorical column from the codes of its training rows (:func:`level_codes`).

    The same state as :func:`fit_state` fits on those rows: levels with no training row are
    not observed levels (``value_counts`` would not list them).
    """
    import pandas as pd

    counts = np.bincount(codes[codes >= 0], minlength=len(levels))
    seen = np.flatnonzero(counts)
    observed = pd.Series(counts[seen], index=pd.Index([levels[i] for i in seen], dtype=object))
    n_missing = int((codes < 0).sum())
    return categorical_state(observed, n_missing, len(codes), min_frequency, max_levels)


def numeric_state(median: float, mean: float, std: float) -> dict:
    """State of one numeric column from its training median and the mean and population
    standard deviation of the median-imputed training column (a zero std scales by 1)."""
    return {"median": median, "mean": mean, "scale": std if std > 0 else 1.0}


def categorical_state(
    counts: pd.Series,
    n_missing: int,
    n: int,
    min_frequency: float,
    max_levels: int | None = None,
) -> dict:
    """State of one categorical column from its training level counts (rule: module docstring).

    Shared by the pandas and Spark ETL paths, so both break ties the same way.

    Parameters
    ----------
    counts : pandas.Series
        Rows per observed level (index: level as str), in any order.
    n_missing : int
        Training rows where the column is missing.
    n : int
        Training rows.
    min_frequency : float
        Levels whose share of training rows is below this are pooled into ``__other__``.
    max_levels : int, optional
        Keep at most this many levels (reference included), the most frequent ones.

    Returns
    -------
    dict
        ``fill``, ``reference``, ``levels``, ``has_other``, ``n_rare_levels``.
    """
    # deterministic order: by count desc, then level name
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    fill = str(counts.index[0]) if len(counts) else OTHER
    counts_filled = counts.copy()
    if len(counts):
        counts_filled[fill] += n_missing
    kept = [str(lv) for lv, c in counts_filled.items() if c / n >= min_frequency]
    if max_levels is not None:
        kept = kept[:max_levels]
    if not kept:
        kept = [fill]
    reference = kept[0]
    kept_set = set(kept)
    rare = [str(lv) for lv in counts_filled.index if str(lv) not in kept_set]
    return {
        "fill": fill,
        "reference": reference,
        "levels": sorted(lv for lv in kept if lv != reference),
        "has_other": bool(rare),
        "n_rare_levels": len(rare),
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
    import pandas as pd

    return pd.DataFrame(transform_columns(df, state), index=df.index, columns=output_columns(state))


def transform_columns(df: pd.DataFrame, state: dict) -> dict[str, np.ndarray]:
    """The columns of :func:`transform` as float64 arrays, in :func:`output_columns` order.

    Row by row, so any batch of rows gives the rows of the whole-table transform; the
    chunked split writer hands these arrays to Arrow without a DataFrame in between.
    """
    import pandas as pd

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
    return out


def transform_matrix(
    df: pd.DataFrame, state: dict, dtype: type = np.float64, release: bool = False
) -> np.ndarray:
    """:func:`transform` as one Fortran-order matrix, filled one raw column at a time.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with the raw feature columns named in ``state``.
    state : dict
        Output of :func:`fit_state`.
    dtype : numpy dtype
        Of the matrix (float32 for models that cast to it anyway).
    release : bool
        Drop each raw column from ``df`` once transformed, so the raw table and the matrix
        are never both whole in memory (at 10M rows each is ~4 GB).

    Returns
    -------
    ndarray of shape (len(df), len(output_columns(state)))
        The same values as ``transform(df, state)`` (cast to ``dtype``).
    """
    names = output_columns(state)
    X = np.empty((len(df), len(names)), dtype=dtype, order="F")
    j = 0
    for kind in ("numeric", "categorical"):
        for col, st in state[kind].items():
            one = {kind: {col: st}, "numeric" if kind == "categorical" else "categorical": {}}
            for values in transform_columns(df, one).values():
                X[:, j] = values
                j += 1
            if release:
                del df[col]
    return X
