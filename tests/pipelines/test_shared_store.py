"""The catalog's paths are fsspec URLs: pointing ``data_root`` at another store moves every
artefact there (here fsspec's in-memory store standing in for s3:// or gs://)."""

import fsspec
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import copy_project


def test_every_artefact_lands_in_the_configured_store(tmp_path):
    project = copy_project(tmp_path)
    (project / "conf/smoke/globals.yml").write_text("data_root: memory://shared-store\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env="smoke") as session:
            session.run(pipeline_names=["source"])
    store = fsspec.filesystem("memory")
    saved = store.find("/")
    assert any(p.endswith("pretrained_policy.safetensors") for p in saved)
    assert any(p.endswith("source_rollouts.parquet") for p in saved)
    assert not (project / "data").exists()
