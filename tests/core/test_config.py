import pytest

from hindsight_rl.core.config import (
    ConfigError,
    ProjectConfig,
    SourceConfig,
    TargetConfig,
    from_mapping,
    group_seeds,
)


def test_defaults_fill_missing_sections():
    config = from_mapping(TargetConfig, {"env": {"id": "MountainCar-v0"}}, "targets.mc")
    assert config.finetune.frozen == ("trunk",) and config.collect.policy == "boltzmann"


@pytest.mark.parametrize(("section", "message"), [
    ({"dqn": {"learning_rat": 0.1}}, "targets.mc.dqn.learning_rat: unknown key; did you mean "
                                     "'learning_rate'"),
    ({"dqn": {"gamma": 1.5}}, r"targets.mc.dqn.gamma: got 1.5, expected a number in \(0, 1\]"),
    ({"dqn": {"batch_size": "64"}}, "targets.mc.dqn.batch_size: got '64', expected an integer"),
    ({"dqn": {"n_step": 0}}, r"targets.mc.dqn.n_step: got 0, expected an integer in \[1, 1000\]"),
    ({"dqn": {"batch_size": 64.0}}, "targets.mc.dqn.batch_size: got 64.0, expected an integer"),
    ({"env": {"id": "CartPole-v1", "overrides": {"length": "1.0"}}},
     "targets.mc.env.overrides.length: got '1.0', expected a number"),
    ({"env": {"id": "CartPole-v1", "overrides": {"length": True}}},
     "targets.mc.env.overrides.length: got True, expected a number"),
    ({"env": {"id": "tests.conftest:Corridor-v0"}},
     "targets.mc.env.id: got 'tests.conftest:Corridor-v0', expected a registered id"),
    ({"collect": {"seed": -1}}, r"targets.mc.collect.seed: got -1, expected an integer in \[0, "),
    ({"collect": {"temperature": 1e-9}}, "targets.mc.collect.temperature: got 1e-09"),
    ({"dqn": {"buffer_size": 10**12}}, "targets.mc.dqn.buffer_size: got 1000000000000"),
    ({"dqn": 5}, "targets.mc.dqn: got 5, expected a mapping"),
    ({"finetune": {"frozen": ["torso"]}}, "targets.mc.finetune.frozen"),
    ({"collect": {"policy": "greedy"}}, "targets.mc.collect.policy: got 'greedy'"),
    ({"dqn": {"total_steps": 900, "learning_starts": 100}, "collect": {"steps": 1000}},
     "more than collect.steps"),
    ({"dqn": {"total_steps": 500}}, "total_steps: got 500, expected an integer >= learning_starts"),
    ({"her": {"k": 4}}, "targets.mc.her.k: got 4, expected 0 for a task without env.goal"),
    ({"env": {"id": "MountainCar-v0", "goal": {"achieved": [0], "desired": [0.5, 1.0]}}},
     r"targets.mc.env.goal.desired: got \[0.5, 1.0\], expected 1 numbers"),
])
def test_bad_values_name_their_key_path(section, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(TargetConfig, {"env": {"id": "MountainCar-v0"}, **section}, "targets.mc")


def test_missing_required_key():
    with pytest.raises(ConfigError, match="source.env: required key is missing"):
        from_mapping(SourceConfig, {}, "source")


PROJECT = {"sources": {"cp": {"env": {"id": "CartPole-v1"}}},
           "targets": {"mc": {"env": {"id": "MountainCar-v0"}}}}


def test_project_config_parses_every_target_with_its_path():
    config = from_mapping(ProjectConfig, PROJECT)
    assert list(config.targets) == ["mc"] and config.targets["mc"].env.id == "MountainCar-v0"
    with pytest.raises(ConfigError, match="targets.mc.dqn.gamma: got 0"):
        from_mapping(ProjectConfig, {**PROJECT, "targets": {"mc": {
            "env": {"id": "MountainCar-v0"}, "dqn": {"gamma": 0}}}})


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match="evalution: unknown key; did you mean 'evaluation'"):
        from_mapping(ProjectConfig, {**PROJECT, "evalution": {}})


ABLATION = {"budgets": {"mc": 5000}, "arms": {"scratch": {"transfer": False, "frozen": []},
                                                "her": {"her_k": 4, "compare_to": "scratch"}}}


@pytest.mark.parametrize(("ablation", "message"), [
    ({**ABLATION, "budgets": {"mountaincar": 5000}},
     "ablation.budgets.mountaincar: got 'mountaincar', expected one of the DQN targets"),
    ({**ABLATION, "budgets": {"mc": 900}}, r"ablation.budgets.mc: got 900, expected more than"),
    ({**ABLATION, "arms": {"her": {"compare_to": "frozen"}}},
     r"ablation.arms.her.compare_to: got 'frozen', expected null or one of the arms \['her'\]"),
    ({**ABLATION, "arms": {"scratch": {"transfer": False}}},
     "ablation.arms.scratch.frozen: got \\['trunk'\\], expected \\[\\] for an arm without"),
])
def test_bad_ablation_settings_name_their_key_path(ablation, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(ProjectConfig, {**PROJECT, "ablation": ablation})


def test_a_sac_target_is_not_ablated():
    targets = {"pend": {"env": {"id": "Pendulum-v1"}, "algorithm": "sac",
                        "collect": {"policy": "sample"}}}
    with pytest.raises(ConfigError, match=r"ablation.budgets.pend: got 'pend', expected one "
                                          r"of the DQN targets \[\]"):
        from_mapping(ProjectConfig, {**PROJECT, "targets": targets,
                                     "ablation": {**ABLATION, "budgets": {"pend": 5000}}})


@pytest.mark.parametrize(("target", "message"), [
    ({"collect": {"policy": "sample"}}, "collect.policy: got 'sample', expected uniform, "
                                        "epsilon_greedy or boltzmann"),
    ({"source_actions": [[0.0]]}, r"source_actions: got \[\[0.0\]\], expected null with "
                                  "algorithm dqn"),
    ({"algorithm": "sac"}, "collect.policy: got 'boltzmann', expected uniform or sample"),
    ({"algorithm": "sac", "source_actions": [[1.0]], "collect": {"policy": "sample"}},
     "collect.policy: got 'sample', expected uniform, epsilon_greedy or boltzmann over the "
     "Discrete source's Q-values"),
])
def test_the_collection_policy_must_exist_for_the_algorithm(target, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(TargetConfig, {"env": {"id": "CartPole-v1"}, **target}, "")


def test_a_sac_target_explores_without_epsilon():
    target = {"env": {"id": "Pendulum-v1"}, "algorithm": "sac", "collect": {"policy": "sample"},
              "finetune": {"exploration_initial_eps": 0.3}}
    with pytest.raises(ConfigError, match="finetune.exploration_initial_eps: got 0.3, expected "
                                          "null with algorithm sac"):
        from_mapping(TargetConfig, target, "")
    del target["finetune"]
    assert from_mapping(TargetConfig, target, "").finetune.exploration_initial_eps is None


def test_the_source_collects_with_no_network():
    with pytest.raises(ConfigError, match="source.collect.policy: got 'boltzmann', expected "
                                          "'uniform'"):
        from_mapping(SourceConfig, {"env": {"id": "CartPole-v1"},
                                    "collect": {"policy": "boltzmann"}}, "source")


def test_seeds_are_grouped_in_order_with_a_shorter_last_group():
    assert group_seeds((0, 1, 2), None) == [(0, 1, 2)]
    assert group_seeds((0, 1, 2, 3, 4), 2) == [(0, 1), (2, 3), (4,)]
    assert group_seeds((5, 3), 1) == [(5,), (3,)]


UNIFORM = {"collect": {"policy": "uniform"}}


@pytest.mark.parametrize(("target", "message"), [
    ({"collect": {"policy": "boltzmann"}}, "collect.policy: got 'boltzmann', expected "
                                           "'uniform' with a gru encoder"),
    ({**UNIFORM, "dqn": {"rtg_coef": 0.1}}, "dqn.rtg_coef: got 0.1, expected 0 with a gru"),
    ({**UNIFORM, "env": {"id": "MountainCar-v0", "goal": {"achieved": [0], "desired": [0.5]}},
      "her": {"k": 4}}, "her.k: got 4, expected 0 with a gru encoder"),
])
def test_a_gru_target_trains_on_what_sequence_replay_keeps(target, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(TargetConfig, {"env": {"id": "CartPole-v1"}, "encoder": "gru", **target},
                     "")


def test_a_gru_target_takes_the_sources_widths_with_its_own_encoder():
    target = from_mapping(TargetConfig, {"env": {"id": "CartPole-v1"}, "encoder": "gru",
                                         **UNIFORM}, "")
    source = from_mapping(SourceConfig, {"env": {"id": "CartPole-v1"},
                                         "network": {"hidden_sizes": [32, 16]}}, "")
    assert target.network(source.network).model_dump() == {
        **source.network.model_dump(), "encoder": "gru"}
    with pytest.raises(ConfigError, match="algorithm: got 'sac', expected 'dqn' with a gru"):
        from_mapping(SourceConfig, {"env": {"id": "Pendulum-v1"}, "algorithm": "sac",
                                    "network": {"encoder": "gru"}}, "")
