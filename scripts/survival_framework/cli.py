"""The ``survival-workflow`` command: :func:`~survival_framework.pipeline.run_pipeline` as flags.

::

    survival-workflow --input data.csv --run-type production --execution-mode mp --n-jobs 8
    survival-workflow --input data.pkl --execution-mode spark_cluster \\
        --spark-master spark://master:7077 --spark-memory 8g
    survival-workflow --input data.csv --profile profiles/slurm -- --keep-going

Options this command does not know (and everything after ``--``) go to Snakemake as they
are, targets included.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    from .pipeline import EXECUTION_MODES

    p = argparse.ArgumentParser(
        prog="survival-workflow",
        description="Cross-validated benchmark of survival models (a Snakemake workflow). "
        "Unknown options and everything after -- are passed to Snakemake.",
    )
    p.add_argument("--input", required=True, help="input table: CSV, Parquet or pickle")
    p.add_argument("--duration-col", help="time column (default: the config's data.duration_col)")
    p.add_argument("--event-col", help="event column (default: the config's data.event_col)")
    p.add_argument("--run-type", choices=("sample", "production"), default="sample")
    p.add_argument("--execution-mode", choices=EXECUTION_MODES, default="auto")
    p.add_argument("--n-jobs", type=int, default=-1, help="cores for the jobs (-1: all)")
    p.add_argument("--spark-master", help="cluster master URL (spark_cluster)")
    p.add_argument("--spark-memory", help="Spark driver/executor memory, e.g. 8g")
    p.add_argument("--config", help="YAML file merged over config/config.yaml")
    p.add_argument("--profile", help="Snakemake profile, e.g. profiles/slurm")
    p.add_argument("--workdir", help="where results/ go (default: the current directory)")
    p.add_argument("--dry-run", "-n", action="store_true", help="only show what would run")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status (0 ok, 1 a failed run, 2 a bad argument)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    tail: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)

    from .pipeline import PipelineError, run_pipeline

    try:
        result = run_pipeline(
            args.input,
            duration_col=args.duration_col,
            event_col=args.event_col,
            run_type=args.run_type,
            execution_mode=args.execution_mode,
            n_jobs=args.n_jobs,
            spark_master=args.spark_master,
            spark_memory=args.spark_memory,
            config=args.config,
            profile=args.profile,
            workdir=args.workdir,
            dry_run=args.dry_run,
            snakemake_args=[*unknown, *tail],
        )
    except PipelineError as exc:
        print(f"survival-workflow: {exc}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"survival-workflow: error: {exc}", file=sys.stderr)
        return 2
    if result.leaderboard is not None:
        print(f"leaderboard ({result.results / 'leaderboard.csv'}):")
        print(result.leaderboard.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
