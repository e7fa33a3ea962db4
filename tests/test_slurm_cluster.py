"""The Slurm profile on a real one-node Slurm cluster (tests/cluster/test_slurm.sh)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slurm]


@pytest.mark.skipif(os.geteuid() != 0, reason="bringing up slurmctld/slurmd needs root")
def test_workflow_runs_through_slurm_and_matches_local_run():
    # the script uses the repo's .venv snakemake (or SNAKEMAKE from the environment)
    proc = subprocess.run(
        ["bash", str(REPO / "tests/cluster/test_slurm.sh")],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    out = proc.stdout + proc.stderr
    if "SKIP:" in out:
        pytest.skip(out[out.index("SKIP:") :].splitlines()[0])
    assert proc.returncode == 0, out[-6000:]
    summary = re.search(r"^slurm: (\d+) passed, (\d+) failed", out, re.M)
    assert summary and int(summary[1]) >= 5 and summary[2] == "0", out[-6000:]
    assert "every fit_model job ran through Slurm" in out
    assert "tuning jobs ran through Slurm and chose as the local run did" in out
