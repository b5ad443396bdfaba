import numpy as np
import pytest

from hindsight_rl.core.novelty import NoveltyBonus


def _bonus(coef: float = 0.5, obs_dim: int = 147, bits: int = 32, seed: int = 0,
           shift: float = 0.0, scale: float = 1.0) -> NoveltyBonus:
    return NoveltyBonus(coef, bits, np.full(obs_dim, shift, np.float32),
                        np.full(obs_dim, scale, np.float32), seed)


def test_the_bonus_falls_with_the_square_root_of_the_visits():
    bonus, obs = _bonus(), np.arange(147, dtype=np.float32) % 11
    assert [bonus(obs) for _ in range(4)] == pytest.approx([0.5, 0.5 / 2 ** 0.5,
                                                            0.5 / 3 ** 0.5, 0.25])


def test_nearby_observations_share_a_count_and_distant_ones_do_not():
    rng = np.random.default_rng(1)
    bonus, obs = _bonus(), rng.integers(0, 11, 147).astype(np.float32)
    assert bonus(obs) == 0.5
    assert bonus(obs + 1e-6) < 0.5, "a tiny change is the same cell"
    assert bonus(rng.integers(0, 11, 147).astype(np.float32)) == 0.5, "another view: new"


def test_observations_are_hashed_as_the_network_normalises_them():
    # Observations shifted by the normaliser's own shift hash alike under it.
    obs = np.random.default_rng(2).standard_normal(8).astype(np.float32)
    plain, shifted = _bonus(obs_dim=8), _bonus(obs_dim=8, shift=100.0)
    assert plain.code(obs) == shifted.code(obs + 100.0)


def test_the_counts_round_trip_through_tensors():
    bonus, rng = _bonus(), np.random.default_rng(3)
    views = [rng.integers(0, 11, 147).astype(np.float32) for _ in range(5)]
    for view in views + views[:2]:
        bonus(view)
    restored = _bonus()
    restored.restore(bonus.tensors())
    assert restored.counts == bonus.counts
    assert restored(views[0]) == bonus(views[0]) == pytest.approx(0.5 / 3 ** 0.5)


def test_the_hash_must_fit_a_checkpoint_tensor():
    with pytest.raises(ValueError, match="bits"):
        _bonus(bits=63)
