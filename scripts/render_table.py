"""Render a result CSV (leaderboard, PH tests) as a rounded CSV and a styled HTML table."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import atomic_path, read_table
from survival_framework.job import rule_job
from survival_framework.report import rounded_table, write_html_table


def main(smk) -> None:
    with rule_job(smk) as job:
        table = rounded_table(read_table(smk.input.table), digits=smk.params.digits)
        with atomic_path(smk.output.csv) as tmp:
            table.to_csv(tmp, index=False)  # rounded values, shortest repr
        write_html_table(table, smk.output.html, smk.params.title)
        job.log.info("rendered %s (%d rows) -> %s", smk.input.table, len(table), smk.output.html)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
