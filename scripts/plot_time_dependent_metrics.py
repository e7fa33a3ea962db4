"""Time-dependent AUC and Brier score per model, and calibration at a few horizons."""

from pathlib import Path

import numpy as np
import pandas as pd

from survival_framework.contract import FOLD_COL, ROW_COL
from survival_framework.io import read_json, read_table, write_csv
from survival_framework.job import rule_job
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
        folds = read_table(smk.input.folds).set_index(ROW_COL)[FOLD_COL]
        fold_of_row = folds.reindex(clean[ROW_COL]).to_numpy()
        train_time = {k: clean[dur].to_numpy()[fold_of_row != k] for k in np.unique(fold_of_row)}
        train_event = {k: clean[ev].to_numpy()[fold_of_row != k] for k in np.unique(fold_of_row)}
        preds = []
        for path in smk.input.predictions:
            model, fold = Path(path).parts[-3], int(Path(path).parts[-2].removeprefix("fold_"))
            preds.append((model, fold, read_table(path)))
        td = time_dependent_metrics(preds, train_time, train_event, times, dur, ev)
        write_csv(td, smk.output.table)
        plot_time_dependent(td, "auc", smk.output.auc)
        plot_time_dependent(td, "brier", smk.output.brier)
        idx = sorted({int(round(q * (len(times) - 1))) for q in p.horizon_quantiles})
        horizons = [times[i] for i in idx]
        pooled = {}
        for model, _, df in preds:
            pooled.setdefault(model, []).append(df)
        pooled = {m: pd.concat(dfs, ignore_index=True) for m, dfs in pooled.items()}
        cal = calibration_table(pooled, horizons, dur, ev, n_bins=p.calibration_bins)
        write_csv(cal, smk.output.calibration_table)
        plot_calibration(cal, smk.output.calibration)
        job.log.info(
            "time-dependent metrics of %d model x fold predictions; horizons %s",
            len(preds),
            horizons,
        )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
