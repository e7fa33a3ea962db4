"""Reading Parquet a column or a row batch at a time, and writing Parquet in row chunks.

The validation and split stages hold what their checks and statistics need (one column,
the event and fold arrays), never the whole table: a table of 10 million rows is read one
column at a time for the checks and statistics, and its outputs are written a row batch
at a time with a :class:`pyarrow.parquet.ParquetWriter` (:class:`ChunkedParquetWriter`).

Columns and batches are converted to pandas the way :func:`pandas.read_parquet` converts the
whole file (the pandas metadata restores extension and categorical dtypes), so the checks
see the same Series, and the per-row conversions the same values, as the in-memory path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputValidationError
from .io import atomic_path

__all__ = [
    "BATCH_ROWS",
    "ParquetColumns",
    "ChunkedParquetWriter",
    "frame_table",
    "arrays_table",
    "write_chunks",
    "positions_in",
]

BATCH_ROWS = 131_072
"""Rows per batch read and per row group written. A split batch holds the batch itself and,
for one fold at a time, its ~55 float64 model columns and their train/test subsets, about
2.5 KB a row with the allocators' slack. Measured at 1M rows (production shape): 65,536 rows
cost 0.53 GB peak and a 51 MB fold-0 training file, 131,072 rows 0.66 GB and 45 MB,
262,144 rows 0.97 GB and 39 MB, at the same speed; the in-memory path's one row group of
1M rows gave 33 MB (a column's dictionary is stored once per row group). This size keeps
the peak far below the budget and the files within a third of their one-group size."""


class ParquetColumns:
    """A Parquet file read one whole column, or one row batch, at a time.

    Parameters
    ----------
    path : path-like
        The Parquet file (its footer already checked, e.g. by
        :func:`survival_framework.io.read_table` with ``columns=[]``).
    label : str, optional
        File name in error messages (default ``str(path)``).
    """

    def __init__(self, path: str | os.PathLike, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label or str(path)
        self._file = self._call(pq.ParquetFile, self.path)
        self.n_rows = int(self._file.metadata.num_rows)
        # to_pandas of the empty table applies the pandas metadata, so the names exclude a
        # stored index and the dtypes are pandas' (a nullable int column read whole may be
        # float64 instead: callers only use these dtypes where both give the same answer)
        empty = self._file.schema_arrow.empty_table().to_pandas()
        self.columns = [str(c) for c in empty.columns]
        self.dtypes = dict(zip(self.columns, empty.dtypes, strict=True))

    def _call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` with read errors reported like ``read_table``'s."""
        try:
            return fn(*args, **kwargs)
        except InputValidationError:
            raise
        except Exception as exc:  # a damaged page surfaces only when it is read
            raise InputValidationError(
                self.label, f"cannot be read as parquet: {type(exc).__name__}: {exc}"
            ) from exc

    def column(self, name: str) -> pd.Series:
        """The whole column ``name`` as :func:`pandas.read_parquet` gives it, indexed 0..n-1."""
        frame = self._call(pd.read_parquet, self.path, columns=[name])
        return frame.iloc[:, 0].reset_index(drop=True)  # pandas may restore a non-str name

    def string_codes(self, name: str) -> tuple[np.ndarray, list[str]] | None:
        """A text column as integer codes into its distinct values (-1 = missing), read
        dictionary-encoded; None if the column is not stored as text.

        The codes are those of :func:`survival_framework.preprocess.level_codes` up to the
        order of the levels (a text value is its own level), at 8 bytes a row instead of a
        Python string per row.
        """
        kind = self._file.schema_arrow.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return None
        table = self._call(pq.read_table, self.path, columns=[name], read_dictionary=[name])
        column = table.unify_dictionaries().column(0)
        if column.num_chunks == 0:
            return np.zeros(0, dtype=np.int64), []
        levels = [str(v) for v in column.chunk(0).dictionary.to_pylist()]
        codes = np.concatenate(
            [
                chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
                for chunk in column.chunks
            ]
        )
        return codes, levels

    def batches(
        self, columns: Sequence[str], batch_rows: int = BATCH_ROWS
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        """Row batches of ``columns``: ``(first row position, frame indexed 0..len-1)``.

        A batch has ``batch_rows`` rows (the last one fewer): Arrow's batches stop at row
        group ends, so small row groups are gathered into one batch, which keeps the
        per-batch work (every fold's transform) from being paid per small group.
        """
        offset = 0
        it = self._call(
            self._file.iter_batches,
            batch_size=batch_rows,
            columns=list(columns),
            use_pandas_metadata=True,
        )
        pending: list[pa.RecordBatch] = []
        n_pending = 0
        while True:
            batch = self._call(next, it, None)
            if batch is not None:
                pending.append(batch)
                n_pending += batch.num_rows
                if n_pending < batch_rows:
                    continue
            if not pending:
                return
            table = pa.Table.from_batches(pending)
            pending, n_pending = [], 0
            if table.num_rows > batch_rows:  # keep batch boundaries at multiples of batch_rows
                pending, n_pending = (
                    table.slice(batch_rows).to_batches(),
                    table.num_rows - batch_rows,
                )
                table = table.slice(0, batch_rows)
            frame = table.to_pandas()
            frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
            yield offset, frame[list(columns)].reset_index(drop=True)
            offset += table.num_rows
            if batch is None and not pending:
                return


def frame_table(frame: pd.DataFrame, types: dict[str, pa.DataType] | None = None) -> pa.Table:
    """``frame`` as the Arrow table :class:`ChunkedParquetWriter` writes for a first chunk:
    pandas' conversion (NaN -> null, the pandas metadata, no index), with the type of each
    column in ``types`` set to the given one."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if not types:
        return table
    fields = [pa.field(f.name, types.get(f.name, f.type), f.nullable) for f in table.schema]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if table.schema.equals(schema) else table.cast(schema)


def arrays_table(columns: dict[str, np.ndarray], schema: pa.Schema) -> pa.Table:
    """Rows given as one array per column as an Arrow table of ``schema``, converted as
    pandas converts them (NaN -> null) but without a DataFrame or an extra copy."""
    arrays = [pa.array(columns[f.name], type=f.type, from_pandas=True) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


class ChunkedParquetWriter:
    """Write a table to Parquet in row chunks, with one schema for every chunk.

    The first non-empty chunk fixes the Arrow schema (and its pandas metadata); ``types``
    fixes the type of columns a chunk may not tell (a text column missing in every row of
    the first chunk would otherwise be typed ``null``). Later chunks are cast to it.

    Parameters
    ----------
    path : path-like
        Final file; written through :func:`survival_framework.io.atomic_path` when used in
        :func:`write_chunks`, so a killed job leaves no partial file under this name.
    types : dict, optional
        Column -> Arrow type.
    """

    def __init__(self, path: str | os.PathLike, types: dict[str, pa.DataType] | None = None):
        self.path = Path(path)
        self.types = dict(types or {})
        self._writer: pq.ParquetWriter | None = None
        self._empty: pd.DataFrame | None = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame`` (same columns in every call)."""
        if not len(frame):
            if self._empty is None:
                self._empty = frame
            return
        if self._writer is None:
            table = frame_table(frame, self.types)
            self._writer = pq.ParquetWriter(self.path, table.schema)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if not table.schema.equals(self._writer.schema, check_metadata=False):
                table = table.cast(self._writer.schema)
        self._writer.write_table(table, row_group_size=max(len(table), 1))

    def write_arrays(self, columns: dict[str, np.ndarray]) -> None:
        """Append rows given as one array per column (same columns in every call).

        After the first chunk (typed, with its pandas metadata, as :meth:`write` types a
        DataFrame) each array goes to Arrow as it is: no DataFrame, no extra copy.
        """
        if self._writer is None or not len(next(iter(columns.values()))):
            self.write(pd.DataFrame(columns))
            return
        self._writer.write_table(arrays_table(columns, self._writer.schema))

    def abort(self) -> None:
        """Release the file after a failure (its temporary is then deleted)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        """Finish the file; a table without rows is written as pandas would write it."""
        if self._writer is not None:
            self._writer.close()
        elif self._empty is not None:
            self._empty.to_parquet(self.path, index=False)
        else:
            raise ValueError(f"{self.path}: no chunk was written, not even an empty one")


@contextmanager
def write_chunks(
    paths: Sequence[str | os.PathLike], types: dict[str, pa.DataType] | None = None
) -> Iterator[list[ChunkedParquetWriter]]:
    """One :class:`ChunkedParquetWriter` per path, each file written atomically.

    On success every file is closed and moved into place; on an exception none is (each
    temporary is removed by :func:`survival_framework.io.atomic_path`).

    Parameters
    ----------
    paths : sequence of path-like
    types : dict, optional
        Column -> Arrow type, for every writer (:class:`ChunkedParquetWriter`).
    """
    with ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(p)) for p in paths]
        writers = [ChunkedParquetWriter(t, types) for t in tmps]
        try:
            yield writers
        except BaseException:
            for w in writers:
                w.abort()
            raise
        for w in writers:
            w.close()


def positions_in(rows: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Offsets (``row - start``) of the sorted positions ``rows`` that fall in [start, stop)."""
    lo, hi = np.searchsorted(rows, [start, stop])
    return rows[lo:hi] - start
