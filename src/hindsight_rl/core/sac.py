"""Soft actor-critic (Haarnoja et al. 2018, with SB3's order of updates) on DQN's foundation:
the seeds of an arm are the members of one stacked actor and one stacked twin critic sharing
every update, with the same replay buffer and hindsight labels, learning curve, frozen parts,
unfreezing, the teacher and anchor (:mod:`hindsight_rl.core.guidance`: a transferred actor
is imitated), stopping at the threshold, NaN guard and checkpoints
(:func:`hindsight_rl.core.dqn.train_stack`).

One update, per member and in this order: the temperature ``α`` steps toward the target
entropy; the critics regress on ``r + γ^m (min Q_target(s', a') − α log π(a'|s'))``, plus
β·(G_t − Q)² on rows with an exact return-to-go; the actor minimises
``α log π(a|s) − min Q(s, a)`` with the reparameterised action; the target critics move
``tau`` of the way toward the critics. Each member draws its noise from a generator of its
own, so what else is stacked with a member changes its numbers by rounding only (tanh, exp
and softplus round by their position in a tensor; DQN's ReLU networks match bit for bit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hindsight_rl.core.actor_critic import GaussianActor, TwinCritic
from hindsight_rl.core.checkpoints import Checkpoint, Checkpoints, prefixed, unprefixed
from hindsight_rl.core.config import EnvConfig, FinetuneConfig, SACConfig
from hindsight_rl.core.dqn import (
    CurveCallback,
    MemberRun,
    RunSpec,
    TrainResult,
    WarmStart,
    check_warm_starts,
    finite_members,
    members_checkpoint,
    record_losses,
    restore_members,
    return_to_go_loss,
    subnormals_flushed,
    train_stack,
    training_run_key,
)
from hindsight_rl.core.envs import env_info
from hindsight_rl.core.evaluation import GreedyEvaluator
from hindsight_rl.core.guidance import Guidance
from hindsight_rl.core.replay import Batch, batch_arrays
from hindsight_rl.core.stacked import AdamGroup, StackedOptimizer


@dataclass(frozen=True)
class SACMember:
    """One seed of a SAC run: its starting actor and twin critic (one member each, fresh or
    transferred), its seed and its replay preload."""

    actor: GaussianActor
    critic: TwinCritic
    seed: int
    warm_start: WarmStart | None = None

    def tensors(self) -> list[torch.Tensor]:
        """The starting weights, as the run's key hashes them."""
        return [*self.actor.state_dict().values(), *self.critic.state_dict().values()]


def stack_critics(critics: Sequence[TwinCritic]) -> TwinCritic:
    """One twin critic for every seed: the first critics of all seeds, then the second ones
    (the member order :class:`TwinCritic` computes in)."""
    first = critics[0]
    stacked = TwinCritic(first.obs_dim, first.action_low, first.action_high, first.config,
                         seeds=len(critics))
    states = [critic.state_dict() for critic in critics]
    shared = ("action_scale", "action_bias")  # one copy for every member
    stacked.load_state_dict({
        key: value if key in shared else torch.cat(
            [state[key][twin:twin + 1] for twin in (0, 1) for state in states])
        for key, value in states[0].items()})
    return stacked


def critic_targets(batch: Batch, actor: GaussianActor, target: TwinCritic,
                   alpha: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``r + discount · (min_i Q_target_i(s', a') − α log π(a'|s'))`` per member and row,
    ``a'`` drawn from the actor with ``noise``; ``discount`` is ``γ^m`` for an m-step
    target and 0 after a termination."""
    with torch.no_grad():
        next_action, next_log_prob = actor.sample(batch.bootstrap_obs, noise)
        next_q = target(batch.bootstrap_obs, next_action).amin(dim=0)
        soft_value = next_q - alpha.view(-1, 1) * next_log_prob
        return batch.bootstrap_reward + batch.discount * soft_value


def critic_loss(batch: Batch, critic: TwinCritic, targets: torch.Tensor,
                config: SACConfig) -> torch.Tensor:
    """Each member's ``½ Σ_i mean (Q_i(s,a) − y)²`` (SB3's), plus β times each critic's
    return-to-go loss on the rows whose return is exact."""
    q = critic(batch.obs, batch.action)
    loss = 0.5 * (q - targets).pow(2).mean(dim=2).sum(dim=0)
    if config.rtg_coef > 0:
        loss = loss + config.rtg_coef * sum(return_to_go_loss(q[i], batch, config.rtg_loss)
                                            for i in (0, 1))
    return loss


def actor_loss(obs: torch.Tensor, action: torch.Tensor, log_prob: torch.Tensor,
               critic: TwinCritic, alpha: torch.Tensor) -> torch.Tensor:
    """Each member's mean of ``α log π(a|s) − min_i Q_i(s, a)`` over the batch, for actions
    drawn with the reparameterisation (so the loss differentiates into the actor)."""
    q = critic(obs, action).amin(dim=0)
    return (alpha.view(-1, 1) * log_prob - q).mean(dim=1)


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor,
                     target_entropy: float) -> torch.Tensor:
    """Each member's ``−log α · mean(log π + target entropy)``: α grows while the policy's
    entropy is below the target, shrinks while above."""
    return -(log_alpha.view(-1) * (log_prob.detach() + target_entropy).mean(dim=1))


def pink_noise(length: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``(length, width)`` Gaussian noise of unit variance whose power falls as 1/f along
    the first axis (``colorednoise.powerlaw_psd_gaussian`` with exponent 1): neighbouring
    steps push the same way, so an episode explores far, as gSDE's noise does, while each
    step's marginal is still N(0, 1) (Eberhard et al. 2023, "Pink noise is all you need")."""
    frequencies = np.fft.rfftfreq(length)
    frequencies[0] = frequencies[1] if length > 1 else 1.0
    amplitude = frequencies ** -0.5
    tail = amplitude[1:].copy()
    tail[-1] *= (1 + length % 2) / 2
    sigma = 2 * np.sqrt(np.sum(tail ** 2)) / length
    real = rng.normal(size=(width, len(amplitude))) * amplitude
    imaginary = rng.normal(size=(width, len(amplitude))) * amplitude
    if length % 2 == 0:
        imaginary[:, -1] = 0.0
        real[:, -1] *= np.sqrt(2)
    imaginary[:, 0] = 0.0
    real[:, 0] *= np.sqrt(2)
    return (np.fft.irfft(real + 1j * imaginary, n=length, axis=1) / sigma).T


class _SACMemberRun(MemberRun):
    """A SAC member: acts by sampling its actor, with noise from its own generators."""

    def __init__(self, index: int, member: SACMember, spec: RunSpec) -> None:
        super().__init__(index, member, spec, member.actor.obs_dim, member.actor.action_dim)
        self.generator = torch.Generator().manual_seed(member.seed)
        self.low, self.high = member.actor.action_low, member.actor.action_high
        self.pink_rng = np.random.default_rng([member.seed, 1])
        self.episode_noise: np.ndarray | None = None
        """This episode's pink noise, one row per step, with ``action_noise: pink``."""
        self.episode_length = self.env.spec.max_episode_steps or 1000

    def noise(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator)

    def acting_noise(self, kind: str) -> torch.Tensor:
        """Noise of this step's action ``(1, action_dim)``: white (independent draws) or
        this episode's pink sequence, drawn afresh when an episode starts."""
        if kind == "white":
            return self.noise(1, len(self.low))
        t = len(self.episode_slots)
        if t == 0 or self.episode_noise is None:
            self.episode_noise = pink_noise(self.episode_length, len(self.low), self.pink_rng)
        return torch.from_numpy(self.episode_noise[t % self.episode_length:][:1]).float()

    def uniform_action(self) -> np.ndarray:
        """Before learning starts: uniform in the bounds, as SB3 acts then."""
        return self.rng.uniform(self.low, self.high).astype(np.float32)

    def checkpoint(self) -> Checkpoint:
        saved = super().checkpoint()
        pink = {} if self.episode_noise is None else {
            "episode_noise": torch.from_numpy(self.episode_noise)}
        return Checkpoint({**saved.tensors, **pink, "generator": self.generator.get_state()},
                          {**saved.document, "pink_rng": self.pink_rng.bit_generator.state})

    def restore(self, checkpoint: Checkpoint) -> None:
        super().restore(checkpoint)
        self.generator.set_state(checkpoint.tensors["generator"])
        self.pink_rng.bit_generator.state = checkpoint.document["pink_rng"]
        noise = checkpoint.tensors.get("episode_noise")
        self.episode_noise = None if noise is None else noise.numpy()


class _SACRun:
    """Everything SAC's training loop changes: exactly what a checkpoint holds."""

    def __init__(self, members: Sequence[SACMember], spec: RunSpec) -> None:
        config = spec.config
        self.spec = spec
        self.actor = GaussianActor.stack([m.actor for m in members])
        self.critic = stack_critics([m.critic for m in members])
        self.target = stack_critics([m.critic for m in members]).requires_grad_(False)
        self.threshold = env_info(spec.env_config).reward_threshold
        self.guidance = Guidance(self.actor, spec.finetune, spec.transferred, self.threshold)
        frozen = spec.finetune.frozen
        self.optimizer = StackedOptimizer(self.actor, frozen, config.learning_rate,
                                          config.max_grad_norm)
        self.critic_optimizer = StackedOptimizer(self.critic, frozen, config.learning_rate,
                                                 config.max_grad_norm)
        seeds = len(members)
        tuned = config.ent_coef == "auto"
        initial = config.ent_coef_init if tuned else max(float(config.ent_coef), 1e-30)
        self.log_alpha = torch.full((seeds, 1), math.log(initial), requires_grad=tuned)
        self.temperature = AdamGroup([self.log_alpha], [True] * seeds) if tuned else None
        self.target_entropy = (-float(self.actor.action_dim) if config.target_entropy is None
                               else config.target_entropy)
        self.members = [_SACMemberRun(k, member, spec) for k, member in enumerate(members)]
        self.sample_arrays, self.batch = batch_arrays(
            seeds, config.batch_size, self.actor.obs_dim, self.actor.action_dim)
        self.step = min(members[0].warm_start.steps_taken if members[0].warm_start else 0,
                        config.total_steps)
        whole_actor = "head" in spec.transferred
        self.actor_starts = self.step + (spec.finetune.critic_warmup_steps if whole_actor else 0)
        """The env step from which the actor and the temperature learn."""
        self._critic_pairs = list(zip(self.target.parameters(), self.critic.parameters(),
                                      strict=True))

    @property
    def played(self) -> GaussianActor:
        return self.actor

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp().view(-1)

    def act(self) -> None:
        """One env step of every member: uniform before ``learning_starts``, then a sample
        of its actor."""
        self.step += 1
        if self.step <= self.spec.config.learning_starts:
            actions = [member.uniform_action() for member in self.members]
        else:
            obs = torch.from_numpy(np.stack([m.obs for m in self.members]).astype(np.float32))
            kind = self.spec.config.action_noise
            noise = torch.stack([m.acting_noise(kind) for m in self.members])
            with torch.no_grad():
                sampled, _ = self.actor.sample(obs[:, None], noise)
            actions = list(sampled[:, 0].numpy())
        for member, action in zip(self.members, actions, strict=True):
            member.step_env(action, self.step, self.spec)

    def play(self, evaluator: GreedyEvaluator, member: _SACMemberRun) -> np.ndarray:
        """Deterministic returns (``tanh(mean)``) of ``member`` on the learning-curve
        episodes."""
        actor = self.actor

        def actions(obs: np.ndarray) -> np.ndarray:
            batch = torch.from_numpy(obs).expand(actor.members, -1, -1)
            with torch.no_grad():
                return actor.deterministic(batch)[member.index].numpy()

        return evaluator.run(actions)

    def observe(self, means: list[float]) -> None:
        """The teacher learns of each member's new learning-curve point."""
        for k, mean in enumerate(means):
            self.guidance.observe(k, mean, self.actor)

    def unfreeze(self, members: Sequence[int] | None = None) -> None:
        """Frozen parts of ``members`` (default all) train from now, in the actor and in
        both of each member's critics."""
        seeds = len(self.members)
        members = range(seeds) if members is None else members
        self.optimizer.unfreeze(members)
        self.critic_optimizer.unfreeze([i for k in members
                                        for i in self.critic.member_slices(k)])

    def train(self) -> None:
        config = self.spec.config
        if self.step % config.train_freq == 0 and self.step >= config.learning_starts:
            _train_burst(self, config)

    def update(self, config: SACConfig) -> torch.Tensor:
        """One gradient step of every member; returns each member's critic loss."""
        table, action = self.sample_arrays
        for k, member in enumerate(self.members):
            member.buffer.sample_into(table[k], action[k])
        shape = (config.batch_size, self.actor.action_dim)
        noise = torch.stack([m.noise(2, *shape) for m in self.members])
        policy_action, log_prob = self.actor.sample(self.batch.obs, noise[:, 0])
        alpha = self.alpha
        actor_learns = self.step >= self.actor_starts
        if self.temperature is not None and actor_learns:
            loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy).sum()
            (grad,) = torch.autograd.grad(loss, [self.log_alpha])
            with torch.no_grad():
                self.temperature.step([grad], config.learning_rate, (0.9, 0.999), 1e-8)
        targets = critic_targets(self.batch, self.actor, self.target, alpha, noise[:, 1])
        losses = critic_loss(self.batch, self.critic, targets, config)
        self.critic_optimizer.step(losses.sum())
        if actor_learns:
            loss = actor_loss(self.batch.obs, policy_action, log_prob, self.critic, alpha)
            if self.guidance.active:
                loss = loss + self.guidance.loss(self.actor.deterministic(self.batch.obs),
                                                 self.batch.obs, targets.abs().mean(dim=1))
            self.optimizer.step(loss.sum())
        with torch.no_grad():
            targets_, critics = zip(*self._critic_pairs, strict=True)
            torch._foreach_lerp_(list(targets_), list(critics), config.tau)
        return losses.detach()

    def finite_weights(self) -> list[bool]:
        """Whether each member's actor, both its critics and its temperature are finite."""
        seeds = len(self.members)
        actor = finite_members(list(self.actor.parameters()))
        critic = finite_members(list(self.critic.parameters()))
        return (actor & critic[:seeds] & critic[seeds:]
                & self.log_alpha.isfinite().view(-1)).tolist()

    def checkpoint(self) -> Checkpoint:
        actor_tensors, actor_document = self.optimizer.state()
        critic_tensors, critic_document = self.critic_optimizer.state()
        temperature = {} if self.temperature is None else self.temperature.state()
        guidance_tensors, guidance_document = self.guidance.state()
        tensors = {**prefixed("actor", self.actor.state_dict()),
                   **prefixed("guidance", guidance_tensors),
                   **prefixed("critic", self.critic.state_dict()),
                   **prefixed("target", self.target.state_dict()),
                   **prefixed("adam_actor", actor_tensors),
                   **prefixed("adam_critic", critic_tensors),
                   **prefixed("adam_alpha", temperature),
                   "log_alpha": self.log_alpha.detach()}
        member_tensors, members = members_checkpoint(self.members)
        tensors.update(member_tensors)
        document = {"step": self.step, "adam_actor": actor_document,
                    "guidance": guidance_document,
                    "adam_critic": critic_document, "members": members}
        return Checkpoint(tensors, document)

    def restore(self, checkpoint: Checkpoint) -> None:
        tensors, document = checkpoint.tensors, checkpoint.document
        self.actor.load_state_dict(unprefixed("actor", tensors))
        self.critic.load_state_dict(unprefixed("critic", tensors))
        self.target.load_state_dict(unprefixed("target", tensors))
        self.guidance.load_state(unprefixed("guidance", tensors), document["guidance"])
        self.optimizer.load_state(unprefixed("adam_actor", tensors), document["adam_actor"])
        self.critic_optimizer.load_state(unprefixed("adam_critic", tensors),
                                         document["adam_critic"])
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"])
        if self.temperature is not None:
            self.temperature.load_state(unprefixed("adam_alpha", tensors))
        restore_members(self.members, tensors, document["members"])
        self.step = document["step"]

    def results(self) -> list[TrainResult]:
        """Each member's actor (its best or last weights), history and final temperature;
        closes the envs."""
        return [member.result(self.actor, self.step, self.spec.config,
                              self.spec.finetune.frozen if frozen else (),
                              float(self.alpha[member.index]))
                for member, frozen in zip(self.members, self.optimizer.frozen_members,
                                          strict=True)]


def _train_burst(run: _SACRun, config: SACConfig) -> None:
    """``gradient_steps`` updates of every member, then one check that each mean critic
    loss and the weights are finite; records the losses, or stops the run naming the
    member, the step and its last finite loss."""
    total = torch.zeros(len(run.members))
    run.guidance.at_step(run.step, config.total_steps)
    for _ in range(config.gradient_steps):
        total += run.update(config)
    record_losses(run.members, (total / config.gradient_steps).tolist(), run.finite_weights(),
                  run.step, "critic loss", "lower sac.learning_rate or set sac.max_grad_norm")


def train_sac(members: Sequence[SACMember], env_config: EnvConfig, config: SACConfig,
              eval_seeds: Sequence[int], label: str = "sac",
              checkpoints: Checkpoints | None = None, her_k: int = 0,
              finetune: FinetuneConfig | None = None, transferred: Sequence[str] = (),
              on_curve: CurveCallback | None = None) -> list[TrainResult]:
    """Train every member for ``config.total_steps`` env steps (its warm start included), all
    members in step as one stacked actor and critic sharing each update; the arguments mean
    what they mean for :func:`hindsight_rl.core.dqn.train_dqn` (``finetune``'s teacher and
    anchor terms guide the actor). Returns each member's trained actor, history and env
    steps."""
    spec = RunSpec(env_config, config, eval_seeds, label, her_k,
                   finetune or FinetuneConfig(frozen=()), tuple(transferred), on_curve)
    stacks = [[member] for member in members] if config.stop_on_threshold else [members]
    results = []
    with subnormals_flushed():
        for stack in stacks:
            check_warm_starts(stack, spec)
            results += train_stack(_SACRun(stack, spec), checkpoints, training_run_key(stack, spec))
    return results

