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
import re
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
    excluded: dict[str, str],
) -> tuple[list[str], list[str]]:
    """Feature and categorical column lists, defaulted and checked against ``df``.

    The default features are the columns besides ``reserved`` and ``excluded`` (row indexes).
    """
    if features is None:
        features = [c for c in df.columns if c not in reserved and c not in excluded]
    features = list(features)
    for col in features:
        if col not in df.columns:
            raise _not_found(path, "feature", col, df.columns)
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
    """No two columns of the design matrix may share a name.

    A numeric feature must not be named like a one-hot column ``<cat>=<level>``; nor may two
    categoricals give the same one-hot name, which needs one name to be the other's followed
    by ``=`` (``a`` with level ``b=c`` and ``a=b`` with level ``c``: ``a=b=c``). Only the
    levels of categoricals whose name is such a prefix are looked at.
    """
    levels: dict[str, set[str]] = {}

    def level_set(cat: str) -> set[str]:
        if cat not in levels:
            levels[cat] = {v for v in pd.unique(clean[cat]) if v is not None} | {OTHER}
        return levels[cat]

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


def _index_reason(s: pd.Series, name: str) -> str | None:
    """Why a column looks like a saved row index, or None."""
    reasons = ["unnamed column"] if _UNNAMED.fullmatch(name) else []
    pattern = _row_pattern(s)
    if pattern:
        reasons.append(pattern)
    return ", ".join(reasons) or None


def _index_columns(
    df: pd.DataFrame,
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
    candidates = features if features is not None else df.columns
    excluded: dict[str, str] = {}
    notes = []
    for col in candidates:
        if col in reserved or col not in df.columns:
            continue
        reason = _index_reason(df[col], col)
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


def _check_nested(df: pd.DataFrame, path: str, columns: Sequence[str], features: set[str]):
    """Every cell of a used column holds one scalar (pickles and Parquet can hold lists)."""
    for col in columns:
        row = _first_nested(df[col])
        if row is None:
            continue
        value = df[col].iloc[row]
        problem = (
            f"nested values ({type(value).__name__}), e.g. row {row} = {_short(value)}; "
            "give one value per cell"
        )
        if col in features:
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


def _check_temporal(df: pd.DataFrame, path: str, columns: Sequence[str]) -> None:
    """Dates and time spans are not features as such: the user chooses how to make numbers."""
    for col in columns:
        kind = _temporal_kind(df[col])
        if kind is None:
            continue
        values = df[col].dropna()
        example = f", e.g. row {values.index[0]} = {_short(values.iloc[0])}" if len(values) else ""
        hint = "days since a reference date" if kind == "dates" else "days"
        raise InputValidationError(
            path,
            f"feature holds {kind} ({df[col].dtype}){example}; convert it to a number "
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


def _check_date_text(df: pd.DataFrame, path: str, col: str, prof: _TextProfile) -> None:
    if prof.dates >= MIXED_SHARE * prof.n:
        row = int(np.flatnonzero(df[col].isin(prof.date_levels).to_numpy())[0])
        raise InputValidationError(
            path,
            f"feature holds dates as text ({prof.dates} of {prof.n} values, e.g. row {row} = "
            f"{_short(df[col].iloc[row])}); convert it to a number (e.g. days since a "
            "reference date), list it under data.categorical to use it as levels, or leave it "
            "out of data.features",
            col,
        )


def _feature_kinds(
    df: pd.DataFrame, path: str, features: list[str], categorical: list[str], inferred: bool
) -> tuple[pd.DataFrame, list[str], dict, list[str]]:
    """Decide text features that hold numbers or dates (see the module docstring, 3-4).

    Returns the table (mostly-numeric text columns converted), the categorical features,
    the conversions (column -> record for ``schema.json``) and the warning texts.
    """
    converted: dict[str, dict] = {}
    notes: list[str] = []
    for col in features:
        if (not inferred and col in categorical) or not _is_text(df[col]):
            continue
        prof = _text_profile(df[col])
        if prof is None:
            continue
        _check_date_text(df, path, col, prof)
        if not inferred or prof.numbers < MIXED_SHARE * prof.n or not len(prof.others):
            continue
        where = f"{path}, column {col!r}: {prof.numbers} of {prof.n} values are numbers"
        n_other = prof.n - prof.numbers
        if prof.numbers < NUMERIC_SHARE * prof.n:
            notes.append(
                f"{where}, {n_other} are not ({_counts(prof.others)}); used as categorical "
                "(fix the values to use it as numeric)"
            )
            continue
        if not converted:
            df = df.copy(deep=False)
        df[col] = _as_number(df[col])
        categorical = [c for c in categorical if c != col]
        converted[col] = {
            "to": "numeric",
            "n_set_missing": n_other,
            "values": {str(v): int(k) for v, k in prof.others.iloc[:10].items()},
        }
        notes.append(
            f"{where}; the {n_other} others set to missing ({_counts(prof.others)}) and the "
            "column used as numeric (list it under data.categorical to keep it as text)"
        )
    return df, categorical, converted, notes


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
    """
    path = str(path)
    df = _normalise_columns(df, path)
    _check_structure(df, path, {"duration": duration_col, "event": event_col, "id": id_col})
    reserved = {duration_col, event_col} | ({id_col} if id_col else set())
    excluded, notes = _index_columns(df, path, reserved, features, categorical, keep_index_columns)
    inferred = categorical is None
    features, categorical = _resolve_features(df, path, reserved, features, categorical, excluded)
    notes = [_warn(note) for note in notes]
    _check_nested(df, path, [*[c for c in df.columns if c in reserved], *features], set(features))
    _check_temporal(df, path, [c for c in features if inferred or c not in categorical])
    raw_dtypes = {c: str(df[c].dtype) for c in features}
    df, categorical, converted, kind_notes = _feature_kinds(
        df, path, features, categorical, inferred
    )
    notes += [_warn(note) for note in kind_notes]

    rules: dict[str, Sequence[_Rule]] = {duration_col: _DURATION_RULES, event_col: _EVENT_RULES}
    if id_col is not None:
        rules[id_col] = _ID_RULES
    rules.update({c: _NUMERIC_FEATURE_RULES for c in features if c not in categorical})
    _check_values(df, path, rules)

    duration = _as_number(df[duration_col]).to_numpy(dtype=float)
    event = _event_codes(df[event_col]).to_numpy(dtype=np.int8)
    n_events = _check_events(path, event_col, event, len(df), min_rows)
    duration, note = _fix_zero_durations(duration, path, duration_col)
    if note:
        notes.append(_warn(note))

    clean = {ROW_COL: np.arange(len(df), dtype=np.int64)}
    if id_col is not None:
        clean[id_col] = df[id_col].to_numpy()
    clean[duration_col] = duration
    clean[event_col] = event
    dropped = _clean_features(df, path, features, categorical, max_levels, clean, notes)
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
        "excluded": excluded,
        "converted": converted,
        "input_dtypes": {c: raw_dtypes[c] for c in [*numeric, *categorical]},
        "n_rows": len(df),
        "n_events": n_events,
        "warnings": notes,
    }
    return pd.DataFrame(clean), schema


def _clean_features(
    df: pd.DataFrame,
    path: str,
    features: list[str],
    categorical: list[str],
    max_levels: int | None,
    clean: dict[str, np.ndarray],
    notes: list[str],
) -> list[str]:
    """Add the clean feature columns to ``clean`` and their warnings to ``notes``.

    Returns the features dropped as constant or entirely missing.
    """
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
    return dropped


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
