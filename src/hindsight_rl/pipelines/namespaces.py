"""Branches of the DAG made from the parameters: one namespace per target, and inside it one
per group of training seeds (``mountaincar.seeds_0_1_2.finetune``), each seed with datasets of
its own (``mountaincar.seed_0.finetuned_policy``).

Target names and seeds come from ``targets`` in the parameters of the ``base`` environment
merged with the run environment (``local`` unless ``KEDRO_ENV`` names another), read once
when the pipelines are registered: adding a target or a seed to the parameters is enough to
give it its own branches, its own datasets and its own task for a parallel runner.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

from kedro.framework.project import settings
from kedro.pipeline import Node, Pipeline

from hindsight_rl.core.config import (
    AblationConfig,
    ConfigError,
    TargetConfig,
    from_mapping,
    group_seeds,
)

SHARED_INPUTS = {"pretrained_policy"}
SHARED_PARAMETERS = {"params:evaluation", "params:runtime"}
_DEFAULT_SEEDS = next(f.default for f in fields(TargetConfig) if f.name == "seeds")


def targets() -> dict[str, tuple[int, ...]]:
    """Configured targets and their training seeds, in file order."""
    return {name: tuple(int(s) for s in (section or {}).get("seeds", _DEFAULT_SEEDS))
            for name, section in _parameters().get("targets", {}).items()}


def ablation_runs() -> dict[str, dict[str, tuple[int, ...]]]:
    """Per ablated target, its arms and their seeds; empty when the ablation's parameters
    do not parse (the parameter check names the error when a run starts)."""
    parameters = _parameters()
    try:
        plan = from_mapping(AblationConfig, parameters.get("ablation"), "ablation")
        sections = parameters.get("targets", {})
        return {name: {arm: plan.seeds for arm in plan.arms_for(
                    from_mapping(TargetConfig, sections[name], f"targets.{name}"))}
                for name in plan.budgets if name in sections}
    except ConfigError:
        return {}


def ablation_budget(target_name: str) -> int | None:
    """The ablation's env-step budget on ``target_name`` (None when it does not parse)."""
    try:
        return from_mapping(AblationConfig, _parameters().get("ablation"),
                            "ablation").budgets.get(target_name)
    except ConfigError:
        return None


def training_cost(target_name: str, seeds: int, fine_tuned: bool,
                  budget: int | None = None) -> float:
    """Thousands of env steps plus sampled rows through the big products of gradient
    updates that ``seeds`` runs on ``target_name`` take (``budget`` env steps instead of the
    target's own): the ``cost_`` tag :class:`hindsight_rl.runners.ParallelRunner` schedules
    by. An update is five trunk-sized products per row (three forward passes, two backward
    ones), four when fine-tuning leaves the trunk frozen. 1 when the target's parameters do
    not parse (the parameter check names the error when a run starts)."""
    try:
        target = from_mapping(TargetConfig, _parameters().get("targets", {}).get(target_name),
                              f"targets.{target_name}")
    except ConfigError:
        return 1.0
    dqn, steps = target.dqn, budget or target.dqn.total_steps
    updates = max(0, steps - dqn.learning_starts) / dqn.train_freq * dqn.gradient_steps
    products = 4 if fine_tuned and "trunk" in target.finetune.frozen else 5
    return seeds * (steps + updates * dqn.batch_size * products / 5) / 1000


def _parameters() -> dict[str, Any]:
    return _load_parameters(_project_root(Path.cwd()), os.environ.get("KEDRO_ENV", "local"))


@cache
def _load_parameters(root: Path, env: str) -> dict[str, Any]:
    loader = settings.CONFIG_LOADER_CLASS(conf_source=str(root / settings.CONF_SOURCE),
                                          env=env, **settings.CONFIG_LOADER_ARGS)
    return loader["parameters"]


def _project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` with a Kedro ``pyproject.toml``, as the
    ``kedro`` command itself finds the project."""
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.kedro]" in pyproject.read_text():
            return folder
    raise RuntimeError(f"no Kedro project at or above {start}: run from the project folder")


def per_target(template: Pipeline | Callable[[tuple[int, ...]], Pipeline]) -> Pipeline:
    """The template once per target, namespaced ``<target>.``; ``params:target`` maps to
    ``params:targets.<target>``, the pretrained policy and shared settings are not renamed.

    ``template`` may be a function of the target's seeds, for stages whose shape depends on
    them (one branch per seed, an evaluation that reads every seed).
    """
    branches = []
    for name, seeds in targets().items():
        pipeline = template(seeds) if callable(template) else template
        inputs = SHARED_INPUTS & set(pipeline.inputs())
        parameters = {"params:target": f"params:targets.{name}"}
        parameters.update({p: p for p in SHARED_PARAMETERS if p in pipeline.inputs()})
        branches.append(Pipeline(pipeline, namespace=name, inputs=inputs or None,
                                 parameters=parameters))
    return sum(branches, Pipeline([]))


def seed_groups(seeds: tuple[int, ...]) -> list[tuple[int, ...]]:
    """``seeds`` in groups of the parameters files' ``runtime.seeds_per_node``."""
    size = (_parameters().get("runtime") or {}).get("seeds_per_node")
    return group_seeds(seeds, None if size is None else max(1, int(size)))


def group_namespace(group: tuple[int, ...]) -> str:
    """``seed_<n>`` for one seed, ``seeds_<a>_<b>…`` for several."""
    if len(group) == 1:
        return f"seed_{group[0]}"
    return "seeds_" + "_".join(str(seed) for seed in group)


def per_seed_group(template: Callable[[tuple[int, ...]], Pipeline], seeds: tuple[int, ...],
                   shared: set[str]) -> Pipeline:
    """``template(group)`` once per group of seeds (:func:`seed_groups`), namespaced by
    :func:`group_namespace`. Its outputs
    (``seed_<n>.…``, one branch of datasets per seed), the ``shared`` datasets and every
    parameter keep their names (the target namespace maps them next)."""
    branches = []
    for group in seed_groups(seeds):
        pipeline = template(group)
        parameters = {p for p in pipeline.inputs() if p.startswith("params:")}
        branches.append(Pipeline(pipeline, namespace=group_namespace(group),
                                 inputs=shared & set(pipeline.inputs()) or None,
                                 outputs=pipeline.outputs() or None,
                                 parameters=parameters or None))
    return sum(branches, Pipeline([]))


def with_arguments(func: Callable[..., Any], **fixed: Any) -> Callable[..., Any]:
    """``func`` with some keyword arguments fixed (a branch's seed, arm...), keeping its name
    and docstring for logs and kedro-viz (and picklable, for parallel runners)."""
    return functools.update_wrapper(functools.partial(func, **fixed), func)


def node_on_seed_branches(func: Callable[..., Any], **kwargs: Any) -> Node:
    """A node that reads or writes seed branches' datasets (``seed_0.…``) from outside their
    namespace: dotted on purpose, so Kedro's warning about dots in dataset names is silenced
    here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        return Node(func, **kwargs)
