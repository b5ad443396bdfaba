"""Hyperparameter search: the typed search space, the trials' score, pruning on the
learning curve, and the training loop's hook the trials report through."""

from __future__ import annotations

import optuna
import pytest

from hindsight_rl.core.config import (
    ConfigError,
    ProjectConfig,
    TargetConfig,
    TuneConfig,
    from_mapping,
)
from hindsight_rl.core.tuning import (
    TrialReporter,
    Yardstick,
    as_parameters,
    current_settings,
    suggest_settings,
    trial_value,
    trials_of_worker,
    within,
    yardstick_of,
)
from tests.core.test_dqn import train_one

MOUNTAINCAR = {"env": {"id": "MountainCar-v0"}}
SPACE = {"dqn": {"learning_rate": {"type": "log_float", "low": 1e-4, "high": 1e-2},
                 "exploration_fraction": {"type": "float", "low": 0.05, "high": 0.5},
                 "n_step": {"type": "int", "low": 1, "high": 8},
                 "batch_size": {"type": "categorical", "choices": [32, 64]}}}


def _project(space: dict, **tune) -> ProjectConfig:
    return from_mapping(ProjectConfig, {"sources": {}, "targets": {"mountaincar": MOUNTAINCAR},
                                        "tune": {"target": "mountaincar",
                                                 "search_space": space, **tune}})


def test_a_search_space_parses_into_typed_distributions():
    space = _project(SPACE).tune.search_space.by_key_path()
    assert list(space) == ["dqn.learning_rate", "dqn.exploration_fraction", "dqn.n_step",
                           "dqn.batch_size"]
    assert [d.type for d in space.values()] == ["log_float", "float", "int", "categorical"]
    assert space["dqn.batch_size"].choices == (32, 64)
    assert space["dqn.n_step"].extremes() == (1, 8)


@pytest.mark.parametrize(("space", "message"), [
    ({"dqn": {"learning_rate": {"type": "log_float", "low": 0.0, "high": 1e-2}}},
     "tune.search_space.dqn.learning_rate.low: got 0.0, expected a number > 0 for type "
     "log_float"),
    ({"dqn": {"n_step": {"type": "int", "low": 1.5, "high": 8}}},
     "tune.search_space.dqn.n_step.low: got 1.5, expected an integer for type int"),
    ({"dqn": {"n_step": {"type": "int", "low": 8, "high": 1}}},
     "tune.search_space.dqn.n_step.high: got 1.0, expected a number > low"),
    ({"dqn": {"batch_size": {"type": "categorical"}}},
     "tune.search_space.dqn.batch_size.choices: got None, expected a list of at least 1"),
    ({"dqn": {"batch_size": {"type": "categorical", "choices": [32], "low": 1}}},
     "tune.search_space.dqn.batch_size.low: got 1.0, expected no low/high"),
    ({"dqn": {"n_step": {"type": "integer", "low": 1, "high": 8}}},
     "tune.search_space.dqn.n_step.type: got 'integer', expected one of 'float', "
     "'log_float', 'int' or 'categorical'"),
    ({"dqn": {"n_step": {"type": "int", "low": 1, "hihg": 8}}},
     "tune.search_space.dqn.n_step.hihg: unknown key; did you mean 'high'?"),
    ({**SPACE, "env": {"id": {"type": "categorical", "choices": ["CartPole-v1"]}}},
     "tune.search_space.env: unknown key Known keys: dqn"),
    ({"dqn": {"total_steps": {"type": "int", "low": 1000, "high": 9000}}},
     "tune.search_space.dqn.total_steps: got 'total_steps', expected a setting other than "
     "total_steps, eval_interval, eval_episodes, stop_on_threshold, which measure the trials"),
    ({"dqn": {"learnin_rate": {"type": "float", "low": 0.1, "high": 0.2}}},
     "tune.search_space.dqn.learnin_rate: 0.1 is not a valid value here "
     r"\(targets.mountaincar.dqn.learnin_rate: got 0.1, expected a key path"),
    ({"dqn": {"batch_size": {"type": "categorical", "choices": [64, 10**6]}}},
     "tune.search_space.dqn.batch_size: 1000000 is not a valid value here "
     r"\(targets.mountaincar.dqn.batch_size: got 1000000, expected an integer in \[1, 65536\]"),
    ({"dqn": {"gamma": {"type": "int", "low": 0, "high": 1}}},
     r"tune.search_space.dqn.gamma: 0 is not a valid value here \(targets.mountaincar.dqn."
     r"gamma: got 0, expected a number in \(0, 1\]"),
    ({"dqn": {}}, "tune.search_space.dqn: .*at least 1"),
    ({}, "tune.search_space.dqn: required key is missing"),
])
def test_a_bad_search_space_fails_naming_its_key(space, message):
    with pytest.raises(ConfigError, match=message):
        _project(space)


def test_the_tuned_target_must_exist_and_be_trained_by_dqn():
    with pytest.raises(ConfigError, match=r"tune.target: got 'cartpole', expected one of the "
                                          r"DQN targets \['mountaincar'\]"):
        _project(SPACE, target="cartpole")


YARDSTICK = Yardstick(threshold=-110.0, budget=10_000, miss_penalty=100.0)


def test_a_seed_scores_its_first_step_at_the_threshold():
    assert YARDSTICK.seed_score([1000, 2000, 3000, 4000], [-200, -150, -105, -120]) == 3000


def test_a_seed_that_misses_scores_the_budget_plus_its_shortfall():
    assert YARDSTICK.seed_score([1000, 2000], [-200, -130]) == 10_000 + 100 * 20
    closer = YARDSTICK.seed_score([1000, 2000], [-200, -115])
    assert 10_000 < closer < YARDSTICK.seed_score([1000, 2000], [-200, -130])


def test_a_trial_scores_the_mean_of_its_seeds():
    reporter = TrialReporter(YARDSTICK, seeds=2)
    for step, means in ((1000, [-200, -200]), (2000, [-100, -150]), (3000, [-100, -140])):
        reporter(step, means)
    assert reporter.score == (2000 + 10_000 + 100 * 30) / 2
    assert reporter.seed_steps() == [2000, None]
    assert [score for _, score in reporter.scores] == sorted(
        [score for _, score in reporter.scores], reverse=True), "only falls as it learns"


def test_the_threshold_is_the_envs_unless_configured():
    target = from_mapping(TargetConfig, MOUNTAINCAR)
    assert yardstick_of(TuneConfig(target="m", search_space=SPACE), target).threshold == -110
    assert yardstick_of(TuneConfig(target="m", search_space=SPACE, threshold=-120.0),
                        target).threshold == -120
    assert yardstick_of(TuneConfig(target="m", search_space=SPACE), target).budget == 50_000


def test_training_stops_once_every_seed_reached_the_threshold():
    reporter = TrialReporter(YARDSTICK, seeds=2)
    assert not reporter(1000, [-100, -150])
    assert reporter(2000, [-120, -105])


def _study(**pruner) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="minimize",
                               pruner=optuna.pruners.MedianPruner(**pruner))


def _follow(study: optuna.Study, curve: list[float]) -> TrialReporter:
    """One trial whose single seed's learning curve is ``curve`` (a point every 1000 steps),
    told to the study as Optuna's optimize would."""
    trial = study.ask()
    reporter = TrialReporter(YARDSTICK, seeds=1, trial=trial)
    for i, mean in enumerate(curve):
        if reporter((i + 1) * 1000, [mean]):
            break
    try:
        study.tell(trial, trial_value(reporter))
    except optuna.TrialPruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return reporter


def test_the_median_pruner_stops_a_clearly_bad_trial():
    study = _study(n_startup_trials=3, n_warmup_steps=2000)
    for improving in ([-200, -180, -150, -130, -120, -105], [-200, -170, -160, -140, -115, -108],
                      [-200, -190, -140, -125, -112, -109]):
        assert not _follow(study, improving).pruned
    flat = _follow(study, [-200] * 6)
    assert flat.pruned and flat.scores[-1][0] == 2000, "at the first step after warm-up"
    assert study.trials[-1].state == optuna.trial.TrialState.PRUNED
    assert study.best_value == 6000


def test_a_trial_that_keeps_up_is_not_pruned():
    study = _study(n_startup_trials=1, n_warmup_steps=0)
    _follow(study, [-200, -150, -120, -100])
    keeps_up = _follow(study, [-200, -140, -105])
    assert not keeps_up.pruned and study.trials[-1].value == 3000


def test_suggested_settings_lie_in_the_space_and_keep_their_types():
    space = _project(SPACE).tune.search_space.by_key_path()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        settings = suggest_settings(study.ask(), space)
        assert within(space, settings)
        assert isinstance(settings["dqn.n_step"], int)
        assert settings["dqn.batch_size"] in (32, 64)


def test_the_targets_current_settings_and_the_parameters_document():
    target = from_mapping(TargetConfig, {**MOUNTAINCAR, "dqn": {"learning_rate": 0.004}})
    settings = current_settings(target, ["dqn.learning_rate", "dqn.n_step"])
    assert settings == {"dqn.learning_rate": 0.004, "dqn.n_step": 1}
    assert as_parameters("mountaincar", settings) == {
        "targets": {"mountaincar": {"dqn": {"learning_rate": 0.004, "n_step": 1}}}}
    assert not within(_project(SPACE).tune.search_space.by_key_path(),
                      {**settings, "dqn.exploration_fraction": 0.9, "dqn.batch_size": 32})


@pytest.mark.parametrize(("n_trials", "workers"), [(40, 2), (7, 3), (2, 4)])
def test_workers_share_every_trial(n_trials, workers):
    shares = [trials_of_worker(n_trials, i, workers) for i in range(workers)]
    assert sum(shares) == n_trials and max(shares) - min(shares) <= 1


def test_the_training_loop_stops_where_its_curve_callback_says(corridor, tiny_network,
                                                               tiny_dqn):
    from hindsight_rl.core.networks import QNetwork

    seen = []

    def stop_at_the_second_point(step, means):
        seen.append((step, len(means)))
        return len(seen) == 2

    result = train_one(QNetwork(1, 2, tiny_network), corridor, tiny_dqn,
                       on_curve=stop_at_the_second_point)
    assert seen == [(0, 1), (100, 1)]
    assert result.env_steps == 100 < tiny_dqn.total_steps
