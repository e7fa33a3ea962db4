"""Logging set-up shared by the rule scripts."""

from __future__ import annotations

import logging
import sys
import warnings

__all__ = ["setup_logging"]


def setup_logging(log_path: str | None = None, name: str = "survival_framework") -> logging.Logger:
    """Send this process's log records, warnings and stderr to ``log_path``.

    Snakemake gives each job its own ``log:`` file; everything a job prints to stderr
    (including library warnings and tracebacks) ends up there.
    """
    if log_path is not None:
        stream = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - process lifetime
        sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    return logging.getLogger(name)
