"""Validation of a user's time-to-event table.

Every problem raises :class:`~survival_framework.errors.InputValidationError` with the
one-line message ``"<file>, column '<col>': <problem>"`` (``"<file>: <problem>"`` when no
single column is to blame); recoverable oddities are fixed in a documented way and
reported as :class:`DataWarning` (which the rule scripts send to the job's log).

Checks, in the order they run (the first problem found is reported):

1. **Structure** (by hand, needs the whole header): column names are made strings and must
   be unique, the table has rows, ``_row`` is not used, the duration, event, id and
   feature columns exist (with a "did you mean" hint for near misses), no numeric feature
   collides with a one-hot column name ``<categorical>=<level>``.
2. **Values** (a :mod:`pandera` schema, validated lazily, whose failure cases are
   translated back into one line): durations numeric, not missing, finite, not negative;
   events not missing and one of 0/1/true/false (any case, also t/f, yes/no, 1.0/0.0 and
   booleans); ids unique; numeric features numeric and finite.
3. **Table level**: at least one event, at least ``min_rows`` rows and ``min_rows``
   events (``cv.n_folds x cv.min_rows_per_fold``), with a dedicated message for a single
   event.
4. **Fixes, each with a DataWarning naming file and column**: zero durations are set to half
   the smallest positive duration (parametric models need ``t > 0``); constant or entirely
   missing features are dropped; a categorical with more than ``max_levels`` distinct
   levels is flagged (preprocessing keeps its ``max_levels`` most frequent levels per
   fold and pools the rest into ``__other__``, see :mod:`survival_framework.preprocess`).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api import types as ptypes

from .contract import OTHER, ROW_COL
from .errors import InputValidationError

__all__ = [
    "DataWarning",
    "validate_survival_table",
    "coerce_event",
]


_TRUE = {"1", "true", "t", "yes", "1.0"}
_FALSE = {"0", "false", "f", "no", "0.0"}


class DataWarning(UserWarning):
    """A recoverable problem in the input table that was handled automatically."""


# --------------------------------------------------------------------------- helpers


def _examples(values: pd.Series | np.ndarray, k: int = 5) -> str:
    """Up to ``k`` distinct values, comma-separated, as Python literals."""
    return ", ".join(repr(v) for v in pd.unique(pd.Series(values, dtype=object))[:k].tolist())


def _as_number(s: pd.Series) -> pd.Series:
    """Values as float; anything that is not a number (or is missing) becomes NaN.

    Dates and timedeltas are not numbers here: a duration must be given in time units.
    """
    if ptypes.is_datetime64_any_dtype(s) or ptypes.is_timedelta64_dtype(s):
        return pd.Series(np.nan, index=s.index)
    return pd.to_numeric(s, errors="coerce").astype(float)


def _event_codes(s: pd.Series) -> pd.Series:
    """Event values as 1.0/0.0; missing or unrecognised spellings become NaN."""
    if ptypes.is_bool_dtype(s):
        return s.astype(float).where(s.notna())
    if ptypes.is_numeric_dtype(s):
        x = s.astype(float)
        return x.where(x.isin([0.0, 1.0]))
    text = s.astype(str).str.strip().str.lower()
    out = pd.Series(np.nan, index=s.index)
    out[text.isin(_TRUE)] = 1.0
    out[text.isin(_FALSE)] = 0.0
    return out.where(s.notna())


# --------------------------------------------------------------------------- value rules


@dataclass(frozen=True)
class _Rule:
    """One value check: ``ok(series)`` is True where a value passes; ``problem(bad)`` is the
    message for the failing values ``bad`` (a Series indexed by row number)."""

    key: str
    ok: Callable[[pd.Series], pd.Series]
    problem: Callable[[pd.Series], str]


def _first_row(bad: pd.Series) -> str:
    value = bad.iloc[0]
    shown = f"{value:g}" if isinstance(value, int | float | np.number) else repr(value)
    return f"row {bad.index[0]} = {shown}"


_DURATION_RULES = (
    _Rule(
        "non_numeric",
        lambda s: s.isna() | _as_number(s).notna(),
        lambda bad: (
            f"durations must be numeric; found non-numeric values {_examples(bad)}"
            + (
                " (dates: give the time from origin to event or censoring, e.g. in days)"
                if ptypes.is_datetime64_any_dtype(bad) or ptypes.is_timedelta64_dtype(bad)
                else ""
            )
        ),
    ),
    _Rule(
        "missing",
        lambda s: s.notna(),
        lambda bad: f"{len(bad)} missing duration(s), e.g. row {bad.index[0]}",
    ),
    _Rule(
        "infinite",
        lambda s: ~np.isinf(_as_number(s)),
        lambda bad: f"{len(bad)} infinite duration(s), e.g. {_first_row(bad)}",
    ),
    _Rule(
        "negative",
        lambda s: ~(_as_number(s) < 0),
        lambda bad: f"{len(bad)} negative duration(s), e.g. {_first_row(bad)}",
    ),
)

_EVENT_RULES = (
    _Rule(
        "missing",
        lambda s: s.notna(),
        lambda bad: (
            f"{len(bad)} missing event value(s), e.g. row {bad.index[0]}; events must be 0/1"
        ),
    ),
    _Rule(
        "values",
        lambda s: s.isna() | _event_codes(s).notna(),
        lambda bad: f"event values must be 0/1 or true/false; found {_examples(bad)}",
    ),
)

_ID_RULES = (
    _Rule(
        "duplicated",
        lambda s: ~s.duplicated(),
        lambda bad: f"{len(bad)} duplicated id value(s), e.g. {_examples(bad, 3)}",
    ),
)

_NUMERIC_FEATURE_RULES = (
    _Rule(
        "non_numeric",
        lambda s: s.isna() | _as_number(s).notna(),
        lambda bad: (
            f"numeric feature has non-numeric values {_examples(bad)}; "
            "list it under data.categorical or fix the values"
        ),
    ),
    _Rule(
        "infinite",
        lambda s: ~np.isinf(_as_number(s)),
        lambda bad: f"{len(bad)} infinite value(s), e.g. {_first_row(bad)}",
    ),
)


def _check_values(df: pd.DataFrame, path: str, rules: dict[str, Sequence[_Rule]]) -> None:
    """Run per-column value rules as one lazy :mod:`pandera` validation.

    Parameters
    ----------
    df : pandas.DataFrame
        Table with a default RangeIndex (row numbers are reported from the index).
    path : str
        File name for the message.
    rules : dict
        Column name -> rules, in priority order (columns in dict order, then rules).

    Raises
    ------
    InputValidationError
        For the first failing (column, rule) in priority order, naming the file, the column
        and the problem, with counts and example values from pandera's failure cases.
    """
    columns = {
        col: pa.Column(
            name=col,
            required=True,
            nullable=True,
            checks=[pa.Check(r.ok, name=r.key, error=r.key, ignore_na=False) for r in col_rules],
        )
        for col, col_rules in rules.items()
    }
    schema = pa.DataFrameSchema(columns, strict=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandera's internal FutureWarnings on concat
            schema.validate(df[list(rules)], lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        for col, col_rules in rules.items():
            for rule in col_rules:
                hit = cases[(cases["column"] == col) & (cases["check"] == rule.key)]
                if not len(hit):
                    continue
                rows = pd.to_numeric(hit["index"], errors="coerce").dropna().astype("int64")
                if not len(rows):  # the check itself raised (e.g. unhashable values)
                    problem = f"check {rule.key!r} failed: {hit['failure_case'].iloc[0]}"
                    raise InputValidationError(path, problem, col) from None
                bad = df[col].iloc[np.sort(rows.to_numpy())]
                raise InputValidationError(path, rule.problem(bad), col) from None
        # a failure we have no rule for (should not happen): still one line, never a trace
        first = cases.iloc[0]
        raise InputValidationError(
            path, f"failed check {first['check']}: {first['failure_case']!r}", first["column"]
        ) from None


# --------------------------------------------------------------------------- structure


def _normalise_columns(df: pd.DataFrame, path: str) -> pd.DataFrame:
    """String column names (pickles may carry others), unique, default row index."""
    if not all(isinstance(c, str) for c in df.columns):
        df = df.set_axis([str(c) for c in df.columns], axis=1)
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()].unique().tolist()
        raise InputValidationError(
            path,
            f"duplicated column name (appears {int((df.columns == dup[0]).sum())} times)"
            + (f"; also duplicated: {dup[1:]}" if len(dup) > 1 else ""),
            dup[0],
        )
    return df.reset_index(drop=True)


def _not_found(path: str, role: str, col: str, available: Sequence[str]) -> InputValidationError:
    available = list(available)
    hint = ""
    near = [c for c in available if c.strip().casefold() == col.strip().casefold()]
    near = near or difflib.get_close_matches(col, available, n=1, cutoff=0.75)
    if near:
        hint = f"did you mean {near[0]!r}? "
    shown = available if len(available) <= 30 else [*available[:30], f"... ({len(available)})"]
    return InputValidationError(
        path, f"{role} column not found; {hint}available columns: {shown}", col
    )


def _check_structure(df: pd.DataFrame, path: str, columns: dict[str, str | None]) -> None:
    if len(df) == 0:
        raise InputValidationError(path, "table has no rows")
    if ROW_COL in df.columns:
        raise InputValidationError(path, f"column name {ROW_COL!r} is reserved", ROW_COL)
    for role, col in columns.items():
        if col is not None and col not in df.columns:
            raise _not_found(path, role, col, df.columns)


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
            raise _not_found(path, "feature", col, df.columns)
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


def _check_name_collisions(
    clean: dict[str, np.ndarray], path: str, numeric: list[str], categorical: list[str]
) -> None:
    """A numeric feature must not share its name with a one-hot column ``<cat>=<level>``."""
    if not numeric or not categorical:
        return
    one_hot: dict[str, str] = {}
    for cat in categorical:
        levels = {v for v in pd.unique(clean[cat]) if v is not None} | {OTHER}
        one_hot.update({f"{cat}={lv}": cat for lv in levels})
    for col in numeric:
        if col in one_hot:
            raise InputValidationError(
                path,
                f"name collides with a one-hot column of categorical {one_hot[col]!r}; "
                "rename one of the two",
                col,
            )


# --------------------------------------------------------------------------- conversions


def coerce_event(s: pd.Series, path: str, column: str) -> np.ndarray:
    """Convert an event column (bool, 0/1 numbers or 'true'/'false' strings) to int8 0/1.

    Raises
    ------
    InputValidationError
        If any value is missing or not one of the accepted spellings.
    """
    s = s.reset_index(drop=True)
    _check_values(s.to_frame(column), path, {column: _EVENT_RULES})
    return _event_codes(s).to_numpy(dtype=np.int8)


def _fix_zero_durations(x: np.ndarray, path: str, column: str) -> tuple[np.ndarray, str | None]:
    """Zero durations set to half the smallest positive one, with the warning text."""
    zero = x == 0
    if not zero.any():
        return x, None
    positive = x[x > 0]
    if positive.size == 0:
        raise InputValidationError(path, "all durations are zero", column)
    eps = float(positive.min()) / 2.0
    note = (
        f"{path}, column {column!r}: {int(zero.sum())} zero duration(s) set to {eps:g} "
        "(half the smallest positive duration) so that parametric models can be fitted"
    )
    return np.where(zero, eps, x), note


def _clean_numeric(s: pd.Series) -> np.ndarray | None:
    """Float values of a numeric feature, or None if it is constant or entirely missing."""
    x = _as_number(s).to_numpy(dtype=float)
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


def _check_events(path: str, event_col: str, event: np.ndarray, n_rows: int, min_rows: int):
    n_events = int(event.sum())
    need = "(cv.n_folds x cv.min_rows_per_fold)"
    if n_events == 0:
        raise InputValidationError(path, "all rows are censored (no events)", event_col)
    if n_rows < min_rows:
        raise InputValidationError(path, f"{n_rows} rows; at least {min_rows} are needed {need}")
    if n_events == 1:
        raise InputValidationError(
            path,
            f"a single event (row {int(np.flatnonzero(event)[0])}); at least {min_rows} events "
            f"are needed {need}",
            event_col,
        )
    if n_events < min_rows:
        raise InputValidationError(
            path, f"{n_events} events; at least {min_rows} are needed {need}", event_col
        )
    return n_events


def _many_levels(values: np.ndarray, path: str, col: str, max_levels: int) -> str | None:
    """Warning text for a categorical with more than ``max_levels`` distinct levels."""
    n_levels = int(pd.Series(values).nunique())
    if n_levels <= max_levels:
        return None
    note = (
        f"{path}, column {col!r}: categorical with {n_levels} distinct levels; only the "
        f"{max_levels} most frequent are kept per fold, the rest are pooled into {OTHER!r} "
        "(preprocess.max_levels)"
    )
    if n_levels == int(pd.notna(values).sum()):
        note += (
            "; every value is distinct: an identifier? set data.id_col or drop it from "
            "data.features"
        )
    return note


def _warn(message: str) -> str:
    warnings.warn(message, DataWarning, stacklevel=3)
    return message


# --------------------------------------------------------------------------- entry point


def validate_survival_table(
    df: pd.DataFrame,
    path: str,
    duration_col: str,
    event_col: str,
    id_col: str | None = None,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    min_rows: int = 2,
    max_levels: int | None = None,
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
    max_levels : int, optional
        ``preprocess.max_levels``: a categorical with more distinct levels gets a
        DataWarning (its rarest levels will be pooled into ``__other__``).

    Returns
    -------
    clean : pandas.DataFrame
        Columns ``_row`` (input row position), the id column if given, duration (float64),
        event (int8) and the features (numeric as float64, categorical as strings).
    schema : dict
        Column roles and dtypes, plus the data warnings issued, recorded in
        ``results/data/schema.json``.

    Raises
    ------
    InputValidationError
        On the first problem found (see the module docstring for the order).
    """
    path = str(path)
    df = _normalise_columns(df, path)
    _check_structure(df, path, {"duration": duration_col, "event": event_col, "id": id_col})
    reserved = {duration_col, event_col} | ({id_col} if id_col else set())
    features, categorical = _resolve_features(df, path, reserved, features, categorical)

    rules: dict[str, Sequence[_Rule]] = {duration_col: _DURATION_RULES, event_col: _EVENT_RULES}
    if id_col is not None:
        rules[id_col] = _ID_RULES
    rules.update({c: _NUMERIC_FEATURE_RULES for c in features if c not in categorical})
    _check_values(df, path, rules)

    duration = _as_number(df[duration_col]).to_numpy(dtype=float)
    event = _event_codes(df[event_col]).to_numpy(dtype=np.int8)
    n_events = _check_events(path, event_col, event, len(df), min_rows)
    notes: list[str] = []
    duration, note = _fix_zero_durations(duration, path, duration_col)
    if note:
        notes.append(_warn(note))

    clean = {ROW_COL: np.arange(len(df), dtype=np.int64)}
    if id_col is not None:
        clean[id_col] = df[id_col].to_numpy()
    clean[duration_col] = duration
    clean[event_col] = event
    dropped = []
    for col in features:
        values = _clean_categorical(df[col]) if col in categorical else _clean_numeric(df[col])
        if values is None:
            dropped.append(col)
            notes.append(
                _warn(f"{path}, column {col!r}: feature is constant or entirely missing; dropped")
            )
            continue
        clean[col] = values
        if col in categorical and max_levels is not None:
            note = _many_levels(values, path, col, max_levels)
            if note:
                notes.append(_warn(note))
    numeric = [c for c in features if c not in categorical and c not in dropped]
    categorical = [c for c in categorical if c not in dropped]
    if not numeric and not categorical:
        raise InputValidationError(path, "every feature is constant or entirely missing")
    _check_name_collisions(clean, path, numeric, categorical)
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
        "warnings": notes,
    }
    return pd.DataFrame(clean), schema
