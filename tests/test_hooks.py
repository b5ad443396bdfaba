"""The project's hooks. MlflowTrackingHook: with the ``mlflow`` extra a run records
parameters, learning curves and policy files in the project's sqlite store; without an MLflow
run it does nothing. ValidateParametersHook checks what nodes read against their parameters;
RunManifestHook pins a run's inputs."""

from __future__ import annotations

import pickle  # a parallel runner sends the catalog to its workers pickled
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.io.core import Version
from kedro.pipeline import Node, Pipeline

from hindsight_rl.core.config import CollectConfig, EnvConfig, SourceConfig
from hindsight_rl.core.rollouts import collect_rollouts, trajectory_attrs
from hindsight_rl.core.trajectories import TrajectoryTableError, to_table
from hindsight_rl.datasets import (
    AtomicJSONDataset,
    AtomicTextDataset,
    PolicyFileDataset,
    TrajectoryDataset,
)
from hindsight_rl.hooks import MlflowTrackingHook, RunManifestHook, ValidateParametersHook
from tests.pipelines import conftest as pipelines
from tests.pipelines.conftest import run_session, versions

project = pipelines.project  # the pipeline tests' fixture: a project copy as working dir

HISTORY = pd.DataFrame({"env_step": [200, 400], "metric": ["eval_return"] * 2,
                        "value": [-200.0, -180.0]})
POLICIES = {"sources.cartpole.pretrained_policy":
                "data/06_models/sources/cartpole/pretrained_policy.safetensors",
            "mountaincar.seed_1.finetuned_policy":
                "data/06_models/mountaincar/seed_1/finetuned_policy.safetensors"}


class _NoClient:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be logged without an active MLflow run")


@pytest.mark.parametrize("mlflow_imported", [False, True])
def test_without_an_mlflow_run_the_hook_does_nothing(monkeypatch, tmp_path, mlflow_imported):
    if mlflow_imported:
        import mlflow  # the test extra installs the mlflow extra
        assert mlflow.active_run() is None
        monkeypatch.setattr(mlflow, "MlflowClient", _NoClient)
    else:
        monkeypatch.delitem(sys.modules, "mlflow", raising=False)
    catalog = DataCatalog({"policy": PolicyFileDataset(filepath=str(tmp_path / "p.safetensors"))})
    hook = MlflowTrackingHook()
    hook.before_pipeline_run(catalog=catalog)
    hook.after_dataset_saved(dataset_name="mountaincar.seed_0.finetune_history", data=HISTORY)
    hook.after_dataset_saved(dataset_name="mountaincar.transfer_metrics", data={"auc": 1.0})
    hook.after_dataset_saved(dataset_name="policy", data=object())
    hook.after_pipeline_run()
    assert ("mlflow" in sys.modules) == mlflow_imported, "the hook must never import mlflow"


@pytest.mark.parametrize("opened_by_user", [False, True])
def test_the_session_leaves_only_a_run_the_user_opened(monkeypatch, tmp_path, opened_by_user):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns.db'}")
    hook, context = MlflowTrackingHook(), SimpleNamespace(project_path=tmp_path)
    outer = mlflow.start_run() if opened_by_user else None
    hook.after_context_created(context=context)
    run = outer or mlflow.start_run()  # kedro-mlflow's before_pipeline_run
    if not opened_by_user:
        mlflow.start_run(run_id=run.info.run_id, nested=True)  # re-entered before a node
    hook.before_pipeline_run(catalog=DataCatalog())
    if not opened_by_user:
        mlflow.end_run()  # kedro-mlflow's after_pipeline_run ends it once
    hook.after_pipeline_run()
    active = mlflow.active_run()
    assert (active.info.run_id if active else None) == (run.info.run_id if outer else None)
    mlflow.end_run()


def test_the_project_does_not_import_mlflow():
    code = "import sys, hindsight_rl.settings; print('mlflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.pipeline
def test_a_run_logs_parameters_learning_curves_and_policy_files(project, tmp_path):
    import mlflow  # the test extra installs the mlflow extra (kedro-mlflow registers itself)
    run_session(project)
    assert mlflow.active_run() is None, "the run ends with the session (the next one is new)"

    store = f"sqlite:///{project.resolve().as_posix()}/mlruns.db"
    assert mlflow.get_tracking_uri() == store, "conf/base/mlflow.yml, anchored at the project"
    client = mlflow.MlflowClient(store)
    experiment = client.get_experiment_by_name("hindsight-rl")
    assert experiment.artifact_location == (project.resolve() / "mlartifacts").as_uri()
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "__default__"

    # Parameters: every setting flattened (nodes get typed configs); conf/smoke's values.
    assert run.data.params["sources.cartpole.dqn.total_steps"] == "600"
    assert run.data.params["targets.mountaincar.dqn.n_step"] == "5"

    # Learning curves: one metric per history and curve, stepped by env step.
    (saved,) = versions(project, "data/07_model_output/mountaincar/seed_0/"
                                 "finetune_history.parquet")
    history = pd.read_parquet(next(saved.glob("*.parquet")))
    expected = history[history["metric"] == "eval_return"]
    curve = client.get_metric_history(run.info.run_id,
                                      "mountaincar.seed_0.finetune_history/eval_return")
    assert len(curve) >= 2
    assert sorted((m.step, m.value) for m in curve) == sorted(
        zip(expected["env_step"], expected["value"], strict=True))
    assert run.data.metrics["mountaincar.transfer_metrics/arms.finetuned.seeds"] == 3.0

    # Policy files: the bytes the catalog saved.
    for name, path in POLICIES.items():
        (version,) = versions(project, path)
        (file,) = version.glob("*.safetensors")
        logged = client.download_artifacts(run.info.run_id, f"policies/{name}/{file.name}",
                                           str(tmp_path))
        assert Path(logged).read_bytes() == file.read_bytes(), name


# --- ValidateParametersHook: what a node reads fits the env its parameters name -----------

def _mountaincar_rollouts() -> pd.DataFrame:
    env = EnvConfig(id="MountainCar-v0")
    table = to_table(collect_rollouts(env, 10, lambda obs: 0, seed=0))
    table.attrs = trajectory_attrs(env, CollectConfig(steps=10), behaviour_sha256=None)
    return table


def test_a_node_never_trains_on_a_table_from_another_env(tmp_path):
    catalog = DataCatalog({"source_rollouts": TrajectoryDataset(
        filepath=str(tmp_path / "r.parquet"), version=Version(None, "2026-01-01T00.00.00.000Z"))})
    catalog.save("source_rollouts", _mountaincar_rollouts())
    source = SourceConfig(env=EnvConfig(id="CartPole-v1"))
    inputs = {"source_rollouts": catalog.load("source_rollouts"), "params:source": source}
    with pytest.raises(TrajectoryTableError, match=(
            r"^source_rollouts \(.*r.parquet/2026-01-01T00.00.00.000Z/r.parquet\): was collected "
            r"with env_id 'MountainCar-v0', but the node's env has 'CartPole-v1'")):
        ValidateParametersHook().before_node_run(node=None, catalog=catalog, inputs=inputs)
    matching = {**inputs, "params:source": SourceConfig(env=EnvConfig(id="MountainCar-v0"))}
    ValidateParametersHook().before_node_run(node=None, catalog=catalog, inputs=matching)


# --- RunManifestHook: a run's inputs are pinned when it starts ----------------------------

def test_inputs_stay_pinned_when_another_run_writes_a_newer_version(tmp_path):
    """Pinned in the dataset's Version, not in a cache: a released dataset, or one sent to a
    worker process, still loads the version that was latest when the run started."""
    def report(version: Version) -> AtomicTextDataset:
        return AtomicTextDataset(filepath=str(tmp_path / "report.md"), version=version)

    report(Version(None, "2026-01-01T00.00.00.000Z")).save("before the run")
    run = Version(None, "2026-01-02T00.00.00.000Z")
    catalog = DataCatalog({"report": report(run), "run_manifest": AtomicJSONDataset(
        filepath=str(tmp_path / "manifest.json"), version=run)})
    pipeline = Pipeline([Node(len, "report", "length", name="read_report")])
    RunManifestHook().before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
    report(Version(None, "2026-01-03T00.00.00.000Z")).save("another run's, written meanwhile")
    dataset = catalog.get("report")
    dataset._release()  # what a runner does once nothing else needs it
    in_a_worker = pickle.loads(pickle.dumps(dataset))
    assert in_a_worker.load() == "before the run"
