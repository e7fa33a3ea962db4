"""Generate a synthetic survival table (Snakemake script and command-line tool).

Under Snakemake (rule ``generate_synthetic_data``) it reads ``snakemake.params``
(``n_rows``, ``seed``, ``censoring_rate``, optional ``chunk_rows``) and writes
``snakemake.output[0]``, logging to ``snakemake.log[0]``. From a shell::

    python scripts/generate_synthetic_data.py \\
        --rows 287000 --seed 2024 --out resources/synthetic/survival_287000.parquet
"""

# No `from __future__` import: Snakemake prepends a preamble to `script:` files.
import argparse
import logging
import sys
import time
from pathlib import Path

from survival_framework.job import rule_job
from survival_framework.log import setup_logging
from survival_framework.synthetic import (
    DEFAULT_CHUNK_ROWS,
    write_survival_table,
)

LOGGER = logging.getLogger("generate_synthetic_data")


def run(
    out: str | Path,
    n_rows: int,
    seed: int,
    censoring_rate: float = 0.35,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Path:
    """Write the table and log a one-line summary.

    Parameters
    ----------
    out : str or pathlib.Path
        Output path (``.parquet`` or ``.csv``).
    n_rows : int
        Number of rows.
    seed : int
        Generator seed.
    censoring_rate : float, default 0.35
        Target censored fraction.
    chunk_rows : int, default 1_000_000
        Rows per written chunk (bounds memory).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    start = time.perf_counter()
    LOGGER.info(
        "generating %d rows (seed=%d, censoring_rate=%.3f, chunk_rows=%d) -> %s",
        n_rows,
        seed,
        censoring_rate,
        chunk_rows,
        out,
    )
    path = write_survival_table(
        out, n_rows, seed, chunk_rows=chunk_rows, censoring_rate=censoring_rate
    )
    LOGGER.info(
        "wrote %s (%.1f MiB) in %.1f s",
        path,
        path.stat().st_size / 2**20,
        time.perf_counter() - start,
    )
    return path


def main_snakemake(smk) -> None:
    """Entry point under Snakemake's ``script:`` directive (logging to ``smk.log[0]``)."""
    with rule_job(smk):
        params = smk.params
        run(
            out=smk.output[0],
            n_rows=int(params.n_rows),
            seed=int(params.seed),
            censoring_rate=float(params.censoring_rate),
            chunk_rows=int(getattr(params, "chunk_rows", DEFAULT_CHUNK_ROWS)),
        )


def cli(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True, help="number of rows")
    parser.add_argument("--seed", type=int, default=2024, help="generator seed (default 2024)")
    parser.add_argument("--out", required=True, help="output path (.parquet or .csv)")
    parser.add_argument(
        "--censoring-rate", type=float, default=0.35, help="target censored fraction (default 0.35)"
    )
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=DEFAULT_CHUNK_ROWS,
        help=f"rows per written chunk (default {DEFAULT_CHUNK_ROWS})",
    )
    args = parser.parse_args(argv)
    setup_logging()
    run(args.out, args.rows, args.seed, args.censoring_rate, args.chunk_rows)
    return 0


if "snakemake" in globals():
    main_snakemake(snakemake)  # noqa: F821 - injected by Snakemake
elif __name__ == "__main__":
    sys.exit(cli())
