"""Figures and tables of the Snakemake report (``snakemake --report results/report.html``).

Everything here reads finished result files and writes a PNG, an HTML table or a small CSV;
nothing feeds back into the results. Time-dependent metrics are recomputed from the saved
out-of-fold predictions (``results/cv/{model}/fold_{k}/predictions.parquet``), the folds and
the time grid, with the training rows of each fold as the censoring reference, exactly as
the fold jobs do for the averaged metrics.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .contract import RISK_COL, prediction_column
from .metrics import HIGHER_IS_BETTER, censor_after, event_probability, to_structured

__all__ = [
    "rounded_table",
    "leaderboard_summary",
    "plot_comparison",
    "write_html_table",
    "plot_cv_metrics",
    "plot_tuning",
    "plot_kaplan_meier",
    "time_dependent_metrics",
    "plot_time_dependent",
    "calibration_table",
    "plot_calibration",
    "read_benchmarks",
    "plot_benchmarks",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rounded_table(df: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Copy of ``df`` with float columns rounded (for display only).

    Integer columns that read back as float because a value is missing (``rank`` of an
    unranked model, ``df`` of a failed test) are shown as integers with an empty cell.
    """
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            values = out[col].dropna()
            if out[col].isna().any() and len(values) and (values == values.round()).all():
                out[col] = out[col].astype("Int64")
            else:
                out[col] = out[col].round(digits)
    return out


SUMMARY_METRICS = ("ibs_erv", "ici_50")
"""Metrics of the report's landing-page table besides the primary one (their means)."""


def leaderboard_summary(board: pd.DataFrame, primary_metric: str, digits: int = 4) -> pd.DataFrame:
    """The leaderboard's main columns, narrow enough for the report's landing page.

    ``rank``, ``model``, the primary metric as ``mean ± std``, the means of
    :data:`SUMMARY_METRICS` (the IBS's gain over ``km`` and the calibration error at the
    grid's midpoint), ``tied_with_best`` (as ``tied``) and ``mean_rank``; the full table
    (every metric, both statistics, ``n_failed``) is the report's Leaderboard page.
    Columns the leaderboard lacks are left out.
    """
    out = pd.DataFrame({"rank": board["rank"], "model": board["model"]})
    mean, std = board[f"{primary_metric}_mean"], board[f"{primary_metric}_std"]
    out[primary_metric] = [
        # no-break spaces: the cell never wraps inside "mean ± std"
        ""
        if pd.isna(m)
        else f"{m:.{digits}f}" + ("" if pd.isna(s) else f"\u00a0±\u00a0{s:.{digits}f}")
        for m, s in zip(mean, std, strict=True)
    ]
    for m in SUMMARY_METRICS:
        if m != primary_metric and f"{m}_mean" in board:
            out[m] = board[f"{m}_mean"].round(digits)
    if "tied_with_best" in board:
        out["tied"] = board["tied_with_best"]
    if "mean_rank" in board:
        out["mean_rank"] = board["mean_rank"].round(2)
    return out


def plot_comparison(comparison: pd.DataFrame, path: str | os.PathLike) -> None:
    """Forest plot: every model's mean difference from the best model with its corrected
    95 % interval, one panel per metric (``results/comparison.csv``, rows against the best).

    The best model is the ``reference`` of the first row (the comparison table lists the
    rows against the best model first); its own row (difference 0) marks the reference.
    """
    plt = _plt()
    if comparison.empty:
        _nothing_to_plot(path)
        return
    best = str(comparison["reference"].iloc[0])
    rows = comparison[comparison["reference"] == best]
    metrics = list(dict.fromkeys(rows["metric"]))
    models = list(dict.fromkeys(rows["model"]))  # leaderboard order, best first
    ncols = min(4, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.4 * ncols, 0.32 * len(models) * nrows + 1.3 * nrows),
        squeeze=False,
    )
    y = np.arange(len(models))[::-1]
    for ax, metric in zip(axes.flat, metrics, strict=False):
        sub = rows[rows["metric"] == metric].set_index("model").reindex(models)
        diff = sub["diff"].to_numpy(float)
        lo = diff - sub["ci_low"].to_numpy(float)
        hi = sub["ci_high"].to_numpy(float) - diff
        ax.errorbar(diff, y, xerr=[lo, hi], fmt="o", ms=4, capsize=3, color="tab:blue")
        ax.axvline(0.0, color="k", lw=0.8, ls="--")
        ax.set_yticks(y, models)
        lower = HIGHER_IS_BETTER.get(metric) is False
        ax.set_title(metric + (" (lower is better)" if lower else ""), fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(f"Difference from the best model ({best}), 95 % corrected resampled t-interval")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_html_table(df: pd.DataFrame, path: str | os.PathLike, title: str) -> None:
    """A standalone, styled HTML page with ``df`` as a table."""
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:13px}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
        "td:nth-child(2){text-align:left}"
    )
    body = df.to_html(index=False, border=0, na_rep="", escape=True)
    Path(path).write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body><h2>{html.escape(title)}</h2>"
        f"{body}</body></html>\n",
        encoding="utf-8",
    )


def plot_cv_metrics(long: pd.DataFrame, path: str | os.PathLike) -> None:
    """Per-fold metric values per model: a box plot with the folds as points, per metric."""
    plt = _plt()
    metrics = list(dict.fromkeys(long["metric"]))
    models = sorted(long["model"].unique())
    ncols = min(4, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    rng = np.random.default_rng(0)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        sub = long[long["metric"] == metric]
        data = [sub.loc[sub["model"] == m, "value"].dropna().to_numpy() for m in models]
        ax.boxplot(data, tick_labels=models, showfliers=False)
        for i, values in enumerate(data, start=1):
            x = i + rng.uniform(-0.12, 0.12, size=len(values))
            ax.scatter(x, values, s=14, color="tab:blue", alpha=0.8, zorder=3)
        lower = HIGHER_IS_BETTER.get(metric) is False
        ax.set_title(metric + (" (lower is better)" if lower else ""))
        ax.tick_params(axis="x", rotation=45)
    fig.suptitle("Cross-validated metrics per fold")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_tuning(selections: Sequence[dict], path: str | os.PathLike) -> None:
    """Inner score of every candidate against each tuned parameter, per model.

    ``selections``: the ``selection.json`` records of the outer resamples (nested tuning,
    ``results/tuning/{model}/fold_{k}/selection.json``). One panel per model and
    parameter, one colour per outer resample; the chosen candidate is circled. A numeric
    parameter spanning more than two decades gets a log axis; other values are categories.
    """
    plt = _plt()
    panels = list(
        dict.fromkeys(
            (sel["model"], p) for sel in selections for c in sel["candidates"] for p in c["params"]
            if len({str(cc["params"].get(p)) for cc in sel["candidates"]}) > 1
        )
    )  # fmt: skip
    if not panels:
        panels = [(sel["model"], None) for sel in selections[:1]]
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (model, param) in zip(axes.flat, panels, strict=False):
        sels = [s for s in selections if s["model"] == model]
        values = [c["params"].get(param) for s in sels for c in s["candidates"]]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        levels = sorted({str(v) for v in values}) if not numeric else None
        for k, sel in enumerate(sels):
            xs = [c["params"].get(param) for c in sel["candidates"]]
            x = np.array(xs, float) if numeric else np.array([levels.index(str(v)) for v in xs])
            y = np.array([np.nan if m is None else m for m in sel["mean"]], float)
            colour = colours[k % len(colours)]
            ax.scatter(x, y, s=16, color=colour, label=f"fold {sel['resample']}", zorder=3)
            if sel["best"] is not None:
                ax.scatter(
                    x[sel["best"]], y[sel["best"]], s=90, facecolors="none",
                    edgecolors=colour, zorder=4,
                )  # fmt: skip
        if numeric and values and min(values) > 0 and max(values) > 100 * min(values):
            ax.set_xscale("log")
        if levels is not None:
            ax.set_xticks(range(len(levels)), levels, rotation=45)
        metric = sels[0]["metric"]
        lower = HIGHER_IS_BETTER.get(metric) is False
        ax.set_xlabel(str(param))
        ax.set_ylabel(f"inner {metric}" + (" (lower is better)" if lower else ""))
        ax.set_title(model)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Nested tuning: mean inner score per candidate\n(the chosen one circled)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_kaplan_meier(time: np.ndarray, event: np.ndarray, path: str | os.PathLike) -> None:
    """Kaplan-Meier estimate of the whole table, with its 95% confidence band."""
    from sksurv.nonparametric import kaplan_meier_estimator

    plt = _plt()
    x, y, (lo, hi) = kaplan_meier_estimator(
        np.asarray(event).astype(bool), np.asarray(time, float), conf_type="log-log"
    )
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step(x, y, where="post", color="tab:blue", label="Kaplan-Meier")
    ax.fill_between(x, lo, hi, step="post", alpha=0.25, color="tab:blue", label="95% CI")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time")
    ax.set_ylabel("survival probability")
    ax.set_title(f"Kaplan-Meier curve ({len(time)} rows, {int(np.sum(event))} events)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def time_dependent_metrics(
    predictions: Iterable[tuple[str, int, pd.DataFrame]],
    train_time: dict[int, np.ndarray],
    train_event: dict[int, np.ndarray],
    times: Sequence[float],
    duration_col: str,
    event_col: str,
) -> pd.DataFrame:
    """Cumulative/dynamic AUC and Brier score at each grid time, per model and fold.

    Parameters
    ----------
    predictions : iterable of (model, fold, DataFrame)
        Out-of-fold predictions (``duration``, ``event``, ``surv@<t>`` columns).
    train_time, train_event : dict fold -> ndarray
        Training rows of each fold (the censoring distribution of the IPCW weights).
    times : sequence of float
        The evaluation grid.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, fold, time, auc, brier``.
    """
    from .kaplan_meier import CensoringDistribution
    from .time_dependent import brier_score, cumulative_dynamic_auc

    times = np.asarray(times, float)
    cols = [prediction_column(t) for t in times]
    rows = []
    for model, fold, pred in predictions:
        if pred.empty:
            continue
        cens = CensoringDistribution(to_structured(train_event[fold], train_time[fold]))
        y_test = to_structured(pred[event_col].to_numpy(), pred[duration_col].to_numpy(float))
        y_eval = censor_after(y_test, float(times.max()))
        surv = np.ascontiguousarray(pred[cols].to_numpy(float))
        # rows by decreasing risk: no sort at all for a model whose curves follow its risk
        order = np.argsort(-pred[RISK_COL].to_numpy(float), kind="stable")
        auc, _ = cumulative_dynamic_auc(
            cens, y_eval, surv, times, marker=event_probability, order=order
        )
        _, brier = brier_score(cens, y_eval, surv, times)
        for t, a, b in zip(times, auc, brier, strict=True):
            rows.append((model, fold, float(t), float(a), float(b)))
    return pd.DataFrame(rows, columns=["model", "fold", "time", "auc", "brier"])


def _nothing_to_plot(path: str | os.PathLike) -> None:
    """A figure saying that every fit failed, instead of failing the report."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.text(0.5, 0.5, "no successful model x fold fit: nothing to plot", ha="center")
    ax.set_axis_off()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_time_dependent(td: pd.DataFrame, metric: str, path: str | os.PathLike) -> None:
    """Mean over folds (line) and fold range (band) of ``metric`` against time, per model."""
    plt = _plt()
    labels = {"auc": "cumulative/dynamic AUC(t)", "brier": "Brier score(t)"}
    if td.empty:
        _nothing_to_plot(path)
        return
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for model, sub in td.groupby("model", sort=True):
        g = sub.groupby("time")[metric]
        mean, lo, hi = g.mean(), g.min(), g.max()
        ax.plot(mean.index, mean.to_numpy(), marker="o", ms=3, label=model)
        ax.fill_between(mean.index, lo.to_numpy(), hi.to_numpy(), alpha=0.12)
    ax.set_xlabel("time")
    ax.set_ylabel(labels.get(metric, metric))
    ax.set_title(f"{labels.get(metric, metric)}: mean over folds, band = fold range")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _km_at(time: np.ndarray, event: np.ndarray, t: float) -> float:
    from .kaplan_meier import kaplan_meier_estimator

    if len(time) == 0 or not np.any(event):
        return 1.0 if len(time) else np.nan
    x, y = kaplan_meier_estimator(np.asarray(event).astype(bool), np.asarray(time, float))
    idx = np.searchsorted(x, t, side="right") - 1
    return float(y[idx]) if idx >= 0 else 1.0


def calibration_table(
    pooled: dict[str, pd.DataFrame],
    horizons: Sequence[float],
    duration_col: str,
    event_col: str,
    n_bins: int = 10,
) -> pd.DataFrame:
    """Predicted vs observed survival at each horizon, in equal-count bins of the prediction.

    The observed value of a bin is its Kaplan-Meier estimate at the horizon (censoring
    handled), the predicted value the mean predicted ``S(horizon | x)``; out-of-fold
    predictions of all folds are pooled per model.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, horizon, bin, n, predicted, observed``.
    """
    rows = []
    for model, pred in pooled.items():
        if pred.empty:  # every fold of this model failed (status 'failed' in metrics.json)
            continue
        for h in horizons:
            s = pred[prediction_column(h)].to_numpy(float)
            k = int(min(n_bins, max(1, len(s) // 20)))
            ranks = np.argsort(np.argsort(s, kind="stable"), kind="stable")
            bins = (ranks * k) // len(s)
            for b in range(k):
                m = bins == b
                obs = _km_at(pred[duration_col].to_numpy()[m], pred[event_col].to_numpy()[m], h)
                rows.append((model, float(h), b, int(m.sum()), float(s[m].mean()), obs))
    return pd.DataFrame(rows, columns=["model", "horizon", "bin", "n", "predicted", "observed"])


def plot_calibration(cal: pd.DataFrame, path: str | os.PathLike) -> None:
    """Calibration curves (observed vs predicted survival), one panel per horizon."""
    plt = _plt()
    if cal.empty:
        _nothing_to_plot(path)
        return
    horizons = sorted(cal["horizon"].unique())
    fig, axes = plt.subplots(1, len(horizons), figsize=(4.2 * len(horizons), 4.2), squeeze=False)
    for ax, h in zip(axes[0], horizons, strict=True):
        sub = cal[cal["horizon"] == h]
        for model, g in sub.groupby("model", sort=True):
            ax.plot(g["predicted"], g["observed"], marker="o", ms=3, label=model)
        ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted S(t)")
        ax.set_ylabel("observed S(t) (Kaplan-Meier)")
        ax.set_title(f"t = {h:g}")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Calibration of out-of-fold survival predictions (deciles)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def read_benchmarks(
    root: str | os.PathLike, log_root: str | os.PathLike | None = None
) -> pd.DataFrame:
    """Every Snakemake benchmark TSV under ``root``: job (path without suffix), seconds, MB.

    A job that ran in the warm job worker (:mod:`survival_framework.worker`) has a
    benchmark record of its waiting process, not of the fork that did the work: with
    ``log_root``, its peak memory is taken from the note at the end of its log
    (``<log_root>/<job>.log``, the mirrored path), and ``memory_of`` says which it is.

    Returns
    -------
    pandas.DataFrame
        Columns ``job, stage, seconds, max_rss_mb, memory_of`` (``job process`` or
        ``worker fork``; seconds and memory: mean over repeats), sorted by job.
    """
    from .jobusage import read_job_usage

    root = Path(root)
    rows = []
    for f in sorted(root.rglob("*.tsv")):
        try:
            df = pd.read_csv(f, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError):
            continue
        if "s" not in df or df.empty:
            continue
        rss = float(pd.to_numeric(df.get("max_rss", pd.Series([np.nan])), errors="coerce").mean())
        job = f.relative_to(root).with_suffix("").as_posix()
        memory_of = "job process"
        usage = read_job_usage(Path(log_root) / f"{job}.log") if log_root is not None else None
        if usage is not None:
            rss, memory_of = usage["max_rss_mb"], "worker fork"
        rows.append((job, job.split("/")[0], float(df["s"].mean()), rss, memory_of))
    return pd.DataFrame(rows, columns=["job", "stage", "seconds", "max_rss_mb", "memory_of"])


def plot_benchmarks(bench: pd.DataFrame, path: str | os.PathLike) -> None:
    """Runtime and peak memory (max RSS) per job, as horizontal bars."""
    plt = _plt()
    n = max(len(bench), 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.5 + 0.22 * n), sharey=True)
    y = np.arange(len(bench))
    stages = sorted(bench["stage"].unique())
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(stages)}
    c = [colors[s] for s in bench["stage"]]
    axes[0].barh(y, bench["seconds"], color=c)
    axes[0].set_xlabel("runtime (s)")
    axes[1].barh(y, bench["max_rss_mb"], color=c)
    axes[1].set_xlabel("max RSS (MB)")
    axes[0].set_yticks(y, bench["job"], fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(f"Benchmarks of {len(bench)} jobs (benchmarks/*.tsv)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
