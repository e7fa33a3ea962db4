"""Provenance records, and what a change reschedules (`snakemake -n` in a workflow copy)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snakemake.iocontainers import Namedlist

from conftest import snakemake
from survival_framework import provenance
from survival_framework.contract import ROW_COL
from survival_framework.errors import InputValidationError
from survival_framework.job import rule_job
from survival_framework.models import MODEL_NAMES

MODELS = list(MODEL_NAMES)  # the registry: every model the test config enables
REPORT_RULES = {
    "render_leaderboard",
    "plot_model_comparison",
    "render_ph_table",
    "plot_cv_metrics",
    "plot_kaplan_meier",
    "plot_time_dependent_metrics",
    "plot_benchmarks",
}


def test_hashes(tmp_path):
    f = tmp_path / "x.bin"
    payload = np.random.default_rng(0).bytes(3_000_000)
    f.write_bytes(payload)
    assert provenance.sha256_file(f, chunk_size=4096) == hashlib.sha256(payload).hexdigest()
    a = np.array([3, 1, 2], dtype=np.int32)
    assert provenance.sha256_arrays(a) == provenance.sha256_arrays(a.astype(np.int64))
    assert provenance.sha256_arrays(a) != provenance.sha256_arrays(a[::-1])
    folds = pd.DataFrame({ROW_COL: [2, 0, 1], "fold": [1, 0, 1]})
    folds.to_parquet(tmp_path / "f.parquet")
    folds.iloc[::-1].to_parquet(tmp_path / "g.parquet")  # row order does not matter
    assert provenance.folds_sha256(tmp_path / "f.parquet") == provenance.folds_sha256(
        tmp_path / "g.parquet"
    )


def test_build_provenance_fields(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text("a,b\n1,2\n")
    rec = provenance.build_provenance(
        "demo", {"data": str(f), "many": [str(f)]}, params={"x": np.int64(3)}, seed=5
    )
    assert rec["inputs"]["data"]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert rec["inputs"]["many"][0]["bytes"] == f.stat().st_size
    assert rec["params"] == {"x": 3} and rec["seed"] == 5
    for pkg in ("python", "numpy", "pandas", "scikit-learn", "scikit-survival", "lifelines"):
        assert rec["versions"][pkg]
    assert rec["versions"]["snakemake"]
    assert len(rec["code"]["package_sha256"]) == 64
    json.dumps(rec)  # serialisable


def test_rule_job_writes_provenance_last(fake_job):
    with rule_job(fake_job) as job:
        job.log.info("working")
        assert job.started_utc
        record = job.provenance(extra={"n": 1})
    written = json.loads(Path(fake_job.output.provenance).read_text())
    assert written == json.loads(json.dumps(record))
    assert written["rule"] == "fit_model" and written["seed"] == 3 and written["n"] == 1
    assert written["inputs"]["table"]["bytes"] == 4
    assert "working" in Path(fake_job.log[0]).read_text()


def test_rule_job_without_provenance_output_writes_none(fake_job, tmp_path):
    fake_job.output = Namedlist(fromdict={"plot": str(tmp_path / "plot.png")})
    with rule_job(fake_job):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "job.log"]


def test_rule_job_input_error_is_one_line_and_exit_1(fake_job):
    with pytest.raises(SystemExit) as exit_, rule_job(fake_job):
        raise InputValidationError("in.csv", "bad value", column="a")
    assert exit_.value.code == 1
    message = "InputValidationError: in.csv, column 'a': bad value"
    assert sys.__stderr__.getvalue() == message + "\n"
    log = Path(fake_job.log[0]).read_text()
    assert log.endswith(f"ERROR survival_framework: {message}\n") and "Traceback" not in log
    assert not Path(fake_job.output.provenance).exists()


def test_rule_job_other_errors_propagate_without_provenance(fake_job):
    with pytest.raises(KeyError), rule_job(fake_job):
        raise KeyError("bug")
    # one line on the console naming the error and the log with the traceback
    assert (
        sys.__stderr__.getvalue()
        == f"fit_model model=rsf, fold=2: KeyError: 'bug' (full traceback: {fake_job.log[0]})\n"
    )
    assert not Path(fake_job.output.provenance).exists()


# --------------------------------------------------------------------------- integration

RESULT_DIRS = ["results/data", "results/splits", "results/ph", "results/final/best", "results"]


@pytest.mark.integration
def test_every_result_directory_has_provenance(test_workflow_run):
    wd = test_workflow_run
    data_hash = hashlib.sha256((wd / "resources/demo/gbsg2.csv").read_bytes()).hexdigest()
    folds_hash = provenance.folds_sha256(wd / "results/splits/folds.parquet")
    dirs = RESULT_DIRS + [f"results/cv/{m}/fold_{k}" for m in MODELS for k in range(3)]
    for d in dirs:
        rec = json.loads((wd / d / "provenance.json").read_text())
        assert rec["data_sha256"] == data_hash, d
        assert rec["versions"]["lifelines"] and rec["code"]["package_sha256"], d
        assert rec["started_utc"] <= rec["finished_utc"], d
        if d in ("results/data", "results/ph", "results/final/best"):
            assert rec["folds_sha256"] is None, d  # these use all rows, no folds
        else:
            assert rec["folds_sha256"] == folds_hash, d
        for files in rec["inputs"].values():
            for item in files if isinstance(files, list) else [files]:
                digest = hashlib.sha256((wd / item["path"]).read_bytes()).hexdigest()
                assert item["sha256"] == digest, (d, item["path"])
    fold = json.loads((wd / "results/cv/rsf/fold_1/provenance.json").read_text())
    metrics = json.loads((wd / "results/cv/rsf/fold_1/metrics.json").read_text())
    assert fold["model_params"] == metrics["params"] and fold["model_params"]["n_estimators"] == 30
    assert fold["seed"] == 7 and fold["wildcards"] == {"model": "rsf", "fold": "1"}
    folds = pd.read_parquet(wd / "results/splits/folds.parquet")
    rows = folds[ROW_COL].to_numpy()
    expected = provenance.sha256_arrays(
        np.sort(rows[folds["fold"] != 1]), np.sort(rows[folds["fold"] == 1])
    )
    assert fold["fold_rows_sha256"] == expected


def _scheduled(wd) -> tuple[Counter, set]:
    """Jobs a dry run would execute: counts per rule and the (model, fold) of fit jobs."""
    out = snakemake(wd, "-n", "--configfile", "config/test/config.yaml").stdout
    if "Nothing to be done" in out:
        return Counter(), set()
    stats = out[out.index("Job stats:") :].split("\n")
    counts = Counter()
    for line in stats[3:]:
        parts = line.split()
        if not parts or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    fits, rule = set(), None
    for line in out.splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if header:
            rule = header.group(1)
        m = re.match(r"^wildcards: model=(\w+), fold=(\d+)$", line.strip())
        if m and rule == "fit_model":
            fits.add((m.group(1), int(m.group(2))))
    assert sum(counts.values()) == 0 or counts["fit_model"] == len(fits), out[-3000:]
    return counts, fits


@pytest.fixture(scope="module")
def workflow_copy(test_workflow_run, tmp_path_factory):
    """A copy of the finished fixture run (results and .snakemake metadata, mtimes kept)."""
    dest = tmp_path_factory.mktemp("rerun") / "wf"
    shutil.copytree(test_workflow_run, dest, symlinks=True)
    return dest


@pytest.mark.integration
def test_reruns_are_exactly_what_changed(workflow_copy):
    wd = workflow_copy
    assert _scheduled(wd) == (Counter(), set())  # unchanged: nothing

    # one model's parameters: that model's folds, the aggregation and what reads them
    cfg = wd / "config/test/config.yaml"
    original = cfg.read_text()
    line = "coxph: {enabled: true, params: {alpha: 0.0001}}"
    assert line in original
    cfg.write_text(original.replace(line, line.replace("0.0001", "0.001")))
    counts, fits = _scheduled(wd)
    cfg.write_text(original)
    assert fits == {("coxph", k) for k in range(3)}
    assert set(counts) == {
        "fit_model",
        "aggregate_metrics",
        "fit_best_model",
        "render_leaderboard",
        "plot_model_comparison",
        "plot_cv_metrics",
        "plot_time_dependent_metrics",
        "plot_benchmarks",
        "all",
    }
    assert counts["fit_model"] == 3

    # model code: every fit job (and the final model), nothing upstream
    models_py = wd / "scripts/survival_framework/models.py"
    code = models_py.read_text()
    models_py.write_text(code + "\n# edited\n")
    counts, fits = _scheduled(wd)
    models_py.write_text(code)
    assert counts["fit_model"] == 3 * len(MODELS) and len(fits) == 3 * len(MODELS)
    assert counts["fit_best_model"] == 1
    assert not {"validate_data", "split_data", "test_proportional_hazards"} & set(counts)

    # report code: only the report rules
    report_py = wd / "scripts/survival_framework/report.py"
    code = report_py.read_text()
    report_py.write_text(code + "\n# edited\n")
    counts, _ = _scheduled(wd)
    report_py.write_text(code)
    assert set(counts) == REPORT_RULES | {"all"}

    assert _scheduled(wd) == (Counter(), set())  # reverted: nothing again
