"""Networks of the model-free baselines (Flax Linen), after dopamine's JAX networks.

* :class:`NatureTorso`: the Nature-DQN convolutions (32×8×8/4, 64×4×4/2, 64×3×3/1, ReLU) on uint8 frames scaled
  to [0, 1]. Flax's default ``SAME`` padding is kept, as in dopamine's JAX networks, so an 84×84×4 input gives
  11·11·64 = 7,744 features (the TF Nature network's ``VALID`` padding gives 3,136).
* :class:`MLPTorso`: ReLU MLP for vector observations (small tasks and tests).
* :class:`NoisyDense`: factorised-Gaussian NoisyNet layer (Fortunato et al. 2018, eqs. 10-11) whose noise comes
  from an explicit key argument, so every call is a pure function of ``(params, x, key)``.
* :class:`DuelingHead`: ``V(s) + A(s, a) − mean_a A(s, a)`` per output channel (atoms), optionally noisy.
* :class:`QNetwork` (DQN), :class:`C51Network` (Rainbow: distributional, dueling, noisy) and
  :class:`IQNNetwork` (implicit quantiles with dopamine's cosine embedding ``cos(π i τ)``, i = 1..64).

Shapes: observations ``(B, *obs_shape)``; outputs carry the batch axis first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "C51Network",
    "DuelingHead",
    "IQNNetwork",
    "MLPTorso",
    "NatureTorso",
    "NoisyDense",
    "QNetwork",
    "dopamine_init",
    "make_torso",
]


def dopamine_init() -> Callable:
    """Dopamine's Rainbow/IQN kernel initialiser: variance scaling ``1/√3``, fan-in, uniform."""
    return nn.initializers.variance_scaling(1.0 / np.sqrt(3.0), "fan_in", "uniform")


class NatureTorso(nn.Module):
    """Nature-DQN convolutions: ``(B, H, W, C)`` uint8 or float → ``(B, F)`` float32 (``F = 7744`` at 84×84)."""

    kernel_init: Callable = dopamine_init()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        # Pixel observations arrive as uint8 and are scaled here, so replay and acting move bytes, not floats.
        x = x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            x = nn.Conv(features, (kernel, kernel), (stride, stride), kernel_init=self.kernel_init)(x)
            x = nn.relu(x)
        return x.reshape(x.shape[0], -1)


class MLPTorso(nn.Module):
    """ReLU MLP: ``(B, *obs_shape)`` → ``(B, units[-1])`` (observation axes are flattened)."""

    units: Sequence[int] = (64, 64)
    kernel_init: Callable = dopamine_init()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1).astype(jnp.float32)
        for width in self.units:
            x = nn.relu(nn.Dense(width, kernel_init=self.kernel_init)(x))
        return x


def make_torso(kind: str, mlp_units: Sequence[int], kernel_init: Callable) -> nn.Module:
    """``"nature"`` → :class:`NatureTorso`; ``"mlp"`` → :class:`MLPTorso` with ``mlp_units``."""
    if kind == "nature":
        return NatureTorso(kernel_init=kernel_init)
    if kind == "mlp":
        return MLPTorso(units=tuple(mlp_units), kernel_init=kernel_init)
    raise ValueError(f"unknown torso {kind!r}; accepted: nature, mlp")


def _scaled_noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``f(ε) = sign(ε)·√|ε|`` of standard normals (Fortunato et al. 2018, eq. 11)."""
    eps = jax.random.normal(key, shape)
    return jnp.sign(eps) * jnp.sqrt(jnp.abs(eps))


class NoisyDense(nn.Module):
    """Factorised-Gaussian noisy dense layer: ``(B, in)`` → ``(B, features)``.

    ``y = x μ_W + ((x ⊙ ε_in) σ_W) ⊙ ε_out + μ_b + σ_b ⊙ ε_out`` with ``ε = f(N(0, 1))`` drawn from ``key`` — the
    same as ``x (μ_W + σ_W ⊙ ε_in ε_outᵀ) + …`` without building the ``in × out`` noise matrix, which lets every
    batch row have its own noise at the cost of one extra matmul. ``key=None`` gives the noise-free mean layer
    (dopamine's eval mode). Initialisation (Fortunato et al. §3.2): ``μ ~ U(±1/√in)``, ``σ = σ₀/√in``.
    """

    features: int
    sigma0: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, key: jax.Array | None) -> jax.Array:
        fan_in = x.shape[-1]
        bound = 1.0 / np.sqrt(fan_in)

        def mu_init(rng, shape):
            return jax.random.uniform(rng, shape, jnp.float32, -bound, bound)

        def sigma_init(rng, shape):
            return jnp.full(shape, self.sigma0 / np.sqrt(fan_in), jnp.float32)

        w_mu = self.param("kernel_mu", mu_init, (fan_in, self.features))
        w_sigma = self.param("kernel_sigma", sigma_init, (fan_in, self.features))
        b_mu = self.param("bias_mu", mu_init, (self.features,))
        b_sigma = self.param("bias_sigma", sigma_init, (self.features,))
        y = x @ w_mu + b_mu
        if key is None:
            return y
        k_in, k_out = jax.random.split(key)
        eps_in = _scaled_noise(k_in, x.shape)  # one noise draw per batch row
        eps_out = _scaled_noise(k_out, (*x.shape[:-1], self.features))
        return y + ((x * eps_in) @ w_sigma) * eps_out + b_sigma * eps_out


class _Dense(nn.Module):
    """A dense layer that is noisy or plain by flag, with one call signature ``(x, key)``."""

    features: int
    noisy: bool
    kernel_init: Callable = dopamine_init()

    @nn.compact
    def __call__(self, x: jax.Array, key: jax.Array | None) -> jax.Array:
        if self.noisy:
            return NoisyDense(self.features)(x, key)
        return nn.Dense(self.features, kernel_init=self.kernel_init)(x)


class DuelingHead(nn.Module):
    """``(B, F)`` → ``(B, A, K)``: ``V(s)_k + A(s, a)_k − mean_a A(s, a)_k`` (``K = 1`` for scalar Q-values)."""

    num_actions: int
    num_outputs: int = 1
    noisy: bool = False
    kernel_init: Callable = dopamine_init()

    @nn.compact
    def __call__(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        k_adv, k_val = jax.random.split(key) if key is not None else (None, None)
        adv = _Dense(self.num_actions * self.num_outputs, self.noisy, self.kernel_init)(x, k_adv)
        val = _Dense(self.num_outputs, self.noisy, self.kernel_init)(x, k_val)
        adv = adv.reshape(x.shape[0], self.num_actions, self.num_outputs)
        return val[:, None, :] + adv - adv.mean(axis=1, keepdims=True)


class QNetwork(nn.Module):
    """DQN: torso → Dense(hidden) + ReLU → Dense(A). ``(B, *obs)`` → Q-values ``(B, A)``."""

    num_actions: int
    torso: str = "nature"
    mlp_units: Sequence[int] = (64, 64)
    hidden: int = 512
    kernel_init: Callable = nn.initializers.xavier_uniform()  # dopamine's JAX NatureDQNNetwork

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = make_torso(self.torso, self.mlp_units, self.kernel_init)(x)
        x = nn.relu(nn.Dense(self.hidden, kernel_init=self.kernel_init)(x))
        return nn.Dense(self.num_actions, kernel_init=self.kernel_init)(x)


class C51Network(nn.Module):
    """Rainbow's network (dopamine ``FullRainbowNetwork``): ``(B, *obs)`` → atom logits ``(B, A, num_atoms)``.

    torso → (noisy) Dense(hidden) + ReLU → dueling (noisy) head over atoms, or a plain (noisy) Dense(A·atoms).
    ``key`` drives the NoisyNet noise; ``None`` (or ``noisy=False``) gives the deterministic network.
    """

    num_actions: int
    num_atoms: int = 51
    noisy: bool = True
    dueling: bool = True
    torso: str = "nature"
    mlp_units: Sequence[int] = (64, 64)
    hidden: int = 512

    @nn.compact
    def __call__(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        key = key if self.noisy else None
        k_hidden, k_head = jax.random.split(key) if key is not None else (None, None)
        x = make_torso(self.torso, self.mlp_units, dopamine_init())(x)
        x = nn.relu(_Dense(self.hidden, self.noisy)(x, k_hidden))
        if self.dueling:
            return DuelingHead(self.num_actions, self.num_atoms, self.noisy)(x, k_head)
        logits = _Dense(self.num_actions * self.num_atoms, self.noisy)(x, k_head)
        return logits.reshape(x.shape[0], self.num_actions, self.num_atoms)


class IQNNetwork(nn.Module):
    """Implicit quantile network (dopamine ``ImplicitQuantileNetwork``).

    ``(B, *obs)`` and quantile fractions ``taus (B, T)`` → quantile values ``(B, T, A)``. The embedding is
    ``ReLU(Dense_F(cos(π i τ)))`` for ``i = 1..embedding_dim``, multiplied into the torso's ``F`` features, then
    Dense(hidden) + ReLU → Dense(A).
    """

    num_actions: int
    embedding_dim: int = 64
    torso: str = "nature"
    mlp_units: Sequence[int] = (64, 64)
    hidden: int = 512

    @nn.compact
    def __call__(self, x: jax.Array, taus: jax.Array) -> jax.Array:
        init = dopamine_init()
        state = make_torso(self.torso, self.mlp_units, init)(x)  # (B, F)
        i = jnp.arange(1, self.embedding_dim + 1, dtype=jnp.float32)
        cosines = jnp.cos(jnp.pi * taus[..., None] * i)  # (B, T, E)
        embedding = nn.relu(nn.Dense(state.shape[-1], kernel_init=init)(cosines))  # (B, T, F)
        h = state[:, None, :] * embedding
        h = nn.relu(nn.Dense(self.hidden, kernel_init=init)(h))
        return nn.Dense(self.num_actions, kernel_init=init)(h)
