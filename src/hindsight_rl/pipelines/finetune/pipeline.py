"""Fine-tune stage DAG: per target and per training seed, ``finetune`` and its control
``train_scratch`` (``mountaincar.seed_0.finetune``): independent tasks for any runner."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines.finetune.nodes import finetune, train_scratch
from hindsight_rl.pipelines.namespaces import per_seed, per_target, with_arguments

SETTINGS = ["params:target", "params:evaluation", "params:runtime"]


def one_seed(seed: int) -> Pipeline:
    return Pipeline([
        Node(with_arguments(finetune, seed=seed), inputs=["pretrained_policy", "hindsight_dataset",
                                                *SETTINGS],
             outputs=["finetuned_policy", "finetune_history"], name="finetune"),
        Node(with_arguments(train_scratch, seed=seed), inputs=["pretrained_policy", *SETTINGS],
             outputs=["scratch_policy", "scratch_history"], name="train_scratch"),
    ])


def create_pipeline(**kwargs) -> Pipeline:
    return per_target(lambda seeds: per_seed(one_seed, seeds,
                                             shared={"pretrained_policy", "hindsight_dataset"}))
