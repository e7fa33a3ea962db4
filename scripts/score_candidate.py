"""Score one tuning candidate of one model on the inner folds of one outer training fold."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import read_json, write_json
from survival_framework.job import rule_job
from survival_framework.tuning import inner_seed, resample_index, score_candidate


def main(smk) -> None:
    with rule_job(smk) as job:
        p, wc = smk.params, smk.wildcards
        inner = {
            "grid_path": smk.input.grid,
            "train_paths": list(smk.input.train),
            "test_paths": list(smk.input.test),
            "preprocessor_paths": list(smk.input.preprocessor),
        }
        seed = inner_seed(p.seed, resample_index(wc.resample, p.n_resamples))
        result = score_candidate(
            wc.model, dict(p.model_params), inner, read_json(smk.input.schema), p.metric,
            seed, n_jobs=smk.threads, batch_size=p.batch_size,
        )  # fmt: skip
        result = {
            "model": wc.model,
            "resample": wc.resample,
            "candidate": int(wc.candidate),
            **result,
        }
        for i, why in result["skipped"].items():
            job.log.warning("inner fold %s skipped: %s", i, why)
        for i, why in result["errors"].items():
            job.log.warning("inner fold %s failed: %s", i, why)
        job.log.info("%s candidate %s: %s %s", wc.model, wc.candidate, p.metric, result["scores"])
        write_json(result, smk.output.scores)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
