"""Project hooks: check every parameter against the DAG's branches before any work, keep torch
to its configured threads in every process that runs nodes, record what each run read
and wrote, and (with the ``mlflow`` extra) add learning curves, reports and policy models to
the MLflow run."""

from __future__ import annotations

import logging
import numbers
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import torch
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset
from kedro.io.core import Version, VersionNotFoundError
from kedro.pipeline import Pipeline
from omegaconf import OmegaConf
from pydantic import BaseModel

from hindsight_rl.core.config import ConfigError, RuntimeConfig, SourceConfig, TargetConfig
from hindsight_rl.core.envs import check_environments, check_table_fits
from hindsight_rl.core.trajectories import is_trajectory_table
from hindsight_rl.datasets import MinariDataset, PolicyFileDataset
from hindsight_rl.datasets.saved_files import file_path, saved_files
from hindsight_rl.pipelines.branches import (
    check_source_actions,
    dag_shape,
    pretrained_policy,
    project_config,
    promotion_outputs,
)
from hindsight_rl.runs import describe_run, run_lines

logger = logging.getLogger(__name__)


class ValidateParametersHook:
    """Parses every parameters file (with ``--params``) into typed config, checks it against
    the DAG's shape and builds every environment as soon as the session's context exists:
    before Kedro's own validation of typed node inputs and before the first node, so a typo
    in a target's section fails in the first second, naming its key, not after pretraining.

    Then checks what a run is given besides parameters: every ``--load-versions`` version
    exists (when the catalog is made, before any node), and every trajectory table a node
    reads fits the environment that node's parameters name (before the node runs, in
    whichever process runs it)."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        shape = dag_shape()
        config = project_config(context.config_loader["parameters"], shape)
        check_environments(config)
        check_source_actions(config, shape)

    @hook_impl
    def after_catalog_created(self, catalog: Any, load_versions: dict[str, str] | None
                              ) -> None:
        for name, version in sorted((load_versions or {}).items()):
            check_load_version(catalog.get(name, fallback_to_runtime_pattern=True), name,
                               version)

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        envs = [value.env for value in inputs.values()
                if isinstance(value, SourceConfig | TargetConfig)]
        if len(envs) != 1:
            return
        for name, value in inputs.items():
            if isinstance(value, pd.DataFrame) and is_trajectory_table(value):
                check_table_fits(value, envs[0], source=_described(catalog, name))


def check_load_version(dataset: Any, name: str, version: str) -> None:
    """``--load-versions name:version`` names a version that was saved: one line saying so
    otherwise, with the versions there are, before any node runs (Kedro would fail when the
    first node loads it, with a traceback)."""
    flag = f"--load-versions {name}:{version}"
    if not isinstance(dataset, AbstractVersionedDataset):
        raise ConfigError(f"{flag}: {name} is not a versioned dataset")
    if dataset.exists():
        return
    saved = [PurePosixPath(path).parent.name for path in dataset._get_versions()]
    listed = (f"saved versions, newest first: {', '.join(saved[:5])}"
              + (f" (and {len(saved) - 5} more)" if len(saved) > 5 else "")
              if saved else "none saved yet")
    raise ConfigError(f"{flag}: no such version of {dataset._filepath}; {listed}")


def _described(catalog: Any, name: str) -> str:
    """``name (path of the version loaded)`` for error messages."""
    dataset = catalog.get(name, fallback_to_runtime_pattern=True)
    if isinstance(dataset, MinariDataset):
        return f"{name} ({dataset.source})"
    if isinstance(dataset, AbstractVersionedDataset):
        try:
            return f"{name} ({dataset._get_load_path()})"
        except VersionNotFoundError:
            pass
    return name


class TorchThreadsHook:
    """Pins torch's intra-op threads (``runtime.torch_threads``) in whichever process runs a
    node: parallel runners' workers included, which never see pipeline-level hooks.

    One thread per process: the networks here are small, so two threads mostly hand work
    back and forth, and the other core is better spent on another branch of the DAG.
    """

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        runtime = inputs.get("params:runtime")
        threads = runtime.torch_threads if isinstance(runtime, RuntimeConfig) else None
        if threads and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


class RunManifestHook:
    """Saves a ``run_manifest`` (versioned JSON, same version as the run's artefacts) saying
    which version of every versioned input the run loaded, which version it saved, how it
    was started and how it ended.

    A run owns its inputs: before the first node, every versioned input the run does not
    produce itself is pinned to the version that is latest then (written into the dataset's
    ``Version``, which travels with the catalog to parallel and Dask workers), so a branch
    never picks up a "latest" another run writes meanwhile. What the run produces itself it
    loads at its own save version (``hindsight_rl.datasets.contracts.RunOwnedVersions``).
    """

    def __init__(self) -> None:
        self._manifest: dict[str, Any] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline,
                            catalog: Any) -> None:
        loaded = {}
        for name in sorted(pipeline.inputs()):
            if not name.startswith("params:"):
                dataset = catalog.get(name, fallback_to_runtime_pattern=True)
                loaded[name] = _pin_load_version(dataset)
        self._manifest = {
            "run_params": {k: v for k, v in run_params.items() if k != "project_path"},
            "loaded_versions": {name: v for name, v in loaded.items() if v is not None},
            "saved_version": catalog.get("run_manifest").resolve_save_version(),
            "nodes": sorted(node.name for node in pipeline.nodes),
        }

    @hook_impl
    def after_pipeline_run(self, catalog: Any) -> None:
        catalog.save("run_manifest", {**self._manifest, "status": "completed"})
        _log_run_summary(catalog.get("run_manifest"), self._manifest["saved_version"])

    @hook_impl
    def on_pipeline_error(self, error: Exception, catalog: Any) -> None:
        catalog.save("run_manifest", {**self._manifest,
                                      "status": f"failed: {type(error).__name__}: {error}"})


def _log_run_summary(manifest: Any, version: str) -> None:
    """The run's verdicts and report paths as its last lines (``kedro runs`` lists every
    run this way); only for a local data folder."""
    if getattr(manifest, "_protocol", "file") not in ("file", "local"):
        return
    data_root = Path(str(manifest._filepath)).parents[1]  # <root>/08_reporting/run_manifest.json
    try:
        lines = run_lines(describe_run(data_root, version))
    except OSError as error:  # a summary never fails a run that has completed
        logger.warning("No summary of run %s: %s", version, error)
        return
    for line in lines:
        logger.info("%s", line)


def _pin_load_version(dataset: Any) -> str | None:
    """The version ``dataset`` loads in this run, pinned in its ``Version`` (None: not a
    versioned dataset, or nothing saved yet)."""
    if not isinstance(dataset, AbstractVersionedDataset):
        return None
    try:
        version = dataset.resolve_load_version()
    except VersionNotFoundError:
        return None
    if dataset._version is not None and dataset._version.load is None:
        dataset._version = Version(version, dataset._version.save)
    return version


class MlflowTrackingHook:
    """Adds to the MLflow run that kedro-mlflow opens (the ``mlflow`` extra) what its
    parameter logging leaves out, and names it ``<pipelines> <run version>``: every learning
    curve as metrics per env step, the evaluation's numbers, every file saved under
    ``08_reporting`` as an artifact, every saved policy as a pyfunc model, the retrain
    champion in the model registry; under Airflow, the run is a child of one run per DAG run.

    Inert without kedro-mlflow: this module never imports mlflow, and nothing is logged unless
    a run is active when the pipeline starts (``hindsight_rl.mlflow_tracking`` does the
    logging). The run's id is kept, so nodes in forked ``ParallelRunner`` workers log to it
    too; spawned workers (Dask) start without it and log nothing.
    """

    HISTORY_COLUMNS = ("env_step", "metric", "value")  # long tables from core.dqn.History
    BATCH = 1000  # MLflow's limit of metrics per log_batch call
    REPORTING_FOLDER = "08_reporting"  # every dataset saved under it is a run artifact

    def __init__(self) -> None:
        self._run: tuple[str, str] | None = None  # (tracking URI, run id)
        self._outer_run_id: str | None = None
        self._catalog: Any = None
        self._version = ""
        self._parent: str | None = None  # the Airflow DAG run's run
        self._promotions: dict[str, str] = {}  # a promote node's output -> its target
        self._models: set[str] = set()  # policies logged as models (others as files)
        self._promoted: dict[str, dict[str, Any]] = {}  # target -> its champion and decision

    @hook_impl(tryfirst=True)  # before kedro-mlflow's, which reads conf/*/mlflow.yml
    def after_context_created(self, context: Any) -> None:
        """``${project_path:}`` in mlflow.yml: the sqlite tracking store stays in the project
        folder, whatever the working directory (kedro-mlflow anchors only plain paths). Also
        notes a run the user opened before the session, which must stay open."""
        mlflow = sys.modules.get("mlflow")
        outer = mlflow.active_run() if mlflow else None  # opened by the user: kept open
        self._outer_run_id = outer.info.run_id if outer else None
        project_path = Path(context.project_path).resolve().as_posix()
        with warnings.catch_warnings():  # OmegaConf 2.4 renamed it; Kedro still calls it too
            warnings.filterwarnings("ignore", message="register_new_resolver")
            OmegaConf.register_new_resolver("project_path", lambda: project_path, replace=True)

    @hook_impl(trylast=True)  # after kedro-mlflow's, which starts the run
    def before_pipeline_run(self, run_params: dict[str, Any], catalog: Any) -> None:
        """Remember the run (and the catalog, to find saved files) for this pipeline only,
        name it, put it under its Airflow DAG run's run, and log every setting as a parameter
        of its own (``source.dqn.learning_rate``): kedro-mlflow flattens only plain dicts, and
        nodes get typed configs."""
        mlflow = sys.modules.get("mlflow")  # not imported by anyone: no run can be active
        run = mlflow.active_run() if mlflow else None
        self._run = (mlflow.get_tracking_uri(), run.info.run_id) if run else None
        self._catalog = catalog if run else None
        if run is None:
            return
        from mlflow import MlflowClient
        from mlflow.entities import Param

        from hindsight_rl import mlflow_tracking as tracking

        client = MlflowClient(self._run[0])
        self._version = str(run_params.get("run_id") or "")  # the session's save version
        shape = dag_shape()
        self._promotions = {dataset: target for target, outputs
                            in promotion_outputs(shape.targets).items() for dataset in outputs}
        self._models = ({pretrained_policy(s) for s in shape.sources_of(shape.all_targets)}
                        | set(self._promotions))
        if run.info.run_id != self._outer_run_id:
            pipelines = "+".join(run_params.get("pipeline_names") or ["__default__"])
            if run.info.run_name == pipelines:  # kedro-mlflow's default: mlflow.yml names none
                client.update_run(run.info.run_id, name=f"{pipelines} {self._version}")
            dag_run = airflow_dag_run()
            if dag_run is not None:
                self._parent = tracking.dag_run_parent(client, run.info.experiment_id, *dag_run)
                client.set_tag(run.info.run_id, tracking.PARENT_TAG, self._parent)
        parameters = catalog.load("parameters") if "parameters" in catalog else {}
        settings = {key: value for key, value in _flat(parameters) if not key.startswith("_")}
        params = [Param(key, str(value)) for key, value in settings.items()]
        for start in range(0, len(params), 100):  # MLflow's limit per log_batch call
            client.log_batch(self._run[1], params=params[start:start + 100])

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        """After the save, so only what was saved is logged, and its file exists."""
        if self._run is None:
            return
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        tracking_uri, run_id = self._run
        client = MlflowClient(tracking_uri)
        now = int(time.time() * 1000)
        metrics = [Metric(_metric_key(f"{dataset_name}/{key}"), value, now, step)
                   for key, step, value in self._metrics(data)]
        for start in range(0, len(metrics), self.BATCH):
            client.log_batch(run_id, metrics=metrics[start:start + self.BATCH])
        model = self._log_files(client, dataset_name)
        if dataset_name in self._promotions:
            self._promote(dataset_name, model or {"decision": data})

    def _log_files(self, client: Any, dataset_name: str) -> dict[str, Any] | None:
        """A pretrained or champion policy as a model (returned, with its file's SHA-256),
        other policies as files under ``policies/<dataset>/``, a file under ``08_reporting``
        under ``reporting/<dataset>/``.

        Only the policies that are deployed are models: logging one takes MLflow 0.1–0.5 s
        (it also copies every step-0 metric of the run into the model, one query per
        metric), a file 0.01 s; a seed's policy is one of many evaluated, and its file
        plays the same way."""
        from hindsight_rl import mlflow_tracking as tracking

        run_id = self._run[1]
        dataset = self._catalog.get(dataset_name, fallback_to_runtime_pattern=True)
        path = file_path(dataset)
        if isinstance(dataset, PolicyFileDataset) and dataset_name in self._models:
            ((name, data),) = saved_files(dataset)
            return {"model": tracking.log_policy_model(run_id, dataset_name, name, data),
                    "sha256": tracking.sha256(data)}
        if isinstance(dataset, PolicyFileDataset):
            tracking.log_files(client, run_id, saved_files(dataset), f"policies/{dataset_name}")
        elif path is not None and self.REPORTING_FOLDER in path.parts:
            tracking.log_files(client, run_id, saved_files(dataset), f"reporting/{dataset_name}")
        return None

    def _promote(self, dataset_name: str, part: dict[str, Any]) -> None:
        """Collect a promote node's two outputs (champion, decision) in whichever order they
        are saved; with both, register the champion."""
        from mlflow import MlflowClient

        from hindsight_rl import mlflow_tracking as tracking

        target = self._promotions[dataset_name]
        promoted = self._promoted.setdefault(target, {})
        promoted.update(part)
        if {"model", "decision"} <= set(promoted):
            del self._promoted[target]
            tracking.register_champion(MlflowClient(self._run[0]), target, promoted["model"],
                                       promoted["sha256"], promoted["decision"], self._version)

    @hook_impl(trylast=True)  # after kedro-mlflow's, which ends its run once
    def after_pipeline_run(self) -> None:
        """The run manifest (saved by RunManifestHook, outside any node) joins the artifacts.

        kedro-mlflow re-enters its run before nodes on the session's thread but ends it
        once, so it would stay active and the next session in this process (a notebook,
        ``kedro ipython``) would log into it. End what is left of it, unless the run was
        opened before the session (kedro-mlflow then logs into it and leaves it open)."""
        if self._run is not None:
            self._finish("FINISHED")
            if self._run[1] != self._outer_run_id:
                mlflow = sys.modules["mlflow"]
                while (run := mlflow.active_run()) is not None and run.info.run_id == self._run[1]:
                    mlflow.end_run()
        self._forget()

    @hook_impl(trylast=True)  # after RunManifestHook's, which saves the failed run's manifest
    def on_pipeline_error(self) -> None:
        if self._run is not None:
            self._finish("FAILED")
        self._forget()

    def _finish(self, status: str) -> None:
        """Log the run manifest; the DAG run's run ends as its latest task did."""
        from mlflow import MlflowClient

        client = MlflowClient(self._run[0])
        if "run_manifest" in self._catalog:
            self._log_files(client, "run_manifest")
        if self._parent is not None:
            client.set_terminated(self._parent, status)

    def _forget(self) -> None:
        self._run = self._catalog = self._parent = None
        self._promoted = {}

    @classmethod
    def _metrics(cls, data: Any) -> Iterator[tuple[str, int, float]]:
        """(key, step, value): a history's rows stepped by env step, a dict's numbers at 0."""
        if isinstance(data, pd.DataFrame) and set(cls.HISTORY_COLUMNS) <= set(data.columns):
            rows = data[list(cls.HISTORY_COLUMNS)].drop_duplicates()
            for step, metric, value in rows.itertuples(index=False):
                yield str(metric), int(step), float(value)
        elif isinstance(data, dict):
            for key, value in _numbers(data):
                yield key, 0, value


def airflow_dag_run() -> tuple[str, str] | None:
    """(dag id, DAG run id) when an Airflow task runs this session: Airflow exports them to
    the task's process (and the project's DAG template sets them too)."""
    dag_id, run_id = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    return (dag_id, run_id) if dag_id and run_id else None


def _numbers(data: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Numeric leaves of nested dicts and lists, keyed ``arms.finetuned.final_return.iqm``;
    booleans count as 0/1, text and ``None`` are skipped."""
    if isinstance(data, dict | list):
        items = data.items() if isinstance(data, dict) else enumerate(data)
        for key, value in items:
            yield from _numbers(value, f"{prefix}{key}.")
    elif isinstance(data, numbers.Real):  # numpy scalars too
        yield prefix[:-1], float(data)


def _flat(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(key.path, value)`` of the leaves of nested dicts and config models."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _flat(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], data


def _metric_key(key: str) -> str:
    """MLflow allows letters, digits, ``_ - . / :`` and spaces in metric names."""
    return re.sub(r"[^\w\-./: ]", "_", key)
