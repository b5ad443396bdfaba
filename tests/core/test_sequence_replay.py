import numpy as np
import pytest

from hindsight_rl.core.sequence_replay import SequenceBatch, SequenceReplay

# Every observation is (episode, step): a window's contents say where they came from.


def _replay(capacity: int = 100, burn_in: int = 2, length: int = 4, seed: int = 0,
            **kwargs) -> SequenceReplay:
    return SequenceReplay(capacity, 2, np.random.default_rng(seed), gamma=0.5, burn_in=burn_in,
                          length=length, **kwargs)


def _store(replay: SequenceReplay, lengths: list[int], first: int = 0,
           ended: str = "terminated", last_ends: bool = True) -> None:
    """Episodes of the given lengths, numbered from ``first``; step ``t`` has reward
    ``t + 1`` and action ``t % 2``. The last episode is left running unless ``last_ends``."""
    for e, n in enumerate(lengths, start=first):
        for t in range(n):
            end = t == n - 1 and (last_ends or e < first + len(lengths) - 1)
            replay.add(np.array([e, t], np.float32), t % 2, float(t + 1),
                       np.array([e, t + 1], np.float32), terminated=end and ended == "terminated",
                       truncated=end and ended == "truncated")


def _check_windows(batch: SequenceBatch, lengths: dict[int, int]) -> None:
    """Each window: one episode's consecutive steps from its start, as many as the episode
    (``lengths``: its stored length) and the window allow, then zeros."""
    steps = batch.valid.shape[1]
    for b in range(len(batch.start)):
        episode, start = batch.obs[b, 0]
        valid = int(batch.valid[b].sum())
        assert batch.valid[b, :valid].all(), "valid steps are a prefix"
        assert valid == min(steps, lengths[int(episode)] - int(start))
        seen = batch.obs[b, :valid + 1]  # the window's observations and the one after
        assert (seen[:, 0] == episode).all(), f"window {b} crosses out of episode {episode}"
        np.testing.assert_array_equal(seen[:, 1], start + np.arange(valid + 1))
        assert not batch.obs[b, valid + 1:].any(), "padding is zeros"
        assert not batch.action[b, valid:].any() and not batch.reward[b, valid:].any()
        np.testing.assert_array_equal(batch.reward[b, :valid], start + 1 + np.arange(valid))


def test_windows_never_cross_an_episode_boundary():
    lengths = [3, 7, 1, 12, 5, 2]
    replay = _replay()
    _store(replay, lengths)
    batch = replay.sample(500)
    assert batch.obs.shape == (500, 7, 2) and batch.valid.shape == (500, 6)
    _check_windows(batch, dict(enumerate(lengths)))
    starts = {tuple(row) for row in batch.obs[:, 0].astype(int)}
    assert len(starts) == sum(lengths), "a window starts anywhere inside any episode"


def test_burn_in_steps_never_learn_and_padding_is_neither_valid_nor_learnt():
    replay = _replay(burn_in=3, length=4)
    _store(replay, [2, 9, 4, 6])
    batch = replay.sample(300)
    assert not batch.learn[:, :3].any()
    assert not (batch.learn & ~batch.valid).any()
    np.testing.assert_array_equal(batch.learn[:, 3:], batch.valid[:, 3:])
    assert (~batch.valid).any() and batch.learn.any(), "the sample had both kinds"
    assert batch.reset_hidden[:, 0].all() and not batch.reset_hidden[:, 1:].any()


def test_windows_from_an_episodes_first_step_may_learn_without_burn_in():
    replay = _replay(burn_in=3, length=4, learn_from_episode_start=True)
    _store(replay, [2, 9, 4, 6])
    batch = replay.sample(300)
    first = batch.obs[:, 0, 1] == 0
    assert first.any() and (~first).any()
    np.testing.assert_array_equal(batch.learn[first], batch.valid[first])
    assert not batch.learn[~first, :3].any()


def test_a_ring_that_overwrote_an_episodes_beginning_samples_only_its_surviving_steps():
    # 34 steps into 20 slots: episode 0 is gone, episode 1 keeps its steps 6, 7 and 8.
    replay = _replay(capacity=20, burn_in=2, length=3, learn_from_episode_start=True)
    _store(replay, [8, 9, 10, 7])
    batch = replay.sample(1000)
    episode, step = batch.obs[:, 0, 0], batch.obs[:, 0, 1]
    assert 0 not in episode
    assert set(step[episode == 1].tolist()) == {6.0, 7.0, 8.0}
    _check_windows(batch, {1: 9, 2: 10, 3: 7})
    clobbered = (episode == 1) & (step == 6)
    assert clobbered.any() and not batch.learn[clobbered, :2].any(), (
        "the oldest surviving step of a clobbered episode is not its start: it burns in")


def test_an_episode_longer_than_the_ring_ends_its_windows_at_the_newest_step():
    replay = _replay(capacity=10, burn_in=1, length=5)
    _store(replay, [25], last_ends=False)
    batch = replay.sample(400)
    assert batch.obs[:, 0, 1].min() == 15
    _check_windows(batch, {0: 25})  # step 24's next observation closes its window
    at_newest = batch.obs[:, 0, 1] == 24
    assert at_newest.any() and (batch.discount[at_newest, 0] == 0.5).all(), "it bootstraps"


def test_a_window_never_runs_from_the_newest_rows_into_the_oldest():
    # Episode 1's steps 0-2 overwrote episode 0's; the next slot holds episode 0's step 3.
    replay = _replay(capacity=10, burn_in=0, length=4)
    _store(replay, [10, 3], last_ends=False)
    batch = replay.sample(300)
    _check_windows(batch, {0: 10, 1: 3})
    assert (batch.obs[:, 0, 0] == 1).any() and (batch.obs[:, 0, 0] == 0).any()


def test_sampling_is_reproducible_with_the_same_seed():
    batches = []
    for seed in (3, 3, 4):
        replay = _replay(seed=seed)
        _store(replay, [3, 7, 1, 12])
        batches.append(replay.sample(64))
    for same, other in zip(batches[0], batches[1], strict=True):
        np.testing.assert_array_equal(same, other)
    assert not np.array_equal(batches[0].start, batches[2].start)


def _window_from(batch: SequenceBatch, step: int) -> int:
    return int(np.flatnonzero(batch.obs[:, 0, 1] == step)[0])


@pytest.mark.parametrize("ended", ["terminated", "truncated"])
def test_n_step_targets_stay_inside_the_window_and_the_episode(ended):
    replay = _replay(burn_in=0, length=4, n_step=3)  # γ = 0.5; step t has reward t + 1
    _store(replay, [5], ended=ended)
    batch = replay.sample(200)
    b = _window_from(batch, 0)  # m = 3, 3, then cut by the window's end: 2, 1
    np.testing.assert_allclose(batch.bootstrap_reward[b], [2.75, 4.5, 5.0, 4.0])
    np.testing.assert_array_equal(batch.bootstrap_step[b], [3, 4, 4, 4])
    np.testing.assert_allclose(batch.discount[b], [0.125, 0.125, 0.25, 0.5])
    b = _window_from(batch, 2)  # steps 2, 3, 4, then padding: cut by the episode's end
    np.testing.assert_allclose(batch.bootstrap_reward[b], [6.25, 6.5, 5.0, 0.0])
    np.testing.assert_array_equal(batch.bootstrap_step[b, :3], [3, 3, 3])
    end = [0.0, 0.0, 0.0, 0.0] if ended == "terminated" else [0.125, 0.25, 0.5, 0.0]
    np.testing.assert_allclose(batch.discount[b], end)
    np.testing.assert_array_equal(batch.obs[b, 3], [0, 5])  # the episode's last next_obs
    for b in range(len(batch.start)):  # the bootstrap observation is m steps ahead
        valid = batch.valid[b]
        ahead = batch.obs[b, batch.bootstrap_step[b, valid], 1] - batch.obs[b, :4][valid, 1]
        np.testing.assert_array_equal(ahead, batch.bootstrap_step[b, valid] - np.flatnonzero(valid))


def test_one_step_targets_are_the_transitions_own():
    replay = _replay(burn_in=1, length=3)
    _store(replay, [4, 6], ended="terminated")
    batch = replay.sample(200)
    valid = batch.valid
    np.testing.assert_array_equal(batch.bootstrap_reward[valid], batch.reward[valid])
    np.testing.assert_array_equal(batch.bootstrap_step, np.broadcast_to(np.arange(1, 5), (200, 4)))
    last = valid & (batch.obs[:, 1:, 1] == np.where(batch.obs[:, 1:, 0] == 0, 4, 6))
    assert last.any()
    assert (batch.discount[last] == 0).all() and (batch.discount[valid & ~last] == 0.5).all()


def test_a_restored_replay_samples_and_continues_as_the_original():
    replay = _replay(capacity=20, seed=5)
    _store(replay, [8, 9, 6], last_ends=False)
    copy = _replay(capacity=20, seed=5)
    copy.restore({k: v.copy() for k, v in replay.arrays().items()}, replay.position)
    for buffer in (replay, copy):  # episode 2 goes on to its step 6, then episode 3 starts
        buffer.add(np.array([2, 6], np.float32), 0, 7.0, np.array([2, 7], np.float32),
                   terminated=False, truncated=True)
        buffer.add(np.array([3, 0], np.float32), 0, 1.0, np.array([3, 1], np.float32),
                   terminated=False, truncated=False)
    for ours, theirs in zip(replay.sample(50), copy.sample(50), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    newest = (copy.position - 2) % 20, (copy.position - 1) % 20
    assert copy.episode[list(newest)].tolist() == [2, 3]
    assert copy.step[list(newest)].tolist() == [6, 0]


def test_sampling_an_empty_replay_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        _replay().sample(1)
