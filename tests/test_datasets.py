"""The default target on every dataset scikit-survival bundles, all rows: exit 0."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from conftest import copy_workflow, snakemake
from survival_framework.demo import DEMO_DATASETS
from survival_framework.models import MODEL_NAMES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dataset", sorted(DEMO_DATASETS))
def test_default_target_finishes_on_every_bundled_dataset(dataset, tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    overlay = tmp_path / "data.yaml"
    path = f"resources/demo/{dataset}.csv"
    overlay.write_text(yaml.safe_dump({"data": {"path": path}}))
    proc = snakemake(wd, "--cores", "2", "--configfile", "config/test/datasets.yaml", str(overlay))
    assert proc.returncode == 0
    board = pd.read_csv(wd / "results" / "leaderboard.csv")
    assert sorted(board["model"]) == sorted(MODEL_NAMES)
    n_rows = len(pd.read_csv(wd / path))
    assert yaml.safe_load((wd / "results" / "data" / "schema.json").read_text())["n_rows_used"] == (
        n_rows
    )
    for part in ("ph/schoenfeld.csv", "report/leaderboard.html", "final/best/model.joblib"):
        assert (wd / "results" / part).exists(), part
