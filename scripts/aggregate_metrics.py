"""Gather every metrics.json into results/cv_metrics.csv and results/leaderboard.csv."""

from survival_framework.aggregate import leaderboard, metrics_long
from survival_framework.io import read_json, write_csv
from survival_framework.job import rule_job


def main(smk) -> None:
    with rule_job(smk) as job:
        records = [read_json(path) for path in smk.input.metrics]
        long = metrics_long(records)
        board = leaderboard(long, records)
        write_csv(long, smk.output.cv_metrics)
        write_csv(board, smk.output.leaderboard)
        n_failed = sum(r["status"] != "ok" for r in records)
        job.log.info(
            "%d model x fold results, %d failed\n%s",
            len(records),
            n_failed,
            board.to_string(index=False),
        )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
