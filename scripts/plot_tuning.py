"""Plot the inner score of every tuning candidate against each tuned parameter."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import read_json
from survival_framework.job import rule_job
from survival_framework.report import plot_tuning


def main(smk) -> None:
    with rule_job(smk) as job:
        selections = [read_json(path) for path in smk.input.selections]
        plot_tuning(selections, smk.output.plot)
        job.log.info("plotted %d selections -> %s", len(selections), smk.output.plot)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
