"""Project hooks: check every parameter before any work, then set up torch."""

from __future__ import annotations

from typing import Any

import torch
from kedro.framework.hooks import hook_impl

from hindsight_rl.core.config import ProjectConfig, from_mapping
from hindsight_rl.core.envs import check_environments


def project_config(parameters: dict[str, Any]) -> ProjectConfig:
    """All parameters as typed config; keys starting with ``_`` are YAML anchors, not
    settings."""
    return from_mapping(ProjectConfig,
                        {k: v for k, v in parameters.items() if not k.startswith("_")})


class ValidateParametersHook:
    """Parses every parameters file into typed config and builds every environment before
    the first node runs, so a typo in a target's section fails in the first second, not
    after pretraining; also pins torch's threads (``runtime.torch_threads``).

    One thread per process: the networks here are small, so two threads mostly hand work
    back and forth, and the other core is left to a parallel runner's second worker.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any,
                            catalog: Any) -> None:
        config = project_config(catalog.load("parameters"))
        check_environments(config)
        if config.runtime.torch_threads:
            torch.set_num_threads(config.runtime.torch_threads)
