"""Project hooks: check every parameter and the DAG's branches before any work, keep torch
to its configured threads in every process that runs nodes, and record what each run read
and wrote."""

from __future__ import annotations

from typing import Any

import torch
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset
from kedro.io.core import VersionNotFoundError
from kedro.pipeline import Pipeline

from hindsight_rl.core.config import ConfigError, ProjectConfig, from_mapping
from hindsight_rl.core.envs import check_environments


def project_config(parameters: dict[str, Any]) -> ProjectConfig:
    """All parameters as typed config; keys starting with ``_`` are YAML anchors, not
    settings."""
    return from_mapping(ProjectConfig,
                        {k: v for k, v in parameters.items() if not k.startswith("_")})


def check_seed_branches(config: ProjectConfig, pipeline: Pipeline) -> None:
    """Every seed branch in the DAG must be a configured seed and the other way round; they
    disagree when the pipelines were registered from another config environment."""
    for name, target in config.targets.items():
        branches = {n.namespace.rsplit(".seed_", 1)[1] for n in pipeline.nodes
                    if n.namespace and n.namespace.startswith(f"{name}.seed_")}
        if branches and branches != {str(s) for s in target.seeds}:
            raise ConfigError(
                f"targets.{name}.seeds: got {list(target.seeds)}, but the pipeline has "
                f"branches for seeds {sorted(int(b) for b in branches)}; run with "
                "`kedro run --env <env>` or set KEDRO_ENV so both come from one environment")


class ValidateParametersHook:
    """Parses every parameters file into typed config and builds every environment before
    the first node runs, so a typo in a target's section fails in the first second, not
    after pretraining."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline,
                            catalog: Any) -> None:
        config = project_config(catalog.load("parameters"))
        check_environments(config)
        check_seed_branches(config, pipeline)


class TorchThreadsHook:
    """Pins torch's intra-op threads (``runtime.torch_threads``) in whichever process runs a
    node: parallel runners' workers included, which never see pipeline-level hooks.

    One thread per process: the networks here are small, so two threads mostly hand work
    back and forth, and the other core is better spent on another branch of the DAG.
    """

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        threads = (inputs.get("params:runtime") or {}).get("torch_threads")
        if threads and torch.get_num_threads() != threads:
            torch.set_num_threads(int(threads))


class RunManifestHook:
    """Saves a ``run_manifest`` (versioned JSON, same version as the run's artefacts) saying
    which version of every versioned input the run loaded, which version it saved, how it
    was started and how it ended.

    Resolving the inputs' versions before the first node also pins them for the whole run,
    in worker processes too: a branch never picks up a "latest" written meanwhile.
    """

    def __init__(self) -> None:
        self._manifest: dict[str, Any] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline,
                            catalog: Any) -> None:
        loaded = {name: _load_version(catalog.get(name, fallback_to_runtime_pattern=True))
                  for name in sorted(pipeline.inputs()) if not name.startswith("params:")}
        self._manifest = {
            "run_params": {k: v for k, v in run_params.items() if k != "project_path"},
            "loaded_versions": {name: v for name, v in loaded.items() if v is not None},
            "saved_version": catalog.get("run_manifest").resolve_save_version(),
            "nodes": sorted(node.name for node in pipeline.nodes),
        }

    @hook_impl
    def after_pipeline_run(self, catalog: Any) -> None:
        catalog.save("run_manifest", {**self._manifest, "status": "completed"})

    @hook_impl
    def on_pipeline_error(self, error: Exception, catalog: Any) -> None:
        catalog.save("run_manifest", {**self._manifest,
                                      "status": f"failed: {type(error).__name__}: {error}"})


def _load_version(dataset: Any) -> str | None:
    if not isinstance(dataset, AbstractVersionedDataset):
        return None
    try:
        return dataset.resolve_load_version()
    except VersionNotFoundError:
        return None
