import numpy as np

from hindsight_rl.core.promotion import best_challenger, decide


def test_best_challenger_has_the_highest_mean():
    returns = {"seed_0": np.array([1.0, 3.0]), "seed_1": np.array([5.0, 5.0])}
    assert best_challenger(returns) == "seed_1"


def test_first_challenger_becomes_champion():
    decision = decide("seed_0", np.array([-150.0]), None, margin=0.0)
    assert decision.promoted and decision.champion_mean is None


def test_challenger_must_beat_the_champion_by_the_margin():
    champion = np.array([-100.0, -100.0])
    assert decide("seed_0", np.array([-99.0]), champion, margin=0.0).promoted
    kept = decide("seed_0", np.array([-99.0]), champion, margin=2.0)
    assert not kept.promoted and "the champion stays" in kept.reason
    assert kept.record()["champion_mean"] == -100.0
