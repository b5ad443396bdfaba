"""Fine-tune stage DAG: ``finetune`` and its control ``train_scratch`` per target namespace."""

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines.finetune.nodes import finetune, train_scratch
from hindsight_rl.pipelines.namespaces import per_target


def create_pipeline(**kwargs) -> Pipeline:
    template = Pipeline([
        Node(finetune, inputs=["pretrained_policy", "hindsight_dataset", "params:target",
                               "params:evaluation", "params:runtime"],
             outputs=["finetuned_policy", "finetune_history"], name="finetune"),
        Node(train_scratch, inputs=["pretrained_policy", "params:target", "params:evaluation",
                                     "params:runtime"],
             outputs=["scratch_policy", "scratch_history"], name="train_scratch"),
    ])
    return per_target(template)
