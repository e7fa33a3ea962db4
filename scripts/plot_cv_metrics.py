"""Box/strip plot of the per-fold metrics of every model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.io import read_table  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.report import plot_cv_metrics  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    long = read_table(smk.input.cv_metrics)
    plot_cv_metrics(long, smk.output.plot)
    log.info("plotted %d metric values -> %s", len(long), smk.output.plot)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
