"""Assign stratified folds, derive the time grid, fit preprocessing per fold (pandas ETL)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.etl import etl_arguments, run_pandas_etl  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.provenance import utc_now, write_splits_provenance  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    run_pandas_etl(**etl_arguments(smk), log=log)
    write_splits_provenance(smk, started, engine="pandas")


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
