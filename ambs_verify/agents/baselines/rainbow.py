"""Full Rainbow (Hessel et al. 2018) as dopamine's ``JaxFullRainbowAgent``, on :class:`~.common.BaselineAgent`.

C51 distributional RL (51 atoms on [−10, 10]), double Q-learning (online net picks a*, target net scores it),
dueling head, NoisyNet exploration (ε forced to 0 while training, as dopamine's ``identity_epsilon``), n-step 3
returns and proportional prioritized replay.

configs.yaml's ``baselines`` block holds the values of
``dopamine/jax/agents/full_rainbow/configs/full_rainbow.gin`` (google/dopamine) = AMBS supplement
Table 7: γ 0.99, update horizon 3, min replay history 20,000, update period 4, target update period 8,000,
ε_train 0.01 / ε_eval 0.001 / decay 250,000 (unused while noisy), Adam lr 6.25e-5 eps 1.5e-4, ``noisy``,
``dueling``, ``double_dqn`` True, ``num_atoms`` 51, ``vmax`` 10 (``vmin`` = −vmax), prioritized replay of
capacity 1M and batch 32. Prioritization as in dopamine's ``full_rainbow_agent.py``: priorities
``(loss + 1e-10)^0.5`` with new transitions at the largest priority so far, importance weights
``P(i)^−0.5 / max_batch`` — a fixed exponent 0.5 rather than the paper's 0.4 → 1 schedule (dopamine reports the
fixed exponent doing better on 4 of 5 games); both exponents are settings here.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .common import BaseConfig, BaselineAgent, select
from .losses import c51_loss, categorical_projection
from .networks import C51Network

__all__ = ["Rainbow", "RainbowConfig"]


@dataclass(frozen=True)
class RainbowConfig(BaseConfig):
    """Rainbow settings (dopamine ``full_rainbow.gin``); see :class:`~.common.BaseConfig` for the shared fields."""

    num_atoms: int
    v_max: float
    noisy: bool
    dueling: bool
    double_dqn: bool
    prioritized: bool
    priority_exponent: float  # α: priority = (loss + 1e-10)^α
    importance_exponent: float  # β: weight = (N P(i))^−β / max over the batch

    def validate(self) -> None:
        super().validate()
        if self.num_atoms < 2:
            raise ValueError(f"num_atoms must be >= 2 (got {self.num_atoms})")
        if self.v_max <= 0:
            raise ValueError(f"v_max must be > 0 (got {self.v_max}); the support is [-v_max, v_max]")

    @property
    def support(self) -> jax.Array:
        return jnp.linspace(-self.v_max, self.v_max, self.num_atoms)


class Rainbow(BaselineAgent):
    """Full Rainbow; the network maps ``(B, *obs)`` to atom logits ``(B, A, num_atoms)``."""

    name = "rainbow"

    def __init__(self, config: RainbowConfig) -> None:
        super().__init__(config)
        self.uses_noise = self.config.noisy

    def build_network(self, num_actions: int) -> C51Network:
        c = self.config
        return C51Network(
            num_actions,
            num_atoms=c.num_atoms,
            noisy=c.noisy,
            dueling=c.dueling,
            torso=c.torso,
            mlp_units=c.mlp_units,
            hidden=c.hidden,
        )

    def init_params(self, rng, obs):
        k_params, k_noise = jax.random.split(rng)
        return self.network.init(k_params, obs, k_noise)

    def logits(self, params, obs: jax.Array, rng: jax.Array | None) -> jax.Array:
        """``(B, *obs)`` → atom logits ``(B, A, K)``; ``rng=None`` switches NoisyNet noise off."""
        return self.network.apply(params, obs, rng)

    def q_values(self, params, obs, rng):
        """``(B, *obs)`` → expected values ``(B, A)`` under the categorical distributions."""
        return jnp.sum(jax.nn.softmax(self.logits(params, obs, rng), axis=-1) * self.config.support, axis=-1)

    def greedy_actions(self, params, obs, rng):
        return jnp.argmax(self.q_values(params, obs, rng), axis=-1).astype(jnp.int32)

    def loss(self, params, target_params, batch, rng):
        support = self.config.support
        k_online, k_select, k_target = jax.random.split(rng, 3)
        logits = select(self.logits(params, batch["obs"], k_online), batch["action"])  # (B, K)
        target_logits = self.logits(target_params, batch["next_obs"], k_target)  # (B, A, K)
        target_probs_all = jax.nn.softmax(target_logits, axis=-1)
        if self.config.double_dqn:
            next_q = self.q_values(params, batch["next_obs"], k_select)
        else:
            next_q = jnp.sum(target_probs_all * support, axis=-1)
        next_probs = select(target_probs_all, jnp.argmax(next_q, axis=-1))  # (B, K)
        target_support = batch["reward"][:, None] + batch["discount"][:, None] * support  # (B, K)
        target = categorical_projection(target_support, next_probs, support)
        return c51_loss(logits, target, batch.get("weight"))
