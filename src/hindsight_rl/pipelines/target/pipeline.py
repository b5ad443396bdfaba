"""Target stage DAG: one ``plan_transfer`` per target namespace, reading the pretrained
policies of the target's candidate sources."""

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines.branches import (
    TargetShape,
    node_on_seed_branches,
    per_target,
    pretrained_policy,
    with_arguments,
)
from hindsight_rl.pipelines.target.nodes import plan_transfer


def template(target: TargetShape) -> Pipeline:
    return Pipeline([node_on_seed_branches(
        with_arguments(plan_transfer, sources=target.sources),
        inputs=["params:target", "params:evaluation",
                *[pretrained_policy(source) for source in target.sources]],
        outputs=["hindsight_dataset", "source_policy", "transfer_plan"],
        name="plan_transfer")])


def create_pipeline(targets: dict[str, TargetShape]) -> Pipeline:
    return per_target(targets, template)
