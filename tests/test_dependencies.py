"""Dependencies are declared once and agree with each other and with the code.

* ``requirements*.txt`` hold the exact pins, ``constraints.txt`` the full pinned set: they agree.
* every pin in ``envs/*.yaml`` equals the pip pin of the same package;
* every third-party module that a rule script imports (its import closure through the package,
  imports inside functions included) is provided by the ``conda:`` env of the rule;
* ``pyproject.toml`` names the same distributions as the requirements, with ranges that admit the
  pins, and ``pip install .`` installs the package ``survival_framework`` from ``scripts/``.

Fast and offline: files are parsed, nothing is imported from the scripts, nothing is downloaded.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from survival_framework.codehash import import_closure as package_closure

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
PACKAGE = "survival_framework"

# conda-forge names whose pip distribution (same version) is named differently
CONDA_TO_PIP = {"xgboost": "xgboost-cpu"}
# conda-only packages: the interpreter and the Java runtime pyspark needs
CONDA_ONLY = {"python", "openjdk"}
# Snakemake's script preamble puts its own package on sys.path: not needed in the env
PROVIDED_BY_SNAKEMAKE = {"snakemake"}
# the pip files the runtime env files mirror (requirements-dev.txt: test tools, no env)
RUNTIME_PIN_FILES = (
    "requirements.txt",
    "requirements-spark.txt",
    "requirements-dask.txt",
    "constraints.txt",
)


# ---------------------------------------------------------------- pins


@cache
def pip_pins(filename: str) -> dict[str, tuple[str, str]]:
    """``{canonical name: (name as written, version)}`` of a requirements file of exact pins."""
    pins = {}
    for line in (ROOT / filename).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{filename}: {line!r} is not a pin"
        pins[canonicalize_name(req.name)] = (req.name, specs[0].version)
    return pins


def requirement_files() -> list[str]:
    return sorted(p.name for p in ROOT.glob("requirements*.txt"))


def env_files() -> list[Path]:
    return sorted((ROOT / "envs").glob("*.yaml"))


def conda_pins(env: Path) -> dict[str, str | None]:
    """``{conda name: version or None}`` of an env file (``name=1.2``, ``name==1.2``, ``name``)."""
    pins = {}
    for dep in yaml.safe_load(env.read_text())["dependencies"]:
        assert isinstance(dep, str), f"{env.name}: only conda packages expected, got {dep!r}"
        match = re.fullmatch(r"(?:[\w.-]+::)?([A-Za-z0-9_.-]+)\s*(?:==?\s*([^\s=<>!,|*]+))?", dep)
        assert match, f"{env.name}: cannot parse {dep!r}"
        pins[match[1].lower()] = match[2]
    return pins


def test_requirement_pins_agree_with_constraints():
    constraints = pip_pins("constraints.txt")
    problems = []
    for filename in requirement_files():
        for key, (name, version) in pip_pins(filename).items():
            if key not in constraints:
                problems.append(f"{filename}: {name}=={version} missing from constraints.txt")
            elif constraints[key][1] != version:
                problems.append(
                    f"{filename}: {name}=={version}, constraints.txt: {constraints[key][1]}"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", env_files(), ids=lambda p: p.name)
def test_env_pins_equal_pip_pins(env):
    problems = []
    for conda_name, version in conda_pins(env).items():
        if conda_name in CONDA_ONLY:
            continue
        pip_name = canonicalize_name(CONDA_TO_PIP.get(conda_name, conda_name))
        label = f"envs/{env.name}: {conda_name}={version}"
        if version is None:
            problems.append(f"{label}: not pinned")
            continue
        found = False
        for filename in RUNTIME_PIN_FILES:
            if pip_name in pip_pins(filename):
                found = True
                written, pip_version = pip_pins(filename)[pip_name]
                if pip_version != version:
                    problems.append(f"{label}, but {filename} pins {written}=={pip_version}")
        if not found:
            problems.append(f"{label}: {pip_name} is in none of {', '.join(RUNTIME_PIN_FILES)}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- rule scripts and imports


def rule_scripts() -> dict[tuple[str, str], list[str]]:
    """``{(script, env file), ...: [rule names]}`` from the ``script:``/``conda:`` of each rule.

    Paths are relative to the repository; the rule files give them relative to ``rules/``.
    """
    found: dict[tuple[str, str], list[str]] = {}
    literal = r"[ \t]*\n?[ \t]*(?:\"([^\"\n]*)\"|'([^'\n]*)'|(\S.*))"
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        headers = list(re.finditer(r"^(?:rule|checkpoint)\s+(\w+)\s*:", text, re.M))
        ends = [h.start() for h in headers[1:]] + [len(text)]
        for header, end in zip(headers, ends[: len(headers)], strict=True):
            block = text[header.end() : end]
            values = {}
            for key in ("script", "conda"):
                match = re.search(rf"^\s+{key}:{literal}", block, re.M)
                if match:
                    assert match[3] is None, (
                        f"{smk.name}: rule {header[1]}: {key}: {match[3]!r} is not a string "
                        "literal; this test cannot follow it"
                    )
                    value = (smk.parent / (match[1] or match[2])).resolve()
                    values[key] = value.relative_to(ROOT).as_posix()
            if "script" in values:
                assert "conda" in values, f"{smk.name}: rule {header[1]} has a script, no conda env"
                found.setdefault((values["script"], values["conda"]), []).append(header[1])
    return found


RULE_SCRIPTS = rule_scripts()


def test_rule_files_are_parsed():
    # a parser that finds nothing would make the import checks below pass vacuously
    scripts = {script for script, _ in RULE_SCRIPTS}
    assert "scripts/split_data_spark.py" in scripts and "scripts/fit_model.py" in scripts
    assert {env for _, env in RULE_SCRIPTS} == {f"envs/{p.name}" for p in env_files()}, (
        "an env file no rule uses, or a rule using an env file that is not in envs/"
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, in function bodies too; not those under ``if TYPE_CHECKING:``."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children = node.orelse
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _imports(child)


def import_closure(script: Path) -> dict[str, str]:
    """Third-party top-level imports of ``script`` and of the package modules it imports
    (their closure: :func:`survival_framework.codehash.import_closure`, which the code
    hashes of the rules use too).

    Returns ``{top-level module name: file importing it (first seen)}``.
    """
    third_party: dict[str, str] = {}
    for path in [script, *package_closure(script)]:
        where = path.relative_to(ROOT).as_posix()
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.level or not node.module):
                continue  # relative: inside the package
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                top = name.split(".")[0]
                skip = {PACKAGE, *PROVIDED_BY_SNAKEMAKE, *sys.stdlib_module_names}
                if top not in skip:
                    third_party.setdefault(top, where)
    return third_party


def test_import_closure_follows_the_package():
    # split_data_spark.py imports pyspark only through spark_session (lazily, in a function)
    closure = import_closure(SCRIPTS / "split_data_spark.py")
    assert {"pyspark", "pandas", "numpy", "pyarrow"} <= set(closure)
    assert closure["pyspark"].startswith(f"scripts/{PACKAGE}/spark_")
    assert not {"lifelines", "xgboost", "matplotlib", "sksurv"} & set(closure)
    # fit_model.py reaches xgboost (lazily imported in models.py) and lifelines
    closure = import_closure(SCRIPTS / "fit_model.py")
    assert closure["xgboost"] == closure["lifelines"] == f"scripts/{PACKAGE}/models.py"


@pytest.mark.parametrize(
    ("script", "env"), sorted(RULE_SCRIPTS), ids=lambda v: Path(v).name.removesuffix(".py")
)
def test_rule_env_provides_every_import(script, env):
    provided = {canonicalize_name(CONDA_TO_PIP.get(name, name)) for name in conda_pins(ROOT / env)}
    pip_to_conda = {canonicalize_name(p): c for c, p in CONDA_TO_PIP.items()}
    distributions = importlib.metadata.packages_distributions()
    problems = []
    for module, where in sorted(import_closure(ROOT / script).items()):
        dists = [canonicalize_name(d) for d in distributions.get(module, [])]
        if not dists:
            problems.append(f"import {module} ({where}): no installed distribution provides it")
        elif not provided & set(dists):
            conda = pip_to_conda.get(dists[0], dists[0])
            problems.append(
                f"import {module} ({where}) needs {dists[0]} (conda: {conda}), missing from {env}"
            )
    rules = ", ".join(RULE_SCRIPTS[script, env])
    assert not problems, f"rules {rules} ({script}):\n" + "\n".join(problems)


# ---------------------------------------------------------------- pyproject.toml


@cache
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _check_ranges(declared: list[str], filename: str, label: str) -> list[str]:
    """Problems between the requirement strings ``declared`` and the pins of ``filename``."""
    pins = pip_pins(filename)
    requirements = {canonicalize_name(r.name): r for r in map(Requirement, declared)}
    problems = [
        f"{label} lacks {name} (pinned in {filename})"
        for key, (name, _) in pins.items()
        if key not in requirements
    ]
    problems += [
        f"{label} has {req}, not pinned in {filename}"
        for key, req in requirements.items()
        if key not in pins
    ]
    problems += [
        f"{label}: {req} excludes the pin {pins[key][0]}=={pins[key][1]} of {filename}"
        for key, req in requirements.items()
        if key in pins and not req.specifier.contains(pins[key][1], prereleases=True)
    ]
    return problems


def test_pyproject_dependencies_match_requirements():
    project = pyproject()["project"]
    problems = _check_ranges(project["dependencies"], "requirements.txt", "[project].dependencies")
    extras = project["optional-dependencies"]
    for extra, filename in {
        "spark": "requirements-spark.txt",
        "dask": "requirements-dask.txt",
        "dev": "requirements-dev.txt",
    }.items():
        problems += _check_ranges(extras[extra], filename, f"extra {extra!r}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- pip install .


def _source_copy(tmp_path: Path) -> Path:
    """What the build reads, copied: building in the checkout would leave build/ and egg-info."""
    src = tmp_path / "src"
    (src / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", src)
    readme = pyproject()["project"].get("readme")
    if readme:
        shutil.copy(ROOT / readme, src)
    shutil.copytree(
        SCRIPTS / PACKAGE, src / "scripts" / PACKAGE, ignore=shutil.ignore_patterns("__pycache__")
    )
    return src


def _check_installed(target: Path, tmp_path: Path) -> None:
    """``survival_framework`` (all of it, nothing else) imports from ``target``."""
    expected = {p.name for p in (SCRIPTS / PACKAGE).glob("*.py")}
    assert {p.name for p in (target / PACKAGE).glob("*.py")} == expected
    stray = {p.name for p in target.iterdir()} - {PACKAGE, "bin"}
    assert all(name.endswith((".dist-info", ".egg-info")) for name in stray), stray
    code = (
        f"import {PACKAGE}, {PACKAGE}.contract as c; "
        f"print({PACKAGE}.__file__); print(c.__file__); print({PACKAGE}.__version__)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # outside the repository: scripts/ must not be what is imported
        env={**env, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    package_file, contract_file, version = result.stdout.split()
    assert Path(package_file).is_relative_to(target)
    assert Path(contract_file).is_relative_to(target)
    assert version == pyproject()["project"]["version"]


def test_pip_install_into_target(tmp_path):
    # offline build: setuptools >= 70.1 (pinned in requirements-dev.txt) builds the wheel itself
    src, target = _source_copy(tmp_path), tmp_path / "target"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "install", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--no-cache-dir", "--target", str(target), str(src)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _check_installed(target, tmp_path)
