"""numpy <-> Arrow for fixed-width numeric columns, without pandas.

``pyarrow.array(ndarray)``, ``Array.to_numpy`` and ``pyarrow.compute.fill_null`` import
pandas the first time they run (pyarrow checks whether its argument is a pandas object),
which costs a fit job on a small table a third of a second. These two functions work on the
Arrow buffers directly (``Array.from_buffers``, ``Array.buffers``): the same values as
``ChunkedArray.to_numpy`` / ``pyarrow.array``, tested equal for every numeric type, nulls,
slices and several chunks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["to_numpy", "from_numpy"]


def to_numpy(column: pa.ChunkedArray | pa.Array, dtype: type = np.float64) -> np.ndarray:
    """A numeric or boolean Arrow column as a new 1-D numpy array of ``dtype``.

    Parameters
    ----------
    column : pyarrow.ChunkedArray or pyarrow.Array
        Integer, floating-point or boolean values.
    dtype : numpy dtype
        Result dtype; the column is cast to it by Arrow first (``pyarrow.compute.cast``:
        safe casts only, as ``Array.cast``).

    Returns
    -------
    ndarray of shape (len(column),)
        Nulls become NaN for a floating-point ``dtype``.

    Raises
    ------
    ValueError
        If the column has nulls and ``dtype`` is not floating-point.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = np.dtype(dtype)
    target = pa.from_numpy_dtype(dtype)
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column], type=column.type)
    if column.type != target:
        column = pc.cast(column, target)
    if column.null_count and dtype.kind != "f":
        raise ValueError(f"{column.null_count} null(s) cannot be held in a {dtype} array")
    out = np.empty(len(column), dtype=dtype)
    pos = 0
    for chunk in column.chunks:
        n, off = len(chunk), chunk.offset
        if n == 0:
            continue
        validity, data = chunk.buffers()[:2]
        if dtype == np.bool_:
            bits = np.frombuffer(data, dtype=np.uint8)
            values = np.unpackbits(bits, bitorder="little")[off : off + n].astype(bool)
        else:
            values = np.frombuffer(data, dtype=dtype, count=n, offset=off * dtype.itemsize)
        part = out[pos : pos + n]
        part[:] = values
        if chunk.null_count:
            mask = np.frombuffer(validity, dtype=np.uint8)
            valid = np.unpackbits(mask, bitorder="little")[off : off + n].astype(bool)
            part[~valid] = np.nan
        pos += n
    return out


def from_numpy(values: np.ndarray) -> pa.Array:
    """A 1-D numeric numpy array (no NaN handling: NaN stays a value) as an Arrow array,
    as ``pyarrow.array(values)`` makes it."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if values.ndim != 1 or values.dtype.kind not in "iuf":
        raise ValueError(f"expected a 1-D numeric array, got {values.ndim}-D {values.dtype}")
    typ = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(typ, len(values), [None, pa.py_buffer(values)])
