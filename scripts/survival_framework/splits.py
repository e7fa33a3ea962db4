"""Stratified sampling and stratified K-fold assignment on the event indicator."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

__all__ = ["sample_positions", "stratified_sample", "assign_folds"]


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
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test_idx) in enumerate(skf.split(np.zeros(event.shape[0]), event)):
        folds[test_idx] = k
    return folds
