"""Seconds of each step of one fit job's scoring (``evaluate_predictions``), one process.

Synthetic (default 2,000,000 test rows and four times as many training rows, the 10M-row
fold shape, ``bench_metrics``' proportional-hazards data)::

    python scripts/bench/profile_scoring.py [--n-test N]

or the inputs of a real fit job of a finished run (its ``predictions.parquet`` and
``metrics.json``, and the fold's ``train.parquet``)::

    python scripts/bench/profile_scoring.py --job <workdir>/results/cv/coxph/fold_0

``--package DIR`` imports ``survival_framework`` from ``DIR`` (e.g. ``git archive <commit>
scripts | tar -x -C /tmp/old`` then ``--package /tmp/old/scripts``), so two versions are
timed on the same inputs; run them alternately, in one session, and compare the ratio.
Prints one line per step, the whole call, the load average, and (for ``--job``) the
largest difference from the metrics the job wrote (D-calibration excepted: the job's
predictions at each row's own time are not saved, so its input here is the grid step).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"{label:22s} {time.perf_counter() - t0:7.2f} s", flush=True)
    return out


def _synthetic(n_test: int):
    sys.path.insert(0, str(HERE))
    from bench_metrics import _data

    y_train, y_test, lp, surv, times = _data(n_test)
    surv = np.ascontiguousarray(surv)
    surv_at = np.exp(-np.exp(lp) * (y_test["time"] / times.max()))
    return y_train, y_test, lp, surv, times, float(times.max()), surv_at, None


def _job(job: Path):
    """A real fit job's scoring inputs: ``results/cv/<model>/fold_<k>`` of a finished run."""
    import pyarrow.parquet as pq

    from survival_framework.outcome import to_structured

    results = job.resolve().parents[2]
    meta = json.loads((job / "metrics.json").read_text())
    schema = json.loads((results / "data" / "schema.json").read_text())
    dur, ev = schema["duration_col"], schema["event_col"]
    fold = job.name  # fold_<k>
    train = pq.read_table(results / "splits" / fold / "train.parquet", columns=[dur, ev])
    pred = pq.read_table(job / "predictions.parquet")
    y_train = to_structured(train[ev].to_numpy().astype(bool), train[dur].to_numpy())
    y_test = to_structured(pred[ev].to_numpy().astype(bool), pred[dur].to_numpy())
    times = np.asarray(meta["times"], dtype=float)
    surv = np.column_stack([pred[f"surv@{t:g}"].to_numpy() for t in meta["times"]])
    step = np.clip(np.searchsorted(times, y_test["time"], side="right") - 1, 0, None)
    surv_at = surv[np.arange(step.shape[0]), step]
    return y_train, y_test, pred["risk"].to_numpy(), surv, times, meta["tau"], surv_at, meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=2_000_000)
    parser.add_argument("--job", type=Path, help="results/cv/<model>/fold_<k> of a run")
    parser.add_argument("--package", type=Path, help="folder holding survival_framework")
    args = parser.parse_args(argv)
    if args.package is not None:
        sys.path.insert(0, str(args.package.resolve()))
    from survival_framework import metrics as M

    print(f"survival_framework from {Path(M.__file__).parent}")
    inputs = _job(args.job) if args.job else _synthetic(args.n_test)
    y_train, y_test, risk, surv, times, tau, surv_at, meta = inputs
    print(f"{len(y_test)} test / {len(y_train)} train rows, load {os.getloadavg()[0]:.2f}")
    # every fit job has loaded scipy.linalg (its fit) before scoring
    import scipy.linalg  # noqa: F401

    cens = _timed("censoring KM", lambda: M.CensoringDistribution(y_train))
    conc = _timed("Harrell + Uno C", lambda: M._harrell_and_uno(cens, y_test, risk, tau))
    y_eval = M.censor_after(y_test, tau)
    _timed("IBS", lambda: M.integrated_brier_score(cens, y_eval, surv, times))
    _timed("mean AUC", lambda: M._mean_auc(cens, y_eval, surv, times, order=conc[2][::-1]))
    if len(inspect.signature(M._reference_ibs).parameters) == 3:
        _timed("reference IBS (ERV)", lambda: M._reference_ibs(cens, y_eval, times))
    else:  # the version before 2026-12-02 took the training outcome too
        _timed("reference IBS (ERV)", lambda: M._reference_ibs(cens, y_train, y_eval, times))
    _timed("RCLL", lambda: M.rcll(y_test, surv, times))
    _timed("D-calibration", lambda: M.d_calibration(y_test, surv_at, M.D_CALIBRATION_BINS))
    column = {float(t): j for j, t in enumerate(times)}
    at = {t0: surv[:, column[t0]] for t0 in M.ici_horizons(times).values()}
    _timed("ICI (3 horizons)", lambda: M.calibration_errors_at(y_test, at))
    out = _timed(
        "evaluate_predictions",
        lambda: M.evaluate_predictions(y_train, y_test, risk, surv, times, tau, surv_at),
    )
    print(f"load {os.getloadavg()[0]:.2f}")
    if meta is not None:
        diff = max(abs(out[k] - meta["metrics"][k]) for k in out if not k.startswith("dcal"))
        print(f"largest difference from the job's metrics.json: {diff:.3g}")


if __name__ == "__main__":
    main()
