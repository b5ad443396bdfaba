"""Source stage DAG, once per source (``sources.<name>``):
collect_source_rollouts → pretrain → export_weights."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines.branches import per_source
from hindsight_rl.pipelines.source.nodes import collect_source_rollouts, export_weights, pretrain

TEMPLATE = Pipeline([
    Node(collect_source_rollouts, inputs="params:source", outputs="source_rollouts",
         name="collect_source_rollouts"),
    Node(pretrain, inputs=["source_rollouts", "params:source", "params:evaluation",
                           "params:runtime"],
         outputs=["source_q_network", "pretrain_history"], name="pretrain"),
    Node(export_weights, inputs=["source_q_network", "params:evaluation"],
         outputs="pretrained_policy", name="export_weights"),
])


def create_pipeline(sources: list[str]) -> Pipeline:
    return per_source(sources, TEMPLATE)
