"""The line a job run by the warm job worker ends its log with: the fork's peak memory and
CPU time (:mod:`survival_framework.worker` writes it; the report reads it back, because
Snakemake's ``benchmark:`` record of such a job measures only its waiting process).
Standard library only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["format_usage_note", "read_job_usage"]

_START = "job worker: ran in process"
_PATTERN = re.compile(re.escape(_START) + r" \d+, .*?peak RSS ([\d.]+) MB .*?CPU ([\d.]+) s")


def format_usage_note(
    pid: int, max_rss_mb: float, cpu_s: float, own_modules: int, own_libraries: list[str]
) -> str:
    """The note for the log of a job that the worker's fork ``pid`` ran."""
    return (
        f"{_START} {pid}, forked from the worker: peak RSS {max_rss_mb:.1f} MB (the "
        f"worker's imports included), CPU {cpu_s:.2f} s; the job imported {own_modules} "
        f"module(s) itself, new libraries: {', '.join(own_libraries) or 'none'}"
    )


def read_job_usage(log_path: str | os.PathLike) -> dict[str, float] | None:
    """Peak RSS (MB) and CPU seconds of a job that ran in the worker, from the last note in
    its log; None for a job that ran in its own process (or without a log)."""
    try:
        text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _PATTERN.findall(text)
    if not found:
        return None
    rss, cpu = found[-1]
    return {"max_rss_mb": float(rss), "cpu_s": float(cpu)}
