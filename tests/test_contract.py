"""One source of truth: model names from the registry, shared names from the contract.

The README's "Adding a model" section names the places a new model touches; the end-to-end
test adds a toy model in exactly those places in a copy of the workflow and runs it.
"""

from __future__ import annotations

import ast
import filecmp
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, WORKFLOW_PARTS, copy_workflow, snakemake
from survival_framework import contract
from survival_framework.models import MODEL_NAMES, _constructor_params

README = (REPO / "README.md").read_text()

TOY = '''

class ToyScore(_CoxLike):
    """Toy model of tests/test_contract.py: least-squares score of -log(time), Breslow
    baseline."""

    def __init__(self, shrink: float = 1.0):
        self.shrink = shrink

    def fit(self, X: np.ndarray, y: np.ndarray) -> ToyScore:
        X = np.asarray(X, dtype=float)
        _, time = survival_arrays(y)
        design = np.column_stack([X, np.ones(len(X))])
        self.coef_ = self.shrink * np.linalg.lstsq(design, -np.log(time), rcond=None)[0][:-1]
        self._fit_baseline(X, y)
        return self

    def _linear_predictor(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_

'''


def _section(title: str) -> str:
    match = re.search(rf"(?ms)^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def test_readme_adding_a_model_names_the_three_places():
    text = _section("Adding a model")
    for place in ("scripts/survival_framework/models.py", "_REGISTRY", "config/config.yaml"):
        assert place in text, place
    assert "model table" in text


def test_readme_model_table_lists_the_registry_and_its_parameters():
    """The docs place of a model: one row per registry name, with its constructor's params."""
    rows = re.findall(r"^\| `(\w+)` \|.*\| ([^|]*) \|$", README, flags=re.M)
    table = {name: re.findall(r"`(\w+)`", params) for name, params in rows if name in MODEL_NAMES}
    assert list(table) == list(MODEL_NAMES)
    from survival_framework.models import _REGISTRY

    for name, params in table.items():
        assert params == list(_constructor_params(_REGISTRY[name])), name


def test_no_model_list_is_typed_outside_the_registry():
    """Rules, rule scripts, tests and the benchmark read MODEL_NAMES; a literal list of the
    registry's names anywhere else would drift from it (the config and docs excepted)."""
    names = set(MODEL_NAMES)
    offenders = []
    for path in [*REPO.glob("scripts/**/*.py"), *REPO.glob("tests/*.py")]:
        if path.name == "models.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.List | ast.Tuple | ast.Set):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if names <= values:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    for path in [*REPO.glob("rules/*.smk"), REPO / "Snakefile", REPO / "config" / "schema.yaml"]:
        if all(re.search(rf"\b{name}\b", path.read_text()) for name in names):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_contract_names_are_not_redefined():
    """Each reserved name is assigned in contract.py only."""
    names = (
        "ROW_COL",
        "FOLD_COL",
        "REPEAT_COL",
        "RISK_COL",
        "OTHER",
        "PREDICT_SUFFIXES",
        "DATA_SUFFIXES",
    )
    for path in (REPO / "scripts").rglob("*.py"):
        if path.name == "contract.py":
            continue
        for name in names:
            assert not re.search(rf"(?m)^{name}\s*=", path.read_text()), (path, name)
    assert contract.prediction_column(12.5) == f"{contract.SURV_PREFIX}12.5"


@pytest.mark.integration
def test_toy_model_end_to_end(tmp_path):
    """Add a model in the registry and one config block, nothing else, and run rule all."""
    wd = copy_workflow(tmp_path / "wf")
    models_py = wd / "scripts" / "survival_framework" / "models.py"
    source = models_py.read_text()
    anchor = "\n_REGISTRY: dict"
    assert source.count(anchor) == 1 and source.count('    "weibull_aft": WeibullAFT,\n') == 1
    source = source.replace(anchor, TOY + anchor).replace(
        '    "weibull_aft": WeibullAFT,\n', '    "weibull_aft": WeibullAFT,\n    "toy": ToyScore,\n'
    )
    models_py.write_text(source)
    config_yaml = wd / "config" / "config.yaml"
    config_yaml.write_text(
        config_yaml.read_text() + "  toy:\n    enabled: true\n    params: {shrink: 0.5}\n"
    )
    # nothing else differs from the repository
    changed = []
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            for f in src.rglob("*"):
                same = "__pycache__" in f.parts or not f.is_file()
                if not same and not filecmp.cmp(f, wd / f.relative_to(REPO), shallow=False):
                    changed.append(str(f.relative_to(REPO)))
    assert sorted(changed) == ["config/config.yaml", "scripts/survival_framework/models.py"]

    # a run-time choice (not a place the model touches): two models keep the test short
    run = tmp_path / "run.yaml"
    others = [m for m in MODEL_NAMES if m != "coxph"]
    run.write_text(yaml.safe_dump({"models": {m: {"enabled": False} for m in others}}))
    snakemake(wd, "--cores", "2", "--configfile", "config/test/config.yaml", str(run))

    board = pd.read_csv(wd / "results" / "leaderboard.csv").set_index("model")
    assert set(board.index) == {"coxph", "toy"}
    assert board.loc["toy", "n_folds"] == 3 and board.loc["toy", "n_failed"] == 0
    long = pd.read_csv(wd / "results" / "cv_metrics.csv")
    for fold in range(3):
        pred = pd.read_parquet(
            wd / "results" / "cv" / "toy" / f"fold_{fold}" / "predictions.parquet"
        )
        # Harrell's C from the saved predictions, computed independently with lifelines
        from lifelines.utils import concordance_index

        ours = long.query("model == 'toy' and fold == @fold and metric == 'harrell_c'")["value"]
        ref = concordance_index(pred["time"], -pred[contract.RISK_COL], pred["event"])
        assert abs(float(ours.iloc[0]) - ref) < 5e-3
        surv = pred.filter(like=contract.SURV_PREFIX).to_numpy()
        assert np.all(np.diff(surv, axis=1) <= 1e-12) and np.all((surv >= 0) & (surv <= 1))
    assert (wd / "results" / "report" / "leaderboard.html").exists()
    assert Path(wd / "results" / "final" / "best" / "model.joblib").exists()


def test_readme_documents_the_contract_names():
    outputs = _section("Outputs (the contract)")
    for name in (contract.ROW_COL, contract.RISK_COL, f"{contract.SURV_PREFIX}<t>"):
        assert f"`{name}`" in outputs, name


def test_package_import_graph_is_one_way():
    """The package never imports a rule script, and its modules import each other without
    cycles (rule scripts on top, the package below)."""
    from survival_framework.codehash import package_imports

    pkg = REPO / "scripts" / "survival_framework"
    graph = {p: package_imports(p, pkg) - {pkg / "__init__.py", p} for p in pkg.glob("*.py")}
    state: dict[Path, int] = {}

    def visit(node: Path, stack: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, f"import cycle: {' -> '.join((*stack, node.name))}"
        state[node] = 1
        for dep in graph[node]:
            visit(dep, (*stack, node.name))
        state[node] = 2

    for module in graph:
        visit(module, ())
    for path in pkg.glob("*.py"):
        text = path.read_text()
        for script in (REPO / "scripts").glob("*.py"):
            assert f"import {script.stem}" not in text, (path.name, script.name)
