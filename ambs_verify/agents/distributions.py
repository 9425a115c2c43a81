"""Distributions used by the DreamerV3 agent, as pure functions on arrays (spec §13).

Everything here works on the trailing axes and broadcasts over any leading batch axes. Computations are done in
float32 whatever the network compute dtype is; callers cast logits before calling.

* ``symlog`` / ``symexp``: the squashing used on vector inputs, vector reconstruction targets and on the two-hot
  regression targets.
* Two-hot symlog regression (reward, cost and critic heads): 255 bins uniformly spaced in [-20, 20] in symlog
  space; the target's mass is split between the two nearest bins in proportion to distance; the loss is the
  cross-entropy against the log-softmax; the prediction is ``symexp(sum_i p_i b_i)``.
* Bernoulli (continue and safe-continue heads): log-probability from logits, mode = ``logit > 0``.
* Categorical latents and discrete actions: "unimix" mixes 1 % uniform into the softmax; samples are one-hot with
  straight-through gradients; KL and entropy summed as the caller needs.
* Bounded normal (continuous actions): ``Normal(tanh(mu), sigma)`` with
  ``sigma = (maxstd - minstd) * sigmoid(raw + 2) + minstd``, independent over action dimensions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = [
    "bernoulli_log_prob",
    "bernoulli_mode",
    "bounded_normal",
    "categorical_entropy",
    "categorical_kl",
    "normal_entropy",
    "normal_log_prob",
    "normal_sample",
    "onehot_log_prob",
    "onehot_mode",
    "onehot_ranked",
    "onehot_sample",
    "symexp",
    "symlog",
    "twohot_bins",
    "twohot_encode",
    "twohot_log_prob",
    "twohot_mean",
    "unimix_logits",
]


def symlog(x: jax.Array) -> jax.Array:
    """``sign(x) * log(1 + |x|)``, elementwise."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
    """Inverse of :func:`symlog`: ``sign(x) * (exp(|x|) - 1)``, elementwise."""
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


# ----------------------------------------------------------------------------------------------- two-hot symlog


def twohot_bins(num: int = 255, low: float = -20.0, high: float = 20.0) -> jax.Array:
    """The bin centres in symlog space, shape ``(num,)``."""
    return jnp.linspace(low, high, num, dtype=jnp.float32)


def twohot_encode(x: jax.Array, bins: jax.Array) -> jax.Array:
    """Two-hot encoding of ``x`` (already in bin space, e.g. ``symlog(value)``).

    Parameters
    ----------
    x : array ``(...)``
        Values; those outside ``[bins[0], bins[-1]]`` put all mass on the end bin.
    bins : array ``(K,)``
        Increasing bin centres.

    Returns
    -------
    array ``(..., K)``
        Non-negative weights summing to 1, non-zero on at most two adjacent bins, whose weighted bin mean equals
        ``x`` for ``x`` inside the range.
    """
    x = x.astype(jnp.float32)
    num = bins.shape[0]
    below = jnp.sum((bins <= x[..., None]).astype(jnp.int32), axis=-1) - 1
    above = num - jnp.sum((bins > x[..., None]).astype(jnp.int32), axis=-1)
    below = jnp.clip(below, 0, num - 1)
    above = jnp.clip(above, 0, num - 1)
    equal = below == above
    dist_below = jnp.where(equal, 1.0, jnp.abs(bins[below] - x))
    dist_above = jnp.where(equal, 1.0, jnp.abs(bins[above] - x))
    total = dist_below + dist_above
    w_below = dist_above / total
    w_above = dist_below / total
    return jax.nn.one_hot(below, num) * w_below[..., None] + jax.nn.one_hot(above, num) * w_above[..., None]


def twohot_log_prob(logits: jax.Array, target: jax.Array, bins: jax.Array) -> jax.Array:
    """Log-likelihood of a real ``target`` (original space) under a two-hot symlog head.

    ``logits (..., K)``, ``target (...)`` -> ``(...)``; the target is symlog-transformed here.
    """
    logits = logits.astype(jnp.float32)
    weights = twohot_encode(symlog(target), bins)
    return jnp.sum(weights * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def twohot_mean(logits: jax.Array, bins: jax.Array) -> jax.Array:
    """Prediction of a two-hot symlog head in original space: ``symexp(sum_i softmax_i * b_i)``; ``(...)``."""
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    return symexp(jnp.sum(probs * bins, axis=-1))


# -------------------------------------------------------------------------------------------------- Bernoulli


def bernoulli_log_prob(logits: jax.Array, target: jax.Array) -> jax.Array:
    """``log p(target)`` for a Bernoulli with ``logits``; shapes broadcast; soft targets in [0, 1] allowed."""
    logits = logits.astype(jnp.float32)
    target = target.astype(jnp.float32)
    return target * jax.nn.log_sigmoid(logits) + (1.0 - target) * jax.nn.log_sigmoid(-logits)


def bernoulli_mode(logits: jax.Array) -> jax.Array:
    """``1.0`` where ``logits > 0`` else ``0.0`` (float32)."""
    return (logits > 0).astype(jnp.float32)


# ------------------------------------------------------------------------------------------------ categorical


def unimix_logits(logits: jax.Array, unimix: float) -> jax.Array:
    """Log-probabilities of ``(1 - unimix) * softmax(logits) + unimix / K`` over the last axis (size K)."""
    logits = logits.astype(jnp.float32)
    if unimix <= 0.0:
        return jax.nn.log_softmax(logits, axis=-1)
    probs = jax.nn.softmax(logits, axis=-1)
    probs = (1.0 - unimix) * probs + unimix / logits.shape[-1]
    return jnp.log(probs)


def onehot_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """One-hot sample over the last axis with straight-through gradients.

    The forward value is the one-hot sample; the gradient is that of ``softmax(logits)``.
    """
    logits = logits.astype(jnp.float32)
    # Gumbel-max with a flat draw (XLA on CPU compiles rank >= 3 random draws very slowly).
    u = jax.random.uniform(key, (math.prod(logits.shape),), jnp.float32, jnp.finfo(jnp.float32).tiny, 1.0)
    gumbel = -jnp.log(-jnp.log(u)).reshape(logits.shape)
    idx = jnp.argmax(logits + gumbel, axis=-1)
    sample = jax.nn.one_hot(idx, logits.shape[-1], dtype=jnp.float32)
    probs = jax.nn.softmax(logits, axis=-1)
    return sample + probs - jax.lax.stop_gradient(probs)


def onehot_ranked(key: jax.Array, logits: jax.Array, k: int) -> jax.Array:
    """``k`` distinct one-hot actions ``(..., k, A)`` in a random order drawn without replacement (Gumbel-top-k).

    The first is a sample of the categorical; the first of them in any fixed subset is a sample of the
    categorical conditioned on that subset (the Gumbel-max property), which is how a shield picks among them.
    """
    logits = logits.astype(jnp.float32)
    u = jax.random.uniform(key, (math.prod(logits.shape),), jnp.float32, jnp.finfo(jnp.float32).tiny, 1.0)
    _, idx = jax.lax.top_k(logits - jnp.log(-jnp.log(u)).reshape(logits.shape), k)
    return jax.nn.one_hot(idx, logits.shape[-1], dtype=jnp.float32)


def onehot_mode(logits: jax.Array) -> jax.Array:
    """One-hot of the argmax over the last axis (no gradient)."""
    return jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=jnp.float32)


def onehot_log_prob(logits: jax.Array, onehot: jax.Array) -> jax.Array:
    """``log p(onehot)`` summed over the last axis; ``logits`` are (normalised or not) log-probabilities."""
    return jnp.sum(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1) * onehot, axis=-1)


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """Entropy over the last axis; ``(..., K) -> (...)``."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def categorical_kl(lhs_logits: jax.Array, rhs_logits: jax.Array) -> jax.Array:
    """``KL[lhs || rhs]`` over the last axis; ``(..., K) -> (...)``. Sum over latents is the caller's job."""
    lhs = jax.nn.log_softmax(lhs_logits.astype(jnp.float32), axis=-1)
    rhs = jax.nn.log_softmax(rhs_logits.astype(jnp.float32), axis=-1)
    return jnp.sum(jnp.exp(lhs) * (lhs - rhs), axis=-1)


# --------------------------------------------------------------------------------------------- bounded normal


def bounded_normal(
    raw_mean: jax.Array, raw_std: jax.Array, minstd: float, maxstd: float
) -> tuple[jax.Array, jax.Array]:
    """Mean ``tanh(raw_mean)`` and std ``(maxstd - minstd) * sigmoid(raw_std + 2) + minstd``."""
    mean = jnp.tanh(raw_mean.astype(jnp.float32))
    std = (maxstd - minstd) * jax.nn.sigmoid(raw_std.astype(jnp.float32) + 2.0) + minstd
    return mean, std


def normal_sample(key: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """Reparameterised sample ``mean + std * eps`` (gradients flow to mean and std)."""
    eps = jax.random.normal(key, (math.prod(mean.shape),), jnp.float32).reshape(mean.shape)
    return mean + std * eps


def normal_log_prob(mean: jax.Array, std: jax.Array, x: jax.Array) -> jax.Array:
    """Log-density of independent normals summed over the last axis; ``(..., D) -> (...)``."""
    z = (x - mean) / std
    return jnp.sum(-0.5 * z * z - jnp.log(std) - 0.5 * math.log(2.0 * math.pi), axis=-1)


def normal_entropy(std: jax.Array) -> jax.Array:
    """Entropy of independent normals summed over the last axis; ``(..., D) -> (...)``."""
    return jnp.sum(0.5 + 0.5 * math.log(2.0 * math.pi) + jnp.log(std), axis=-1)
