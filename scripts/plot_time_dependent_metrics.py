"""Time-dependent AUC and Brier score per model, and calibration at a few horizons.

AUC(t) and Brier(t) are computed for every resample (fold k of CV repeat r, ``fold_{r*K+k}``),
each with its own training rows as the IPCW reference; calibration pools the out-of-fold
predictions of repeat 0 only, where every row is predicted exactly once.
"""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from pathlib import Path

import numpy as np
import pandas as pd

from survival_framework.contract import FOLD_COL, REPEAT_COL, ROW_COL, prediction_column
from survival_framework.io import read_json, read_table, write_csv
from survival_framework.job import rule_job
from survival_framework.metrics import ici_horizons
from survival_framework.report import (
    calibration_table,
    plot_calibration,
    plot_time_dependent,
    time_dependent_metrics,
)


def main(smk) -> None:
    with rule_job(smk) as job:
        p = smk.params
        schema = read_json(smk.input.schema)
        dur, ev = schema["duration_col"], schema["event_col"]
        times = read_json(smk.input.grid)["times"]
        clean = read_table(smk.input.clean, columns=[ROW_COL, dur, ev])
        # the training rows of resample f: the rows of its repeat whose test resample is not f
        folds = read_table(smk.input.folds, columns=[ROW_COL, REPEAT_COL, FOLD_COL])
        train_time, train_event, repeat_of = {}, {}, {}
        for repeat, sub in folds.groupby(REPEAT_COL, sort=True):
            fold_of_row = sub.set_index(ROW_COL)[FOLD_COL].reindex(clean[ROW_COL]).to_numpy()
            for k in np.unique(fold_of_row):
                train_time[k] = clean[dur].to_numpy()[fold_of_row != k]
                train_event[k] = clean[ev].to_numpy()[fold_of_row != k]
                repeat_of[k] = int(repeat)
        # the horizons of the ICI metrics: the grid times a quarter, half, three quarters along
        horizons = sorted(set(ici_horizons(times).values()))
        horizon_cols = [prediction_column(h) for h in horizons]
        by_model: dict[str, list[tuple[int, str]]] = {}
        for path in smk.input.predictions:
            model, fold = Path(path).parts[-3], int(Path(path).parts[-2].removeprefix("fold_"))
            by_model.setdefault(model, []).append((fold, path))
        # one fold's predictions in memory at a time, plus one model's pooled horizon
        # columns for its calibration (at 10M rows all predictions together are ~10 GB)
        tds, cals = [], []
        for model, items in by_model.items():
            pooled = []
            for fold, path in items:
                pred = read_table(path)
                tds.append(
                    time_dependent_metrics(
                        [(model, fold, pred)], train_time, train_event, times, dur, ev
                    )
                )
                if repeat_of[fold] == 0:  # each row once: the first repeat's folds
                    pooled.append(pred[[dur, ev, *horizon_cols]] if len(pred) else pred.iloc[:0])
                del pred
            pooled = pd.concat(pooled, ignore_index=True)
            cals.append(
                calibration_table({model: pooled}, horizons, dur, ev, n_bins=p.calibration_bins)
            )
            del pooled
        td = pd.concat(tds, ignore_index=True)
        write_csv(td, smk.output.table)
        plot_time_dependent(td, "auc", smk.output.auc)
        plot_time_dependent(td, "brier", smk.output.brier)
        cal = pd.concat(cals, ignore_index=True)
        write_csv(cal, smk.output.calibration_table)
        plot_calibration(cal, smk.output.calibration)
        job.log.info(
            "time-dependent metrics of %d model x fold predictions; horizons %s",
            len(smk.input.predictions),
            horizons,
        )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
