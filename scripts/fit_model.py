"""Fit one model on one fold; write metrics.json and predictions.parquet."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from survival_framework.cv import fit_and_evaluate  # noqa: E402
from survival_framework.io import read_json, read_table, write_json, write_parquet  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.models import model_seed  # noqa: E402
from survival_framework.preprocess import output_columns  # noqa: E402
from survival_framework.provenance import (  # noqa: E402
    sha256_arrays,
    snakemake_provenance,
    utc_now,
    write_provenance,
)
from survival_framework.schema import ROW_COL  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    p = smk.params
    model, fold = smk.wildcards.model, int(smk.wildcards.fold)
    grid = read_json(smk.input.grid)
    features = output_columns(read_json(smk.input.preprocessor))
    keys = [ROW_COL] + ([p.id_col] if p.id_col else []) + [p.duration_col, p.event_col]
    train = read_table(smk.input.train, columns=[p.duration_col, p.event_col, *features])
    test = read_table(smk.input.test, columns=[*keys, *features])
    seed = model_seed(p.seed, model, fold)
    log.info(
        "%s fold %d: %d train / %d test rows, %d features, seed %d, %d thread(s)",
        model,
        fold,
        len(train),
        len(test),
        len(features),
        seed,
        smk.threads,
    )
    record, predictions = fit_and_evaluate(
        model,
        dict(p.model_params),
        train,
        test,
        features,
        p.duration_col,
        p.event_col,
        np.asarray(grid["times"]),
        grid["tau"],
        seed,
        n_jobs=smk.threads,
        batch_size=p.batch_size,
        strict=p.strict,
    )
    record = {
        "model": model,
        "fold": fold,
        "seed": seed,
        "params": dict(p.model_params),
        "times": grid["times"],
        "tau": grid["tau"],
        **record,
    }
    for w in record["warnings"]:
        log.warning("%s: %s", w["category"], w["message"])
    if record["status"] == "ok":
        log.info("metrics %s (fit %.1f s)", record["metrics"], record["fit_seconds"])
        out = test[keys].join(predictions)
    else:
        log.error(
            "%s fold %d failed: %s: %s",
            model,
            fold,
            record["error"]["type"],
            record["error"]["message"],
        )
        out = test[keys].iloc[:0]
    write_parquet(out, smk.output.predictions)
    write_json(record, smk.output.metrics)
    train_rows = read_table(smk.input.train, columns=[ROW_COL])[ROW_COL].to_numpy()
    rows_hash = sha256_arrays(np.sort(train_rows), np.sort(test[ROW_COL].to_numpy()))
    write_provenance(
        snakemake_provenance(
            smk, started, extra={"model": model, "fold": fold, "fold_rows_sha256": rows_hash}
        ),
        smk.output.provenance,
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
