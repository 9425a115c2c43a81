"""Typed hyper-parameters of the DreamerV3 + AMBS agent (spec §12, §13, Tables 3-4).

Each dataclass mirrors a block of ``configs.yaml`` field for field and is built from it by :func:`build`
(``Cls(**block)``, nested blocks recursively), so a setting keeps one name from the command line to the code:
``--retnorm.perclo`` is ``ActorCriticConfig.retnorm.perclo``. The classes hold **no defaults**: the ``defaults``
block of ``configs.yaml`` is their only source, and the model sizes (``debug`` … ``xlarge``) are blocks there too.
:func:`ambs_verify.rollout.agents.agent_config` builds an :class:`AgentConfig` from a resolved config and
:func:`~ambs_verify.rollout.agents.size_config` the one of a model size.

The dataclasses are frozen (hashable), so a config can be a static argument of ``jax.jit``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ActorConfig",
    "ActorCriticConfig",
    "AgentConfig",
    "CriticConfig",
    "DecoderConfig",
    "EncoderConfig",
    "HeadsConfig",
    "LagrangianConfig",
    "LossScales",
    "OptimizerConfig",
    "PenaltyConfig",
    "RSSMConfig",
    "RetNormConfig",
    "SafetyConfig",
    "WorldModelConfig",
    "build",
]

ComputeDtype = Literal["float32", "bfloat16", "float16"]
TwinReduction = Literal["min", "max", "mean"]


def build(cls: type, source: Mapping[str, Any], **given: Any):
    """``cls`` with each field read from ``source[field]`` (a nested dataclass built from its sub-block).

    ``given`` supplies fields that are not keys of ``source`` (values resolved elsewhere, e.g. C from the task).
    Keys of ``source`` that are not fields are ignored, so one mapping can feed several classes.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in given:
            values[f.name] = given[f.name]
            continue
        value = source[f.name]
        kind = hints[f.name]
        values[f.name] = build(kind, value) if dataclasses.is_dataclass(kind) else value
    return cls(**values)


@dataclass(frozen=True)
class OptimizerConfig:
    """Adam with global-norm gradient clipping (no weight decay, no warm-up)."""

    lr: float
    eps: float
    clip: float


@dataclass(frozen=True)
class RSSMConfig:
    """Recurrent state-space model: GRU ``deter`` state, ``stoch`` categoricals of ``classes`` classes.

    ``unroll`` unrolls the time scans (slow to compile; the benchmarks use it to count FLOPs).
    """

    deter: int
    units: int
    stoch: int
    classes: int
    unimix: float
    action_clip: float
    unroll: bool


@dataclass(frozen=True)
class ConvMLPConfig:
    """CNN (image keys, rank 3) and MLP (vector keys, rank 1) parts of the encoder and of the decoder.

    The CNN has ``log2(image_size / minres)`` stride-2 stages of kernel 4 with depths ``cnn_depth * 2**i``; the
    vector MLP has ``mlp_layers`` x ``mlp_units``.
    """

    cnn_depth: int
    minres: int
    mlp_layers: int
    mlp_units: int


@dataclass(frozen=True)
class EncoderConfig(ConvMLPConfig):
    """The encoder's :class:`ConvMLPConfig`; ``symlog_inputs`` applies symlog to vector inputs."""

    symlog_inputs: bool


@dataclass(frozen=True)
class DecoderConfig(ConvMLPConfig):
    """The decoder's :class:`ConvMLPConfig` (the encoder's mirror), and how vector keys are reconstructed.

    ``vector_dist``: ``"symlog_mse"`` (the paper: squared error in symlog space) or ``"onehot"`` (a categorical
    over the vector's entries, cross-entropy). For one-hot observations such as the grid's cell, symlog MSE barely
    trains (a debug-size model still predicts the mean one-hot after 1,500 updates) while the categorical learns
    the cell within a few hundred.
    """

    vector_dist: Literal["symlog_mse", "onehot"]


@dataclass(frozen=True)
class HeadsConfig:
    """The reward, cost (two-hot over ``bins``), cont and safe_cont (Bernoulli) heads: ``layers`` x ``units``."""

    layers: int
    units: int
    bins: int


@dataclass(frozen=True)
class LossScales:
    """Loss weights: the world model's terms (image … rep) and the actor-critic's (actor, critic, slowreg)."""

    image: float
    vector: float
    reward: float
    cont: float
    cost: float
    safe_cont: float
    dyn: float
    rep: float
    actor: float
    critic: float
    slowreg: float


@dataclass(frozen=True)
class WorldModelConfig:
    """World model: encoder, RSSM, decoder and heads, with KL ``free_bits`` and its optimiser ``model_opt``."""

    rssm: RSSMConfig
    encoder: EncoderConfig
    decoder: DecoderConfig
    heads: HeadsConfig
    loss_scales: LossScales
    free_bits: float
    model_opt: OptimizerConfig


@dataclass(frozen=True)
class ActorConfig:
    """Actor MLP; continuous actions have std in ``[minstd, maxstd]``, discrete ones ``unimix`` uniform mixing."""

    layers: int
    units: int
    minstd: float
    maxstd: float
    unimix: float


@dataclass(frozen=True)
class CriticConfig:
    """Critic MLP with a two-hot output over ``bins``."""

    layers: int
    units: int
    bins: int


@dataclass(frozen=True)
class RetNormConfig:
    """Return normalisation: EMA (``decay``) of the ``perclo``/``perchi`` percentiles of the lambda-returns; the
    advantage divisor is ``max(1 / max, P_high - P_low)``."""

    decay: float
    max: float
    perclo: float
    perchi: float


@dataclass(frozen=True)
class ActorCriticConfig:
    """Imagination actor-critic (shared by the task and the safe behaviour, which are identical in the reference).

    ``actor_grad`` ``"auto"`` means REINFORCE for discrete and dynamics backprop for continuous actions;
    ``normalise_ret`` divides the advantage mix by the sum of the advantage scales.
    """

    actor: ActorConfig
    critic: CriticConfig
    actor_opt: OptimizerConfig
    critic_opt: OptimizerConfig
    actor_grad: Literal["auto", "reinforce", "backprop"]
    imag_horizon: int
    horizon: float  # discount = 1 - 1/horizon
    return_lambda: float
    slow_critic_update: int
    slow_critic_fraction: float
    retnorm: RetNormConfig
    actent: float
    normalise_ret: bool
    loss_scales: LossScales

    @property
    def discount(self) -> float:
        return 1.0 - 1.0 / self.horizon


@dataclass(frozen=True)
class SafetyConfig:
    """AMBS additions: cost clipping, the safe behaviour and the task behaviour's TD3-style twin cost critic.

    ``cost_val`` is C, the cost per violation and the clip bound for cost targets, critic rewards and the
    bootstrap; ``clip_costs`` False reproduces the Atari-paper commit (no clipping). ``twin_reduction`` decides how
    the two cost critics' values are combined into the cost value (used by the twin critic's own lambda-return
    target and by the shield's bootstrap). The reference takes the **min**, copied from TD3, where the min of two
    *reward* estimates counters over-estimation. For a *cost*, the min under-estimates the expected cost, i.e. it
    is optimistic about safety (spec §4.4, §14.5). ``"min"`` stays the default so that runs reproduce the paper;
    ``"max"`` is the conservative choice for safety and ``"mean"`` the unbiased-on-average compromise.
    ``safe_reward_scale`` > 0 makes the safe policy also follow the task reward at this advantage scale, as a
    tie-breaker among equally safe actions (0: it minimises cost alone, as in the paper; spec §4.2).
    """

    cost_val: float
    clip_costs: bool
    safety_horizon: float  # gamma_s = 1 - 1/safety_horizon
    twin_reduction: TwinReduction
    shielding: bool  # train the safe behaviour
    shield_bootstrap: bool  # train the twin cost critic (needed by the shield's bootstrap)
    safe_reward_scale: float
    safety_critic_opt: OptimizerConfig
    slow_safety_critic_update: int
    slow_safety_critic_fraction: float

    @property
    def discount(self) -> float:
        return 1.0 - 1.0 / self.safety_horizon


@dataclass(frozen=True)
class PenaltyConfig:
    """Penalty techniques on the task policy's advantage (spec §6).

    ``penalty_coeff`` != 0 adds the PENL critic (reward ``-clip(cost, 0, C)``, advantage scale ``penalty_coeff``);
    ``penl_critic_type`` is accepted for the reference's command lines but, as there, both values build a plain
    single value critic. ``use_safety_critic_params`` trains it with the safety critic's settings (``safe_cont``,
    ``safety_horizon``, ``safety_critic_opt``). ``plpg`` needs the safe policy (shielding); ``copt`` needs the
    twin cost critic (``shield_bootstrap``) and uses the shield's ``threshold_horizon`` T in ``C * gamma_s^T``.
    """

    penalty_coeff: float
    penl_critic_type: Literal["vfunction", "td3vfunction"]
    use_safety_critic_params: bool
    plpg: bool
    copt: bool
    sigmoid_scale: float
    threshold_horizon: int


@dataclass(frozen=True)
class LagrangianConfig:
    """Augmented-Lagrangian DreamerV3 baseline (spec §7.1, Safety Gym version): initial multipliers, the penalty
    multiplier's growth and the cost threshold ``d`` on the cost critic's lambda-return (in cost units);
    ``enabled`` for ``--agent lagrangian``."""

    enabled: bool
    lagrange_mult: float
    penalty_mult: float
    penalty_pow: float
    cost_threshold: float


@dataclass(frozen=True)
class AgentConfig:
    """The whole agent. ``compute_dtype`` is the matmul/conv dtype; parameters always stay float32."""

    world_model: WorldModelConfig
    actor_critic: ActorCriticConfig
    safety: SafetyConfig
    penalty: PenaltyConfig
    lagrangian: LagrangianConfig
    compute_dtype: ComputeDtype
    batch_size: int
    batch_length: int

    def replace(self, **changes) -> AgentConfig:
        return dataclasses.replace(self, **changes)
