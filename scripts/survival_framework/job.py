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

import hashlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .errors import InputValidationError
from .log import setup_logging
from .provenance import sha256_file, snakemake_provenance, utc_now, write_provenance

__all__ = ["INPUT_ERROR_STATUS", "RuleJob", "rule_job", "job_label", "error_line"]

INPUT_ERROR_STATUS = 1
"""Exit status of a job stopped by an :class:`~survival_framework.errors.InputValidationError`."""


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


def job_label(smk: Any) -> str:
    """``<rule>`` or ``<rule> <name>=<value>, ...`` (the job's wildcards)."""
    wildcards = ", ".join(f"{k}={v}" for k, v in dict(smk.wildcards.items()).items())
    return f"{smk.rule} {wildcards}" if wildcards else str(smk.rule)


def error_line(exc: BaseException) -> str:
    """``<ExceptionType>: <first line of the message>`` (the type alone without a message)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _attempt(smk: Any) -> int | None:
    """Snakemake's attempt number of this job, if its rule passes it as the resource
    ``attempt`` (``attempt_number`` in rules/common.smk); None if unknown. The
    ``snakemake`` object of a script carries no attempt number of its own."""
    value = getattr(getattr(smk, "resources", None), "attempt", None)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _fingerprint(smk: Any) -> str:
    """sha256 of what a deterministic input error depends on: rule, wildcards, params and
    the content of every input file."""
    files = {str(f): sha256_file(f) if Path(f).is_file() else None for f in smk.input}
    key = {
        "rule": str(smk.rule),
        "wildcards": dict(smk.wildcards.items()),
        "params": dict(smk.params.items()),
        "inputs": files,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _input_error_marker(log_path: str) -> Path:
    """Where a job records its deterministic input error: beside its log."""
    log = Path(log_path)
    return log.with_name(f".{log.name}.input-error.json")


def _repeated_input_error(smk: Any, log: logging.Logger, marker: Path) -> str | None:
    """The message of the input error an earlier attempt of this job stopped with on the
    same inputs, or None. On attempt 1 (or an unknown attempt) a marker left by an earlier
    run is stale: it is removed and the job runs."""
    attempt = _attempt(smk)
    if attempt is None or attempt <= 1 or not marker.is_file():
        marker.unlink(missing_ok=True)
        return None
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if recorded.get("fingerprint") != _fingerprint(smk):
        return None
    log.error(
        "attempt %d: same inputs as attempt %s, which stopped with an input error; not "
        "retried (a deterministic error; fix the input and rerun)",
        attempt,
        recorded.get("attempt"),
    )
    return str(recorded.get("message"))


def _record_input_error(smk: Any, marker: Path, message: str) -> None:
    """Record this job's input error for its retries (best effort: never hides the error)."""
    record = {"attempt": _attempt(smk) or 1, "message": message, "fingerprint": _fingerprint(smk)}
    with suppress(OSError):
        marker.write_text(json.dumps(record), encoding="utf-8")


@contextmanager
def rule_job(smk: Any) -> Iterator[RuleJob]:
    """Run the body of a rule script as a job.

    On entry, sends log records, warnings and stderr to ``smk.log[0]`` and notes the
    start time. On success, writes ``smk.output.provenance`` (if declared) last, so a
    result directory with a ``provenance.json`` is complete.

    On failure, the console (the original stderr; stderr itself goes to the log) gets one
    line, so that Snakemake's report of the failed job is not the only message:

    * an :class:`~survival_framework.errors.InputValidationError` (the user's input to
      fix, not a bug) ends the process with exit status :data:`INPUT_ERROR_STATUS` and
      the line ``InputValidationError: <message>``, in the log too, without a traceback.
      The error is recorded beside the log; a retry of the job (attempt > 1, known from
      the resource ``attempt`` that rules/common.smk sets) on the same inputs, params
      and wildcards exits at once with the same status, without printing it again:
      retrying a deterministic error cannot help, while a job killed for lack of memory
      (which records nothing) is still retried;
    * any other exception prints ``<rule> <wildcards>: <ExceptionType>: <first line of
      the message> (full traceback: <log>)`` and propagates, its traceback to the log.

    Parameters
    ----------
    smk : snakemake.script.Snakemake
        The ``snakemake`` object of the job.

    Yields
    ------
    RuleJob
    """
    log_path = smk.log[0] if len(smk.log) else None
    job = RuleJob(smk, setup_logging(log_path))
    marker = _input_error_marker(log_path) if log_path else None
    if marker is not None:
        repeated = _repeated_input_error(smk, job.log, marker)
        if repeated is not None:
            job.log.error("InputValidationError: %s", repeated)
            raise SystemExit(INPUT_ERROR_STATUS)
    try:
        yield job
        job.finish()
    except InputValidationError as exc:
        job.log.error("InputValidationError: %s", exc)
        print(f"InputValidationError: {exc}", file=sys.__stderr__, flush=True)
        if marker is not None:
            _record_input_error(smk, marker, str(exc))
        raise SystemExit(INPUT_ERROR_STATUS) from None
    except Exception as exc:
        where = f" (full traceback: {log_path})" if log_path else ""
        print(f"{job_label(smk)}: {error_line(exc)}{where}", file=sys.__stderr__, flush=True)
        raise
