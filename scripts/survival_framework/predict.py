"""Score new data with a final model artifact, in batches with bounded memory.

A new table (CSV or Parquet) must provide every training feature column (see
:func:`check_columns`); other columns are ignored, the id column is carried along when the
training data had one. Parquet files are read by record batches of ``batch_size`` rows
(pyarrow), CSV files in chunks of ``batch_size`` rows (pandas), and each scored batch is
appended to the output Parquet file, so memory does not grow with the number of rows.

Output columns: ``_row`` (row number in the input file), the id column (if any), ``risk``
(higher = earlier event, the model's risk score), ``surv@<t>`` (survival probability at each
requested time) and ``median_time`` (first time on the artifact's grid of training event
times where the predicted survival is <= 0.5; NaN when the curve stays above 0.5 over the
training follow-up, i.e. the median is not reached).

Times beyond the training data (:func:`times_beyond_training`). Past the last training event
time no model has data: the step-function models (Breslow baselines, forests, boosting)
repeat their value at that time and a parametric model extends its curve. Such times are
scored anyway, with one warning line (the job log and, from the rule script, the console)
and a record in the output: the Parquet schema metadata key :data:`PARQUET_METADATA_KEY`
(JSON: ``times``, ``last_event_time``, ``last_observation_time``, ``beyond_last_event``,
``beyond_last_observation``) and ``time_range`` of the returned summary (the rule's
provenance). Refusing, as scikit-survival's step functions do outside their domain, would
fail a whole scoring job for a legitimate request (a horizon past follow-up is a common
question, and the affected columns are identified); the warning and the metadata say which
columns are extrapolations.
"""

from __future__ import annotations

import json
import logging
import os
import time as _time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api import types as ptypes

from . import preprocess
from .contract import MEDIAN_COL, PREDICT_SUFFIXES, RISK_COL, ROW_COL, prediction_column
from .errors import InputValidationError
from .final import ARTIFACT_FORMAT
from .io import atomic_path, check_input_file

__all__ = [
    "PARQUET_METADATA_KEY",
    "load_artifact",
    "training_time_range",
    "times_beyond_training",
    "check_columns",
    "check_batch",
    "iter_batches",
    "score_batch",
    "predict_file",
]

_log = logging.getLogger(__name__)

PARQUET_METADATA_KEY = b"survival_workflow"
"""Key of the predictions' Parquet schema metadata (JSON, see the module docstring)."""


def load_artifact(path: str | os.PathLike) -> dict[str, Any]:
    """Load a ``model.joblib`` written by the ``fit_final_model`` rules and check its format."""
    artifact = joblib.load(path)
    if not isinstance(artifact, dict) or artifact.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"{path}: not a survival-workflow model artifact (format 1)")
    return artifact


def training_time_range(artifact: dict[str, Any]) -> tuple[float, float]:
    """Last training event time and last training observation (event or censoring) time.

    The event time is the top of ``median_grid`` (quantiles of the training event times,
    up to the maximum) unless the artifact stores ``max_event_time``.
    """
    last_obs = float(artifact["max_train_time"])
    last_event = float(artifact.get("max_event_time", max(artifact["median_grid"])))
    return last_event, last_obs


def times_beyond_training(times: Sequence[float], artifact: dict[str, Any]) -> dict[str, Any]:
    """Which prediction times lie beyond the training data, and a one-line warning if any.

    Returns
    -------
    dict
        ``last_event_time``, ``last_observation_time``, ``beyond_last_event`` and
        ``beyond_last_observation`` (the requested times strictly after each, in request
        order) and ``warning`` (a one-line message, or ``None`` when every time is covered).
    """
    last_event, last_obs = training_time_range(artifact)
    times = [float(t) for t in times]
    after_event = [t for t in times if t > last_event]
    after_obs = [t for t in times if t > last_obs]
    warning = None
    if after_event:
        beyond = ", ".join(f"{t:g}" for t in after_event)
        also = ", ".join(f"{t:g}" for t in after_obs) or "none"
        warning = (
            f"prediction time(s) {beyond} beyond the last training event time {last_event:g} "
            f"(last training observation {last_obs:g}; beyond it: {also}): survival there is "
            f"extrapolated (step-function models repeat their value at {last_event:g})"
        )
    return {
        "last_event_time": last_event,
        "last_observation_time": last_obs,
        "beyond_last_event": after_event,
        "beyond_last_observation": after_obs,
        "warning": warning,
    }


def _family(dtype: Any) -> str:
    """Coarse type family of a pandas or pyarrow dtype: numeric, bool, string or null."""
    if isinstance(dtype, pa.DataType):
        if pa.types.is_null(dtype):
            return "null"
        if pa.types.is_boolean(dtype):
            return "bool"
        if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
            return "numeric"
        if pa.types.is_dictionary(dtype):
            return _family(dtype.value_type)
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
            return "string"
        return str(dtype)
    if ptypes.is_bool_dtype(dtype):
        return "bool"
    if ptypes.is_numeric_dtype(dtype):
        return "numeric"
    if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_object_dtype(dtype):
        return "string"
    if ptypes.is_string_dtype(dtype):
        return "string"
    return str(dtype)


def _training_family(input_dtype: str | None) -> str | None:
    if input_dtype is None:
        return None
    if input_dtype == "bool" or input_dtype == "boolean":
        return "bool"
    try:
        return _family(pd.api.types.pandas_dtype(input_dtype))
    except TypeError:
        return "string"


def _file_columns(path: Path) -> dict[str, Any]:
    """Column name -> type (pyarrow type for Parquet, None for CSV: types come per chunk)."""
    if path.suffix.lower() == ".csv":
        header = pd.read_csv(path, nrows=0)
        return dict.fromkeys(header.columns)
    schema = pq.read_schema(path)
    return {name: schema.field(name).type for name in schema.names}


def check_columns(path: str | os.PathLike, artifact: dict[str, Any]) -> list[str]:
    """Check that a new file has every training feature column with a compatible type.

    Numeric features must be numeric (integer, float or decimal; entirely missing is
    allowed). Categorical features of Parquet files must have the type family they had in
    training (string vs number vs bool); CSV categoricals are read as text.

    Returns
    -------
    list of str
        Columns to read (features, plus the id column when present).

    Raises
    ------
    InputValidationError
        Naming the file, the column and the problem.
    """
    path = check_input_file(path, PREDICT_SUFFIXES)
    try:
        available = _file_columns(path)
    except Exception as exc:
        raise InputValidationError(
            str(path), f"cannot be read: {type(exc).__name__}: {exc}"
        ) from exc
    spec = artifact["training_schema"]
    for col in spec["columns"]:
        name = col["name"]
        if name not in available:
            raise InputValidationError(
                str(path),
                f"{col['kind']} feature column of the training data is missing; "
                f"available columns: {list(available)}",
                name,
            )
        typ = available[name]
        if typ is None:
            continue
        fam = _family(typ)
        if col["kind"] == "numeric" and fam not in ("numeric", "null"):
            raise InputValidationError(
                str(path),
                f"expected a numeric column (training dtype {col['input_dtype']}), found {typ}",
                name,
            )
        want = _training_family(col.get("input_dtype"))
        if col["kind"] == "categorical" and want and fam not in (want, "null"):
            raise InputValidationError(
                str(path),
                f"categorical column had type {col['input_dtype']} in training, found {typ}",
                name,
            )
    read = [c["name"] for c in spec["columns"]]
    if spec.get("id_col") and spec["id_col"] in available:
        read.insert(0, spec["id_col"])
    return read


def check_batch(df: pd.DataFrame, path: str, artifact: dict[str, Any], first_row: int) -> None:
    """Check the values of one batch: numeric features must parse as finite numbers.

    Raises
    ------
    InputValidationError
        Naming the file, the column, the problem and the first offending row.
    """
    for col in artifact["training_schema"]["columns"]:
        if col["kind"] != "numeric":
            continue
        s = df[col["name"]]
        if ptypes.is_bool_dtype(s):
            raise InputValidationError(
                path, f"expected a numeric column, found booleans ({s.dtype})", col["name"]
            )
        if not ptypes.is_numeric_dtype(s):
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna() & s.notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputValidationError(
                    path,
                    f"expected numbers (training dtype {col['input_dtype']}); "
                    f"row {first_row + i} = {s.iloc[i]!r}",
                    col["name"],
                )
            df[col["name"]] = num
        x = df[col["name"]].to_numpy(dtype=float)
        if np.isinf(x).any():
            i = int(np.flatnonzero(np.isinf(x))[0])
            raise InputValidationError(path, f"infinite value at row {first_row + i}", col["name"])


def iter_batches(
    path: str | os.PathLike, columns: Sequence[str], batch_size: int, categorical: Sequence[str]
) -> Iterator[pd.DataFrame]:
    """Yield the file's ``columns`` in batches of at most ``batch_size`` rows."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        dtypes = dict.fromkeys(categorical, str)
        yield from pd.read_csv(path, usecols=list(columns), dtype=dtypes, chunksize=batch_size)
        return
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_size, columns=list(columns)):
        yield batch.to_pandas()


def _categorical_as_text(df: pd.DataFrame, artifact: dict[str, Any]) -> pd.DataFrame:
    """Categorical values as the strings they had in training (ints stay '1', not '1.0')."""
    for col in artifact["training_schema"]["columns"]:
        if col["kind"] != "categorical":
            continue
        s = df[col["name"]]
        if ptypes.is_float_dtype(s):
            x = s.to_numpy(dtype=float)
            finite = x[~np.isnan(x)]
            if finite.size and np.all(finite == np.round(finite)):
                s = s.astype("Int64")
        df[col["name"]] = (
            s.astype("object").where(s.notna(), None).map(lambda v: None if v is None else str(v))
        )
    return df


def score_batch(
    artifact: dict[str, Any], df: pd.DataFrame, times: np.ndarray
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Risk, survival probabilities at ``times`` and median survival time of one batch.

    Returns
    -------
    scores : pandas.DataFrame
        ``risk``, ``surv@<t>`` and ``median_time``, with ``df``'s index.
    unseen : dict
        Rows per categorical column whose level was not seen in training (such rows are
        encoded like the training data's rare levels: ``__other__`` or the reference).
    """

    df = _categorical_as_text(df, artifact)
    unseen = {}
    for col in artifact["training_schema"]["columns"]:
        if col["kind"] == "categorical":
            s = df[col["name"]]
            n = int((s.notna() & ~s.isin(col["levels"])).sum())
            if n:
                unseen[col["name"]] = n
    X = preprocess.transform(df, artifact["preprocessor"]).to_numpy(dtype=float)
    est = artifact["estimator"]
    risk = est.predict(X)
    surv = est.predict_survival(X, times, batch_size=max(1, len(X)))
    grid = np.asarray(artifact["median_grid"], dtype=float)
    curve = est.predict_survival(X, grid, batch_size=max(1, len(X)))
    below = curve <= 0.5
    first = below.argmax(axis=1)
    median = np.where(below.any(axis=1), grid[first], np.nan)
    out = pd.DataFrame({RISK_COL: risk}, index=df.index)
    for j, t in enumerate(times):
        out[prediction_column(float(t))] = surv[:, j]
    out[MEDIAN_COL] = median
    return out, unseen


def predict_file(
    artifact: dict[str, Any],
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    times: Sequence[float] | None = None,
    batch_size: int = 50_000,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Score ``in_path`` batch by batch into the Parquet file ``out_path`` (atomically).

    Parameters
    ----------
    artifact : dict
        From :func:`load_artifact`.
    in_path : path-like
        New data, ``.csv`` or ``.parquet``.
    out_path : path-like
        Output Parquet file (see the module docstring for its columns).
    times : sequence of float, optional
        Times of the survival probabilities; default the artifact's (the CV grid).
    batch_size : int
        Rows read, scored and written at once.
    log : logging.Logger, optional

    Returns
    -------
    dict
        ``n_rows``, ``n_batches``, ``times``, ``unseen_levels`` (rows per column),
        ``time_range`` (:func:`times_beyond_training`; also in the Parquet schema metadata
        under :data:`PARQUET_METADATA_KEY`) and ``seconds``.

    Raises
    ------
    InputValidationError
        If a column is missing or has the wrong type (see :func:`check_columns`).
    """
    log = log or _log
    in_path = Path(in_path)
    times_arr = np.asarray(artifact["times"] if times is None else times, dtype=float)
    if times_arr.ndim != 1 or times_arr.size == 0 or not np.all(np.isfinite(times_arr)):
        raise ValueError(f"prediction times must be a non-empty list of numbers, got {times}")
    columns = check_columns(in_path, artifact)
    time_range = times_beyond_training(times_arr, artifact)
    if time_range["warning"]:
        log.warning("%s", time_range["warning"])
    meta = json.dumps(
        {"times": times_arr.tolist(), **{k: v for k, v in time_range.items() if k != "warning"}}
    )
    categorical = [
        c["name"] for c in artifact["training_schema"]["columns"] if c["kind"] == "categorical"
    ]
    id_col = artifact["training_schema"].get("id_col")
    keep_id = bool(id_col) and id_col in columns
    n_total = None
    if in_path.suffix.lower() != ".csv":
        n_total = pq.ParquetFile(in_path).metadata.num_rows
    n_batches_total = "?" if n_total is None else max(1, -(-n_total // batch_size))
    start = _time.perf_counter()
    unseen_total: dict[str, int] = {}
    n_rows, n_batches = 0, 0
    writer = None
    with atomic_path(out_path) as tmp:
        try:
            for df in iter_batches(in_path, columns, batch_size, categorical):
                t0 = _time.perf_counter()
                df = df.reset_index(drop=True)
                check_batch(df, str(in_path), artifact, n_rows)
                scores, unseen = score_batch(artifact, df, times_arr)
                for k, v in unseen.items():
                    unseen_total[k] = unseen_total.get(k, 0) + v
                keys = {ROW_COL: np.arange(n_rows, n_rows + len(df), dtype=np.int64)}
                if keep_id:
                    keys[id_col] = df[id_col].to_numpy()
                out = pd.concat([pd.DataFrame(keys), scores.reset_index(drop=True)], axis=1)
                table = pa.Table.from_pandas(out, preserve_index=False)
                if writer is None:
                    schema = table.schema.with_metadata(
                        {**(table.schema.metadata or {}), PARQUET_METADATA_KEY: meta.encode()}
                    )
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table)
                n_rows += len(df)
                n_batches += 1
                log.info(
                    "predict batch %d/%s: %d rows in %.2f s (%d rows so far, %.1f s elapsed)",
                    n_batches,
                    n_batches_total,
                    len(df),
                    _time.perf_counter() - t0,
                    n_rows,
                    _time.perf_counter() - start,
                )
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise InputValidationError(str(in_path), "table has no rows")
    for col, n in unseen_total.items():
        log.warning(
            "%s, column %r: %d row(s) with a level not seen in training, encoded as the "
            "training data's rare levels",
            in_path,
            col,
            n,
        )
    return {
        "n_rows": n_rows,
        "n_batches": n_batches,
        "times": times_arr.tolist(),
        "unseen_levels": unseen_total,
        "time_range": time_range,
        "seconds": _time.perf_counter() - start,
    }
