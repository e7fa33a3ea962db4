"""Schoenfeld-residual tests of proportional hazards on the whole validated table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.io import read_json, read_table, write_csv  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.ph import plot_scaled_residuals, run_ph_tests  # noqa: E402
from survival_framework.provenance import (  # noqa: E402
    snakemake_provenance,
    utc_now,
    write_provenance,
)


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    p = smk.params
    schema = read_json(smk.input.schema)
    clean = read_table(smk.input.clean)
    table, details = run_ph_tests(
        clean,
        schema,
        alpha=p.alpha,
        max_rows=p.max_rows,
        seed=p.seed,
        penalizer=p.penalizer,
        min_frequency=p.min_frequency,
        max_levels=p.max_levels,
        transforms=p.transforms,
        log=log,
    )
    write_csv(table, smk.output.table)
    plotted = plot_scaled_residuals(
        details, table, smk.output.plot, transform=p.transforms[-1], max_plots=p.max_plots
    )
    flagged = table[table["flagged"]]
    log.info("%d of %d tests flagged (p < %g)\n%s", len(flagged), len(table), p.alpha, table)
    summary = {k: v for k, v in details.items() if k not in ("event_times", "beta_t")}
    summary["plotted"] = plotted
    write_provenance(
        snakemake_provenance(smk, started, extra={"ph": summary}), smk.output.provenance
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
