"""Validate the input table and write results/data/clean.parquet (+ schema.json).

The column roles come from ``params`` (config ``data.*``) here, and only here: this job
records them in ``schema.json``, which every later script reads them from. The data
warnings (each written in full to the log) are also summarised on the console.
"""

import sys

from survival_framework.io import read_table, write_json, write_parquet
from survival_framework.job import rule_job
from survival_framework.provenance import sha256_file
from survival_framework.schema import validate_survival_table, warning_summary
from survival_framework.splits import stratified_sample


def main(smk) -> None:
    with rule_job(smk) as job:
        p = smk.params
        path = smk.input.data
        raw = read_table(path)
        job.log.info("read %s: %d rows x %d columns", path, *raw.shape)
        clean, schema = validate_survival_table(
            raw,
            path,
            duration_col=p.duration_col,
            event_col=p.event_col,
            id_col=p.id_col,
            features=p.features,
            categorical=p.categorical,
            min_rows=p.min_rows,
            max_levels=p.max_levels,
            keep_index_columns=p.keep_index_columns,
        )
        summary = warning_summary(schema["warnings"], smk.log[0], "validate_data")
        if summary:  # stderr is the log (rule_job): the console is the original stderr
            print(summary, file=sys.__stderr__)
        ev = schema["event_col"]
        if p.run_type == "sample":
            clean = stratified_sample(clean, ev, p.sample_size, p.seed)
            job.log.info("run_type=sample: kept a stratified sample of %d rows", len(clean))
        schema.update(
            run_type=p.run_type, n_rows_used=len(clean), n_events_used=int(clean[ev].sum())
        )
        write_parquet(clean, smk.output.clean)
        write_json(schema, smk.output.schema)
        job.log.info(
            "wrote %s (%d rows, %d events)", smk.output.clean, len(clean), schema["n_events_used"]
        )
        job.provenance(data_sha256=sha256_file(path))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
