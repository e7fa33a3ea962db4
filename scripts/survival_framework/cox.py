"""Vectorised Cox partial likelihood: Newton-Raphson fit and Breslow baseline hazard.

scikit-survival's ``CoxPHSurvivalAnalysis`` and ``BreslowEstimator`` walk the samples in a
Python loop (one ``p x p`` outer product per row and Newton iteration), which costs ~20-40 s
per fit at 230,000 training rows. The same quantities are cumulative sums over the samples
sorted by time, so here they are computed with ``numpy.cumsum`` and matrix products
(~0.1 s). The objective, step halving and stopping rule are scikit-survival's (Breslow ties),
so the coefficients agree to the solver tolerance (tested in ``tests/test_performance.py``).

Memory: the gradient and Hessian are accumulated over row chunks (:data:`CHUNK_ROWS` rows)
in decreasing-time order, carrying the risk-set sums across chunk boundaries, so no
``n x p`` temporary exists; a Fortran-ordered ``X`` is sorted in place (one column at a
time, one n-length temporary) and restored afterwards, so no sorted copy of ``X`` exists
either. The rest is a few n-length vectors.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "CHUNK_ROWS",
    "TimeOrder",
    "breslow_cumulative_hazard",
    "fit_cox_breslow",
    "fit_cox_presorted",
    "sorted_rows_in_place",
]

CHUNK_ROWS = 65_536
"""Rows per chunk of the gradient/Hessian accumulation (a few ``CHUNK_ROWS x p`` arrays)."""

COLUMNWISE_MAX_FEATURES = 4
"""Most columns :func:`fit_cox_presorted` handles a column at a time (n x p temporaries)."""


class sorted_rows_in_place:  # noqa: N801 (used as a context manager, like open())
    """Context manager: the rows of ``X`` permuted in place by ``order``, restored on exit.

    ``X`` must be a writeable Fortran-ordered array; each column is permuted through one
    n-length temporary, so no second copy of ``X`` is made. On exit (also on an exception)
    the rows are put back exactly (a permutation loses nothing).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), Fortran order
    order : ndarray of shape (n_samples,)
        Permutation: row ``i`` of the sorted matrix is row ``order[i]`` of ``X``.
    """

    def __init__(self, X: np.ndarray, order: np.ndarray):
        if not (X.flags.f_contiguous and X.flags.writeable):
            raise ValueError("in-place row sorting needs a writeable Fortran-ordered array")
        self.X, self.order = X, order

    def __enter__(self) -> np.ndarray:
        tmp = np.empty(self.X.shape[0], dtype=self.X.dtype)
        for j in range(self.X.shape[1]):
            col = self.X[:, j]  # contiguous view
            np.take(col, self.order, out=tmp)
            col[:] = tmp
        return self.X

    def __exit__(self, *exc) -> None:
        tmp = np.empty(self.X.shape[0], dtype=self.X.dtype)
        for j in range(self.X.shape[1]):
            col = self.X[:, j]
            tmp[self.order] = col
            col[:] = tmp


class TimeOrder:
    """An outcome sorted by decreasing time, with its tie groups located.

    What every Cox fit on that outcome shares (several fits of other covariates on the
    same test rows, as the ICI's horizons, build it once).

    Parameters
    ----------
    event, time : ndarray of shape (n_samples,)
    order : ndarray of int, optional
        The rows by decreasing time, if the caller has it (any order within equal times,
        e.g. another sort's reversed); ``np.argsort(-time, kind="mergesort")`` by default.

    Attributes
    ----------
    order : ndarray of int
        Row ``i`` of the sorted outcome is row ``order[i]`` of the caller's.
    event, time : ndarray
        The outcome in that order.
    group_start, group_end, group_size : ndarray of int
        First and last sorted index and size of each tie group (equal times), in
        decreasing time.
    deaths : ndarray of float
        Events per tie group; ``has_death``, ``d`` and ``death_end`` the groups with one.
    """

    def __init__(self, event: np.ndarray, time: np.ndarray, order: np.ndarray | None = None):
        time = np.asarray(time, dtype=float)
        if order is None:
            order = np.argsort(-time, kind="mergesort")
        self.order = order
        self.event = np.asarray(event)[order].astype(bool)
        t = self.time = time[order]
        n = self.n = len(t)
        starts_new = np.r_[True, t[1:] != t[:-1]]
        group_start = np.flatnonzero(starts_new)
        # risk set of a group = every sample up to the group's last index (time >= t)
        self.group_start = group_start
        self.group_end = np.r_[group_start[1:] - 1, n - 1]
        self.group_size = np.diff(np.r_[group_start, n])
        group = np.repeat(np.arange(len(group_start)), self.group_size)
        self.deaths = np.bincount(group, weights=self.event, minlength=len(group_start))
        self.has_death = self.deaths > 0
        self.d = self.deaths[self.has_death]
        self.death_end = self.group_end[self.has_death]

    def cumulative_hazard_at(self, linear_predictor: np.ndarray, t0: float) -> float:
        """The Breslow cumulative baseline hazard at ``t0`` (:func:`breslow_cumulative_hazard`
        as a right-continuous step function, 0 before the first time).

        ``linear_predictor`` is in this object's (sorted) row order.
        """
        lp = np.asarray(linear_predictor, dtype=float)
        shift = float(lp.max())
        risk_set = np.cumsum(np.exp(lp - shift))[self.death_end]
        # the death groups at or before t0 are the last ones (decreasing time); summed
        # from the earliest time on, as breslow_cumulative_hazard's cumulative sum
        first = int(np.searchsorted(-self.time[self.death_end], -float(t0), side="left"))
        if first >= self.d.shape[0]:
            return 0.0
        terms = (self.d[first:] / risk_set[first:])[::-1]
        return float(np.cumsum(terms)[-1] * np.exp(-shift))


class _SortedCoxData:
    """Samples sorted by decreasing time, with tie groups (equal times) located.

    ``x`` is either already in sorted row order (``gather=False``: the caller sorted it in
    place) or in the caller's order with ``order`` applied per chunk (``gather=True``: one
    ``chunk x p`` gathered copy at a time, for arrays that cannot be sorted in place).
    ``outcome``, the :class:`TimeOrder` of ``event`` and ``time`` by ``order``, if the
    caller has it. ``columnwise`` (sorted rows of a few Fortran-ordered columns only):
    risk-set sums per tie group and the gradient and Hessian a column at a time
    (:meth:`_gradient_hessian_columnwise`), no chunk loop.
    """

    def __init__(
        self,
        x: np.ndarray,
        event: np.ndarray,
        time: np.ndarray,
        order: np.ndarray,
        gather: bool,
        chunk_rows: int = CHUNK_ROWS,
        outcome: TimeOrder | None = None,
        columnwise: bool = False,
    ):
        if columnwise and (gather or not x.flags.f_contiguous):
            raise ValueError("columnwise needs sorted rows of a Fortran-ordered array")
        self.columnwise = columnwise
        if outcome is None:
            outcome = TimeOrder(event, time, order)
        self.x, self.order, self.gather = x, outcome.order, gather
        self.chunk_rows = max(1, int(chunk_rows))
        self.event, self.n = outcome.event, outcome.n
        self.group_end, self.group_size = outcome.group_end, outcome.group_size
        self.deaths, self.has_death, self.d = outcome.deaths, outcome.has_death, outcome.d
        self.death_end = outcome.death_end
        self.group_start = outcome.group_start
        n = self.n
        # the death groups ending in each chunk: chunk k holds death groups
        # death_bounds[k]:death_bounds[k + 1] (a group belongs to the chunk of its last row)
        starts = np.arange(0, n, self.chunk_rows)
        self.chunk_starts = starts
        self.death_bounds = np.searchsorted(self.death_end, np.r_[starts, n], side="left")
        self.sum_x_events = self._rows_t_dot(self.event.astype(float))
        self._risk_sums_at: tuple[bytes, tuple[np.ndarray, np.ndarray, float]] | None = None

    def _gradient_hessian_columnwise(
        self, w: np.ndarray, alpha: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`gradient_hessian` a column at a time, for a few columns of sorted rows.

        ``S0`` and ``S1`` are running sums over the tie groups of per-group sums
        (``np.add.reduceat``, ~5x faster than a running sum over the rows when times
        repeat; the same sums up to rounding, ~1e-14 relative); ``X' diag(r c) X`` is one
        matrix product. Temporaries: an n-vector per column, ``n_death_groups x p``.
        """
        r, rc, s0d = self._risk_weights(w)
        d = self.d
        p = self.x.shape[1]
        z = np.empty((d.shape[0], p))
        for j in range(p):
            z[:, j] = np.cumsum(np.add.reduceat(r * self.x[:, j], self.group_start))[self.has_death]
        z /= s0d[:, None]
        h1 = self.x.T @ (self.x * rc[:, None])
        return self._gradient_and_hessian(w, alpha, d @ z, h1, (z * d[:, None]).T @ z)

    def _risk_weights(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``r = exp(x'w - shift)``, ``r_j c_j`` and ``S0`` at the death groups.

        ``sum_g d_g S2_g / S0_g = X' diag(r_j c_j) X`` with ``c_j`` the sum over the groups
        at or before time ``t_j`` (index >= j's group in decreasing order) of ``d_g / S0_g``.
        """
        r, s0, _ = self.risk_sums(w)
        s0d = s0[self.has_death]
        per_group = np.zeros(len(self.group_end))
        per_group[self.has_death] = self.d / s0d
        c = np.repeat(np.cumsum(per_group[::-1])[::-1], self.group_size)
        return r, np.multiply(r, c, out=c), s0d

    def _gradient_and_hessian(
        self, w: np.ndarray, alpha: np.ndarray, dz: np.ndarray, h1: np.ndarray, h2: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The gradient and Hessian of :meth:`loss` from ``sum_g d_g S1_g / S0_g`` (``dz``),
        ``X' diag(r c) X`` (``h1``) and ``sum_g d_g z_g z_g'`` (``h2``)."""
        grad = -(self.sum_x_events - dz) / self.n + alpha * w / self.n
        hess = (h1 - h2) / self.n
        hess[np.diag_indices_from(hess)] += alpha / self.n
        return grad, hess

    def _chunk(self, a: int, b: int) -> np.ndarray:
        """Rows ``a:b`` of the time-sorted matrix (a view, or a gathered copy)."""
        return self.x[self.order[a:b]] if self.gather else self.x[a:b]

    def _rows_t_dot(self, v: np.ndarray) -> np.ndarray:
        """``X_sorted' v`` (a matrix-vector product, no temporary when not gathering)."""
        if not self.gather:
            return self.x.T @ v
        out = np.zeros(self.x.shape[1])
        for a in self.chunk_starts:
            b = min(a + self.chunk_rows, self.n)
            out += self._chunk(a, b).T @ v[a:b]
        return out

    def _eta(self, w: np.ndarray) -> np.ndarray:
        """Linear predictor in sorted order."""
        if not self.gather:
            return self.x @ w
        return (self.x @ w)[self.order]

    def risk_sums(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """``exp(x'w - shift)``, its risk-set sums per tie group and the shift.

        The last result is kept: Newton's loss at a new point and the gradient and Hessian
        at that same point share it (callers must not write into the arrays).
        """
        key = np.asarray(w, dtype=float).tobytes()
        if self._risk_sums_at is not None and self._risk_sums_at[0] == key:
            return self._risk_sums_at[1]
        eta = self._eta(w)
        shift = float(eta.max())
        eta -= shift
        r = np.exp(eta, out=eta)
        if self.columnwise:  # per-group sums, then a running sum over the groups
            s0 = np.cumsum(np.add.reduceat(r, self.group_start))
        else:
            s0 = np.cumsum(r)[self.group_end]
        self._risk_sums_at = (key, (r, s0, shift))
        return r, s0, shift

    def loss(self, w: np.ndarray, alpha: np.ndarray) -> float:
        """Average negative partial log-likelihood plus ridge term (scikit-survival's)."""
        r, s0, shift = self.risk_sums(w)
        loglik = self.sum_x_events @ w - np.sum(self.d * (np.log(s0[self.has_death]) + shift))
        return float(-loglik / self.n + np.sum(alpha * w * w) / (2.0 * self.n))

    def gradient_hessian(self, w: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of :meth:`loss`, accumulated over row chunks.

        ``S1`` (the risk-set sum of ``r x``) is a running sum over rows in decreasing-time
        order; each chunk starts from the previous chunk's last value (the carry), so a tie
        group split across chunks gets the same ``S1`` as without chunks.
        """
        if self.columnwise:
            return self._gradient_hessian_columnwise(w, alpha)
        r, rc, s0d = self._risk_weights(w)
        d = self.d
        p = self.x.shape[1]
        carry = np.zeros(p)  # S1 of every row before the chunk
        dz = np.zeros(p)
        h1 = np.zeros((p, p))
        h2 = np.zeros((p, p))
        for k, a in enumerate(self.chunk_starts):
            b = min(a + self.chunk_rows, self.n)
            xc = self._chunk(a, b)
            rx = xc * r[a:b, None]
            rx[0] += carry  # the running sum continues from the previous chunk
            s1 = np.cumsum(rx, axis=0, out=rx)
            carry = s1[-1].copy()
            g0, g1 = self.death_bounds[k], self.death_bounds[k + 1]
            if g1 > g0:
                z = s1[self.death_end[g0:g1] - a] / s0d[g0:g1, None]
                dz += d[g0:g1] @ z
                h2 += (z * d[g0:g1, None]).T @ z
            h1 += xc.T @ (xc * rc[a:b, None])
        return self._gradient_and_hessian(w, alpha, dz, h1, h2)


def fit_cox_breslow(
    X: np.ndarray,
    event: np.ndarray,
    time: np.ndarray,
    alpha: float = 0.0,
    n_iter: int = 100,
    tol: float = 1e-9,
    chunk_rows: int = CHUNK_ROWS,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """Coefficients of a ridge-penalised Cox model (Breslow ties) by Newton-Raphson.

    Minimises scikit-survival's objective ``-loglik(w) / n + alpha * ||w||^2 / (2 n)`` with its
    step halving and stopping rule (relative change of the objective below ``tol``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    event : ndarray of shape (n_samples,)
        Event indicator.
    time : ndarray of shape (n_samples,)
        Event or censoring time.
    alpha : float
        Ridge penalty.
    n_iter : int
        Maximum Newton iterations (a ``ConvergenceWarning`` is issued when reached).
    tol : float
        Convergence tolerance on the relative change of the objective.
    chunk_rows : int
        Rows per chunk of the gradient and Hessian accumulation.
    order : ndarray of int, optional
        ``np.argsort(-time, kind="mergesort")``, if the caller has it (several fits on the
        same outcome sort it once).

    Returns
    -------
    ndarray of shape (n_features,)
        Coefficients.

    Notes
    -----
    A writeable Fortran-ordered float64 ``X`` is sorted by time in place during the fit and
    restored exactly before returning (also on an exception); any other ``X`` is left alone
    and its rows are gathered in time order one chunk at a time.
    """
    X = np.asarray(X, dtype=float)
    event = np.asarray(event)
    time = np.asarray(time, dtype=float)
    if order is None:
        order = np.argsort(-time, kind="mergesort")
    if X.flags.f_contiguous and X.flags.writeable:
        with sorted_rows_in_place(X, order) as xs:
            data = _SortedCoxData(xs, event, time, order, gather=False, chunk_rows=chunk_rows)
            return _newton(data, alpha, n_iter, tol)
    data = _SortedCoxData(X, event, time, order, gather=True, chunk_rows=chunk_rows)
    return _newton(data, alpha, n_iter, tol)


def fit_cox_presorted(
    X: np.ndarray,
    outcome: TimeOrder,
    alpha: float = 0.0,
    n_iter: int = 100,
    tol: float = 1e-9,
    chunk_rows: int = CHUNK_ROWS,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`fit_cox_breslow` of rows already in ``outcome``'s order (decreasing time).

    For covariates built in that order (no sort of ``X``); ``outcome`` is shared by every
    fit on the same outcome. With at most :data:`COLUMNWISE_MAX_FEATURES` columns of a
    Fortran-ordered ``X`` (the ICI's spline), the risk-set sums are made per tie group and
    the gradient and Hessian a column at a time: faster, and the same coefficients up to
    the rounding of those sums (~1e-14 relative). ``start``: the first Newton iterate
    (zeros by default); the partial likelihood is convex, so any start reaches the same
    optimum, a good one in fewer steps.
    """
    X = np.asarray(X, dtype=float)
    columnwise = X.shape[1] <= COLUMNWISE_MAX_FEATURES and X.flags.f_contiguous
    data = _SortedCoxData(
        X,
        outcome.event,
        outcome.time,
        outcome.order,
        False,
        chunk_rows,
        outcome=outcome,
        columnwise=columnwise,
    )
    return _newton(data, alpha, n_iter, tol, start)


def _newton(
    data: _SortedCoxData, alpha: float, n_iter: int, tol: float, start: np.ndarray | None = None
) -> np.ndarray:
    """scikit-survival's Newton-Raphson loop (step halving, relative-loss stopping rule),
    from ``start`` (zeros, scikit-survival's start, by default)."""
    from scipy.linalg import solve  # loaded by the first fit, not by importing this module

    p = data.x.shape[1]
    alphas = np.full(p, float(alpha))
    w = np.zeros(p) if start is None else np.array(start, dtype=float)
    w_prev = w
    loss = float("inf")
    i = 0
    while True:
        if i >= n_iter:
            from sklearn.exceptions import ConvergenceWarning  # only when it is issued

            warnings.warn(
                "Optimization did not converge: Maximum number of iterations has been exceeded.",
                ConvergenceWarning,
                stacklevel=3,
            )
            break
        grad, hess = data.gradient_hessian(w, alphas)
        delta = solve(hess, grad, check_finite=False, assume_a="sym")
        if not np.all(np.isfinite(delta)):
            raise ValueError("search direction contains NaN or infinite values")
        w_new = w - delta
        loss_new = data.loss(w_new, alphas)
        if loss_new > loss:  # step halving, as scikit-survival
            w = (w_prev + w) / 2
            loss = data.loss(w, alphas)
            i += 1
            continue
        w_prev, w = w, w_new
        if np.abs(1 - loss_new / loss) < tol:
            break
        loss = loss_new
        i += 1
    return w


def breslow_cumulative_hazard(
    linear_predictor: np.ndarray,
    event: np.ndarray,
    time: np.ndarray,
    order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Breslow estimate of the cumulative baseline hazard (scikit-survival's, vectorised).

    Parameters
    ----------
    linear_predictor : ndarray of shape (n_samples,)
        Log hazard ratios of the training samples.
    event, time : ndarray of shape (n_samples,)
    order : ndarray of int, optional
        ``np.argsort(time, kind="mergesort")``, if the caller has it.

    Returns
    -------
    times : ndarray
        Unique training times (ascending).
    cumhaz : ndarray
        Cumulative baseline hazard at ``times``.
    """
    time = np.asarray(time, float)
    event = np.asarray(event).astype(bool)
    lp = np.asarray(linear_predictor, float)
    shift = float(lp.max())  # the baseline is scaled back by exp(shift) below
    if order is None:
        order = np.argsort(time, kind="mergesort")
    t = time[order]
    r = np.exp(lp[order] - shift)
    uniq, first = np.unique(t, return_index=True)
    # risk set at a unique time: every sample with time >= it (suffix sum from its first index)
    suffix = np.cumsum(r[::-1])[::-1]
    n_events = np.add.reduceat(event[order].astype(float), first)
    return uniq, np.cumsum(n_events / suffix[first]) * np.exp(-shift)
