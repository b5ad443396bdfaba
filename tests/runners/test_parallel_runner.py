from kedro.pipeline import Node, Pipeline

from hindsight_rl.core.config import DQNConfig
from hindsight_rl.pipelines.branches import training_cost
from hindsight_rl.runners.parallel_runner import critical_paths


def _step(x):
    return x


def test_a_nodes_priority_is_its_cost_plus_its_costliest_chain_after_it():
    pipeline = Pipeline([
        Node(_step, "a", "b", name="start"),
        Node(_step, "b", "c", name="heavy_leaf"),
        Node(_step, "b", "d", name="cheap_first"),
        Node(_step, "d", "e", name="heavy_after"),
    ])
    costs = {"heavy_leaf": 10, "heavy_after": 20.5, "cheap_first": 0.2}
    paths = {node.name: path for node, path in critical_paths(pipeline, costs).items()}
    assert paths == {"heavy_after": 20.5, "cheap_first": 21.5, "heavy_leaf": 10, "start": 22.5}


def test_a_frozen_trunk_and_fewer_updates_cost_less():
    dqn = DQNConfig(total_steps=10_000, learning_starts=1000, train_freq=16, gradient_steps=8,
                    batch_size=128)
    full = training_cost(dqn, 10_000, seeds=3, trunk_frozen=False)
    assert training_cost(dqn, 10_000, seeds=3, trunk_frozen=True) < full
    assert training_cost(dqn, 10_000, seeds=1, trunk_frozen=False) == full / 3
    assert training_cost(dqn.model_copy(update={"gradient_steps": 1}), 10_000, 3, False) < full
