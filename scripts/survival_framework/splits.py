"""Stratified sampling and (repeated) stratified K-fold assignment on the event indicator.

Repeated cross-validation (``cv.n_repeats`` = R, ``cv.n_folds`` = K) numbers its R x K
resamples ``f = r * K + k`` (fold ``k`` of repeat ``r``): the resample id is the ``{fold}`` of
the workflow's paths (``results/cv/{model}/fold_{fold}/``) and the ``fold`` column of
``results/splits/folds.parquet``. Repeat 0 is :func:`assign_folds` with ``cv.seed`` itself, so
one repeat is exactly the plain K-fold; repeat ``r > 0`` is :func:`assign_folds` with
:func:`repeat_seed` ``(cv.seed, r)``, its fold ids offset by ``r * K``
(:func:`assign_repeated_folds`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "sample_positions",
    "stratified_sample",
    "assign_folds",
    "repeat_seed",
    "assign_repeated_folds",
]


def sample_positions(event: np.ndarray, n_rows: int, seed: int) -> np.ndarray | None:
    """Sorted positions of a sample of ``n_rows`` rows stratified on the event indicator.

    Only the event column is needed, so a table can be sampled before its rows are read:
    ``validate_data`` picks the positions, then converts and writes only those rows.

    Parameters
    ----------
    event : ndarray of shape (n_samples,)
        Event indicator (0/1) of every row.
    n_rows : int
        Rows to keep.
    seed : int
        Random seed.

    Returns
    -------
    ndarray of int64 or None
        Row positions in increasing order; None if ``n_rows >= len(event)`` (every row).
    """
    event = np.asarray(event)
    if n_rows >= len(event):
        return None
    # scikit-learn is loaded only to sample: validating a whole table does not import it
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(event)), train_size=n_rows, stratify=event, random_state=seed
    )
    return np.sort(keep)


def stratified_sample(df: pd.DataFrame, event_col: str, n_rows: int, seed: int) -> pd.DataFrame:
    """Return a sample of ``n_rows`` rows stratified on the event indicator.

    Parameters
    ----------
    df : pandas.DataFrame
        Validated table.
    event_col : str
        Event indicator column (0/1).
    n_rows : int
        Rows to keep; if ``n_rows >= len(df)`` the table is returned unchanged.
    seed : int
        Random seed.

    Returns
    -------
    pandas.DataFrame
        The sample, in the original row order (the rows of :func:`sample_positions`).
    """
    keep = sample_positions(df[event_col].to_numpy(), n_rows, seed)
    if keep is None:
        return df
    return df.iloc[keep].reset_index(drop=True)


def assign_folds(event: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Assign each row to one of ``n_folds`` test folds, stratified on the event indicator.

    Parameters
    ----------
    event : ndarray of shape (n_samples,)
        Event indicator (bool or 0/1).
    n_folds : int
        Number of folds (>= 2).
    seed : int
        Seed of the shuffle, so assignments are reproducible.

    Returns
    -------
    ndarray of shape (n_samples,), dtype int64
        Fold index in ``0 .. n_folds-1`` of each row.
    """
    event = np.asarray(event).astype(bool)
    folds = np.empty(event.shape[0], dtype=np.int64)
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test_idx) in enumerate(skf.split(np.zeros(event.shape[0]), event)):
        folds[test_idx] = k
    return folds


def repeat_seed(seed: int, repeat: int) -> int:
    """Seed of the fold assignment of cross-validation repeat ``repeat``.

    Repeat 0 uses ``seed`` itself (one repeat is exactly the plain K-fold of
    :func:`assign_folds`). Repeat ``r > 0`` uses the first 32-bit word of
    ``numpy.random.SeedSequence(seed, spawn_key=(r,))``, the ``r``-th child that
    ``SeedSequence(seed).spawn`` would give: stable across runs, hosts and numpy versions,
    and independent of the number of repeats (adding repeats leaves the earlier ones as
    they were).

    Parameters
    ----------
    seed : int
        ``cv.seed`` (>= 0).
    repeat : int
        The repeat ``r`` (>= 0).

    Returns
    -------
    int
        A seed in ``0 .. 2**32 - 1``.
    """
    if int(repeat) != repeat or repeat < 0:
        raise ValueError(f"repeat must be an integer >= 0, got {repeat!r}")
    if repeat == 0:
        return int(seed)
    seq = np.random.SeedSequence(int(seed), spawn_key=(int(repeat),))
    return int(seq.generate_state(1)[0])


def assign_repeated_folds(event: np.ndarray, n_folds: int, n_repeats: int, seed: int) -> np.ndarray:
    """Test resample of every row in each of ``n_repeats`` stratified K-fold assignments.

    Row ``r`` is :func:`assign_folds` ``(event, n_folds, repeat_seed(seed, r)) + r * n_folds``:
    repeat ``r`` holds the resample ids ``r * K .. r * K + K - 1``, a new stratified
    partition of the rows for every repeat. Row 0 equals ``assign_folds(event, n_folds,
    seed)``. Both ETL engines get their folds from here (through
    :func:`survival_framework.etl.folds_and_grid`).

    Parameters
    ----------
    event : ndarray of shape (n_samples,)
        Event indicator (bool or 0/1).
    n_folds : int
        Folds per repeat ``K`` (>= 2).
    n_repeats : int
        Repeats ``R`` (>= 1).
    seed : int
        ``cv.seed``.

    Returns
    -------
    ndarray of shape (n_repeats, n_samples), dtype int64
        ``folds[r, i]``: the resample in whose test set row ``i`` is in repeat ``r``. The
        training rows of resample ``f`` are the rows with ``folds[f // K] != f``.
    """
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
    event = np.asarray(event)
    folds = np.empty((int(n_repeats), event.shape[0]), dtype=np.int64)
    for r in range(int(n_repeats)):
        folds[r] = assign_folds(event, n_folds, repeat_seed(seed, r)) + r * n_folds
    return folds
