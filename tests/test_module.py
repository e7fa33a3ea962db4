"""The workflow used as a Snakemake module from another project (docs/module.md).

A fresh project folder outside the repository holds only ``config/config.yaml`` (the data keys)
and a ``Snakefile`` with ``module survival_workflow: snakefile: "<repo>/Snakefile"`` and
``use rule * from survival_workflow``, the way snakedeploy deploys a published workflow; real
``snakemake --cores 1`` runs there on WHAS500 (500 patients, bundled with scikit-survival).
"""

from __future__ import annotations

import copy
import functools
import http.server
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from lifelines.utils import concordance_index

from conftest import REPO, copy_workflow, snakemake
from survival_framework.configcheck import model_settings
from survival_framework.contract import RISK_COL, ROW_COL
from survival_framework.demo import export_demo
from survival_framework.metrics import METRIC_NAMES
from survival_framework.modelspec import read_registry

SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
REGISTRY = read_registry()
LEADERBOARD = "results/leaderboard.csv"
N_FOLDS = SCHEMA["properties"]["cv"]["properties"]["n_folds"]["default"]  # 5
# The project's whole config: what a user of the module writes (data keys only).
USER_CONFIG = {"data": {"path": "data/whas500.csv", "duration_col": "time", "event_col": "event"}}
# Metrics bounded by [0, 1]; ibs_erv (1 - IBS / IBS of km) is at most 1, rcll and dcal_stat
# are non-negative.
UNIT_METRICS = ("harrell_c", "uno_c", "ibs", "mean_auc", "dcal_p", "ici_25", "ici_50", "ici_75")


def module_snakefile(source: str) -> str:
    """The project's Snakefile (snakedeploy's template, with the module's source)."""
    return (
        'configfile: "config/config.yaml"\n\n\n'
        "module survival_workflow:\n"
        "    snakefile:\n"
        f"        {source}\n"
        "    config:\n"
        "        config\n\n\n"
        "use rule * from survival_workflow\n"
    )


def make_project(root: Path, source: str | None = None) -> Path:
    """A project folder outside the repository: config/config.yaml, Snakefile and the table."""
    assert REPO not in root.resolve().parents and root.resolve() != REPO
    (root / "config").mkdir(parents=True)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(USER_CONFIG, sort_keys=False))
    (root / "Snakefile").write_text(module_snakefile(source or f'"{REPO / "Snakefile"}"'))
    export_demo("whas500", root / "data" / "whas500.csv")
    return root


def repo_status() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def module_run(tmp_path_factory):
    """One real run of the default configuration (every model, 5 folds) to the leaderboard."""
    project = make_project(tmp_path_factory.mktemp("project"))
    status, start = repo_status(), time.time()
    proc = snakemake(project, "--cores", "1", LEADERBOARD)
    return SimpleNamespace(
        project=project, proc=proc, status_before=status, status_after=repo_status(), start=start
    )


# ----------------------------------------------------------------------------- the module run


@pytest.mark.integration
def test_leaderboard_of_a_module_run_ranks_every_model_with_sane_metrics(module_run):
    wd = module_run.project
    board = pd.read_csv(wd / LEADERBOARD)
    assert sorted(board["model"]) == sorted(REGISTRY)  # every model is enabled by default
    assert board["rank"].tolist() == list(range(1, len(REGISTRY) + 1))
    assert board["uno_c_mean"].is_monotonic_decreasing  # evaluation.primary_metric default
    assert (board["n_folds"] == N_FOLDS).all() and (board["n_failed"] == 0).all()
    for metric in METRIC_NAMES:
        values = board[f"{metric}_mean"]
        assert np.isfinite(values).all(), metric
        if metric in UNIT_METRICS:
            assert values.between(0, 1).all(), metric
    assert (board["ibs_erv_mean"] <= 1).all() and (board["rcll_mean"] > 0).all()
    by = board.set_index("model")
    assert by.loc["km", "harrell_c_mean"] == 0.5 and by.loc["km", "ibs_erv_mean"] == 0.0
    learners = by.drop(index="km")
    assert (learners["harrell_c_mean"] > 0.7).all()  # WHAS500: age, heart rate, CHF, ...
    assert (learners["ibs_mean"] < by.loc["km", "ibs_mean"]).all()
    # the schema's defaults, not the repository's config/config.yaml (skipped in a module):
    # run_type sample with sample_size 3000 keeps all 500 rows
    assert len(pd.read_parquet(wd / "results/data/clean.parquet")) == 500


@pytest.mark.integration
def test_harrell_c_of_the_saved_predictions_matches_lifelines(module_run):
    """Every model x fold: lifelines' concordance_index of the fold's saved predictions against
    the fold's test rows equals the recorded harrell_c, and the leaderboard holds their mean."""
    wd = module_run.project
    long = pd.read_csv(wd / "results/cv_metrics.csv")
    board = pd.read_csv(wd / LEADERBOARD).set_index("model")
    for model in REGISTRY:
        per_fold = []
        for fold in range(N_FOLDS):
            test = pd.read_parquet(wd / f"results/splits/fold_{fold}/test.parquet")
            pred = pd.read_parquet(wd / f"results/cv/{model}/fold_{fold}/predictions.parquet")
            rows = test[[ROW_COL, "time", "event"]].merge(
                pred[[ROW_COL, RISK_COL]], on=ROW_COL, validate="1:1"
            )
            assert len(rows) == len(test) == len(pred)
            c = concordance_index(rows["time"], -rows[RISK_COL], rows["event"])
            got = long.query("model == @model and fold == @fold and metric == 'harrell_c'")
            assert got["value"].item() == pytest.approx(c, abs=1e-9), (model, fold)
            per_fold.append(c)
        assert board.loc[model, "harrell_c_mean"] == pytest.approx(np.mean(per_fold), abs=1e-9)


@pytest.mark.integration
def test_a_module_run_equals_a_run_in_the_repository_layout(module_run, tmp_path):
    """The same table and data keys run from a copy of the repository (its config/config.yaml
    read, then the data keys) give the very same fold metrics: the schema's defaults that a
    module gets are the demo config's settings. Two models keep it cheap; a model's fold
    metrics do not depend on the others (ibs_erv needs km)."""
    wd = copy_workflow(tmp_path / "repo")
    export_demo("whas500", wd / "data" / "whas500.csv")
    (wd / "user.yaml").write_text(yaml.safe_dump(USER_CONFIG))
    models = {m: {"enabled": m in ("coxph", "km")} for m in REGISTRY}
    (wd / "models.yaml").write_text(yaml.safe_dump({"models": models}))
    snakemake(wd, LEADERBOARD, "--cores", "1", "--configfile", "user.yaml", "models.yaml")
    key = ["model", "repeat", "fold", "metric"]
    ours = pd.read_csv(module_run.project / "results/cv_metrics.csv").set_index(key)
    theirs = pd.read_csv(wd / "results/cv_metrics.csv").set_index(key)
    assert len(theirs) == 2 * N_FOLDS * len(METRIC_NAMES)
    pd.testing.assert_frame_equal(ours.loc[theirs.index], theirs)


@pytest.mark.integration
def test_a_module_run_writes_only_into_the_project(module_run):
    wd = module_run.project
    assert module_run.status_after == module_run.status_before
    made = [p for p in files_under(wd) if p.split("/")[0] in ("results", "logs", "benchmarks")]
    assert "results/leaderboard.csv" in made and "logs/cv/coxph/fold_0.log" in made
    in_repo = [p for p in made if (REPO / p).exists()]
    assert not [p for p in in_repo if (REPO / p).stat().st_mtime >= module_run.start], in_repo
    assert (wd / ".snakemake").is_dir()  # Snakemake's own state
    # nothing else in the project: its two files, the table, the outputs, .snakemake/
    others = {p for p in files_under(wd) if p.split("/")[0] not in ("results", "logs")}
    others = {p for p in others if not p.startswith(("benchmarks/", ".snakemake/"))}
    assert others == {"Snakefile", "config/config.yaml", "data/whas500.csv"}


@pytest.mark.integration
def test_an_unchanged_module_run_schedules_nothing(module_run):
    out = snakemake(module_run.project, "-n", "--cores", "1", LEADERBOARD).stdout
    assert "Nothing to be done" in out


# ------------------------------------------------------------- what the module must not lose


@pytest.mark.integration
def test_a_module_run_where_every_fit_fails_exits_nonzero_with_one_summary(tmp_path):
    """The end-of-run check (rules/common.smk: onsuccess) runs in a module too, once, though
    Snakemake runs only the main Snakefile's handlers and a second `use rule` statement
    reads the module again."""
    project = make_project(tmp_path / "project")
    with (project / "Snakefile").open("a") as f:
        f.write("\n\nuse rule fit_model from survival_workflow with:\n    threads: 1\n")
    failing = {"solver": "sksurv", "ties": "efron", "n_iter": 0}  # rejected at fit time
    models = {m: {"enabled": False} for m in REGISTRY}
    models["coxph"] = {"enabled": True, "params": failing}
    (project / "models.yaml").write_text(yaml.safe_dump({"models": models}))
    proc = snakemake(
        project, LEADERBOARD, "--cores", "1", "--configfile", "models.yaml", check=False
    )
    assert proc.returncode != 0
    assert proc.stderr.count(f"{N_FOLDS} of {N_FOLDS} model x fold fits failed:") == 1
    assert proc.stderr.count("no model x fold fit succeeded") == 1
    board = pd.read_csv(project / LEADERBOARD)  # the outputs stay
    assert board["model"].tolist() == ["coxph"] and board["rank"].isna().all()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.integration
def test_a_remote_module_stops_with_one_clear_line(tmp_path, monkeypatch):
    """A module read over HTTP (here from a server on this machine: no download) cannot import
    the package while the DAG is built: one line says to use a local clone."""
    handler = functools.partial(_QuietHandler, directory=str(REPO))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/Snakefile"
        project = make_project(tmp_path / "project", source=f'"{url}"')
        proc = snakemake(project, "-n", "--cores", "1", check=False, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    lines = [x for x in out.splitlines() if "survival-workflow needs a local copy" in x]
    assert len(lines) == 1, out[-3000:]
    assert f"not http://127.0.0.1:{server.server_address[1]}: git clone" in lines[0]
    assert 'give the module `snakefile: "<clone>/Snakefile"` (docs/module.md)' in lines[0]
    assert "ModuleNotFoundError" not in out
    assert not (project / "results").exists()


# -------------------------------------------------------------------------- static: no runs


def _validated(cfg: dict) -> dict:
    from snakemake.utils import validate

    cfg = copy.deepcopy(cfg)
    validate(cfg, str(REPO / "config" / "schema.yaml"))
    cfg["models"] = model_settings(cfg.get("models"), REGISTRY)
    return cfg


def test_a_config_with_the_data_keys_only_gets_the_demo_settings():
    """As a module the repository's config/config.yaml is not read (Snakemake skips a module's
    configfile when `config:` is passed): the schema's defaults must be the demo's settings.
    The demo's model parameters are the registry's defaults (tests/test_config.py)."""
    demo, user = _validated(DEMO), _validated(USER_CONFIG)
    for key in sorted((set(demo) | set(user)) - {"data", "models"}):
        assert user.get(key) == demo.get(key), key
    assert {m: s["enabled"] for m, s in user["models"].items()} == {
        m: s["enabled"] for m, s in demo["models"].items()
    }
    assert {k: v for k, v in user["data"].items() if k != "path"} == {
        k: v for k, v in demo["data"].items() if k != "path"
    }


def test_catalog_settings_and_config_readme():
    catalog = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = catalog["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert set(usage["mandatory-flags"]) == {"desc", "flags"}
    deployment = usage["software-stack-deployment"]
    assert deployment["conda"] is True and usage["report"] is True
    assert all(isinstance(v, bool) for v in deployment.values())
    readme = (REPO / "config" / "README.md").read_text()
    assert "module survival_workflow:" in readme and "use rule * from survival_workflow" in readme
