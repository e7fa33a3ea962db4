"""What every rule script does around its work: logging, timing, provenance, input errors.

A rule script holds only its work::

    def main(smk) -> None:
        with rule_job(smk) as job:
            table = read_table(smk.input.table)
            job.log.info("read %d rows", len(table))
            ...
            job.provenance(extra={"n_rows": len(table)})  # optional: fields of the record

    if __name__ == "__main__" and "snakemake" in globals():
        main(snakemake)

The script's folder (hence this package) is on ``sys.path`` without help: Snakemake's
``script:`` preamble appends it for every local script, whatever the executor or
``--sdm``; a plain ``python scripts/<name>.py`` puts it first itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .errors import InputValidationError
from .log import setup_logging
from .provenance import snakemake_provenance, utc_now, write_provenance

__all__ = ["RuleJob", "rule_job"]


class RuleJob:
    """One running Snakemake ``script:`` job: its logger, start time and provenance record.

    Parameters
    ----------
    smk : snakemake.script.Snakemake
        The ``snakemake`` object of the job.
    log : logging.Logger
        Logger whose records (with warnings and stderr) go to ``smk.log[0]``.
    """

    def __init__(self, smk: Any, log: logging.Logger) -> None:
        self.smk = smk
        self.log = log
        self.started_utc = utc_now()
        self.record: dict[str, Any] | None = None

    def provenance(
        self,
        *,
        data_sha256: str | None = None,
        folds_sha256: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build the job's provenance record now, to be written when the job succeeds.

        Call it (at most once) only to add fields, or to embed the record in a result
        before that result is written; see
        :func:`~survival_framework.provenance.snakemake_provenance` for the arguments.

        Returns
        -------
        dict
            The record that :func:`rule_job` writes to ``smk.output.provenance``.
        """
        self.record = snakemake_provenance(
            self.smk,
            self.started_utc,
            data_sha256=data_sha256,
            folds_sha256=folds_sha256,
            extra=extra,
        )
        return self.record

    def finish(self) -> None:
        """Write the provenance record, last, if the rule declares an output ``provenance``."""
        if not hasattr(self.smk.output, "provenance"):
            return
        record = self.record if self.record is not None else self.provenance()
        write_provenance(record, self.smk.output.provenance)


@contextmanager
def rule_job(smk: Any) -> Iterator[RuleJob]:
    """Run the body of a rule script as a job.

    On entry, sends log records, warnings and stderr to ``smk.log[0]`` and notes the
    start time. On success, writes ``smk.output.provenance`` (if declared) last, so a
    result directory with a ``provenance.json`` is complete. An
    :class:`~survival_framework.errors.InputValidationError` (the user's input to fix,
    not a bug) ends the process with exit status 1 and one line, no traceback, in the log
    and on the console; any other exception propagates with its traceback (to the log).

    Parameters
    ----------
    smk : snakemake.script.Snakemake
        The ``snakemake`` object of the job.

    Yields
    ------
    RuleJob
    """
    job = RuleJob(smk, setup_logging(smk.log[0]))
    try:
        yield job
    except InputValidationError as exc:
        # stderr itself goes to the log (setup_logging): the console is the original one
        job.log.error("InputValidationError: %s", exc)
        print(f"InputValidationError: {exc}", file=sys.__stderr__)
        raise SystemExit(1) from None
    job.finish()
