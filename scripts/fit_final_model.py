"""Refit a model (or the leaderboard's best) on all rows; save it as one joblib artifact."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import joblib  # noqa: E402

from survival_framework.final import best_model, fit_final_model  # noqa: E402
from survival_framework.io import atomic_path, read_json, read_table  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.provenance import (  # noqa: E402
    code_version,
    package_versions,
    snakemake_provenance,
    utc_now,
    write_provenance,
)


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    started = utc_now()
    p = smk.params
    if hasattr(smk.input, "leaderboard"):
        model = best_model(read_table(smk.input.leaderboard))
        params = dict(p.all_model_params[model])
        log.info("best model by leaderboard uno_c: %s", model)
    else:
        model, params = smk.wildcards.model, dict(p.model_params)
    artifact = fit_final_model(
        model,
        params,
        read_table(smk.input.clean),
        read_json(smk.input.schema),
        read_json(smk.input.grid)["times"],
        seed=p.seed,
        n_folds=p.n_folds,
        min_frequency=p.min_frequency,
        max_levels=p.max_levels,
        n_jobs=smk.threads,
        log=log,
    )
    record = snakemake_provenance(
        smk,
        started,
        extra={
            "model": model,
            "model_params": params,
            "fit_seed": artifact["seed"],
            "n_train": artifact["n_train"],
            "n_events": artifact["n_events"],
            "fit_seconds": artifact["fit_seconds"],
        },
    )
    artifact["provenance"] = record
    artifact["versions"] = package_versions()
    artifact["code"] = code_version()
    with atomic_path(smk.output.model) as tmp:
        joblib.dump(artifact, tmp, compress=3)
    write_provenance(record, smk.output.provenance)
    log.info("wrote %s (%s)", smk.output.model, model)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
