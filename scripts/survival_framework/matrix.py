"""Reading one fold's table straight into numpy arrays: one feature matrix, no DataFrame.

``read_table`` + ``DataFrame.to_numpy`` hold every feature value three times at their peak
(the Arrow buffers, the pandas blocks and the float matrix). :func:`read_fold` decodes one
Parquet column at a time and copies it into a preallocated float64 matrix, so the features
exist once (plus one column's Arrow buffer at a time).

The matrix is in Fortran (column-major) order on purpose:

* filling it column by column writes contiguous memory (one ``memcpy``-like copy per column);
* the Cox solver (:mod:`.cox`) and scikit-survival's coordinate descent (Coxnet) work on
  columns: the Cox solver sorts the rows in place column by column with one n-length
  temporary, and ``CoxnetSurvivalAnalysis`` needs Fortran order (it would copy otherwise);
* a row batch ``X[a:b]`` is still a cheap strided view for BLAS and for the tree models.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .arrow import to_numpy

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["FoldArrays", "read_fold", "read_resample"]


@dataclass
class FoldArrays:
    """One fold's rows as arrays.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_features) or None
        Feature matrix (float64, Fortran order); ``None`` once released
        (:func:`survival_framework.cv.fit_and_evaluate` with ``release_matrices=True``).
    time : ndarray of shape (n_rows,)
        Event or censoring time (float64).
    event : ndarray of shape (n_rows,)
        Event indicator (bool).
    keys : pyarrow.Table or None
        The requested key columns as they are in the file, for writing per-row outputs
        (:func:`survival_framework.io.write_arrow`; no pandas in a fit job).
    features : list of str
        Column names of ``X``.
    """

    X: np.ndarray | None
    time: np.ndarray
    event: np.ndarray
    keys: pa.Table | None
    features: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        features: Sequence[str],
        duration_col: str,
        event_col: str,
        key_columns: Sequence[str] = (),
        dtype: type = np.float64,
    ) -> FoldArrays:
        """The same arrays from a DataFrame already in memory (tests, benchmarks)."""
        import pyarrow as pa

        X = np.empty((len(df), len(features)), dtype=dtype, order="F")
        for j, col in enumerate(features):
            X[:, j] = df[col].to_numpy(dtype=np.float64, na_value=np.nan)
        return cls(
            X=X,
            time=df[duration_col].to_numpy(dtype=np.float64),
            event=df[event_col].to_numpy().astype(bool),
            keys=pa.Table.from_pandas(df[list(key_columns)], preserve_index=False),
            features=list(features),
        )


def read_fold(
    path: str | os.PathLike,
    features: Sequence[str],
    duration_col: str,
    event_col: str,
    key_columns: Sequence[str] = (),
    dtype: type = np.float64,
) -> FoldArrays:
    """Read a fold's Parquet file into a Fortran-ordered feature matrix and 1-D arrays.

    Parameters
    ----------
    path : path-like
        Parquet file written by the split stage.
    features : sequence of str
        Feature columns, in the order of the matrix columns.
    duration_col, event_col : str
        Time and event indicator columns.
    key_columns : sequence of str
        Further columns returned as they are in :attr:`FoldArrays.keys` (may include
        ``duration_col`` and ``event_col``).
    dtype : numpy dtype
        Dtype of the matrix: float64, or float32 for a model that casts to float32 itself
        (:func:`survival_framework.models.model_input_dtype`).

    Returns
    -------
    FoldArrays

    Notes
    -----
    Nulls become NaN (as ``DataFrame.to_numpy(dtype=float)`` makes them). Integer and
    boolean feature columns are cast to ``dtype`` exactly as numpy casts them.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    n = pf.metadata.num_rows
    features = list(features)
    X = np.empty((n, len(features)), dtype=dtype, order="F")
    for j, col in enumerate(features):
        # via float64 and numpy's cast, so a float32 matrix holds exactly the values that
        # ``float64_matrix.astype(np.float32)`` (what scikit-learn and XGBoost do) would
        X[:, j] = to_numpy(pf.read(columns=[col]).column(0))
    small = pf.read(columns=list(dict.fromkeys([duration_col, event_col, *key_columns])))
    time = to_numpy(small.column(duration_col))
    event = to_numpy(small.column(event_col)).astype(bool)
    keys = small.select(list(key_columns))
    del small
    # Arrow's allocator keeps freed column buffers for reuse; nothing else is read here
    pa.default_memory_pool().release_unused()
    return FoldArrays(X=X, time=time, event=event, keys=keys, features=features)


def read_resample(
    train_path: str | os.PathLike,
    test_path: str | os.PathLike,
    state: dict,
    schema: dict,
    model: str,
    params: dict,
    test_keys: Sequence[str] = (),
) -> tuple[FoldArrays, FoldArrays]:
    """One resample's training and test rows as ``model`` reads them.

    The features are the preprocessing state's output columns (none for a model that uses
    times and events only), in the dtype the model computes in
    (:func:`survival_framework.models.model_input_dtype`); the training keys are ``_row``,
    the test keys ``test_keys`` (``_row`` if empty).

    Parameters
    ----------
    train_path, test_path : path-like
        The resample's ``train.parquet`` and ``test.parquet``.
    state : dict
        Its ``preprocessor.json``.
    schema : dict
        ``results/data/schema.json`` (the duration and event columns).
    model : str
    params : dict
        The model's parameters.
    test_keys : sequence of str
    """
    from .contract import ROW_COL
    from .models import model_input_dtype, model_uses_features
    from .preprocess import output_columns

    dur, ev = schema["duration_col"], schema["event_col"]
    dtype = model_input_dtype(model, dict(params))
    features = output_columns(state) if model_uses_features(model, dict(params)) else []
    train = read_fold(train_path, features, dur, ev, [ROW_COL], dtype=dtype)
    test = read_fold(test_path, features, dur, ev, list(test_keys) or [ROW_COL], dtype=dtype)
    return train, test
