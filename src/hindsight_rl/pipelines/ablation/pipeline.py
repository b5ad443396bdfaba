"""Ablation DAG (``kedro run --pipeline ablation``): the source and target stages of the
ablated targets, then per target, arm and group of seeds one ``train_arm`` task
(``ablation.mountaincar.her.seeds_0_1_2_3_4``), a summary per target and one report. Which
targets, arms and seeds run is ``DAG_SHAPE["ablation"]`` in settings."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines import source, target
from hindsight_rl.pipelines.ablation.nodes import ablation_report, summarise_target, train_arm
from hindsight_rl.pipelines.branches import (
    DagShape,
    ablation_namespace,
    group_branch,
    node_on_seed_branches,
    seed_branch,
    with_arguments,
)

SETTINGS = {"params:ablation", "params:evaluation", "params:runtime"}


def one_group(target_name: str, arm: str, seeds: tuple[int, ...]) -> Pipeline:
    """One ``train_arm`` task for a group of seeds, saving a run table per seed:
    ``ablation.mountaincar.her.seed_3.run``."""
    node = node_on_seed_branches(
        with_arguments(train_arm, target_name=target_name, arm=arm, seeds=seeds),
        inputs=["source_policy", "hindsight_dataset", "params:target", "params:ablation",
                "params:evaluation", "params:runtime"],
        outputs=[f"{seed_branch(seed)}.run" for seed in seeds], name="train_arm")
    namespace = ablation_namespace(target_name, arm)
    return Pipeline([node], namespace=f"{namespace}.{group_branch(seeds)}",
                    inputs={"source_policy": f"{target_name}.source_policy",
                            "hindsight_dataset": f"{target_name}.hindsight_dataset"},
                    outputs={f"{seed_branch(seed)}.run": f"{namespace}.{seed_branch(seed)}.run"
                             for seed in seeds},
                    parameters={"params:target": f"params:targets.{target_name}",
                                **{p: p for p in SETTINGS}})


def summary(target_name: str, arms: tuple[str, ...], seeds: tuple[int, ...]) -> Node:
    """Every run of ``target_name``, arm by arm in order, into one summary and plot."""
    runs = [f"{ablation_namespace(target_name, arm)}.{seed_branch(seed)}.run"
            for arm in arms for seed in seeds]
    return node_on_seed_branches(
        with_arguments(summarise_target, target_name=target_name, arms=arms),
        inputs=[f"params:targets.{target_name}", "params:ablation", "params:evaluation",
                *runs],
        outputs=[f"ablation.{target_name}.summary", f"ablation.{target_name}.curves"],
        name="summarise", namespace=f"ablation.{target_name}")


def create_pipeline(shape: DagShape) -> Pipeline:
    plan, seeds = shape.ablation.targets, shape.ablation.seeds
    if not plan:
        return Pipeline([])
    runs = [one_group(name, arm, group) for name, arms in plan.items() for arm in arms
            for group in shape.groups(seeds)]
    report = node_on_seed_branches(
        ablation_report, inputs=[f"ablation.{name}.summary" for name in plan],
        outputs="ablation_report", name="report", namespace="ablation")
    targets = {name: shape.targets[name] for name in plan}
    return (source.create_pipeline(shape.sources_of(targets))
            + target.create_pipeline(shape, targets)
            + sum(runs, Pipeline([]))
            + Pipeline([summary(name, arms, seeds) for name, arms in plan.items()])
            + Pipeline([report]))
