"""docs/notebooks/quickstart.ipynb: executed end to end (nbclient, a real kernel), so it
never goes stale; stored with its outputs stripped."""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from survival_framework.modelspec import read_registry

NOTEBOOK = REPO / "docs" / "notebooks" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "the notebook has code cells"
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.integration
def test_notebook_runs_the_demo_end_to_end(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    def text(cell) -> str:
        parts = []
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
        return "".join(parts)

    cells = [c for c in nb.cells if c.cell_type == "code"]
    run = next(c for c in cells if "run_pipeline(" in c.source)
    assert "survival-workflow: execution mode" in text(run)
    for model in read_registry():  # every model of the demo config on the leaderboard
        assert model in text(run)
    images = sum("image/png" in out.get("data", {}) for c in cells for out in c.get("outputs", []))
    assert images == 3  # CV boxplot, Kaplan-Meier, predicted curves
    scored = next(c for c in cells if "predict_file(" in c.source)
    assert "median_time" in text(scored) and "risk" in text(scored)
    assert not list(tmp_path.iterdir()), "the notebook writes into its own temporary folder"
