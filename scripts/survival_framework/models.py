"""Model registry: five survival models and a reference behind one scikit-learn-style interface.

Every estimator takes ``X`` (float ndarray) and ``y`` (scikit-survival structured array with
fields ``event`` and ``time``) in ``fit``, returns a risk score (higher = earlier event) from
``predict`` and survival probabilities on any time grid from ``predict_survival``, computed in
row batches so memory stays bounded for any number of rows.

Use :func:`get_model` to build one by name; :data:`MODEL_NAMES` lists them.
"""

from __future__ import annotations

import inspect
import types
import typing
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from . import modelspec
from .cox import breslow_cumulative_hazard, fit_cox_breslow
from .modelspec import INJECTED
from .xgboost_cox import CoxObjective

__all__ = [
    "MODEL_NAMES",
    "CoxPH",
    "Coxnet",
    "RandomSurvivalForest",
    "GradientBoostedSurvival",
    "WeibullAFT",
    "KaplanMeier",
    "check_params",
    "get_model",
    "model_input_dtype",
    "model_path_param",
    "model_uses_features",
    "model_seed",
    "survival_arrays",
]


def survival_arrays(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a structured survival array into ``(event as bool, time as float)``."""
    names = y.dtype.names
    return y[names[0]].astype(bool), y[names[1]].astype(float)


def _step_lookup(x: np.ndarray, values: np.ndarray, times: np.ndarray, before: float) -> np.ndarray:
    """Evaluate a right-continuous step function given at ``x`` at ``times``."""
    idx = np.searchsorted(x, times, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, None)], before)
    return out.astype(float)


PREDICT_BATCH_ROWS = 65_536
"""Rows per internal prediction batch where a model predicts every training row."""


def _float_matrix(X: Any, keep_float32: bool = False) -> np.ndarray:
    """``X`` as a float64 array (no copy if it is one), or as it is if float32 and kept."""
    X = np.asarray(X)
    if keep_float32 and X.dtype == np.float32:
        return X
    return np.asarray(X, dtype=float)


class _Params:
    """scikit-learn's estimator parameter API (``get_params``/``set_params``, so
    ``sklearn.base.clone`` works) without importing scikit-learn: a fit job whose model does
    not need scikit-learn or SciPy does not load them (about a second per job on small data).

    As for ``sklearn.base.BaseEstimator``, every constructor argument is stored unchanged
    under its own name; pickles hold the instance ``__dict__``, exactly as ``BaseEstimator``
    pickles estimators defined outside scikit-learn.
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted(
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (``deep`` adds ``<param>__<key>`` of estimator values)."""
        out: dict[str, Any] = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params: Any) -> _Params:
        """Set constructor parameters; unknown names raise ``ValueError``."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator {self!r}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__).parameters
        changed = []
        for key in self._get_param_names():
            value = getattr(self, key)
            default = sig[key].default
            if default is inspect.Parameter.empty or not (
                value is default or (type(value) is type(default) and value == default)
            ):
                changed.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


class _SurvivalEstimator(_Params):
    """Shared batching of survival predictions.

    ``input_dtype`` is the dtype in which :func:`survival_framework.matrix.read_fold` should
    read the feature matrix for this model: float64, or float32 for models that cast their
    input to float32 anyway (the same values, half the memory).
    """

    input_dtype: Any = np.float64
    uses_features: bool = True
    """False for a model that ignores ``X`` (the reference model): the fit job reads no
    feature columns for it."""
    path_param: str | None = None
    """The parameter of a regularisation path: a model that names one has ``fit_path(X, y,
    values)``, one fit giving a fitted model per value (tuning scores a model's candidates
    that differ only in it with one path fit per inner fold, :mod:`.tuning`). Read from
    the source by :func:`survival_framework.modelspec.read_path_params`."""

    def required_modules(self) -> tuple[str, ...]:
        """The libraries ``fit`` imports with these parameters (imported lazily, so a job
        loads only its own model's). :func:`survival_framework.cv.fit_and_evaluate`
        imports them before it starts the fit clock: import time is job overhead, not fit
        time."""
        return ()

    def predict_survival(
        self, X: np.ndarray, times: np.ndarray, batch_size: int = 50_000
    ) -> np.ndarray:
        """Survival probabilities ``S(t | x)``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        times : ndarray of shape (n_times,)
        batch_size : int
            Rows predicted at once; bounds memory for any ``n_samples``.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
        """
        X = _float_matrix(X, keep_float32=True)  # the batches are cast where a model needs it
        times = np.asarray(times, dtype=float)
        out = np.empty((X.shape[0], times.shape[0]), dtype=float)
        for start in range(0, X.shape[0], batch_size):
            stop = start + batch_size
            out[start:stop] = self._predict_survival_batch(X[start:stop], times)
        return out

    def predict_risk_and_survival(
        self,
        X: np.ndarray,
        times: np.ndarray,
        batch_size: int = 50_000,
        at: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Risk scores and survival probabilities, computed together per row batch.

        The same numbers as :meth:`predict` and :meth:`predict_survival`, with memory bounded
        by ``batch_size`` rows for both (``predict`` alone may hold per-row intermediates of
        every row, e.g. a tree ensemble's hazard curves), and one pass over the model per
        batch where a model can give both from it (:class:`RandomSurvivalForest`).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        times : ndarray of shape (n_times,)
        batch_size : int
            Rows predicted at once.
        at : ndarray of shape (n_samples,), optional
            One time per row: also return each row's survival probability at its own time
            (``S(at_i | x_i)``, e.g. at its observed time for D-calibration), from the
            model's own curve, not the grid.

        Returns
        -------
        risk : ndarray of shape (n_samples,)
        surv : ndarray of shape (n_samples, n_times)
        surv_at : ndarray of shape (n_samples,)
            Only if ``at`` is given.
        """
        X = _float_matrix(X, keep_float32=True)  # the batches are cast where a model needs it
        times = np.asarray(times, dtype=float)
        if at is not None:
            at = np.asarray(at, dtype=float)
            if at.shape != (X.shape[0],):
                raise ValueError(f"at must hold one time per row ({X.shape[0]}), got {at.shape}")
        risk = np.empty(X.shape[0], dtype=float)
        surv = np.empty((X.shape[0], times.shape[0]), dtype=float)
        surv_at = None if at is None else np.empty(X.shape[0], dtype=float)
        for start in range(0, X.shape[0], batch_size):
            stop = start + batch_size
            rows = slice(start, stop)
            r, s, s_at = self._predict_risk_survival_batch(
                X[rows], times, None if at is None else at[rows]
            )
            risk[rows], surv[rows] = r, s
            if surv_at is not None:
                surv_at[rows] = s_at
        return (risk, surv) if surv_at is None else (risk, surv, surv_at)

    def _predict_risk_survival_batch(
        self, X: np.ndarray, times: np.ndarray, at: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        surv_at = None if at is None else self._predict_survival_at_batch(X, at)
        return self.predict(X), self._predict_survival_batch(X, times), surv_at

    def _predict_survival_batch(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _predict_survival_at_batch(self, X: np.ndarray, at: np.ndarray) -> np.ndarray:
        """``S(at_i | x_i)`` for each row of a batch."""
        raise NotImplementedError


class _CoxLike(_SurvivalEstimator):
    """A model with a log-hazard-ratio score and a Breslow baseline hazard."""

    def _linear_predictor(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X)

    def _fit_baseline(self, X: np.ndarray, y: np.ndarray) -> None:
        # scikit-survival's BreslowEstimator, vectorised (its Python loop over rows is slow
        # at 10^5 rows); equal to it to rounding (tests/test_performance.py)
        event, time = survival_arrays(y)
        self.baseline_times_, self.baseline_cumhaz_ = breslow_cumulative_hazard(
            self._linear_predictor(X), event, time
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score: the linear predictor (log hazard ratio)."""
        return self._linear_predictor(np.asarray(X, dtype=float))

    def _predict_survival_batch(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        cumhaz = _step_lookup(self.baseline_times_, self.baseline_cumhaz_, times, before=0.0)
        return np.exp(-np.exp(self._linear_predictor(X))[:, None] * cumhaz[None, :])

    def _predict_survival_at_batch(self, X: np.ndarray, at: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        cumhaz = _step_lookup(self.baseline_times_, self.baseline_cumhaz_, at, before=0.0)
        return np.exp(-np.exp(self._linear_predictor(X)) * cumhaz)


class CoxPH(_CoxLike):
    """Cox proportional hazards with a small ridge penalty for stability.

    Parameters
    ----------
    alpha : float
        Ridge penalty; a small positive value keeps the fit stable with one-hot columns.
    ties : {"breslow", "efron"}
        Handling of tied event times.
    n_iter : int
        Maximum Newton-Raphson iterations.
    tol : float
        Convergence tolerance.
    solver : {"numpy", "sksurv"}
        ``"numpy"`` (default): scikit-survival's Newton-Raphson objective and stopping rule,
        vectorised (:func:`.cox.fit_cox_breslow`, ~15x faster at 10^5 rows; Breslow ties
        only). ``"sksurv"``: ``sksurv.linear_model.CoxPHSurvivalAnalysis`` itself (also
        Efron ties).
    """

    def __init__(
        self,
        alpha: float = 1e-4,
        ties: Literal["breslow", "efron"] = "breslow",
        n_iter: int = 100,
        tol: float = 1e-9,
        solver: Literal["numpy", "sksurv"] = "numpy",
    ):
        self.alpha = alpha
        self.ties = ties
        self.n_iter = n_iter
        self.tol = tol
        self.solver = solver

    def required_modules(self) -> tuple[str, ...]:
        return ("sksurv.linear_model",) if self.solver == "sksurv" else ("scipy.linalg",)

    def fit(self, X: np.ndarray, y: np.ndarray) -> CoxPH:
        X = np.asarray(X, dtype=float)
        if self.solver == "numpy":
            if self.ties != "breslow":
                raise ValueError("solver='numpy' supports ties='breslow' only; use 'sksurv'")
            event, time = survival_arrays(y)
            self.coef_ = fit_cox_breslow(X, event, time, self.alpha, self.n_iter, self.tol)
        elif self.solver == "sksurv":
            from sksurv.linear_model import CoxPHSurvivalAnalysis

            model = CoxPHSurvivalAnalysis(
                alpha=self.alpha, ties=self.ties, n_iter=self.n_iter, tol=self.tol
            ).fit(X, y)
            self.coef_ = np.asarray(model.coef_, dtype=float)
        else:
            raise ValueError(f"solver must be 'numpy' or 'sksurv', got {self.solver!r}")
        self._fit_baseline(X, y)
        return self

    def _linear_predictor(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_


class Coxnet(_CoxLike):
    """Elastic-net penalised Cox model (scikit-survival ``CoxnetSurvivalAnalysis``).

    :meth:`fit` fits the one chosen penalty ``alpha`` and estimates its Breslow baseline
    for that penalty only (scikit-survival's per-alpha baselines of a whole path are the
    slow part). Tuning uses :meth:`fit_path` (``path_param``): one path fit through the
    candidates' alphas, then a baseline per alpha.

    Parameters
    ----------
    l1_ratio : float
        Elastic-net mixing (1 = lasso).
    alpha : float
        Penalty strength.
    tol : float
        Coordinate-descent tolerance.
    max_iter : int
        Maximum coordinate-descent iterations.
    """

    def __init__(
        self, l1_ratio: float = 0.5, alpha: float = 0.01, tol: float = 1e-7, max_iter: int = 100_000
    ):
        self.l1_ratio = l1_ratio
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter

    path_param = "alpha"

    def required_modules(self) -> tuple[str, ...]:
        return ("sksurv.linear_model", "sksurv.util")

    def fit(self, X: np.ndarray, y: np.ndarray) -> Coxnet:
        """Fit the model for ``alpha`` and its Breslow baseline (:meth:`_fit_coxnet`)."""
        X = np.asarray(X, dtype=float)
        self.model_ = self._fit_coxnet(X, y, [self.alpha])
        self._fit_baseline(X, y)
        return self

    def fit_path(self, X: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> list[Coxnet]:
        """One fit of the regularisation path through ``alphas``: a fitted model per alpha.

        scikit-survival's coordinate descent runs from the largest alpha to the smallest,
        each warm-started at the previous solution (as glmnet's cross-validation does), so
        the path costs about as much as a fit at its smallest alpha. Each value's
        coefficients agree with :meth:`fit` at that alpha to the solver's tolerance; with
        one alpha they are :meth:`fit`'s exactly. Each model gets its own Breslow baseline.

        Parameters
        ----------
        X : ndarray
            As for :meth:`fit` (a writeable Fortran float64 ``X`` is used in place).
        y : structured array
        alphas : sequence of float
            Distinct penalties, in any order.

        Returns
        -------
        list of Coxnet
            Fitted, in the order of ``alphas``, each with its ``alpha`` set.
        """
        import copy

        alphas = [float(a) for a in alphas]
        if not alphas or len(set(alphas)) != len(alphas):
            raise ValueError(f"fit_path needs distinct alphas, got {alphas}")
        X = np.asarray(X, dtype=float)
        order = sorted(range(len(alphas)), key=lambda k: -alphas[k])  # largest first
        path = self._fit_coxnet(X, y, [alphas[k] for k in order])
        fitted: list[Coxnet | None] = [None] * len(alphas)
        for j, k in enumerate(order):
            one = copy.copy(path)  # the path's model with column j alone
            one.alphas_, one.coef_ = path.alphas_[[j]], path.coef_[:, [j]]
            one.offset_, one.deviance_ratio_ = path.offset_[[j]], path.deviance_ratio_[[j]]
            estimator = type(self)(**{**self.get_params(), "alpha": alphas[k]})
            estimator.model_ = one
            estimator._fit_baseline(X, y)
            fitted[k] = estimator
        return fitted

    def _fit_coxnet(self, X: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> Any:
        """``CoxnetSurvivalAnalysis`` fitted through ``alphas`` (in that order).

        A writeable Fortran-ordered float64 ``X`` is used as scikit-survival's workspace:
        centred and sorted by time in place instead of in three copies of ``X``
        (``check_array(copy=True)``, ``X[order]``, ``asfortranarray``), then put back
        (rows exactly; each value as ``(x - mean) + mean``, within one rounding of ``x``).
        The coefficients are bitwise those of the copying path: scikit-survival's solver
        gets the same values in the same (Fortran) layout. Any other ``X`` is copied.
        """
        from sksurv.linear_model import CoxnetSurvivalAnalysis

        model = CoxnetSurvivalAnalysis(
            l1_ratio=self.l1_ratio,
            alphas=list(alphas),
            tol=self.tol,
            max_iter=self.max_iter,
            fit_baseline_model=False,
        )
        if X.flags.f_contiguous and X.flags.writeable:
            # an instance attribute shadows the method for this fit only, so the fitted
            # model stays a plain CoxnetSurvivalAnalysis (it is pickled in final artifacts)
            model._pre_fit = types.MethodType(_coxnet_pre_fit_in_place, model)
            try:
                model.fit(X, y)
            finally:
                del model._pre_fit
                _coxnet_restore(model, X)
        else:
            model.fit(X, y)
        return model

    def _linear_predictor(self, X: np.ndarray) -> np.ndarray:
        return X @ self.model_.coef_[:, 0]


def _coxnet_pre_fit_in_place(self, X: np.ndarray, y: np.ndarray) -> tuple:
    """``CoxnetSurvivalAnalysis._pre_fit`` (normalize=False) without copying ``X``.

    scikit-survival centres a copy of ``X`` (``X -= mean``), then takes ``X[order]`` and
    ``asfortranarray`` of it: up to three copies of the training matrix. Here the same
    values (``x[order[i], j] - mean[j]``) are written into ``X`` itself, column by column
    through one n-length temporary. The order and offsets are kept on ``self`` for
    :func:`_coxnet_restore`.
    """
    # imported as a module: tests/test_contract.py rejects the text "import <rule script
    # name>" in the package, and validate_data is also the name of a rule script
    from sklearn.utils import validation as sk_validation
    from sksurv.util import check_array_survival

    if self.normalize:
        raise ValueError("in-place Coxnet preparation supports normalize=False only")
    # copy=False and float64 Fortran input: validate_data returns X itself (no copy)
    X = sk_validation.validate_data(self, X, ensure_min_samples=2, dtype=np.float64, copy=False)
    event, time = check_array_survival(X, y)
    X_offset = np.average(X, axis=0)  # the same call on the same array as scikit-survival
    o = np.argsort(-time, kind="mergesort")
    self._in_place_state = (o, X_offset)
    tmp = np.empty(X.shape[0], dtype=X.dtype)
    for j in range(X.shape[1]):
        col = X[:, j]
        np.take(col, o, out=tmp)
        np.subtract(tmp, X_offset[j], out=col)
    X_scale = np.ones(X.shape[1], dtype=X.dtype)
    return X, event[o].astype(np.uint8), time[o].astype(np.float64), X_offset, X_scale


def _coxnet_restore(model: Any, X: np.ndarray) -> None:
    """Undo :func:`_coxnet_pre_fit_in_place` on ``X`` (if it ran)."""
    state = model.__dict__.pop("_in_place_state", None)
    if state is None:
        return
    o, X_offset = state
    tmp = np.empty(X.shape[0], dtype=X.dtype)
    for j in range(X.shape[1]):
        col = X[:, j]
        tmp[o] = col
        np.add(tmp, X_offset[j], out=col)


class GradientBoostedSurvival(_CoxLike):
    """Gradient-boosted regression trees with the Cox partial likelihood loss.

    Survival curves use the Breslow baseline hazard of the boosted log hazard ratio.

    Parameters
    ----------
    n_estimators, learning_rate, max_depth, min_samples_leaf, subsample, max_features
        As in ``sksurv.ensemble.GradientBoostingSurvivalAnalysis`` (``max_features`` must be
        a fraction or None with ``implementation="xgboost"``, where it is
        ``colsample_bynode``; ``min_samples_leaf`` is used by scikit-survival only).
    implementation : {"xgboost", "sksurv"}
        ``"xgboost"`` (default): XGBoost's ``survival:cox`` objective with histogram trees
        (``tree_method="hist"``, ``max_bin`` bins per feature, second-order leaf values),
        ~30x faster than scikit-survival at 10^5 rows. ``"sksurv"``: scikit-survival's exact
        greedy ``GradientBoostingSurvivalAnalysis(loss="coxph")``.
    max_bin : int
        Histogram bins per feature (XGBoost only).
    min_child_weight : float
        Minimum Hessian sum in a leaf (XGBoost only). Small, so the tree shape is left to
        ``max_depth`` as with scikit-survival's ``min_samples_leaf=1``.
    reg_lambda : float
        L2 penalty on leaf values (XGBoost only). Needed with a small ``min_child_weight``:
        without it a leaf of a few late rows (tiny Cox Hessian) gets an extreme value
        (C-index 0.754 instead of 0.806 on the demo).
    random_state : int, optional
        Seed (set per model x fold by the workflow).
    n_jobs : int
        Threads (XGBoost only; scikit-survival's boosting is single-threaded).
    """

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        max_depth: int = 3,
        min_samples_leaf: int = 1,
        subsample: float = 1.0,
        max_features: Any = None,
        implementation: Literal["xgboost", "sksurv"] = "xgboost",
        max_bin: int = 256,
        min_child_weight: float = 1e-3,
        reg_lambda: float = 1.0,
        random_state: int | None = None,
        n_jobs: int = 1,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.subsample = subsample
        self.max_features = max_features
        self.implementation = implementation
        self.max_bin = max_bin
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

    def required_modules(self) -> tuple[str, ...]:
        return ("xgboost",) if self.implementation == "xgboost" else ("sksurv.ensemble",)

    def fit(self, X: np.ndarray, y: np.ndarray) -> GradientBoostedSurvival:
        # XGBoost stores float32 values, so a float32 X (input_dtype) is kept as it is
        X = _float_matrix(X, keep_float32=self.implementation == "xgboost")
        if self.implementation == "xgboost":
            self._fit_xgboost(X, y)
        elif self.implementation == "sksurv":
            from sksurv.ensemble import GradientBoostingSurvivalAnalysis

            self.model_ = GradientBoostingSurvivalAnalysis(
                loss="coxph",
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                min_samples_leaf=self.min_samples_leaf,
                subsample=self.subsample,
                max_features=self.max_features,
                random_state=self.random_state,
            ).fit(X, y)
        else:
            raise ValueError(
                f"implementation must be 'xgboost' or 'sksurv', got {self.implementation!r}"
            )
        self._fit_baseline(X, y)
        return self

    def _fit_xgboost(self, X: np.ndarray, y: np.ndarray) -> None:
        import xgboost as xgb

        if self.max_features is not None and not isinstance(self.max_features, float):
            raise ValueError("implementation='xgboost' needs max_features as a fraction or None")
        event, time = survival_arrays(y)
        # survival:cox labels: event time, or minus the censoring time. QuantileDMatrix
        # stores the histogram bin of each value (1 byte for max_bin <= 256) instead of a
        # float32 value and a column index (8 bytes) as DMatrix does; tree_method="hist"
        # bins the values either way (same trees: tests/test_chunked.py)
        label = np.where(event, time, -time)
        dtrain = xgb.QuantileDMatrix(X, label=label, max_bin=self.max_bin, nthread=self.n_jobs)
        params = {
            "objective": "survival:cox",
            "tree_method": "hist",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "max_bin": self.max_bin,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "subsample": self.subsample,
            "colsample_bynode": 1.0 if self.max_features is None else self.max_features,
            "seed": 0 if self.random_state is None else int(self.random_state) % 2**31,
            "nthread": self.n_jobs,
            "verbosity": 0,
        }
        # survival:cox's gradient pairs without its risk-set cancellation on millions of
        # rows (survival_framework.xgboost_cox). The partial likelihood does not change
        # when every margin shifts, so the boosting starts at margin 0 (base_score 1 on the
        # hazard-ratio scale) instead of survival:cox's fitted intercept: the same trees,
        # every margin shifted by that intercept, which the Breslow baseline absorbs.
        params["base_score"] = 1.0
        self.booster_ = xgb.train(
            params, dtrain, num_boost_round=self.n_estimators, obj=CoxObjective(label)
        )

    def _linear_predictor(self, X: np.ndarray) -> np.ndarray:
        if self.implementation == "xgboost":
            import xgboost as xgb

            # one DMatrix (8 bytes per value) of PREDICT_BATCH_ROWS rows at a time: the
            # Breslow baseline predicts every training row
            out = np.empty(X.shape[0], dtype=float)
            for a in range(0, X.shape[0], PREDICT_BATCH_ROWS):
                dmat = xgb.DMatrix(X[a : a + PREDICT_BATCH_ROWS], nthread=self.n_jobs)
                out[a : a + PREDICT_BATCH_ROWS] = self.booster_.predict(dmat, output_margin=True)
            return out
        return self.model_.predict(X)

    @property
    def input_dtype(self) -> type:
        """float32 with XGBoost (it keeps float32 values; reading them so halves memory)."""
        return np.float32 if self.implementation == "xgboost" else np.float64


class RandomSurvivalForest(_SurvivalEstimator):
    """Random survival forest (scikit-survival) on a discretised time axis.

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features, max_depth, max_samples
        As in ``sksurv.ensemble.RandomSurvivalForest``. ``max_samples`` is the bootstrap
        size of each tree, a fraction or a count; a count at or above the number of training
        rows means the full bootstrap, so the default cap of 5000 changes nothing on small
        data and bounds the cost of each tree on big data (docs/benchmarks.md measures its
        accuracy cost at 287K rows).
    n_time_bins : int or None
        Training times are rounded up to at most this many quantiles of the event times
        before fitting. The forest stores a survival curve per leaf over the unique
        training times, so this bounds memory and time; ``None`` keeps exact times.
        Default 50.
    random_state : int, optional
        Seed (set per model x fold by the workflow).
    n_jobs : int
        Threads used to build and evaluate trees.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        min_samples_leaf: int = 15,
        max_features: Any = "sqrt",
        max_depth: int | None = None,
        max_samples: float | int | None = 5000,
        n_time_bins: int | None = 50,
        random_state: int | None = None,
        n_jobs: int = 1,
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_depth = max_depth
        self.max_samples = max_samples
        self.n_time_bins = n_time_bins
        self.random_state = random_state
        self.n_jobs = n_jobs

    # the trees compare float32 values: scikit-learn casts X to float32 (a copy of a float64
    # X); reading the matrix as float32 gives the same values without that copy
    input_dtype = np.float32

    def required_modules(self) -> tuple[str, ...]:
        return ("sksurv.ensemble", "sklearn.ensemble._forest", "joblib")

    def fit(self, X: np.ndarray, y: np.ndarray) -> RandomSurvivalForest:
        X = _float_matrix(X, keep_float32=True)
        event, time = survival_arrays(y)
        if self.n_time_bins is not None:
            qs = np.linspace(0.0, 1.0, self.n_time_bins)
            edges = np.unique(np.append(np.quantile(time[event], qs), time.max()))
            time = edges[np.searchsorted(edges, time, side="left")]
            y = np.empty(len(time), dtype=[("event", bool), ("time", float)])
            y["event"], y["time"] = event, time
        max_samples = self.max_samples
        if isinstance(max_samples, int | np.integer) and max_samples >= len(time):
            max_samples = None  # a cap above the training size: the usual full bootstrap
        from sksurv.ensemble import RandomSurvivalForest as _SksurvRSF

        self.model_ = _SksurvRSF(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_depth=self.max_depth,
            max_samples=max_samples,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score: the ensemble's summed cumulative hazard."""
        return self.model_.predict(_float_matrix(X, keep_float32=True))

    def _predict_survival_batch(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        surv = self.model_.predict_survival_function(X, return_array=True)
        idx = np.searchsorted(self.model_.unique_times_, times, side="right") - 1
        return np.where(idx >= 0, surv[:, np.clip(idx, 0, None)], 1.0)

    def _predict_survival_at_batch(self, X: np.ndarray, at: np.ndarray) -> np.ndarray:
        return self._predict_risk_survival_batch(X, at[:1], at)[2]

    def _predict_risk_survival_batch(
        self, X: np.ndarray, times: np.ndarray, at: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``predict``, ``_predict_survival_batch`` (and ``_predict_survival_at_batch``)
        from one pass over the trees.

        scikit-survival runs the whole forest once for ``predict`` and again for the
        survival function; every tree's ``tree_.predict`` already returns both the leaf's
        cumulative hazard and its survival curve. The accumulation repeats
        scikit-survival's arithmetic (the same sums in the same tree order), so with one
        thread the numbers are bitwise equal (tests/test_chunked.py).
        """
        import threading

        from joblib import Parallel, delayed
        from sklearn.ensemble._forest import _partition_estimators

        forest = self.model_
        Xb = forest._validate_X_predict(X)  # float32 and checked, as in forest.predict
        idx = np.searchsorted(forest.unique_times_, times, side="right") - 1
        cols = np.clip(idx, 0, None)
        is_event = forest.is_event_time_
        risk = np.zeros(Xb.shape[0], dtype=np.float64)
        surv = np.zeros((Xb.shape[0], len(times)), dtype=np.float64)
        if at is not None:  # each row's own time on the forest's time axis
            rows = np.arange(Xb.shape[0])
            at_idx = np.searchsorted(forest.unique_times_, at, side="right") - 1
            at_cols = np.clip(at_idx, 0, None)
            surv_at = np.zeros(Xb.shape[0], dtype=np.float64)
        lock = threading.Lock()

        def one_tree(tree: Any) -> None:
            pred = tree.tree_.predict(Xb)  # (rows, unique times, [hazard, survival])
            tree_risk = pred[..., 0][:, is_event].sum(1)  # SurvivalTree.predict
            tree_surv = pred[..., 1][:, cols]
            tree_at = None if at is None else pred[rows, at_cols, 1]
            with lock:
                risk[:] += tree_risk
                surv[:] += tree_surv
                if tree_at is not None:
                    surv_at[:] += tree_at

        n_jobs, _, _ = _partition_estimators(forest.n_estimators, forest.n_jobs)
        Parallel(n_jobs=n_jobs, require="sharedmem")(
            delayed(one_tree)(e) for e in forest.estimators_
        )
        risk /= len(forest.estimators_)
        surv /= len(forest.estimators_)
        if at is None:
            return risk, np.where(idx >= 0, surv, 1.0), None
        surv_at /= len(forest.estimators_)
        return risk, np.where(idx >= 0, surv, 1.0), np.where(at_idx >= 0, surv_at, 1.0)


class WeibullAFT(_SurvivalEstimator):
    """Weibull accelerated failure time model (lifelines ``WeibullAFTFitter``'s objective).

    ``S(t | x) = exp(-(t / lambda(x)) ** rho)`` with ``log lambda(x) = b0 + x'b``; the risk
    score is ``-log lambda(x)`` (shorter expected time = higher risk). Predictions are
    computed in closed form from the fitted parameters.

    Parameters
    ----------
    penalizer : float
        L2 (elastic-net with ``l1_ratio``) penalty, as in lifelines.
    l1_ratio : float
        Elastic-net mixing of the penalty.
    solver : {"numpy", "lifelines"}
        ``"numpy"`` (default): lifelines' penalised objective minimised by chunked
        Newton-Raphson (:func:`.weibull.fit_weibull_aft`; memory ``O(n x p)``, the given
        ``X`` plus row-chunk temporaries; same parameters to the solver tolerance,
        zero-variance columns get coefficient 0). ``"lifelines"``: ``WeibullAFTFitter``
        itself (about 3 KB per row at 50 features; its fitter is kept as ``model_``).
    """

    def __init__(
        self,
        penalizer: float = 0.01,
        l1_ratio: float = 0.0,
        solver: Literal["numpy", "lifelines"] = "numpy",
    ):
        self.penalizer = penalizer
        self.l1_ratio = l1_ratio
        self.solver = solver

    def required_modules(self) -> tuple[str, ...]:
        return ("pandas", "lifelines") if self.solver == "lifelines" else ("scipy.linalg",)

    def fit(self, X: np.ndarray, y: np.ndarray) -> WeibullAFT:
        X = np.asarray(X, dtype=float)
        event, time = survival_arrays(y)
        if self.solver == "numpy":
            from .weibull import fit_weibull_aft

            result = fit_weibull_aft(X, time, event, self.penalizer, self.l1_ratio)
            self.coef_ = result.coef
            self.intercept_ = result.intercept
            self.rho_ = float(np.exp(result.log_rho))
            self.n_iter_ = result.n_iter
        elif self.solver == "lifelines":
            import pandas as pd
            from lifelines import WeibullAFTFitter

            cols = [f"x{i}" for i in range(X.shape[1])]
            df = pd.DataFrame(X, columns=cols)
            df["_T"], df["_E"] = time, event.astype(int)
            self.model_ = WeibullAFTFitter(penalizer=self.penalizer, l1_ratio=self.l1_ratio)
            self.model_.fit(df, duration_col="_T", event_col="_E")
            lam = self.model_.params_.loc["lambda_"]
            self.coef_ = lam[cols].to_numpy(dtype=float)
            self.intercept_ = float(lam["Intercept"])
            self.rho_ = float(np.exp(self.model_.params_.loc["rho_"]["Intercept"]))
        else:
            raise ValueError(f"solver must be 'numpy' or 'lifelines', got {self.solver!r}")
        return self

    def _log_lambda(self, X: np.ndarray) -> np.ndarray:
        return self.intercept_ + np.asarray(X, dtype=float) @ self.coef_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score: ``-log lambda(x)``."""
        return -self._log_lambda(X)

    def _predict_survival_batch(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        scale = np.exp(self._log_lambda(X))
        return np.exp(-np.power(times[None, :] / scale[:, None], self.rho_))

    def _predict_survival_at_batch(self, X: np.ndarray, at: np.ndarray) -> np.ndarray:
        return np.exp(-np.power(at / np.exp(self._log_lambda(X)), self.rho_))


class KaplanMeier(_SurvivalEstimator):
    """Reference model: the training rows' Kaplan-Meier curve for every row, constant risk.

    It ignores the features (``uses_features``: the fit job reads none): every row gets the
    same survival curve and the risk score 0, so its concordance indices and AUC are
    exactly 0.5 (every pair is tied in risk). The benchmark's baseline: a model that does
    not beat it has learnt nothing from the features (``ibs_erv`` compares every model's
    integrated Brier score with this one's).
    """

    uses_features = False
    # no feature matrix to speak of: the smallest dtype the fit job can read
    input_dtype = np.float32

    def __init__(self) -> None:
        pass

    def fit(self, X: np.ndarray, y: np.ndarray) -> KaplanMeier:
        from .kaplan_meier import kaplan_meier_estimator

        event, time = survival_arrays(y)
        self.unique_times_, self.survival_ = kaplan_meier_estimator(event, time)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score: 0 for every row."""
        return np.zeros(np.shape(X)[0], dtype=float)

    def _predict_survival_batch(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        curve = _step_lookup(self.unique_times_, self.survival_, times, before=1.0)
        return np.broadcast_to(curve, (np.shape(X)[0], len(times))).copy()

    def _predict_survival_at_batch(self, X: np.ndarray, at: np.ndarray) -> np.ndarray:
        return _step_lookup(self.unique_times_, self.survival_, at, before=1.0)


_REGISTRY: dict[str, type[_SurvivalEstimator]] = {
    "coxph": CoxPH,
    "coxnet": Coxnet,
    "rsf": RandomSurvivalForest,
    "gbsa": GradientBoostedSurvival,
    "weibull_aft": WeibullAFT,
    "km": KaplanMeier,
}

MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def _constructor_params(cls: type) -> dict[str, Any]:
    """``{parameter: type hint}`` of a model's constructor (``Any`` where unannotated)."""
    hints = typing.get_type_hints(cls.__init__)
    return {
        name: hints.get(name, Any)
        for name in inspect.signature(cls.__init__).parameters
        if name not in INJECTED
    }


def check_params(name: str, params: Mapping[str, Any]) -> None:
    """Check a model's parameters against its constructor's signature and type hints.

    See :func:`survival_framework.modelspec.check_params` (the same check, which the
    Snakefile runs on the registry read from this module's source).

    Raises
    ------
    ValueError
        Naming the model, the parameter and the valid parameters (or the expected type).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    modelspec.check_params(name, params, {name: _constructor_params(_REGISTRY[name])})


def get_model(
    name: str, random_state: int | None = None, n_jobs: int = 1, **params: Any
) -> _SurvivalEstimator:
    """Build a model of the registry by name.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    random_state : int, optional
        Passed to models that are random.
    n_jobs : int
        Passed to models that use threads.
    **params
        Constructor parameters of the model, checked by :func:`check_params`.

    Returns
    -------
    estimator
        Unfitted estimator.

    Raises
    ------
    ValueError
        If ``name`` is unknown or a parameter is not accepted by the model.
    """
    check_params(name, params)
    cls = _REGISTRY[name]
    accepted = set(inspect.signature(cls.__init__).parameters)
    if "random_state" in accepted:
        params["random_state"] = random_state
    if "n_jobs" in accepted:
        params["n_jobs"] = n_jobs
    return cls(**params)


def model_input_dtype(name: str, params: Mapping[str, Any]) -> np.dtype:
    """Dtype in which to read the feature matrix for model ``name`` with ``params``.

    float64 unless the model casts its input to float32 itself (``input_dtype``). Never
    raises: invalid parameters give float64, and the fit then records the error.
    """
    try:
        return np.dtype(get_model(name, **dict(params)).input_dtype)
    except Exception:
        return np.dtype(np.float64)


def model_uses_features(name: str, params: Mapping[str, Any]) -> bool:
    """Whether model ``name`` reads the feature matrix (False for the reference ``km``).

    Never raises: invalid parameters give True, and the fit then records the error.
    """
    try:
        return bool(get_model(name, **dict(params)).uses_features)
    except Exception:
        return True


def model_path_param(name: str) -> str | None:
    """Model ``name``'s regularisation path parameter (``fit_path``), or None."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    return _REGISTRY[name].path_param


def model_seed(base_seed: int, model: str, fold: int) -> int:
    """Seed of one model x fold fit, derived from the CV seed (stable across runs and hosts)."""
    seq = np.random.SeedSequence([int(base_seed), zlib.crc32(model.encode()), int(fold)])
    return int(seq.generate_state(1)[0])
