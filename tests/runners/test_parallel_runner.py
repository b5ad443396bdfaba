from kedro.pipeline import Node, Pipeline

from hindsight_rl.runners.parallel_runner import cost_tag, critical_paths, node_cost


def _step(x):
    return x


def test_a_nodes_priority_is_its_cost_plus_its_costliest_chain_after_it():
    pipeline = Pipeline([
        Node(_step, "a", "b", name="start"),
        Node(_step, "b", "c", name="heavy_leaf", tags=[cost_tag(10)]),
        Node(_step, "b", "d", name="cheap_first"),
        Node(_step, "d", "e", name="heavy_after", tags=[cost_tag(20.4)]),
    ])
    paths = {node.name: path for node, path in critical_paths(pipeline).items()}
    assert paths == {"heavy_after": 20, "cheap_first": 21, "heavy_leaf": 10, "start": 22}


def test_untagged_nodes_cost_one_and_costs_are_at_least_one():
    assert node_cost(Node(_step, "a", "b", name="plain")) == 1
    assert node_cost(Node(_step, "a", "b", name="tiny", tags=[cost_tag(0.2)])) == 1
    assert node_cost(Node(_step, "a", "b", name="tagged", tags=["other", cost_tag(7)])) == 7
