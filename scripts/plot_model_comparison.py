"""Forest plot of every model's difference from the best one (results/comparison.csv)."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import read_table
from survival_framework.job import rule_job
from survival_framework.report import plot_comparison


def main(smk) -> None:
    with rule_job(smk) as job:
        comparison = read_table(smk.input.comparison)
        plot_comparison(comparison, smk.output.plot)
        job.log.info("plotted %d comparisons -> %s", len(comparison), smk.output.plot)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
