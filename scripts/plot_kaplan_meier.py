"""Kaplan-Meier curve of the validated table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.io import read_json, read_table  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.report import plot_kaplan_meier  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    schema = read_json(smk.input.schema)
    dur, ev = schema["duration_col"], schema["event_col"]
    clean = read_table(smk.input.clean, columns=[dur, ev])
    plot_kaplan_meier(clean[dur].to_numpy(), clean[ev].to_numpy(), smk.output.plot)
    log.info("Kaplan-Meier of %d rows -> %s", len(clean), smk.output.plot)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
