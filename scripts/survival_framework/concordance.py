"""Concordance indices in O(n log n): scikit-survival's estimators, vectorised.

``sksurv.metrics.concordance_index_censored`` and ``concordance_index_ipcw`` build a boolean
mask over all test rows for every event (O(n^2) work in a Python loop). The counts they
need are, for each event ``i``, "how many rows comparable with ``i`` have a lower risk, and
how many a tied one". With the rows sorted by time, the rows comparable with ``i`` are a
suffix of the order (every later time, plus the censored rows at ``i``'s own time), so each
count is a range query "how many values below a threshold among positions >= start". A
wavelet matrix over the risk ranks answers all of them together in ``ceil(log2 n)`` numpy
passes of O(n) each (Claude, Navarro and Ordonez 2015, "The wavelet matrix"), with O(n)
memory.

The definitions are exactly scikit-survival's: comparable pairs (event i, any j with
t_j > t_i, or censored j with t_j == t_i), risk ties within ``tied_tol`` counted as 1/2,
IPCW weights ``1 / G(t_i)^2`` from the training data's Kaplan-Meier censoring distribution,
truncated at ``tau``. Both functions return scikit-survival's tuple ``(cindex, concordant,
discordant, tied_risk, tied_time)`` and reject what it rejects.
"""

from __future__ import annotations

import numpy as np

from .kaplan_meier import CensoringDistribution, _search_left, censoring_distribution
from .outcome import check_array, check_consistent_length, check_estimate_1d, check_y_survival

__all__ = [
    "NoComparablePairError",
    "count_below_in_suffix",
    "count_below_in_range",
    "weighted_concordance",
    "concordance_index_censored",
    "concordance_index_ipcw",
    "harrell_and_uno",
]


class NoComparablePairError(ValueError):
    """No pair of rows is comparable (scikit-survival's ``NoComparablePairException``)."""


def count_below_in_suffix(
    values: np.ndarray, start: np.ndarray, threshold: np.ndarray
) -> np.ndarray:
    """For each query ``q``: ``#{j >= start[q] : values[j] < threshold[q]}``.

    Parameters
    ----------
    values : ndarray of int, shape (n,)
        Non-negative integers below ``n`` (e.g. ranks), ``n < 2**31``.
    start : ndarray of int, shape (n_queries,)
        First position of each query's range (the range ends at ``n``).
    threshold : ndarray of int, shape (n_queries,)
        Values strictly below it are counted; at most ``n``.

    Returns
    -------
    ndarray of int64, shape (n_queries,)
    """
    n = np.asarray(values).shape[0]
    start = np.asarray(start)
    return count_below_in_range(values, start, np.full(start.shape, n), threshold, n)


def count_below_in_range(
    values: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    threshold: np.ndarray,
    n_values: int | None = None,
) -> np.ndarray:
    """For each query ``q``: ``#{lo[q] <= j < hi[q] : values[j] < threshold[q]}``.

    A wavelet matrix over ``values``: one O(n) numpy pass per bit of ``n_values``, all
    queries together (so a small alphabet takes fewer passes).

    Parameters
    ----------
    values : ndarray of int, shape (n,)
        Integers in ``[0, n_values)``, ``n < 2**31``.
    lo, hi : ndarray of int, shape (n_queries,)
        Each query's positions ``lo <= j < hi`` (an empty range counts 0).
    threshold : ndarray of int, shape (n_queries,)
        Values strictly below it are counted.
    n_values : int, optional
        Bound on the values (``values.max() + 1`` by default).

    Returns
    -------
    ndarray of int64, shape (n_queries,)
    """
    values = np.asarray(values)
    n = values.shape[0]
    lo = np.clip(np.asarray(lo), 0, n)
    hi = np.clip(np.asarray(hi), 0, n)
    threshold = np.asarray(threshold)
    if n_values is None:
        n_values = int(values.max()) + 1 if n else 1
    # an empty range or a threshold of 0 counts nothing, one above every value the whole
    # range, and over the whole sequence a histogram answers: those need no pass (every
    # query of a constant score is one of them)
    empty = (hi <= lo) | (threshold <= 0)
    everything = ~empty & (threshold >= n_values)
    whole = ~empty & ~everything & (lo == 0) & (hi == n)
    trivial = empty | everything | whole
    if trivial.any():
        out = np.zeros(lo.shape[0], dtype=np.int64)
        out[everything] = (hi - lo)[everything]
        if whole.any():
            below = np.r_[0, np.cumsum(np.bincount(values, minlength=n_values))]
            out[whole] = below[threshold[whole]]
        rest = np.flatnonzero(~trivial)
        if rest.size:
            out[rest] = _count_below(values, lo[rest], hi[rest], threshold[rest], n_values)
        return out
    return _count_below(values, lo, hi, threshold, n_values)


def _count_below(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, threshold: np.ndarray, n_values: int
) -> np.ndarray:
    """:func:`count_below_in_range` of non-trivial queries (the wavelet matrix passes)."""
    # int32 throughout: half the memory traffic of int64 in these memory-bound passes
    cur = np.asarray(values, dtype=np.int32)
    n = cur.shape[0]
    threshold = threshold.astype(np.int32)
    lo = lo.astype(np.int32)
    hi = hi.astype(np.int32)
    count = np.zeros(lo.shape[0], dtype=np.int64)
    zeros_before = np.zeros(n + 1, dtype=np.int32)
    for level in range(max(1, (int(n_values) - 1).bit_length()) - 1, -1, -1):
        is_zero = ((cur >> level) & 1) == 0
        np.cumsum(is_zero, out=zeros_before[1:])
        n_zeros = zeros_before[n]
        z_lo, z_hi = zeros_before[lo], zeros_before[hi]
        one = ((threshold >> level) & 1).astype(bool)
        # the threshold has a 1 here: values with a 0 (and the same higher bits) are below it
        count += (z_hi - z_lo) * one
        # follow the threshold's bit: zeros keep their rank among zeros, ones go after them
        lo = np.where(one, n_zeros + lo - z_lo, z_lo)
        hi = np.where(one, n_zeros + hi - z_hi, z_hi)
        # next level: a stable partition, zeros first (the wavelet matrix layout);
        # np.compress is ~5x faster than boolean indexing here
        cur = np.concatenate([np.compress(is_zero, cur), np.compress(~is_zero, cur)])
    return count


def weighted_concordance(
    event: np.ndarray,
    time: np.ndarray,
    estimate: np.ndarray,
    weights: np.ndarray,
    tied_tol: float = 1e-8,
) -> tuple[float, int, int, int, int]:
    """Weighted concordance index, as scikit-survival's ``_estimate_concordance_index``.

    Parameters
    ----------
    event : ndarray of bool, shape (n,)
    time : ndarray, shape (n,)
    estimate : ndarray, shape (n,)
        Risk scores (higher = earlier event), finite.
    weights : ndarray, shape (n,) or (k, n)
        Weight of each row when it is the earlier (event) member of a pair; ``k`` weightings
        share one counting pass (Harrell's and Uno's C differ only in their weights).
    tied_tol : float
        Risk scores closer than this are ties (counted 1/2).

    Returns
    -------
    (cindex, concordant, discordant, tied_risk, tied_time)
        ``cindex`` a float, the pair counts ints, as scikit-survival's; a list of ``k`` such
        tuples for 2-D ``weights``.

    Raises
    ------
    NoComparablePairError
        If no pair is comparable.
    """
    return _weighted_concordance(event, time, estimate, weights, tied_tol)[0]


def _weighted_concordance(
    event: np.ndarray,
    time: np.ndarray,
    estimate: np.ndarray,
    weights: np.ndarray,
    tied_tol: float = 1e-8,
) -> tuple[
    tuple[float, int, int, int, int] | list[tuple[float, int, int, int, int]],
    np.ndarray,
    np.ndarray,
]:
    """:func:`weighted_concordance`, the rows ordered by ascending ``estimate`` and the rows
    ordered by ascending time (events first within a time)."""
    event = np.asarray(event).astype(bool)
    time = np.asarray(time, dtype=float)
    est = np.asarray(estimate, dtype=float)
    weights = np.asarray(weights, dtype=float)
    n = len(time)
    # time ascending; within equal times events first, so the rows comparable with an event
    # are exactly the positions from the end of its time's events onwards
    order, group, new_time, e = _time_order(event, time)
    s = est[order]
    group_start = np.flatnonzero(new_time)
    group_size = np.diff(np.r_[group_start, n])
    events_per_group = np.bincount(group, weights=e, minlength=len(group_start)).astype(np.int64)
    first_comparable = (group_start + events_per_group)[group]
    # scikit-survival skips a final group made of the last row alone (it has no partner)
    in_loop = group_start < n - 1
    query = np.flatnonzero(e & in_loop[group])
    if query.size == 0:
        raise NoComparablePairError(
            "Data has no comparable pairs, cannot estimate concordance index."
        )
    censored = group_size - events_per_group
    tied_time = int(np.sum((events_per_group * censored)[in_loop]))
    start = first_comparable[query]
    # ranks of the risk scores: "s_j < x" <=> "rank_j < number of scores below x"
    by_score = np.argsort(s)  # any order of equal scores gives the same counts
    rank = np.empty(n, dtype=np.int64)
    rank[by_score] = np.arange(n)
    below, up_to = _tie_bounds(s[by_score], tied_tol)
    below, up_to = below[rank[query]], up_to[rank[query]]
    # only a row with another score within tied_tol anywhere can have tied partners
    maybe_tied = np.flatnonzero(up_to - below > 1)
    counts = _count_comparable_below(
        rank, by_score, group_start + events_per_group, start, below, up_to, maybe_tied
    )
    n_less = counts[: query.size]  # comparable rows with est < est_i - tol (concordant)
    n_tied = np.zeros(query.size, dtype=np.int64)  # comparable rows with |est - est_i| <= tol
    n_tied[maybe_tied] = counts[query.size :] - n_less[maybe_tied]
    n_comparable = n - start
    concordant = int(n_less.sum())
    tied_risk = int(n_tied.sum())
    discordant = int(n_comparable.sum()) - concordant - tied_risk
    results = []
    query_row = order[query]  # only the event rows' weights are used
    for wq in (np.take(row, query_row) for row in np.atleast_2d(weights)):
        numerator = np.sum(wq * n_less) + 0.5 * np.sum(wq * n_tied)
        denominator = np.sum(wq * n_comparable)
        cindex = float(numerator / denominator) if denominator > 0 else float("nan")
        results.append((cindex, concordant, discordant, tied_risk, tied_time))
    # the rows by ascending risk and by ascending time, by-products other metrics can
    # reuse (no second sort)
    return (results[0] if weights.ndim == 1 else results), order[by_score], order


def _time_order(
    event: np.ndarray, time: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows by ascending time, events first within a time, each key's rows by index.

    Returns
    -------
    order : ndarray of intp, shape (n,)
        The permutation.
    group : ndarray of intp, shape (n,)
        The tie group (index of the distinct time, ascending) at each sorted position.
    new_time : ndarray of bool, shape (n,)
        Whether a sorted position starts a tie group.
    event_sorted : ndarray of bool, shape (n,)
        ``event[order]``.

    One sort of packed 64-bit keys ``(2 * group + censored) * 2**b + row`` (numpy sorts
    plain integers several times faster than it argsorts), the groups from a sort of the
    values: about half the time of an argsort of the times and a stable argsort of the
    keys.
    """
    n = time.shape[0]
    time = time + 0.0  # makes -0.0 equal to 0.0
    t = np.sort(time)
    new_time = np.r_[True, t[1:] != t[:-1]]
    distinct = t[new_time]
    # n < 2**31 rows (the counting passes' int32): 1 + 31 bits for the group and the event
    # flag, 31 for the row
    bits = max(1, (n - 1).bit_length())
    group_of_row = _search_left(distinct, time).astype(np.uint64)
    key = (group_of_row << np.uint64(1)) | (~event).astype(np.uint64)
    key <<= np.uint64(bits)
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    order = (key & np.uint64((1 << bits) - 1)).astype(np.intp)
    key >>= np.uint64(bits)
    event_sorted = (key & np.uint64(1)) == 0
    key >>= np.uint64(1)
    return order, key.astype(np.intp), new_time, event_sorted


def _tie_bounds(sorted_s: np.ndarray, tied_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """For each ascending score ``s_k``: ``#{j : s_j < s_k - tol}`` and ``#{j : s_j <= s_k +
    tol}`` (``np.searchsorted`` left and right of ``s_k -/+ tol``).

    Only the scores with a neighbour within ``tol`` are searched: for the others the
    answers are ``k`` and ``k + 1`` (``s_k - tol <= s_k`` in floating point, so
    ``s_{k-1} < s_k - tol`` puts exactly the ``k`` scores before it below).
    """
    n = sorted_s.shape[0]
    lower = sorted_s - tied_tol
    upper = sorted_s + tied_tol
    below = np.arange(n)
    up_to = np.arange(1, n + 1)
    near = np.flatnonzero(sorted_s[:-1] >= lower[1:]) + 1
    below[near] = np.searchsorted(sorted_s, lower[near], side="left")
    near = np.flatnonzero(sorted_s[1:] <= upper[:-1])
    up_to[near] = np.searchsorted(sorted_s, upper[near], side="right")
    return below, up_to


def _count_comparable_below(
    rank: np.ndarray,
    by_score: np.ndarray,
    first_comparable: np.ndarray,
    start: np.ndarray,
    below: np.ndarray,
    up_to: np.ndarray,
    maybe_tied: np.ndarray,
) -> np.ndarray:
    """``#{j >= start_q : rank_j < threshold_q}`` for the thresholds ``below`` (every
    query) then ``up_to`` (the queries ``maybe_tied``), positions in time order.

    Every ``start`` is one of the tie groups' ``first_comparable`` positions, so with few
    distinct times (e.g. times in days) the question turns around: in score order, each
    row's key is the number of those positions at or before its own, and "position >=
    start" is "key >= K"; the wavelet matrix then spans ``log2(n_groups)`` bits instead of
    ``log2(n)``. Both ways count the same pairs; the one with fewer passes is used.
    """
    n = rank.shape[0]
    n_groups = first_comparable.shape[0]
    thresholds = np.r_[below, up_to[maybe_tied]]
    starts = np.r_[start, start[maybe_tied]]
    if n_groups.bit_length() >= (n - 1).bit_length():
        return count_below_in_suffix(rank, starts, thresholds)
    # key of position i: #{groups g : first_comparable[g] <= i}; i >= first_comparable[g]
    # <=> key_i >= key at first_comparable[g] (first_comparable is non-decreasing)
    at_or_before = np.cumsum(np.bincount(first_comparable, minlength=n + 1))
    key_in_score_order = at_or_before[:n][by_score]
    # among the rows with rank < threshold (a prefix of the score order, threshold of
    # them), those not comparable have key < K
    not_comparable = count_below_in_range(
        key_in_score_order,
        np.zeros_like(thresholds),
        thresholds,
        at_or_before[starts],
        n_groups + 1,
    )
    return thresholds - not_comparable


def concordance_index_censored(
    event_indicator: np.ndarray,
    event_time: np.ndarray,
    estimate: np.ndarray,
    tied_tol: float = 1e-8,
) -> tuple[float, int, int, int, int]:
    """Harrell's concordance index (``sksurv.metrics.concordance_index_censored``).

    Returns
    -------
    cindex : float
    concordant, discordant, tied_risk, tied_time : int

    Raises
    ------
    ValueError
        On inputs scikit-survival rejects (lengths, NaN/inf, non-boolean events, fewer
        than two rows, no event); :class:`NoComparablePairError` without comparable pairs.
    """
    check_consistent_length(event_indicator, event_time, estimate)
    event_indicator = check_array(event_indicator, input_name="event_indicator")
    event_time = check_array(event_time, input_name="event_time")
    estimate = check_estimate_1d(estimate, event_time)
    if not np.issubdtype(event_indicator.dtype, np.bool_):
        raise ValueError(
            "only boolean arrays are supported as class labels for survival analysis, "
            f"got {event_indicator.dtype}"
        )
    if len(event_time) < 2:
        raise ValueError("Need a minimum of two samples")
    if not event_indicator.any():
        raise ValueError("All samples are censored")
    return weighted_concordance(
        event_indicator, event_time, estimate, np.ones(len(estimate)), tied_tol
    )


def concordance_index_ipcw(
    survival_train: np.ndarray | CensoringDistribution,
    survival_test: np.ndarray,
    estimate: np.ndarray,
    tau: float | None = None,
    tied_tol: float = 1e-8,
) -> tuple[float, int, int, int, int]:
    """Uno's IPCW concordance index (``sksurv.metrics.concordance_index_ipcw``).

    Returns
    -------
    cindex : float
    concordant, discordant, tied_risk, tied_time : int

    Raises
    ------
    ValueError
        On inputs scikit-survival rejects, or if the censoring distribution is zero at a
        test event time (before ``tau``) or a test event lies beyond the training times.
    """
    test_event, test_time = check_y_survival(survival_test)
    estimate = check_estimate_1d(estimate, test_time)
    weights = _uno_weights(survival_train, survival_test, test_time, tau)
    return weighted_concordance(test_event, test_time, estimate, weights, tied_tol)


def _uno_weights(
    survival_train: np.ndarray | CensoringDistribution,
    survival_test: np.ndarray,
    test_time: np.ndarray,
    tau: float | None,
) -> np.ndarray:
    """Uno's pair weights ``1 / G(t_i)^2`` of the test events before ``tau`` (0 otherwise)."""
    mask = test_time < tau if tau is not None else np.ones(len(test_time), dtype=bool)
    ipcw = np.zeros(len(test_time))
    ipcw[mask] = censoring_distribution(survival_train).predict_ipcw(survival_test[mask])
    return np.square(ipcw)


def harrell_and_uno(
    survival_train: np.ndarray | CensoringDistribution,
    survival_test: np.ndarray,
    estimate: np.ndarray,
    tau: float | None = None,
    tied_tol: float = 1e-8,
) -> tuple[tuple[float, int, int, int, int], tuple[float, int, int, int, int]]:
    """Harrell's and Uno's C from one counting pass: the same pairs, other weights.

    Equal to ``(concordance_index_censored(event, time, estimate),
    concordance_index_ipcw(survival_train, survival_test, estimate, tau))`` at about half
    their cost (the sorts and range counts are shared).

    Raises
    ------
    ValueError
        As :func:`concordance_index_censored` and :func:`concordance_index_ipcw`.
    """
    harrell, uno, _, _ = _harrell_and_uno(survival_train, survival_test, estimate, tau, tied_tol)
    return harrell, uno


def _harrell_and_uno(
    survival_train: np.ndarray | CensoringDistribution,
    survival_test: np.ndarray,
    estimate: np.ndarray,
    tau: float | None = None,
    tied_tol: float = 1e-8,
) -> tuple[
    tuple[float, int, int, int, int], tuple[float, int, int, int, int], np.ndarray, np.ndarray
]:
    """:func:`harrell_and_uno`, the test rows ordered by ascending ``estimate`` and the test
    rows ordered by ascending time (events first within a time)."""
    test_event, test_time = check_y_survival(survival_test)
    estimate = check_estimate_1d(estimate, test_time)
    if len(test_time) < 2:
        raise ValueError("Need a minimum of two samples")
    uno = _uno_weights(survival_train, survival_test, test_time, tau)
    weights = np.vstack([np.ones(len(estimate)), uno])
    (harrell, uno), by_risk, by_time = _weighted_concordance(
        test_event, test_time, estimate, weights, tied_tol
    )
    return harrell, uno, by_risk, by_time
