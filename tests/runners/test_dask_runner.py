"""The smoke pipeline on a two-worker Dask LocalCluster writes what a sequential run writes."""

import os
import subprocess
import sys

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from hindsight_rl import settings
from hindsight_rl.runners import DaskRunner
from tests.conftest import copy_project


def _artefacts(project):
    """Every saved file by its path without the version folder, with its bytes (the run's
    version, which reports cite, replaced by ``<version>``)."""
    files = {}
    for path in (project / "data").rglob("*"):
        if path.is_file() and path.name not in (".gitkeep", "run_manifest.json"):
            parts = path.relative_to(project).parts
            version = next(p for p in parts if p.startswith("20")).encode()
            files["/".join(p for p in parts if not p.startswith("20"))] = \
                path.read_bytes().replace(version, b"<version>")
    return files


def test_dask_run_writes_the_same_artefacts_as_a_sequential_run(tmp_path):
    sequential, dask = copy_project(tmp_path / "sequential"), copy_project(tmp_path / "dask")
    subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "smoke"], cwd=sequential,
                   check=True, capture_output=True, env={**os.environ, "DO_NOT_TRACK": "1"})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(dask)
        bootstrap_project(dask)
        with KedroSession.create(project_path=dask, env="smoke") as session:
            session.run(runner=DaskRunner(cluster_args={"n_workers": 2}))
    expected, got = _artefacts(sequential), _artefacts(dask)
    # 3 source datasets; per target 8, and per seed 4 and a GIF per arm
    targets = settings.DAG_SHAPE["targets"]
    assert len(expected) == 3 + sum(8 + len(branch["seeds"]) * 6 for branch in targets.values())
    assert sorted(got) == sorted(expected)
    different = [path for path in expected if got[path] != expected[path]]
    assert not different
