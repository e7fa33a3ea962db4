"""Score a new CSV/Parquet table with a final model artifact, in batches.

Prediction times beyond the training data are scored, with one warning line in the log and
on the console and a record in the output (survival_framework.predict, module docstring).
"""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

import sys

from survival_framework.job import rule_job
from survival_framework.predict import load_artifact, predict_file


def main(smk) -> None:
    with rule_job(smk) as job:
        artifact = load_artifact(smk.input.model)
        job.log.info(
            "scoring %s with %s (%s, trained on %d rows)",
            smk.input.data,
            smk.input.model,
            artifact["model_name"],
            artifact["n_train"],
        )
        summary = predict_file(
            artifact,
            smk.input.data,
            smk.output.predictions,
            times=smk.params.times,
            batch_size=smk.params.batch_size,
            log=job.log,
        )
        warning = summary["time_range"]["warning"]
        if warning:  # logged by predict_file; the console too (stderr is the log)
            print(f"predict_new_data {smk.input.data}: {warning}", file=sys.__stderr__)
        job.log.info(
            "wrote %s: %d rows in %.1f s",
            smk.output.predictions,
            summary["n_rows"],
            summary["seconds"],
        )
        job.provenance(
            extra={
                "model": artifact["model_name"],
                "model_params": artifact["params"],
                "model_data_sha256": artifact["provenance"].get("data_sha256"),
                "prediction": summary,
            }
        )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
