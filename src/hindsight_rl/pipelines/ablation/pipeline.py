"""Ablation DAG (``kedro run --pipeline ablation``): the source and target stages of the
ablated targets, then per target, arm and group of seeds one ``train_arm`` task
(``ablation.mountaincar.her.seeds_0_1_2_3_4``), a summary per target and one report."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines import source, target
from hindsight_rl.pipelines.ablation.nodes import ablation_report, summarise_target, train_arm
from hindsight_rl.pipelines.namespaces import (
    ablation_budget,
    ablation_runs,
    group_namespace,
    node_on_seed_branches,
    seed_groups,
    training_cost,
    with_arguments,
)
from hindsight_rl.runners.parallel_runner import cost_tag

SETTINGS = {"params:ablation", "params:evaluation", "params:runtime"}


def one_group(target_name: str, arm: str, seeds: tuple[int, ...]) -> Pipeline:
    """One ``train_arm`` task for a group of seeds (``runtime.seeds_per_node``), saving a run
    table per seed: ``ablation.mountaincar.her.seed_3.run``."""
    node = node_on_seed_branches(
        with_arguments(train_arm, target_name=target_name, arm=arm, seeds=seeds),
        inputs=["pretrained_policy", "hindsight_dataset", "params:target", "params:ablation",
                "params:evaluation", "params:runtime"],
        outputs=[f"seed_{seed}.run" for seed in seeds], name="train_arm",
        tags=[cost_tag(training_cost(target_name, len(seeds), fine_tuned=arm != "scratch",
                                     budget=ablation_budget(target_name)))])
    namespace = f"ablation.{target_name}.{arm}"
    return Pipeline([node], namespace=f"{namespace}.{group_namespace(seeds)}",
                    inputs={"pretrained_policy": "pretrained_policy",
                            "hindsight_dataset": f"{target_name}.hindsight_dataset"},
                    outputs={f"seed_{seed}.run": f"{namespace}.seed_{seed}.run"
                             for seed in seeds},
                    parameters={"params:target": f"params:targets.{target_name}",
                                **{p: p for p in SETTINGS}})


def summary(target_name: str, arms: dict[str, tuple[int, ...]]) -> Node:
    runs = {f"{arm}_seed_{seed}": f"ablation.{target_name}.{arm}.seed_{seed}.run"
            for arm, seeds in arms.items() for seed in seeds}
    return node_on_seed_branches(
        with_arguments(summarise_target, target_name=target_name),
        inputs={"target": f"params:targets.{target_name}", "ablation": "params:ablation",
                "evaluation": "params:evaluation", **runs},
        outputs=[f"ablation.{target_name}.summary", f"ablation.{target_name}.curves"],
        name="summarise", namespace=f"ablation.{target_name}")


def create_pipeline(**kwargs) -> Pipeline:
    plan = ablation_runs()
    if not plan:
        return Pipeline([])
    runs = [one_group(name, arm, group) for name, arms in plan.items()
            for arm, seeds in arms.items() for group in seed_groups(seeds)]
    report = node_on_seed_branches(
        ablation_report, inputs={f"{name}_summary": f"ablation.{name}.summary" for name in plan},
        outputs="ablation_report", name="report", namespace="ablation")
    collect = [node for node in target.create_pipeline().nodes
               if node.namespace in plan]
    return (source.create_pipeline() + Pipeline(collect) + sum(runs, Pipeline([]))
            + Pipeline([summary(name, arms) for name, arms in plan.items()]) + Pipeline([report]))
