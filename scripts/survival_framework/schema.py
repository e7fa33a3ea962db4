"""Validation of a user's time-to-event table.

Every problem raises :class:`~survival_framework.errors.InputValidationError` naming the
file, the column and the problem; recoverable oddities (zero durations, constant features)
are fixed in a documented way and reported as warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .errors import InputValidationError

__all__ = ["ROW_COL", "DataWarning", "validate_survival_table", "coerce_event"]

ROW_COL = "_row"
"""Column added to the clean table: the row's position in the input file."""

_TRUE = {"1", "true", "t", "yes", "1.0"}
_FALSE = {"0", "false", "f", "no", "0.0"}


class DataWarning(UserWarning):
    """A recoverable problem in the input table that was handled automatically."""


def coerce_event(s: pd.Series, path: str, column: str) -> np.ndarray:
    """Convert an event column (bool, 0/1 numbers or 'true'/'false' strings) to int8 0/1.

    Raises
    ------
    InputValidationError
        If any value is missing or not one of the accepted spellings.
    """
    if s.isna().any():
        n = int(s.isna().sum())
        raise InputValidationError(path, f"{n} missing event value(s); events must be 0/1", column)
    if ptypes.is_bool_dtype(s):
        return s.to_numpy(dtype=np.int8)
    if ptypes.is_numeric_dtype(s):
        bad = ~s.isin([0, 1])
        if bad.any():
            examples = ", ".join(map(repr, pd.unique(s[bad])[:5].tolist()))
            raise InputValidationError(
                path, f"event values must be 0/1 or true/false; found {examples}", column
            )
        return s.to_numpy(dtype=np.int8)
    text = s.astype(str).str.strip().str.lower()
    is_true, is_false = text.isin(_TRUE), text.isin(_FALSE)
    bad = ~(is_true | is_false)
    if bad.any():
        examples = ", ".join(map(repr, pd.unique(s[bad])[:5].tolist()))
        raise InputValidationError(
            path, f"event values must be 0/1 or true/false; found {examples}", column
        )
    return is_true.to_numpy(dtype=np.int8)


def _coerce_duration(s: pd.Series, path: str, column: str) -> np.ndarray:
    if not ptypes.is_numeric_dtype(s) or ptypes.is_bool_dtype(s):
        converted = pd.to_numeric(s, errors="coerce")
        bad = converted.isna() & s.notna()
        if bad.any():
            examples = ", ".join(map(repr, pd.unique(s[bad])[:5].tolist()))
            raise InputValidationError(
                path, f"durations must be numeric; found non-numeric values {examples}", column
            )
        s = converted
    x = s.to_numpy(dtype=float)
    if np.isnan(x).any():
        raise InputValidationError(path, f"{int(np.isnan(x).sum())} missing duration(s)", column)
    if np.isinf(x).any():
        raise InputValidationError(path, f"{int(np.isinf(x).sum())} infinite duration(s)", column)
    if (x < 0).any():
        rows = np.flatnonzero(x < 0)
        raise InputValidationError(
            path,
            f"{rows.size} negative duration(s), e.g. row {int(rows[0])} = {x[rows[0]]:g}",
            column,
        )
    zero = x == 0
    if zero.any():
        positive = x[x > 0]
        if positive.size == 0:
            raise InputValidationError(path, "all durations are zero", column)
        eps = float(positive.min()) / 2.0
        warnings.warn(
            f"{path}, column {column!r}: {int(zero.sum())} zero duration(s) set to {eps:g} "
            "(half the smallest positive duration) so that parametric models can be fitted",
            DataWarning,
            stacklevel=3,
        )
        x = np.where(zero, eps, x)
    return x


def _resolve_features(
    df: pd.DataFrame,
    path: str,
    reserved: set[str],
    features: Sequence[str] | None,
    categorical: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    """Feature and categorical column lists, defaulted and checked against ``df``."""
    if features is None:
        features = [c for c in df.columns if c not in reserved]
    features = list(features)
    for col in features:
        if col not in df.columns:
            raise InputValidationError(
                path, f"feature column not found; available columns: {list(df.columns)}", col
            )
        if col in reserved:
            raise InputValidationError(
                path, "listed as a feature but is the duration, event or id column", col
            )
    if not features:
        raise InputValidationError(path, "no feature columns besides duration/event/id")
    if categorical is None:
        categorical = [
            c for c in features if not ptypes.is_numeric_dtype(df[c]) or ptypes.is_bool_dtype(df[c])
        ]
    categorical = list(categorical)
    for col in categorical:
        if col not in features:
            raise InputValidationError(path, "listed as categorical but not a feature", col)
    return features, categorical


def _clean_numeric(s: pd.Series, path: str, col: str) -> np.ndarray | None:
    """Float values of a numeric feature, or None if it is constant or entirely missing."""
    if not ptypes.is_numeric_dtype(s):
        raise InputValidationError(path, "numeric feature has non-numeric values", col)
    x = s.to_numpy(dtype=float)
    if np.isinf(x).any():
        raise InputValidationError(path, f"{int(np.isinf(x).sum())} infinite value(s)", col)
    if np.isnan(x).all() or np.nanmin(x) == np.nanmax(x):
        return None
    return x


def _clean_categorical(s: pd.Series) -> np.ndarray | None:
    """String values of a categorical feature, or None if it is constant or entirely missing."""
    text = s.astype("object").where(s.notna(), None)
    text = text.map(lambda v: None if v is None else str(v))
    if text.nunique(dropna=True) <= 1:
        return None
    return text.to_numpy(dtype=object)


def _check_structure(df: pd.DataFrame, path: str, columns: dict[str, str | None]) -> None:
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()].unique().tolist()
        raise InputValidationError(path, f"duplicated column name(s) {dup}", str(dup[0]))
    if len(df) == 0:
        raise InputValidationError(path, "table has no rows")
    for role, col in columns.items():
        if col is not None and col not in df.columns:
            raise InputValidationError(
                path, f"{role} column not found; available columns: {list(df.columns)}", col
            )
    if ROW_COL in df.columns:
        raise InputValidationError(path, f"column name {ROW_COL!r} is reserved", ROW_COL)


def validate_survival_table(
    df: pd.DataFrame,
    path: str,
    duration_col: str,
    event_col: str,
    id_col: str | None = None,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    min_rows: int = 2,
) -> tuple[pd.DataFrame, dict]:
    """Validate a time-to-event table and return a clean copy with its schema.

    Parameters
    ----------
    df : pandas.DataFrame
        Table as read from ``path``.
    path : str
        File name, used in error messages.
    duration_col, event_col : str
        Observed time (non-negative number) and event indicator (0/1, bool or true/false).
    id_col : str, optional
        Unique identifier column, carried through to predictions.
    features : sequence of str, optional
        Feature columns; default all columns except duration, event and id.
    categorical : sequence of str, optional
        Categorical features; default those with object, string, category or bool dtype.
    min_rows : int
        Minimum number of rows (and of events) required.

    Returns
    -------
    clean : pandas.DataFrame
        Columns ``_row`` (input row position), the id column if given, duration (float64),
        event (int8) and the features (numeric as float64, categorical as strings).
    schema : dict
        Column roles and dtypes, recorded in ``results/data/schema.json``.

    Raises
    ------
    InputValidationError
        On the first problem found.
    """
    path = str(path)
    _check_structure(df, path, {"duration": duration_col, "event": event_col, "id": id_col})
    reserved = {duration_col, event_col} | ({id_col} if id_col else set())
    features, categorical = _resolve_features(df, path, reserved, features, categorical)

    duration = _coerce_duration(df[duration_col], path, duration_col)
    event = coerce_event(df[event_col], path, event_col)
    n_events = int(event.sum())
    if n_events == 0:
        raise InputValidationError(path, "all rows are censored (no events)", event_col)
    if len(df) < min_rows or n_events < min_rows:
        raise InputValidationError(
            path,
            f"{len(df)} rows with {n_events} events; at least {min_rows} of each are needed "
            "(number of folds x minimum per fold)",
            event_col,
        )
    if id_col is not None and df[id_col].duplicated().any():
        n = int(df[id_col].duplicated().sum())
        raise InputValidationError(path, f"{n} duplicated id value(s)", id_col)

    clean = {ROW_COL: np.arange(len(df), dtype=np.int64)}
    if id_col is not None:
        clean[id_col] = df[id_col].to_numpy()
    clean[duration_col] = duration
    clean[event_col] = event
    dropped = []
    for col in features:
        if col in categorical:
            values = _clean_categorical(df[col])
        else:
            values = _clean_numeric(df[col], path, col)
        if values is None:
            dropped.append(col)
            warnings.warn(
                f"{path}, column {col!r}: feature is constant or entirely missing; dropped",
                DataWarning,
                stacklevel=2,
            )
        else:
            clean[col] = values
    numeric = [c for c in features if c not in categorical and c not in dropped]
    categorical = [c for c in categorical if c not in dropped]
    if not numeric and not categorical:
        raise InputValidationError(path, "every feature is constant or entirely missing")
    schema = {
        "source": path,
        "duration_col": duration_col,
        "event_col": event_col,
        "id_col": id_col,
        "numeric": numeric,
        "categorical": categorical,
        "dropped": dropped,
        "input_dtypes": {c: str(df[c].dtype) for c in [*numeric, *categorical]},
        "n_rows": len(df),
        "n_events": n_events,
    }
    return pd.DataFrame(clean), schema
