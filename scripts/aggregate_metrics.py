"""Gather every metrics.json into results/cv_metrics.csv and results/leaderboard.csv.

Failed fits are counted, never ranked; a run without any successful fit still writes both
files (the end-of-run hook in rules/common.smk prints the failures and fails that run).
"""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.aggregate import compare, failure_summary, leaderboard, metrics_long
from survival_framework.io import read_json, write_csv
from survival_framework.job import rule_job


def main(smk) -> None:
    with rule_job(smk) as job:
        records = [read_json(path) for path in smk.input.metrics]
        long = metrics_long(records)
        primary = smk.params.primary_metric
        comparison = compare(long, records, primary)
        board = leaderboard(long, records, primary, comparison)
        write_csv(long, smk.output.cv_metrics)
        write_csv(board, smk.output.leaderboard)
        write_csv(comparison, smk.output.comparison)
        n_ranked = int(board["rank"].notna().sum())
        job.log.info(
            "%d model x fold results; %d of %d models ranked\n%s",
            len(records),
            n_ranked,
            len(board),
            board.to_string(index=False),
        )
        summary = failure_summary(records)
        if summary:
            (job.log.error if n_ranked == 0 else job.log.warning)("%s", summary)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
