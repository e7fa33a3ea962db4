"""Refit a model (or the leaderboard's best) on all rows; save it as one joblib artifact."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

import joblib

from survival_framework.final import best_model, fit_final_model
from survival_framework.io import atomic_path, read_json, read_table
from survival_framework.job import rule_job
from survival_framework.provenance import code_version, package_versions
from survival_framework.tuning import tuned_params


def main(smk) -> None:
    with rule_job(smk) as job:
        p = smk.params
        if hasattr(smk.input, "leaderboard"):
            model = best_model(read_table(smk.input.leaderboard))
            params = dict(p.all_model_params[model])
            job.log.info("best model by leaderboard uno_c: %s", model)
            selection = smk.input.get(f"selection_{model}")
        else:
            model, params = smk.wildcards.model, dict(p.model_params)
            selection = smk.input.get("selection")
        tuning = None
        if selection:  # a tuned model: the inner CV on every row chose its parameters
            tuning = read_json(selection)
            params = tuned_params(params, tuning, job.log)
        artifact = fit_final_model(
            model,
            params,
            smk.input.clean,
            read_json(smk.input.schema),
            read_json(smk.input.grid)["times"],
            seed=p.seed,
            n_folds=p.n_folds,
            min_frequency=p.min_frequency,
            max_levels=p.max_levels,
            n_jobs=smk.threads,
            log=job.log,
        )
        artifact["provenance"] = job.provenance(
            extra={
                "model": model,
                "model_params": params,
                **({"tuning": tuning} if tuning is not None else {}),
                "fit_seed": artifact["seed"],
                "n_train": artifact["n_train"],
                "n_events": artifact["n_events"],
                "fit_seconds": artifact["fit_seconds"],
            }
        )
        artifact["versions"] = package_versions()
        artifact["code"] = code_version()
        with atomic_path(smk.output.model) as tmp:
            joblib.dump(artifact, tmp, compress=3)
        job.log.info("wrote %s (%s)", smk.output.model, model)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
