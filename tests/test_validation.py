"""Bad input stops at validation with one clear message naming the file and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import copy_workflow, snakemake
from survival_framework.errors import InputValidationError
from survival_framework.io import read_table
from survival_framework.schema import DataWarning, validate_survival_table


def _table(n=50):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "time": rng.exponential(100, n),
            "event": rng.integers(0, 2, n),
            "age": rng.normal(60, 10, n),
            "grp": rng.choice(["a", "b"], n),
        }
    )


def _check(df, match, column, **kw):
    with pytest.raises(InputValidationError, match=match) as err:
        validate_survival_table(df, "input.csv", "time", "event", **kw)
    assert "input.csv" in str(err.value)
    if column is not None:
        assert err.value.column == column and repr(column) in str(err.value)


def test_missing_column():
    _check(_table().drop(columns="event"), "event column not found", "event")


@pytest.mark.parametrize(
    ("values", "match"),
    [(["x"] * 50, "non-numeric"), ([-1.0] * 50, "negative"), ([np.inf] * 50, "infinite")],
)
def test_bad_durations(values, match):
    _check(_table().assign(time=values), match, "time")


@pytest.mark.parametrize("values", [[2] * 50, ["maybe"] * 50, [0.5] * 50])
def test_bad_events(values):
    _check(_table().assign(event=values), "0/1", "event")


def test_all_censored():
    _check(_table().assign(event=0), "all rows are censored", "event")


def test_empty_table():
    _check(_table().iloc[:0], "no rows", None)


def test_event_spellings_accepted():
    df = _table().assign(event=lambda d: np.where(d["event"] == 1, "True", "false"))
    clean, _ = validate_survival_table(df, "in.csv", "time", "event")
    assert set(clean["event"]) == {0, 1}


def test_zero_durations_are_replaced_with_a_warning():
    df = _table().assign(time=lambda d: d["time"].where(d.index > 2, 0.0))
    with pytest.warns(DataWarning, match="zero duration"):
        clean, _ = validate_survival_table(df, "in.csv", "time", "event")
    assert (clean["time"] > 0).all()


def test_unreadable_file(tmp_path):
    bad = tmp_path / "table.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputValidationError, match="table.parquet"):
        read_table(bad)


@pytest.mark.integration
def test_workflow_stops_at_validation_with_clear_message(tmp_path):
    wd = copy_workflow(tmp_path)
    df = _table(100).assign(time=lambda d: d["time"] * np.where(d.index == 7, -1, 1))
    df.to_csv(wd / "bad.csv", index=False)
    args = [
        "--cores",
        "1",
        "--config",
        "data={'path': 'bad.csv', 'duration_col': 'time', 'event_col': 'event'}",
    ]
    proc = snakemake(wd, *args, check=False)
    assert proc.returncode != 0
    log = (wd / "logs/data/validate_data.log").read_text()
    assert "bad.csv, column 'time': 1 negative duration(s), e.g. row 7" in log
    assert not (wd / "results/data/clean.parquet").exists()
    assert not (wd / "results/splits").exists()
