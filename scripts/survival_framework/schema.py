"""Validation of a user's time-to-event table.

Every problem raises :class:`~survival_framework.errors.InputValidationError` with the
one-line message ``"<file>, column '<col>': <problem>"`` (``"<file>: <problem>"`` when no
single column is to blame); recoverable oddities are fixed in a documented way and
reported as :class:`DataWarning` (which the rule scripts send to the job's log, and
``validate_data`` also summarises on the console: :func:`warning_summary`).

Checks, in the order they run (the first problem found is reported):

1. **Structure** (by hand, needs the whole header): column names are made strings and must
   be unique, the table has rows, ``_row`` is not used, the duration, event, id and
   feature columns exist (with a "did you mean" hint for near misses).
2. **Saved row indexes**: a column that looks like one (unnamed -- ``Unnamed: N``, an empty
   name or ``__index_level_N__`` --, or, in tables of at least 10 rows, an integer column
   equal to the row number, 0- or 1-based, or strictly monotone in it) leaks the row order into the
   models; it is left out of the default features, with a DataWarning, unless
   ``data.keep_index_columns`` is true or it is named in ``data.features`` or
   ``data.categorical`` (then kept, with a DataWarning).
3. **Cell types** (no silent stringification): nested values (list, tuple, dict, set,
   array) in any column used are an error naming an example row; so are dates and time
   spans (datetime64, timedelta64, period, date objects, or text of which at least half
   are ISO dates ``YYYY-MM-DD[Thh:mm[:ss]]``) in a feature not listed under
   ``data.categorical``.
4. **Feature kinds**, when ``data.categorical`` is not given: a text column of which at
   least 95 % of the non-missing values are numbers, but not all, is a numeric column with
   stray text: the strays are set to missing and the column used as numeric (DataWarning
   with their count and values); a text column of which 50-95 % are numbers stays
   categorical, with a DataWarning. Text columns holding only numbers stay categorical
   (a typed file stored them as text on purpose; a CSV column of numbers is read as numbers).
5. **Values** (a :mod:`pandera` schema, validated lazily, whose failure cases are
   translated back into one line): durations numeric, not missing, finite, not negative;
   events not missing and one of 0/1/true/false (any case, also t/f, yes/no, 1.0/0.0 and
   booleans); ids unique; numeric features numeric and finite.
6. **Table level**: at least one event, at least ``min_rows`` rows and ``min_rows``
   events (``cv.n_folds x cv.min_rows_per_fold``), with a dedicated message for a single
   event.
7. **Fixes, each with a DataWarning naming file and column**: zero durations are set to half
   the smallest positive duration (parametric models need ``t > 0``); constant or entirely
   missing features are dropped; a categorical with more than ``max_levels`` distinct
   levels is flagged (preprocessing keeps its ``max_levels`` most frequent levels per
   fold and pools the rest into ``__other__``, see :mod:`survival_framework.preprocess`).
8. **One-hot names**: no numeric feature is named like a one-hot column
   ``<categorical>=<level>``, and no two categoricals give the same one-hot column name
   (``a`` with level ``b=c`` and ``a=b`` with level ``c`` both give ``a=b=c``).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa
from pandas.api import types as ptypes

from .batches import BATCH_ROWS, ParquetColumns, positions_in, write_chunks
from .contract import OTHER, PARQUET_SUFFIXES, ROW_COL
from .errors import InputValidationError
from .io import read_table
from .splits import sample_positions

__all__ = [
    "DataWarning",
    "validate_survival_table",
    "validate_file",
    "coerce_event",
    "warning_summary",
]


_TRUE = {"1", "true", "t", "yes", "1.0"}
_FALSE = {"0", "false", "f", "no", "0.0"}

NUMERIC_SHARE = 0.95
"""A text feature with at least this share of numbers (but not only numbers) is numeric."""
MIXED_SHARE = 0.5
"""Share of numbers (or of ISO dates) from which a text feature is flagged (or rejected)."""
INDEX_MIN_ROWS = 10
"""Index-like values (row numbers, strictly monotone integers) are looked for from this size."""

_UNNAMED = re.compile(r"Unnamed: \d+|__index_level_\d+__|\s*")
_ISO_DATE = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_NESTED = (list, tuple, dict, set, frozenset, np.ndarray, pd.Series)
# what pandas.api.types.infer_dtype says of object columns of scalars only: no cell to inspect
_SCALAR_KINDS = {
    "string", "bytes", "empty", "integer", "floating", "mixed-integer-float", "decimal",
    "complex", "boolean", "categorical", "datetime64", "datetime", "date", "timedelta64",
    "timedelta", "time", "period", "interval",
}  # fmt: skip
_DATE_KINDS = {"datetime64", "datetime", "date", "time", "period"}
_TEXT_SAMPLE = 20_000
"""Long text columns are first profiled on a random sample of this many values."""


class DataWarning(UserWarning):
    """A recoverable problem in the input table that was handled automatically."""


# --------------------------------------------------------------------------- helpers


def _examples(values: pd.Series | np.ndarray, k: int = 5) -> str:
    """Up to ``k`` distinct values, comma-separated, as Python literals."""
    return ", ".join(repr(v) for v in pd.unique(pd.Series(values, dtype=object))[:k].tolist())


def _short(value: object, width: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``width`` characters."""
    text = re.sub(r"\s*\n\s*", " ", repr(value))  # an array's repr wraps lines
    return text if len(text) <= width else text[: width - 3] + "..."


def _counts(counts: pd.Series, k: int = 3) -> str:
    """``'unknown' x3, '?' x1`` for the ``k`` most frequent values of a value-count Series."""
    shown = ", ".join(f"{_short(v, 30)} x{int(n)}" for v, n in counts.iloc[:k].items())
    return shown + (f", ... ({len(counts)} distinct)" if len(counts) > k else "")


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
        col: pandera.Column(
            name=col,
            required=True,
            nullable=True,
            checks=[
                pandera.Check(r.ok, name=r.key, error=r.key, ignore_na=False) for r in col_rules
            ],
        )
        for col, col_rules in rules.items()
    }
    schema = pandera.DataFrameSchema(columns, strict=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandera's internal FutureWarnings on concat
            schema.validate(df[list(rules)], lazy=True)
    except pandera.errors.SchemaErrors as exc:
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


def _check_structure(
    n_rows: int, names: Sequence[str], path: str, columns: dict[str, str | None]
) -> None:
    if n_rows == 0:
        raise InputValidationError(path, "table has no rows")
    if ROW_COL in names:
        raise InputValidationError(path, f"column name {ROW_COL!r} is reserved", ROW_COL)
    for role, col in columns.items():
        if col is not None and col not in names:
            raise _not_found(path, role, col, names)


def _resolve_features(
    names: Sequence[str],
    dtypes: dict,
    path: str,
    reserved: set[str],
    features: Sequence[str] | None,
    categorical: Sequence[str] | None,
    excluded: dict[str, str],
) -> tuple[list[str], list[str]]:
    """Feature and categorical column lists, defaulted and checked against the columns.

    The default features are the columns besides ``reserved`` and ``excluded`` (row indexes).
    ``dtypes`` (column -> pandas dtype) decides the default categoricals: dtypes of an empty
    Parquet table do here, as numeric-ness does not depend on missing values (an int column
    with gaps is read as float64, a bool one as object: numeric and not numeric either way).
    """
    if features is None:
        features = [c for c in names if c not in reserved and c not in excluded]
    features = list(features)
    for col in features:
        if col not in names:
            raise _not_found(path, "feature", col, names)
        if col in reserved:
            raise InputValidationError(
                path, "listed as a feature but is the duration, event or id column", col
            )
    if not features:
        problem = "no feature columns besides duration/event/id"
        if excluded:
            problem += f" (excluded as row indexes: {list(excluded)}; data.keep_index_columns)"
        raise InputValidationError(path, problem)
    if categorical is None:
        categorical = [
            c
            for c in features
            if not ptypes.is_numeric_dtype(dtypes[c]) or ptypes.is_bool_dtype(dtypes[c])
        ]
    categorical = list(categorical)
    for col in categorical:
        if col not in features:
            raise InputValidationError(path, "listed as categorical but not a feature", col)
    return features, categorical


def _collision_candidates(features: Sequence[str]) -> set[str]:
    """Features whose levels :func:`_check_name_collisions` may look at: those of which
    another feature's name is a prefix followed by ``=``, or the other way round."""
    return {
        c
        for c in features
        for f in features
        if f != c and (f.startswith(f"{c}=") or c.startswith(f"{f}="))
    }


def _check_name_collisions(
    level_sets: dict[str, set[str]], path: str, numeric: list[str], categorical: list[str]
) -> None:
    """No two columns of the design matrix may share a name.

    A numeric feature must not be named like a one-hot column ``<cat>=<level>``; nor may two
    categoricals give the same one-hot name, which needs one name to be the other's followed
    by ``=`` (``a`` with level ``b=c`` and ``a=b`` with level ``c``: ``a=b=c``). Only the
    levels of categoricals whose name is such a prefix are looked at: ``level_sets`` holds
    the distinct clean values of those (:func:`_collision_candidates`).
    """

    def level_set(cat: str) -> set[str]:
        return level_sets[cat] | {OTHER}

    for col in numeric:
        for cat in categorical:
            if col.startswith(f"{cat}=") and col[len(cat) + 1 :] in level_set(cat):
                raise InputValidationError(
                    path,
                    f"name collides with a one-hot column of categorical {cat!r}; "
                    "rename one of the two",
                    col,
                )
    for short in categorical:
        for long in categorical:
            if long == short or not long.startswith(f"{short}="):
                continue
            rest = long[len(short) + 1 :]  # the one-hot name long=lv is short=f"{rest}={lv}"
            for lv in sorted(level_set(long)):
                if f"{rest}={lv}" in level_set(short):
                    raise InputValidationError(
                        path,
                        f"one-hot column {f'{long}={lv}'!r} (level {lv!r}) collides with that "
                        f"of categorical {short!r} (level {f'{rest}={lv}'!r}); rename one of "
                        "the two columns",
                        long,
                    )


# --------------------------------------------------------------------------- row indexes


def _row_pattern(s: pd.Series) -> str | None:
    """How an integer column follows the row number, if it does (float columns never do:
    a saved index is written and read as integers)."""
    if len(s) < INDEX_MIN_ROWS or not ptypes.is_integer_dtype(s) or s.hasnans:
        return None
    x = s.to_numpy(dtype=float)
    step = np.diff(x[:1000])  # cheap rejection of ordinary features first
    if not ((step > 0).all() or (step < 0).all()):
        return None
    step = np.diff(x)
    if (step == 1).all() and x[0] in (0.0, 1.0):
        return f"values are the row numbers {x[0]:.0f}..{x[-1]:.0f}"
    if (step > 0).all():
        return "integer values strictly increasing with the row number"
    if (step < 0).all():
        return "integer values strictly decreasing with the row number"
    return None


def _index_reason(table: _Columns, name: str) -> str | None:
    """Why a column looks like a saved row index, or None.

    Only integer columns can follow the row number: no other column is read.
    """
    reasons = ["unnamed column"] if _UNNAMED.fullmatch(name) else []
    if ptypes.is_integer_dtype(table.dtypes[name]):
        pattern = _row_pattern(table.column(name))
        if pattern:
            reasons.append(pattern)
    return ", ".join(reasons) or None


def _index_columns(
    table: _Columns,
    path: str,
    reserved: set[str],
    features: Sequence[str] | None,
    categorical: Sequence[str] | None,
    keep: bool,
) -> tuple[dict[str, str], list[str]]:
    """Index-like feature candidates: those to exclude (column -> reason) and the notes.

    Candidates are the listed features, or every column besides duration/event/id; a column
    named in ``features`` or ``categorical`` is kept, and so is every one when ``keep``.
    """
    named = set(features or ()) | set(categorical or ())
    candidates = features if features is not None else table.columns
    excluded: dict[str, str] = {}
    notes = []
    for col in candidates:
        if col in reserved or col not in table.columns:
            continue
        reason = _index_reason(table, col)
        if reason is None:
            continue
        what = f"{path}, column {col!r}: looks like a saved row index ({reason})"
        if col in named:
            where = "data.features" if col in (features or ()) else "data.categorical"
            notes.append(
                f"{what}; kept because {where} lists it, although it can leak the row order"
            )
        elif keep:
            notes.append(
                f"{what}; kept (data.keep_index_columns), although it can leak the row order"
            )
        else:
            excluded[col] = f"looks like a saved row index ({reason})"
            notes.append(
                f"{what}; excluded from the features (to keep it, set "
                "data.keep_index_columns: true or list it in data.features)"
            )
    return excluded, notes


# --------------------------------------------------------------------------- cell types


def _first_nested(s: pd.Series) -> int | None:
    """Position of the first nested value (list, dict, array, ...) of a column, or None."""
    if not ptypes.is_object_dtype(s) or ptypes.infer_dtype(s, skipna=True) in _SCALAR_KINDS:
        return None
    nested = s.map(lambda v: isinstance(v, _NESTED)).to_numpy(dtype=bool)
    return int(np.flatnonzero(nested)[0]) if nested.any() else None


def _check_nested(s: pd.Series, path: str, col: str, feature: bool) -> None:
    """Every cell of a used column holds one scalar (pickles and Parquet can hold lists)."""
    row = _first_nested(s)
    if row is None:
        return
    value = s.iloc[row]
    problem = (
        f"nested values ({type(value).__name__}), e.g. row {row} = {_short(value)}; "
        "give one value per cell"
    )
    if feature:
        problem += " (e.g. one column per element) or leave it out of data.features"
    raise InputValidationError(path, problem, col)


def _temporal_kind(s: pd.Series) -> str | None:
    """'dates' or 'time spans' for a datetime-like or timedelta-like column, else None."""
    if ptypes.is_datetime64_any_dtype(s) or isinstance(s.dtype, pd.PeriodDtype):
        return "dates"
    if ptypes.is_timedelta64_dtype(s):
        return "time spans"
    if ptypes.is_object_dtype(s):
        kind = ptypes.infer_dtype(s, skipna=True)
        if kind in _DATE_KINDS:
            return "dates"
        if kind in ("timedelta", "timedelta64"):
            return "time spans"
    return None


def _check_temporal(s: pd.Series, path: str, col: str) -> None:
    """Dates and time spans are not features as such: the user chooses how to make numbers."""
    kind = _temporal_kind(s)
    if kind is None:
        return
    values = s.dropna()
    example = f", e.g. row {values.index[0]} = {_short(values.iloc[0])}" if len(values) else ""
    hint = "days since a reference date" if kind == "dates" else "days"
    raise InputValidationError(
        path,
        f"feature holds {kind} ({s.dtype}){example}; convert it to a number "
        f"(e.g. {hint}), list it under data.categorical to use it as levels, or leave "
        "it out of data.features",
        col,
    )


@dataclass(frozen=True)
class _TextProfile:
    """What the non-missing values of a text column are: numbers, ISO dates or other."""

    n: int
    numbers: int
    dates: int
    date_levels: pd.Series  # the distinct values that are ISO dates
    others: pd.Series  # value -> count of the non-numbers: most frequent first, ties by value


def _is_text(s: pd.Series) -> bool:
    return ptypes.is_object_dtype(s) or (
        ptypes.is_string_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)
    )


def _text_profile(s: pd.Series) -> _TextProfile | None:
    """Profile of a text column, or None if it clearly holds neither numbers nor dates."""
    values = s.dropna()
    if not len(values) or ptypes.infer_dtype(values, skipna=True) == "boolean":
        return None
    if len(values) > 10 * _TEXT_SAMPLE:  # a random sample decides whether to look closer
        rng = np.random.default_rng(0)
        sample = values.iloc[rng.choice(len(values), _TEXT_SAMPLE, replace=False)]
        numbers = pd.to_numeric(sample, errors="coerce").notna().mean()
        dates = sample.astype(str).str.fullmatch(_ISO_DATE).mean()
        if max(numbers, dates) < 0.8 * MIXED_SHARE:
            return None
    counts = values.value_counts(sort=True)
    levels = pd.Series(counts.index, dtype=object)
    is_number = pd.to_numeric(levels, errors="coerce").notna().to_numpy()
    is_date = levels.astype(str).str.fullmatch(_ISO_DATE).to_numpy(dtype=bool)
    n = counts.to_numpy()
    others = counts[~is_number]
    order = np.lexsort((others.index.astype(str), -others.to_numpy()))  # count, then value
    return _TextProfile(
        n=len(values),
        numbers=int(n[is_number].sum()),
        dates=int(n[is_date].sum()),
        date_levels=levels[is_date],
        others=others.iloc[order],
    )


def _check_date_text(s: pd.Series, path: str, col: str, prof: _TextProfile) -> None:
    if prof.dates >= MIXED_SHARE * prof.n:
        row = int(np.flatnonzero(s.isin(prof.date_levels).to_numpy())[0])
        raise InputValidationError(
            path,
            f"feature holds dates as text ({prof.dates} of {prof.n} values, e.g. row {row} = "
            f"{_short(s.iloc[row])}); convert it to a number (e.g. days since a "
            "reference date), list it under data.categorical to use it as levels, or leave it "
            "out of data.features",
            col,
        )


def _feature_kind(
    s: pd.Series, path: str, col: str, inferred: bool
) -> tuple[pd.Series | None, dict | None, str | None]:
    """Decide a text feature that holds numbers or dates (see the module docstring, 3-4).

    Called for the features whose kind may be decided from their values (all when
    ``data.categorical`` is not given, else the ones it does not list).

    Returns
    -------
    converted : pandas.Series or None
        The column as numbers, if it is a mostly-numeric text column (then numeric).
    record : dict or None
        Its conversion record for ``schema.json``.
    note : str or None
        The warning text.
    """
    if not _is_text(s):
        return None, None, None
    prof = _text_profile(s)
    if prof is None:
        return None, None, None
    _check_date_text(s, path, col, prof)
    if not inferred or prof.numbers < MIXED_SHARE * prof.n or not len(prof.others):
        return None, None, None
    where = f"{path}, column {col!r}: {prof.numbers} of {prof.n} values are numbers"
    n_other = prof.n - prof.numbers
    if prof.numbers < NUMERIC_SHARE * prof.n:
        note = (
            f"{where}, {n_other} are not ({_counts(prof.others)}); used as categorical "
            "(fix the values to use it as numeric)"
        )
        return None, None, note
    record = {
        "to": "numeric",
        "n_set_missing": n_other,
        "values": {str(v): int(k) for v, k in prof.others.iloc[:10].items()},
    }
    note = (
        f"{where}; the {n_other} others set to missing ({_counts(prof.others)}) and the "
        "column used as numeric (list it under data.categorical to keep it as text)"
    )
    return _as_number(s), record, note


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


def _zero_duration_fill(
    n_zero: int, min_positive: float | None, path: str, column: str
) -> tuple[float | None, str | None]:
    """Value for the ``n_zero`` zero durations (half the smallest positive duration
    ``min_positive``), with the warning text; ``(None, None)`` when no duration is zero."""
    if not n_zero:
        return None, None
    if min_positive is None:
        raise InputValidationError(path, "all durations are zero", column)
    eps = min_positive / 2.0
    note = (
        f"{path}, column {column!r}: {n_zero} zero duration(s) set to {eps:g} "
        "(half the smallest positive duration) so that parametric models can be fitted"
    )
    return eps, note


def _numeric_values(s: pd.Series) -> np.ndarray:
    """Float values of a numeric feature (row by row: a batch gives its rows' values)."""
    return _as_number(s).to_numpy(dtype=float)


def _is_constant_numeric(x: np.ndarray) -> bool:
    """True if a numeric feature is constant or entirely missing (it is then dropped)."""
    return bool(np.isnan(x).all() or np.nanmin(x) == np.nanmax(x))


def _categorical_values(s: pd.Series) -> np.ndarray:
    """String values of a categorical feature, missing values as None (row by row).

    Text columns already hold ``str`` values: then no Python call per value (``str(v)`` is
    ``v``; the check runs in C), which was half of the validation's time at 1M rows.
    """
    text = s.astype("object").where(s.notna(), None)
    if ptypes.infer_dtype(text, skipna=True) not in ("string", "empty"):
        text = text.map(lambda v: None if v is None else str(v))
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


def _many_levels(
    values: np.ndarray, n_levels: int, path: str, col: str, max_levels: int
) -> str | None:
    """Warning text for a categorical with more than ``max_levels`` distinct levels."""
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


# --------------------------------------------------------------------------- column sources


class _Columns(Protocol):
    """A table read a whole column, or a row batch, at a time.

    :class:`_FrameColumns` (a DataFrame in memory) and
    :class:`survival_framework.batches.ParquetColumns` (a Parquet file, streamed) are the two
    sources; the checks see the same Series from both.
    """

    columns: list[str]
    dtypes: dict
    n_rows: int

    def column(self, name: str) -> pd.Series: ...

    def batches(
        self, columns: Sequence[str], batch_rows: int = ...
    ) -> Iterator[tuple[int, pd.DataFrame]]: ...


class _FrameColumns:
    """A DataFrame (normalised by :func:`_normalise_columns`) as a :class:`_Columns`."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.columns = list(df.columns)
        self.dtypes = df.dtypes.to_dict()
        self.n_rows = len(df)

    def column(self, name: str) -> pd.Series:
        return self.df[name]

    def batches(
        self, columns: Sequence[str], batch_rows: int | None = None
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        # the table is in memory already: one batch, no copy
        yield 0, self.df


# --------------------------------------------------------------------------- entry point


@dataclass
class _Plan:
    """What the checks decided, to convert any rows of the input into clean rows."""

    duration_col: str
    event_col: str
    id_col: str | None
    kept: list[str]  # the features written, in feature order
    categorical: set[str]
    zero_fill: float | None  # the value of zero durations (None: there are none)
    event: np.ndarray  # int8 event of every input row (sampling, event counts)
    id_type: pa.DataType | None  # Arrow type of the id column, fixed for every batch

    @property
    def input_columns(self) -> list[str]:
        """Input columns the clean table is made of."""
        ids = [self.id_col] if self.id_col else []
        return [*ids, self.duration_col, self.event_col, *self.kept]

    def clean(self, frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
        """Clean rows from input rows ``frame`` (at input positions ``rows``)."""
        return pd.DataFrame(self.clean_columns(frame, rows))

    def clean_columns(self, frame: pd.DataFrame, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of :meth:`clean` as arrays, in order.

        Every conversion is row by row, so a batch gives the rows of the whole-table result.
        """
        clean = {ROW_COL: np.asarray(rows, dtype=np.int64)}
        if self.id_col is not None:
            clean[self.id_col] = frame[self.id_col].to_numpy()
        duration = _as_number(frame[self.duration_col]).to_numpy(dtype=float)
        if self.zero_fill is not None:
            duration = np.where(duration == 0, self.zero_fill, duration)
        clean[self.duration_col] = duration
        clean[self.event_col] = _event_codes(frame[self.event_col]).to_numpy(dtype=np.int8)
        for col in self.kept:
            s = frame[col]
            clean[col] = _categorical_values(s) if col in self.categorical else _numeric_values(s)
        return clean

    def arrow_types(self) -> dict[str, pa.DataType]:
        """Arrow types a batch cannot tell (text missing in all its rows would be ``null``)."""
        types = {c: pa.string() for c in self.kept if c in self.categorical}
        if self.id_type is not None:
            types[self.id_col] = self.id_type
        return types


class _ColumnPass:
    """The pass of :func:`_validate` over the used columns: stages 3-5 and the statistics
    of fix 7, one column at a time, with every problem kept as ``(stage, rank, error)``.

    Stages: 1 nested values (rank: visit order), 2 dates and time spans, 3 feature kinds
    (rank: feature order), 4 values (rank: duration, event, id, then the features).
    """

    _FAILED = object()

    def __init__(
        self,
        path: str,
        duration_col: str,
        event_col: str,
        id_col: str | None,
        features: list[str],
        categorical: list[str],
        inferred: bool,
        max_levels: int | None,
    ) -> None:
        self.path, self.max_levels = path, max_levels
        self.duration_col, self.event_col, self.id_col = duration_col, event_col, id_col
        self.inferred = inferred  # data.categorical not given: text kinds are decided
        self.position = {c: i for i, c in enumerate(features)}
        value_cols = [duration_col, event_col, *([id_col] if id_col else []), *features]
        self.value_rank = {c: i for i, c in enumerate(value_cols)}  # the pandera rule order
        self.need_levels = _collision_candidates(features)
        self.categorical = set(categorical)  # loses the text columns converted to numbers
        self.problems: list[tuple[int, int, InputValidationError]] = []
        self.raw_dtypes: dict[str, str] = {}
        self.converted: dict[str, dict] = {}
        self.kind_notes: dict[int, str] = {}  # feature position -> note
        self.clean_notes: dict[int, list[str]] = {}
        self.dropped: set[str] = set()
        self.level_sets: dict[str, set[str]] = {}
        self.event: np.ndarray | None = None
        self.n_zero, self.min_positive = 0, None  # zero durations, smallest positive one
        self.id_type: pa.DataType | None = None

    def first_stage(self) -> int | None:
        """The earliest stage with a problem so far."""
        return min((p[0] for p in self.problems), default=None)

    def _stage(self, k: int, rank: int, check: Callable, *args) -> object:
        """``check(*args)`` of stage ``k``, or ``_FAILED`` if it fails or cannot matter."""
        first = self.first_stage()
        if first is not None and k > first:
            return self._FAILED  # a problem of an earlier stage wins whatever this finds
        try:
            return check(*args)
        except InputValidationError as exc:
            self.problems.append((k, rank, exc))
            return self._FAILED

    def visit(self, i: int, col: str, s: pd.Series) -> None:
        """Check column ``col`` (``i``-th in visit order) and gather its statistics."""
        path, feature = self.path, col in self.position
        if self._stage(1, i, _check_nested, s, path, col, feature) is self._FAILED:
            return
        if feature:
            s = self._feature_stages(col, s)
            if s is None:
                return
        rules = _rules(col, self.duration_col, self.event_col, self.id_col)
        if col not in self.categorical:
            rank = self.value_rank[col]
            frame = s.to_frame(col)
            if self._stage(4, rank, _check_values, frame, path, {col: rules}) is self._FAILED:
                return
        if self.problems:
            return  # a problem will be raised: the statistics are not needed
        if col == self.event_col:
            self.event = _event_codes(s).to_numpy(dtype=np.int8)
        elif col == self.duration_col:
            # only the statistics of fix 7 are kept: the durations are converted per batch
            duration = _as_number(s).to_numpy(dtype=float)
            self.n_zero = int((duration == 0).sum())
            if (duration > 0).any():
                self.min_positive = float(duration[duration > 0].min())
        elif col == self.id_col:
            self.id_type = _arrow_type(s)
        else:
            _feature_statistics(
                s, col, path, col in self.categorical, self.max_levels,
                self.clean_notes.setdefault(self.position[col], []), self.dropped,
                self.level_sets if col in self.need_levels else None,
            )  # fmt: skip

    def _feature_stages(self, col: str, s: pd.Series) -> pd.Series | None:
        """Stages 2 and 3 of a feature: its values (numbers if converted), None on a problem."""
        j = self.position[col]
        decide = self.inferred or col not in self.categorical
        if decide and self._stage(2, j, _check_temporal, s, self.path, col) is self._FAILED:
            return None
        self.raw_dtypes[col] = str(s.dtype)
        if not decide:
            return s
        result = self._stage(3, j, _feature_kind, s, self.path, col, self.inferred)
        if result is self._FAILED:
            return None
        numbers, record, note = result
        if note:
            self.kind_notes[j] = note
        if numbers is None:
            return s
        self.categorical.discard(col)
        self.converted[col] = record
        return numbers


def _validate(
    table: _Columns,
    path: str,
    duration_col: str,
    event_col: str,
    id_col: str | None,
    features: Sequence[str] | None,
    categorical: Sequence[str] | None,
    min_rows: int,
    max_levels: int | None,
    keep_index_columns: bool,
) -> tuple[_Plan, dict]:
    """Run every check on ``table``, reading each used column once; return plan and schema.

    The checks of the module docstring run in stages (every column's nested-value check
    before any column's date check, ...), and the first problem in that order is reported.
    Holding one column at a time, each column goes through all its stages when it is read;
    a problem is kept as ``(stage, position)`` and the smallest is raised after the pass,
    which is the problem the stage-by-stage order meets first. The stages of a column stop
    at its first problem, as a later stage of that column could not be reached anyway.
    """
    _check_structure(
        table.n_rows,
        table.columns,
        path,
        {"duration": duration_col, "event": event_col, "id": id_col},
    )
    reserved = {duration_col, event_col} | ({id_col} if id_col else set())
    excluded, notes = _index_columns(
        table, path, reserved, features, categorical, keep_index_columns
    )
    inferred = categorical is None
    features, categorical = _resolve_features(
        table.columns, table.dtypes, path, reserved, features, categorical, excluded
    )
    notes = [_warn(note) for note in notes]

    scan = _ColumnPass(
        path, duration_col, event_col, id_col, features, categorical, inferred, max_levels
    )
    visit = [*[c for c in table.columns if c in reserved], *features]  # nested-check order
    for i, col in enumerate(visit):
        if scan.first_stage() == 1:
            break  # a nested value: every later column comes later in that stage's order
        scan.visit(i, col, table.column(col))  # one column held at a time
    if scan.problems:
        k, _, exc = min(scan.problems, key=lambda p: (p[0], p[1]))
        if k >= 4:  # the stage-by-stage order warned of the kind decisions before stage 4
            notes += [_warn(scan.kind_notes[j]) for j in sorted(scan.kind_notes)]
        raise exc
    notes += [_warn(scan.kind_notes[j]) for j in sorted(scan.kind_notes)]
    categorical_set, dropped = scan.categorical, scan.dropped
    categorical = [c for c in categorical if c in categorical_set]

    n_events = _check_events(path, event_col, scan.event, table.n_rows, min_rows)
    zero_fill, note = _zero_duration_fill(scan.n_zero, scan.min_positive, path, duration_col)
    if note:
        notes.append(_warn(note))
    for j in sorted(scan.clean_notes):
        notes += [_warn(note) for note in scan.clean_notes[j]]
    numeric = [c for c in features if c not in categorical_set and c not in dropped]
    categorical = [c for c in categorical if c not in dropped]
    if not numeric and not categorical:
        raise InputValidationError(path, "every feature is constant or entirely missing")
    _check_name_collisions(scan.level_sets, path, numeric, categorical)
    raw_dtypes, converted = scan.raw_dtypes, scan.converted
    event, id_type = scan.event, scan.id_type
    schema = {
        "source": path,
        "duration_col": duration_col,
        "event_col": event_col,
        "id_col": id_col,
        "numeric": numeric,
        "categorical": categorical,
        "dropped": [c for c in features if c in dropped],
        "excluded": excluded,
        "converted": converted,
        "input_dtypes": {c: raw_dtypes[c] for c in [*numeric, *categorical]},
        "n_rows": table.n_rows,
        "n_events": n_events,
        "warnings": notes,
    }
    plan = _Plan(
        duration_col=duration_col,
        event_col=event_col,
        id_col=id_col,
        kept=[c for c in features if c not in dropped],
        categorical=set(categorical),
        zero_fill=zero_fill,
        event=event,
        id_type=id_type,
    )
    return plan, schema


def _rules(col: str, duration_col: str, event_col: str, id_col: str | None) -> Sequence[_Rule]:
    """The value rules of a column (numeric features: :data:`_NUMERIC_FEATURE_RULES`)."""
    if col == duration_col:
        return _DURATION_RULES
    if col == event_col:
        return _EVENT_RULES
    if col == id_col:
        return _ID_RULES
    return _NUMERIC_FEATURE_RULES


def _arrow_type(s: pd.Series) -> pa.DataType | None:
    """The Arrow type of an object column written as the clean table writes it (from
    ``to_numpy()``), inferred from all its values: a batch of missing values only would
    be typed ``null``. None for other columns, whose type every batch tells alike."""
    values = s.to_numpy()
    return pa.Array.from_pandas(values).type if values.dtype == object else None


def _feature_statistics(
    s: pd.Series,
    col: str,
    path: str,
    is_categorical: bool,
    max_levels: int | None,
    notes: list[str],
    dropped: set[str],
    level_set: dict[str, set[str]] | None,
) -> None:
    """Drop a constant or entirely missing feature, flag one with many levels (fix 7).

    ``notes`` gets the warning texts, ``dropped`` the dropped feature; ``level_set`` (when
    given) the distinct values of a categorical, for the name-collision check.
    """
    if is_categorical:
        values = _categorical_values(s)
        n_levels = int(pd.Series(values).nunique())
        constant = n_levels <= 1
    else:
        constant = _is_constant_numeric(_numeric_values(s))
    if constant:
        dropped.add(col)
        notes.append(f"{path}, column {col!r}: feature is constant or entirely missing; dropped")
        return
    if is_categorical and max_levels is not None:
        note = _many_levels(values, n_levels, path, col, max_levels)
        if note:
            notes.append(note)
    if is_categorical and level_set is not None:
        level_set[col] = {v for v in pd.unique(values) if v is not None}


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
    keep_index_columns: bool = False,
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
        Categorical features; default those with object, string, category or bool dtype,
        except text columns of mostly numbers, which are converted (module docstring, 4).
        When given, no text column is converted.
    min_rows : int
        Minimum number of rows (and of events) required.
    max_levels : int, optional
        ``preprocess.max_levels``: a categorical with more distinct levels gets a
        DataWarning (its rarest levels will be pooled into ``__other__``).
    keep_index_columns : bool
        ``data.keep_index_columns``: keep columns that look like a saved row index among the
        default features (with a DataWarning) instead of excluding them.

    Returns
    -------
    clean : pandas.DataFrame
        Columns ``_row`` (input row position), the id column if given, duration (float64),
        event (int8) and the features (numeric as float64, categorical as strings).
    schema : dict
        Column roles and input dtypes, the columns ``excluded`` as row indexes (column ->
        reason), the text columns ``converted`` to numbers (column -> count and values set
        missing) and the data warnings issued, recorded in ``results/data/schema.json``.

    Raises
    ------
    InputValidationError
        On the first problem found (see the module docstring for the order).

    See Also
    --------
    validate_file : the same checks on a file, streamed when it is Parquet.
    """
    path = str(path)
    df = _normalise_columns(df, path)
    plan, schema = _validate(
        _FrameColumns(df), path, duration_col, event_col, id_col, features, categorical,
        min_rows, max_levels, keep_index_columns,
    )  # fmt: skip
    return plan.clean(df, np.arange(len(df))), schema


def validate_file(
    path: str | os.PathLike,
    clean_path: str | os.PathLike,
    duration_col: str,
    event_col: str,
    id_col: str | None = None,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    min_rows: int = 2,
    max_levels: int | None = None,
    keep_index_columns: bool = False,
    sample_size: int | None = None,
    seed: int = 0,
    batch_rows: int = BATCH_ROWS,
    log: logging.Logger | None = None,
) -> dict:
    """Validate the table in ``path`` and write its clean rows to ``clean_path``.

    The checks, warnings and messages are those of :func:`validate_survival_table`, and the
    file written holds the same rows, columns, dtypes and values as its result (sampled as
    :func:`~survival_framework.splits.stratified_sample` samples it). A Parquet input is
    never held whole: its columns are checked one at a time, then its clean rows are
    converted and written one batch of ``batch_rows`` rows at a time. CSV and pickle inputs
    are read whole (pandas has no exact chunked reader for them: a CSV column's dtype is
    inferred from the whole column) and written from memory.

    Parameters
    ----------
    path : path-like
        Input table (CSV, Parquet or pickle).
    clean_path : path-like
        Where to write ``clean.parquet`` (atomically).
    duration_col, event_col, id_col, features, categorical, min_rows, max_levels, keep_index_columns
        As :func:`validate_survival_table`.
    sample_size : int, optional
        Keep a stratified sample of this many rows (``run_type: sample``).
    seed : int
        Seed of the sample.
    batch_rows : int
        Rows per batch read and written (Parquet input).
    log : logging.Logger, optional
        Gets the size of the table read.

    Returns
    -------
    dict
        The schema (:func:`validate_survival_table`) with ``n_rows_used`` and
        ``n_events_used``.

    Raises
    ------
    InputValidationError
        As :func:`validate_survival_table`, and for unreadable files.
    """
    label = str(path)
    frame = read_table(path, columns=[]) if _is_parquet(path) else None
    table: _Columns
    if frame is not None:  # read_table has checked the footer, the names and the size
        table = ParquetColumns(path, label)
    else:
        table = _FrameColumns(_normalise_columns(read_table(path), label))
    if log is not None:
        log.info("read %s: %d rows x %d columns", label, table.n_rows, len(table.columns))
    plan, schema = _validate(
        table, label, duration_col, event_col, id_col, features, categorical, min_rows,
        max_levels, keep_index_columns,
    )  # fmt: skip
    keep = None
    if sample_size is not None:
        keep = sample_positions(plan.event, sample_size, seed)
    rows = np.arange(table.n_rows) if keep is None else keep
    schema.update(n_rows_used=len(rows), n_events_used=int(plan.event[rows].sum()))
    with write_chunks([clean_path], plan.arrow_types()) as (writer,):
        for offset, batch in table.batches(plan.input_columns, batch_rows):
            at = positions_in(rows, offset, offset + len(batch))
            if len(at) < len(batch):
                batch = batch.iloc[at].reset_index(drop=True)
            writer.write_arrays(plan.clean_columns(batch, offset + at))
    return schema


def _is_parquet(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


def warning_summary(notes: Sequence[str], log: str, step: str, limit: int = 10) -> str | None:
    """Console summary of the data warnings of a job: a header and at most ``limit`` lines.

    Parameters
    ----------
    notes : sequence of str
        The warnings (``schema["warnings"]``).
    log : str
        The job's log file, where every warning is written in full.
    step : str
        Name of the job, e.g. ``validate_data``.
    limit : int
        Lines after the header; when there are more warnings, the last says how many more.

    Returns
    -------
    str or None
        The summary, None when there are no warnings.
    """
    if not notes:
        return None
    n = len(notes)
    shown = list(notes) if n <= limit else list(notes[: limit - 1])
    lines = [f"{step}: {n} data warning{'' if n == 1 else 's'} (details in {log}):"]
    lines += [f"  {note}" for note in shown]
    if n > len(shown):
        lines.append(f"  ... and {n - len(shown)} more")
    return "\n".join(lines)
