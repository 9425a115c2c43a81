"""Losses of the model-free baselines; each loss returns ``(loss, metrics)``.

``metrics["per_sample_loss"]`` (shape ``(B,)``) is the unweighted loss of every batch row, which prioritized
replay turns into new priorities; every other metric is a scalar.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "c51_loss",
    "categorical_projection",
    "dqn_loss",
    "huber",
    "quantile_huber_loss",
]


def huber(x: jax.Array, delta: float = 1.0) -> jax.Array:
    """Elementwise Huber: ``½x²`` for ``|x| ≤ δ``, else ``δ(|x| − ½δ)``."""
    ax = jnp.abs(x)
    return jnp.where(ax <= delta, 0.5 * x**2, delta * (ax - 0.5 * delta))


def _weighted_mean(per_sample: jax.Array, weights: jax.Array | None) -> jax.Array:
    return jnp.mean(per_sample if weights is None else weights * per_sample)


def dqn_loss(
    q_selected: jax.Array, target: jax.Array, weights: jax.Array | None = None, delta: float = 1.0
) -> tuple[jax.Array, dict]:
    """Huber TD loss of DQN.

    Parameters
    ----------
    q_selected : (B,)
        ``Q(s, a)`` of the replayed actions.
    target : (B,)
        ``R + γⁿ (1 − terminal) max_a' Q_target(s', a')``; gradients are stopped here.
    weights : (B,), optional
        Importance-sampling weights (prioritized replay); ``None`` is uniform.
    delta : float
        Huber threshold (1 in dopamine).

    Returns
    -------
    loss : ()
        Mean of ``weights · huber(target − q_selected)``.
    metrics : dict
        ``per_sample_loss (B,)``, ``q_mean``, ``td_abs_mean``.
    """
    td = jax.lax.stop_gradient(target) - q_selected
    per_sample = huber(td, delta)
    metrics = {
        "per_sample_loss": jax.lax.stop_gradient(per_sample),
        "q_mean": jnp.mean(q_selected),
        "td_abs_mean": jnp.mean(jnp.abs(td)),
    }
    return _weighted_mean(per_sample, weights), metrics


def categorical_projection(target_support: jax.Array, probs: jax.Array, support: jax.Array) -> jax.Array:
    """Project a distribution on ``target_support`` onto the fixed, evenly spaced ``support`` (C51's Φ).

    Atom ``j`` (value ``clip(z'_j, v_min, v_max)``, mass ``p_j``) gives each support atom ``z_i`` the mass
    ``p_j · max(0, 1 − |clip(z'_j) − z_i| / Δz)``: all of it when it lands on ``z_i``, else split between the two
    neighbours in proportion to closeness. Total mass is preserved.

    Parameters
    ----------
    target_support : (..., K)
        Shifted atoms ``r + γⁿ (1 − terminal) z_j``.
    probs : (..., K)
        Their probabilities.
    support : (K,)
        ``linspace(v_min, v_max, K)``.

    Returns
    -------
    (..., K)
        The projected probabilities on ``support``.
    """
    v_min, v_max = support[0], support[-1]
    delta_z = support[1] - support[0]
    clipped = jnp.clip(target_support, v_min, v_max)  # (..., K_j)
    weight = jnp.clip(1.0 - jnp.abs(clipped[..., None, :] - support[:, None]) / delta_z, 0.0, 1.0)  # (..., K_i, K_j)
    return jnp.sum(weight * probs[..., None, :], axis=-1)


def c51_loss(logits: jax.Array, target_probs: jax.Array, weights: jax.Array | None = None) -> tuple[jax.Array, dict]:
    """Cross-entropy between projected target distributions and the online logits of the replayed actions.

    Parameters
    ----------
    logits : (B, K)
        Online atom logits of ``Q(s, a)`` for the replayed actions.
    target_probs : (B, K)
        Projected target distribution (:func:`categorical_projection`); gradients are stopped here.
    weights : (B,), optional
        Importance-sampling weights.

    Returns
    -------
    loss : ()
        Mean of ``weights · (−Σ_k target_k log softmax(logits)_k)``.
    metrics : dict
        ``per_sample_loss (B,)``, ``cross_entropy`` (unweighted mean).
    """
    per_sample = -jnp.sum(jax.lax.stop_gradient(target_probs) * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    metrics = {"per_sample_loss": jax.lax.stop_gradient(per_sample), "cross_entropy": jnp.mean(per_sample)}
    return _weighted_mean(per_sample, weights), metrics


def quantile_huber_loss(
    quantiles: jax.Array,
    taus: jax.Array,
    target_quantiles: jax.Array,
    kappa: float = 1.0,
    weights: jax.Array | None = None,
) -> tuple[jax.Array, dict]:
    """IQN's quantile Huber loss (Dabney et al. 2018, eq. 3; dopamine's reduction).

    With ``u_ij = target_j − quantile_i``:
    ``ρ_ij = |τ_i − 1[u_ij < 0]| · huber_κ(u_ij) / κ``; per sample ``Σ_i mean_j ρ_ij``.

    Parameters
    ----------
    quantiles : (B, N)
        Online quantile values ``Z_τ_i(s, a)`` of the replayed actions.
    taus : (B, N)
        Their fractions ``τ_i``.
    target_quantiles : (B, N')
        ``R + γⁿ (1 − terminal) Z'_τ'_j(s', a*)``; gradients are stopped here.
    kappa : float
        Huber threshold κ (1 in dopamine).
    weights : (B,), optional
        Importance-sampling weights.

    Returns
    -------
    loss : ()
        Mean over the batch of ``weights · Σ_i mean_j ρ_ij``.
    metrics : dict
        ``per_sample_loss (B,)``, ``quantile_mean``.
    """
    u = jax.lax.stop_gradient(target_quantiles)[:, None, :] - quantiles[:, :, None]  # (B, N, N')
    rho = jnp.abs(taus[:, :, None] - (u < 0).astype(u.dtype)) * huber(u, kappa) / kappa
    per_sample = jnp.sum(jnp.mean(rho, axis=2), axis=1)
    metrics = {"per_sample_loss": jax.lax.stop_gradient(per_sample), "quantile_mean": jnp.mean(quantiles)}
    return _weighted_mean(per_sample, weights), metrics
