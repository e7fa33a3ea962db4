"""Schoenfeld-residual tests of proportional hazards on the whole validated table."""

from survival_framework.io import read_json, read_table, write_csv
from survival_framework.job import rule_job
from survival_framework.ph import plot_scaled_residuals, run_ph_tests


def main(smk) -> None:
    with rule_job(smk) as job:
        p = smk.params
        table, details = run_ph_tests(
            read_table(smk.input.clean),
            read_json(smk.input.schema),
            alpha=p.alpha,
            max_rows=p.max_rows,
            seed=p.seed,
            penalizer=p.penalizer,
            min_frequency=p.min_frequency,
            max_levels=p.max_levels,
            transforms=p.transforms,
            log=job.log,
        )
        write_csv(table, smk.output.table)
        plotted = plot_scaled_residuals(
            details, table, smk.output.plot, transform=p.transforms[-1], max_plots=p.max_plots
        )
        flagged = table[table["flagged"]]
        job.log.info(
            "%d of %d tests flagged (p < %g)\n%s", len(flagged), len(table), p.alpha, table
        )
        summary = {k: v for k, v in details.items() if k not in ("event_times", "beta_t")}
        summary["plotted"] = plotted
        job.provenance(extra={"ph": summary})


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
