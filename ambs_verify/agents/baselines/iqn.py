"""Implicit Quantile Networks (Dabney et al. 2018) as dopamine's ``JaxImplicitQuantileAgent``.

configs.yaml's ``baselines`` block holds the values of
``dopamine/jax/agents/implicit_quantile/configs/implicit_quantile.gin`` (google/dopamine) = AMBS
supplement Table 6: κ 1, N = N′ = 64 quantile fractions for the online and target distributions, K = 32 for
acting and for choosing a* at s′, γ 0.99, update horizon 3, min replay history 20,000, update period 4, target
update period 8,000, ε 1 → 0.01 over 250,000 agent steps (ε_eval 0.001), Adam lr 5e-5 eps 3.125e-4, uniform
replay of capacity 1M, batch 32, quantile embedding dimension 64 (dopamine's network default), no double-Q
(dopamine's default ``double_dqn=False``: the target network picks a*).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .common import BaseConfig, BaselineAgent
from .losses import quantile_huber_loss
from .networks import IQNNetwork

__all__ = ["IQN", "IQNConfig"]


@dataclass(frozen=True)
class IQNConfig(BaseConfig):
    """IQN settings (dopamine ``implicit_quantile.gin``); see :class:`~.common.BaseConfig` for the shared fields."""

    kappa: float
    num_tau_samples: int  # N
    num_tau_prime_samples: int  # N'
    num_quantile_samples: int  # K
    quantile_embedding_dim: int
    double_dqn: bool
    prioritized: bool  # uniform replay


def _quantiles_of(values: jax.Array, actions: jax.Array) -> jax.Array:
    """``values (B, T, A)``, ``actions (B,)`` → ``(B, T)``."""
    return jnp.take_along_axis(values, actions[:, None, None].astype(jnp.int32), axis=2)[..., 0]


class IQN(BaselineAgent):
    """IQN; the network maps ``(B, *obs)`` and fractions ``(B, T)`` to quantile values ``(B, T, A)``."""

    name = "iqn"

    def build_network(self, num_actions: int) -> IQNNetwork:
        c = self.config
        return IQNNetwork(
            num_actions,
            embedding_dim=c.quantile_embedding_dim,
            torso=c.torso,
            mlp_units=c.mlp_units,
            hidden=c.hidden,
        )

    def init_params(self, rng, obs):
        return self.network.init(rng, obs, jnp.full((obs.shape[0], 1), 0.5))

    def quantiles(self, params, obs: jax.Array, rng: jax.Array, num: int) -> tuple[jax.Array, jax.Array]:
        """Quantile values ``(B, num, A)`` at fresh fractions ``τ ~ U(0, 1)`` of shape ``(B, num)``."""
        taus = jax.random.uniform(rng, (obs.shape[0], num))
        return self.network.apply(params, obs, taus), taus

    def q_values(self, params, obs, rng):
        """``(B, *obs)`` → ``(B, A)``: the mean of K sampled quantiles."""
        values, _ = self.quantiles(params, obs, rng, self.config.num_quantile_samples)
        return values.mean(axis=1)

    def greedy_actions(self, params, obs, rng):
        rng = rng if rng is not None else jax.random.key(0)
        return jnp.argmax(self.q_values(params, obs, rng), axis=-1).astype(jnp.int32)

    def loss(self, params, target_params, batch, rng):
        c = self.config
        k_online, k_target, k_select = jax.random.split(rng, 3)
        values, taus = self.quantiles(params, batch["obs"], k_online, c.num_tau_samples)
        quantiles = _quantiles_of(values, batch["action"])  # (B, N)
        select_params = params if c.double_dqn else target_params
        next_action = jnp.argmax(self.q_values(select_params, batch["next_obs"], k_select), axis=-1)
        next_values, _ = self.quantiles(target_params, batch["next_obs"], k_target, c.num_tau_prime_samples)
        target = batch["reward"][:, None] + batch["discount"][:, None] * _quantiles_of(next_values, next_action)
        return quantile_huber_loss(quantiles, taus, target, c.kappa, batch.get("weight"))
