"""Scoring cost: the four metrics of one fit job, ours against scikit-survival's.

On synthetic proportional-hazards data (tied times, a PH survival matrix on a 20-point grid),
``--test-rows`` test rows and four times as many training rows (a 5-fold job), one process,
the variants alternating in the same run:

``ours``
    ``survival_framework.metrics.evaluate_predictions`` (all four, one censoring estimate).
``before``
    The workflow's metric functions at commit ``--before`` (its metric modules, read with
    ``git show``; the default 15dc9e7: block-sorted concordance, scikit-survival's IBS and
    AUC, a censoring estimate per metric).
``sksurv``
    scikit-survival's ``concordance_index_censored``, ``concordance_index_ipcw``,
    ``integrated_brier_score`` and ``cumulative_dynamic_auc`` (at most
    ``--sksurv-max-rows`` test rows: its concordance loop is O(n^2)).

Writes ``--out`` (default ``docs/bench/metrics.csv``: seconds per metric, the load average
before and after) and checks that the values agree to 1e-12.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from survival_framework.metrics import censor_after, evaluate_predictions, to_structured  # noqa: E402


def _data(n_test: int, seed: int = 0):
    rng = np.random.default_rng(seed)

    def outcome(n):
        lp = rng.normal(size=n)
        t = np.round(rng.exponential(np.exp(-lp)) * 100, 1) + 0.1
        c = np.round(rng.exponential(1.5, n) * 100, 1) + 0.1
        return lp, to_structured(t <= c, np.minimum(t, c))

    _, y_train = outcome(4 * n_test)
    lp, y_test = outcome(n_test)
    times = np.quantile(y_test["time"][y_test["event"]], np.linspace(0.1, 0.8, 20))
    surv = np.exp(-np.exp(lp)[:, None] * (times / times.max())[None, :])
    return y_train, y_test, lp, surv, times


def _sksurv(y_train, y_test, risk, surv, times, tau) -> dict[str, float]:
    from sksurv import metrics as sk

    y_eval = censor_after(y_test, float(times.max()))
    out, secs = {}, {}
    for name, fn in (
        (
            "harrell_c",
            lambda: sk.concordance_index_censored(y_test["event"], y_test["time"], risk)[0],
        ),
        ("uno_c", lambda: sk.concordance_index_ipcw(y_train, y_test, risk, tau=tau)[0]),
        ("ibs", lambda: sk.integrated_brier_score(y_train, y_eval, surv, times)),
        ("mean_auc", lambda: sk.cumulative_dynamic_auc(y_train, y_eval, 1 - surv, times)[1]),
    ):
        start = time.perf_counter()
        out[name] = fn()
        secs[name] = time.perf_counter() - start
    return out, secs


# the metric modules (those missing at a commit are skipped: metrics.py imports what it has)
_METRIC_MODULES = ("metrics", "concordance", "kaplan_meier", "outcome", "time_dependent")


def _before_module(commit: str):
    """The metrics module of ``commit`` as an importable package in a temporary folder."""
    import importlib
    import subprocess
    import tempfile

    root = Path(tempfile.mkdtemp()) / "before_metrics"
    root.mkdir()
    (root / "__init__.py").write_text("")
    for name in _METRIC_MODULES:
        src = subprocess.run(
            ["git", "show", f"{commit}:scripts/survival_framework/{name}.py"],
            cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        if src.returncode == 0:
            (root / f"{name}.py").write_text(src.stdout)
    sys.path.insert(0, str(root.parent))
    return importlib.import_module("before_metrics.metrics")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--test-rows", type=int, nargs="+", default=[20_000, 200_000, 2_000_000])
    ap.add_argument("--sksurv-max-rows", type=int, default=20_000)
    ap.add_argument("--before", default="15dc9e7")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "metrics.csv")
    args = ap.parse_args(argv)
    before = _before_module(args.before)
    rows = []
    for n in args.test_rows:
        y_train, y_test, risk, surv, times = _data(n)
        tau = float(times[-1])
        load = os.getloadavg()[0]
        start = time.perf_counter()
        ours = evaluate_predictions(y_train, y_test, risk, surv, times, tau)
        rows.append(
            {"variant": "ours", "test_rows": n, "train_rows": 4 * n, "metric": "all four",
             "seconds": time.perf_counter() - start, "load_before": load,
             "load_after": os.getloadavg()[0]}
        )  # fmt: skip
        load = os.getloadavg()[0]
        start = time.perf_counter()
        old = before.evaluate_predictions(y_train, y_test, risk, surv, times, tau)
        rows.append(
            {"variant": "before", "test_rows": n, "train_rows": 4 * n, "metric": "all four",
             "seconds": time.perf_counter() - start, "load_before": load,
             "load_after": os.getloadavg()[0]}
        )  # fmt: skip
        for metric, value in old.items():
            assert abs(value - ours[metric]) <= 1e-12, (metric, value, ours[metric])
        if n <= args.sksurv_max_rows:
            load = os.getloadavg()[0]
            ref, secs = _sksurv(y_train, y_test, risk, surv, times, tau)
            for metric, s in secs.items():
                assert abs(ref[metric] - ours[metric]) <= 1e-12, (metric, ref[metric], ours[metric])
                rows.append(
                    {"variant": "sksurv", "test_rows": n, "train_rows": 4 * n, "metric": metric,
                     "seconds": s, "load_before": load, "load_after": os.getloadavg()[0]}
                )  # fmt: skip
        print(pd.DataFrame(rows).tail(5).to_string(), flush=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
