"""Render the leaderboard: the full table (rounded CSV, styled HTML) and the landing page's
summary of its main columns."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import atomic_path, read_table
from survival_framework.job import rule_job
from survival_framework.report import leaderboard_summary, rounded_table, write_html_table


def main(smk) -> None:
    with rule_job(smk) as job:
        p = smk.params
        table = rounded_table(read_table(smk.input.table), digits=p.digits)
        summary = leaderboard_summary(read_table(smk.input.table), p.primary_metric, p.digits)
        for frame, path in ((table, smk.output.csv), (summary, smk.output.summary)):
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False)  # rounded values, shortest repr
        write_html_table(table, smk.output.html, p.title)
        job.log.info("rendered %s (%d rows) -> %s", smk.input.table, len(table), smk.output.html)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
