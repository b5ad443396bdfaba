"""Retrain stage DAG: ``<t>.promote`` after the target, fine-tune and evaluate stages.

``retrain`` = fresh target rollouts + fine-tuning (from the latest pretrained policy, or the
one ``--load-versions pretrained_policy:<v>`` pins) + evaluation + promotion.
"""

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines.branches import (
    PROMOTION_OUTPUTS,
    TargetShape,
    node_on_seed_branches,
    per_target,
    seed_branch,
)
from hindsight_rl.pipelines.retrain.nodes import promote


def template(target: TargetShape) -> Pipeline:
    finetuned = {seed_branch(seed): f"{seed_branch(seed)}.finetuned_policy"
                 for seed in target.seeds}
    return Pipeline([node_on_seed_branches(
        promote, inputs={"current_champion": "current_champion", "target": "params:target",
                         "evaluation": "params:evaluation", **finetuned},
        outputs=list(PROMOTION_OUTPUTS), name="promote")])


def create_pipeline(targets: dict[str, TargetShape]) -> Pipeline:
    return per_target(targets, template)
