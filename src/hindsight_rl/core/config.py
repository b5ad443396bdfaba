"""Typed configuration: one frozen pydantic model per section of the parameters files.

Every model forbids unknown keys and is strict about types (``"64"`` is not an integer,
``"1.0"`` is not a number, YAML lists become tuples), and ranges are declared on the fields.
:func:`from_mapping` validates a mapping and turns the first problem into one line that names
its key path and what was expected (with a "did you mean" for unknown keys), so a typo fails
before any environment is stepped. Kedro hands nodes the same models for their typed
``params:`` inputs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from hindsight_rl.core.errors import HindsightRLError

PART_NAMES = ("encoder", "trunk", "head")
Part = Literal["encoder", "trunk", "head"]
CollectionPolicy = Literal["uniform", "epsilon_greedy", "boltzmann", "sample"]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
MAX_ROWS = 50_000_000
"""Upper bound of a replay buffer or a collection, in transitions: about 2 GB at the widest
observation we train on; larger is a typo that would otherwise fail after minutes of work."""


def _list(item: Any) -> Any:
    """A tuple field that YAML writes as a list."""
    return Annotated[tuple[item, ...], Field(strict=False)]


class ConfigError(HindsightRLError, ValueError):
    """A parameter has the wrong name, type or value; the message names its key path."""


def invalid(key: str, value: Any, expected: str) -> ConfigError:
    """The error for ``key`` (relative to the section being checked)."""
    return ConfigError(f"{key}: got {value!r}, expected {expected}")


class Section(BaseModel):
    """Base of every config section: frozen, strict, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True,
                              use_attribute_docstrings=True)


class GoalConfig(Section):
    """A goal-reaching task: which observation entries are the achieved goal, the goal the
    task asks for, and the reward as a function of the two (what relabelling recomputes).

    MountainCar-v0: achieved = position (``[0]``), desired ``[0.5]``, reached when the
    position is at least the goal, -1 every step: exactly the environment's own reward.
    """

    achieved: Annotated[_list(NonNegativeInt), Field(min_length=1)]
    """Indices of the observation entries that make up the achieved goal."""
    desired: _list(float)
    """The goal the task asks for; the network sees it beside the observation."""
    reached: Literal["at_least", "within"] = "at_least"
    """``at_least``: every achieved entry ≥ the goal's; ``within``: Euclidean distance to the
    goal ≤ ``tolerance``."""
    tolerance: float = Field(0.0, ge=0)
    """Distance that counts as reaching the goal with ``reached: within``."""
    step_reward: float = -1.0
    """Reward of a step that does not reach the goal."""
    reached_reward: float = -1.0
    """Reward of the step that reaches it (MountainCar pays -1 on that step too)."""

    @model_validator(mode="after")
    def _one_desired_entry_per_achieved_index(self) -> GoalConfig:
        if len(self.desired) != len(self.achieved):
            raise invalid("desired", list(self.desired),
                          f"{len(self.achieved)} numbers, one per achieved index")
        return self


class HERConfig(Section):
    """Hindsight experience replay (Andrychowicz et al. 2017) for goal-reaching targets."""

    k: int = Field(0, ge=0, le=64)
    """Relabelled copies of each transition, with goals achieved later in its episode
    ("future" strategy); 0 turns relabelling off."""
    strategy: Literal["future"] = "future"
    """Where relabelled goals come from: a uniformly drawn later step of the same episode."""


class ObservationConfig(Section):
    """What the network sees of an environment's observation, when not the whole of it.

    ``keep: [0, 2]`` keeps CartPole's positions and hides its velocities: the classic
    partial-observability benchmark. MiniGrid's observation is a dict;
    ``key: image`` takes its 7×7×3 view, and ``high: 10`` declares the view's real range
    (its space says 0..255; object indices stop at 10) so it is normalised to about [-1, 1].
    """

    key: str | None = None
    """The entry of a ``Dict`` observation to keep."""
    keep: _list(NonNegativeInt) | None = None
    """Indices of a flat observation's entries to keep; the others are hidden."""
    low: float | None = None
    """The lowest value any entry takes, where the space's own bound is wrong or infinite."""
    high: float | None = None
    """The highest value any entry takes, likewise."""
    channels: Literal["first", "last"] | None = None
    """Where an image's channels are: ``last`` (height × width × channels: MiniGrid,
    MinAtar) or ``first`` (channels × height × width: Atari frame stacks, torchvision).
    Unset: the smallest axis, as SB3 infers it; an image whose smallest axis is neither or
    not unique must say. The network always sees channels last (rows of pixels in
    height, width, channels order)."""
    position: bool = False
    """Append the agent's cell (``unwrapped.agent_pos``: column, row), where the env keeps
    one (MiniGrid): what an egocentric view cannot tell, and a goal HER can relabel. It
    comes after the view's pixels, with the grid's own bounds (``low``/``high`` are the
    view's)."""

    @model_validator(mode="after")
    def _low_below_high(self) -> ObservationConfig:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise invalid("high", self.high, f"a number above low ({self.low})")
        if self.keep is not None and (not self.keep or len(set(self.keep)) != len(self.keep)):
            raise invalid("keep", list(self.keep), "one or more distinct indices")
        return self


class EnvConfig(Section):
    """Which Gymnasium environment to build and how to alter it."""

    id: str = Field(pattern=r"^[^:]+$")
    """Registered Gymnasium id, e.g. ``CartPole-v1`` (never ``module:id``: configuration
    names code only through ``entry_point``)."""
    make_kwargs: dict[str, Any] = Field(default_factory=dict, strict=False)
    """Keyword arguments for ``gymnasium.make`` (checked by building the environment)."""
    overrides: dict[str, float] = Field(default_factory=dict)
    """Attributes set on ``env.unwrapped`` after ``make`` (e.g. CartPole ``length``)."""
    success: Literal["terminated", "truncated", "none"] = "none"
    """Which episode end counts as a success: reaching a goal (``terminated``),
    surviving to the time limit (``truncated``), or undefined (``none``)."""
    entry_point: str | None = None
    """``module:Class`` of an environment Gymnasium does not know yet; it is registered under
    ``id`` on first use, with the two settings below."""
    max_episode_steps: PositiveInt | None = None
    """Time limit of an ``entry_point`` environment."""
    reward_threshold: float | None = None
    """Return that counts as solved for an ``entry_point`` environment."""
    goal: GoalConfig | None = None
    """Declares a goal-reaching task: the desired goal is appended to every observation
    (the network is goal-conditioned) and ``her`` can relabel transitions."""
    observation: ObservationConfig | None = None
    """What the network sees of the observation (a dict entry, some entries, its range)."""

    @property
    def goal_width(self) -> int:
        """Entries the desired goal adds at the end of every observation (0 without one)."""
        return 0 if self.goal is None else len(self.goal.desired)


class ConvConfig(Section):
    """The convolutions of a ``cnn`` encoder, one entry per layer (each followed by a ReLU),
    then a linear layer to the features' width. The default is rl-starter-files' MiniGrid
    encoder without its max-pool: 2×2 kernels, stride 1, 16-32-64 channels."""

    channels: Annotated[_list(Annotated[int, Field(ge=1, le=1024)]),
                        Field(min_length=1)] = (16, 32, 64)
    """Output channels of each convolution."""
    kernels: Annotated[_list(Annotated[int, Field(ge=1, le=64)]),
                       Field(min_length=1)] = (2, 2, 2)
    """Square kernel size of each convolution."""
    strides: Annotated[_list(Annotated[int, Field(ge=1, le=64)]),
                       Field(min_length=1)] = (1, 1, 1)
    """Stride of each convolution."""

    @model_validator(mode="after")
    def _one_entry_per_layer(self) -> ConvConfig:
        for name in ("kernels", "strides"):
            if len(getattr(self, name)) != len(self.channels):
                raise invalid(name, list(getattr(self, name)),
                              f"{len(self.channels)} entries, one per entry of channels")
        return self


Encoder = Literal["mlp", "cnn", "gru"]


class NetworkConfig(Section):
    """Shape of the network: an encoder to features, then trunk layers, then a linear head.

    The features' width (``hidden_sizes[0]``) is the contract between encoder and trunk: a
    trunk carries over between encoders of different types."""

    hidden_sizes: Annotated[_list(Annotated[int, Field(ge=1, le=4096)]),
                            Field(min_length=2)] = (128, 128)
    """Width of the encoder output followed by each trunk layer's output."""
    encoder: Encoder = "mlp"
    """``mlp``: one linear layer over the flat observation; ``cnn``: convolutions over an
    image observation (height × width × channels), then one linear layer; ``gru``: a
    recurrent layer over the episode's observations so far (partly observed tasks), whose
    hidden state is the features."""
    conv: ConvConfig = ConvConfig()
    """The convolutions of a ``cnn`` encoder (unused by ``mlp``)."""


class CollectConfig(Section):
    """How a rollout dataset is collected."""

    steps: int = Field(1000, ge=1, le=MAX_ROWS)
    """Environment steps to collect (whole episodes are not required)."""
    policy: CollectionPolicy = "uniform"
    """Behaviour policy: uniform random, ε-greedy or Boltzmann softmax(Q/τ) over a
    Q-network's values, or ``sample``: draws of an actor's squashed Gaussian (continuous
    targets)."""
    epsilon: float = Field(0.1, ge=0, le=1)
    """ε for the ε-greedy behaviour policy."""
    temperature: float = Field(1.0, ge=1e-3, le=1e6)
    """τ for the Boltzmann behaviour policy (below 1e-3 it is greedy, and softmax(Q/τ)
    underflows)."""
    seed: Seed = 0
    """Seed of the environment and of the behaviour policy's randomness."""


class TrainingConfig(Section):
    """What both algorithms share: the budget, replay, the learning curve and the hindsight
    return-to-go loss."""

    total_steps: int = Field(50_000, ge=1, le=MAX_ROWS)
    """Environment steps of training, including any warm-start transitions."""
    learning_rate: float = Field(2.3e-3, gt=0, le=1)
    """Adam learning rate."""
    batch_size: int = Field(64, ge=1, le=65_536)
    """Transitions per gradient step."""
    buffer_size: int = Field(100_000, ge=1, le=MAX_ROWS)
    """Replay capacity in env steps' transitions (with HER, room for their relabelled
    copies is added)."""
    learning_starts: int = Field(1000, ge=1)
    """Transitions in the buffer before the first gradient step."""
    gamma: float = Field(0.99, gt=0, le=1)
    """Discount factor."""
    train_freq: PositiveInt = 256
    """Environment steps between training bursts."""
    gradient_steps: int = Field(128, ge=1, le=100_000)
    """Gradient steps per training burst."""
    n_step: int = Field(1, ge=1, le=1000)
    """Steps of real reward before the TD target bootstraps (multi-step returns); the rows of
    an episode still running use one step until it ends."""
    rtg_coef: float = Field(0.0, ge=0)
    """β of the hindsight loss β·(G_t − Q(s_t,a_t))² on labelled transitions; 0 turns it off."""
    rtg_loss: Literal["squared", "lower_bound"] = "squared"
    """``squared``: (G_t − Q)² as in the seed text; ``lower_bound``: max(0, G_t − Q)², which
    only lifts Q up to a return that was actually achieved (self-imitation)."""
    eval_interval: PositiveInt = 5000
    """Environment steps between greedy evaluations for the learning curve."""
    eval_episodes: int = Field(10, ge=1, le=10_000)
    """Greedy episodes per learning-curve point."""
    keep: Literal["best", "last"] = "best"
    """Return the weights of the best learning-curve point or the last ones."""
    stop_on_threshold: bool = False
    """End training at the first learning-curve point at or above the env's reward threshold
    (SB3's ``StopTrainingOnRewardThreshold``): the source task only has to be solved. Arms
    that are compared keep it off, so their curves span the same budget."""

    @model_validator(mode="after")
    def _budgets_fit_together(self) -> TrainingConfig:
        if self.buffer_size < self.batch_size:
            raise invalid("buffer_size", self.buffer_size,
                          f"an integer >= batch_size ({self.batch_size})")
        if self.learning_starts < self.batch_size:
            raise invalid("learning_starts", self.learning_starts,
                          f"an integer >= batch_size ({self.batch_size})")
        if self.total_steps < self.learning_starts:
            raise invalid("total_steps", self.total_steps,
                          f"an integer >= learning_starts ({self.learning_starts}), or nothing "
                          "is learned")
        return self


class SequenceConfig(Section):
    """R2D2's sequence replay (Kapturowski et al. 2019) for a recurrent network: each sample
    is a window of ``burn_in + length`` steps of one episode; the hidden state starts at
    zero at its first step and the first ``burn_in`` steps only warm it (no loss of their
    own; the later steps' gradients still run back through them). A window starting at its
    episode's first step needs no warming: the actor's state was zero there too, so it
    learns from that step."""

    burn_in: int = Field(8, ge=0, le=1000)
    """Steps that rebuild the hidden state before the loss starts."""
    length: int = Field(16, ge=1, le=1000)
    """Steps of each window that carry the loss."""


class DQNConfig(TrainingConfig):
    """Double DQN with a replay buffer and a hard-updated target network."""

    target_update_interval: PositiveInt = 10
    """Environment steps between hard copies of the online network into the target."""
    exploration_fraction: float = Field(0.16, gt=0, le=1)
    """Fraction of ``total_steps`` over which ε decays linearly."""
    exploration_initial_eps: float = Field(1.0, ge=0, le=1)
    """ε at the first step."""
    exploration_final_eps: float = Field(0.04, ge=0, le=1)
    """ε after the decay."""
    max_grad_norm: float = Field(10.0, gt=0)
    """Gradient-norm clip, per member."""
    double_dqn: bool = True
    """Select the next action with the online network, value it with the target."""
    sequence: SequenceConfig = SequenceConfig()
    """Replay of stretches of episodes for a ``gru`` encoder (unused by the others)."""
    novelty_coef: float = Field(0.0, ge=0, le=1e6)
    """Coefficient of the count-based novelty bonus ``coef / sqrt(visits)`` added to each
    env step's reward in the replay (:mod:`hindsight_rl.core.novelty`), for sparse-reward
    tasks; 0 turns it off. Judged returns are the env's own."""
    novelty_bits: int = Field(32, ge=1, le=62)
    """Bits of the observation's SimHash that visits are counted by: fewer bits, coarser
    cells."""
    acting_temperatures: _list(Annotated[float, Field(gt=0, le=10)]) = (0.01, 0.03, 0.1)
    """Boltzmann temperatures that each learning-curve point plays besides the argmax, as
    fractions of the network's value scale (the mean ``|max_a Q|`` over its argmax
    episodes); the point is the best of them (the argmax on a tie; an argmax at the env's
    reward threshold is kept without trying them), and a kept network's policy file plays at
    its point's temperature. Each costs one more set of curve episodes. Where the
    observation hides part of the state (MiniGrid's view), an argmax whose actions tie
    within the fit's error turns on one spot, and a small temperature breaks the tie
    (:func:`hindsight_rl.core.evaluation.boltzmann_choice`). ``[]``: the argmax only."""


class SACConfig(TrainingConfig):
    """Soft actor-critic (Haarnoja et al. 2018): twin critics with Polyak-averaged targets,
    a squashed Gaussian actor and, by default, an automatically tuned entropy temperature.
    Defaults are RL Zoo's tuned settings for Pendulum-v1."""

    total_steps: int = Field(20_000, ge=1, le=MAX_ROWS)
    """Environment steps of training, including any warm-start transitions."""
    learning_rate: float = Field(1e-3, gt=0, le=1)
    """Adam learning rate of the actor, the critics and the temperature."""
    batch_size: int = Field(256, ge=1, le=65_536)
    """Transitions per gradient step."""
    buffer_size: int = Field(1_000_000, ge=1, le=MAX_ROWS)
    """Replay capacity in env steps' transitions."""
    learning_starts: int = Field(256, ge=1)
    """Transitions in the buffer before the first gradient step."""
    train_freq: PositiveInt = 1
    """Environment steps between training bursts."""
    gradient_steps: int = Field(1, ge=1, le=100_000)
    """Gradient steps per training burst."""
    tau: float = Field(0.005, gt=0, le=1)
    """Polyak coefficient: each update moves the target critics this far toward the critics."""
    ent_coef: float | Literal["auto"] = "auto"
    """Entropy temperature α: a fixed number, or ``auto`` to tune it toward
    ``target_entropy``."""
    ent_coef_init: float = Field(1.0, gt=0)
    """α at the start when it is tuned."""
    target_entropy: float | None = None
    """Entropy the tuned α aims for; None: −(action entries), SAC's heuristic."""
    log_std_init: float = Field(0.0, ge=-20, le=2)
    """Initial log-standard-deviation of the actor's fresh head: small (−3.67 in RL Zoo's
    MountainCarContinuous settings) keeps early actions near the mean."""
    max_grad_norm: float | None = Field(None, gt=0)
    """Gradient-norm clip per member; None: no clip (SAC's own setting)."""
    action_noise: Literal["white", "pink"] = "white"
    """The acting noise of the squashed Gaussian: ``white`` (independent each step, SAC's
    own) or ``pink`` (1/f-correlated over each episode, Eberhard et al. 2023): exploration
    that carries far, the equivalent of RL Zoo's gSDE on MountainCarContinuous-v0."""

    @model_validator(mode="after")
    def _entropy_coefficient(self) -> SACConfig:
        if isinstance(self.ent_coef, float) and self.ent_coef < 0:
            raise invalid("ent_coef", self.ent_coef, "a number >= 0 or 'auto'")
        return self


Algorithm = Literal["dqn", "sac"]
"""How a stage learns: DQN for Discrete action spaces, SAC for continuous (Box) ones."""


class FinetuneConfig(Section):
    """What carries over from the pretrained network and what stays fixed."""

    frozen: _list(Part) = ("trunk",)
    """Parts excluded from the optimiser (any of ``encoder``, ``trunk``, ``head``) when the
    transferred network does not teach (the transfer plan: :mod:`hindsight_rl.core.plan`)."""
    unfreeze_after_steps: NonNegativeInt | None = None
    """Environment step at which frozen parts join the optimiser; ``None``: only
    ``unfreeze_patience`` unfreezes them."""
    unfreeze_patience: PositiveInt | None = 4
    """A member's frozen parts join the optimiser once this many learning-curve points in a
    row bring no new best while its best is short of the env's reward threshold: frozen
    transferred features that help are kept, ones that hold the member back are not
    (``None``: never)."""
    teacher_coef: float = Field(1.0, ge=0)
    """λ of the teacher's large-margin loss (DQfD) while the teacher is solved (its score at
    or above the env's reward threshold): when every part was transferred and the
    transferred network beats chance, its greedy action stays the fine-tuned one's, the
    teacher becoming the fine-tuned network whenever that scores higher on the learning
    curve (:mod:`hindsight_rl.core.guidance`); 0 with ``unsolved_teacher_coef`` 0 turns
    the teacher off."""
    unsolved_teacher_coef: float = Field(0.3, ge=0)
    """λ while the teacher is short of the threshold (or the env has none): light enough
    for the TD loss to overrule it where the student has found better, so the student can
    pass a teacher that has not solved the task."""
    teacher_margin: float = Field(0.8, gt=0)
    """Margin (in Q units) by which the teacher's action should lead the others."""
    teacher_loss: Literal["margin", "softmax"] = "margin"
    """How a Q-network's teacher teaches. ``margin``: DQfD's large-margin loss toward its
    greedy action. ``softmax``: kickstarting's distillation (Schmitt et al. 2018), the
    cross-entropy from ``softmax(Q_T / t)`` to ``softmax(Q / t)``; it keeps the teacher's
    ranking and gaps but not its level, so the TD loss may move the values while the
    policy stays, and it keeps near-ties near-tied (what a Boltzmann player draws among)
    where the margin turns them into wide-margin choices."""
    teacher_temperature: float = Field(0.03, gt=0, le=10)
    """``softmax``'s t, as a fraction of the teacher's mean ``|max_a Q_T|`` on the batch
    (the scale of ``dqn.acting_temperatures``)."""
    teacher_fades_from: float | None = Field(0.0, ge=0, lt=1)
    """Fraction of the budget after which the teacher's weight falls linearly to 0 at its
    end, so a solved teacher that is not optimal does not cap the final policy (a member
    below its transferred score gets the full weight back); ``None``: it never fades."""
    anchor_coef: float = Field(0.0, ge=0)
    """α of L2-SP: α·Σ(θ − θ₀)² over the transferred parameters that train; 0 turns it off."""
    learning_rate: float | None = Field(None, gt=0, le=1)
    """The fine-tuned arm's learning rate where not the algorithm's (``dqn`` or ``sac``
    ``learning_rate``, which the scratch arm keeps): steps small enough that the first
    updates on the target do not overwrite what transfer gave. None: the algorithm's."""
    exploration_initial_eps: float | None = Field(None, ge=0, le=1)
    """DQN: the fine-tuned arm's ε at its first step where not
    ``dqn.exploration_initial_eps``: a transferred network that plays the target well with
    a little randomness then collects its own successes from the start, where ε 1 would
    fill the replay with uniform play. None: the algorithm's."""
    critic_warmup_steps: NonNegativeInt = 2000
    """SAC, when the whole actor carries over: env steps at the start of fine-tuning in which
    only the critics learn (the transferred actor acts unchanged), so that the actor's first
    gradients come from critics that know its value, not from fresh ones that would undo
    what transfer gave."""

    @property
    def teaches(self) -> bool:
        """Whether a teacher's loss has any weight."""
        return self.teacher_coef > 0 or self.unsolved_teacher_coef > 0


class EvalConfig(Section):
    """How final policies are judged."""

    episodes: int = Field(100, ge=1, le=100_000)
    """Greedy episodes per final policy."""
    seed: Seed = 1_000_000
    """First evaluation seed; episode i uses ``seed + i``. Keep it far from training seeds:
    the probe's episodes take the block just below it, the learning curves' the block
    after the final evaluation's."""
    probe_episodes: int = Field(20, ge=1, le=10_000)
    """Episodes per candidate source in the transfer probe (and of chance); a candidate
    plays them once more per ``dqn.acting_temperatures`` entry unless its argmax solves
    them."""
    bootstrap_samples: int = Field(2000, ge=1, le=1_000_000)
    """Bootstrap resamples for the confidence intervals."""
    confidence: float = Field(0.95, gt=0, lt=1)
    """Confidence level of the intervals."""
    promotion_margin: float = Field(0.0, ge=0)
    """``retrain``: a challenger replaces the champion only if its mean return is higher by
    more than this."""
    longest_cycle: int = Field(8, ge=0, le=64)
    """Longest cycle (steps) a failed judged episode is checked for ending in: the report
    counts the episodes stuck repeating one spot's observations and actions
    (:func:`hindsight_rl.core.evaluation.trailing_cycle`); 0 turns the check off."""
    gif_frames: int = Field(200, ge=2, le=10_000)
    """Frames of the GIF recorded of each final policy (its first evaluation episode)."""
    gif_fps: int = Field(30, ge=1, le=100)
    """Frames per second of those GIFs."""

    @model_validator(mode="after")
    def _room_for_the_probe(self) -> EvalConfig:
        if self.seed < self.probe_episodes:
            raise invalid("seed", self.seed, f"an integer >= probe_episodes "
                                             f"({self.probe_episodes}): the probe's seeds "
                                             "come just below it")
        return self


def _includes_collection(training: TrainingConfig, collect: CollectConfig,
                         algorithm: str) -> None:
    if training.total_steps <= collect.steps:
        raise invalid(f"{algorithm}.total_steps", training.total_steps,
                      f"more than collect.steps ({collect.steps}), which it includes")


class SourceConfig(Section):
    """The source task: where the transferable trunk is learned."""

    env: EnvConfig
    """Source environment (default CartPole-v1)."""
    network: NetworkConfig = NetworkConfig()
    """Q-network shape; targets reuse it so the trunk fits."""
    collect: CollectConfig = CollectConfig()
    """Rollouts that warm-start the pretraining replay buffer."""
    algorithm: Algorithm = "dqn"
    """``dqn`` (Discrete actions) or ``sac`` (continuous actions)."""
    dqn: DQNConfig = DQNConfig()
    """Pretraining hyperparameters with ``algorithm: dqn``."""
    sac: SACConfig = SACConfig()
    """Pretraining hyperparameters with ``algorithm: sac``."""
    seed: Seed = 0
    """Seed of pretraining (weights, exploration, replay sampling)."""

    @model_validator(mode="after")
    def _budget_includes_collection(self) -> SourceConfig:
        _includes_collection(self.training, self.collect, self.algorithm)
        if self.network.encoder == "gru":
            _check_recurrent(self.training, self.algorithm, 0, self.collect)
        if self.collect.policy != "uniform":
            raise invalid("collect.policy", self.collect.policy,
                          "'uniform' (before pretraining there is no network to act with)")
        return self

    @property
    def training(self) -> TrainingConfig:
        """The settings of the configured algorithm."""
        return self.sac if self.algorithm == "sac" else self.dqn


def with_encoder(network: NetworkConfig, encoder: Encoder | None) -> NetworkConfig:
    """``network`` with another encoder type (None: as it is)."""
    return network if encoder is None else network.model_copy(update={"encoder": encoder})


def _check_recurrent(training: TrainingConfig, algorithm: str, her_k: int,
                     collect: CollectConfig) -> None:
    """What a ``gru`` network trains with: DQN over sequence replay, whose windows carry no
    return-to-go labels or relabelled copies, from a dataset collected without a network
    (acting through one step by step would drop its memory)."""
    if algorithm != "dqn":
        raise invalid("algorithm", algorithm, "'dqn' with a gru encoder (SAC's actor and "
                      "critic take 'mlp' encoders)")
    if training.rtg_coef:
        raise invalid("dqn.rtg_coef", training.rtg_coef, "0 with a gru encoder (sequence "
                      "replay has no return-to-go labels)")
    if her_k:
        raise invalid("her.k", her_k, "0 with a gru encoder (sequence replay keeps "
                      "episodes as they were played)")
    if collect.policy != "uniform":
        raise invalid("collect.policy", collect.policy, "'uniform' with a gru encoder")


class TargetConfig(Section):
    """One target task: transfer, fine-tune, and the from-scratch control."""

    env: EnvConfig
    """Target environment."""
    collect: CollectConfig = CollectConfig(policy="boltzmann")
    """Hindsight-dataset collection with the transferred network."""
    algorithm: Algorithm = "dqn"
    """``dqn`` (Discrete actions) or ``sac`` (continuous actions); a SAC target may transfer
    from a DQN source: the encoder and trunk carry over, the heads start fresh."""
    dqn: DQNConfig = DQNConfig()
    """Fine-tuning (and scratch) hyperparameters with ``algorithm: dqn``; both arms get the
    same budget."""
    sac: SACConfig = SACConfig()
    """Fine-tuning (and scratch) hyperparameters with ``algorithm: sac``."""
    source_actions: _list(_list(float)) | None = None
    """On a continuous target with a Discrete source: the target action each source action
    stands for (MountainCar's push left, none, right: ``[[-1], [0], [1]]``), so that the
    source's own policy collects the hindsight dataset (``collect.policy`` over its
    Q-values); None: the transferred actor collects it."""
    finetune: FinetuneConfig = FinetuneConfig()
    """What stays frozen."""
    her: HERConfig = HERConfig()
    """Goal relabelling of the hindsight dataset and of fine-tuning episodes."""
    encoder: Encoder | None = None
    """The target network's encoder type (``gru`` where the target hides part of the
    state); None: the source's. The trunk and head keep the source's widths, so the trunk
    carries over whatever the encoder; an encoder carries over only to one of its type."""

    @model_validator(mode="after")
    def _consistent(self) -> TargetConfig:
        if self.her.k and self.env.goal is None:
            raise invalid("her.k", self.her.k,
                          "0 for a task without env.goal (nothing to relabel)")
        _includes_collection(self.training, self.collect, self.algorithm)
        self._collection_fits_algorithm()
        if self.encoder == "gru":
            _check_recurrent(self.training, self.algorithm, self.her.k, self.collect)
        if self.algorithm == "sac" and self.finetune.exploration_initial_eps is not None:
            raise invalid("finetune.exploration_initial_eps",
                          self.finetune.exploration_initial_eps,
                          "null with algorithm sac (SAC explores by its entropy, not by ε)")
        return self

    def network(self, source: NetworkConfig) -> NetworkConfig:
        """The target network's shape: the source network's, with this target's encoder."""
        return with_encoder(source, self.encoder)


    def _collection_fits_algorithm(self) -> None:
        """Which policy collects the hindsight dataset must exist: a Q-network's (DQN, or a
        Discrete source acting through ``source_actions``) or an actor's."""
        policy = self.collect.policy
        if self.algorithm == "dqn":
            if policy == "sample":
                raise invalid("collect.policy", policy, "uniform, epsilon_greedy or boltzmann "
                              "(sample draws from an actor: algorithm sac)")
            if self.source_actions is not None:
                raise invalid("source_actions", [list(a) for a in self.source_actions],
                              "null with algorithm dqn (it maps a Discrete source's actions "
                              "to a continuous target's)")
        elif self.source_actions is None and policy not in ("uniform", "sample"):
            raise invalid("collect.policy", policy, "uniform or sample (the transferred "
                          "actor's draws); epsilon_greedy and boltzmann act on a Discrete "
                          "source's Q-values, which needs source_actions")
        elif self.source_actions is not None and policy == "sample":
            raise invalid("collect.policy", policy, "uniform, epsilon_greedy or boltzmann "
                          "over the Discrete source's Q-values (source_actions is set)")

    @property
    def training(self) -> TrainingConfig:
        """The settings of the configured algorithm."""
        return self.sac if self.algorithm == "sac" else self.dqn


def fine_tuning(training: TrainingConfig, finetune: FinetuneConfig) -> TrainingConfig:
    """``training`` as the fine-tuned arm uses it: ``finetune``'s learning rate and first ε
    where set (the scratch arm keeps ``training`` as it is)."""
    update = {key: value for key in ("learning_rate", "exploration_initial_eps")
              if (value := getattr(finetune, key)) is not None
              and key in type(training).model_fields}
    return training.model_copy(update=update)


class ArmConfig(Section):
    """One arm of the ablation: which parts of hindsight fine-tuning it uses."""

    transfer: bool = True
    """Start from the pretrained network (false: fresh weights, the scratch control)."""
    frozen: _list(Part) = ("trunk",)
    """Parts kept out of the optimiser (only with ``transfer``)."""
    unfreeze_patience: PositiveInt | None = None
    """Learning-curve points without a new best after which a member's frozen parts train
    (``finetune.unfreeze_patience``); ``None``: frozen throughout, the plain method."""
    rtg_coef: float = Field(0.0, ge=0)
    """β of the return-to-go loss."""
    teacher_coef: float = Field(0.0, ge=0)
    """λ of the teacher's large-margin loss while the teacher is solved (same spaces only:
    every part transferred); an unsolved one weighs the target's
    ``finetune.unsolved_teacher_coef``; 0: no teacher."""
    her_k: int = Field(0, ge=0, le=64)
    """Relabelled copies per transition (targets that declare a goal only)."""
    compare_to: str | None = None
    """The arm this one adds a part to: the report's verdict compares the two."""

    @model_validator(mode="after")
    def _nothing_frozen_without_transfer(self) -> ArmConfig:
        if not self.transfer and self.frozen:
            raise invalid("frozen", list(self.frozen),
                          "[] for an arm without transfer (nothing pretrained to freeze)")
        return self


class AblationConfig(Section):
    """What each part buys: the values of the ablation's arms and budgets (which targets,
    arms and seeds run is the DAG's shape, in settings)."""

    budgets: dict[str, PositiveInt] = Field(default_factory=dict)
    """Env-step budget per run on each ablated target."""
    arms: dict[str, ArmConfig] = Field(default_factory=dict)
    """Arms by name."""

    @model_validator(mode="after")
    def _comparisons_name_arms(self) -> AblationConfig:
        for name, arm in self.arms.items():
            if arm.compare_to is not None and arm.compare_to not in self.arms:
                raise invalid(f"arms.{name}.compare_to", arm.compare_to,
                              f"null or one of the arms {list(self.arms)}")
        return self


class RuntimeConfig(Section):
    """How a run uses the machine; nothing here changes a result."""

    torch_threads: int | None = Field(None, ge=1, le=1024)
    """Torch intra-op threads; ``None`` keeps torch's default."""
    checkpoint_dir: str | None = None
    """Folder of training checkpoints; ``None`` turns them off."""
    checkpoint_interval: PositiveInt = 10_000
    """Environment steps between training checkpoints."""


class Distribution(Section):
    """Where a tuning trial draws one setting from (Optuna's ``suggest_*``)."""

    type: Literal["float", "log_float", "int", "categorical"]
    """``float``/``int``: uniform in [low, high]; ``log_float``: log-uniform (learning
    rates); ``categorical``: one of ``choices``."""
    low: float | None = None
    """Lower bound (float, log_float, int)."""
    high: float | None = None
    """Upper bound, included (float, log_float, int)."""
    choices: _list(bool | int | float | str) | None = None
    """The values a categorical setting takes."""

    @model_validator(mode="after")
    def _bounds_or_choices(self) -> Distribution:
        if self.type == "categorical":
            if not self.choices:
                raise invalid("choices", self.choices, "a list of at least 1 value for type "
                                                       "categorical")
            if self.low is not None or self.high is not None:
                raise invalid("low", self.low, "no low/high for type categorical")
            return self
        if self.choices is not None:
            raise invalid("choices", list(self.choices), f"no choices for type {self.type} "
                                                         "(low and high instead)")
        for key in ("low", "high"):
            value = getattr(self, key)
            if value is None or (self.type == "int" and value != int(value)):
                raise invalid(key, value, f"{'an integer' if self.type == 'int' else 'a number'}"
                                          f" for type {self.type}")
        if not self.low < self.high:
            raise invalid("high", self.high, f"a number > low ({self.low})")
        if self.type == "log_float" and self.low <= 0:
            raise invalid("low", self.low, "a number > 0 for type log_float")
        return self

    def extremes(self) -> tuple[Any, ...]:
        """The values every draw lies between (or among): what the search space is checked
        with before the first trial."""
        if self.type == "categorical":
            return tuple(self.choices)
        if self.type == "int":
            return int(self.low), int(self.high)
        return self.low, self.high


class SamplerConfig(Section):
    """How trials pick their settings."""

    kind: Literal["tpe", "random"] = "tpe"
    """Optuna's TPE (constant liar when workers run in parallel) or uniform random draws."""
    seed: Seed = 0
    """Seed of the sampler; worker i uses ``seed + i``."""
    n_startup_trials: NonNegativeInt = 10
    """Random trials before TPE models the results."""


class PrunerConfig(Section):
    """When a trial stops early: Optuna's median rule on the learning curve."""

    kind: Literal["median", "none"] = "median"
    """``median``: stop a trial whose score at a learning-curve point is worse than the median
    of earlier trials at that point; ``none``: every trial runs its whole budget."""
    n_startup_trials: NonNegativeInt = 5
    """Trials that finish before any is pruned."""
    n_warmup_steps: NonNegativeInt = 20_000
    """Env steps into a trial before it may be pruned."""


TUNED_YARDSTICK = ("total_steps", "eval_interval", "eval_episodes", "stop_on_threshold")
"""DQN settings of the trials' measuring stick: every trial gets the target's."""


class SearchSpace(Section):
    """Distributions of a target's settings, in the shape of its parameters
    (``dqn: {learning_rate: {type: log_float, ...}}``), so ``--params`` reaches each bound."""

    dqn: Annotated[dict[str, Distribution], Field(min_length=1)]
    """Per DQN setting, where trials draw it from."""

    @model_validator(mode="after")
    def _yardstick_fixed(self) -> SearchSpace:
        for key in self.dqn:
            if key in TUNED_YARDSTICK:
                raise invalid(f"dqn.{key}", key, "a setting other than "
                                                 f"{', '.join(TUNED_YARDSTICK)}, which measure "
                                                 "the trials")
        return self

    def by_key_path(self) -> dict[str, Distribution]:
        """Every distribution by its setting's key path in the target (``dqn.gamma``)."""
        return {f"dqn.{key}": distribution for key, distribution in self.dqn.items()}


class TuneConfig(Section):
    """Hyperparameter search (``kedro run --pipeline tune``): trials train the target from
    scratch, each scored by the env steps its learning curves take to reach the threshold."""

    target: str
    """The target (a key of ``targets``) whose ``dqn`` settings are searched and whose env
    and budget every trial uses."""
    n_trials: PositiveInt = 40
    """Trials of one run, shared among the workers (``DAG_SHAPE["tune"]``)."""
    seeds: Annotated[_list(Seed), Field(min_length=1)] = (0, 1, 2)
    """Training seeds of every trial (stacked in one network); the score is their mean."""
    check_seeds: Annotated[_list(Seed), Field(min_length=1)] = (3, 4, 5)
    """Seeds the search never sees: the best settings and the target's current ones are
    trained on them once more, and compared."""
    threshold: float | None = None
    """Return the learning curve must reach; None: the env's reward threshold."""
    miss_penalty: float = Field(1000.0, ge=0)
    """A seed that never reaches the threshold scores the budget plus this many env steps
    per unit of return its best learning-curve point fell short."""
    enqueue_defaults: bool = True
    """The first trial tries the target's current settings (when inside the space)."""
    resume: bool = False
    """Add this run's trials to the stored study; false: a fresh study."""
    study_name: str = Field("tune", min_length=1)
    """Name of the Optuna study in the storage."""
    storage: str = Field("data/07_model_output/tune/study.journal", min_length=1)
    """Optuna journal file all workers share (a shared file system for Dask workers)."""
    network: NetworkConfig = NetworkConfig()
    """Q-network of every trial (the scratch arm's, the source's shape)."""
    sampler: SamplerConfig = SamplerConfig()
    """Sampler settings."""
    pruner: PrunerConfig = PrunerConfig()
    """Pruner settings."""
    search_space: SearchSpace
    """Where trials draw the target's settings from."""


def with_settings(target: TargetConfig, settings: Mapping[str, Any], path: str
                  ) -> TargetConfig:
    """``target`` with settings by key path (``dqn.learning_rate``) replaced, validated as
    a whole (so a batch size above the buffer fails, naming ``path.key``)."""
    document = target.model_dump()
    for key, value in settings.items():
        *parents, last = key.split(".")
        section = document
        for part in parents:
            section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict) or last not in section:
            raise invalid(_join(path, key), value, "a key path of a target's setting "
                                                   "(e.g. dqn.learning_rate)")
        section[last] = value
    return from_mapping(TargetConfig, document, path)


class ProjectConfig(Section):
    """All parameters of a run, checked together before the first node starts."""

    sources: dict[str, SourceConfig]
    """Source tasks by name (``parameters_source.yml``)."""
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    """Target tasks by namespace (``parameters_target.yml``)."""
    evaluation: EvalConfig = EvalConfig()
    """Final-policy evaluation (``parameters_evaluate.yml``)."""
    runtime: RuntimeConfig = RuntimeConfig()
    """Threads and checkpoints (``parameters.yml``)."""
    ablation: AblationConfig = AblationConfig()
    """The ablation pipeline's values (``parameters_ablation.yml``)."""
    tune: TuneConfig | None = None
    """The hyperparameter search's values (``parameters_tune.yml``)."""

    @model_validator(mode="after")
    def _ablation_budgets_fit_their_targets(self) -> ProjectConfig:
        for name, budget in self.ablation.budgets.items():
            if name not in self.dqn_targets():
                raise invalid(f"ablation.budgets.{name}", name,
                              f"one of the DQN targets {self.dqn_targets()}")
            target = self.targets[name]
            if budget <= target.collect.steps or budget < target.dqn.learning_starts:
                raise invalid(f"ablation.budgets.{name}", budget,
                              f"more than targets.{name}.collect.steps "
                              f"({target.collect.steps}) and at least its dqn.learning_starts "
                              f"({target.dqn.learning_starts})")
        if self.tune is not None:
            self._check_search_space(self.tune)
        return self

    def _check_search_space(self, tune: TuneConfig) -> None:
        """Every extreme of every distribution is a valid value of the tuned target's setting
        (a whole space of bad values fails here, not as 40 failed trials)."""
        if tune.target not in self.dqn_targets():
            raise invalid("tune.target", tune.target,
                          f"one of the DQN targets {self.dqn_targets()} (the search tunes dqn "
                          "settings)")
        target = self.targets[tune.target]
        for key, distribution in tune.search_space.by_key_path().items():
            for value in distribution.extremes():
                try:
                    with_settings(target, {key: value}, f"targets.{tune.target}")
                except ConfigError as error:
                    raise ConfigError(f"tune.search_space.{key}: {value!r} is not a valid "
                                      f"value here ({error})") from None

    def dqn_targets(self) -> list[str]:
        """The targets DQN trains: the ones the ablation's arms and the search apply to."""
        return [name for name, target in self.targets.items() if target.algorithm == "dqn"]

    def all_runs(self) -> dict[str, SourceConfig | TargetConfig]:
        """Every source and target, by key path."""
        return {**{f"sources.{n}": s for n, s in self.sources.items()},
                **{f"targets.{n}": t for n, t in self.targets.items()}}

    def held_out_seeds(self) -> range:
        """Seeds of the probe, the final judging episodes and the learning curves after
        them: no training or collection may use one."""
        curve = max(run.training.eval_episodes for run in self.all_runs().values())
        start = self.evaluation.seed
        return range(start - self.evaluation.probe_episodes,
                     start + self.evaluation.episodes + curve)


def group_seeds(seeds: tuple[int, ...], size: int | None) -> list[tuple[int, ...]]:
    """``seeds`` in groups of ``size`` in order, the last one shorter; all in one group for
    None."""
    size = size or len(seeds)
    return [tuple(seeds[i:i + size]) for i in range(0, len(seeds), size)]


T = TypeVar("T", bound=BaseModel)


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, path: str = "") -> T:
    """Validate ``mapping`` as ``cls``; the first problem becomes a :class:`ConfigError`
    naming ``path.key`` and what was expected."""
    try:
        return cls.model_validate(dict(mapping or {}))
    except ValidationError as error:
        raise ConfigError(_explain(cls, error.errors()[0], path)) from None


def _explain(cls: type[BaseModel], error: dict[str, Any], path: str) -> str:
    """One line for one pydantic error, in our words."""
    loc = [part for part in error["loc"] if not _is_tag(part)]
    key = _join(path, _key_path(loc))
    kind, value = error["type"], error.get("input")
    if kind == "value_error" and isinstance(error.get("ctx", {}).get("error"), ConfigError):
        return _join(key, str(error["ctx"]["error"]))
    if kind == "extra_forbidden":
        known = list(_walk(cls, loc[:-1])[0].model_fields)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{key}: unknown key{hint} Known keys: {', '.join(known)}"
    if kind == "missing":
        return f"{key}: required key is missing"
    _, constraints, annotation = _walk(cls, loc)
    return f"{key}: got {value!r}, expected {_expected(kind, error, constraints, annotation)}"


_TYPES = {"int_type": "an integer", "int_from_float": "an integer", "float_type": "a number",
          "bool_type": "true or false", "string_type": "a string", "tuple_type": "a list",
          "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
          "model_attributes_type": "a mapping", "none_required": "null"}


def _expected(kind: str, error: dict[str, Any], constraints: list[Any], annotation: Any) -> str:
    """What a value must be, from the error and the constraints declared on its field."""
    if kind in _TYPES:
        return _TYPES[kind]
    if kind == "literal_error":
        return f"one of {error['ctx']['expected']}"
    if kind == "string_pattern_mismatch":
        return "a registered id (no 'module:' prefix)"
    if kind == "too_short":
        return f"a list of at least {error['ctx']['min_length']}"
    bounds = _bounds(constraints)
    noun = "an integer" if annotation is int else "a number"
    return f"{noun} {bounds}" if bounds else error["msg"].lower()


def _bounds(constraints: list[Any]) -> str:
    """A range as ``in (0, 1]``, ``>= 1`` or ``<= 64``."""
    low = high = None
    for constraint in constraints:
        if isinstance(constraint, annotated_types.Gt):
            low = ("(", constraint.gt)
        elif isinstance(constraint, annotated_types.Ge):
            low = ("[", constraint.ge)
        elif isinstance(constraint, annotated_types.Lt):
            high = (")", constraint.lt)
        elif isinstance(constraint, annotated_types.Le):
            high = ("]", constraint.le)
    if low and high:
        return f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{'>' if low[0] == '(' else '>='} {low[1]}"
    if high:
        return f"{'<' if high[0] == ')' else '<='} {high[1]}"
    return ""


def _walk(cls: type[BaseModel], loc: list[Any]) -> tuple[type[BaseModel], list[Any], Any]:
    """Follow the key path ``loc`` through ``cls``'s annotations: the last model reached
    (whose keys an unknown key is compared with), and the constraints and type of where the
    path ends."""
    model: type[BaseModel] = cls
    constraints: list[Any] = []
    current: Any = cls
    for part in loc:
        current, found = _unwrap(current)
        constraints += found
        if isinstance(current, type) and issubclass(current, BaseModel):
            model = current
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return model, [], None
            current, constraints = field.annotation, list(field.metadata)
        elif get_origin(current) is dict:
            current, constraints = get_args(current)[1], []
        elif get_origin(current) is tuple:
            current, constraints = get_args(current)[0], []
        else:
            return model, constraints, current
    current, found = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        model = current
    return model, constraints + found, current


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[X, ...]`` and ``X | None`` down to ``X``, with the constraints met."""
    constraints: list[Any] = []
    while True:
        if get_origin(annotation) is Annotated:
            annotation, *extras = get_args(annotation)
            for extra in extras:
                constraints += extra.metadata if isinstance(extra, FieldInfo) else [extra]
        elif get_origin(annotation) in (Union, UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            annotation = options[0]
        else:
            return annotation, constraints


def _is_tag(part: Any) -> bool:
    """Pydantic puts the branch of a union (``GoalConfig``, ``none``...) into error paths."""
    return isinstance(part, str) and (part[:1].isupper() or part in ("none", "function-after"))


def _key_path(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join(path: str, key: str) -> str:
    if not key:
        return path
    return f"{path}.{key}" if path else key
