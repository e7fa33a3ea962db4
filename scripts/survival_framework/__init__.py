"""Shared logic of the survival-workflow Snakemake repository.

Rule scripts in ``scripts/`` stay thin: they read ``snakemake.input``/``params``,
call functions of this package and write ``snakemake.output``.
"""

__version__ = "0.1.0"
