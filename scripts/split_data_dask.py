"""Assign stratified folds, derive the time grid, fit preprocessing per fold (Dask ETL).

Same outputs as scripts/split_data.py; selected by rules/common.smk
(execution.etl_engine: dask, or auto with a Dask scheduler address).
"""

from survival_framework.dask_etl import dask_client, run_dask_etl
from survival_framework.etl import etl_arguments
from survival_framework.job import rule_job
from survival_framework.provenance import folds_sha256


def main(smk) -> None:
    with rule_job(smk) as job:
        scheduler = smk.params.scheduler
        job.log.info("Dask ETL: scheduler %s, %d thread(s)", scheduler, smk.threads)
        mem_mb = getattr(smk.resources, "mem_mb", None)
        with dask_client(scheduler, smk.threads, mem_mb, job.log) as client:
            run_dask_etl(client, **etl_arguments(smk), log=job.log)
        job.provenance(
            folds_sha256=folds_sha256(smk.output.folds),
            extra={"etl_engine": "dask", "dask_scheduler": scheduler},
        )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
