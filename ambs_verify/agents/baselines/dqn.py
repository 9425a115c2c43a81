"""DQN (Mnih et al. 2015) as in dopamine's JAX agent, on the shared :class:`~.common.BaselineAgent` shell.

configs.yaml's ``baselines`` block holds the values of
``dopamine/jax/agents/dqn/configs/dqn.gin`` (google/dopamine): γ 0.99, update horizon 1, min replay
history 20,000, update period 4, target update period 8,000, ε 1 → 0.01 over 250,000 agent steps (ε_eval 0.001),
Adam lr 6.25e-5 eps 1.5e-4 (dopamine's JAX DQN uses Adam; the gin notes it beats Nature's RMSProp), replay
capacity 1M, batch 32, uniform replay, Huber loss. The ``dqn_nature`` config block gives Mnih et al. (2015) instead, as
dopamine's ``dopamine/agents/dqn/configs/dqn_nature.gin``: centred RMSProp lr 2.5e-4, decay 0.95, eps 1e-5; min
replay history 50,000; target update period 10,000; ε 1 → 0.1 over 1M agent steps; ε_eval 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .common import BaseConfig, BaselineAgent, select
from .losses import dqn_loss
from .networks import QNetwork

__all__ = ["DQN", "DQNConfig"]


@dataclass(frozen=True)
class DQNConfig(BaseConfig):
    """DQN settings (dopamine ``dqn.gin``); see :class:`~.common.BaseConfig` for the shared fields."""

    huber_delta: float
    prioritized: bool  # uniform replay


class DQN(BaselineAgent):
    """DQN: Q-network ``(B, *obs) → (B, A)``, target ``r + γⁿ (1 − d) max_a' Q_target(s', a')``, Huber loss."""

    name = "dqn"

    def build_network(self, num_actions: int) -> QNetwork:
        c = self.config
        return QNetwork(num_actions, torso=c.torso, mlp_units=c.mlp_units, hidden=c.hidden)

    def init_params(self, rng, obs):
        return self.network.init(rng, obs)

    def q_values(self, params, obs: jax.Array) -> jax.Array:
        """``(B, *obs)`` → ``(B, A)``."""
        return self.network.apply(params, obs)

    def greedy_actions(self, params, obs, rng):
        return jnp.argmax(self.q_values(params, obs), axis=-1).astype(jnp.int32)

    def loss(self, params, target_params, batch, rng):
        q = select(self.q_values(params, batch["obs"]), batch["action"])
        next_q = self.q_values(target_params, batch["next_obs"]).max(axis=-1)
        target = batch["reward"] + batch["discount"] * next_q
        return dqn_loss(q, target, batch.get("weight"), self.config.huber_delta)
