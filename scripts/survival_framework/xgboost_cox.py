"""XGBoost's ``survival:cox`` gradient and Hessian, computed without cancellation.

XGBoost's own Cox objective (``CoxRegression::GetGradient``) forms each risk-set sum by
subtracting, from the sum of ``exp(margin)`` over all rows, the rows whose time has passed.
On millions of rows that subtraction cancels: the rounding error grows with the number of
rows times the largest ``exp(margin)``, the late risk sets (a few rows) become wrong or
negative, and a boosting round can turn them into huge leaf values. At 8M training rows of
the production table this produced non-finite risk scores (a failed fold) and collapsed
survival curves on other folds, while 1M rows were fine.

:class:`CoxObjective` computes the same quantities, row for row and in XGBoost's order (the
rows stably sorted by the float32 ``|label|``; Breslow's ties: the risk set of a tie group
is every row from the group on; an event adds ``1/R`` and ``1/R^2`` to the running sums as
the loop reaches it), but takes the risk sets as suffix sums (a reversed cumulative sum:
additions only) of ``exp(margin - max margin)`` (both ratios are invariant to the shift,
which rules out overflow). Passed as ``obj=`` to ``xgboost.train`` with ``objective:
survival:cox`` kept in the parameters (base margin and prediction transform unchanged), it
gives XGBoost the gradient pairs its own objective computes where that one is accurate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CoxObjective"]


class CoxObjective:
    """Custom objective for ``xgboost.train``: the ``survival:cox`` gradient pairs.

    Parameters
    ----------
    label : ndarray of shape (n,)
        XGBoost's ``survival:cox`` labels: the event time, or minus the censoring time.

    Notes
    -----
    Holds the sort order, its inverse and the tie-group starts of the labels (three int32
    arrays below 2**31 rows); each call holds at most four float64 arrays of ``n``.
    """

    def __init__(self, label: np.ndarray) -> None:
        y = np.asarray(label, dtype=np.float32)  # XGBoost stores labels as float32
        abs_y = np.abs(y)
        # the order of MetaInfo::LabelAbsSort (a stable sort by |label|)
        n = abs_y.shape[0]
        index = np.int32 if n < 2**31 else np.int64  # half the memory below 2**31 rows
        self.order_ = np.argsort(abs_y, kind="stable").astype(index)
        self.rank_ = np.empty_like(self.order_)  # the inverse permutation
        self.rank_[self.order_] = np.arange(n, dtype=index)
        t = abs_y[self.order_]
        self.event_ = y[self.order_] > 0
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = t[1:] != t[:-1]
        # position of the first row of each row's tie group
        self.group_start_ = np.maximum.accumulate(
            np.where(new_group, np.arange(n, dtype=index), index(0))
        )

    def gradient_hessian(self, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the negative Breslow partial log-likelihood.

        Parameters
        ----------
        margin : ndarray of shape (n,)
            The current margins (log hazard ratios), in row order.

        Returns
        -------
        grad, hess : ndarray of shape (n,)
            In row order, as XGBoost's objective defines them.
        """
        # four n-length float64 arrays at most (a, b, c, then the two results), reused in
        # place: the objective runs inside the fit, next to XGBoost's own buffers
        a = np.asarray(margin)[self.order_].astype(np.float64)
        a -= a.max()
        exp_p = np.exp(a, out=a)
        # risk set of each position: the sum over it and every later position (additions
        # only), taken at the start of its tie group
        b = np.cumsum(exp_p[::-1])[::-1]
        inv = b[self.group_start_]  # the risk sets
        del b
        np.divide(1.0, inv, out=inv, where=self.event_)
        inv[~self.event_] = 0.0
        e_r = np.cumsum(inv)  # r_k, then exp_p * r_k
        s_k = np.cumsum(np.square(inv, out=inv), out=inv)
        e_r *= exp_p
        np.square(exp_p, out=exp_p)
        exp_p *= s_k
        del s_k, inv
        hess_sorted = np.subtract(e_r, exp_p, out=exp_p)
        grad_sorted = np.subtract(e_r, self.event_, out=e_r)
        # back to row order by a gather (faster than a scatter)
        return grad_sorted[self.rank_], hess_sorted[self.rank_]

    def __call__(self, predt: np.ndarray, dtrain: Any) -> tuple[np.ndarray, np.ndarray]:
        """The ``obj(predt, dtrain)`` signature of ``xgboost.train``."""
        return self.gradient_hessian(predt)
