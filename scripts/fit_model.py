"""Fit one model on one resample (fold k of CV repeat r: ``{fold}`` = r * n_folds + k);
write metrics.json and predictions.parquet."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

import numpy as np

from survival_framework.arrow import to_numpy
from survival_framework.contract import ROW_COL
from survival_framework.cv import fit_and_evaluate
from survival_framework.io import read_json, write_arrow, write_json
from survival_framework.job import rule_job
from survival_framework.matrix import read_resample
from survival_framework.models import model_seed
from survival_framework.provenance import sha256_arrays
from survival_framework.tuning import tuned_params


def main(smk) -> None:
    with rule_job(smk) as job:
        log, p = job.log, smk.params
        model, fold = smk.wildcards.model, int(smk.wildcards.fold)
        params = dict(p.model_params)
        tuning = None
        if smk.input.get("selection"):  # a tuned model: the inner CV's choice for this fold
            selection = read_json(smk.input.selection)
            # the record's own model and fold say which selection it is
            tuning = {k: v for k, v in selection.items() if k not in ("model", "resample")}
            params = tuned_params(params, selection, log)
        schema = read_json(smk.input.schema)
        dur, ev, id_col = schema["duration_col"], schema["event_col"], schema["id_col"]
        grid = read_json(smk.input.grid)
        keys = [ROW_COL] + ([id_col] if id_col else []) + [dur, ev]
        # each fold's features read once into one matrix (no DataFrame of them), in the
        # dtype the model computes in (float32 for the tree models: half the memory); the
        # reference model reads times and events only
        train, test = read_resample(
            smk.input.train, smk.input.test, read_json(smk.input.preprocessor), schema,
            model, params, keys,
        )  # fmt: skip
        features, dtype = train.features, train.X.dtype
        train_rows = to_numpy(train.keys.column(ROW_COL), np.int64)
        seed = model_seed(p.seed, model, fold)
        log.info(
            "%s fold %d: %d train / %d test rows, %d features (%s), seed %d, %d thread(s)",
            model,
            fold,
            len(train),
            len(test),
            len(features),
            np.dtype(dtype).name,
            seed,
            smk.threads,
        )
        record, predictions = fit_and_evaluate(
            model,
            params,
            train,
            test,
            np.asarray(grid["times"]),
            grid["tau"],
            seed,
            n_jobs=smk.threads,
            batch_size=p.batch_size,
            strict=p.strict,
            # this job holds no other reference to the matrices: the train matrix is freed
            # before predicting, the test matrix before scoring
            release_matrices=True,
        )
        record = {
            "model": model,
            "repeat": fold // p.n_folds,
            "fold": fold,
            "seed": seed,
            "params": params,
            **({"tuning": tuning} if tuning is not None else {}),
            "times": grid["times"],
            "tau": grid["tau"],
            **record,
        }
        for w in record["warnings"]:
            log.warning("%s: %s", w["category"], w["message"])
        if record["status"] == "ok":
            log.info("metrics %s (fit %.1f s)", record["metrics"], record["fit_seconds"])
            out = test.keys
            for name, column in zip(predictions.column_names, predictions.columns, strict=True):
                out = out.append_column(name, column)
        else:
            log.error(
                "%s fold %d failed: %s: %s",
                model,
                fold,
                record["error"]["type"],
                record["error"]["message"],
            )
            out = test.keys.slice(0, 0)
        del predictions
        write_arrow(out, smk.output.predictions)
        write_json(record, smk.output.metrics)
        test_rows = to_numpy(test.keys.column(ROW_COL), np.int64)
        rows_hash = sha256_arrays(np.sort(train_rows), np.sort(test_rows))
        job.provenance(extra={"model": model, "fold": fold, "fold_rows_sha256": rows_hash})


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
