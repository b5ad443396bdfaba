"""Evaluate stage DAG: one ``evaluate`` per target namespace."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines.evaluate.nodes import evaluate
from hindsight_rl.pipelines.namespaces import per_target


def create_pipeline(**kwargs) -> Pipeline:
    template = Pipeline([
        Node(evaluate, inputs=["finetuned_policy", "scratch_policy", "finetune_history",
                               "scratch_history", "params:target", "params:evaluation"],
             outputs=["transfer_metrics", "learning_curves", "transfer_report"],
             name="evaluate"),
    ])
    return per_target(template)
