"""Right-censored outcomes as arrays: construction and the checks every metric applies.

The checks are scikit-survival's (``sksurv.util.check_y_survival`` and the estimate checks of
``sksurv.metrics``), with the same messages, so our metrics reject exactly what
scikit-survival rejects: NaN or infinite values, arrays of different lengths, event
indicators that are not boolean, negative times. :func:`check_array` and
:func:`check_consistent_length` are scikit-learn's checks of the same names for the numeric
arrays the metrics take, with scikit-learn's messages, in numpy alone: a scoring job does
not import scikit-learn (and SciPy) for them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_array",
    "check_consistent_length",
    "to_structured",
    "check_y_survival",
    "check_estimate_1d",
    "check_estimate_2d",
    "check_times",
    "censor_after",
]


def _num_samples(x: np.ndarray) -> int:
    if x.ndim == 0:
        raise TypeError(
            "Input should have at least 1 dimension i.e. satisfy `len(x.shape) > 0`, "
            f"got scalar `{x!r}` instead."
        )
    return int(x.shape[0])


def check_array(
    array: object,
    *,
    input_name: str = "",
    estimator: object = None,
) -> np.ndarray:
    """``sklearn.utils.validation.check_array(array, ensure_2d=False, allow_nd=False)`` for
    dense input (the metrics take 1-D and 2-D arrays).

    Object arrays become float64; strings, complex values, more than two dimensions, NaN or
    infinite floats and empty arrays raise scikit-learn's ``ValueError`` with its message.
    Other arrays are returned as they are (no copy), as scikit-learn returns them.

    Parameters
    ----------
    array : array-like
        The values.
    input_name : str
        Named in the messages.
    estimator : str or object, optional
        Named in the messages (a string, or an object's class name).
    """
    name = None
    if estimator is not None:
        name = estimator if isinstance(estimator, str) else type(estimator).__name__
    context = f" by {name}" if name is not None else ""
    x = np.asarray(array)
    if x.dtype.kind == "O":
        x = x.astype(np.float64)
    if x.dtype.kind == "c":
        raise ValueError(f"Complex data not supported\n{x}\n")
    if x.dtype.kind in "USV":
        raise ValueError(
            "dtype='numeric' is not compatible with arrays of bytes/strings."
            "Convert your data to numeric values explicitly instead."
        )
    if x.ndim >= 3:
        raise ValueError(f"Found array with dim {x.ndim}, while dim <= 2 is required{context}.")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        what = "NaN" if np.isnan(x).any() else f"infinity or a value too large for {x.dtype!r}"
        padded = f"{input_name} " if input_name else ""
        raise ValueError(f"Input {padded}contains {what}.")
    n = _num_samples(x)
    if n < 1:
        raise ValueError(
            f"Found array with {n} sample(s) (shape={x.shape}) while a minimum of 1 is "
            f"required{context}."
        )
    if x.ndim == 2 and x.shape[1] < 1:
        raise ValueError(
            f"Found array with {x.shape[1]} feature(s) (shape={x.shape}) while a minimum of 1 "
            f"is required{context}."
        )
    return x


def check_consistent_length(*arrays: object) -> None:
    """``sklearn.utils.validation.check_consistent_length`` for arrays: the same first
    dimension, or scikit-learn's ``ValueError``."""
    lengths = [_num_samples(np.asarray(x)) for x in arrays if x is not None]
    if len(set(lengths)) > 1:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {lengths!r}")


def to_structured(event: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Structured survival array (fields ``event`` as bool, ``time`` as float).

    The layout scikit-survival's ``Surv.from_arrays`` builds.
    """
    event = np.asarray(event)
    y = np.empty(event.shape[0], dtype=[("event", bool), ("time", float)])
    y["event"] = event.astype(bool)
    y["time"] = np.asarray(time, dtype=float)
    return y


def check_y_survival(
    y: np.ndarray, *, allow_all_censored: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(event, time)`` of a structured survival array, checked as scikit-survival does.

    Parameters
    ----------
    y : structured ndarray with two fields
        Event indicator (boolean) first, observed time second.
    allow_all_censored : bool
        Accept an outcome without any event.

    Returns
    -------
    event : ndarray of bool
    time : ndarray of numbers (dtype kept)

    Raises
    ------
    ValueError
        If ``y`` is not such an array, the indicator is not boolean, a time is missing,
        infinite or negative, or every row is censored (unless allowed).
    """
    if not isinstance(y, np.ndarray) or y.dtype.fields is None or len(y.dtype.fields) != 2:
        raise ValueError(
            "y must be a structured array with the first field being a binary class event "
            "indicator and the second field the time of the event/censoring"
        )
    event_field, time_field = y.dtype.names
    event = check_array(y[event_field], input_name="event")
    if not np.issubdtype(event.dtype, np.bool_):
        raise ValueError(f"elements of event indicator must be boolean, but found {event.dtype}")
    if not (allow_all_censored or np.any(event)):
        raise ValueError("all samples are censored")
    time = check_array(y[time_field], input_name="time")
    if not np.issubdtype(time.dtype, np.number):
        raise ValueError(f"time must be numeric, but found {time.dtype} for argument 2")
    if np.any(time < 0):
        raise ValueError("observed time contains values smaller zero")
    return event, time


def check_estimate_1d(estimate: np.ndarray, test_time: np.ndarray) -> np.ndarray:
    """A finite 1-D risk score of the same length as ``test_time``."""
    estimate = check_array(estimate, input_name="estimate")
    if estimate.ndim != 1:
        raise ValueError(
            f"Expected 1D array, got {estimate.ndim}D array instead:\narray={estimate}.\n"
        )
    check_consistent_length(test_time, estimate)
    return estimate


def check_times(test_time: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Sorted unique evaluation times inside the test follow-up ``[min, max)``."""
    times = check_array(np.atleast_1d(times), input_name="times")
    times = np.unique(times)
    if times.max() >= test_time.max() or times.min() < test_time.min():
        raise ValueError(
            "all times must be within follow-up time of test data: "
            f"[{test_time.min()}; {test_time.max()}["
        )
    return times


def check_estimate_2d(
    estimate: np.ndarray, test_time: np.ndarray, times: np.ndarray, estimator: str
) -> tuple[np.ndarray, np.ndarray]:
    """A finite estimate with one row per test sample and one column per time (or 1-D)."""
    estimate = check_array(estimate, input_name="estimate", estimator=estimator)
    times = check_times(test_time, times)
    check_consistent_length(test_time, estimate)
    if estimate.ndim == 2 and estimate.shape[1] != times.shape[0]:
        raise ValueError(
            f"expected estimate with {times.shape[0]} columns, but got {estimate.shape[1]}"
        )
    return estimate, times


def censor_after(y: np.ndarray, horizon: float) -> np.ndarray:
    """Censor observations later than ``horizon`` at the next float after it.

    Times are converted to float first, so integer times work (the next float after an
    integer horizon cannot be stored as an integer).
    """
    event = np.asarray(y[y.dtype.names[0]]).astype(bool)
    time = np.asarray(y[y.dtype.names[1]], dtype=float).copy()
    late = time > horizon
    time[late] = np.nextafter(float(horizon), np.inf)
    return to_structured(np.where(late, False, event), time)
