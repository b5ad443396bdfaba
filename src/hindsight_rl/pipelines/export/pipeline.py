"""Export stage DAG: one ``export_minari`` per target namespace, from its hindsight dataset
to its Minari dataset (``<target>.minari_dataset`` in the catalog)."""

from collections.abc import Iterable

from kedro.pipeline import Node, Pipeline

from hindsight_rl.pipelines.export.nodes import export_minari

TEMPLATE = Pipeline([Node(export_minari, inputs="hindsight_dataset", outputs="minari_dataset",
                          name="export_minari")])


def create_pipeline(targets: Iterable[str]) -> Pipeline:
    return sum((Pipeline(TEMPLATE, namespace=name) for name in targets), Pipeline([]))
