"""Assign stratified folds, derive the time grid, fit preprocessing per fold (Spark ETL).

Same outputs as scripts/split_data.py; selected by rules/common.smk for big inputs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.etl import etl_arguments  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.provenance import utc_now, write_splits_provenance  # noqa: E402
from survival_framework.spark_etl import run_spark_etl  # noqa: E402
from survival_framework.spark_session import spark_master_url, start_spark_session  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    p = smk.params
    log.info(
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
        run_spark_etl(spark, **etl_arguments(smk), log=log)
    finally:
        spark.stop()
    write_splits_provenance(smk, started, engine="spark")


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
