"""Reading user tables and writing result files atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .contract import DATA_SUFFIXES, PARQUET_SUFFIXES
from .errors import InputValidationError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# pandas and pyarrow are imported where they are used: a fit job reads JSON and writes Arrow
# tables through this module without loading pandas

__all__ = [
    "check_input_file",
    "read_table",
    "read_json",
    "atomic_path",
    "write_json",
    "write_parquet",
    "write_arrow",
    "write_csv",
]


def check_input_file(path: str | os.PathLike, suffixes: Sequence[str]) -> Path:
    """Return ``path`` as a Path if it exists and has one of ``suffixes``.

    Raises
    ------
    InputValidationError
        Naming the file: unsupported extension, or no such file.
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InputValidationError(
            str(path),
            f"unsupported file extension {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(suffixes)}",
        )
    if not path.is_file():
        raise InputValidationError(str(path), "file does not exist")
    return path


def read_table(path: str | os.PathLike, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or pickle table.

    Parameters
    ----------
    path : path-like
        Input file; the format is chosen from the suffix.
    columns : sequence of str, optional
        Columns to read (Parquet reads only these from disk).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputValidationError
        If the file is missing, has an unsupported suffix, cannot be parsed or is empty.
    """
    import pandas as pd

    path = check_input_file(path, DATA_SUFFIXES)
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise InputValidationError(str(path), "file is empty (0 bytes)")
    try:
        if suffix == ".csv":
            _check_unique_names(path, _csv_header(path))
            df = pd.read_csv(path, usecols=list(columns) if columns is not None else None)
        elif suffix in PARQUET_SUFFIXES:
            _check_unique_names(path, _parquet_names(path))
            df = pd.read_parquet(path, columns=list(columns) if columns is not None else None)
        else:
            df = pd.read_pickle(path)
            if columns is not None:
                df = df[list(columns)]
    except InputValidationError:
        raise
    except Exception as exc:  # parse errors of three libraries: report them uniformly
        raise InputValidationError(
            str(path), f"cannot be read as {suffix[1:]}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(df, pd.DataFrame):
        raise InputValidationError(
            str(path), f"pickle holds a {type(df).__name__}, not a pandas DataFrame"
        )
    return df


def _csv_header(path: Path) -> list[str]:
    """Column names as written in a CSV header (``pandas.read_csv`` renames duplicates 'x.1')."""
    import pandas as pd

    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    return header.iloc[0].tolist() if len(header) else []


def _parquet_names(path: Path) -> list[str]:
    """Column names of a Parquet file (pyarrow cannot select among duplicated names)."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _check_unique_names(path: Path, names: list[str]) -> None:
    """Reject duplicated column names with one clear message."""
    counts = Counter(names)
    dup = [n for n in names if counts[n] > 1]
    if dup:
        raise InputValidationError(
            str(path), f"duplicated column name (appears {counts[dup[0]]} times)", dup[0]
        )


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it into place on success.

    A killed job therefore never leaves a partial file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Temporaries of this target left by a killed (SIGKILL) earlier attempt: only one job
    # writes a given output at a time, so they are stale.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON, atomically (NaN is written as ``NaN``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a DataFrame as Parquet (no index), atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_arrow(table: pa.Table, path: str | os.PathLike) -> None:
    """Write an Arrow table as Parquet, atomically: the same file, byte for byte, as
    :func:`write_parquet` of ``table.to_pandas()``.

    The bytes are equal because the table carries the schema metadata pandas would attach
    (:func:`pandas_schema_metadata`) and is written with pandas' Parquet options. A column
    that pandas would not round-trip unchanged (NaN, which pandas writes as null; nulls in
    integer or boolean columns; large strings, dictionaries, dates, ...) sends the table
    through pandas instead.
    """
    import pyarrow.parquet as pq

    metadata = pandas_schema_metadata(table)
    if metadata is None:
        write_parquet(table.to_pandas(), path)
        return
    table = table.replace_schema_metadata({b"pandas": metadata})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="snappy")


# Arrow type -> pandas' (pandas_type, numpy_type) in pandas metadata, for the types that
# ``Table.to_pandas`` + ``Table.from_pandas`` return unchanged (``None``: object strings)
_PANDAS_TYPES = {
    **{f"{k}{b}": (f"{k}{b}", f"{k}{b}") for k in ("int", "uint") for b in (8, 16, 32, 64)},
    "double": ("float64", "float64"),
    "float": ("float32", "float32"),
    "bool": ("bool", "bool"),
    "string": ("unicode", "object"),
}


def pandas_schema_metadata(table: pa.Table) -> bytes | None:
    """The ``b"pandas"`` schema metadata ``pyarrow.Table.from_pandas(table.to_pandas(),
    preserve_index=False)`` attaches, computed without pandas; ``None`` where a column would
    not survive that round trip unchanged (then only pandas itself can say)."""
    from importlib import metadata as _metadata

    import numpy as np
    import pyarrow as pa

    from .arrow import to_numpy

    if len(set(table.column_names)) != table.num_columns:
        return None  # duplicated names: pandas decides
    columns = []
    for f in table.schema:
        kind = _PANDAS_TYPES.get(str(f.type))
        nulls = table.column(f.name).null_count
        if pa.types.is_string(f.type):
            changes = nulls == table.num_rows  # no string at all: pandas infers type null
        elif pa.types.is_floating(f.type):  # pandas writes NaN as null
            changes = nulls > 0 or bool(np.isnan(to_numpy(table.column(f.name))).any())
        else:
            changes = nulls > 0  # integers become floats, booleans objects
        if kind is None or changes:
            return None
        columns.append(
            {
                "name": f.name,
                "field_name": f.name,
                "pandas_type": kind[0],
                "numpy_type": kind[1],
                "metadata": None,
            }
        )
    record = {
        "index_columns": [],
        "column_indexes": [],
        "columns": columns,
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": _metadata.version("pandas"),
    }
    return json.dumps(record).encode("utf8")


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a DataFrame as CSV (no index, full float precision), atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.17g")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.bool_):
        return bool(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
