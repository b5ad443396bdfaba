"""Fine-tune stage DAG: per target and per group of training seeds, ``finetune`` and its
control ``train_scratch`` (``mountaincar.seeds_0_1_2.finetune``; ``mountaincar.seed_0.finetune``
with ``runtime.seeds_per_node: 1``). Every seed saves its own datasets
(``mountaincar.seed_0.finetuned_policy``) whichever group trained it."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines.finetune.nodes import finetune, train_scratch
from hindsight_rl.pipelines.namespaces import (
    node_on_seed_branches,
    per_seed_group,
    per_target,
    training_cost,
    with_arguments,
)
from hindsight_rl.runners.parallel_runner import cost_tag

SETTINGS = ["params:target", "params:evaluation", "params:runtime"]


def one_group(seeds: tuple[int, ...]) -> Pipeline:
    def outputs(policy: str, history: str) -> list[str]:
        return [f"seed_{seed}.{name}" for seed in seeds for name in (policy, history)]

    return Pipeline([
        node_on_seed_branches(
            with_arguments(finetune, seeds=seeds),
            inputs=["pretrained_policy", "hindsight_dataset", *SETTINGS],
            outputs=outputs("finetuned_policy", "finetune_history"), name="finetune"),
        node_on_seed_branches(
            with_arguments(train_scratch, seeds=seeds), inputs=["pretrained_policy", *SETTINGS],
            outputs=outputs("scratch_policy", "scratch_history"), name="train_scratch"),
    ])


def create_pipeline(**kwargs) -> Pipeline:
    pipeline = per_target(lambda seeds: per_seed_group(
        one_group, seeds, shared={"pretrained_policy", "hindsight_dataset"}))
    return Pipeline([_with_cost(node) for node in pipeline.nodes])


def _with_cost(node: Node) -> Node:
    """The node tagged with its training cost, for hindsight_rl.runners.ParallelRunner
    (outputs ``<target>.seed_<n>.…``, two per seed)."""
    seeds = {output.split(".")[1] for output in node.outputs}
    return node.tag(cost_tag(training_cost(node.namespace.split(".")[0], len(seeds),
                                           fine_tuned=node.name.endswith(".finetune"))))
