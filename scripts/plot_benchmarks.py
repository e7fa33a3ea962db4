"""Runtime and peak memory of every benchmarked job (benchmarks/**/*.tsv)."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import write_csv
from survival_framework.job import rule_job
from survival_framework.report import plot_benchmarks, read_benchmarks


def main(smk) -> None:
    with rule_job(smk) as job:
        bench = read_benchmarks(smk.params.benchmark_dir, smk.params.log_dir)
        write_csv(bench, smk.output.table)
        plot_benchmarks(bench, smk.output.plot)
        job.log.info(
            "%d benchmarked jobs, %.1f s in total, max RSS %.0f MB",
            len(bench),
            bench["seconds"].sum(),
            bench["max_rss_mb"].max() if len(bench) else 0.0,
        )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
