"""Nodes of the hyperparameter search: thin wrappers of :mod:`hindsight_rl.core.tuning`
that also give every trial an MLflow child run when a run is active."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd
import yaml

from hindsight_rl.core.config import (
    EvalConfig,
    RuntimeConfig,
    TargetConfig,
    TuneConfig,
    from_mapping,
)
from hindsight_rl.core.dqn import NonFiniteLossError
from hindsight_rl.core.tuning import (
    TrialReporter,
    as_parameters,
    best_trial,
    current_settings,
    enqueue_defaults,
    load_study,
    new_study,
    suggest_settings,
    train_settings,
    trial_value,
    trials_of_worker,
)

logger = logging.getLogger(__name__)


def tuned_target(tune: TuneConfig, targets: Mapping[str, Any]) -> TargetConfig:
    """The target the search tunes, as typed config."""
    return from_mapping(TargetConfig, targets[tune.target], f"targets.{tune.target}")


def searched_settings(tune: TuneConfig, targets: Mapping[str, Any]) -> dict[str, Any]:
    """The tuned target's current values of the searched settings, by key path."""
    return current_settings(tuned_target(tune, targets), list(tune.search_space.by_key_path()))


def create_study(tune: TuneConfig, targets: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh study (or the stored one with ``resume``), the target's current settings
    enqueued as its first trial; returns what the workers open."""
    study = new_study(tune)
    first = len(study.get_trials(deepcopy=False))
    enqueued = enqueue_defaults(study, tune, searched_settings(tune, targets))
    return {"study_name": study.study_name, "storage": tune.storage,
            "defaults_trial": first if enqueued else None}


def run_trials(study: dict[str, Any], tune: TuneConfig, targets: Mapping[str, Any],
               evaluation: EvalConfig, runtime: RuntimeConfig, worker: int, workers: int
               ) -> list[int]:
    """This worker's share of ``tune.n_trials``; returns the numbers of its trials.
    (``runtime``: TorchThreadsHook pins this process's torch threads with it.)"""
    target = tuned_target(tune, targets)
    optuna_study = load_study(tune, worker)
    numbers: list[int] = []

    def objective(trial: Any) -> float:
        numbers.append(trial.number)
        settings = suggest_settings(trial, tune.search_space.by_key_path())
        with _child_run(f"trial {trial.number}", settings) as log:
            reporter = train_settings(settings, tune.target, target, tune, evaluation,
                                      tune.seeds, trial)
            log(reporter)
        return trial_value(reporter)

    # Settings that make training diverge fail their trial, not the search.
    optuna_study.optimize(objective, n_trials=trials_of_worker(tune.n_trials, worker, workers),
                          catch=(NonFiniteLossError,))
    logger.info("tune worker %d: trials %s", worker, numbers)
    return numbers


@contextmanager
def _child_run(name: str, settings: Mapping[str, Any]) -> Iterator[Any]:
    """An MLflow run nested in the active one, with the trial's settings as parameters;
    yields a function logging its scores per env step and outcome. Without an active run
    (no kedro-mlflow, or a spawned Dask worker) nothing is logged: mlflow is never
    imported here."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None or mlflow.active_run() is None:
        yield lambda reporter: None
        return
    with mlflow.start_run(run_name=name, nested=True):
        mlflow.log_params(dict(settings))

        def log(reporter: TrialReporter) -> None:
            for step, score in reporter.scores:
                mlflow.log_metric("score", score, step=step)
            mlflow.set_tag("state", "pruned" if reporter.pruned else "complete")
            if not reporter.pruned:
                mlflow.log_metric("objective", reporter.score)

        yield log


def report_study(study: dict[str, Any], tune: TuneConfig, *done: list[int]
                 ) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """The study's trials as a table, the best trial's settings as a parameters file for
    ``conf/local/`` and as settings by key path."""
    optuna_study = load_study(tune)
    best = best_trial(optuna_study)
    trials = optuna_study.trials_dataframe()
    for column in trials.select_dtypes("timedelta").columns:
        trials[column] = trials[column].dt.total_seconds()
    header = (f"# Best of {len(trials)} trials of Optuna study {study['study_name']!r} "
              f"(trial {best.number}): {best.value:.0f} env steps to the threshold, mean of "
              f"seeds {list(tune.seeds)}.\n"
              "# Adopt: copy this file to conf/local/parameters_tuned.yml (conf/local overrides"
              " conf/base key by key).\n")
    text = header + yaml.safe_dump(as_parameters(tune.target, best.params), sort_keys=False)
    return trials, text, {"trial": best.number, "value": best.value, "settings": best.params}


def _check(settings: Mapping[str, Any], tune: TuneConfig, targets: Mapping[str, Any],
           evaluation: EvalConfig) -> dict[str, Any]:
    """``settings`` trained once more on ``tune.check_seeds``, scored as the trials were."""
    reporter = train_settings(settings, tune.target, tuned_target(tune, targets), tune,
                              evaluation, tune.check_seeds)
    return {"settings": dict(settings), "seeds": list(tune.check_seeds),
            "steps_to_threshold": reporter.seed_steps(), "score": reporter.score}


def check_defaults(tune: TuneConfig, targets: Mapping[str, Any], evaluation: EvalConfig,
                   runtime: RuntimeConfig) -> dict[str, Any]:
    """The target's current settings on the check seeds."""
    return _check(searched_settings(tune, targets), tune, targets, evaluation)


def check_best(best_settings: dict[str, Any], tune: TuneConfig, targets: Mapping[str, Any],
               evaluation: EvalConfig, runtime: RuntimeConfig) -> dict[str, Any]:
    """The search's best settings on the check seeds."""
    return _check(best_settings["settings"], tune, targets, evaluation)


def compare(defaults: dict[str, Any], best: dict[str, Any], study: dict[str, Any],
            tune: TuneConfig) -> dict[str, Any]:
    """Both checks side by side, with the search's own figures for the best trial and, when
    it was enqueued, the current settings' trial."""
    optuna_study = load_study(tune)
    states = pd.Series([t.state.name.lower() for t in optuna_study.get_trials(deepcopy=False)])
    best_of_search = best_trial(optuna_study)
    searched = {"best_trial": best_of_search.number, "best_score": best_of_search.value,
                "trials": {str(k): int(v) for k, v in states.value_counts().items()}}
    if study["defaults_trial"] is not None:
        searched["defaults_score"] = optuna_study.trials[study["defaults_trial"]].value
    improvement = defaults["score"] - best["score"]
    logger.info("tune: %s env steps to the threshold on check seeds %s: current settings "
                "%.0f, best trial %.0f", tune.target, list(tune.check_seeds),
                defaults["score"], best["score"])
    return {"target": tune.target, "study_name": study["study_name"], "search": searched,
            "defaults": defaults, "best": best, "improvement_env_steps": improvement}
