"""One namespaced copy of a stage per target listed in the parameters.

The names come from ``targets`` in the parameters of the ``base`` environment merged with
the run environment (``local`` unless ``KEDRO_ENV`` names another), read once when the
pipelines are registered: adding a target to ``conf/base/parameters_target.yml`` or
``conf/local/`` is enough to give it its own branch of the DAG.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings
from kedro.pipeline import Pipeline

SHARED_INPUTS = {"pretrained_policy"}
SHARED_PARAMETERS = {"params:evaluation", "params:runtime"}


def target_names() -> tuple[str, ...]:
    """Names of the configured targets, in file order."""
    return _target_names(_project_root(Path.cwd()), os.environ.get("KEDRO_ENV", "local"))


@cache
def _target_names(root: Path, env: str) -> tuple[str, ...]:
    loader = OmegaConfigLoader(conf_source=str(root / settings.CONF_SOURCE), base_env="base",
                               default_run_env=env)
    return tuple(loader["parameters"].get("targets", {}))


def _project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` with a Kedro ``pyproject.toml``, as the
    ``kedro`` command itself finds the project."""
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.kedro]" in pyproject.read_text():
            return folder
    raise RuntimeError(f"no Kedro project at or above {start}: run from the project folder")


def per_target(template: Pipeline) -> Pipeline:
    """The template once per target, namespaced ``<target>.``; ``params:target`` maps to
    ``params:targets.<target>``, the pretrained policy and evaluation settings are shared."""
    branches = []
    for name in target_names():
        inputs = SHARED_INPUTS & set(template.inputs())
        parameters = {"params:target": f"params:targets.{name}"}
        parameters.update({p: p for p in SHARED_PARAMETERS if p in template.inputs()})
        branches.append(Pipeline(template, namespace=name, inputs=inputs or None,
                                 parameters=parameters))
    return sum(branches, Pipeline([]))
