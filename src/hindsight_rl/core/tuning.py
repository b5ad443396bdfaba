"""Hyperparameter search with Optuna: trials train a target from scratch and are scored by
how soon their learning curves reach the threshold.

The score of a trial (lower is better) is the mean over its seeds of each seed's first env
step whose learning-curve point reaches the threshold (−110 on MountainCar-v0: the env's
``reward_threshold`` unless ``tune.threshold`` says otherwise). A seed that never reaches it
scores the budget plus ``miss_penalty`` env steps per unit of return its best point fell
short: trials that miss are still ordered, by how close they came, rather than tied at
the budget, so TPE learns from them. (The area under the learning curve would order them
too, but it rewards early mediocre returns that the threshold does not ask for.)

The same score, computed on the curve so far, is reported to the trial at every
learning-curve point, so Optuna's median pruner compares trials at equal env steps; a seed
not there yet counts as a miss, so the reported score only falls as a trial learns, and
the last report is the trial's value. Training stops early when the trial is pruned or
when every seed has reached the threshold (its score cannot change after that).

Optuna is the ``tune`` extra; it is imported where a study is made, never by the rest of
the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hindsight_rl.core.config import (
    ConfigError,
    Distribution,
    EvalConfig,
    TargetConfig,
    TuneConfig,
    with_settings,
)
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import steps_to_threshold
from hindsight_rl.core.training import curve_seeds, train_from_scratch, uniform_warm_start

if TYPE_CHECKING:
    import optuna


class TuningError(HindsightRLError, RuntimeError):
    """A search cannot give a result (no trial completed)."""


@dataclass(frozen=True)
class Yardstick:
    """How a trial is scored: env steps to ``threshold`` within ``budget``."""

    threshold: float
    budget: int
    miss_penalty: float

    def seed_score(self, env_steps: Sequence[int], returns: Sequence[float]) -> float:
        """One seed's first env step at the threshold; the budget plus the penalty for its
        best return's shortfall when it never got there."""
        reached = steps_to_threshold(np.asarray(env_steps), np.asarray(returns),
                                     self.threshold)
        if reached is not None:
            return reached
        best = max(returns, default=-np.inf)
        shortfall = self.threshold - best if np.isfinite(best) else 0.0
        return self.budget + self.miss_penalty * shortfall

    def score(self, curves: Sequence[Curve]) -> float:
        """The mean seed score of ``curves``."""
        return float(np.mean([self.seed_score(c.env_steps, c.returns) for c in curves]))

    def all_reached(self, curves: Sequence[Curve]) -> bool:
        return all(max(c.returns, default=-np.inf) >= self.threshold for c in curves)


def yardstick_of(tune: TuneConfig, target: TargetConfig) -> Yardstick:
    """The trials' yardstick: ``tune.threshold`` or the env's, and the target's budget."""
    threshold = tune.threshold
    if threshold is None:
        threshold = env_info(target.env).reward_threshold
    if threshold is None:
        raise ConfigError(f"tune.threshold: required: {target.env.id} has no reward "
                          "threshold to reach")
    return Yardstick(threshold, target.dqn.total_steps, tune.miss_penalty)


@dataclass
class Curve:
    """One seed's learning curve so far."""

    env_steps: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)


class TrialReporter:
    """The ``on_curve`` of a trial's training: keeps each seed's curve, reports the score
    so far to the trial (when there is one) and says stop once the trial is pruned or every
    seed has reached the threshold."""

    def __init__(self, yardstick: Yardstick, seeds: int,
                 trial: optuna.Trial | None = None) -> None:
        self.yardstick, self.trial = yardstick, trial
        self.curves = [Curve() for _ in range(seeds)]
        self.scores: list[tuple[int, float]] = []
        """(env step, score so far) at every learning-curve point."""
        self.pruned = False

    def __call__(self, step: int, means: list[float]) -> bool:
        for curve, mean in zip(self.curves, means, strict=True):
            curve.env_steps.append(step)
            curve.returns.append(mean)
        self.scores.append((step, self.score))
        if self.trial is not None:
            self.trial.report(self.score, step)
            self.pruned = self.trial.should_prune()
        return self.pruned or self.yardstick.all_reached(self.curves)

    @property
    def score(self) -> float:
        return self.yardstick.score(self.curves)

    def seed_steps(self) -> list[float | None]:
        """Each seed's env steps to the threshold (None: not reached)."""
        return [steps_to_threshold(np.asarray(c.env_steps), np.asarray(c.returns),
                                   self.yardstick.threshold) for c in self.curves]


def suggest_settings(trial: optuna.Trial, space: Mapping[str, Distribution]) -> dict[str, Any]:
    """One value per searched setting, drawn by the trial's sampler."""
    settings: dict[str, Any] = {}
    for key, dist in space.items():
        if dist.type == "categorical":
            settings[key] = trial.suggest_categorical(key, list(dist.choices))
        elif dist.type == "int":
            settings[key] = trial.suggest_int(key, int(dist.low), int(dist.high))
        else:
            settings[key] = trial.suggest_float(key, dist.low, dist.high,
                                                log=dist.type == "log_float")
    return settings


def train_settings(settings: Mapping[str, Any], target_name: str, target: TargetConfig,
                   tune: TuneConfig, evaluation: EvalConfig, seeds: Sequence[int],
                   trial: optuna.Trial | None = None) -> TrialReporter:
    """Train ``target`` with ``settings`` from scratch on ``seeds`` (stacked, each with its
    uniform replay preload), the learning curves on the held-out curve episodes; returns
    the reporter that followed them."""
    config = with_settings(target, settings, f"targets.{target_name}")
    reporter = TrialReporter(yardstick_of(tune, config), len(seeds), trial)
    label = f"tune {target_name}" + (f" trial {trial.number}" if trial is not None else "")
    train_from_scratch(
        config.env, tune.network, config.dqn,
        {seed: uniform_warm_start(config.env, config.collect.steps, seed) for seed in seeds},
        curve_seeds(evaluation, config.dqn.eval_episodes), label, on_curve=reporter)
    return reporter


def trial_value(reporter: TrialReporter) -> float:
    """The trial's objective; a pruned trial ends as Optuna's ``TrialPruned``."""
    if reporter.pruned:
        optuna = _optuna()
        raise optuna.TrialPruned(f"pruned at env step {reporter.scores[-1][0]}")
    return reporter.score


def current_settings(target: TargetConfig, keys: Sequence[str]) -> dict[str, Any]:
    """The target's values of the searched settings, by key path."""
    document = target.model_dump()
    settings = {}
    for key in keys:
        value: Any = document
        for part in key.split("."):
            value = value[part]
        settings[key] = value
    return settings


def within(space: Mapping[str, Distribution], settings: Mapping[str, Any]) -> bool:
    """Whether every setting is a value its distribution can draw."""
    for key, dist in space.items():
        value = settings[key]
        if dist.type == "categorical":
            if value not in dist.choices:
                return False
        elif not dist.low <= value <= dist.high:
            return False
    return True


def trials_of_worker(n_trials: int, worker: int, workers: int) -> int:
    """Worker ``worker``'s share of ``n_trials`` (the first ones take the remainder)."""
    return n_trials // workers + (worker < n_trials % workers)


def storage_of(tune: TuneConfig) -> optuna.storages.BaseStorage:
    """The journal file every worker shares: appended under a file lock, so it works across
    processes and on any shared file system (no database server)."""
    optuna = _optuna()
    from optuna.storages.journal import JournalFileBackend

    path = Path(tune.storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def new_study(tune: TuneConfig) -> optuna.Study:
    """This run's study: a fresh one (any stored study of that name deleted) unless
    ``resume``."""
    optuna = _optuna()
    storage = storage_of(tune)
    names = {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    if tune.study_name in names and not tune.resume:
        optuna.delete_study(study_name=tune.study_name, storage=storage)
    return optuna.create_study(study_name=tune.study_name, storage=storage,
                               direction="minimize", load_if_exists=tune.resume)


def enqueue_defaults(study: optuna.Study, tune: TuneConfig, defaults: Mapping[str, Any]
                     ) -> bool:
    """With ``enqueue_defaults``, the next trial tries ``defaults`` when they lie inside the
    search space; says whether it will."""
    if not (tune.enqueue_defaults and within(tune.search_space.by_key_path(), defaults)):
        return False
    study.enqueue_trial(dict(defaults))
    return True


def load_study(tune: TuneConfig, worker: int = 0) -> optuna.Study:
    """The run's study as worker ``worker`` sees it: its own sampler seed (``seed + worker``,
    so workers do not propose the same settings) and the configured pruner."""
    optuna = _optuna()
    sampler_config, pruner_config = tune.sampler, tune.pruner
    seed = sampler_config.seed + worker
    if sampler_config.kind == "tpe":
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=sampler_config.n_startup_trials, constant_liar=True)
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=pruner_config.n_startup_trials,
                                          n_warmup_steps=pruner_config.n_warmup_steps)
              if pruner_config.kind == "median" else optuna.pruners.NopPruner())
    return optuna.load_study(study_name=tune.study_name, storage=storage_of(tune),
                             sampler=sampler, pruner=pruner)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The completed trial with the lowest score."""
    optuna = _optuna()
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise TuningError(f"study {study.study_name!r}: no trial completed (all pruned or "
                          "failed); raise tune.n_trials or pruner.n_startup_trials")
    return study.best_trial


def as_parameters(target_name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings by key path as a parameters document: ``{targets: {<target>: {dqn: {...}}}}``,
    the shape of ``conf/base/parameters_target.yml``."""
    section: dict[str, Any] = {}
    for key, value in settings.items():
        *parents, last = key.split(".")
        node = section
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return {"targets": {target_name: section}}


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise HindsightRLError("hyperparameter search needs Optuna: pip install "
                               "'hindsight-rl[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna
