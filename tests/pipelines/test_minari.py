"""Minari interop in real runs: ``kedro run --pipeline export_minari`` writes each target's
hindsight dataset as a Minari dataset, and a Minari dataset given as a source's rollouts is
pretrained from, or refused when it was collected on another env."""

from pathlib import Path

import minari
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.io.core import Version

from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.errors import project_error_in
from hindsight_rl.core.minari_io import env_steps, read_minari_dataset, write_minari_dataset
from hindsight_rl.datasets import TrajectoryDataset
from tests.conftest import hindsight_table
from tests.pipelines.conftest import run_session, versions

EXPORTED = "data/10_export/minari"
SOURCE = "sources.cartpole.source_rollouts"


def _latest_hindsight_dataset(project: Path, target: str) -> pd.DataFrame:
    path = project / "data" / "03_primary" / target / "hindsight_dataset.parquet"
    return TrajectoryDataset(filepath=str(path), version=Version(None, None)).load()


def test_export_writes_the_latest_hindsight_dataset_of_each_target(project, monkeypatch):
    run_session(project, pipeline_names=["source", "target"])
    run_session(project, pipeline_names=["export_minari"])
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(project / EXPORTED))
    assert sorted(minari.list_local_datasets()) == [
        "hindsight-rl/cartpole_long_pole/hindsight-v0", "hindsight-rl/mountaincar/hindsight-v0"]
    long_pole = minari.load_dataset("hindsight-rl/cartpole_long_pole/hindsight-v0")
    assert long_pole.env_spec.id == "CartPole-v1" and "overrides {'length'" in \
        long_pole.storage.metadata["description"]

    run_session(project, pipeline_names=["target"],
                runtime_params={"targets": {"mountaincar": {"collect": {"steps": 150}}}})
    run_session(project, pipeline_names=["export_minari"])  # replaces the last export
    assert minari.load_dataset("hindsight-rl/mountaincar/hindsight-v0").total_steps == 150
    for target in ("mountaincar", "cartpole_long_pole"):
        pd.testing.assert_frame_equal(
            read_minari_dataset(project / EXPORTED, f"hindsight-rl/{target}/hindsight-v0"),
            env_steps(_latest_hindsight_dataset(project, target)))


def _saved(project: Path, relative: str) -> int:
    """How many versions of a versioned dataset the project holds."""
    return len(versions(project, relative)) if (project / relative).exists() else 0


def _run_with_source(project: Path, datasets_path: Path, dataset_id: str, **run_args) -> None:
    """``kedro run --pipeline source`` with ``sources.cartpole.source_rollouts`` pointed at a
    Minari dataset in the catalog (smoke's parameters, in an environment of its own)."""
    conf = project / "conf" / "minari_source"
    conf.mkdir(exist_ok=True)
    (conf / "parameters.yml").write_text((project / "conf/smoke/parameters.yml").read_text())
    (conf / "catalog.yml").write_text(yaml.safe_dump({SOURCE: {
        "type": "hindsight_rl.datasets.MinariDataset", "datasets_path": str(datasets_path),
        "dataset_id": dataset_id}}))
    with KedroSession.create(project_path=project, env="minari_source") as session:
        session.run(pipeline_names=["source"], **run_args)


def test_pretraining_reads_a_minari_dataset_given_as_source_rollouts(project, tmp_path):
    write_minari_dataset(hindsight_table(EnvConfig(id="CartPole-v1"), 300), tmp_path,
                         "cartpole/random-v0")
    policies = "data/06_models/sources/cartpole/pretrained_policy.safetensors"
    collected = "data/01_raw/sources/cartpole/source_rollouts.parquet"
    before = _saved(project, policies), _saved(project, collected)
    _run_with_source(project, tmp_path, "cartpole/random-v0",
                     from_nodes=["sources.cartpole.pretrain"])
    assert (_saved(project, policies), _saved(project, collected)) == (before[0] + 1,
                                                                       before[1])


def _refusal(project: Path, datasets_path: Path, dataset_id: str, **run_args) -> str:
    with pytest.raises(Exception) as raised:
        _run_with_source(project, datasets_path, dataset_id, **run_args)
    error = project_error_in(raised.value)
    assert error is not None, "a project error, printed as one line by `kedro run`"
    return str(error)


def test_a_minari_dataset_of_another_env_is_refused_before_pretraining(project, tmp_path):
    long_pole = EnvConfig(id="CartPole-v1", overrides={"length": 1.0, "masspole": 0.2})
    write_minari_dataset(hindsight_table(long_pole, 50), tmp_path, "long-pole-v0")
    write_minari_dataset(hindsight_table(EnvConfig(id="Acrobot-v1"), 50), tmp_path,
                         "acrobot-v0")
    histories = "data/07_model_output/sources/cartpole/pretrain_history.parquet"
    before = _saved(project, histories)
    assert _refusal(project, tmp_path, "long-pole-v0",
                    from_nodes=["sources.cartpole.pretrain"]) == (
        f"{SOURCE} (Minari dataset long-pole-v0 in {tmp_path}): was collected with overrides "
        "{'length': 1.0, 'masspole': 0.2}, but the node's env has {}; collect it again or "
        "load a version that matches")
    assert "was collected with env_id 'Acrobot-v1', but the node's env has 'CartPole-v1'" in \
        _refusal(project, tmp_path, "acrobot-v0", from_nodes=["sources.cartpole.pretrain"])
    assert _saved(project, histories) == before


def test_collecting_never_replaces_a_minari_dataset_read_as_source_rollouts(project, tmp_path):
    table = hindsight_table(EnvConfig(id="CartPole-v1"), 40)
    write_minari_dataset(table, tmp_path, "cartpole/random-v0")
    assert "exists already and this dataset is set not to overwrite it" in \
        _refusal(project, tmp_path, "cartpole/random-v0")
    pd.testing.assert_frame_equal(read_minari_dataset(tmp_path, "cartpole/random-v0"), table)
