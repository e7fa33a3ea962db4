"""Score a new CSV/Parquet table with a final model artifact, in batches."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.predict import load_artifact, predict_file  # noqa: E402
from survival_framework.provenance import (  # noqa: E402
    snakemake_provenance,
    utc_now,
    write_provenance,
)


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    artifact = load_artifact(smk.input.model)
    log.info(
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
        log=log,
    )
    log.info(
        "wrote %s: %d rows in %.1f s", smk.output.predictions, summary["n_rows"], summary["seconds"]
    )
    record = snakemake_provenance(
        smk,
        started,
        extra={
            "model": artifact["model_name"],
            "model_params": artifact["params"],
            "model_data_sha256": artifact["provenance"].get("data_sha256"),
            "prediction": summary,
        },
    )
    write_provenance(record, smk.output.provenance)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
