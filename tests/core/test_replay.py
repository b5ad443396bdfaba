import numpy as np

from hindsight_rl.core.hindsight import Bootstrap
from hindsight_rl.core.replay import ReplayBuffer, batch_arrays


def _fill(buffer: ReplayBuffer, values: range) -> None:
    n = len(values)
    column = np.asarray(values, np.float32)
    buffer.extend(column[:, None], np.asarray(values), column, column[:, None] + 1, np.zeros(n))


def test_extend_wraps_and_keeps_the_newest():
    buffer = ReplayBuffer(4, 1, np.random.default_rng(0), gamma=0.9)
    _fill(buffer, range(3))
    _fill(buffer, range(3, 6))
    assert buffer.size == 4 and buffer.position == 2
    assert sorted(buffer.obs[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0]
    assert sorted(buffer.bootstrap_obs[:, 0].tolist()) == [3.0, 4.0, 5.0, 6.0]


def test_rows_bootstrap_one_step_until_their_episode_is_labelled():
    buffer = ReplayBuffer(8, 1, np.random.default_rng(0), gamma=0.9)
    slots = [buffer.add(np.full(1, t), 0, -1.0, np.full(1, t + 1), t == 2) for t in range(3)]
    assert buffer.discount[:3].tolist() == [np.float32(0.9), np.float32(0.9), 0.0]
    assert buffer.bootstrap_obs[:3, 0].tolist() == [1.0, 2.0, 3.0]
    two_step = Bootstrap(np.array([-1.9, -1.9, -1.0], np.float32),
                         np.array([[2.0], [3.0], [3.0]], np.float32),
                         np.array([0.81, 0.0, 0.0], np.float32))
    buffer.label(slots, np.array([-3.0, -2.0, -1.0]), valid=True, bootstrap=two_step)
    assert buffer.return_to_go[:3].tolist() == [-3.0, -2.0, -1.0]
    assert buffer.rtg_valid[:3].tolist() == [1.0, 1.0, 1.0]
    assert buffer.bootstrap_obs[:3, 0].tolist() == [2.0, 3.0, 3.0]
    assert buffer.reward[:3].tolist() == [-1.0, -1.0, -1.0]  # the one-step facts stay


def test_sampling_fills_each_members_block_with_stored_transitions():
    buffer = ReplayBuffer(16, 1, np.random.default_rng(0), gamma=0.9)
    _fill(buffer, range(10))
    (table, action), batch = batch_arrays(members=2, batch_size=32, obs_dim=1)
    buffer.sample_into(table[1], action[1])
    assert batch.obs.shape == (2, 32, 1) and batch.action.shape == (2, 32, 1)
    # Each sampled row is one stored transition: next_obs = obs + 1 in _fill.
    assert (batch.bootstrap_obs[1] - batch.obs[1]).eq(1).all()
    assert (batch.action[1, :, 0].float() == batch.obs[1, :, 0]).all()
    assert batch.discount[1].eq(np.float32(0.9)).all()
    assert not batch.discount[0].any(), "the other member's block is left alone"
