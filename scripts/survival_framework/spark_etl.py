"""The Spark ETL path: same outputs as :mod:`survival_framework.etl`, computed with Spark.

Used by rule ``split_data_spark`` (``rules/spark.smk``) when the engine selection in
``rules/common.smk`` picks Spark. It reads ``results/data/clean.parquet`` (written by the
pandas ``validate_data``) and writes exactly the files of the pandas path, to the paths the
rule declares (see :mod:`survival_framework.etl`). The session is started by
:mod:`survival_framework.spark_session`, the fold-fitted statistics are computed by
:mod:`survival_framework.spark_stats`; this module reads, transforms and writes.

Why the input is the validated table and not the raw file: validation rules (event
spellings, zero durations, dropped constant features, stratified sampling, the ``_row``
numbering) are defined once, in pandas, and the Spark path cannot drift from them. What
grows with the data here stays bounded on the driver: only ``_row``, the duration and the
event (17 bytes a row) are collected, to assign folds and derive the grid with the same
:func:`~survival_framework.etl.folds_and_grid` as pandas; the fold-fitted statistics are
five Spark aggregations for all folds of a repeat (one round per repeat of a repeated
cross-validation, ``cv.n_repeats``), the transform is Spark column expressions, and the
executors write the matrices as Parquet part files that the driver copies, one row group of
about ``chunk_mb`` MB at a time and in ``_row`` order, into one Parquet file per split
(:func:`_write_split`; no matrix is ever collected into the driver's JVM heap).

Parity with pandas: fold membership and grid are identical by construction, the states
agree as :mod:`survival_framework.spark_stats` describes, and the transform is the same
arithmetic (:func:`transform_columns`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import preprocess
from .contract import FOLD_COL, OTHER, ROW_COL
from .etl import (
    check_keys,
    check_split_paths,
    folds_and_grid,
    key_columns,
    write_folds_and_grid,
)
from .io import atomic_path, read_json, write_json
from .spark_stats import fit_fold_states, nan_to_null

if TYPE_CHECKING:  # pyspark is an optional extra: imported lazily at run time
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "read_clean",
    "transform_columns",
    "run_spark_etl",
]


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
    return [*key_columns(schema), *schema["numeric"], *schema["categorical"]]


def _safe(i: int, col: str) -> str:
    return ROW_COL if col == ROW_COL else f"c{i}"


# ---------------------------------------------------------------------------------------
# transform
# ---------------------------------------------------------------------------------------


def transform_columns(state: dict, names: dict[str, str]) -> list[Column]:
    """Spark expressions of :func:`survival_framework.preprocess.transform`, in
    :func:`~survival_framework.preprocess.output_columns` order (same arithmetic, so the
    values are bit-identical for the same state)."""
    from pyspark.sql import functions as F

    cols = []
    for c, st in state["numeric"].items():
        x = F.coalesce(nan_to_null(F.col(names[c])), F.lit(float(st["median"])))
        cols.append(((x - F.lit(float(st["mean"]))) / F.lit(float(st["scale"]))).alias(c))
    for c, st in state["categorical"].items():
        v = F.coalesce(F.col(names[c]).cast("string"), F.lit(st["fill"]))
        for lv in st["levels"]:
            cols.append((v == F.lit(lv)).cast("double").alias(f"{c}={lv}"))
        if st["has_other"]:
            known = [*st["levels"], st["reference"]]
            cols.append((~v.isin(known)).cast("double").alias(f"{c}={OTHER}"))
    return cols


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------


def _write_split(
    frame: DataFrame, rows: np.ndarray, path: Path, chunk_mb: float, log: logging.Logger
) -> str:
    """Write ``frame`` ordered by ``_row`` to one Parquet file, bounded on the driver.

    The executors write ``frame`` as Parquet part files (row groups of about ``chunk_mb``
    MB) to a directory beside ``path``; nothing of the matrix passes through the driver's
    JVM. The driver then copies the row groups into ``path`` in ``_row`` order, about
    ``chunk_mb`` MB at a time. The partitions of the validated table are contiguous ``_row`` ranges
    (``validate_data`` writes it ordered by ``_row``), so the row groups are ordered by
    their ranges alone; if any two ranges overlap (a table written otherwise), the split is
    rewritten range-partitioned and sorted by Spark first.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        The split's rows, with a ``_row`` column.
    rows : ndarray
        The sorted ``_row`` values the split must hold (checked: no row lost or repeated).
    path : Path
        The Parquet file to write (atomically).
    chunk_mb : float
        About what the driver holds of the matrix at once (also the row group size the
        part files are written with, a limit on their encoded size).
    log : logging.Logger

    Returns
    -------
    str
        ``"ordered"`` if the partitions were already ordered, else ``"sorted"``.
    """
    names = frame.columns
    # positional names in the part files: no feature name is ever parsed by a writer
    safe = frame.toDF(*[f"x{j}" for j in range(len(names))])
    row_pos = names.index(ROW_COL)
    parts_dir = path.parent / f".{path.name}.parts"
    block = str(max(64 * 1024, int(chunk_mb * 1e6)))
    with atomic_path(path) as tmp:
        try:
            _write_parts(safe, parts_dir, block)
            pieces = _ordered_row_groups(parts_dir, row_pos)
            how = "ordered"
            if pieces is None:  # overlapping ranges: let Spark sort, then it holds by construction
                n_parts = max(1, safe.rdd.getNumPartitions())
                key = f"x{row_pos}"
                _write_parts(
                    safe.repartitionByRange(n_parts, key).sortWithinPartitions(key),
                    parts_dir,
                    block,
                )
                pieces = _ordered_row_groups(parts_dir, row_pos)
                how = "sorted"
            if pieces is None:
                raise RuntimeError(f"{path}: Spark wrote overlapping {ROW_COL} ranges after a sort")
            chunk_rows = max(1, int(chunk_mb * 1e6 / (8 * len(names))))
            _copy_row_groups(pieces, names, row_pos, rows, tmp, path, chunk_rows)
        finally:
            shutil.rmtree(parts_dir, ignore_errors=True)
    log.info("wrote %s from %d row group(s) (%s partitions)", path, len(pieces), how)
    return how


def _write_parts(frame: DataFrame, parts_dir: Path, block: str) -> None:
    """Executors write ``frame`` under ``parts_dir`` (replacing what is there)."""
    frame.write.mode("overwrite").option("parquet.block.size", block).parquet(str(parts_dir))


def _ordered_row_groups(parts_dir: Path, row_pos: int) -> list[tuple[Path, int, bool]] | None:
    """The non-empty row groups under ``parts_dir`` ordered by their ``_row`` range, each
    as (file, row group, sorted inside), or None if two ranges overlap."""
    ranges = []
    for file in sorted(parts_dir.glob("part-*.parquet")):
        pf = pq.ParquetFile(file)
        for g in range(pf.num_row_groups):
            if pf.metadata.row_group(g).num_rows == 0:
                continue
            r = pf.read_row_group(g, columns=[f"x{row_pos}"]).column(0).to_numpy()
            ranges.append((int(r.min()), int(r.max()), file, g, r))
    ranges.sort(key=lambda x: x[0])
    if any(a[1] >= b[0] for a, b in zip(ranges, ranges[1:], strict=False)):
        return None
    return [(file, g, bool(np.all(r[1:] > r[:-1]))) for _, _, file, g, r in ranges]


def _copy_row_groups(
    pieces: list[tuple[Path, int, bool]],
    names: list[str],
    row_pos: int,
    rows: np.ndarray,
    tmp: Path,
    path: Path,
    chunk_rows: int,
) -> None:
    """Append the row groups to ``tmp`` in order, under the real column names,
    ``chunk_rows`` rows at a time."""
    writer = None
    done = 0
    try:
        for file, g, is_sorted in pieces:
            pf = pq.ParquetFile(file)
            if is_sorted:  # streamed: a row group can be far larger than chunk_rows
                chunks = (
                    pa.Table.from_batches([b])
                    for b in pf.iter_batches(batch_size=chunk_rows, row_groups=[g])
                )
            else:  # in order of its range but not inside it: sorted whole (rare)
                chunks = iter([pf.read_row_group(g).sort_by(f"x{row_pos}")])
            for table in chunks:
                table = table.rename_columns(names)
                got = table.column(row_pos).to_numpy()
                if not np.array_equal(got, rows[done : done + got.size]):
                    raise RuntimeError(
                        f"{path}: Spark wrote rows other than the split's {ROW_COL}s"
                    )
                done += got.size
                schema = _plain_schema(table.schema)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema))
    finally:
        if writer is not None:
            writer.close()
    if done != rows.size:
        raise RuntimeError(f"{path}: Spark wrote {done} rows, the split has {rows.size}")


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
    *,
    folds_path: str | os.PathLike,
    grid_path: str | os.PathLike,
    train_paths: Sequence[str | os.PathLike],
    test_paths: Sequence[str | os.PathLike],
    preprocessor_paths: Sequence[str | os.PathLike],
    n_folds: int,
    seed: int,
    min_frequency: float,
    n_times: int,
    quantiles: tuple[float, float],
    log: logging.Logger | None = None,
    chunk_mb: float = 128.0,
    max_levels: int | None = None,
    n_repeats: int = 1,
) -> None:
    """Write folds, time grid and per-resample preprocessed splits with Spark.

    Same parameters and outputs as :func:`survival_framework.etl.run_pandas_etl`, plus the
    session and ``chunk_mb`` (about how much of a matrix the driver holds at once). The
    repeats of a repeated cross-validation are done one after the other: repeat ``r``'s
    folds are joined to the table, its K fold states fitted and its resamples
    ``r * K .. r * K + K - 1`` written as in a plain K-fold.

    Raises
    ------
    ValueError
        If the path lists do not hold one path per resample, or the clean table is not what
        ``validate_data`` writes (see :func:`read_clean`).
    """
    check_split_paths(n_folds, train_paths, test_paths, preprocessor_paths, n_repeats)
    log = log or logging.getLogger(__name__)
    t0 = time.perf_counter()
    schema = read_json(schema_path)
    dur, ev = schema["duration_col"], schema["event_col"]
    clean = read_clean(spark, clean_path, schema)
    names = {c: _safe(i, c) for i, c in enumerate(_input_columns(schema))}

    # folds and grid on the driver, from the same function as the pandas path
    keys = clean.select(ROW_COL, names[dur], names[ev]).toArrow()
    row = keys.column(ROW_COL).to_numpy()
    time_ = keys.column(names[dur]).to_numpy()
    event = keys.column(names[ev]).to_numpy()
    del keys
    order = np.argsort(row, kind="stable")  # Spark may return partitions in any order
    row, time_, event = row[order], time_[order], event[order]
    check_keys(row, time_, event, schema)
    folds, grid = folds_and_grid(time_, event, n_folds, seed, n_times, quantiles, n_repeats)
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

    for r in range(n_repeats):
        # repeat r's folds as 0 .. K-1: one plain K-fold, resample r * K + k for fold k
        first = r * n_folds
        _write_repeat(
            spark,
            clean,
            names,
            schema,
            row,
            folds[r] - first,
            train_paths[first : first + n_folds],
            test_paths[first : first + n_folds],
            preprocessor_paths[first : first + n_folds],
            first,
            min_frequency,
            max_levels,
            seed,
            chunk_mb,
            log,
            t0,
        )
    write_folds_and_grid(row, folds, grid, folds_path, grid_path)


def _write_repeat(
    spark: SparkSession,
    clean: DataFrame,
    names: dict[str, str],
    schema: dict,
    row: np.ndarray,
    folds: np.ndarray,
    train_paths: Sequence[str | os.PathLike],
    test_paths: Sequence[str | os.PathLike],
    preprocessor_paths: Sequence[str | os.PathLike],
    first: int,
    min_frequency: float,
    max_levels: int | None,
    seed: int,
    chunk_mb: float,
    log: logging.Logger,
    t0: float,
) -> None:
    """Fit and write the K resamples of one repeat: ``folds`` (0 .. K-1, in ``row`` order)
    joined to ``clean``, fold k written to the k-th paths (resample ``first + k``)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    n_folds = len(train_paths)
    numeric, categorical = list(schema["numeric"]), list(schema["categorical"])
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
        # the key columns under their own names (_row's safe name is its own)
        key_cols = [F.col(names[c]).alias(c) for c in key_columns(schema)]
        for k, state in enumerate(states):
            frame = joined.select(*key_cols, FOLD_COL, *transform_columns(state, names))
            parts = (
                (train_paths[k], folds != k, F.col(FOLD_COL) != k),
                (test_paths[k], folds == k, F.col(FOLD_COL) == k),
            )
            for path, mask, in_part in parts:
                subset = frame.filter(in_part).drop(FOLD_COL)
                _write_split(subset, row[mask], Path(path), chunk_mb, log)
            write_json(state, preprocessor_paths[k])
            log.info(
                "fold %d: %d train / %d test rows, %d features (%.1f s)",
                first + k,
                int((folds != k).sum()),
                int(fold_sizes[k]),
                len(preprocess.output_columns(state)),
                time.perf_counter() - t0,
            )
    finally:
        joined.unpersist()
