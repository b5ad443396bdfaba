"""Transfer suite DAG (``kedro run --pipeline transfer_suite``): every pair of
``DAG_SHAPE["transfer_suite"]`` through the source, target, finetune and evaluate stages,
then one report over all pairs."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines import evaluate, finetune, source, target
from hindsight_rl.pipelines.branches import DagShape, with_arguments
from hindsight_rl.pipelines.suite.nodes import suite_report


def create_pipeline(shape: DagShape) -> Pipeline:
    pairs = shape.transfer_suite
    if not pairs:
        return Pipeline([])
    report = Node(with_arguments(suite_report, pairs=tuple(pairs)),
                  inputs=[f"{name}.transfer_metrics" for name in pairs],
                  outputs=["transfer_suite.summary", "transfer_suite.heatmap",
                           "transfer_suite.report"],
                  name="transfer_suite.report")
    return (source.create_pipeline(shape.sources_of(pairs))
            + target.create_pipeline(shape, pairs)
            + finetune.create_pipeline(shape, pairs) + evaluate.create_pipeline(pairs)
            + Pipeline([report]))
