"""Synthetic, production-shaped survival tables (no downloads).

The generator reproduces the *shape* of the project's production table
(~287,000 customers, one row each) so that the workflow can be exercised and
benchmarked locally at any size (10K ... 10M rows).

Data-generating process
-----------------------
* ``customer_id`` -- unique ``int64``, ``ID_OFFSET + row_index``.
* 15 *core* numeric features ``num_01 .. num_15`` drawn from a Gaussian copula
  with three latent factors (so several of them are correlated) and mixed
  marginals: normal, clipped normal, lognormal, Weibull (right-skewed),
  logistic-bounded, Poisson counts, exponential, uniform, heavy-tailed,
  bimodal, zero-inflated lognormal, bounded noise. Values are rounded to a
  plausible recording precision.
* 5 *core* categorical features ``cat_1 .. cat_5`` (strings) with 3, 5, 8, 12
  and 40 levels, Zipf-like skewed frequencies and rare levels (< 0.5 %);
  ``cat_1`` is correlated with the income factor.
* A true log-hazard with non-linear effects (U-shape, thresholds, hinge, log,
  saturating ``tanh``) and interactions (num x num and num x cat), on top of a
  Weibull baseline (shape 1.3, time in days). ``num_04`` (correlated with age),
  ``num_13``, ``num_14`` and ``num_15`` carry no signal.
* Independent censoring ``C = s * min(A, D)`` (staggered administrative end
  ``A`` plus exponential drop-out ``D``); the scale ``s`` is calibrated so the
  expected censored fraction equals ``censoring_rate``.
* Missing values (MCAR and MAR) in five numeric and two categorical columns.

Extra columns (``n_numeric > 15`` or ``n_categorical > 5``) are pure noise;
asking for fewer columns hides core features, which then act as unobserved
covariates (the hazard itself never changes).

Reproducibility
---------------
Rows are generated in fixed blocks of ``_BLOCK_ROWS`` rows; block ``b`` draws
from ``numpy.random.default_rng(numpy.random.SeedSequence([seed, b]))`` and is
always generated in full, then sliced. Consequently the table is a pure
function of ``seed`` (and the distribution parameters): it does not depend on
``chunk_rows``, and a smaller table is an exact prefix of a larger one with the
same seed. The censoring scale is calibrated once per ``censoring_rate`` on a
fixed calibration sample (independent of ``seed``), so every seed samples the
same data-generating process.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from scipy.special import ndtr

from .contract import PARQUET_SUFFIXES

__all__ = [
    "CORE_CATEGORICAL",
    "CORE_NUMERIC",
    "DEFAULT_CHUNK_ROWS",
    "ID_OFFSET",
    "categorical_columns",
    "iter_survival_tables",
    "make_survival_table",
    "numeric_columns",
    "survival_table_schema",
    "write_survival_table",
]

#: Number of signal-bearing numeric / categorical columns of the generator.
CORE_NUMERIC = 15
CORE_CATEGORICAL = 5
#: Default number of rows per written chunk (= Parquet row group).
DEFAULT_CHUNK_ROWS = 1_000_000
#: ``customer_id`` of the first row.
ID_OFFSET = 10_000_000

# Rows per random-stream block. Part of the definition of the random stream:
# changing it changes the generated data for every seed.
_BLOCK_ROWS = 100_000
_CALIBRATION_ROWS = 200_000
_CALIBRATION_ENTROPY = 0x5EED_CA1B
_WEIBULL_SHAPE = 1.3
_WEIBULL_SCALE_DAYS = 540.0
_DURATION_DECIMALS = 2
_MIN_DURATION = 0.01
_GENERATOR_VERSION = "1"

# --------------------------------------------------------------------------
# Static description of the core features
# --------------------------------------------------------------------------

# Loadings of the core numeric latents on three factors
# (0: "age/life stage", 1: "affluence", 2: "engagement"). Row norms < 1.
_NUM_LOADINGS = np.array(
    [
        [0.92, 0.00, 0.00],  # num_01 age (clipped normal)
        [0.20, 0.60, 0.00],  # num_02 income (lognormal)
        [0.45, 0.00, 0.30],  # num_03 tenure in months (Weibull, skewed)
        [0.60, 0.00, 0.00],  # num_04 bmi-like, correlated with age only
        [0.00, 0.30, 0.40],  # num_05 score in (0, 100)
        [0.00, 0.00, 0.55],  # num_06 count (Poisson)
        [0.00, 0.70, 0.20],  # num_07 monthly charges (lognormal)
        [0.00, 0.00, -0.30],  # num_08 exponential gap
        [0.00, 0.00, 0.00],  # num_09 uniform(0, 1)
        [0.00, 0.00, 0.00],  # num_10 heavy tailed
        [0.45, 0.00, 0.30],  # num_11 normal, correlated with tenure
        [0.00, 0.00, 0.00],  # num_12 bimodal
        [0.00, 0.40, 0.00],  # num_13 zero-inflated lognormal
        [0.30, 0.30, 0.30],  # num_14 normal noise
        [0.00, 0.00, 0.00],  # num_15 bounded noise in (0, 1)
    ]
)

_CAT_LEVELS: tuple[tuple[str, ...], ...] = (
    ("basic", "standard", "premium"),
    ("online", "store", "phone", "partner", "kiosk"),
    ("north", "south", "east", "west", "central", "coastal", "mountain", "island"),
    tuple(f"seg_{chr(ord('A') + i)}" for i in range(12)),
    tuple(f"branch_{i:02d}" for i in range(1, 41)),
)


def _zipf_probs(n_levels: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_levels + 1) ** exponent
    return weights / weights.sum()


_CAT_PROBS: tuple[np.ndarray, ...] = (
    np.array([0.55, 0.33, 0.12]),
    np.array([0.47, 0.28, 0.15, 0.08, 0.02]),
    np.array([0.30, 0.24, 0.17, 0.12, 0.09, 0.05, 0.025, 0.005]),
    _zipf_probs(12, 1.4),
    _zipf_probs(40, 1.6),
)
# Loading of the categorical latent on the affluence factor (cat_1: plan).
_CAT_FACTOR_LOADING = np.array([0.55, 0.0, 0.0, 0.0, 0.0])

# Main effects of the categorical levels on the log-hazard.
_CAT_EFFECTS: tuple[np.ndarray, ...] = (
    np.array([0.25, 0.0, -0.35]),
    np.array([0.0, 0.15, -0.10, 0.35, 0.60]),
    np.array([0.0, 0.10, -0.10, 0.05, 0.0, 0.20, -0.15, 0.30]),
    np.concatenate([np.random.default_rng(20240401).normal(0.0, 0.20, 9), [0.60, 0.80, 1.00]]),
    np.random.default_rng(20240402).normal(0.0, 0.15, 40),
)

# Missingness: (column, base-rate multiplier, MAR driver or None).
_NUM_MISSING = (
    ("num_02", 1.0, 0),
    ("num_05", 2.0, None),
    ("num_07", 0.5, None),
    ("num_10", 1.0, None),
    ("num_13", 1.5, 2),
)
_CAT_MISSING = (("cat_2", 1.0, None), ("cat_4", 2.0, 1))

# Extra (noise) columns cycle through these.
_EXTRA_NUM_KINDS = ("normal", "lognormal", "uniform", "exponential")
_EXTRA_CAT_LEVEL_COUNTS = (4, 6, 10, 20)


# --------------------------------------------------------------------------
# Column helpers
# --------------------------------------------------------------------------


def numeric_columns(n_numeric: int = CORE_NUMERIC) -> list[str]:
    """Names of the numeric feature columns.

    Parameters
    ----------
    n_numeric : int, default 15
        Number of numeric columns.

    Returns
    -------
    list of str
        ``["num_01", ..., f"num_{n_numeric:02d}"]``.
    """
    return [f"num_{j:02d}" for j in range(1, n_numeric + 1)]


def categorical_columns(n_categorical: int = CORE_CATEGORICAL) -> list[str]:
    """Names of the categorical feature columns.

    Parameters
    ----------
    n_categorical : int, default 5
        Number of categorical columns.

    Returns
    -------
    list of str
        ``["cat_1", ..., f"cat_{n_categorical}"]``.
    """
    return [f"cat_{k}" for k in range(1, n_categorical + 1)]


def _levels(k: int) -> tuple[str, ...]:
    """Levels of categorical column ``k`` (0-based)."""
    if k < CORE_CATEGORICAL:
        return _CAT_LEVELS[k]
    n_levels = _EXTRA_CAT_LEVEL_COUNTS[(k - CORE_CATEGORICAL) % len(_EXTRA_CAT_LEVEL_COUNTS)]
    return tuple(f"L{i:02d}" for i in range(1, n_levels + 1))


def survival_table_schema(
    n_numeric: int = CORE_NUMERIC, n_categorical: int = CORE_CATEGORICAL
) -> pa.Schema:
    """Arrow schema of the generated table.

    Parameters
    ----------
    n_numeric : int, default 15
        Number of numeric feature columns.
    n_categorical : int, default 5
        Number of categorical feature columns.

    Returns
    -------
    pyarrow.Schema
        ``customer_id`` int64, ``duration`` float64, ``event`` int8, numeric
        features float64 and categorical features string (all nullable).
    """
    fields = [
        pa.field("customer_id", pa.int64(), nullable=False),
        pa.field("duration", pa.float64(), nullable=False),
        pa.field("event", pa.int8(), nullable=False),
    ]
    fields += [pa.field(c, pa.float64()) for c in numeric_columns(n_numeric)]
    fields += [pa.field(c, pa.string()) for c in categorical_columns(n_categorical)]
    return pa.schema(fields)


# --------------------------------------------------------------------------
# Core generator
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    n_numeric: int
    n_categorical: int
    censoring_rate: float
    missing_rate: float
    censoring_scale: float


def _validate(
    n_rows: int,
    seed: int,
    censoring_rate: float,
    n_numeric: int,
    n_categorical: int,
    missing_rate: float,
) -> None:
    for name, value in (
        ("n_rows", n_rows),
        ("seed", seed),
        ("n_numeric", n_numeric),
        ("n_categorical", n_categorical),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if not 0.0 <= censoring_rate < 1.0:
        raise ValueError(f"censoring_rate must be in [0, 1), got {censoring_rate!r}")
    if not 0.0 <= missing_rate < 0.5:
        raise ValueError(f"missing_rate must be in [0, 0.5), got {missing_rate!r}")


def _core_draws(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw core features, true event times and censoring base times.

    The order and shapes of the random draws define the random stream; do not
    reorder them.
    """
    factors = rng.standard_normal((n, 3))
    noise = rng.standard_normal((n, CORE_NUMERIC))
    uniq = np.sqrt(1.0 - (_NUM_LOADINGS**2).sum(axis=1))
    z = factors @ _NUM_LOADINGS.T + noise * uniq  # (n, 15) standard normal latents
    del noise

    cat_noise = rng.standard_normal((n, CORE_CATEGORICAL))
    counts = rng.poisson(np.exp(0.9 + 0.35 * z[:, 5]))
    mix_u = rng.random(n)
    zero_u = rng.random(n)
    base_exp = rng.standard_exponential(n)  # event-time noise
    admin_u = rng.random(n)  # administrative (staggered) end of follow-up
    dropout = rng.standard_exponential(n)  # loss to follow-up

    out: dict[str, np.ndarray] = {}
    age = np.clip(45.0 + 13.0 * z[:, 0], 18.0, 90.0)
    income = np.exp(10.8 + 0.55 * z[:, 1])
    tenure = 30.0 * (-np.log1p(-ndtr(z[:, 2]).clip(max=1 - 1e-12))) ** (1.0 / 1.2)
    bmi = np.clip(27.0 + 4.5 * z[:, 3], 15.0, 55.0)
    score = 100.0 / (1.0 + np.exp(-(0.6 + 1.1 * z[:, 4])))
    count = counts.astype(np.float64)
    charges = np.exp(4.0 + 0.45 * z[:, 6])
    gap = -np.log1p(-ndtr(z[:, 7]).clip(max=1 - 1e-12))
    unif = ndtr(z[:, 8])
    heavy = np.sinh(0.9 * z[:, 9])
    util = 10.0 + 3.0 * z[:, 10]
    bimodal = np.where(mix_u < 0.35, -1.5 + 0.5 * z[:, 11], 1.0 + 0.7 * z[:, 11])
    zero_infl = np.where(zero_u < 0.40, 0.0, np.exp(2.0 + z[:, 12]))
    noise_norm = z[:, 13]
    noise_bounded = ndtr(z[:, 14]) ** 2

    values = (
        age,
        income,
        tenure,
        bmi,
        score,
        count,
        charges,
        gap,
        unif,
        heavy,
        util,
        bimodal,
        zero_infl,
        noise_norm,
        noise_bounded,
    )
    decimals = (0, -1, 1, 1, 1, 0, 2, 3, 4, 4, 3, 3, 2, 4, 4)
    for j, (v, d) in enumerate(zip(values, decimals, strict=True)):
        out[f"num_{j + 1:02d}"] = np.round(v, d)

    cat_codes = []
    for k in range(CORE_CATEGORICAL):
        lam = _CAT_FACTOR_LOADING[k]
        latent = lam * factors[:, 1] + np.sqrt(1.0 - lam**2) * cat_noise[:, k]
        cum = np.cumsum(_CAT_PROBS[k])
        codes = np.searchsorted(cum[:-1], ndtr(latent), side="right").astype(np.int16)
        cat_codes.append(codes)
        out[f"cat_{k + 1}"] = codes

    # ---- true log-hazard: non-linear effects and interactions ----
    a = (age - 45.0) / 13.0
    plan = cat_codes[0]
    eta = (
        0.50 * (a + 0.4) ** 2  # asymmetric U-shape in age (minimum at ~40 years)
        - 0.55 * np.log(income / 49_000.0)  # log effect of income
        + 0.90 * (tenure < 6.0)  # new-customer threshold
        - 0.35 * np.log1p(tenure / 12.0)
        + 0.035 * np.maximum(40.0 - score, 0.0)  # hinge on score
        + 0.15 * np.minimum(count, 8.0)  # saturating count
        + z[:, 6] * np.select([plan == 0, plan == 2], [0.80, -0.30], 0.15)  # num x cat
        + 1.00 * ((gap > 1.5) & (unif > 0.6))  # num x num threshold interaction
        + 0.30 * a * np.tanh(z[:, 2])  # num x num smooth interaction
        + 0.50 * np.tanh(heavy)  # saturating
        + 0.15 * z[:, 10]
        + 0.25 * (bimodal > 0.0)
    )
    for k in range(CORE_CATEGORICAL):
        eta += _CAT_EFFECTS[k][cat_codes[k]]
    eta -= 1.2  # centre so the median event time is ~1-2 years

    # Weibull proportional-hazards event time: H0(t) = (t / scale) ** shape.
    out["_event_time"] = _WEIBULL_SCALE_DAYS * (base_exp * np.exp(-eta)) ** (1.0 / _WEIBULL_SHAPE)
    out["_censor_base"] = np.minimum(0.15 + 0.85 * admin_u, 1.25 * dropout)
    out["_eta"] = eta
    out["_z"] = z
    return out


@functools.lru_cache(maxsize=32)
def _censoring_scale(censoring_rate: float) -> float:
    """Scale ``s`` with ``P(s * C0 < T) == censoring_rate`` on a fixed sample.

    Solved exactly as a quantile of ``T / C0`` (the limit of a bisection on
    ``s``); deterministic and independent of the user seed.
    """
    if censoring_rate <= 0.0:
        return float("inf")
    rng = np.random.default_rng(np.random.SeedSequence(_CALIBRATION_ENTROPY))
    draws = _core_draws(rng, _CALIBRATION_ROWS)
    ratio = draws["_event_time"] / draws["_censor_base"]
    return float(np.quantile(ratio, 1.0 - censoring_rate))


def _mar_prob(base: float, driver: np.ndarray | None) -> np.ndarray | float:
    """Missingness probability; MAR via a probit tilt with mean ``base``."""
    if driver is None:
        return base
    return np.minimum(1.0, 2.0 * base * ndtr(0.8 * driver))


def _generate_block(seed: int, block: int, spec: _Spec) -> dict[str, np.ndarray]:
    """Generate block ``block`` (all ``_BLOCK_ROWS`` rows) for ``seed``."""
    n = _BLOCK_ROWS
    rng = np.random.default_rng(np.random.SeedSequence([seed, block]))
    draws = _core_draws(rng, n)
    z = draws.pop("_z")
    t_event = draws.pop("_event_time")
    c_time = spec.censoring_scale * draws.pop("_censor_base")
    draws.pop("_eta")

    event = t_event <= c_time
    duration = np.maximum(
        np.round(np.where(event, t_event, c_time), _DURATION_DECIMALS), _MIN_DURATION
    )

    # Missingness (always drawn, so the stream does not depend on missing_rate).
    miss_u = rng.random((n, len(_NUM_MISSING) + len(_CAT_MISSING)))
    for i, (col, mult, driver) in enumerate(_NUM_MISSING):
        p = _mar_prob(spec.missing_rate * mult, None if driver is None else z[:, driver])
        draws[col] = np.where(miss_u[:, i] < p, np.nan, draws[col])
    for i, (col, mult, driver) in enumerate(_CAT_MISSING, start=len(_NUM_MISSING)):
        p = _mar_prob(spec.missing_rate * mult, None if driver is None else z[:, driver])
        draws[col] = np.where(miss_u[:, i] < p, np.int16(-1), draws[col]).astype(np.int16)

    out: dict[str, np.ndarray] = {
        "customer_id": ID_OFFSET + block * n + np.arange(n, dtype=np.int64),
        "duration": duration,
        "event": event.astype(np.int8),
    }
    for j in range(1, min(spec.n_numeric, CORE_NUMERIC) + 1):
        out[f"num_{j:02d}"] = draws[f"num_{j:02d}"]

    # Extra noise columns, drawn last so core columns never depend on them.
    for j in range(CORE_NUMERIC, spec.n_numeric):
        kind = _EXTRA_NUM_KINDS[(j - CORE_NUMERIC) % len(_EXTRA_NUM_KINDS)]
        e = rng.standard_normal(n)
        if kind == "normal":
            v = np.round(e, 4)
        elif kind == "lognormal":
            v = np.round(np.exp(1.0 + 0.8 * e), 3)
        elif kind == "uniform":
            v = np.round(ndtr(e), 4)
        else:
            v = np.round(-np.log1p(-ndtr(e).clip(max=1 - 1e-12)), 4)
        mu = rng.random(n)
        if (j - CORE_NUMERIC) % 2 == 0:
            v = np.where(mu < spec.missing_rate, np.nan, v)
        out[f"num_{j + 1:02d}"] = v
    for k in range(min(spec.n_categorical, CORE_CATEGORICAL)):
        out[f"cat_{k + 1}"] = draws[f"cat_{k + 1}"]
    for k in range(CORE_CATEGORICAL, spec.n_categorical):
        n_levels = len(_levels(k))
        u = rng.random(n)
        codes = np.searchsorted(np.cumsum(_zipf_probs(n_levels, 1.2))[:-1], u, side="right")
        mu = rng.random(n)
        if (k - CORE_CATEGORICAL) % 2 == 1:
            codes = np.where(mu < spec.missing_rate, -1, codes)
        out[f"cat_{k + 1}"] = codes.astype(np.int16)
    return out


def _make_spec(
    censoring_rate: float, n_numeric: int, n_categorical: int, missing_rate: float
) -> _Spec:
    return _Spec(
        n_numeric=int(n_numeric),
        n_categorical=int(n_categorical),
        censoring_rate=float(censoring_rate),
        missing_rate=float(missing_rate),
        censoring_scale=_censoring_scale(float(censoring_rate)),
    )


def _iter_row_range(
    seed: int, spec: _Spec, start: int, stop: int
) -> Iterator[dict[str, np.ndarray]]:
    """Yield column dicts covering rows ``[start, stop)`` block slice by block slice."""
    if stop <= start:
        return
    first, last = start // _BLOCK_ROWS, (stop - 1) // _BLOCK_ROWS
    for block in range(first, last + 1):
        lo = max(start - block * _BLOCK_ROWS, 0)
        hi = min(stop - block * _BLOCK_ROWS, _BLOCK_ROWS)
        cols = _generate_block(seed, block, spec)
        yield {name: arr[lo:hi] for name, arr in cols.items()}


def _to_frame(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    data: dict[str, np.ndarray] = {}
    for name, arr in cols.items():
        if name.startswith("cat_"):
            k = int(name[4:]) - 1
            lookup = np.array([*_levels(k), None], dtype=object)  # code -1 -> None
            data[name] = lookup[arr]
        else:
            data[name] = arr
    return pd.DataFrame(data)


def _to_arrow(cols: dict[str, np.ndarray], schema: pa.Schema) -> pa.Table:
    arrays = []
    for field in schema:
        arr = cols[field.name]
        if field.name.startswith("cat_"):
            k = int(field.name[4:]) - 1
            dict_arr = pa.DictionaryArray.from_arrays(
                pa.array(arr, type=pa.int16(), mask=arr < 0),
                pa.array(_levels(k), type=pa.string()),
            )
            arrays.append(dict_arr.dictionary_decode())
        else:
            arrays.append(pa.array(arr, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _concat_cols(parts: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([p[name] for p in parts]) for name in names}


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def make_survival_table(
    n_rows: int,
    seed: int = 0,
    censoring_rate: float = 0.35,
    n_numeric: int = 15,
    n_categorical: int = 5,
    missing_rate: float = 0.05,
) -> pd.DataFrame:
    """Generate a synthetic right-censored survival table in memory.

    Parameters
    ----------
    n_rows : int
        Number of rows (customers).
    seed : int, default 0
        Non-negative seed; the table is a deterministic function of it.
    censoring_rate : float, default 0.35
        Target fraction of censored rows (``event == 0``), in ``[0, 1)``.
        The realized fraction is within sampling error (about
        ``sqrt(r (1 - r) / n_rows)``) of it.
    n_numeric : int, default 15
        Number of numeric feature columns ``num_01 ..``. Columns beyond 15 are
        noise; fewer than 15 leaves some true risk factors unobserved.
    n_categorical : int, default 5
        Number of categorical feature columns ``cat_1 ..`` (core level counts
        3, 5, 8, 12, 40; extras cycle through 4, 6, 10, 20 levels).
    missing_rate : float, default 0.05
        Base per-cell missing probability, in ``[0, 0.5)``. Affected columns
        (``num_02, num_05, num_07, num_10, num_13, cat_2, cat_4`` and every other
        extra column) use 0.5x-2x this rate; some missingness is MAR.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int64, unique), ``duration`` (float64 days,
        finite and > 0), ``event`` (int8, 1 = event observed), numeric features
        (float64, NaN when missing) and categorical features (object dtype
        strings, None when missing), in that order.

    Notes
    -----
    Identical, row for row, to what :func:`write_survival_table` writes for the
    same arguments, whatever its ``chunk_rows``; ``make_survival_table(m, s)`` is
    the first ``m`` rows of ``make_survival_table(n, s)`` for ``m <= n``. Memory
    is proportional to ``n_rows``: use :func:`write_survival_table` for very
    large tables.

    Examples
    --------
    >>> df = make_survival_table(1_000, seed=1)
    >>> df.shape
    (1000, 23)
    """
    _validate(n_rows, seed, censoring_rate, n_numeric, n_categorical, missing_rate)
    spec = _make_spec(censoring_rate, n_numeric, n_categorical, missing_rate)
    names = survival_table_schema(n_numeric, n_categorical).names
    parts = list(_iter_row_range(int(seed), spec, 0, int(n_rows)))
    if not parts:
        return _to_frame({n: np.empty(0, dtype=_empty_dtype(n)) for n in names})
    return _to_frame(_concat_cols(parts, names))


def _empty_dtype(name: str) -> type:
    if name == "customer_id":
        return np.int64
    if name == "event":
        return np.int8
    if name.startswith("cat_"):
        return np.int16
    return np.float64


def iter_survival_tables(
    n_rows: int,
    seed: int = 0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    censoring_rate: float = 0.35,
    n_numeric: int = 15,
    n_categorical: int = 5,
    missing_rate: float = 0.05,
) -> Iterator[pa.Table]:
    """Yield the table as consecutive Arrow tables of at most ``chunk_rows`` rows.

    Parameters
    ----------
    n_rows, seed, censoring_rate, n_numeric, n_categorical, missing_rate
        As in :func:`make_survival_table`.
    chunk_rows : int, default 1_000_000
        Maximum rows per yielded table; memory use is proportional to it.

    Yields
    ------
    pyarrow.Table
        Consecutive slices with schema :func:`survival_table_schema`.
    """
    _validate(n_rows, seed, censoring_rate, n_numeric, n_categorical, missing_rate)
    if isinstance(chunk_rows, bool) or int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    spec = _make_spec(censoring_rate, n_numeric, n_categorical, missing_rate)
    schema = survival_table_schema(n_numeric, n_categorical)
    for start in range(0, int(n_rows), int(chunk_rows)):
        stop = min(start + int(chunk_rows), int(n_rows))
        pieces = [_to_arrow(c, schema) for c in _iter_row_range(int(seed), spec, start, stop)]
        yield pa.concat_tables(pieces)


def write_survival_table(
    path: str | os.PathLike[str],
    n_rows: int,
    seed: int = 0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    *,
    compression: str = "snappy",
    **kw: float,
) -> Path:
    """Write a synthetic survival table to Parquet or CSV in bounded memory.

    Parameters
    ----------
    path : str or os.PathLike
        Output file. ``.parquet``/``.pq`` writes Parquet (one row group per
        chunk); ``.csv`` or ``.csv.gz`` writes CSV with a header (missing values
        as empty fields). Parent directories are created. The file is written
        to a temporary name and renamed, so a crash never leaves a partial file.
    n_rows : int
        Number of rows.
    seed : int, default 0
        Seed, as in :func:`make_survival_table`.
    chunk_rows : int, default 1_000_000
        Rows generated and written per step; peak memory is proportional to
        it, independent of ``n_rows``. Does not change the data.
    compression : str, default "snappy"
        Parquet compression codec (ignored for CSV).
    **kw
        ``censoring_rate``, ``n_numeric``, ``n_categorical``, ``missing_rate``
        as in :func:`make_survival_table`.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ValueError
        On an unsupported extension or invalid parameters.
    """
    allowed = {"censoring_rate", "n_numeric", "n_categorical", "missing_rate"}
    unknown = set(kw) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {sorted(unknown)}")
    path = Path(path)
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        fmt = "parquet"
    elif name.endswith((".csv", ".csv.gz")):
        fmt = "csv"
    else:
        raise ValueError(f"unsupported output extension for {path} (use .parquet or .csv)")

    schema = survival_table_schema(
        int(kw.get("n_numeric", CORE_NUMERIC)), int(kw.get("n_categorical", CORE_CATEGORICAL))
    )
    provenance = {
        "generator": "survival_framework.synthetic",
        "version": _GENERATOR_VERSION,
        "n_rows": int(n_rows),
        "seed": int(seed),
        **{k: float(kw[k]) if "rate" in k else int(kw[k]) for k in sorted(kw)},
    }
    schema = schema.with_metadata({"survival_framework.synthetic": json.dumps(provenance)})
    chunks = iter_survival_tables(n_rows, seed, chunk_rows, **kw)  # validates arguments

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, schema, compression=compression) as writer:
                wrote = False
                for table in chunks:
                    writer.write_table(
                        table.replace_schema_metadata(schema.metadata),
                        row_group_size=max(table.num_rows, 1),
                    )
                    wrote = True
                if not wrote:
                    writer.write_table(schema.empty_table())
        else:
            compress = "gzip" if name.endswith(".gz") else None
            with pa.OSFile(str(tmp), "wb") as raw:
                sink = pa.CompressedOutputStream(raw, compress) if compress else raw
                options = pa_csv.WriteOptions(include_header=True, quoting_style="needed")
                with pa_csv.CSVWriter(sink, schema.remove_metadata(), write_options=options) as w:
                    for table in chunks:
                        w.write_table(table.replace_schema_metadata(None))
                if compress:
                    sink.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
