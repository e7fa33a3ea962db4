"""Validate the input table and write results/data/clean.parquet (+ schema.json).

The column roles come from ``params`` (config ``data.*``) here, and only here: this job
records them in ``schema.json``, which every later script reads them from. The data
warnings (each written in full to the log) are also summarised on the console.

A Parquet input is streamed (:func:`~survival_framework.schema.validate_file`): checked a
column at a time, written a row batch at a time, so the job holds one column and one batch,
not the table; a sample (``run_type: sample``) is chosen from the event column before any
row is written. CSV and pickle inputs are read whole.
"""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

import sys

from survival_framework.io import write_json
from survival_framework.job import rule_job
from survival_framework.provenance import sha256_file
from survival_framework.schema import validate_file, warning_summary


def main(smk) -> None:
    with rule_job(smk) as job:
        p = smk.params
        path = smk.input.data
        sample = p.run_type == "sample"
        schema = validate_file(
            path,
            smk.output.clean,
            duration_col=p.duration_col,
            event_col=p.event_col,
            id_col=p.id_col,
            features=p.features,
            categorical=p.categorical,
            min_rows=p.min_rows,
            max_levels=p.max_levels,
            keep_index_columns=p.keep_index_columns,
            sample_size=p.sample_size if sample else None,
            seed=p.seed,
            log=job.log,
        )
        summary = warning_summary(schema["warnings"], smk.log[0], "validate_data")
        if summary:  # stderr is the log (rule_job): the console is the original stderr
            print(summary, file=sys.__stderr__)
        if sample:
            job.log.info(
                "run_type=sample: kept a stratified sample of %d rows", schema["n_rows_used"]
            )
        n_rows_used, n_events_used = schema.pop("n_rows_used"), schema.pop("n_events_used")
        schema.update(run_type=p.run_type, n_rows_used=n_rows_used, n_events_used=n_events_used)
        write_json(schema, smk.output.schema)
        job.log.info("wrote %s (%d rows, %d events)", smk.output.clean, n_rows_used, n_events_used)
        job.provenance(data_sha256=sha256_file(path))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
