"""The inner cross-validation of one outer training fold (nested tuning): its rows, inner
folds, time grid and per-inner-fold preprocessing, by the pandas ETL."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.job import rule_job
from survival_framework.tuning import resample_index, write_inner_splits


def main(smk) -> None:
    with rule_job(smk) as job:
        out, p = smk.output, smk.params
        every_row = smk.wildcards.resample == "all"  # the final model's inner CV
        info = write_inner_splits(
            smk.input.clean, smk.input.schema, None if every_row else smk.input.folds,
            resample_index(smk.wildcards.resample, p.n_resamples),
            subset_path=out.subset, folds_path=out.folds, grid_path=out.grid,
            train_paths=list(out.train), test_paths=list(out.test),
            preprocessor_paths=list(out.preprocessor), n_folds=p.n_folds, seed=p.seed,
            min_frequency=p.min_frequency, n_times=p.n_times,
            quantiles=tuple(p.time_quantiles), max_levels=p.max_levels, log=job.log,
        )  # fmt: skip
        what = "every row" if every_row else f"outer resample {smk.wildcards.resample}"
        job.log.info(
            "%s: %d training rows in %d inner folds (seed %d)",
            what, info["n_rows"], len(out.train), info["seed"],
        )  # fmt: skip


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
