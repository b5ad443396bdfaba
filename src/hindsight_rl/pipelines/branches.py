"""The DAG's shape and every name made from it.

Which branches the DAG has — the targets, the sources (and stepping-stone targets) each may
transfer from, each target's training seeds, how many seeds share a node, the transfer
suite's pairs, the ablation's targets, arms and seeds — is structure, set in ``DAG_SHAPE``
in the project's ``settings.py`` and read once when pipelines are registered: the same in
every config environment, so ``--env`` and ``--params`` change values, never the DAG.
Parameters give each branch its values, and :func:`check_parameters` refuses parameters that
name a branch the DAG does not have (or leave one without values).

This module builds every branch, node and dataset name, and reads them back where that is
needed (the evaluate node's inputs, the scheduler's costs), so no other code parses names.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Annotated, Any

from kedro.pipeline import Node, Pipeline
from pydantic import Field, model_validator

from hindsight_rl.core.config import (
    ConfigError,
    ProjectConfig,
    Section,
    TrainingConfig,
    from_mapping,
    group_seeds,
    invalid,
)
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.training import source_action_table

SETTINGS_MODULE = "hindsight_rl.settings"
WHERE = "DAG_SHAPE in src/hindsight_rl/settings.py"
BranchName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Seeds = Annotated[tuple[Annotated[int, Field(ge=0, le=2**32 - 1)], ...],
                  Field(strict=False, min_length=1)]
ARMS = ("finetuned", "scratch")
"""The default pipeline's two arms: fine-tuned (transferred) and the from-scratch control."""
ARM_DATASETS = {"finetuned": ("finetuned_policy", "finetune_history"),
                "scratch": ("scratch_policy", "scratch_history")}
"""Each arm's outputs in a seed branch: (policy, history)."""


def _distinct(values: tuple[Any, ...], key: str) -> None:
    if len(set(values)) != len(values):
        raise invalid(key, list(values), "distinct values")


class AblationShape(Section):
    """Which ablation runs exist: the arms on each ablated target, and the seeds of every
    arm (their budgets and what each arm is are parameters)."""

    targets: dict[BranchName, Annotated[tuple[BranchName, ...], Field(strict=False)]] = {}
    """Ablated targets and the arms that run on each."""
    seeds: Seeds = (0, 1, 2, 3, 4)
    """Training seeds of every arm."""

    @model_validator(mode="after")
    def _distinct(self) -> AblationShape:
        _distinct(self.seeds, "seeds")
        for name, arms in self.targets.items():
            _distinct(arms, f"targets.{name}")
        return self


class TuneShape(Section):
    """The hyperparameter search's nodes: how many workers share its trials."""

    workers: int = Field(2, ge=1, le=1024)
    """Nodes running trials side by side against one Optuna storage (``tune.worker_<i>``):
    as many as the runner has processes to give them."""


class TargetShape(Section):
    """One target's branches: where it may transfer from and its training seeds."""

    sources: Annotated[tuple[BranchName, ...], Field(strict=False)]
    """Candidate pretrained sources; the probe picks one candidate
    (:mod:`hindsight_rl.core.plan`)."""
    stepping_stones: Annotated[tuple[BranchName, ...], Field(strict=False)] = ()
    """Targets of the same pipeline, listed before this one, whose every seed's fine-tuned
    policy is a candidate too: a curriculum (DoorKey 5x5 → 6x6 → 8x8), for a target too far
    from any pretrained source."""
    seeds: Seeds
    """Training seeds: one branch of datasets per seed and arm."""

    @model_validator(mode="after")
    def _distinct(self) -> TargetShape:
        _distinct(self.seeds, "seeds")
        _distinct(self.sources, "sources")
        _distinct(self.stepping_stones, "stepping_stones")
        if not self.sources and not self.stepping_stones:
            raise invalid("sources", [], "at least one source (or a stepping stone)")
        return self


PIPELINE_GROUPS = ("transfer_suite", "continuous", "minigrid", "recurrent")
"""The groups of targets with a pipeline of their own (``kedro run --pipeline <group>``)."""


class DagShape(Section):
    """The branches of the DAG (``DAG_SHAPE`` in settings)."""

    targets: dict[BranchName, TargetShape]
    """The default pipeline's targets by namespace."""
    transfer_suite: dict[BranchName, TargetShape] = {}
    """The transfer suite's targets (``kedro run --pipeline transfer_suite``)."""
    continuous: dict[BranchName, TargetShape] = {}
    """The continuous-action targets (``kedro run --pipeline continuous``): SAC, from
    continuous and from Discrete sources."""
    minigrid: dict[BranchName, TargetShape] = {}
    """The image-observation targets (``kedro run --pipeline minigrid``): DQN with a
    convolutional encoder."""
    recurrent: dict[BranchName, TargetShape] = {}
    """The partly observed targets (``kedro run --pipeline recurrent``): DQN with a
    recurrent encoder."""
    seeds_per_node: int | None = Field(None, ge=1)
    """Seeds of an arm trained in one node, sharing every update; None for all of them."""
    ablation: AblationShape = AblationShape()
    """The ablation pipeline's runs."""
    tune: TuneShape = TuneShape()
    """The hyperparameter search's workers."""

    @model_validator(mode="after")
    def _consistent(self) -> DagShape:
        groups = PIPELINE_GROUPS
        for i, group in enumerate(groups):
            for name in getattr(self, group):
                if name in self.targets or any(name in getattr(self, other)
                                               for other in groups[:i]):
                    raise invalid(f"{group}.{name}", name,
                                  "a name of its own (it is also another pipeline's target)")
        for group in ("targets", *groups):
            self._stepping_stones_come_first(group)
        for name in self.ablation.targets:
            if name not in self.targets:
                raise invalid(f"ablation.targets.{name}", name,
                              f"one of the targets {list(self.targets)}")
        return self

    def _stepping_stones_come_first(self, group: str) -> None:
        """A stepping stone is a target listed before the one that transfers from it, in the
        same pipeline: it is fine-tuned first, and no chain runs in a circle."""
        names = list(getattr(self, group))
        for i, (name, target) in enumerate(getattr(self, group).items()):
            for stone in target.stepping_stones:
                if stone not in names[:i]:
                    raise invalid(f"{group}.{name}.stepping_stones", stone,
                                  f"a target listed before {name!r} in {group} (it is "
                                  "fine-tuned first)")

    @property
    def all_targets(self) -> dict[str, TargetShape]:
        return {**self.targets, **{name: branch for group in PIPELINE_GROUPS
                                   for name, branch in getattr(self, group).items()}}

    @staticmethod
    def sources_of(targets: Mapping[str, TargetShape]) -> list[str]:
        """The sources ``targets`` transfer from, each once, in order of appearance."""
        return list(dict.fromkeys(s for target in targets.values() for s in target.sources))

    def candidates(self, target: TargetShape) -> dict[str, str]:
        """The policies the probe weighs for ``target``, by candidate name: each source's
        pretrained policy, then each seed's fine-tuned policy of each stepping stone
        (``doorkey_6x6.seed_0``)."""
        policies = {source: pretrained_policy(source) for source in target.sources}
        for stone in target.stepping_stones:
            for seed in self.all_targets[stone].seeds:
                policies[f"{stone}.{seed_branch(seed)}"] = finetuned_policy(stone, seed)
        return policies

    def groups(self, seeds: tuple[int, ...]) -> list[tuple[int, ...]]:
        """``seeds`` in the groups that share a node."""
        return group_seeds(seeds, self.seeds_per_node)


def dag_shape() -> DagShape:
    """The DAG's shape, from the project's settings."""
    settings = importlib.import_module(SETTINGS_MODULE)
    return from_mapping(DagShape, settings.DAG_SHAPE, WHERE)


def seed_branch(seed: int) -> str:
    """``seed_<n>``: one training seed's datasets."""
    return f"seed_{seed}"


def group_branch(group: tuple[int, ...]) -> str:
    """``seed_<n>`` for one seed, ``seeds_<a>_<b>…`` for a node training several."""
    if len(group) == 1:
        return seed_branch(group[0])
    return "seeds_" + "_".join(str(seed) for seed in group)


def run_inputs(seeds: tuple[int, ...]) -> list[str]:
    """The evaluate node's per-seed inputs in order: each seed's policy and history of each
    arm (``seed_0.finetuned_policy``, ``seed_0.finetune_history``, ...)."""
    return [f"{seed_branch(seed)}.{dataset}" for seed in seeds for arm in ARMS
            for dataset in ARM_DATASETS[arm]]


def episode_outputs(seeds: tuple[int, ...]) -> list[str]:
    """The evaluate node's recorded episodes, one GIF per seed and arm, in the order of
    :func:`run_inputs` (``seed_0.finetuned_episode``, ``seed_0.scratch_episode``, ...)."""
    return [f"{seed_branch(seed)}.{arm}_episode" for seed in seeds for arm in ARMS]


def runs_by_arm(seeds: tuple[int, ...], values: tuple[Any, ...]
                ) -> dict[str, dict[int, tuple[Any, Any]]]:
    """Inverse of :func:`run_inputs`: per arm, each seed's (policy, history)."""
    pairs = iter(zip(values[0::2], values[1::2], strict=True))
    runs: dict[str, dict[int, tuple[Any, Any]]] = {arm: {} for arm in ARMS}
    for seed in seeds:
        for arm in ARMS:
            runs[arm][seed] = next(pairs)
    return runs


def with_arguments(func: Callable[..., Any], **fixed: Any) -> Callable[..., Any]:
    """``func`` with some keyword arguments fixed (a branch's seeds, arm...), keeping its name
    and docstring for logs and kedro-viz (and picklable, for parallel runners)."""
    return functools.update_wrapper(functools.partial(func, **fixed), func)


def node_on_seed_branches(func: Callable[..., Any], **kwargs: Any) -> Node:
    """A node that reads or writes seed branches' datasets (``seed_0.…``) from outside their
    namespace: dotted on purpose, so Kedro's warning about dots in dataset names is silenced
    here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        return Node(func, **kwargs)


SHARED_PARAMETERS = {"params:evaluation", "params:runtime"}


def source_namespace(source: str) -> str:
    """``sources.<name>``: a source's stage and datasets."""
    return f"sources.{source}"


def pretrained_policy(source: str) -> str:
    """The dataset of a source's pretrained policy file."""
    return f"{source_namespace(source)}.pretrained_policy"


def finetuned_policy(target: str, seed: int) -> str:
    """The dataset of one seed's fine-tuned policy file of ``target``."""
    return f"{target}.{seed_branch(seed)}.{ARM_DATASETS['finetuned'][0]}"


def per_source(sources: list[str], template: Pipeline) -> Pipeline:
    """``template`` once per source, namespaced ``sources.<name>``; ``params:source`` maps to
    ``params:sources.<name>``, shared settings keep their names."""
    branches = []
    for name in sources:
        parameters = {"params:source": f"params:sources.{name}"}
        parameters.update({p: p for p in SHARED_PARAMETERS if p in template.inputs()})
        branches.append(Pipeline(template, namespace=source_namespace(name),
                                 parameters=parameters))
    return sum(branches, Pipeline([]))


def per_target(targets: Mapping[str, TargetShape],
               template: Callable[[TargetShape], Pipeline],
               outside: Callable[[TargetShape], Iterable[str]] = lambda target: ()
               ) -> Pipeline:
    """``template(target)`` once per target, namespaced ``<target>.``; ``params:target`` maps
    to ``params:targets.<target>``, shared settings and the datasets ``outside(target)``
    names (made outside the target: its candidate sources' policies) keep their names."""
    branches = []
    for name, target in targets.items():
        pipeline = template(target)
        inputs = set(outside(target)) & set(pipeline.inputs())
        parameters = {"params:target": f"params:targets.{name}"}
        parameters.update({p: p for p in SHARED_PARAMETERS if p in pipeline.inputs()})
        branches.append(Pipeline(pipeline, namespace=name, inputs=inputs or None,
                                 parameters=parameters))
    return sum(branches, Pipeline([]))


def per_seed_group(shape: DagShape, template: Callable[[tuple[int, ...]], Pipeline],
                   seeds: tuple[int, ...], shared: set[str]) -> Pipeline:
    """``template(group)`` once per group of seeds, namespaced by :func:`group_branch`. Its
    outputs (``seed_<n>.…``, one branch of datasets per seed), the ``shared`` datasets and
    every parameter keep their names (the target namespace maps them next)."""
    branches = []
    for group in shape.groups(seeds):
        pipeline = template(group)
        parameters = {p for p in pipeline.inputs() if p.startswith("params:")}
        branches.append(Pipeline(pipeline, namespace=group_branch(group),
                                 inputs=shared & set(pipeline.inputs()) or None,
                                 outputs=pipeline.outputs() or None,
                                 parameters=parameters or None))
    return sum(branches, Pipeline([]))


PROMOTION_OUTPUTS = ("champion_policy", "promotion")
"""The retrain stage's outputs in a target's namespace: the champion policy and the decision
that made it champion."""


def promotion_outputs(targets: Mapping[str, TargetShape]) -> dict[str, tuple[str, str]]:
    """Per target of the retrain stage, its champion policy's and decision's dataset names."""
    return {name: tuple(f"{name}.{output}" for output in PROMOTION_OUTPUTS)
            for name in targets}


def ablation_namespace(target: str, arm: str) -> str:
    return f"ablation.{target}.{arm}"


# What the scheduler needs to know of each training node, by node name (built from the
# shape with the same helpers as the nodes themselves).
TrainingNode = tuple[str, tuple[int, ...], str]
"""(target, seeds, arm): ``finetuned``/``scratch``, or an ablation arm's name."""


def training_nodes(shape: DagShape) -> dict[str, TrainingNode]:
    """Every training node of every pipeline, by name."""
    nodes: dict[str, TrainingNode] = {}
    for target, branch in shape.all_targets.items():
        for group in shape.groups(branch.seeds):
            prefix = f"{target}.{group_branch(group)}"
            nodes[f"{prefix}.finetune"] = (target, group, "finetuned")
            nodes[f"{prefix}.train_scratch"] = (target, group, "scratch")
    for target, arms in shape.ablation.targets.items():
        for arm in arms:
            for group in shape.groups(shape.ablation.seeds):
                name = f"{ablation_namespace(target, arm)}.{group_branch(group)}.train_arm"
                nodes[name] = (target, group, arm)
    return nodes


def node_costs(shape: DagShape, config: ProjectConfig) -> dict[str, float]:
    """Each training node's estimated cost, by name: what
    :class:`hindsight_rl.runners.ParallelRunner` schedules by (other nodes cost 1)."""
    costs = {}
    for name, (target_name, seeds, arm) in training_nodes(shape).items():
        target = config.targets[target_name]
        ablated = arm not in ARMS
        budget = config.ablation.budgets[target_name] if ablated else target.dqn.total_steps
        frozen = (config.ablation.arms[arm].frozen if ablated
                  else () if arm == "scratch" else target.finetune.frozen)
        costs[name] = training_cost(target.training, budget, len(seeds), "trunk" in frozen)
    return costs


def training_cost(dqn: TrainingConfig, budget: int, seeds: int, trunk_frozen: bool) -> float:
    """Thousands of env steps plus sampled rows through the big products of gradient
    updates that ``seeds`` stacked runs of ``budget`` env steps take. An update is five
    trunk-sized products per row (three forward passes, two backward ones), four when the
    trunk is frozen."""
    updates = max(0, budget - dqn.learning_starts) / dqn.train_freq * dqn.gradient_steps
    products = 4 if trunk_frozen else 5
    return seeds * (budget + updates * dqn.batch_size * products / 5) / 1000


def check_source_actions(config: ProjectConfig, shape: DagShape) -> None:
    """Each continuous target's ``source_actions`` fits every candidate source it may
    transfer from (one target action per Discrete source action) and its own action bounds:
    checked on the configured environments before any node, not after pretraining."""
    for name, target in config.targets.items():
        if target.source_actions is None:
            continue
        info = env_info(target.env)
        branch = shape.all_targets[name]
        candidates = [(source, config.sources[source]) for source in branch.sources] + [
            (stone, config.targets[stone]) for stone in branch.stepping_stones]
        for source, given in candidates:
            try:
                source_action_table(target.source_actions, env_info(given.env).n_actions,
                                    info.action_low, info.action_high)
            except ConfigError as error:
                raise ConfigError(f"targets.{name}.{error} (source {source!r})") from None


def check_parameters(config: ProjectConfig, shape: DagShape) -> None:
    """The parameters give values to exactly the DAG's branches, and no training seed falls
    in the held-out evaluation block."""
    for name in config.targets:
        if name not in shape.all_targets:
            raise ConfigError(
                f"targets.{name}: the DAG has no branch for this target; targets are "
                f"structure: add {name!r} with its sources and seeds to {WHERE} (the "
                "parameters give its values)")
    for name in shape.all_targets:
        if name not in config.targets:
            raise ConfigError(f"targets.{name}: required: {WHERE} has a branch for it, so "
                              "the parameters must give its values (at least env.id)")
    needed = shape.sources_of(shape.all_targets)
    for name in config.sources:
        if name not in needed:
            raise ConfigError(f"sources.{name}: no target in {WHERE} transfers from it; "
                              "add it to a target's sources there, or remove it")
    for name in needed:
        if name not in config.sources:
            raise ConfigError(f"sources.{name}: required: a target in {WHERE} transfers "
                              "from it, so the parameters must give its values")
    for name, arms in shape.ablation.targets.items():
        if name not in config.ablation.budgets:
            raise ConfigError(f"ablation.budgets.{name}: required: {WHERE} ablates it")
        for arm in arms:
            if arm not in config.ablation.arms:
                raise ConfigError(f"ablation.arms.{arm}: required: {WHERE} runs it on {name}")
            if config.ablation.arms[arm].her_k and config.targets[name].env.goal is None:
                raise ConfigError(f"ablation.arms.{arm}.her_k: got "
                                  f"{config.ablation.arms[arm].her_k}, but {name} has no "
                                  f"env.goal to relabel; take {arm!r} off {name} in {WHERE}")
    held_out = config.held_out_seeds()
    for key, seed in _training_seeds(config, shape):
        if seed in held_out:
            raise invalid(key, seed, f"a seed outside the evaluation block [{held_out.start}, "
                                     f"{held_out.stop})")


def _training_seeds(config: ProjectConfig, shape: DagShape) -> Iterator[tuple[str, int]]:
    """Every seed training or collection uses, with the key that sets it."""
    for name, source in config.sources.items():
        yield f"sources.{name}.seed", source.seed
        yield f"sources.{name}.collect.seed", source.collect.seed
    for name, target in config.targets.items():
        yield f"targets.{name}.collect.seed", target.collect.seed
    for name, branch in shape.all_targets.items():
        group = next((g for g in PIPELINE_GROUPS if name in getattr(shape, g)), "targets")
        for i, seed in enumerate(branch.seeds):
            yield f"{WHERE}: {group}.{name}.seeds[{i}]", seed
    for i, seed in enumerate(shape.ablation.seeds):
        yield f"{WHERE}: ablation.seeds[{i}]", seed
    if config.tune is not None:
        for key in ("seeds", "check_seeds"):
            for i, seed in enumerate(getattr(config.tune, key)):
                yield f"tune.{key}[{i}]", seed


def refuse_structure_in_parameters(parameters: Mapping[str, Any]) -> None:
    """Seeds and their grouping are structure; a parameters file (or ``--params``) that sets
    them gets told where they live, not "unknown key"."""
    for name, section in (parameters.get("targets") or {}).items():
        if isinstance(section, Mapping) and "seeds" in section:
            raise ConfigError(f"targets.{name}.seeds: seeds are the DAG's structure: set "
                              f"them in {WHERE} (targets: {{{name}: [...]}})")
    if isinstance(parameters.get("runtime"), Mapping) and "seeds_per_node" in \
            parameters["runtime"]:
        raise ConfigError(f"runtime.seeds_per_node: the grouping of seeds into nodes is the "
                          f"DAG's structure: set seeds_per_node in {WHERE}")
    if isinstance(parameters.get("ablation"), Mapping) and "seeds" in parameters["ablation"]:
        raise ConfigError(f"ablation.seeds: the ablation's seeds are the DAG's structure: set "
                          f"them in {WHERE} (ablation: {{seeds: [...]}})")


def project_config(parameters: Mapping[str, Any], shape: DagShape) -> ProjectConfig:
    """All parameters as typed config, checked against the DAG's shape (keys starting with
    ``_`` are YAML anchors, not settings)."""
    refuse_structure_in_parameters(parameters)
    config = from_mapping(ProjectConfig, {key: value for key, value in parameters.items()
                                          if not str(key).startswith("_")})
    check_parameters(config, shape)
    return config

