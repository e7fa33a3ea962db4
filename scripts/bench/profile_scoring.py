"""Seconds of each step of one fit job's scoring (``evaluate_predictions``), one process.

``python scripts/bench/profile_scoring.py [n_test]`` (default 2,000,000 test rows and four
times as many training rows, the 10M-row fold shape) on ``bench_metrics``' synthetic
proportional-hazards data; prints one line per step and the whole call, and the load average.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metrics import _data  # noqa: E402

from survival_framework import metrics as M  # noqa: E402


def _timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"{label:22s} {time.perf_counter() - t0:7.2f} s", flush=True)
    return out


def main(n_test: int = 2_000_000) -> None:
    y_train, y_test, lp, surv, times = _data(n_test)
    surv = np.ascontiguousarray(surv)
    tau = float(times.max())
    surv_at = np.exp(-np.exp(lp) * (y_test["time"] / times.max()))
    print(f"{n_test} test / {4 * n_test} train rows, load {os.getloadavg()[0]:.2f}")
    cens = _timed("censoring KM", lambda: M.CensoringDistribution(y_train))
    conc = _timed("Harrell + Uno C", lambda: M._harrell_and_uno(cens, y_test, lp, tau))
    y_eval = M.censor_after(y_test, tau)
    _timed("IBS", lambda: M.integrated_brier_score(cens, y_eval, surv, times))
    _timed("mean AUC", lambda: M._mean_auc(cens, y_eval, surv, times, order=conc[2][::-1]))
    _timed("reference IBS (ERV)", lambda: M._reference_ibs(cens, y_eval, times))
    _timed("RCLL", lambda: M.rcll(y_test, surv, times))
    _timed("D-calibration", lambda: M.d_calibration(y_test, surv_at, M.D_CALIBRATION_BINS))
    column = {float(t): j for j, t in enumerate(times)}
    at = {t0: surv[:, column[t0]] for t0 in M.ici_horizons(times).values()}
    _timed("ICI (3 horizons)", lambda: M.calibration_errors_at(y_test, at))
    _timed(
        "evaluate_predictions",
        lambda: M.evaluate_predictions(y_train, y_test, lp, surv, times, tau, surv_at),
    )
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
