"""Assign stratified folds, derive the time grid, fit preprocessing per fold (Spark ETL).

Same outputs as scripts/split_data.py; selected by rules/common.smk for big inputs.
"""

from survival_framework.etl import etl_arguments
from survival_framework.job import rule_job
from survival_framework.provenance import folds_sha256
from survival_framework.spark_etl import run_spark_etl
from survival_framework.spark_session import spark_master_url, start_spark_session


def main(smk) -> None:
    with rule_job(smk) as job:
        p = smk.params
        job.log.info(
            "Spark ETL: master %s (%s), memory %s, %d thread(s)",
            p.master,
            spark_master_url(p.master, smk.threads),
            p.memory,
            smk.threads,
        )
        spark = start_spark_session(
            p.master, smk.threads, p.memory, log_path=smk.log[0], capture_stderr=True
        )
        try:
            run_spark_etl(spark, **etl_arguments(smk), log=job.log)
        finally:
            spark.stop()
        job.provenance(folds_sha256=folds_sha256(smk.output.folds), extra={"etl_engine": "spark"})


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
