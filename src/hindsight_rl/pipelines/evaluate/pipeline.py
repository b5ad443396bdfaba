"""Evaluate stage DAG: one ``evaluate`` per target, reading every seed's policies and
learning curves, writing the reports and one recorded episode per final policy."""

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines.branches import (
    TargetShape,
    episode_outputs,
    node_on_seed_branches,
    per_target,
    run_inputs,
    with_arguments,
)
from hindsight_rl.pipelines.evaluate.nodes import evaluate


def template(target: TargetShape) -> Pipeline:
    node = node_on_seed_branches(
        with_arguments(evaluate, seeds=target.seeds),
        inputs=["hindsight_dataset", "transfer_plan", "params:target", "params:evaluation",
                *run_inputs(target.seeds)],
        outputs=["transfer_metrics", "learning_curves", "hindsight_returns", "transfer_report",
                 "transfer_report_html", *episode_outputs(target.seeds)],
        name="evaluate")
    return Pipeline([node])


def create_pipeline(targets: dict[str, TargetShape]) -> Pipeline:
    return per_target(targets, template)
