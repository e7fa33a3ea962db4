"""The Spark ETL path: same outputs as :mod:`survival_framework.etl`, computed with Spark.

Used by rule ``split_data_spark`` (``rules/spark.smk``) when the engine selection in
``rules/common.smk`` picks Spark. It reads ``results/data/clean.parquet`` (written by the
pandas ``validate_data``) and writes exactly the files of the pandas path::

    folds.parquet, time_grid.json, fold_{k}/train.parquet, test.parquet, preprocessor.json

Why the input is the validated table and not the raw file: validation rules (event
spellings, zero durations, dropped constant features, stratified sampling, the ``_row``
numbering) are defined once, in pandas, and the Spark path cannot drift from them. What
grows with the data here stays bounded on the driver: only ``_row``, the duration and the
event (17 bytes a row) are collected, to assign folds with the same
:func:`~survival_framework.splits.assign_folds` and derive the grid with the same
:func:`~survival_framework.timegrid.evaluation_time_grid`; the fold-fitted statistics
are five Spark aggregations for all folds (per-fold moments, exact medians located through
bucket counts, level counts; fold k's statistics combined on the driver from the other
folds'), the transform is Spark column expressions, and the matrices reach the driver in
chunks of about ``chunk_mb`` MB through Arrow, appended to one Parquet file each.

Parity with pandas: fold membership and grid are identical by construction, categorical
states go through the same :func:`~survival_framework.preprocess.categorical_state`, the
median is ``np.median``'s bit for bit (:func:`exact_fold_medians`), and means/stds agree to
rounding (pooled per-fold moments against numpy's pairwise sum: ~1e-15 relative).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import preprocess
from .io import atomic_path, read_json, write_json, write_parquet
from .schema import ROW_COL
from .splits import assign_folds
from .timegrid import evaluation_time_grid

if TYPE_CHECKING:  # pyspark is an optional extra: imported lazily at run time
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "spark_master_url",
    "spark_conf",
    "log4j2_properties",
    "start_spark_session",
    "read_clean",
    "fit_fold_states",
    "exact_fold_medians",
    "median_bucket_splits",
    "pooled_mean_std",
    "transform_columns",
    "run_spark_etl",
]

FOLD_COL = "fold"


def spark_master_url(master: str, threads: int) -> str:
    """Master URL to use: ``local[*]``/``local`` become ``local[threads]`` (the rule's
    threads, so Snakemake's core accounting holds); anything else is passed through."""
    if master in ("local", "local[*]"):
        return f"local[{max(int(threads), 1)}]"
    return master


def log4j2_properties(log_path: str | os.PathLike, level: str = "warn") -> str:
    """A log4j2 configuration that appends Spark's own log records to ``log_path``."""
    return "\n".join(
        [
            "status = error",
            f"rootLogger.level = {level}",
            "rootLogger.appenderRef.file.ref = file",
            "appender.file.type = File",
            "appender.file.name = file",
            f"appender.file.fileName = {Path(log_path).resolve()}",
            "appender.file.append = true",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %p spark %c{1}: %m%n%ex",
            # Spark version, application id, start and stop: always in the rule's log
            "logger.sc.name = org.apache.spark.SparkContext",
            "logger.sc.level = info",
            # the same noise Spark's own defaults silence
            "logger.jetty.name = org.sparkproject.jetty",
            "logger.jetty.level = warn",
            "",
        ]
    )


def spark_conf(
    master: str,
    threads: int,
    memory: str,
    log4j_file: str | os.PathLike | None = None,
) -> dict[str, str]:
    """Spark settings of the ETL session.

    Parameters
    ----------
    master : str
        ``execution.spark_master`` (``local[*]``, ``spark://host:7077``, ``yarn``, ``k8s://...``).
    threads : int
        The rule's threads (used for ``local[*]``).
    memory : str
        ``execution.spark_memory``, for both ``spark.driver.memory`` and
        ``spark.executor.memory`` (keep it below a standalone worker's ``--memory``).
    log4j_file : path-like, optional
        log4j2 configuration for the driver (see :func:`log4j2_properties`).

    Returns
    -------
    dict of str to str
    """
    url = spark_master_url(master, threads)
    # No -XX:TieredStopAtLevel=1: it saves ~1 s of JVM start-up but, with C1 only, made
    # the ETL itself 1.5-1.9x slower (1M rows).
    driver_opts = ""
    if log4j_file is not None:
        driver_opts = f"-Dlog4j2.configurationFile=file:{Path(log4j_file).resolve()}"
    conf = {
        "spark.master": url,
        "spark.app.name": "survival-workflow split_data_spark",
        "spark.driver.memory": memory,
        "spark.executor.memory": memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
    }
    if driver_opts:
        conf["spark.driver.extraJavaOptions"] = driver_opts
    if url.startswith("local"):
        # the default of 200 shuffle partitions is far too many for one machine
        conf["spark.sql.shuffle.partitions"] = str(max(4, 2 * max(int(threads), 1)))
    return conf


def start_spark_session(
    master: str,
    threads: int,
    memory: str,
    log_path: str | os.PathLike | None = None,
    capture_stderr: bool = False,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Start the SparkSession of the ETL (imports pyspark; starts a JVM).

    Parameters
    ----------
    master, threads, memory
        See :func:`spark_conf`.
    log_path : path-like, optional
        The rule's log file: Spark's log4j records are appended to it.
    capture_stderr : bool
        Also point file descriptor 2 at ``log_path`` before the JVM starts, so the JVM's
        own messages land in the log (rule scripts only; never inside pytest).
    extra_conf : dict, optional
        More Spark settings (override the defaults).

    Returns
    -------
    pyspark.sql.SparkSession
    """
    from pyspark.sql import SparkSession

    # executors (and Arrow conversions) use this interpreter, not whatever `python` is
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    log4j_file = None
    if log_path is not None:
        fd, log4j_file = tempfile.mkstemp(prefix="log4j2-", suffix=".properties")
        with os.fdopen(fd, "w") as fh:
            fh.write(log4j2_properties(log_path))
        if capture_stderr:
            with open(log_path, "a", encoding="utf-8") as log_fh:
                os.dup2(log_fh.fileno(), 2)  # fd 2 stays open after the `with`
    conf = spark_conf(master, threads, memory, log4j_file)
    conf.update(extra_conf or {})
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    finally:
        if log4j_file is not None:  # read once by the JVM at start-up
            os.unlink(log4j_file)


# ---------------------------------------------------------------------------------------
# reading and validating the clean table
# ---------------------------------------------------------------------------------------


def _expected_types(schema: dict) -> dict[str, tuple[str, ...]]:
    """Arrow type names allowed for each column of ``clean.parquet``."""
    floats = ("double",)
    strings = ("string", "large_string")
    expected = {
        ROW_COL: ("int64",),
        schema["duration_col"]: floats,
        schema["event_col"]: ("int8",),
    }
    expected.update({c: floats for c in schema["numeric"]})
    expected.update({c: strings for c in schema["categorical"]})
    return expected


def read_clean(spark: SparkSession, clean_path: str | os.PathLike, schema: dict) -> DataFrame:
    """Read ``clean.parquet`` with an explicit schema checked against ``schema.json``.

    Columns are renamed to ``c0, c1, ...`` (key columns keep the names ``_row``, ``fold``
    is added later) so that any feature name, including dots or backticks, is safe in
    Spark expressions; :func:`run_spark_etl` maps them back.

    Raises
    ------
    ValueError
        If a column named in ``schema.json`` is missing or has an unexpected type.
    """
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import StructField, StructType

    file_schema = pq.read_schema(clean_path)
    columns = _input_columns(schema)
    expected = _expected_types(schema)
    fields = []
    for col in columns:
        if col not in file_schema.names:
            raise ValueError(f"{clean_path}: column {col!r} of schema.json is missing")
        arrow_type = file_schema.field(col).type
        if col in expected and str(arrow_type) not in expected[col]:
            raise ValueError(
                f"{clean_path}, column {col!r}: type {arrow_type}, expected "
                f"{' or '.join(expected[col])} (was it written by validate_data?)"
            )
        fields.append(StructField(col, from_arrow_type(arrow_type), True))
    sdf = spark.read.schema(StructType(fields)).parquet(str(Path(clean_path).resolve()))
    # renamed by position: no name is ever parsed (dots, backticks, spaces are all fine)
    return sdf.toDF(*[_safe(i, c) for i, c in enumerate(columns)])


def _input_columns(schema: dict) -> list[str]:
    keys = [ROW_COL] + ([schema["id_col"]] if schema["id_col"] else [])
    return (
        keys
        + [schema["duration_col"], schema["event_col"], *schema["numeric"]]
        + list(schema["categorical"])
    )


def _safe(i: int, col: str) -> str:
    return ROW_COL if col == ROW_COL else f"c{i}"


def _check_keys(row: np.ndarray, time_: np.ndarray, event: np.ndarray, schema: dict) -> None:
    """The checks of the clean table the folds and the grid rely on."""
    src = schema.get("source", "clean table")
    expected_rows = schema.get("n_rows_used")
    if expected_rows is not None and row.size != expected_rows:
        raise ValueError(
            f"{src}: clean table has {row.size} rows, schema.json says {expected_rows}"
        )
    if row.size > 1 and not (np.diff(row) > 0).all():
        raise ValueError(f"{src}: clean table is not ordered by {ROW_COL} (unique, increasing)")
    if not np.isfinite(time_).all() or (time_ < 0).any():
        raise ValueError(f"{src}, column {schema['duration_col']!r}: missing or negative durations")
    if not np.isin(event, (0, 1)).all():
        raise ValueError(f"{src}, column {schema['event_col']!r}: events must be 0/1")


# ---------------------------------------------------------------------------------------
# fold-fitted statistics
# ---------------------------------------------------------------------------------------


def _not_nan(c: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when(~F.isnan(c), c)  # NaN -> null, as numpy's isnan mask does


def fit_fold_states(
    sdf: DataFrame,
    names: dict[str, str],
    numeric: Sequence[str],
    categorical: Sequence[str],
    fold_sizes: np.ndarray,
    min_frequency: float,
    max_levels: int | None = None,
    seed: int = 0,
) -> list[dict]:
    """Preprocessing state of every fold, fitted on that fold's training rows only.

    Five Spark jobs whatever the number of folds: per-fold moments of the numeric columns
    (:func:`_fold_moments`), the exact training medians (:func:`exact_fold_medians`, three
    jobs) and the level counts (:func:`_level_counts`). Fold k's training statistics are
    then combined on the driver from the statistics of the other folds.

    Parameters
    ----------
    sdf : pyspark.sql.DataFrame
        Clean table with safe column names (see :func:`read_clean`) and a ``fold`` column.
    names : dict
        Original column name -> safe column name.
    numeric, categorical : sequence of str
        Feature columns by kind (original names, in ``schema.json`` order).
    fold_sizes : ndarray
        Rows per test fold.
    min_frequency : float
        Rare-level threshold.
    max_levels : int, optional
        Most levels kept per categorical column (``preprocess.max_levels``).
    seed : int
        Seed of the sample that places the median brackets (the medians are exact
        whatever it is).

    Returns
    -------
    list of dict
        One :func:`~survival_framework.preprocess.fit_state`-compatible state per fold.
    """
    n_folds = len(fold_sizes)
    n_total = int(fold_sizes.sum())
    safe_numeric = [names[c] for c in numeric]
    if numeric:
        moments = _fold_moments(sdf, safe_numeric, n_folds)
        medians = exact_fold_medians(sdf, safe_numeric, n_folds, n_total, seed=seed)
    cat_counts = _level_counts(sdf, names, categorical)
    states = []
    for k in range(n_folds):
        n = n_total - int(fold_sizes[k])
        num_state = {}
        others = [f for f in range(n_folds) if f != k]
        for j, c in enumerate(numeric):
            med = 0.0 if np.isnan(medians[k, j]) else float(medians[k, j])
            counts = moments["n"][others, j]
            # training rows with a missing value are imputed with the median: one more
            # group of (n_missing, med, 0) in the pooled moments
            n_missing = n - int(counts.sum())
            mean, std = pooled_mean_std(
                np.append(counts, n_missing),
                np.append(moments["mean"][others, j], med),
                np.append(moments["m2"][others, j], 0.0),
            )
            num_state[c] = preprocess.numeric_state(med, mean, std)
        cat_state = {}
        for c in categorical:
            per_fold = cat_counts[c]
            train_counts = (
                per_fold[per_fold[FOLD_COL] != k].groupby("level", dropna=False)["n"].sum()
            )
            observed = train_counts[train_counts.index.notna()]
            n_missing = int(train_counts[train_counts.index.isna()].sum())
            counts = pd.Series(
                observed.to_numpy(dtype=np.int64), index=[str(v) for v in observed.index]
            )
            counts = counts[counts > 0]
            cat_state[c] = preprocess.categorical_state(
                counts, n_missing, n, min_frequency, max_levels
            )
        states.append(
            {
                "numeric": num_state,
                "categorical": cat_state,
                "min_frequency": min_frequency,
                "max_levels": max_levels,
                "n_train": n,
            }
        )
    return states


def pooled_mean_std(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation of the union of groups.

    Parameters
    ----------
    n, mean, m2 : ndarray
        Size, mean and sum of squared deviations from the mean of each group (empty groups
        allowed).

    Returns
    -------
    (float, float)
        Chan et al.'s pairwise-update formula in closed form: the squared deviations are
        pooled around the common mean, never as a difference of raw sums of squares, so no
        cancellation (0.0, 0.0 for no rows).
    """
    n = np.asarray(n, dtype=np.float64)
    keep = n > 0
    n, mean, m2 = n[keep], np.asarray(mean, float)[keep], np.asarray(m2, float)[keep]
    total = n.sum()
    if total == 0:
        return 0.0, 0.0
    grand = float((n * mean).sum() / total)
    ss = float((m2 + n * (mean - grand) ** 2).sum())
    return grand, float(np.sqrt(max(ss, 0.0) / total))


def _fold_moments(sdf: DataFrame, cols: Sequence[str], n_folds: int) -> dict[str, np.ndarray]:
    """Non-missing count, mean and sum of squared deviations of each column per test fold
    (one Spark job); arrays of shape ``(n_folds, len(cols))``."""
    from pyspark.sql import functions as F

    aggs = []
    for j, c in enumerate(cols):
        x = _not_nan(F.col(c))
        aggs += [
            F.count(x).alias(f"n{j}"),
            F.avg(x).alias(f"m{j}"),
            F.var_pop(x).alias(f"v{j}"),
        ]
    rows = sdf.groupBy(FOLD_COL).agg(*aggs).toPandas().set_index(FOLD_COL)
    rows = rows.reindex(range(n_folds))
    n = rows[[f"n{j}" for j in range(len(cols))]].fillna(0).to_numpy(dtype=np.int64)
    mean = rows[[f"m{j}" for j in range(len(cols))]].fillna(0.0).to_numpy(dtype=np.float64)
    var = rows[[f"v{j}" for j in range(len(cols))]].fillna(0.0).to_numpy(dtype=np.float64)
    return {"n": n, "mean": mean, "m2": var * n}


def median_bucket_splits(sample: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Bucket boundaries that bracket the median of one column.

    The ``probs`` quantiles of a sample of the column, each followed by its next
    representable double, between -inf and +inf: every sampled quantile value gets a bucket
    of its own (``[v, nextafter(v))`` holds exactly ``v``, so heavy ties cost nothing) and
    the buckets in between hold about ``probs`` spacing of the rows.
    """
    x = np.asarray(sample, dtype=np.float64)
    x = x[np.isfinite(x)]
    cuts = np.unique(np.quantile(x, probs) + 0.0) if x.size else np.array([0.0])
    cuts = np.concatenate([cuts, np.nextafter(cuts, np.inf)])
    cuts = np.unique(cuts[np.isfinite(cuts)])
    return np.concatenate([[-np.inf], cuts, [np.inf]])


def _order_statistics(n: int) -> list[int]:
    """0-based ranks whose mean is the median of ``n`` sorted values (numpy's rule)."""
    return [(n - 1) // 2] if n % 2 else [n // 2 - 1, n // 2]


def exact_fold_medians(
    sdf: DataFrame,
    cols: Sequence[str],
    n_folds: int,
    n_rows: int,
    sample_rows: int = 200_000,
    probs: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Exact median of the non-missing training values of every column and fold.

    Equal to ``np.median`` of fold k's training values, bit for bit, in three Spark jobs
    for all folds and columns (instead of one exact ``percentile`` sort per fold):

    1. a sample of about ``sample_rows`` rows places bucket boundaries around the median
       (:func:`median_bucket_splits`; ``probs`` defaults to the 0.3..0.7 quantiles by
       0.001, which contain every training median when folds are 20 % of the rows);
    2. rows per (test fold, column, bucket), with Spark ML's ``Bucketizer``;
    3. for each fold, column and the one or two ranks numpy averages, the training counts
       (sums over the other folds) locate the bucket that holds the rank; a one-value
       bucket gives the value at once, the values of the others are collected (about
       0.1 % of the rows each) and the rank is read from them sorted.

    The result is exact for any sample: a poor one only makes step 3 collect more.

    Returns
    -------
    ndarray of shape (n_folds, len(cols))
        NaN where a fold's training rows have no value in the column.
    """
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import functions as F

    probs = np.linspace(0.3, 0.7, 401) if probs is None else np.asarray(probs, float)
    xs = [f"x{j}" for j in range(len(cols))]
    bs = [f"b{j}" for j in range(len(cols))]
    values = sdf.select(
        F.col(FOLD_COL),
        *[
            F.coalesce(F.col(c), F.lit(float("nan"))).alias(x)
            for c, x in zip(cols, xs, strict=True)
        ],
    )
    # 1. boundaries from a sample
    fraction = min(1.0, sample_rows / max(n_rows, 1))
    sample = values.select(*xs).sample(fraction=fraction, seed=seed).toArrow()
    splits = [median_bucket_splits(sample.column(x).to_numpy(), probs) for x in xs]
    del sample
    bucketed = Bucketizer(
        splitsArray=[s.tolist() for s in splits],
        inputCols=xs,
        outputCols=bs,
        handleInvalid="keep",  # NaN -> bucket len(splits) - 1, ignored below
    ).transform(values)
    # 2. rows per (fold, column, bucket)
    long = _counts_by_fold(bucketed, [F.col(b).cast("int") for b in bs])
    long = long.rename(columns={"value": "b"})
    # 3. locate every rank: a one-value bucket answers directly, the others are collected
    medians = np.full((n_folds, len(cols)), np.nan)
    ranks: dict[tuple[int, int], list[tuple[int, int | float]]] = {}  # (k, j) -> answers
    wanted: dict[int, set[int]] = {}  # column -> buckets whose values are needed
    for j, s in enumerate(splits):
        n_buckets = len(s) - 1  # finite values only; the NaN bucket is dropped
        sub = long[(long["j"] == j) & (long["b"] < n_buckets)]
        counts = np.zeros((n_folds, n_buckets), dtype=np.int64)
        np.add.at(counts, (sub[FOLD_COL].to_numpy(), sub["b"].to_numpy()), sub["n"].to_numpy())
        all_folds = counts.sum(axis=0)
        for k in range(n_folds):
            train = all_folds - counts[k]
            if train.sum() == 0:
                continue
            cum = np.cumsum(train)
            answers: list[tuple[int, int | float]] = []
            for r in _order_statistics(int(cum[-1])):
                b = int(np.searchsorted(cum, r, side="right"))
                lo, hi = s[b], s[b + 1]
                if np.isfinite(lo) and hi == np.nextafter(lo, np.inf):
                    answers.append((-1, float(lo)))  # the bucket holds lo only
                else:
                    answers.append((b, r - int(cum[b] - train[b])))  # rank within bucket
                    wanted.setdefault(j, set()).add(b)
            ranks[(k, j)] = answers
    got = None
    if wanted:  # the values of the wanted buckets, all columns in one job
        picked = F.explode(
            F.array(
                *[
                    F.when(
                        F.col(bs[j]).isin(sorted(wanted[j])),
                        F.struct(
                            F.lit(j).alias("j"),
                            F.col(bs[j]).cast("int").alias("b"),
                            F.col(xs[j]).alias("v"),
                        ),
                    )
                    for j in sorted(wanted)
                ]
            )
        ).alias("p")
        got = (
            bucketed.select(FOLD_COL, picked)
            .filter(F.col("p").isNotNull())
            .select(FOLD_COL, "p.j", "p.b", "p.v")
            .toPandas()
        )
    for (k, j), answers in ranks.items():
        picked_values = []
        for b, x in answers:
            if b < 0:
                picked_values.append(x)
            else:
                sel = got[(got["j"] == j) & (got["b"] == b) & (got[FOLD_COL] != k)]
                picked_values.append(np.sort(sel["v"].to_numpy(dtype=np.float64))[int(x)])
        # numpy's median of an even count is the mean of the two middle values
        medians[k, j] = float(np.mean(np.array(picked_values, dtype=np.float64)))
    return medians


def _counts_by_fold(sdf: DataFrame, values: Sequence[Column]) -> pd.DataFrame:
    """Rows per (test fold, column index ``j``, value) of several columns, in one Spark job.

    ``values`` are column expressions; the result has the columns ``fold``, ``j``,
    ``value`` and ``n`` (missing values form their own group). Training counts of fold k
    are then the sums over the other folds (exact integers).
    """
    from pyspark.sql import functions as F

    pairs = F.explode(
        F.array(*[F.struct(F.lit(j).alias("j"), v.alias("value")) for j, v in enumerate(values)])
    ).alias("p")
    return (
        sdf.select(FOLD_COL, pairs)
        .groupBy(FOLD_COL, F.col("p.j").alias("j"), F.col("p.value").alias("value"))
        .agg(F.count(F.lit(1)).alias("n"))
        .toPandas()
    )


def _level_counts(
    sdf: DataFrame, names: dict[str, str], categorical: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Rows per (test fold, level) of every categorical column, in one Spark job."""
    from pyspark.sql import functions as F

    if not categorical:
        return {}
    long = _counts_by_fold(sdf, [F.col(names[c]).cast("string") for c in categorical])
    long = long.rename(columns={"value": "level"})
    long["level"] = long["level"].astype(object).where(long["level"].notna(), None)
    return {
        c: long.loc[long["j"] == i, [FOLD_COL, "level", "n"]].reset_index(drop=True)
        for i, c in enumerate(categorical)
    }


def transform_columns(state: dict, names: dict[str, str]) -> list[Column]:
    """Spark expressions of :func:`survival_framework.preprocess.transform`, in
    :func:`~survival_framework.preprocess.output_columns` order (same arithmetic, so the
    values are bit-identical for the same state)."""
    from pyspark.sql import functions as F

    cols = []
    for c, st in state["numeric"].items():
        x = F.coalesce(_not_nan(F.col(names[c])), F.lit(float(st["median"])))
        cols.append(((x - F.lit(float(st["mean"]))) / F.lit(float(st["scale"]))).alias(c))
    for c, st in state["categorical"].items():
        v = F.coalesce(F.col(names[c]).cast("string"), F.lit(st["fill"]))
        for lv in st["levels"]:
            cols.append((v == F.lit(lv)).cast("double").alias(f"{c}={lv}"))
        if st["has_other"]:
            known = [*st["levels"], st["reference"]]
            cols.append((~v.isin(known)).cast("double").alias(f"{c}={preprocess.OTHER}"))
    return cols


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------


def _write_split(
    frame: DataFrame, rows: np.ndarray, path: Path, chunk_rows: int, log: logging.Logger
) -> None:
    """Write ``frame`` ordered by ``_row`` to one Parquet file, ``chunk_rows`` rows per
    Spark job (``rows``: the sorted ``_row`` values of the split, known on the driver)."""
    from pyspark.sql import functions as F

    starts = rows[::chunk_rows]
    with atomic_path(path) as tmp:
        writer = None
        try:
            for i, lo in enumerate(starts):
                part = frame.filter(F.col(ROW_COL) >= int(lo))
                if i + 1 < len(starts):
                    part = part.filter(F.col(ROW_COL) < int(starts[i + 1]))
                # a chunk is small: sorting it on the driver beats a Spark sort (no shuffle)
                table = part.toArrow().sort_by(ROW_COL)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, _plain_schema(table.schema))
                writer.write_table(table.cast(_plain_schema(table.schema)))
            if writer is None:  # empty split (cannot happen with validated folds)
                raise ValueError(f"{path}: no rows")
        finally:
            if writer is not None:
                writer.close()
    log.info("wrote %s in %d chunk(s)", path, len(starts))


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """Arrow schema with large_string -> string (what pandas writes), no metadata."""
    fields = [
        pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
        for f in schema
    ]
    return pa.schema(fields)


# ---------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------


def run_spark_etl(
    spark: SparkSession,
    clean_path: str | os.PathLike,
    schema_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    n_folds: int,
    seed: int,
    min_frequency: float,
    n_times: int,
    quantiles: tuple[float, float],
    log: logging.Logger | None = None,
    chunk_mb: float = 256.0,
    max_levels: int | None = None,
) -> None:
    """Write folds, time grid and per-fold preprocessed splits with Spark.

    Same parameters and outputs as :func:`survival_framework.etl.run_pandas_etl`, plus the
    session and ``chunk_mb`` (about how much of a matrix the driver holds at once).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    log = log or logging.getLogger(__name__)
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    schema = read_json(schema_path)
    dur, ev, id_col = schema["duration_col"], schema["event_col"], schema["id_col"]
    numeric, categorical = list(schema["numeric"]), list(schema["categorical"])
    clean = read_clean(spark, clean_path, schema)
    names = {c: _safe(i, c) for i, c in enumerate(_input_columns(schema))}

    # folds and grid on the driver, from the same functions as the pandas path
    keys = clean.select(ROW_COL, names[dur], names[ev]).toArrow()
    row = keys.column(ROW_COL).to_numpy()
    time_ = keys.column(names[dur]).to_numpy()
    event = keys.column(names[ev]).to_numpy()
    del keys
    order = np.argsort(row, kind="stable")  # Spark may return partitions in any order
    row, time_, event = row[order], time_[order], event[order]
    _check_keys(row, time_, event, schema)
    folds = assign_folds(event, n_folds, seed)
    grid = evaluation_time_grid(time_, event, folds, n_times, quantiles)
    log.info(
        "spark %s: %d rows, time grid %d points in [%g, %g] (%.1f s)",
        spark.sparkContext.master,
        row.size,
        len(grid["times"]),
        grid["times"][0],
        grid["tau"],
        time.perf_counter() - t0,
    )
    del time_, event

    # fold membership back into Spark by _row (n ints)
    fold_sdf = spark.createDataFrame(pd.DataFrame({ROW_COL: row, FOLD_COL: folds.astype(np.int32)}))
    # broadcast hash join: 12 bytes a row on every executor, no shuffle of the wide table
    joined = clean.join(F.broadcast(fold_sdf), on=ROW_COL, how="inner").persist(
        StorageLevel.MEMORY_AND_DISK
    )
    fold_sizes = np.bincount(folds, minlength=n_folds)
    try:
        states = fit_fold_states(
            joined, names, numeric, categorical, fold_sizes, min_frequency, max_levels, seed
        )
        log.info("fitted %d fold states (%.1f s)", n_folds, time.perf_counter() - t0)
        key_cols = [F.col(ROW_COL)]
        if id_col:
            key_cols.append(F.col(names[id_col]).alias(id_col))
        key_cols += [F.col(names[dur]).alias(dur), F.col(names[ev]).alias(ev)]
        for k, state in enumerate(states):
            width = len(key_cols) + len(preprocess.output_columns(state))
            chunk_rows = max(1, int(chunk_mb * 1e6 / (8 * width)))
            frame = joined.select(*key_cols, FOLD_COL, *transform_columns(state, names))
            for part, mask in (("train", folds != k), ("test", folds == k)):
                subset = frame.filter(
                    (F.col(FOLD_COL) != k) if part == "train" else (F.col(FOLD_COL) == k)
                ).drop(FOLD_COL)
                _write_split(
                    subset, row[mask], out_dir / f"fold_{k}" / f"{part}.parquet", chunk_rows, log
                )
            write_json(state, out_dir / f"fold_{k}" / "preprocessor.json")
            log.info(
                "fold %d: %d train / %d test rows, %d features (%.1f s)",
                k,
                int((folds != k).sum()),
                int(fold_sizes[k]),
                len(preprocess.output_columns(state)),
                time.perf_counter() - t0,
            )
    finally:
        joined.unpersist()
    write_json(grid, out_dir / "time_grid.json")
    write_parquet(pd.DataFrame({ROW_COL: row, "fold": folds}), out_dir / "folds.parquet")
