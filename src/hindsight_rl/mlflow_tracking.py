"""What :class:`hindsight_rl.hooks.MlflowTrackingHook` logs, in MLflow's terms: files as
artifacts, policy files as pyfunc models, the retrain champion in the model registry, and the
parent run that groups an Airflow DAG run's tasks.

Imports mlflow: the hook imports this module only once an MLflow run is active, so the
project runs without the ``mlflow`` extra.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import Schema, TensorSpec

import hindsight_rl
from hindsight_rl.core.policy_file import SQUASHED_GAUSSIAN, policy_kind, read_document

logger = logging.getLogger(__name__)

POLICY_MODEL_CODE = Path(__file__).with_name("policy_model.py")
POLICY_ARTIFACT = "policy"
"""The key of the policy file among a policy model's artifacts."""
CHAMPION_ALIAS = "champion"
DAG_ID_TAG, DAG_RUN_TAG = "airflow.dag_id", "airflow.dag_run_id"
PARENT_TAG = "mlflow.parentRunId"  # what MLflow's UI nests runs by


def log_files(client: MlflowClient, run_id: str, files: Iterable[tuple[str, bytes]],
              artifact_path: str) -> None:
    """Each ``(name, bytes)`` as an artifact under ``artifact_path`` (names may hold folders)."""
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files:
            path = Path(folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        client.log_artifacts(run_id, folder, artifact_path=artifact_path)


def policy_signature(document: Mapping[str, Any]) -> ModelSignature:
    """A batch of observations (float32, as Gymnasium's classic-control tasks give them) in;
    each one's greedy action and Q-values out, or an actor's mean action (float32, one row
    of action entries per observation)."""
    width = int(document["observation"]["shape"][0])
    inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, width))])
    if policy_kind(document) == SQUASHED_GAUSSIAN:
        action_dim = int(document["action"]["shape"][0])
        return ModelSignature(inputs=inputs, outputs=Schema(
            [TensorSpec(np.dtype(np.float32), (-1, action_dim), "action")]))
    actions = int(document["n_actions"])
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, width))]),
        outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,), "action"),
                        TensorSpec(np.dtype(np.float32), (-1, actions), "q_values")]))


def model_name(dataset_name: str) -> str:
    """A logged model's name for a dataset (MLflow allows no dots in it):
    ``mountaincar-seed_0-finetuned_policy``."""
    return dataset_name.replace(".", "-")


def log_policy_model(run_id: str, dataset_name: str, file_name: str, data: bytes) -> ModelInfo:
    """The policy file as a pyfunc model of the run, from code (``policy_model.py``): its
    artifacts are that code and the file; requirements are given, not inferred (inference
    imports the model's code in a subprocess); no input example (validating
    it loads the model again: 0.14 s a model instead of 0.04 s), the signature says it all."""
    document = read_document(data, file_name)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*An input example was not provided")
        path = Path(folder) / file_name
        path.write_bytes(data)
        return Model.log(
            artifact_path=None, name=model_name(dataset_name), flavor=mlflow.pyfunc, run_id=run_id,
            python_model=str(POLICY_MODEL_CODE), artifacts={POLICY_ARTIFACT: str(path)},
            signature=policy_signature(document),
            pip_requirements=[f"mlflow=={mlflow.__version__}",
                              f"hindsight-rl=={hindsight_rl.__version__}"])


def registered_model_name(target: str) -> str:
    return f"hindsight-rl-{target}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def register_champion(client: MlflowClient, target: str, model: ModelInfo, file_sha256: str,
                      decision: Mapping[str, Any], run_version: str) -> ModelVersion:
    """The retrain run's champion as a version of ``hindsight-rl-<target>``, aliased
    ``champion``, with the decision as tags. A champion kept (not promoted) that the alias
    already points at stays that version: the registry gains a version per promotion."""
    name = registered_model_name(target)
    current = _aliased_version(client, name)
    if current is not None and current.tags.get("sha256") == file_sha256:
        logger.info("%s: the champion stays version %s", name, current.version)
        return current
    tags = {**{key: str(value) for key, value in decision.items()},
            "sha256": file_sha256, "run_version": run_version}
    version = mlflow.register_model(model.model_uri, name, tags=tags)
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
    logger.info("%s: version %s is the champion", name, version.version)
    return version


def _aliased_version(client: MlflowClient, name: str) -> ModelVersion | None:
    models = client.search_registered_models(filter_string=f"name = '{name}'")
    aliases = models[0].aliases if models else {}
    version = aliases.get(CHAMPION_ALIAS)
    return None if version is None else client.get_model_version(name, version)


def dag_run_parent(client: MlflowClient, experiment_id: str, dag_id: str,
                   dag_run_id: str) -> str:
    """The id of the run grouping an Airflow DAG run's tasks, created by whichever task comes
    first. Two tasks starting at once may both create one: each then keeps the oldest
    and deletes its own if that is not it, so every task ends up under the same parent."""
    found = _dag_runs(client, experiment_id, dag_id, dag_run_id)
    if found:
        return found[0].info.run_id
    created = client.create_run(experiment_id, run_name=f"{dag_id} {dag_run_id}",
                                tags={DAG_ID_TAG: dag_id, DAG_RUN_TAG: dag_run_id})
    parent = _dag_runs(client, experiment_id, dag_id, dag_run_id)[0].info.run_id
    if parent != created.info.run_id:
        client.delete_run(created.info.run_id)
    return parent


def _dag_runs(client: MlflowClient, experiment_id: str, dag_id: str,
              dag_run_id: str) -> list[Run]:
    """Parent runs of this DAG run, oldest first. Airflow's ids hold no quotes (dag ids:
    letters, digits, ``-_.``; run ids: Airflow's ``allowed_run_id_pattern``)."""
    query = f"tags.`{DAG_ID_TAG}` = '{dag_id}' and tags.`{DAG_RUN_TAG}` = '{dag_run_id}'"
    runs = client.search_runs([experiment_id], filter_string=query)
    return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))
