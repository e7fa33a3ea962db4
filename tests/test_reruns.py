"""Rerun correctness by construction: each rule's code hash covers its script's imports.

Every rule passes ``code_version("<script>.py")`` (rules/common.smk), the hash of the package
modules in the script's import closure (:mod:`survival_framework.codehash`). Here, in a copy
of a finished run, each package module in turn is edited: exactly the rules whose scripts
import it, directly or indirectly, must have changed params (``snakemake --summary``, which
judges each output on its own record), every other output stays ``ok``, and an unchanged
rerun schedules nothing (``snakemake -n``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake
from survival_framework.codehash import import_closure, package_imports
from survival_framework.models import MODEL_NAMES

pytestmark = pytest.mark.integration

PKG = REPO / "scripts" / "survival_framework"
MODULES = sorted(p.name for p in PKG.glob("*.py"))
CONFIG = ("--configfile", "config/test/config.yaml")
PREDICT = ("--config", "predict_input=resources/demo/gbsg2.csv")
TARGETS = ("all", "predict")
PARAMS_CHANGED = "params changed"


def rule_scripts() -> dict[str, str]:
    """``{rule: script file name}`` from the ``script:`` directives in rules/*.smk."""
    found = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"(?m)^(?=rule |localrule )", smk.read_text()):
            name = re.match(r"(?:local)?rule (\w+):", block)
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', block)
            if name and script:
                found[name.group(1)] = script.group(1)
    return found


def dry_run(wd: Path, *extra: str) -> list[tuple[str, str, list[str]]]:
    """Jobs of a dry run: ``(rule, first reason, output files)``."""
    out = snakemake(wd, *TARGETS, "-n", "--cores", "1", *extra, *CONFIG, *PREDICT).stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        name = re.match(r"(?:local)?rule (\w+):", block)
        reason = re.search(r"^\s+reason: ([^:\n]+)", block, flags=re.M)
        output = re.search(r"^\s+output: (.*)$", block, flags=re.M)
        if name and reason:
            files = output.group(1).split(", ") if output else []
            jobs.append((name.group(1), reason.group(1).strip(), files))
    return jobs


def scheduled(wd: Path, *extra: str) -> dict[str, set[str]]:
    """``{rule: {first reason of each of its jobs}}`` of a dry run."""
    return by_rule(dry_run(wd, *extra))


def by_rule(jobs: list[tuple[str, str, list[str]]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for rule, reason, _ in jobs:
        found.setdefault(rule, set()).add(reason)
    return found


def output_status(wd: Path) -> dict[str, set[str]]:
    """``{rule: {status of each output}}`` from ``snakemake --summary``.

    Unlike a dry run's job reasons (where a job downstream of a rescheduled one is reported
    with the upstream reason only), the summary judges every output file on its own
    record: ``params changed`` means that job's own params differ from its last run.
    """
    out = snakemake(wd, *TARGETS, "--summary", "--cores", "1", *CONFIG, *PREDICT).stdout
    lines = [line.split("\t") for line in out.splitlines() if line.count("\t") >= 5]
    header, rows = lines[0], lines[1:]
    rule, status = header.index("rule"), header.index("status")
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row[rule], set()).add(row[status])
    return found


@pytest.fixture(scope="module")
def finished(test_workflow_run, tmp_path_factory) -> tuple[Path, set[str]]:
    """A copy of a finished test run plus predictions of new data, and the rules it ran."""
    wd = tmp_path_factory.mktemp("reruns") / "wf"
    shutil.copytree(test_workflow_run, wd, symlinks=True)
    snakemake(wd, "predict", "--cores", "2", *CONFIG, *PREDICT)
    ran = set(scheduled(wd, "--forceall"))
    return wd, ran - set(TARGETS)


def test_every_rule_script_has_its_code_hash():
    """Every rule that runs a script passes code_version(<its own script>) as a param."""
    text = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    for rule, script in rule_scripts().items():
        block = re.search(rf"(?ms)^(?:local)?rule {rule}:.*?(?=^\S|\Z)", text).group(0)
        assert f'code=code_version("{script}")' in block, rule


def test_static_closure_covers_what_the_scripts_import_at_run_time():
    """The ast closure holds every package module a script really imports (an oracle
    independent of codehash: the interpreter's sys.modules after importing the script)."""
    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1], run_name='probe'); "
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] == 'survival_framework'))"
    )
    for script in sorted(set(rule_scripts().values())):
        path = REPO / "scripts" / script
        proc = subprocess.run(
            [sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            cwd=REPO / "scripts",
            env={**os.environ, "PYTHONPATH": str(REPO / "scripts")},
            check=True,
        )
        loaded = {
            "__init__.py" if m == "survival_framework" else m.split(".", 1)[1] + ".py"
            for m in proc.stdout.split()
        }
        static = {p.name for p in import_closure(path)}
        assert loaded <= static, (script, sorted(loaded - static))


def test_closure_follows_relative_lazy_and_package_imports(tmp_path):
    pkg = tmp_path / "survival_framework"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("import numpy\n")
    (pkg / "d.py").write_text("")
    script = tmp_path / "s.py"
    script.write_text("from survival_framework.a import f\n")
    assert [p.name for p in import_closure(script, pkg)] == ["__init__.py", "a.py", "b.py", "c.py"]
    assert package_imports(pkg / "c.py", pkg) == set()


def test_unchanged_rerun_schedules_nothing(finished):
    wd, _ = finished
    proc = snakemake(wd, *TARGETS, "-n", "--cores", "1", *CONFIG, *PREDICT)
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.parametrize("module", MODULES)
def test_editing_a_module_reruns_exactly_the_rules_that_import_it(finished, module):
    wd, ran = finished
    scripts = rule_scripts()
    expected = {
        rule
        for rule in ran
        if module in {p.name for p in import_closure(wd / "scripts" / scripts[rule])}
    }
    path = wd / "scripts" / "survival_framework" / module
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# an edit\n")
        status = output_status(wd)
    finally:
        path.write_bytes(original)
    changed = {rule for rule, states in status.items() if PARAMS_CHANGED in states}
    assert changed == expected
    for rule in set(status) - expected:
        assert status[rule] == {"ok"}, (rule, status[rule])


def test_issue_examples_cox_and_concordance():
    """The gaps the issue found: cox.py (default Cox solver) and concordance.py (both
    C-indices) were in no rule's hand-typed list."""
    scripts = rule_scripts()
    for module in ("cox.py", "concordance.py"):
        users = {
            r
            for r, s in scripts.items()
            if module in {p.name for p in import_closure(REPO / "scripts" / s)}
        }
        assert {"fit_model", "fit_final_model", "fit_best_model", "predict_new_data"} <= users


# --- content, not time stamps (survival_framework.integrity) -----------------------------


@pytest.fixture
def run_copy(test_workflow_run, tmp_path) -> Path:
    wd = tmp_path / "wf"
    shutil.copytree(test_workflow_run, wd, symlinks=True)
    return wd


def test_replaced_input_with_an_older_time_stamp_reruns_validation(run_copy):
    data = run_copy / "resources" / "demo" / "gbsg2.csv"
    old = data.stat().st_mtime - 365 * 86400
    table = pd.read_csv(data)
    table.iloc[:-10].to_csv(data, index=False)  # a different table ...
    os.utime(data, (old, old))  # ... older than every result made from the first one
    proc = snakemake(run_copy, "results/leaderboard.csv", "-n", "--cores", "1", *CONFIG)
    out = proc.stdout + proc.stderr
    assert "resources/demo/gbsg2.csv: content differs from the table results/data/ was made" in out
    jobs = by_rule(dry_run(run_copy))
    assert {"validate_data", "split_data", "fit_model", "aggregate_metrics"} <= set(jobs)


def test_truncated_intermediate_is_regenerated_and_no_result_is_lost(run_copy):
    before = pd.read_csv(run_copy / "results" / "cv_metrics.csv")
    train = run_copy / "results" / "splits" / "fold_0" / "train.parquet"
    train.write_bytes(train.read_bytes()[: train.stat().st_size // 2])
    proc = snakemake(run_copy, "results/leaderboard.csv", "--cores", "2", *CONFIG)
    out = proc.stdout + proc.stderr
    assert "results/splits/fold_0/train.parquet: not a complete Parquet file" in out
    after = pd.read_csv(run_copy / "results" / "cv_metrics.csv")
    pd.testing.assert_frame_equal(after, before, check_exact=False, rtol=0, atol=1e-12)
    board = (run_copy / "results" / "leaderboard.csv").stat().st_mtime
    for metrics in (run_copy / "results" / "cv").glob("*/fold_*/metrics.json"):
        assert json.loads(metrics.read_text())["status"] == "ok"
        assert metrics.stat().st_mtime <= board, metrics


def test_a_failed_rerun_never_leaves_an_older_leaderboard(run_copy, tmp_path):
    """strict: true and coxph fits that now fail: Snakemake deletes their outputs, so the
    leaderboard of the earlier run would summarise results that no longer exist."""
    failing = tmp_path / "failing.yaml"
    coxph = {"params": {"solver": "sksurv", "ties": "efron", "n_iter": 0}}
    failing.write_text(yaml.safe_dump({"strict": True, "models": {"coxph": coxph}}))
    proc = snakemake(
        run_copy, "results/leaderboard.csv", "--cores", "2", *CONFIG, str(failing), check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # the 3 coxph results are gone, the others rewritten (strict is a param of every fit)
    n_results = 3 * len(MODEL_NAMES)
    assert f"results/leaderboard.csv is older than {n_results} fold result(s)" in out
    assert not (run_copy / "results" / "leaderboard.csv").exists()
    assert (run_copy / "results" / "leaderboard.stale.csv").exists()
