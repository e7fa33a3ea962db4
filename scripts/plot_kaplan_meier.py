"""Kaplan-Meier curve of the validated table."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import read_json, read_table
from survival_framework.job import rule_job
from survival_framework.report import plot_kaplan_meier


def main(smk) -> None:
    with rule_job(smk) as job:
        schema = read_json(smk.input.schema)
        dur, ev = schema["duration_col"], schema["event_col"]
        clean = read_table(smk.input.clean, columns=[dur, ev])
        plot_kaplan_meier(clean[dur].to_numpy(), clean[ev].to_numpy(), smk.output.plot)
        job.log.info("Kaplan-Meier of %d rows -> %s", len(clean), smk.output.plot)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
