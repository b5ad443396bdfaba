"""Target stage DAG: one ``collect_target_rollouts`` per target namespace."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines.branches import DagShape, per_target
from hindsight_rl.pipelines.target.nodes import collect_target_rollouts


def create_pipeline(shape: DagShape) -> Pipeline:
    template = Pipeline([
        Node(collect_target_rollouts, inputs=["pretrained_policy", "params:target"],
             outputs="hindsight_dataset", name="collect_target_rollouts"),
    ])
    return per_target(shape, lambda seeds: template)
