"""Evaluate stage DAG: one ``evaluate`` per target, reading every seed's policies and
learning curves."""

from kedro.pipeline import Pipeline

from hindsight_rl.pipelines.evaluate.nodes import evaluate
from hindsight_rl.pipelines.namespaces import node_on_seed_branches, per_target

# Each arm's outputs in a seed branch of the fine-tune stage: (policy, history).
ARM_DATASETS = {"finetuned": ("finetuned_policy", "finetune_history"),
                "scratch": ("scratch_policy", "scratch_history")}


def template(seeds: tuple[int, ...]) -> Pipeline:
    runs = {f"{arm}_{kind}_seed_{seed}": f"seed_{seed}.{dataset}"
            for seed in seeds for arm, datasets in ARM_DATASETS.items()
            for kind, dataset in zip(("policy", "history"), datasets, strict=True)}
    node = node_on_seed_branches(
        evaluate, inputs={"hindsight_dataset": "hindsight_dataset", "target": "params:target",
                          "evaluation": "params:evaluation", **runs},
        outputs=["transfer_metrics", "learning_curves", "hindsight_returns", "transfer_report",
                 "transfer_report_html"],
        name="evaluate")
    return Pipeline([node])


def create_pipeline(**kwargs) -> Pipeline:
    return per_target(template)
