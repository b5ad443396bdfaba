"""Target stage DAG: one ``plan_transfer`` per target namespace, reading the policies of the
target's candidate sources (pretrained ones, and each seed's fine-tuned policy of a
stepping-stone target)."""

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines.branches import (
    DagShape,
    TargetShape,
    node_on_seed_branches,
    per_target,
    with_arguments,
)
from hindsight_rl.pipelines.target.nodes import plan_transfer


def template(candidates: dict[str, str]) -> Pipeline:
    return Pipeline([node_on_seed_branches(
        with_arguments(plan_transfer, sources=tuple(candidates)),
        inputs=["params:target", "params:evaluation", *candidates.values()],
        outputs=["hindsight_dataset", "source_policy", "transfer_plan"],
        name="plan_transfer")])


def create_pipeline(shape: DagShape, targets: dict[str, TargetShape]) -> Pipeline:
    return per_target(targets, lambda target: template(shape.candidates(target)),
                      outside=lambda target: shape.candidates(target).values())
