"""``hindsight_rl.mlflow_tracking``: the run grouping an Airflow DAG run's tasks is one, even
when two tasks start at once."""

import mlflow

from hindsight_rl.mlflow_tracking import DAG_ID_TAG, DAG_RUN_TAG, dag_run_parent

DAG, DAG_RUN = "hindsight-rl-retrain-local", "scheduled__2026-12-06T03:00:00+00:00"


class _RacingClient(mlflow.MlflowClient):
    """Another task's parent run appears between this task's search and its create_run."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.searches = 0

    def search_runs(self, *args, **kwargs):
        self.searches += 1
        return [] if self.searches == 1 else super().search_runs(*args, **kwargs)


def test_tasks_of_one_dag_run_share_one_parent_run(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = client.create_experiment("hindsight-rl", artifact_location=str(tmp_path / "a"))
    first = dag_run_parent(client, experiment, DAG, DAG_RUN)
    run = client.get_run(first)
    assert run.info.run_name == f"{DAG} {DAG_RUN}"
    assert (run.data.tags[DAG_ID_TAG], run.data.tags[DAG_RUN_TAG]) == (DAG, DAG_RUN)
    assert dag_run_parent(client, experiment, DAG, DAG_RUN) == first
    assert dag_run_parent(client, experiment, DAG, "manual__other") != first

    racing = _RacingClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert dag_run_parent(racing, experiment, DAG, DAG_RUN) == first
    parents = client.search_runs([experiment], f"tags.`{DAG_RUN_TAG}` = '{DAG_RUN}'")
    assert [parent.info.run_id for parent in parents] == [first], "its own one is deleted"


def _actor_file(tmp_path):
    """An untrained 2-entry-action actor's policy file, its path and the actor."""
    import numpy as np
    import torch

    from hindsight_rl.core.actor_critic import GaussianActor
    from hindsight_rl.core.config import EnvConfig, NetworkConfig
    from hindsight_rl.core.policy_file import Policy, policy_to_bytes

    torch.manual_seed(0)
    actor = GaussianActor(3, np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32),
                          NetworkConfig(hidden_sizes=(8, 8)))
    path = tmp_path / "actor.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=actor, env=EnvConfig(id="Pendulum-v1"),
                                            gamma=0.99)))
    return path, actor


def test_an_actor_models_signature_and_predictions_are_its_mean_actions(tmp_path):
    from types import SimpleNamespace

    import numpy as np
    import torch

    from hindsight_rl.core.policy_file import read_document
    from hindsight_rl.mlflow_tracking import POLICY_ARTIFACT, policy_signature
    from hindsight_rl.policy_model import GreedyPolicy

    path, actor = _actor_file(tmp_path)
    signature = policy_signature(read_document(path.read_bytes())).to_dict()
    assert '"shape": [-1, 3]' in signature["inputs"]
    assert '"name": "action"' in signature["outputs"] and '[-1, 2]' in signature["outputs"]
    assert "q_values" not in signature["outputs"]
    model = GreedyPolicy()
    model.load_context(SimpleNamespace(artifacts={POLICY_ARTIFACT: str(path)}))
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    predicted = model.predict(None, obs)
    with torch.no_grad():
        expected = actor.deterministic(torch.from_numpy(obs)[None])[0].numpy()
    assert list(predicted) == ["action"]
    np.testing.assert_allclose(predicted["action"], expected, atol=1e-5)


def test_a_gru_policy_file_is_refused_as_a_model(tmp_path):
    from types import SimpleNamespace

    import pytest
    import torch

    from hindsight_rl.core.config import EnvConfig, NetworkConfig
    from hindsight_rl.core.networks import QNetwork
    from hindsight_rl.core.policy_file import Policy, PolicyFileError, policy_to_bytes
    from hindsight_rl.mlflow_tracking import POLICY_ARTIFACT
    from hindsight_rl.policy_model import GreedyPolicy

    torch.manual_seed(0)
    network = QNetwork(2, 3, NetworkConfig(hidden_sizes=(8, 8), encoder="gru"))
    path = tmp_path / "gru.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network, env=EnvConfig(id="MountainCar-v0"),
                                            gamma=0.99)))
    with pytest.raises(PolicyFileError, match="gru.safetensors: a gru policy remembers its "
                                              "episode.*python -m hindsight_rl.play"):
        GreedyPolicy().load_context(SimpleNamespace(artifacts={POLICY_ARTIFACT: str(path)}))
