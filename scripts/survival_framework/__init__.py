"""Shared logic of the survival-workflow Snakemake repository.

Rule scripts in ``scripts/`` stay thin: they read ``snakemake.input``/``params``,
call functions of this package and write ``snakemake.output``.

The package imports nothing when it is imported (every job imports it); the plan's entry
point ``from survival_framework import run_pipeline`` is resolved on first use
(:mod:`survival_framework.pipeline`).
"""

__version__ = "0.1.0"
__all__ = ["run_pipeline"]


def __getattr__(name: str) -> object:
    if name == "run_pipeline":
        # importlib, not an import statement: no rule script runs the entry point, so it is
        # not part of their code (survival_framework.codehash follows import statements, also
        # inside functions; editing pipeline.py must not rerun every rule)
        import importlib

        return importlib.import_module(".pipeline", __name__).run_pipeline
    raise AttributeError(f"module 'survival_framework' has no attribute {name!r}")
