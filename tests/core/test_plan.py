import numpy as np
import pytest
import torch

from hindsight_rl.core.config import EnvConfig, NetworkConfig, TargetConfig
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.plan import Probe, TransferPlan, choose_transfer, probe_sources
from hindsight_rl.core.policy_file import Policy

ALL = ("encoder", "trunk", "head")
TARGET = TargetConfig(env=EnvConfig(id="Corridor-v0"))


def test_the_best_same_space_source_that_beats_chance_is_chosen_and_teaches():
    probes = {"weak": Probe(ALL, -4.0), "strong": Probe(ALL, -2.0),
              "other": Probe(("trunk",), -2.0)}
    plan = choose_transfer(probes, random_return=-5.0, target=TARGET)
    assert (plan.source, plan.teacher, plan.frozen) == ("strong", True, ())
    assert "the best of 3 candidates" in plan.reason


def test_without_an_informed_candidate_the_first_one_transfers_its_trunk_frozen():
    probes = {"far": Probe(("trunk",), -5.0), "useless": Probe(ALL, -5.0)}
    plan = choose_transfer(probes, random_return=-5.0, target=TARGET)
    assert (plan.source, plan.teacher, plan.frozen) == ("far", False, ("trunk",))
    assert "none carries every part and beats chance" in plan.reason
    no_teacher = TARGET.model_copy(update={"finetune": TARGET.finetune.model_copy(
        update={"teacher_coef": 0.0, "unsolved_teacher_coef": 0.0})})
    plan = choose_transfer({"good": Probe(ALL, -2.0)}, -5.0, no_teacher)
    assert not plan.teacher and plan.frozen == ("trunk",)


def test_a_plan_round_trips_through_its_record_and_applies_to_the_config():
    plan = choose_transfer({"a": Probe(ALL, -2.0)}, -5.0, TARGET)
    again = TransferPlan.from_record(plan.record())
    assert again == plan
    applied = again.finetune(TARGET.finetune)
    assert applied.frozen == () and applied.teacher_coef == TARGET.finetune.teacher_coef
    untaught = choose_transfer({"a": Probe(("trunk",), -2.0)}, -5.0, TARGET)
    assert not untaught.finetune(TARGET.finetune).teaches


def _corridor_policy(prefers_right: bool) -> Policy:
    """A network whose greedy action is always 1 (walk right: the corridor's goal) or 0."""
    torch.manual_seed(0)
    network = QNetwork(1, 2, NetworkConfig(hidden_sizes=(4, 4)))
    with torch.no_grad():
        network.head.weight.zero_()
        network.head.bias[0, 0] = torch.tensor([0.0, 1.0] if prefers_right else [1.0, 0.0])
    return Policy(network=network, env=EnvConfig(id="Corridor-v0"), gamma=0.9)


def test_the_probe_plays_every_candidate_and_chance_and_picks_the_better_source(corridor):
    candidates = {"stays": _corridor_policy(False), "walks": _corridor_policy(True)}
    probes, chance = probe_sources(candidates, corridor, seeds=[1, 2, 3, 4])
    assert probes["walks"].jumpstart == -2.0 and probes["stays"].jumpstart == -5.0
    assert -5.0 < chance < -2.0
    assert choose_transfer(probes, chance, TargetConfig(env=corridor)).source == "walks"
    assert np.isfinite(chance)


def test_the_probe_plays_a_candidate_by_the_temperature_that_scores_higher(corridor):
    stays = _corridor_policy(False)
    with torch.no_grad():
        stays.network.head.bias[0, 0] = torch.tensor([-1.0, -1.05])  # stays by a hair
    seeds = range(10, 30)
    argmax, chance = probe_sources({"stays": stays}, corridor, seeds)
    warm, _ = probe_sources({"stays": stays}, corridor, seeds, acting_temperatures=(0.5,))
    assert argmax["stays"] == Probe(ALL, -5.0, 0.0)
    assert warm["stays"].jumpstart > -5.0 and warm["stays"].temperature > 0
    plan = choose_transfer(warm, chance, TargetConfig(env=corridor))
    assert "Boltzmann, temperature" in plan.reason
    assert TransferPlan.from_record(plan.record()) == plan


@pytest.mark.parametrize("random_return", [-2.0, -1.0])
def test_a_source_no_better_than_chance_does_not_teach(random_return):
    plan = choose_transfer({"a": Probe(ALL, -2.0)}, random_return, TARGET)
    assert not plan.teacher
