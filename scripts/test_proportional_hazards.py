"""Schoenfeld-residual tests of proportional hazards on the whole validated table.

A diagnostic: it never fails the run for a problem of the data or the fit. Dropped design
columns, a fallback penalizer and a failure (with its reason) are written to the table
(``status``, ``reason``; survival_framework.ph.run_ph_tests), the provenance (``ph``), the
log and one console line; a failed test gets a placeholder plot showing the reason.
"""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

import sys

from survival_framework.io import read_json, read_table, write_csv
from survival_framework.job import rule_job
from survival_framework.ph import (
    STATUS_FAILED,
    STATUS_OK,
    plot_message,
    plot_scaled_residuals,
    run_ph_tests,
)


def _console_note(details: dict) -> str | None:
    """One console line when the tests failed or the design/fit was adjusted, else None."""
    if details["status"] == STATUS_FAILED:
        return f"could not be computed: {details['reason']}"
    notes = []
    dropped = len(details["dropped_constant"]) + len(details["dropped_aliased"])
    if dropped:
        names = [*details["dropped_constant"], *details["dropped_aliased"]]
        notes.append(f"{dropped} constant/aliased design column(s) dropped {names}")
    if details["reason"]:
        notes.append(details["reason"])
    return "; ".join(notes) or None


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
        try:
            plotted = plot_scaled_residuals(
                details, table, smk.output.plot, transform=p.transforms[-1], max_plots=p.max_plots
            )
        except Exception as exc:  # the figure is a diagnostic's figure: never fatal
            job.log.exception("residual plot failed")
            plot_message(smk.output.plot, "Residual plot failed", f"{type(exc).__name__}: {exc}")
            plotted = []
        job.log.info(
            "%d of %d tests flagged (p < %g)\n%s",
            int(table["flagged"].sum()),
            int((table["status"] == STATUS_OK).sum()),
            p.alpha,
            table.to_string(index=False),
        )
        note = _console_note(details)
        if note:
            # one line on the console (stderr itself goes to the log, see setup_logging)
            job.log.warning("proportional-hazards tests: %s", note)
            print(
                f"test_proportional_hazards: {note} (see {smk.output.table})", file=sys.__stderr__
            )
        summary = {k: v for k, v in details.items() if k not in ("event_times", "beta_t")}
        summary["plotted"] = plotted
        job.provenance(extra={"ph": summary})


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
