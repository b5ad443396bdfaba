import numpy as np

from hindsight_rl.core.replay import ReplayBuffer


def _fill(buffer: ReplayBuffer, values: range) -> None:
    n = len(values)
    column = np.asarray(values, np.float32)
    buffer.extend(column[:, None], np.asarray(values), column, column[:, None] + 1, np.zeros(n))


def test_extend_wraps_and_keeps_the_newest():
    buffer = ReplayBuffer(4, 1, np.random.default_rng(0))
    _fill(buffer, range(3))
    _fill(buffer, range(3, 6))
    assert buffer.size == 4 and buffer.position == 2
    assert sorted(buffer.obs[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0]


def test_label_writes_hindsight_returns():
    buffer = ReplayBuffer(8, 1, np.random.default_rng(0))
    slots = [buffer.add(np.zeros(1), 0, -1.0, np.zeros(1), False) for _ in range(3)]
    buffer.label(slots, np.array([-3.0, -2.0, -1.0]), valid=True)
    assert buffer.return_to_go[:3].tolist() == [-3.0, -2.0, -1.0]
    assert buffer.rtg_valid[:3].tolist() == [1.0, 1.0, 1.0]


def test_sample_shapes_and_consistency():
    buffer = ReplayBuffer(16, 1, np.random.default_rng(0))
    _fill(buffer, range(10))
    batch = buffer.sample(32)
    assert batch.obs.shape == (32, 1) and batch.action.shape == (32, 1)
    # Each sampled row is one stored transition: next_obs = obs + 1 in _fill.
    assert (batch.next_obs - batch.obs).eq(1).all()
    assert (batch.action[:, 0].float() == batch.obs[:, 0]).all()
