"""Bad input: one clear line naming file, column and problem; documented fixes warn.

Complements tests/test_validation.py (which covers the basic duration/event cases): here
every row of the README's "Bad input" table is checked with its exact message.
"""

from __future__ import annotations

import datetime
import pickle
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import copy_workflow, snakemake
from survival_framework import preprocess as pp
from survival_framework import schema as sch
from survival_framework.errors import InputValidationError
from survival_framework.io import read_json, read_table
from survival_framework.schema import (
    DataWarning,
    coerce_event,
    validate_survival_table,
    warning_summary,
)

N = 60


def _table(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "time": rng.exponential(100, n).round(3) + 1,
            "event": np.tile([1, 0, 1], n)[:n],
            "age": rng.normal(60, 10, n),
            "grp": rng.choice(["a", "b", "c"], n),
        }
    )


def _set(df: pd.DataFrame, col: str, row: int, value) -> pd.DataFrame:
    df = df.copy()
    if not isinstance(value, int | float):
        df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


def _validate(df: pd.DataFrame, **kw):
    kw.setdefault("min_rows", 15)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clean, schema = validate_survival_table(df, "in.csv", "time", "event", **kw)
    return clean, schema, [str(w.message) for w in caught if w.category is DataWarning]


# (case, table, exact message): the README table lists these messages.
CASES = [
    (
        "negative duration",
        lambda: _set(_table(), "time", 7, -1.0),
        "in.csv, column 'time': 1 negative duration(s), e.g. row 7 = -1",
    ),
    (
        "non-numeric duration",
        lambda: _set(_table(), "time", 3, "abc"),
        "in.csv, column 'time': durations must be numeric; found non-numeric values 'abc'",
    ),
    (
        "infinite duration",
        lambda: _set(_table(), "time", 4, np.inf),
        "in.csv, column 'time': 1 infinite duration(s), e.g. row 4 = inf",
    ),
    (
        "missing duration",
        lambda: _set(_table(), "time", 5, np.nan),
        "in.csv, column 'time': 1 missing duration(s), e.g. row 5",
    ),
    (
        "dates as durations",
        lambda: _table().assign(time=pd.Timestamp("2020-01-01")),
        "in.csv, column 'time': durations must be numeric; found non-numeric values "
        "Timestamp('2020-01-01 00:00:00') (dates: give the time from origin to event or "
        "censoring, e.g. in days)",
    ),
    (
        "event 2",
        lambda: _set(_table(), "event", 5, 2),
        "in.csv, column 'event': event values must be 0/1 or true/false; found 2",
    ),
    (
        "event text",
        lambda: _set(_table(), "event", 5, "maybe"),
        "in.csv, column 'event': event values must be 0/1 or true/false; found 'maybe'",
    ),
    (
        "missing event",
        lambda: _set(_table(), "event", 6, np.nan),
        "in.csv, column 'event': 1 missing event value(s), e.g. row 6; events must be 0/1",
    ),
    (
        "all censored",
        lambda: _table().assign(event=0),
        "in.csv, column 'event': all rows are censored (no events)",
    ),
    (
        "single event",
        lambda: _table().assign(event=lambda d: (d.index == 9).astype(int)),
        "in.csv, column 'event': a single event (row 9); at least 15 events are needed "
        "(cv.n_folds x cv.min_rows_per_fold)",
    ),
    (
        "too few events",
        lambda: _table().assign(event=lambda d: (d.index < 5).astype(int)),
        "in.csv, column 'event': 5 events; at least 15 are needed "
        "(cv.n_folds x cv.min_rows_per_fold)",
    ),
    (
        "too few rows",
        lambda: _table(10),
        "in.csv: 10 rows; at least 15 are needed (cv.n_folds x cv.min_rows_per_fold)",
    ),
    ("no rows", lambda: _table().iloc[:0], "in.csv: table has no rows"),
    (
        "missing duration column (near miss)",
        lambda: _table().rename(columns={"time": "Time "}),
        "in.csv, column 'time': duration column not found; did you mean 'Time '? "
        "available columns: ['Time ', 'event', 'age', 'grp']",
    ),
    (
        "missing event column",
        lambda: _table().drop(columns="event"),
        "in.csv, column 'event': event column not found; available columns: ['time', 'age', 'grp']",
    ),
    (
        "duplicated column (pickle/parquet keep duplicates)",
        lambda: pd.concat([_table(), _table()[["age"]]], axis=1),
        "in.csv, column 'age': duplicated column name (appears 2 times)",
    ),
    (
        "infinite feature",
        lambda: _set(_table(), "age", 2, -np.inf),
        "in.csv, column 'age': 1 infinite value(s), e.g. row 2 = -inf",
    ),
    (
        "reserved name",
        lambda: _table().assign(_row=1),
        "in.csv, column '_row': column name '_row' is reserved",
    ),
    (
        "one-hot name collision",
        lambda: _table().assign(**{"grp=a": 1.0 + np.arange(N)}),
        "in.csv, column 'grp=a': name collides with a one-hot column of categorical 'grp'; "
        "rename one of the two",
    ),
    (
        "every feature constant",
        lambda: _table().assign(age=1.0, grp="a"),
        "in.csv: every feature is constant or entirely missing",
    ),
    (
        "dates as a feature (datetime64)",
        lambda: _table().assign(visit=pd.date_range("2020-01-01", periods=N, freq="D")),
        "in.csv, column 'visit': feature holds dates (datetime64[ns]), e.g. row 0 = "
        "Timestamp('2020-01-01 00:00:00'); convert it to a number (e.g. days since a "
        "reference date), list it under data.categorical to use it as levels, or leave it out "
        "of data.features",
    ),
    (
        "dates as text (ISO, as a CSV holds them)",
        lambda: _table().assign(visit=[f"2021-03-{1 + i % 28:02d}" for i in range(N)]),
        "in.csv, column 'visit': feature holds dates as text (60 of 60 values, e.g. row 0 = "
        "'2021-03-01'); convert it to a number (e.g. days since a reference date), list it "
        "under data.categorical to use it as levels, or leave it out of data.features",
    ),
    (
        "date-times as text, some missing or unknown",
        lambda: _table().assign(
            seen=[None, "unknown", *[f"2021-03-01T{i % 24:02d}:15" for i in range(N - 2)]]
        ),
        "in.csv, column 'seen': feature holds dates as text (58 of 59 values, e.g. row 2 = "
        "'2021-03-01T00:15'); convert it to a number (e.g. days since a reference date), list "
        "it under data.categorical to use it as levels, or leave it out of data.features",
    ),
    (
        "date objects (pickle)",
        lambda: _table().assign(day=[datetime.date(2020, 1, 1 + i % 28) for i in range(N)]),
        "in.csv, column 'day': feature holds dates (object), e.g. row 0 = "
        "datetime.date(2020, 1, 1); convert it to a number (e.g. days since a reference "
        "date), list it under data.categorical to use it as levels, or leave it out of "
        "data.features",
    ),
    (
        "time spans (timedelta64)",
        lambda: _table().assign(wait=pd.to_timedelta(np.arange(N) % 7 + 1, unit="D")),
        "in.csv, column 'wait': feature holds time spans (timedelta64[ns]), e.g. row 0 = "
        "Timedelta('1 days 00:00:00'); convert it to a number (e.g. days), list it under "
        "data.categorical to use it as levels, or leave it out of data.features",
    ),
    (
        "nested values: lists",
        lambda: _table().assign(tags=[[i, i + 1] for i in range(N)]),
        "in.csv, column 'tags': nested values (list), e.g. row 0 = [0, 1]; give one value per "
        "cell (e.g. one column per element) or leave it out of data.features",
    ),
    (
        "nested values: dicts after missing ones",
        lambda: _table().assign(meta=[None, None, *[{"k": i} for i in range(N - 2)]]),
        "in.csv, column 'meta': nested values (dict), e.g. row 2 = {'k': 0}; give one value "
        "per cell (e.g. one column per element) or leave it out of data.features",
    ),
    (
        "nested values: a list in the duration column",
        lambda: _table().assign(
            time=lambda d: [[1.0, 2.0] if i == 4 else t for i, t in enumerate(d["time"])]
        ),
        "in.csv, column 'time': nested values (list), e.g. row 4 = [1.0, 2.0]; give one value "
        "per cell",
    ),
    (
        "one-hot names of two categoricals collide",
        lambda: _table().assign(
            a=np.where(np.arange(N) % 2, "b=c", "x"),
            **{"a=b": np.where(np.arange(N) % 3, "c", "y")},
        ),
        "in.csv, column 'a=b': one-hot column 'a=b=c' (level 'c') collides with that of "
        "categorical 'a' (level 'b=c'); rename one of the two columns",
    ),
    (
        "the only feature is a saved row index",
        lambda: _table()[["time", "event"]].assign(**{"Unnamed: 0": np.arange(N)}),
        "in.csv: no feature columns besides duration/event/id (excluded as row indexes: "
        "['Unnamed: 0']; data.keep_index_columns)",
    ),
]


@pytest.mark.parametrize(("table", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_table_gives_one_exact_line(table, message):
    with pytest.raises(InputValidationError) as err:
        _validate(table())
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_missing_feature_column_listed_in_config():
    with pytest.raises(InputValidationError) as err:
        _validate(_table(), features=["age", "weight"])
    assert str(err.value).startswith("in.csv, column 'weight': feature column not found;")
    assert err.value.column == "weight"


def test_duplicated_ids():
    df = _table().assign(pid=lambda d: d.index.where(d.index != 3, 2))
    with pytest.raises(InputValidationError) as err:
        _validate(df, id_col="pid")
    assert str(err.value) == "in.csv, column 'pid': 1 duplicated id value(s), e.g. 2"


def test_non_numeric_values_in_a_declared_numeric_feature():
    df = _set(_table(), "age", 4, "n/a")
    with pytest.raises(InputValidationError) as err:
        _validate(df, categorical=["grp"])
    assert str(err.value) == (
        "in.csv, column 'age': numeric feature has non-numeric values 'n/a'; list it under "
        "data.categorical or fix the values"
    )


def test_coerce_event_keeps_its_contract():
    assert coerce_event(pd.Series(["Yes", "no", "T", "0"]), "f", "e").tolist() == [1, 0, 1, 0]
    assert coerce_event(pd.Series([True, False]), "f", "e").dtype == np.int8
    with pytest.raises(InputValidationError, match=r"^f, column 'e': event values must be"):
        coerce_event(pd.Series([0, 1, 3]), "f", "e")


# ------------------------------------------------------------------------- documented fixes


def test_zero_durations_fixed_and_recorded():
    df = _table().assign(time=lambda d: d["time"].where(d.index > 1, 0.0))
    smallest = df.loc[df["time"] > 0, "time"].min()
    clean, schema, notes = _validate(df)
    np.testing.assert_allclose(clean["time"].iloc[:2], smallest / 2)
    assert notes == [
        f"in.csv, column 'time': 2 zero duration(s) set to {smallest / 2:g} (half the smallest "
        "positive duration) so that parametric models can be fitted"
    ]
    assert schema["warnings"] == notes


def test_all_zero_durations_rejected():
    with pytest.raises(
        InputValidationError, match="^in.csv, column 'time': all durations are zero"
    ):
        _validate(_table().assign(time=0.0))


def test_constant_and_empty_features_dropped_with_warnings():
    df = _table().assign(const=5.0, empty=np.nan, same="x")
    clean, schema, notes = _validate(df)
    assert schema["dropped"] == ["const", "empty", "same"]
    assert not {"const", "empty", "same"} & set(clean.columns)
    for col in ("const", "empty", "same"):
        assert f"in.csv, column '{col}': feature is constant or entirely missing; dropped" in notes


def test_high_cardinality_categorical_warns_with_count():
    rng = np.random.default_rng(3)
    n = 3000
    df = pd.DataFrame(
        {
            "time": rng.exponential(10, n) + 0.1,
            "event": rng.integers(0, 2, n),
            "zip": [f"z{v}" for v in rng.integers(0, 2000, n)],
            "customer": [f"c{i}" for i in range(n)],
        }
    )
    n_zip = df["zip"].nunique()
    _, schema, notes = _validate(df, max_levels=100)
    assert schema["categorical"] == ["zip", "customer"]
    assert notes[0] == (
        f"in.csv, column 'zip': categorical with {n_zip} distinct levels; only the 100 most "
        "frequent are kept per fold, the rest are pooled into '__other__' (preprocess.max_levels)"
    )
    assert notes[1].startswith("in.csv, column 'customer': categorical with 3000 distinct")
    assert notes[1].endswith(
        "every value is distinct: an identifier? set data.id_col or drop it from data.features"
    )
    # ... and preprocessing keeps exactly the max_levels most frequent levels
    state = pp.fit_state(df, [], ["zip"], min_frequency=0.0, max_levels=100)
    st = state["categorical"]["zip"]
    assert len(st["levels"]) == 99 and st["has_other"] and st["n_rare_levels"] == n_zip - 100
    assert state["max_levels"] == 100
    assert pp.transform(df, state).shape == (n, 100)


def test_max_levels_rule_order_and_ties():
    """The documented rule: count desc, ties by code point, prefix of length max_levels."""
    train = pd.DataFrame({"c": ["b"] * 5 + ["a"] * 5 + ["é"] * 3 + ["z"] * 3 + ["y"] * 1})
    st = pp.fit_state(train, [], ["c"], min_frequency=0.0, max_levels=3)["categorical"]["c"]
    # order: a(5) b(5) z(3) é(3) y(1) -> keep a, b, z; reference a
    assert (st["fill"], st["reference"], st["levels"]) == ("a", "a", ["b", "z"])
    assert st["has_other"] and st["n_rare_levels"] == 2
    # min_frequency still applies inside the cap
    st = pp.fit_state(train, [], ["c"], min_frequency=0.25, max_levels=3)["categorical"]["c"]
    assert st["levels"] == ["b"] and st["n_rare_levels"] == 3
    # no cap: as before
    st = pp.fit_state(train, [], ["c"], min_frequency=0.0)["categorical"]["c"]
    assert st["levels"] == ["b", "y", "z", "é"] and not st["has_other"]


def test_odd_column_names_survive_validation_and_preprocessing():
    df = _table().rename(
        columns={
            "time": "follow-up (days)",
            "event": "évènement",
            "age": "âge / 10",
            "grp": "g r p",
        }
    )
    clean, schema = validate_survival_table(df, "in.csv", "follow-up (days)", "évènement")
    state = pp.fit_state(clean, schema["numeric"], schema["categorical"])
    out = pp.transform(clean, state)
    ref = state["categorical"]["g r p"]["reference"]
    others = sorted({"a", "b", "c"} - {ref})
    assert list(out.columns) == ["âge / 10", *[f"g r p={lv}" for lv in others]]


# ------------------------------------------------------------------------- feature types


def _lab(n: int = N, stray: dict | None = None) -> pd.Series:
    """A numeric lab value as text, with ``stray`` {row: text} values (as a CSV reads it)."""
    values = pd.Series(np.round(np.random.default_rng(4).normal(5, 1, n), 2), dtype=object)
    for row, text in (stray or {}).items():
        values[row] = text
    return values


def test_mostly_numeric_text_column_becomes_numeric_with_warning(tmp_path):
    """The example: three 'unknown' in a numeric CSV column made it a categorical."""
    csv = tmp_path / "labs.csv"
    _table().assign(lab=_lab(stray={3: "unknown", 9: "unknown", 20: "unknown"})).to_csv(
        csv, index=False
    )
    raw = read_table(csv)
    assert raw["lab"].dtype == object  # what pandas alone does
    clean, schema, notes = _validate(raw)
    assert notes == [
        "in.csv, column 'lab': 57 of 60 values are numbers; the 3 others set to missing "
        "('unknown' x3) and the column used as numeric (list it under data.categorical to "
        "keep it as text)"
    ]
    assert schema["numeric"] == ["age", "lab"] and schema["categorical"] == ["grp"]
    assert schema["converted"] == {
        "lab": {"to": "numeric", "n_set_missing": 3, "values": {"unknown": 3}}
    }
    assert schema["input_dtypes"]["lab"] == "object"  # the file's dtype, for predict
    assert clean["lab"].dtype == np.float64
    assert np.flatnonzero(clean["lab"].isna()).tolist() == [3, 9, 20]
    np.testing.assert_allclose(clean["lab"].drop([3, 9, 20]), _lab().drop([3, 9, 20]).astype(float))


def test_numeric_share_threshold_is_95_percent():
    # 57 of 60 = 95 %: numeric; several kinds of strays are counted, most frequent first
    stray = {0: "?", 1: "unknown", 2: "unknown"}
    _, schema, notes = _validate(_table().assign(lab=_lab(stray=stray)))
    assert schema["converted"]["lab"]["values"] == {"unknown": 2, "?": 1}
    assert "the 3 others set to missing ('unknown' x2, '?' x1)" in notes[0]
    # 56 of 60: stays categorical, with a warning naming the non-numbers
    stray = {i: f"n{i % 5}" for i in range(4)}
    _, schema, notes = _validate(_table().assign(lab=_lab(stray=stray)))
    assert schema["categorical"] == ["grp", "lab"] and schema["converted"] == {}
    assert notes == [
        "in.csv, column 'lab': 56 of 60 values are numbers, 4 are not ('n0' x1, 'n1' x1, "
        "'n2' x1, ... (4 distinct)); used as categorical (fix the values to use it as numeric)"
    ]


def test_mostly_text_and_numbers_only_text_stay_categorical_silently():
    codes = pd.Series([str(i % 3) for i in range(N)], dtype=object)  # codes stored as text
    words = _lab(stray={i: "high" for i in range(31)})  # 29 of 60 numbers: < 50 %
    _, schema, notes = _validate(_table().assign(code=codes, level=words))
    assert schema["categorical"] == ["grp", "code", "level"]
    assert schema["converted"] == {} and notes == []


def test_declared_categoricals_keep_text_as_text():
    df = _table().assign(
        lab=_lab(stray={3: "unknown"}), day=[f"2021-03-{i % 9 + 1:02d}" for i in range(N)]
    )
    clean, schema, notes = _validate(df, categorical=["grp", "lab", "day"])
    assert schema["categorical"] == ["grp", "lab", "day"] and schema["converted"] == {}
    assert clean["lab"].iloc[3] == "unknown" and notes == []


def test_dates_in_a_declared_numeric_feature_get_the_dates_message():
    df = _table().assign(day=[f"2021-03-{i % 9 + 1:02d}" for i in range(N)])
    with pytest.raises(
        InputValidationError, match=r"^in.csv, column 'day': feature holds dates as text"
    ):
        _validate(df, categorical=["grp"])


def test_long_text_columns_are_profiled_on_a_sample_first(monkeypatch):
    monkeypatch.setattr(sch, "_TEXT_SAMPLE", 5)  # 60 values > 10 x 5: the sampled path
    df = _table().assign(lab=_lab(stray={3: "unknown"}), name=[f"p{i}" for i in range(N)])
    _, schema, notes = _validate(df)
    assert schema["converted"]["lab"]["n_set_missing"] == 1
    assert schema["categorical"] == ["grp", "name"]


def test_nested_values_from_a_parquet_list_column(tmp_path):
    path = tmp_path / "nested.parquet"
    table = pa.Table.from_pandas(_table(), preserve_index=False)
    tags = pa.array([[i, i + 1] for i in range(N)], type=pa.list_(pa.int64()))
    pq.write_table(table.append_column("tags", tags), path)
    with pytest.raises(InputValidationError) as err:
        validate_survival_table(read_table(path), "nested.parquet", "time", "event")
    assert str(err.value) == (
        "nested.parquet, column 'tags': nested values (ndarray), e.g. row 0 = array([0, 1]); "
        "give one value per cell (e.g. one column per element) or leave it out of data.features"
    )


def test_nested_id_values_rejected():
    df = _table().assign(pid=[(i,) for i in range(N)])
    with pytest.raises(InputValidationError) as err:
        _validate(df, id_col="pid")
    assert (
        str(err.value)
        == "in.csv, column 'pid': nested values (tuple), e.g. row 0 = (0,); give one value per cell"
    )


def test_prefix_named_categoricals_without_a_shared_one_hot_name_pass():
    df = _table().assign(
        a=np.where(np.arange(N) % 2, "b=c", "x"), **{"a=b": np.where(np.arange(N) % 3, "d", "y")}
    )
    _, schema, _ = _validate(df)
    assert schema["categorical"] == ["grp", "a", "a=b"]


# ------------------------------------------------------------------------- row indexes

INDEX_NOTE = (
    "in.csv, column {col!r}: looks like a saved row index ({reason}); excluded from the "
    "features (to keep it, set data.keep_index_columns: true or list it in data.features)"
)


@pytest.mark.parametrize(
    ("col", "values", "reason"),
    [
        ("Unnamed: 0", np.arange(N), "unnamed column, values are the row numbers 0..59"),
        ("Unnamed: 0", np.random.default_rng(0).permutation(N), "unnamed column"),
        ("", np.arange(N) * 0.5, "unnamed column"),
        (
            "__index_level_0__",
            np.arange(N) + 7,
            "unnamed column, integer values strictly increasing with the row number",
        ),
        ("rowid", np.arange(1, N + 1), "values are the row numbers 1..60"),
        ("seq", 1000 + 3 * np.arange(N), "integer values strictly increasing with the row number"),
        ("rank", (N - np.arange(N)) * 2, "integer values strictly decreasing with the row number"),
    ],
    ids=[
        "unnamed-0-based",
        "unnamed-shuffled",
        "empty-name",
        "pyarrow-index",
        "1-based",
        "increasing",
        "decreasing",
    ],
)
def test_index_like_column_excluded_with_warning(col, values, reason):
    clean, schema, notes = _validate(_table().assign(**{col: values}))
    assert notes == [INDEX_NOTE.format(col=col, reason=reason)]
    assert schema["excluded"] == {col: f"looks like a saved row index ({reason})"}
    assert col not in clean.columns and col not in schema["numeric"] + schema["categorical"]


def test_saved_index_of_time_sorted_csv_excluded(tmp_path):
    """The example: rows sorted by time, saved with their index -> Harrell C ~1 if used."""
    csv = tmp_path / "sorted.csv"
    _table().sort_values("time").reset_index(drop=True).to_csv(csv)
    raw = read_table(csv)
    assert raw.columns[0] == "Unnamed: 0"
    clean, schema, notes = _validate(raw)
    assert list(schema["excluded"]) == ["Unnamed: 0"] and "Unnamed: 0" not in clean
    assert notes == [
        INDEX_NOTE.format(
            col="Unnamed: 0", reason="unnamed column, values are the row numbers 0..59"
        )
    ]


def test_index_like_column_kept_when_named_or_configured():
    df = _table().assign(**{"Unnamed: 0": np.arange(N)})
    what = (
        "in.csv, column 'Unnamed: 0': looks like a saved row index (unnamed column, values are "
        "the row numbers 0..59)"
    )
    _, schema, notes = _validate(df, features=["age", "Unnamed: 0"])
    assert schema["numeric"] == ["age", "Unnamed: 0"] and schema["excluded"] == {}
    assert notes == [
        f"{what}; kept because data.features lists it, although it can leak the row order"
    ]
    _, schema, notes = _validate(df, categorical=["grp", "Unnamed: 0"])
    assert schema["categorical"] == ["grp", "Unnamed: 0"]
    assert notes == [
        f"{what}; kept because data.categorical lists it, although it can leak the row order"
    ]
    _, schema, notes = _validate(df, keep_index_columns=True)
    assert schema["numeric"] == ["age", "Unnamed: 0"] and schema["excluded"] == {}
    assert notes == [f"{what}; kept (data.keep_index_columns), although it can leak the row order"]


@pytest.mark.parametrize(
    "values",
    [
        1.0 + np.arange(N),  # float: a saved index is an integer column
        np.arange(N) // 2,  # ties
        np.where(np.arange(N) == 5, -1, np.arange(N)),  # not monotone
    ],
    ids=["float", "ties", "not-monotone"],
)
def test_ordinary_integer_and_float_features_are_not_index_like(values):
    _, schema, notes = _validate(_table().assign(x=values))
    assert "x" in schema["numeric"] and schema["excluded"] == {} and notes == []


def test_index_values_not_looked_for_in_tiny_tables():
    _, schema, _ = _validate(_table(9).assign(k=np.arange(9)), min_rows=2)
    assert "k" in schema["numeric"]


# ------------------------------------------------------------------------- console summary


def test_warning_summary_is_short():
    log = "logs/data/validate_data.log"
    assert warning_summary([], log, "validate_data") is None
    assert warning_summary(["f, column 'x': w"], log, "validate_data") == (
        "validate_data: 1 data warning (details in logs/data/validate_data.log):\n"
        "  f, column 'x': w"
    )
    notes = [f"w{i}" for i in range(12)]
    lines = warning_summary(notes, log, "validate_data").splitlines()
    assert lines[0] == "validate_data: 12 data warnings (details in logs/data/validate_data.log):"
    assert lines[1:] == [*(f"  w{i}" for i in range(9)), "  ... and 3 more"]
    assert len(warning_summary(notes[:10], log, "validate_data").splitlines()) == 11


# ------------------------------------------------------------------------- files


def test_file_problems(tmp_path):
    def fails(path, message):
        with pytest.raises(InputValidationError) as err:
            read_table(path)
        assert str(err.value) == message, str(err.value)

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    fails(empty, f"{empty}: file is empty (0 bytes)")
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n")
    fails(blank, f"{blank}: cannot be read as csv: EmptyDataError: No columns to parse from file")
    xlsx = tmp_path / "data.xlsx"
    xlsx.write_bytes(b"PK\x03\x04")
    fails(
        xlsx,
        f"{xlsx}: unsupported file extension '.xlsx'; use one of "
        ".csv, .parquet, .pq, .pkl, .pickle",
    )
    fails(
        tmp_path / "data",
        f"{tmp_path / 'data'}: unsupported file extension '(none)'; "
        "use one of .csv, .parquet, .pq, .pkl, .pickle",
    )
    fails(tmp_path / "missing.csv", f"{tmp_path / 'missing.csv'}: file does not exist")
    text_parquet = tmp_path / "table.parquet"
    text_parquet.write_text("time,event\n1,0\n")
    with pytest.raises(InputValidationError, match=r"table.parquet: cannot be read as parquet: "):
        read_table(text_parquet)
    not_frame = tmp_path / "list.pkl"
    not_frame.write_bytes(pickle.dumps([1, 2, 3]))
    fails(not_frame, f"{not_frame}: pickle holds a list, not a pandas DataFrame")


def test_duplicated_names_detected_in_every_format(tmp_path):
    csv = tmp_path / "dup.csv"
    csv.write_text("time,event,x,x\n1,1,2,3\n2,0,3,4\n")
    assert pd.read_csv(csv).columns.tolist()[-1] == "x.1"  # what pandas alone would do
    with pytest.raises(InputValidationError) as err:
        read_table(csv)
    assert str(err.value) == f"{csv}, column 'x': duplicated column name (appears 2 times)"

    parquet = tmp_path / "dup.parquet"
    arrays = [pa.array([1.0, 2.0]), pa.array([1, 0]), pa.array([3.0, 4.0])]
    pq.write_table(pa.Table.from_arrays(arrays, names=["time", "event", "time"]), parquet)
    with pytest.raises(InputValidationError) as err:
        read_table(parquet)
    assert str(err.value) == f"{parquet}, column 'time': duplicated column name (appears 2 times)"

    pkl = tmp_path / "dup.pkl"
    pd.concat([_table(), _table()[["grp"]]], axis=1).to_pickle(pkl)
    with pytest.raises(InputValidationError) as err:
        validate_survival_table(read_table(pkl), str(pkl), "time", "event")
    assert str(err.value) == f"{pkl}, column 'grp': duplicated column name (appears 2 times)"


def test_header_only_csv(tmp_path):
    csv = tmp_path / "header.csv"
    csv.write_text("time,event,age\n")
    with pytest.raises(InputValidationError) as err:
        validate_survival_table(read_table(csv), str(csv), "time", "event")
    assert str(err.value) == f"{csv}: table has no rows"


# ------------------------------------------------------------------------- real runs


def _config_args(path: str) -> list[str]:
    return ["--config", f"data={{'path': '{path}', 'duration_col': 'time', 'event_col': 'event'}}"]


@pytest.mark.integration
def test_workflow_announces_conversions_and_index_columns_on_the_console(tmp_path):
    wd = copy_workflow(tmp_path)
    df = _table().sort_values("time").reset_index(drop=True)
    df.assign(lab=_lab(stray={3: "unknown", 9: "unknown", 20: "unknown"})).to_csv(wd / "sorted.csv")
    proc = snakemake(wd, "--cores", "1", "results/data/schema.json", *_config_args("sorted.csv"))
    assert (
        "validate_data: 2 data warnings (details in logs/data/validate_data.log):\n"
        "  sorted.csv, column 'Unnamed: 0': looks like a saved row index (unnamed column, "
        "values are the row numbers 0..59); excluded from the features (to keep it, set "
        "data.keep_index_columns: true or list it in data.features)\n"
        "  sorted.csv, column 'lab': 57 of 60 values are numbers; the 3 others set to missing "
        "('unknown' x3) and the column used as numeric (list it under data.categorical to keep "
        "it as text)\n"
    ) in proc.stderr, proc.stderr[-3000:]
    schema = read_json(wd / "results/data/schema.json")
    assert list(schema["excluded"]) == ["Unnamed: 0"]
    assert schema["converted"]["lab"]["n_set_missing"] == 3
    assert schema["numeric"] == ["age", "lab"] and schema["categorical"] == ["grp"]
    log = (wd / "logs/data/validate_data.log").read_text()
    assert all(w in log for w in schema["warnings"])


@pytest.mark.integration
def test_workflow_rejects_nested_values_on_the_console(tmp_path):
    wd = copy_workflow(tmp_path)
    table = pa.Table.from_pandas(_table(), preserve_index=False)
    tags = pa.array([[i, i + 1] for i in range(N)], type=pa.list_(pa.int64()))
    pq.write_table(table.append_column("tags", tags), wd / "nested.parquet")
    proc = snakemake(wd, "--cores", "1", *_config_args("nested.parquet"), check=False, timeout=300)
    assert proc.returncode != 0
    message = (
        "InputValidationError: nested.parquet, column 'tags': nested values (ndarray), e.g. "
        "row 0 = array([0, 1]); give one value per cell (e.g. one column per element) or leave "
        "it out of data.features\n"
    )
    assert message in proc.stderr, proc.stderr[-3000:]
    assert message in (wd / "logs/data/validate_data.log").read_text()
    assert not (wd / "results/data/clean.parquet").exists()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "dup.csv",
            "time,event,age,age\n" + "".join(f"{i + 1},{i % 2},{i},{i}\n" for i in range(60)),
            "dup.csv, column 'age': duplicated column name (appears 2 times)",
        ),
        (
            "single.csv",
            "time,event,age\n" + "".join(f"{i + 1},{int(i == 4)},{i % 7}\n" for i in range(60)),
            "single.csv, column 'event': a single event (row 4); at least 25 events are needed "
            "(cv.n_folds x cv.min_rows_per_fold)",
        ),
    ],
    ids=["duplicated-csv-header", "single-event"],
)
def test_workflow_stops_at_validation(tmp_path, name, content, message):
    wd = copy_workflow(tmp_path)
    (wd / name).write_text(content)
    proc = snakemake(wd, "--cores", "1", *_config_args(name), check=False, timeout=300)
    assert proc.returncode != 0
    log = (wd / "logs/data/validate_data.log").read_text()
    assert f"InputValidationError: {message}\n" in log, log[-3000:]
    assert not (wd / "results/data").exists() or not any((wd / "results/data").iterdir())
    assert not (wd / "results/splits").exists() and not (wd / "results/cv").exists()
