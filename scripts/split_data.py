"""Assign stratified folds, derive the time grid, fit preprocessing per fold (pandas ETL)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.etl import run_pandas_etl  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.provenance import utc_now, write_splits_provenance  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    run_pandas_etl(
        clean_path=smk.input.clean,
        schema_path=smk.input.schema,
        out_dir=Path(smk.output.folds).parent,
        n_folds=smk.params.n_folds,
        seed=smk.params.seed,
        min_frequency=smk.params.min_frequency,
        max_levels=smk.params.max_levels,
        n_times=smk.params.n_times,
        quantiles=tuple(smk.params.time_quantiles),
        log=log,
    )
    write_splits_provenance(smk, started, engine="pandas")


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
