"""Export a real survival dataset bundled with scikit-survival as the demo input (offline)."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.demo import export_demo
from survival_framework.job import rule_job


def main(smk) -> None:
    with rule_job(smk) as job:
        df = export_demo(smk.wildcards.dataset, smk.output[0])
        job.log.info("wrote %s: %d rows, columns %s", smk.output[0], len(df), list(df.columns))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
