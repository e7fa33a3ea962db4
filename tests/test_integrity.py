"""Content checks behind correct reruns: unreadable intermediates and the input's hash."""

from __future__ import annotations

import hashlib
import json
import os

import pandas as pd

from survival_framework.integrity import (
    broken_reason,
    content_sha256,
    find_broken,
    input_changed,
    mark_broken,
)


def test_sound_files_pass_and_broken_ones_are_named(tmp_path):
    good = tmp_path / "a.parquet"
    pd.DataFrame({"x": range(100)}).to_parquet(good)
    (tmp_path / "m.json").write_text('{"status": "ok"}')
    assert broken_reason(good) is None and broken_reason(tmp_path / "m.json") is None
    half = tmp_path / "half.parquet"
    half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    tiny = tmp_path / "tiny.parquet"
    tiny.write_bytes(b"PAR1")
    (tmp_path / "bad.json").write_text('{"status": ')
    assert broken_reason(half) == "not a complete Parquet file (magic bytes missing: truncated?)"
    assert broken_reason(tiny) == "truncated Parquet file (4 bytes)"
    assert broken_reason(tmp_path / "bad.json").startswith("unreadable (JSONDecodeError")
    assert [p.name for p, _ in find_broken(tmp_path)] == [
        "bad.json",
        "half.parquet",
        "tiny.parquet",
    ]
    mark_broken([half])
    assert half.stat().st_mtime == 0


def test_content_hash_follows_content_not_time_stamps(tmp_path):
    data, cache = tmp_path / "in.csv", tmp_path / "cache" / "h.json"
    data.write_text("time,event\n1,0\n")
    first = content_sha256(data, cache)
    assert first == hashlib.sha256(data.read_bytes()).hexdigest()
    assert content_sha256(data, cache) == first and len(json.loads(cache.read_text())) == 1
    stamp = data.stat().st_mtime - 1000
    data.write_text("time,event\n2,1\n")  # same size, older time stamp
    os.utime(data, (stamp, stamp))
    assert content_sha256(data, cache) == hashlib.sha256(data.read_bytes()).hexdigest() != first
    assert len(json.loads(cache.read_text())) == 1  # the old entry of this file is replaced
    assert content_sha256(tmp_path / "missing.csv") == "missing"


def test_input_changed_compares_with_the_recorded_hash(tmp_path):
    data, prov = tmp_path / "in.csv", tmp_path / "provenance.json"
    data.write_text("time,event\n1,0\n")
    assert input_changed(data, prov) is None  # nothing recorded yet
    prov.write_text(json.dumps({"data_sha256": hashlib.sha256(data.read_bytes()).hexdigest()}))
    assert input_changed(data, prov) is None
    data.write_text("time,event\n1,1\n")
    assert input_changed(data, prov).startswith("content differs from the table results/data/")
