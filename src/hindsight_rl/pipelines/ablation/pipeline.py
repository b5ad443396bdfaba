"""Ablation DAG (``kedro run --pipeline ablation``): the source and target stages of the
ablated targets, then per target, arm and seed one ``train_arm`` task
(``ablation.mountaincar.her.seed_3``), a summary per target and one report."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines import source, target
from hindsight_rl.pipelines.ablation.nodes import ablation_report, summarise_target, train_arm
from hindsight_rl.pipelines.namespaces import (
    ablation_runs,
    node_reading_seed_branches,
    with_arguments,
)

SETTINGS = {"params:ablation", "params:evaluation", "params:runtime"}


def one_run(target_name: str, arm: str, seed: int) -> Pipeline:
    node = Node(with_arguments(train_arm, target_name=target_name, arm=arm, seed=seed),
                inputs=["pretrained_policy", "hindsight_dataset", "params:target",
                        "params:ablation", "params:evaluation", "params:runtime"],
                outputs="run", name="train_arm")
    return Pipeline([node], namespace=f"ablation.{target_name}.{arm}.seed_{seed}",
                    inputs={"pretrained_policy": "pretrained_policy",
                            "hindsight_dataset": f"{target_name}.hindsight_dataset"},
                    parameters={"params:target": f"params:targets.{target_name}",
                                **{p: p for p in SETTINGS}})


def summary(target_name: str, arms: dict[str, tuple[int, ...]]) -> Node:
    runs = {f"{arm}_seed_{seed}": f"ablation.{target_name}.{arm}.seed_{seed}.run"
            for arm, seeds in arms.items() for seed in seeds}
    return node_reading_seed_branches(
        with_arguments(summarise_target, target_name=target_name),
        inputs={"target": f"params:targets.{target_name}", "ablation": "params:ablation",
                "evaluation": "params:evaluation", **runs},
        outputs=[f"ablation.{target_name}.summary", f"ablation.{target_name}.curves"],
        name="summarise", namespace=f"ablation.{target_name}")


def create_pipeline(**kwargs) -> Pipeline:
    plan = ablation_runs()
    if not plan:
        return Pipeline([])
    runs = [one_run(name, arm, seed) for name, arms in plan.items()
            for arm, seeds in arms.items() for seed in seeds]
    report = node_reading_seed_branches(
        ablation_report, inputs={f"{name}_summary": f"ablation.{name}.summary" for name in plan},
        outputs="ablation_report", name="report", namespace="ablation")
    collect = [node for node in target.create_pipeline().nodes
               if node.namespace in plan]
    return (source.create_pipeline() + Pipeline(collect) + sum(runs, Pipeline([]))
            + Pipeline([summary(name, arms) for name, arms in plan.items()]) + Pipeline([report]))
