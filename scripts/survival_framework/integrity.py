"""Content, not time stamps: the input's hash and checks of the intermediate files.

Snakemake decides reruns from modification times and recorded params. Two cases fool it:
an input replaced by a different file with an older time stamp (nothing reruns), and an
intermediate file that is truncated or otherwise unreadable (the jobs reading it fail, and
their valid outputs are deleted). Before any job, the Snakefile therefore compares the
input's content hash with the one ``validate_data`` recorded (:func:`input_changed`) and
gives every unreadable file under ``results/`` the oldest possible time stamp
(:func:`mark_broken`): the rule writing such a file runs again and everything downstream is
recomputed from sound files. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from .contract import PARQUET_SUFFIXES

__all__ = ["broken_reason", "content_sha256", "find_broken", "input_changed", "mark_broken"]

_MAGIC = b"PAR1"


def broken_reason(path: str | os.PathLike) -> str | None:
    """Why a result file cannot be read (None when it looks sound).

    Parquet files must start and end with the magic bytes and hold their whole footer
    (a truncated file loses its end); JSON files must parse. Other files are not checked.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            size = path.stat().st_size
            if size < 12:
                return f"truncated Parquet file ({size} bytes)"
            with path.open("rb") as f:
                head = f.read(4)
                f.seek(size - 8)
                footer_len, tail = struct.unpack("<I4s", f.read(8))
            if head != _MAGIC or tail != _MAGIC:
                return "not a complete Parquet file (magic bytes missing: truncated?)"
            if footer_len + 12 > size:
                return "truncated Parquet file (footer longer than the file)"
        elif suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None


def find_broken(root: str | os.PathLike) -> Iterator[tuple[Path, str]]:
    """``(path, reason)`` for every unreadable Parquet or JSON file below ``root``."""
    root = Path(root)
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and (reason := broken_reason(path)):
            yield path, reason


def mark_broken(paths: Iterable[str | os.PathLike]) -> None:
    """Give files the oldest time stamp, so Snakemake reruns the jobs that write them."""
    for path in paths:
        os.utime(path, (0, 0))


def content_sha256(path: str | os.PathLike, cache: str | os.PathLike | None = None) -> str:
    """SHA-256 of a file's content, cached by (size, modification time, inode).

    Parameters
    ----------
    path : path-like
        The file (missing: ``"missing"``, e.g. a demo table a rule exports first).
    cache : path-like, optional
        JSON file of known hashes; any change of size, time stamp or inode (a replaced
        file) recomputes the hash, so only the content decides.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    known: dict[str, str] = {}
    if cache is not None and Path(cache).exists():
        try:
            known = json.loads(Path(cache).read_text())
        except ValueError:
            known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        prefix = f"{path.resolve()}|"
        known = {k: v for k, v in known.items() if not k.startswith(prefix)} | {key: digest}
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{cache}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(cache)
    return digest


def input_changed(
    path: str | os.PathLike, provenance: str | os.PathLike, cache: str | os.PathLike | None = None
) -> str | None:
    """Why the results made from ``path`` are stale, judged by content (None if current).

    Parameters
    ----------
    path : path-like
        The input table (``data.path``).
    provenance : path-like
        ``results/data/provenance.json``, where ``validate_data`` records the SHA-256 of
        the input it read (``data_sha256``).
    cache : path-like, optional
        Hash cache of :func:`content_sha256`.
    """
    provenance = Path(provenance)
    if not Path(path).exists() or not provenance.exists() or broken_reason(provenance):
        return None  # nothing to compare: Snakemake's own rules decide
    recorded = json.loads(provenance.read_text(encoding="utf-8")).get("data_sha256")
    current = content_sha256(path, cache)
    if recorded and recorded != current:
        return (
            f"content differs from the table results/data/ was made from (SHA-256 "
            f"{current[:12]}... vs {recorded[:12]}...)"
        )
    return None
