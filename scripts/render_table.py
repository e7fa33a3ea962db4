"""Render a result CSV (leaderboard, PH tests) as a rounded CSV and a styled HTML table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.io import atomic_path, read_table  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.report import rounded_table, write_html_table  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    table = rounded_table(read_table(smk.input.table), digits=smk.params.digits)
    with atomic_path(smk.output.csv) as tmp:
        table.to_csv(tmp, index=False)  # rounded values, shortest repr
    write_html_table(table, smk.output.html, smk.params.title)
    log.info("rendered %s (%d rows) -> %s", smk.input.table, len(table), smk.output.html)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
