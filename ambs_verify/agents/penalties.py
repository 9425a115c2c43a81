"""Penalty techniques that reshape the task policy's advantage (spec §6, §7.1).

All of them act on the task behaviour's imagined trajectories only; the world model, the shield and the safe
policy are unchanged.

* **PENL** is a plain extra critic (reward ``-clip(cost, 0, C)``, advantage scale ``penalty_coeff``) and needs no
  code here: :class:`~ambs_verify.agents.agent.Agent` adds its :class:`CriticSpec`.
* **PLPG** (Yang et al. 2023) multiplies the extrinsic advantage by ``rho_t = clip(exp(min(TD_safe_t, 0)), 1e-6,
  1)``, with the safe critic's *undiscounted* TD error ``TD_safe_t = -c_{t+1} + V_safe(s_{t+1}) - V_safe(s_t)``.
* **COPT** multiplies it by ``1 - sg(sigmoid(kappa * (G_t - delta)))``, with ``G_t`` the shield's discounted
  cost-to-go from imagined step t and ``delta = C * gamma_s^T`` the shield's violation threshold.
* **Lagrangian** (augmented Lagrangian, the Safety Gym version of the reference) subtracts
  ``psi_t = lam * g_t + mu / 2 * g_t^2`` (where ``lam + mu * g_t > 0``, else ``-lam^2 / (2 mu)``) from the
  advantage, ``g_t = R_cost_t - d``. Unlike the Atari-paper version, which added ``psi`` to the loss as a
  constant and so never changed the actor's gradient (spec §7.2), ``psi`` here enters the advantage.

All functions are pure and time-major: ``(H, N)`` per transition, ``(H + 1, N)`` per state.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

__all__ = [
    "Shaping",
    "copt_weight",
    "discounted_cost_returns",
    "lagrangian_penalty",
    "lagrangian_update",
    "plpg_weight",
]

PLPG_MIN = 1e-6


@dataclass(frozen=True)
class Shaping:
    """Which advantage shapings the task behaviour applies, with their constants (hashable: a jit static).

    ``copt_threshold`` is ``C * gamma_s^T`` and ``cost_discount`` ``gamma_s``; ``lagrangian`` switches the
    augmented-Lagrangian penalty on, with the initial multipliers and the growth rate ``penalty_pow``.
    """

    plpg: bool
    copt: bool
    copt_scale: float
    copt_threshold: float
    cost_discount: float
    lagrangian: bool
    lagrange_mult: float
    penalty_mult: float
    penalty_pow: float
    cost_threshold: float

    @classmethod
    def none(cls) -> Shaping:
        """No shaping (the safe behaviour's, and the task's without PLPG, COPT or the Lagrangian): every switch off,
        so no constant is read. The constants of a shaped behaviour come from its config
        (:func:`ambs_verify.agents.agent.task_shaping`)."""
        return cls(False, False, 0.0, 0.0, 0.0, False, 0.0, 0.0, 0.0, 0.0)

    @property
    def active(self) -> bool:
        return self.plpg or self.copt or self.lagrangian


def plpg_weight(cost: jax.Array, safe_value: jax.Array) -> jax.Array:
    """PLPG weights ``rho (H, N)`` in ``[1e-6, 1]``.

    Parameters
    ----------
    cost : (H, N)
        Clipped predicted cost ``c_{t+1}`` received on transition t -> t+1.
    safe_value : (H + 1, N)
        The safe critic's value ``V_safe(s_t)`` (its reward is ``-c``, so values are <= 0).

    Notes
    -----
    No stop-gradient, as in the reference: with dynamics backprop the gradient also flows through ``rho``.
    """
    td = -cost + safe_value[1:] - safe_value[:-1]
    return jnp.clip(jnp.exp(jnp.minimum(td, 0.0)), PLPG_MIN, 1.0)


def discounted_cost_returns(cost: jax.Array, cont: jax.Array, bootstrap: jax.Array, discount: float) -> jax.Array:
    """Shield-style cost-to-go from every imagined step: ``G_t = c_{t+1} + discount * cont_{t+1} * G_{t+1}``.

    Parameters
    ----------
    cost, cont : (H, N)
        Clipped cost and continue flag of states 1..H.
    bootstrap : (N,)
        ``G_H`` (the clipped cost critic's value at state H).

    Returns
    -------
    (H, N) ``G_0 .. G_{H-1}``; ``G_0`` equals :func:`~ambs_verify.agents.shield.discounted_cost_to_go`.
    """

    def step(nxt: jax.Array, inp: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        c, k = inp
        cur = c + discount * k * nxt
        return cur, cur

    _, returns = jax.lax.scan(step, bootstrap, (cost, cont), reverse=True)
    return returns


def copt_weight(returns: jax.Array, threshold: float, scale: float) -> jax.Array:
    """COPT counter-example weights ``sigmoid(scale * (G_t - threshold))`` in ``(0, 1)``, ``(H, N)``.

    The advantage is multiplied by ``1 - sg(weight)``: actions leading to predicted violations lose their push.
    ``jax.nn.sigmoid`` is numerically stable for large arguments of either sign.
    """
    return jax.nn.sigmoid(scale * (returns - threshold))


def lagrangian_penalty(
    cost_return: jax.Array, lam: jax.Array, mu: jax.Array, threshold: float
) -> tuple[jax.Array, jax.Array]:
    """Augmented-Lagrangian penalty ``psi (H, N)`` and the condition ``lam + mu * g (H, N)``.

    ``cost_return`` is the cost critic's lambda-return (not stop-gradiented: with dynamics backprop the penalty's
    gradient flows through it); ``g = cost_return - threshold``.
    """
    g = cost_return - threshold
    cond = lam + mu * g
    psi = jnp.where(cond > 0, lam * g + 0.5 * mu * g**2, -(lam**2) / (2.0 * mu))
    return psi, cond


def lagrangian_update(
    lam: jax.Array, mu: jax.Array, cond: jax.Array, penalty_pow: float
) -> tuple[jax.Array, jax.Array]:
    """Multiplier step after each actor update: ``lam <- max(0, mean(cond))``, ``mu <- max(mu (1 + pow), 1)``.

    The ``max(., 1)`` makes ``mu`` jump to 1 after the first update (as in the reference, spec §7.1).
    """
    cond = jax.lax.stop_gradient(cond)
    return jnp.maximum(0.0, cond.mean()), jnp.maximum(mu * (1.0 + penalty_pow), 1.0)
