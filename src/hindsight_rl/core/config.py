"""Typed configuration objects, built from plain parameter mappings at the boundary.

Every section of the parameters files becomes one of these frozen dataclasses through
:func:`from_mapping`, which rejects unknown keys (with a "did you mean") and checks
ranges, so a typo fails before any environment is stepped.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from hindsight_rl.core.errors import HindsightRLError

T = TypeVar("T")

PART_NAMES = ("encoder", "trunk", "head")
CollectionPolicy = Literal["uniform", "epsilon_greedy", "boltzmann"]


class ConfigError(HindsightRLError, ValueError):
    """A parameter has the wrong name, type or value; the message names its key path."""


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: got {value!r}, expected {expected}")


@dataclass(frozen=True)
class GoalConfig:
    """A goal-reaching task: which observation entries are the achieved goal, the goal the
    task asks for, and the reward as a function of the two (what relabelling recomputes).

    MountainCar-v0: achieved = position (``[0]``), desired ``[0.5]``, reached when the
    position is at least the goal, -1 every step: exactly the environment's own reward.
    """

    achieved: tuple[int, ...]
    """Indices of the observation entries that make up the achieved goal."""
    desired: tuple[float, ...]
    """The goal the task asks for; the network sees it beside the observation."""
    reached: Literal["at_least", "within"] = "at_least"
    """``at_least``: every achieved entry ≥ the goal's; ``within``: Euclidean distance to the
    goal ≤ ``tolerance``."""
    tolerance: float = 0.0
    """Distance that counts as reaching the goal with ``reached: within``."""
    step_reward: float = -1.0
    """Reward of a step that does not reach the goal."""
    reached_reward: float = -1.0
    """Reward of the step that reaches it (MountainCar pays -1 on that step too)."""

    def __post_init__(self) -> None:
        _check(len(self.achieved) >= 1 and all(i >= 0 for i in self.achieved), "achieved",
               list(self.achieved), "a non-empty list of observation indices")
        _check(len(self.desired) == len(self.achieved), "desired", list(self.desired),
               f"{len(self.achieved)} numbers, one per achieved index")
        _check(self.tolerance >= 0, "tolerance", self.tolerance, "a number >= 0")


@dataclass(frozen=True)
class HERConfig:
    """Hindsight experience replay (Andrychowicz et al. 2017) for goal-reaching targets."""

    k: int = 0
    """Relabelled copies of each transition, with goals achieved later in its episode
    ("future" strategy); 0 turns relabelling off."""
    strategy: Literal["future"] = "future"
    """Where relabelled goals come from: a uniformly drawn later step of the same episode."""

    def __post_init__(self) -> None:
        _check(self.k >= 0, "k", self.k, "an integer >= 0")


@dataclass(frozen=True)
class EnvConfig:
    """Which Gymnasium environment to build and how to alter it."""

    id: str
    """Registered Gymnasium id, e.g. ``CartPole-v1``."""
    make_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for ``gymnasium.make``."""
    overrides: dict[str, float] = field(default_factory=dict)
    """Attributes set on ``env.unwrapped`` after ``make`` (e.g. CartPole ``length``)."""
    success: Literal["terminated", "truncated", "none"] = "none"
    """Which episode end counts as a success: reaching a goal (``terminated``),
    surviving to the time limit (``truncated``), or undefined (``none``)."""
    entry_point: str | None = None
    """``module:Class`` of an environment Gymnasium does not know yet; it is registered under
    ``id`` on first use, with the two settings below."""
    max_episode_steps: int | None = None
    """Time limit of an ``entry_point`` environment."""
    reward_threshold: float | None = None
    """Return that counts as solved for an ``entry_point`` environment."""
    goal: GoalConfig | None = None
    """Declares a goal-reaching task: the desired goal is appended to every observation
    (the network is goal-conditioned) and ``her`` can relabel transitions."""


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the Q-network: one encoder layer, then trunk layers, then a linear head."""

    hidden_sizes: tuple[int, ...] = (128, 128)
    """Width of the encoder output followed by each trunk layer's output."""

    def __post_init__(self) -> None:
        _check(len(self.hidden_sizes) >= 2, "hidden_sizes", self.hidden_sizes,
               "at least two sizes (encoder, then one or more trunk layers)")
        _check(all(h >= 1 for h in self.hidden_sizes), "hidden_sizes", self.hidden_sizes,
               "positive integers")


@dataclass(frozen=True)
class CollectConfig:
    """How a rollout dataset is collected."""

    steps: int = 1000
    """Environment steps to collect (whole episodes are not required)."""
    policy: CollectionPolicy = "uniform"
    """Behaviour policy: uniform random, ε-greedy or Boltzmann softmax(Q/τ)."""
    epsilon: float = 0.1
    """ε for the ε-greedy behaviour policy."""
    temperature: float = 1.0
    """τ for the Boltzmann behaviour policy."""
    seed: int = 0
    """Seed of the environment and of the behaviour policy's randomness."""

    def __post_init__(self) -> None:
        _check(self.steps >= 1, "steps", self.steps, "an integer >= 1")
        _check(0.0 <= self.epsilon <= 1.0, "epsilon", self.epsilon, "a number in [0, 1]")
        _check(self.temperature > 0.0, "temperature", self.temperature, "a number > 0")


@dataclass(frozen=True)
class DQNConfig:
    """Double DQN with a replay buffer and a hard-updated target network."""

    total_steps: int = 50_000
    """Environment steps of training, including any warm-start transitions."""
    learning_rate: float = 2.3e-3
    """Adam learning rate."""
    batch_size: int = 64
    """Transitions per gradient step."""
    buffer_size: int = 100_000
    """Replay capacity in env steps' transitions (with HER, room for their relabelled
    copies is added)."""
    learning_starts: int = 1000
    """Transitions in the buffer before the first gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    target_update_interval: int = 10
    """Environment steps between hard copies of the online network into the target."""
    train_freq: int = 256
    """Environment steps between training bursts."""
    gradient_steps: int = 128
    """Gradient steps per training burst."""
    exploration_fraction: float = 0.16
    """Fraction of ``total_steps`` over which ε decays linearly."""
    exploration_initial_eps: float = 1.0
    """ε at the first step."""
    exploration_final_eps: float = 0.04
    """ε after the decay."""
    max_grad_norm: float = 10.0
    """Gradient-norm clip."""
    n_step: int = 1
    """Steps of real reward before the TD target bootstraps (multi-step returns); the rows of
    an episode still running use one step until it ends."""
    double_dqn: bool = True
    """Select the next action with the online network, value it with the target."""
    rtg_coef: float = 0.0
    """β of the hindsight loss β·(G_t − Q(s_t,a_t))² on labelled transitions; 0 turns it off."""
    rtg_loss: Literal["squared", "lower_bound"] = "squared"
    """``squared``: (G_t − Q)² as in the seed text; ``lower_bound``: max(0, G_t − Q)², which
    only lifts Q up to a return that was actually achieved (self-imitation)."""
    eval_interval: int = 5000
    """Environment steps between greedy evaluations for the learning curve."""
    eval_episodes: int = 10
    """Greedy episodes per learning-curve point."""
    keep: Literal["best", "last"] = "best"
    """Return the weights of the best learning-curve point or the last ones."""
    stop_on_threshold: bool = False
    """End training at the first learning-curve point at or above the env's reward threshold
    (SB3's ``StopTrainingOnRewardThreshold``): the source task only has to be solved. Arms
    that are compared keep it off, so their curves span the same budget."""

    def __post_init__(self) -> None:
        _check(self.total_steps >= 1, "total_steps", self.total_steps, "an integer >= 1")
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "a number > 0")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        _check(self.buffer_size >= self.batch_size, "buffer_size", self.buffer_size,
               f"an integer >= batch_size ({self.batch_size})")
        _check(self.learning_starts >= self.batch_size, "learning_starts", self.learning_starts,
               f"an integer >= batch_size ({self.batch_size})")
        _check(0.0 < self.gamma <= 1.0, "gamma", self.gamma, "a number in (0, 1]")
        for name in ("n_step", "target_update_interval", "train_freq", "gradient_steps",
                     "eval_interval", "eval_episodes"):
            _check(getattr(self, name) >= 1, name, getattr(self, name), "an integer >= 1")
        _check(0.0 < self.exploration_fraction <= 1.0, "exploration_fraction",
               self.exploration_fraction, "a number in (0, 1]")
        for name in ("exploration_initial_eps", "exploration_final_eps"):
            _check(0.0 <= getattr(self, name) <= 1.0, name, getattr(self, name),
                   "a number in [0, 1]")
        _check(self.max_grad_norm > 0, "max_grad_norm", self.max_grad_norm, "a number > 0")
        _check(self.rtg_coef >= 0, "rtg_coef", self.rtg_coef, "a number >= 0")
        _check(self.total_steps >= self.learning_starts, "total_steps", self.total_steps,
               f"an integer >= learning_starts ({self.learning_starts}), or nothing is learned")


@dataclass(frozen=True)
class FinetuneConfig:
    """What carries over from the pretrained network and what stays fixed."""

    frozen: tuple[str, ...] = ("trunk",)
    """Parts excluded from the optimiser: any of ``encoder``, ``trunk``, ``head``."""
    unfreeze_after_steps: int | None = None
    """Environment step at which frozen parts join the optimiser; ``None`` keeps them frozen."""

    def __post_init__(self) -> None:
        unknown = [p for p in self.frozen if p not in PART_NAMES]
        _check(not unknown, "frozen", list(self.frozen), f"parts among {list(PART_NAMES)}")
        if self.unfreeze_after_steps is not None:
            _check(self.unfreeze_after_steps >= 0, "unfreeze_after_steps",
                   self.unfreeze_after_steps, "an integer >= 0 or null")


@dataclass(frozen=True)
class EvalConfig:
    """How final policies are judged."""

    episodes: int = 100
    """Greedy episodes per final policy."""
    seed: int = 1_000_000
    """First evaluation seed; episode i uses ``seed + i``. Keep it far from training seeds."""
    bootstrap_samples: int = 2000
    """Bootstrap resamples for the confidence intervals."""
    confidence: float = 0.95
    """Confidence level of the intervals."""
    promotion_margin: float = 0.0
    """``retrain``: a challenger replaces the champion only if its mean return is higher by
    more than this."""

    def __post_init__(self) -> None:
        _check(self.episodes >= 1, "episodes", self.episodes, "an integer >= 1")
        _check(self.bootstrap_samples >= 1, "bootstrap_samples", self.bootstrap_samples,
               "an integer >= 1")
        _check(0.0 < self.confidence < 1.0, "confidence", self.confidence, "a number in (0, 1)")


@dataclass(frozen=True)
class SourceConfig:
    """The source task: where the transferable trunk is learned."""

    env: EnvConfig
    """Source environment (default CartPole-v1)."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    """Q-network shape; targets reuse it so the trunk fits."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    """Rollouts that warm-start the pretraining replay buffer."""
    dqn: DQNConfig = field(default_factory=DQNConfig)
    """Pretraining hyperparameters."""
    seed: int = 0
    """Seed of pretraining (weights, exploration, replay sampling)."""

    def __post_init__(self) -> None:
        _check(self.dqn.total_steps > self.collect.steps, "dqn.total_steps",
               self.dqn.total_steps, f"more than collect.steps ({self.collect.steps}), "
               "which it includes")


@dataclass(frozen=True)
class TargetConfig:
    """One target task: transfer, fine-tune, and the from-scratch control."""

    env: EnvConfig
    """Target environment."""
    collect: CollectConfig = field(default_factory=lambda: CollectConfig(policy="boltzmann"))
    """Hindsight-dataset collection with the transferred network."""
    dqn: DQNConfig = field(default_factory=DQNConfig)
    """Fine-tuning (and scratch) hyperparameters; both arms get the same budget."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """What stays frozen."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds, one fine-tuned and one scratch policy each."""
    her: HERConfig = field(default_factory=HERConfig)
    """Goal relabelling of the hindsight dataset and of fine-tuning episodes."""

    def __post_init__(self) -> None:
        _check(self.her.k == 0 or self.env.goal is not None, "her.k", self.her.k,
               "0 for a task without env.goal (nothing to relabel)")
        _check(len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds), "seeds",
               list(self.seeds), "a non-empty list of distinct integers")
        _check(self.dqn.total_steps > self.collect.steps, "dqn.total_steps",
               self.dqn.total_steps, f"more than collect.steps ({self.collect.steps}), "
               "which it includes")


@dataclass(frozen=True)
class ArmConfig:
    """One arm of the ablation: which parts of hindsight fine-tuning it uses."""

    transfer: bool = True
    """Start from the pretrained network (false: fresh weights, the scratch control)."""
    frozen: tuple[str, ...] = ("trunk",)
    """Parts kept out of the optimiser (only with ``transfer``)."""
    rtg_coef: float = 0.0
    """β of the return-to-go loss."""
    her_k: int = 0
    """Relabelled copies per transition; an arm with ``her_k`` > 0 runs only on targets
    that declare a goal."""
    compare_to: str | None = None
    """The arm this one adds a part to: the report's verdict compares the two."""

    def __post_init__(self) -> None:
        unknown = [p for p in self.frozen if p not in PART_NAMES]
        _check(not unknown, "frozen", list(self.frozen), f"parts among {list(PART_NAMES)}")
        _check(self.transfer or not self.frozen, "frozen", list(self.frozen),
               "[] for an arm without transfer (nothing pretrained to freeze)")
        _check(self.rtg_coef >= 0, "rtg_coef", self.rtg_coef, "a number >= 0")
        _check(self.her_k >= 0, "her_k", self.her_k, "an integer >= 0")


@dataclass(frozen=True)
class AblationConfig:
    """What each part buys: every arm on every listed target, several seeds, equal budgets."""

    budgets: dict[str, int] = field(default_factory=dict)
    """Targets to ablate (names in ``targets``) and each one's env-step budget per run."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Training seeds of every arm."""
    arms: dict[str, ArmConfig] = field(default_factory=dict)
    """Arms by name."""

    def __post_init__(self) -> None:
        _check(len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds), "seeds",
               list(self.seeds), "a non-empty list of distinct integers")
        for name, arm in self.arms.items():
            _check(arm.compare_to is None or arm.compare_to in self.arms,
                   f"arms.{name}.compare_to", arm.compare_to,
                   f"null or one of the arms {list(self.arms)}")

    def arms_for(self, target: TargetConfig) -> dict[str, ArmConfig]:
        """The arms that apply to ``target``: relabelling needs a goal."""
        return {name: arm for name, arm in self.arms.items()
                if arm.her_k == 0 or target.env.goal is not None}


@dataclass(frozen=True)
class RuntimeConfig:
    """How a run uses the machine; nothing here changes a result."""

    torch_threads: int | None = None
    """Torch intra-op threads; ``None`` keeps torch's default."""
    checkpoint_dir: str | None = None
    """Folder of training checkpoints; ``None`` turns them off."""
    checkpoint_interval: int = 10_000
    """Environment steps between training checkpoints."""
    seeds_per_node: int | None = None
    """Training seeds of an arm trained together, sharing each update, in one node; ``None``
    for all of a target's seeds. A seed ends with the same weights in any group."""

    def __post_init__(self) -> None:
        if self.torch_threads is not None:
            _check(self.torch_threads >= 1, "torch_threads", self.torch_threads,
                   "an integer >= 1 or null")
        if self.seeds_per_node is not None:
            _check(self.seeds_per_node >= 1, "seeds_per_node", self.seeds_per_node,
                   "an integer >= 1 or null")
        _check(self.checkpoint_interval >= 1, "checkpoint_interval", self.checkpoint_interval,
               "an integer >= 1")


def group_seeds(seeds: tuple[int, ...], size: int | None) -> list[tuple[int, ...]]:
    """``seeds`` in groups of ``size`` (``runtime.seeds_per_node``) in order, the last one
    shorter; all in one group for None."""
    size = size or len(seeds)
    return [tuple(seeds[i:i + size]) for i in range(0, len(seeds), size)]


@dataclass(frozen=True)
class ProjectConfig:
    """All parameters of a run, checked together before the first node starts."""

    source: SourceConfig
    """The source task (``parameters_source.yml``)."""
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    """Target tasks by namespace (``parameters_target.yml``)."""
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    """Final-policy evaluation (``parameters_evaluate.yml``)."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    """Threads and checkpoints (``parameters.yml``)."""
    ablation: AblationConfig = field(default_factory=AblationConfig)
    """The ablation pipeline (``parameters_ablation.yml``)."""

    def __post_init__(self) -> None:
        for name, budget in self.ablation.budgets.items():
            _check(name in self.targets, f"ablation.budgets.{name}", name,
                   f"one of the targets {list(self.targets)}")
            target = self.targets[name]
            _check(budget > target.collect.steps and budget >= target.dqn.learning_starts,
                   f"ablation.budgets.{name}", budget,
                   f"more than targets.{name}.collect.steps ({target.collect.steps}) and at "
                   f"least its dqn.learning_starts ({target.dqn.learning_starts})")
        held_out = range(self.evaluation.seed, self.evaluation.seed + self.evaluation.episodes
                         + max(t.dqn.eval_episodes for t in self.all_runs().values()))
        for path, seed in self.training_seeds().items():
            _check(seed not in held_out, path, seed,
                   f"a seed outside the evaluation block [{held_out.start}, {held_out.stop})")

    def all_runs(self) -> dict[str, SourceConfig | TargetConfig]:
        """The source and every target, by key path."""
        return {"source": self.source, **{f"targets.{n}": t for n, t in self.targets.items()}}

    def training_seeds(self) -> dict[str, int]:
        """Every seed that training or collection uses, by key path."""
        seeds = {"source.seed": self.source.seed,
                 "source.collect.seed": self.source.collect.seed}
        for name, target in self.targets.items():
            seeds[f"targets.{name}.collect.seed"] = target.collect.seed
            seeds.update({f"targets.{name}.seeds[{i}]": s for i, s in enumerate(target.seeds)})
        seeds.update({f"ablation.seeds[{i}]": s for i, s in enumerate(self.ablation.seeds)})
        return seeds


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, path: str = "") -> T:
    """Build dataclass ``cls`` from ``mapping``, naming ``path.key`` in every error."""
    mapping = dict(mapping or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in mapping:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{_join(path, key)}: unknown key{hint} "
                              f"Known keys: {', '.join(fields)}")
    missing = [name for name, f in fields.items() if name not in mapping
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{_join(path, missing[0])}: required key is missing")
    values = {key: _coerce(value, hints[key], _join(path, key)) for key, value in mapping.items()}
    try:
        return cls(**values)
    except ConfigError as error:
        raise ConfigError(f"{_join(path, str(error))}") from None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check ``value`` against a field's type hint, converting lists to tuples."""
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: got {value!r}, expected a mapping")
        return from_mapping(hint, value, path)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: got {value!r}, expected one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: got {value!r}, expected a list")
        return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: got {value!r}, expected a mapping")
        if args and dataclasses.is_dataclass(args[1]):
            return {key: _coerce(item, args[1], _join(path, key)) for key, item in value.items()}
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: got {value!r}, expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{path}: got {value!r}, expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: got {value!r}, expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: got {value!r}, expected a string")
        return value
    return value
