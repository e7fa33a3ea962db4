"""Assign stratified folds, derive the time grid, fit preprocessing per fold (pandas ETL)."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.etl import etl_arguments, run_pandas_etl
from survival_framework.job import rule_job
from survival_framework.provenance import folds_sha256


def main(smk) -> None:
    with rule_job(smk) as job:
        run_pandas_etl(**etl_arguments(smk), log=job.log)
        job.provenance(folds_sha256=folds_sha256(smk.output.folds), extra={"etl_engine": "pandas"})


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
