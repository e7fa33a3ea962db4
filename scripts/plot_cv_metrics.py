"""Box/strip plot of the per-fold metrics of every model."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import read_table
from survival_framework.job import rule_job
from survival_framework.report import plot_cv_metrics


def main(smk) -> None:
    with rule_job(smk) as job:
        long = read_table(smk.input.cv_metrics)
        plot_cv_metrics(long, smk.output.plot)
        job.log.info("plotted %d metric values -> %s", len(long), smk.output.plot)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
