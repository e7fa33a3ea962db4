"""Score one group of a model's tuning candidates on the inner folds of one outer
training fold: one candidate, or those sharing a regularisation path (one path fit)."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import read_json, write_json
from survival_framework.job import rule_job
from survival_framework.tuning import inner_seed, resample_index, score_candidates


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
        group = score_candidates(
            wc.model, [dict(c) for c in p.candidates["params"]], inner,
            read_json(smk.input.schema), p.metric, seed, n_jobs=smk.threads,
            batch_size=p.batch_size,
        )  # fmt: skip
        indices = list(p.candidates["indices"])
        if group["path"] is not None:
            job.log.info("candidates %s: one %s path fit per inner fold", indices, group["path"])
        skipped = group["results"][0]["skipped"]
        for i, why in skipped.items():
            job.log.warning("inner fold %s skipped: %s", i, why)
        for c, result in zip(indices, group["results"], strict=True):
            for i, why in result["errors"].items():
                job.log.warning("candidate %d, inner fold %s failed: %s", c, i, why)
            job.log.info("%s candidate %d: %s %s", wc.model, c, p.metric, result["scores"])
        write_json(
            {
                "model": wc.model,
                "resample": wc.resample,
                "group": int(wc.group),
                "candidates": indices,
                "path": group["path"],
                "seconds": group["seconds"],
                "results": group["results"],
            },
            smk.output.scores,
        )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
