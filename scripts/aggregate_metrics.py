"""Gather every metrics.json into results/cv_metrics.csv and results/leaderboard.csv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.aggregate import leaderboard, metrics_long  # noqa: E402
from survival_framework.io import read_json, write_csv  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.provenance import (  # noqa: E402
    snakemake_provenance,
    utc_now,
    write_provenance,
)


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    records = [read_json(path) for path in smk.input.metrics]
    long = metrics_long(records)
    board = leaderboard(long, records)
    write_csv(long, smk.output.cv_metrics)
    write_csv(board, smk.output.leaderboard)
    n_failed = sum(r["status"] != "ok" for r in records)
    log.info(
        "%d model x fold results, %d failed\n%s",
        len(records),
        n_failed,
        board.to_string(index=False),
    )
    write_provenance(snakemake_provenance(smk, started), smk.output.provenance)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
