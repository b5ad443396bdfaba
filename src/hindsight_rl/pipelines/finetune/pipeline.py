"""Fine-tune stage DAG: per target and per group of training seeds, ``finetune`` and its
control ``train_scratch`` (``mountaincar.seeds_0_1_2.finetune``; ``mountaincar.seed_0.finetune``
with ``seeds_per_node: 1``). Every seed saves its own datasets
(``mountaincar.seed_0.finetuned_policy``) whichever group trained it."""

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines.branches import (
    ARM_DATASETS,
    DagShape,
    TargetShape,
    node_on_seed_branches,
    per_seed_group,
    per_target,
    seed_branch,
    with_arguments,
)
from hindsight_rl.pipelines.finetune.nodes import finetune, train_scratch

SETTINGS = ["params:target", "params:evaluation", "params:runtime"]
SHARED = {"source_policy", "transfer_plan", "hindsight_dataset"}
"""The target stage's outputs every group of seeds reads."""


def one_group(seeds: tuple[int, ...]) -> Pipeline:
    def outputs(arm: str) -> list[str]:
        return [f"{seed_branch(seed)}.{name}" for seed in seeds for name in ARM_DATASETS[arm]]

    return Pipeline([
        node_on_seed_branches(
            with_arguments(finetune, seeds=seeds),
            inputs=["source_policy", "transfer_plan", "hindsight_dataset", *SETTINGS],
            outputs=outputs("finetuned"), name="finetune"),
        node_on_seed_branches(
            with_arguments(train_scratch, seeds=seeds), inputs=["source_policy", *SETTINGS],
            outputs=outputs("scratch"), name="train_scratch"),
    ])


def create_pipeline(shape: DagShape, targets: dict[str, TargetShape]) -> Pipeline:
    return per_target(targets, lambda target: per_seed_group(
        shape, one_group, target.seeds, shared=SHARED))
