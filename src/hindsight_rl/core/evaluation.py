"""Greedy evaluation on held-out seeds and the statistics that compare two training arms."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from hindsight_rl.core.config import EnvConfig
from hindsight_rl.core.envs import make_env
from hindsight_rl.core.rollouts import QFunction, boltzmann_probabilities

Actions = Callable[[np.ndarray], np.ndarray]
"""A deterministic policy: maps a batch of observations (B, obs_dim) to its actions, (B,)
integers for a discrete task or (B, action_dim) floats for a continuous one."""


Choice = Callable[[np.ndarray], np.ndarray]
"""How a Q-network picks its actions (B,) from a batch of Q-values (B, n_actions)."""


def argmax(q_values: np.ndarray) -> np.ndarray:
    """Each row's best action."""
    return q_values.argmax(axis=1)


def greedy(q_values: QFunction) -> Actions:
    """The argmax policy of a Q-function: how every Q-network is played and judged unless
    its policy file says otherwise (:func:`boltzmann`). A recurrent Q-function's (one with
    ``start``) keeps its episodes' memory."""
    return acting_on(q_values, argmax)


def boltzmann(q_values: QFunction, temperature: float, rng: np.random.Generator) -> Actions:
    """The policy that draws actions from ``softmax(Q / temperature)``
    (:func:`boltzmann_choice`)."""
    return acting_on(q_values, boltzmann_choice(temperature, rng))


def boltzmann_choice(temperature: float, rng: np.random.Generator) -> Choice:
    """Actions drawn from ``softmax(Q / temperature)``; the argmax at temperature 0.

    Why a Q-network may be played this way: where its observation does not show the whole
    state (MiniGrid's view of the cells ahead), the best policy that sees only the
    observation can need randomness (Singh, Jaakkola & Jordan 1994). An argmax policy whose
    actions tie within the fit's error turns on one spot until its time limit; a small
    temperature draws among the near-tied actions there and stays the argmax where one
    action leads clearly. Draws come from ``rng`` alone, so a seeded generator replays the
    same episodes."""
    if temperature == 0:
        return argmax

    def sample(q_values: np.ndarray) -> np.ndarray:
        cumulative = np.cumsum(boltzmann_probabilities(q_values, temperature), axis=1)
        chosen = (cumulative <= rng.random((len(q_values), 1))).sum(axis=1)
        return np.minimum(chosen, q_values.shape[1] - 1)

    return sample


def acting_on(q_values: QFunction, choose: Choice) -> Actions:
    """The policy that picks actions by ``choose`` from a Q-function's values, passing a
    recurrent one's :meth:`start` on."""
    if remembers(q_values):
        return RecurrentActing(q_values, choose)
    return lambda obs: choose(q_values(obs))


def remembers(policy: Callable[..., Any]) -> bool:
    """Whether a policy or Q-function carries a memory of its episodes (a recurrent one):
    it has ``start(episodes)``, which begins that many episodes, and then every call is the
    next step of all of them, in the same order."""
    return callable(getattr(policy, "start", None))


class RecurrentActing:
    """A policy over a recurrent Q-function, passing on its :meth:`start`."""

    def __init__(self, q_values: Any, choose: Choice) -> None:
        self.q_values, self.choose = q_values, choose

    def start(self, episodes: int) -> None:
        self.q_values.start(episodes)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.choose(self.q_values(obs))


def _hashable(action: np.ndarray) -> Hashable:
    """An action as a cycle lists it: an int, or a tuple of a continuous action's floats."""
    action = np.asarray(action)
    return int(action) if action.ndim == 0 else tuple(action.tolist())


def env_action(action: np.ndarray) -> int | np.ndarray:
    """One entry of an :data:`Actions` batch as ``env.step`` takes it: a Python int for a
    discrete action, its own float32 vector (a copy, never a view of the batch) for a
    continuous one."""
    action = np.asarray(action)
    return int(action) if action.ndim == 0 else action.astype(np.float32)


class GreedyEvaluator:
    """Plays a deterministic policy (``argmax Q`` via :func:`greedy`, or an actor's mean
    action) on one environment per seed, all stepped together.

    Episodes run side by side so the network sees one batch per step; each environment is
    reset with its own seed, so results do not depend on the order of play. Where the task
    defines success (``env.success``), :attr:`successes` says which episodes of the last
    :meth:`run` ended in one; with ``longest_cycle`` > 0, :attr:`cycles` says which of the
    others ended stuck in a short cycle.
    """

    def __init__(self, env_config: EnvConfig, seeds: Sequence[int],
                 longest_cycle: int = 0) -> None:
        self.seeds = list(seeds)
        self.envs = [make_env(env_config) for _ in self.seeds]
        self.success = env_config.success
        self.successes: np.ndarray | None = None
        """Per episode of the last run, whether it ended in a success; None where the
        task defines none."""
        self.longest_cycle = longest_cycle
        self.cycles: list[tuple[Hashable, ...] | None] = []
        """With ``longest_cycle`` > 0, per episode of the last run that did not succeed,
        the actions of the cycle it ended in (:func:`cycle_actions`), or None."""

    def run(self, actions: Actions) -> np.ndarray:
        """Undiscounted return of one episode of ``actions`` per seed. A policy with a
        memory (:func:`remembers`) sees every episode's observation at every step, ended
        ones too (their actions are dropped), so its batch rows stay its episodes."""
        obs = np.stack([env.reset(seed=seed)[0]
                        for env, seed in zip(self.envs, self.seeds, strict=True)])
        returns = np.zeros(len(self.envs))
        active = np.ones(len(self.envs), dtype=bool)
        successes = np.zeros(len(self.envs), dtype=bool)
        recurrent = remembers(actions)
        if recurrent:
            actions.start(len(self.envs))
        trails = [deque(maxlen=3 * self.longest_cycle) for _ in self.envs]
        while active.any():
            playing = np.flatnonzero(active)
            if recurrent:
                chosen = actions(obs.astype(np.float32))[playing]
            else:
                chosen = actions(obs[playing].astype(np.float32))
            for i, action in zip(playing, chosen, strict=True):
                if self.longest_cycle:
                    trails[i].append((obs[i].tobytes(), _hashable(action)))
                obs[i], reward, terminated, truncated, _ = self.envs[i].step(env_action(action))
                returns[i] += reward
                active[i] = not (terminated or truncated)
                successes[i] = self._succeeded(terminated, truncated)
        self.successes = None if self.success == "none" else successes
        self.cycles = [None if won else cycle_actions(trail, self.longest_cycle)
                       for trail, won in zip(trails, successes, strict=True)]
        return returns

    def _succeeded(self, terminated: bool, truncated: bool) -> bool:
        """Whether a step's end is the task's success: its goal reached (``terminated``),
        or its time limit survived (``truncated``, without a termination on that step)."""
        if self.success == "terminated":
            return bool(terminated)
        return self.success == "truncated" and bool(truncated) and not terminated

    def close(self) -> None:
        for env in self.envs:
            env.close()


def trailing_cycle(steps: Sequence[Hashable], longest: int) -> int | None:
    """The shortest period ``p`` ≤ ``longest`` with which an episode's last ``3p`` steps
    repeat, or None. With steps of (observation, action), it says where a failed episode
    ended: a deterministic policy that sees the same observation acts the same way, so on a
    deterministic task the episode was stuck there until its time limit (turning left and
    right between two views, pushing into a wall), not searching when time ran out."""
    steps = list(steps)
    for period in range(1, longest + 1):
        window = steps[-3 * period:]
        if len(window) == 3 * period and all(
                window[j] == window[j + period] for j in range(2 * period)):
            return period
    return None


def cycle_actions(trail: Sequence[tuple[bytes, Hashable]], longest: int
                  ) -> tuple[Hashable, ...] | None:
    """The actions of the cycle a trail of (observation bytes, action) ends in, from the
    rotation that sorts first (so left-right and right-left count as one loop), or None."""
    period = trailing_cycle(trail, longest)
    if period is None:
        return None
    actions = [action for _, action in list(trail)[-period:]]
    return min(tuple(actions[j:] + actions[:j]) for j in range(period))


def count_endings(successes: np.ndarray | None, cycles: Sequence[tuple[Hashable, ...] | None]
                  ) -> dict[str, int]:
    """How episodes ended: succeeded, stuck in a cycle (by its actions), or neither."""
    endings: Counter[str] = Counter()
    for i, cycle in enumerate(cycles):
        if successes is not None and successes[i]:
            endings["success"] += 1
        elif cycle is None:
            endings["no short cycle"] += 1
        else:
            endings["cycle " + " ".join(map(str, cycle))] += 1
    return dict(endings.most_common())


def evaluate_greedy(env_config: EnvConfig, actions: Actions,
                    seeds: Sequence[int]) -> np.ndarray:
    """Returns of episodes of the deterministic policy ``actions``, one per seed."""
    evaluator = GreedyEvaluator(env_config, seeds)
    try:
        return evaluator.run(actions)
    finally:
        evaluator.close()


class ValueScale:
    """A Q-function that also averages ``|max_a Q|`` over the observations it is asked
    about: the scale in which ``dqn.acting_temperatures`` are fractions, so that one
    setting means the same on a task whose values are near 1 (MiniGrid) and on one whose
    values are near −100 (MountainCar)."""

    def __init__(self, q_values: Callable[[np.ndarray], np.ndarray]) -> None:
        self.q_values, self.total, self.count = q_values, 0.0, 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        q_values = self.q_values(obs)
        self.total += float(np.abs(q_values.max(axis=1)).sum())
        self.count += len(q_values)
        return q_values

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)


def best_acting(evaluator: GreedyEvaluator, q_values: QFunction, fractions: Sequence[float],
                threshold: float | None, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The returns of ``q_values``' argmax on ``evaluator``'s episodes, or of the Boltzmann
    temperature (one of ``fractions`` × the argmax episodes' mean |max Q|,
    :class:`ValueScale`) that scores best, and that temperature (0.0: the argmax; it wins
    a tie). An argmax at ``threshold`` is kept without trying any: solved, it has nothing
    to gain from randomness, and the cost stays one set of episodes. A recurrent
    Q-function plays its argmax: its memory of the episode already tells apart the spots
    that a memoryless argmax turns on forever."""
    if not fractions or remembers(q_values):
        return evaluator.run(greedy(q_values)), 0.0
    values = ValueScale(q_values)
    best, played = evaluator.run(greedy(values)), 0.0
    if threshold is not None and best.mean() >= threshold:
        return best, played
    for fraction in fractions:
        temperature = fraction * values.mean
        returns = evaluator.run(boltzmann(q_values, temperature, rng))
        if returns.mean() > best.mean():
            best, played = returns, temperature
    return best, played


def interquartile_mean(values: np.ndarray, axis: int = -1) -> Any:
    """Mean of the middle 50% (Agarwal et al. 2021) along ``axis``: robust to one collapsed
    seed. A float for a 1-d input, an array of one IQM per other index otherwise."""
    values = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = values.shape[axis]
    if n < 4:
        middle = values
    else:
        low, high = int(np.floor(n * 0.25)), int(np.ceil(n * 0.75))
        middle = np.take(values, np.arange(low, high), axis=axis)
    means = middle.mean(axis=axis)
    return float(means) if means.ndim == 0 else means


def bootstrap_ci(values: np.ndarray, samples: int, confidence: float,
                 rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap interval of the interquartile mean."""
    values = np.asarray(values, dtype=np.float64)
    resampled = rng.choice(values, size=(samples, len(values)), replace=True)
    stats = interquartile_mean(resampled, axis=1)
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def steps_to_threshold(env_steps: np.ndarray, returns: np.ndarray,
                       threshold: float | None) -> float | None:
    """First env step at which the learning curve reaches ``threshold``; None if never."""
    if threshold is None:
        return None
    reached = np.flatnonzero(np.asarray(returns) >= threshold)
    return float(np.asarray(env_steps)[reached[0]]) if len(reached) else None


def area_under_curve(env_steps: np.ndarray, returns: np.ndarray) -> float:
    """Trapezoidal area under the learning curve divided by its span: a mean return over
    training, which rewards learning early as well as learning well."""
    env_steps = np.asarray(env_steps, dtype=np.float64)
    returns = np.asarray(returns, dtype=np.float64)
    if len(env_steps) < 2:
        return float(returns.mean()) if len(returns) else float("nan")
    area = np.sum((returns[1:] + returns[:-1]) / 2 * np.diff(env_steps))
    return float(area / (env_steps[-1] - env_steps[0]))
