"""Typed hyper-parameters of the DreamerV3 + AMBS agent, with the reference defaults (spec §12, §13, Tables 3-4).

The dataclasses are frozen (hashable), so a config can be a static argument of ``jax.jit``. Defaults are the
reference's ``defaults`` block (= the xlarge model size). The model sizes (``debug`` … ``xlarge``) are blocks of
``configs.yaml``, their only source: :func:`ambs_verify.rollout.agents.size_config` builds the config of one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ActorCriticConfig",
    "AgentConfig",
    "EncoderConfig",
    "LagrangianConfig",
    "OptimizerConfig",
    "PenaltyConfig",
    "RSSMConfig",
    "SafetyConfig",
    "WorldModelConfig",
]

ComputeDtype = Literal["float32", "bfloat16", "float16"]
TwinReduction = Literal["min", "max", "mean"]


@dataclass(frozen=True)
class OptimizerConfig:
    """Adam with global-norm gradient clipping (no weight decay, no warm-up)."""

    lr: float = 1e-4
    eps: float = 1e-8
    clip: float = 1000.0


@dataclass(frozen=True)
class RSSMConfig:
    """Recurrent state-space model: GRU ``deter`` state, ``stoch`` categoricals of ``classes`` classes."""

    deter: int = 4096
    units: int = 1024
    stoch: int = 32
    classes: int = 32
    unimix: float = 0.01
    action_clip: float = 1.0
    unroll: bool = False  # unroll the time scans (slow to compile; used to count FLOPs, see benchmarks)


@dataclass(frozen=True)
class EncoderConfig:
    """CNN (image keys, rank 3) and MLP (vector keys, rank 1) parts of the encoder or the decoder.

    The CNN has ``log2(image_size / minres)`` stride-2 stages of kernel 4 with depths
    ``cnn_depth * 2**i``; the vector MLP has ``mlp_layers`` x ``mlp_units``.
    """

    cnn_depth: int = 96
    minres: int = 4
    mlp_layers: int = 5
    mlp_units: int = 1024
    symlog_inputs: bool = True  # encoder only: symlog on vector inputs
    # decoder only: how vector keys are reconstructed. "symlog_mse" (the paper: squared error in symlog space) or
    # "onehot" (a categorical over the vector's entries, cross-entropy): for one-hot observations such as the
    # grid's cell, symlog MSE barely trains (a debug-size model still predicts the mean one-hot after 1,500
    # updates) while the categorical learns the cell within a few hundred.
    vector_dist: Literal["symlog_mse", "onehot"] = "symlog_mse"


@dataclass(frozen=True)
class WorldModelConfig:
    """World model: encoder, RSSM, decoder, reward/cost (two-hot) and cont/safe_cont (Bernoulli) heads."""

    rssm: RSSMConfig = field(default_factory=RSSMConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(symlog_inputs=False))
    head_layers: int = 5
    head_units: int = 1024
    bins: int = 255
    # loss scales
    image_scale: float = 1.0
    vector_scale: float = 1.0
    reward_scale: float = 1.0
    cont_scale: float = 1.0
    cost_scale: float = 1.0
    safe_cont_scale: float = 1.0
    dyn_scale: float = 0.5
    rep_scale: float = 0.1
    free_bits: float = 1.0
    opt: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(1e-4, 1e-8, 1000.0))


@dataclass(frozen=True)
class ActorCriticConfig:
    """Imagination actor-critic (shared by the task and the safe behaviour, which are identical in the reference).

    ``actor_grad`` ``"auto"`` means REINFORCE for discrete and dynamics backprop for continuous actions.
    """

    actor_layers: int = 5
    actor_units: int = 1024
    critic_layers: int = 5
    critic_units: int = 1024
    bins: int = 255
    minstd: float = 0.1
    maxstd: float = 1.0
    unimix: float = 0.01
    imag_horizon: int = 15
    horizon: float = 333.0  # discount = 1 - 1/horizon
    return_lambda: float = 0.95
    slow_critic_fraction: float = 0.02
    slow_critic_update: int = 1
    slowreg: float = 1.0
    retnorm_decay: float = 0.99
    retnorm_max: float = 1.0  # advantage divisor = max(1/retnorm_max, P_high - P_low)
    retnorm_low: float = 5.0
    retnorm_high: float = 95.0
    actent: float = 3e-4
    actor_scale: float = 1.0
    critic_scale: float = 1.0
    normalise_ret: bool = True  # divide the advantage mix by the sum of the advantage scales
    actor_grad: Literal["auto", "reinforce", "backprop"] = "auto"
    actor_opt: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(3e-5, 1e-5, 100.0))
    critic_opt: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(3e-5, 1e-5, 100.0))

    @property
    def discount(self) -> float:
        return 1.0 - 1.0 / self.horizon


@dataclass(frozen=True)
class SafetyConfig:
    """AMBS additions: cost clipping, the safe behaviour and the task behaviour's TD3-style twin cost critic.

    ``twin_reduction`` decides how the two cost critics' values are combined into the cost value (used by the
    twin critic's own lambda-return target and by the shield's bootstrap). The reference takes the **min**,
    copied from TD3, where the min of two *reward* estimates counters over-estimation. For a *cost*, the min
    under-estimates the expected cost, i.e. it is optimistic about safety (spec §4.4, §14.5). ``"min"`` stays
    the default so that runs reproduce the paper; ``"max"`` is the conservative choice for safety and
    ``"mean"`` the unbiased-on-average compromise.
    """

    cost_val: float = 10.0  # C: cost per violation; clip bound for cost targets, critic rewards and bootstrap
    clip_costs: bool = True  # Safety Gym version; False reproduces the Atari-paper commit (no clipping)
    safety_horizon: float = 333.0  # gamma_s = 1 - 1/safety_horizon
    twin_reduction: TwinReduction = "min"
    shielding: bool = True  # train the safe behaviour
    shield_bootstrap: bool = True  # train the twin cost critic (needed by the shield's bootstrap)
    # > 0: the safe policy also follows the task reward at this advantage scale, as a tie-breaker among equally
    # safe actions (0: it minimises cost alone, as in the paper; spec §4.2)
    safe_reward_scale: float = 0.0
    safety_critic_opt: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(3e-5, 1e-5, 100.0))
    slow_safety_critic_fraction: float = 0.02
    slow_safety_critic_update: int = 1

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
    twin cost critic (``shield_bootstrap``) and uses ``threshold_horizon`` T in ``C * gamma_s^T``.
    """

    penalty_coeff: float = 0.0
    penl_critic_type: Literal["vfunction", "td3vfunction"] = "vfunction"
    use_safety_critic_params: bool = False
    plpg: bool = False
    copt: bool = False
    sigmoid_scale: float = 10.0
    threshold_horizon: int = 30


@dataclass(frozen=True)
class LagrangianConfig:
    """Augmented-Lagrangian DreamerV3 baseline (spec §7.1, Safety Gym version): initial multipliers, the penalty
    multiplier's growth and the cost threshold ``d`` on the cost critic's lambda-return (in cost units)."""

    enabled: bool = False
    lagrange_mult: float = 0.01
    penalty_mult: float = 5e-9
    penalty_pow: float = 1e-6
    cost_threshold: float = 1.0


@dataclass(frozen=True)
class AgentConfig:
    """The whole agent. ``compute_dtype`` is the matmul/conv dtype; parameters always stay float32."""

    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    lagrangian: LagrangianConfig = field(default_factory=LagrangianConfig)
    compute_dtype: ComputeDtype = "float32"
    batch_size: int = 16
    batch_length: int = 64

    def replace(self, **changes) -> AgentConfig:
        return dataclasses.replace(self, **changes)
