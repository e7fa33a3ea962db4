"""Runtime and peak memory of every benchmarked job (benchmarks/**/*.tsv)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.io import write_csv  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402
from survival_framework.report import plot_benchmarks, read_benchmarks  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    bench = read_benchmarks(smk.params.benchmark_dir)
    write_csv(bench, smk.output.table)
    plot_benchmarks(bench, smk.output.plot)
    log.info(
        "%d benchmarked jobs, %.1f s in total, max RSS %.0f MB",
        len(bench),
        bench["seconds"].sum(),
        bench["max_rss_mb"].max() if len(bench) else 0.0,
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
