"""Validate the input table and write results/data/clean.parquet (+ schema.json)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.errors import InputValidationError  # noqa: E402
from survival_framework.io import read_table, write_json, write_parquet  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.provenance import (  # noqa: E402
    sha256_file,
    snakemake_provenance,
    utc_now,
    write_provenance,
)
from survival_framework.schema import validate_survival_table  # noqa: E402
from survival_framework.splits import stratified_sample  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    p = smk.params
    path = smk.input.data
    raw = read_table(path)
    log.info("read %s: %d rows x %d columns", path, *raw.shape)
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
    )
    if p.run_type == "sample":
        clean = stratified_sample(clean, p.event_col, p.sample_size, p.seed)
        log.info("run_type=sample: kept a stratified sample of %d rows", len(clean))
    schema.update(
        run_type=p.run_type, n_rows_used=len(clean), n_events_used=int(clean[p.event_col].sum())
    )
    write_parquet(clean, smk.output.clean)
    write_json(schema, smk.output.schema)
    log.info("wrote %s (%d rows, %d events)", smk.output.clean, len(clean), schema["n_events_used"])
    write_provenance(
        snakemake_provenance(smk, started, data_sha256=sha256_file(path)), smk.output.provenance
    )


if __name__ == "__main__" and "snakemake" in globals():
    try:
        main(snakemake)  # noqa: F821
    except InputValidationError as exc:
        # The user's input to fix, not a bug: one line, no traceback, in the log and on the
        # console (stderr itself goes to the log, see setup_logging).
        logging.getLogger("survival_framework").error("InputValidationError: %s", exc)
        print(f"InputValidationError: {exc}", file=sys.__stderr__)
        sys.exit(1)
