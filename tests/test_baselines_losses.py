"""Losses and layers of the model-free baselines against hand-computed cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ambs_verify.agents.baselines.losses import c51_loss, categorical_projection, dqn_loss, huber, quantile_huber_loss
from ambs_verify.agents.baselines.networks import (
    C51Network,
    DuelingHead,
    IQNNetwork,
    NatureTorso,
    NoisyDense,
    QNetwork,
)

SUPPORT = jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # 5 atoms, Δz = 1


def test_c51_projection_between_atoms():
    # r = 0.5, γⁿ = 0.5: shifted atoms 0.5 + 0.5 z = [-0.5, 0, 0.5, 1, 1.5] with masses p = [.1, .2, .3, .25, .15].
    #   -0.5 (0.1)  -> half to -1, half to 0:   -1: 0.05, 0: 0.05
    #    0   (0.2)  -> all to 0:                 0: 0.2
    #    0.5 (0.3)  -> half to 0, half to 1:     0: 0.15, 1: 0.15
    #    1   (0.25) -> all to 1:                 1: 0.25
    #    1.5 (0.15) -> half to 1, half to 2:     1: 0.075, 2: 0.075
    # => [-2: 0, -1: 0.05, 0: 0.4, 1: 0.475, 2: 0.075]
    probs = jnp.array([0.1, 0.2, 0.3, 0.25, 0.15])
    projected = categorical_projection(0.5 + 0.5 * SUPPORT, probs, SUPPORT)
    np.testing.assert_allclose(projected, [0.0, 0.05, 0.4, 0.475, 0.075], atol=1e-7)


def test_c51_projection_clips_and_terminal():
    probs = jnp.array([[0.1, 0.2, 0.3, 0.25, 0.15], [0.1, 0.2, 0.3, 0.25, 0.15]])
    # Row 0: r = 3, γⁿ = 1: atoms [1, 2, 3, 4, 5] clip to [1, 2, 2, 2, 2]: 1 gets 0.1, 2 gets the other 0.9.
    # Row 1: terminal (γⁿ = 0), r = -0.25: every atom at -0.25 -> 0.25 of the mass to -1, 0.75 to 0.
    target_support = jnp.stack([3.0 + SUPPORT, -0.25 + 0.0 * SUPPORT])
    projected = categorical_projection(target_support, probs, SUPPORT)
    np.testing.assert_allclose(projected[0], [0, 0, 0, 0.1, 0.9], atol=1e-7)
    np.testing.assert_allclose(projected[1], [0, 0.25, 0.75, 0, 0], atol=1e-7)
    np.testing.assert_allclose(projected.sum(-1), 1.0, atol=1e-6)


def test_c51_cross_entropy():
    # Uniform logits over 5 atoms: -Σ t log(1/5) = log 5 for any target distribution t.
    target = jnp.array([[0.0, 0.05, 0.4, 0.475, 0.075], [0, 0, 1.0, 0, 0]])
    loss, metrics = c51_loss(jnp.zeros((2, 5)), target, weights=jnp.array([1.0, 0.5]))
    np.testing.assert_allclose(metrics["per_sample_loss"], [np.log(5)] * 2, rtol=1e-6)
    np.testing.assert_allclose(loss, (np.log(5) + 0.5 * np.log(5)) / 2, rtol=1e-6)


def test_quantile_huber_two_by_two():
    # θ = [0, 2] at τ = [0.25, 0.75], targets T = [1, 0.5], κ = 1; u_ij = T_j − θ_i.
    #   i = 0 (τ .25): u = [1, .5]   (≥ 0, weight .25): huber = [.5, .125]  -> ρ = [.125, .03125], mean .078125
    #   i = 1 (τ .75): u = [-1, -1.5] (< 0, weight .25): huber = [.5, 1.0]  -> ρ = [.125, .25],    mean .1875
    #   per sample: .078125 + .1875 = .265625
    # κ = 2: huber_2 = [.5, .125] and [.5, 1.125], / κ: means .0390625 and .1015625 -> .140625
    quantiles = jnp.array([[0.0, 2.0]])
    taus = jnp.array([[0.25, 0.75]])
    targets = jnp.array([[1.0, 0.5]])
    loss, metrics = quantile_huber_loss(quantiles, taus, targets, kappa=1.0)
    np.testing.assert_allclose(loss, 0.265625, rtol=1e-6)
    np.testing.assert_allclose(metrics["per_sample_loss"], [0.265625], rtol=1e-6)
    loss2, _ = quantile_huber_loss(quantiles, taus, targets, kappa=2.0)
    np.testing.assert_allclose(loss2, 0.140625, rtol=1e-6)


def test_quantile_huber_gradient_pulls_towards_the_quantile():
    # One online quantile at τ = 0.9 against many targets 0..9: the loss is minimised near their 0.9 quantile.
    targets = jnp.arange(10.0)[None]
    grad = jax.grad(lambda q: quantile_huber_loss(q, jnp.array([[0.9]]), targets, kappa=0.01)[0])
    assert grad(jnp.array([[2.0]]))[0, 0] < 0 < grad(jnp.array([[9.5]]))[0, 0]


def test_dqn_huber_loss():
    # td = [3 − 1, 0.5 − 0] = [2, 0.5]: huber = [2 − 0.5, 0.125] = [1.5, 0.125]; weighted by [1, .5]: mean .78125.
    loss, metrics = dqn_loss(jnp.array([1.0, 0.0]), jnp.array([3.0, 0.5]), jnp.array([1.0, 0.5]))
    np.testing.assert_allclose(metrics["per_sample_loss"], [1.5, 0.125])
    np.testing.assert_allclose(loss, 0.78125)
    np.testing.assert_allclose(huber(jnp.array([-3.0, 0.2])), [2.5, 0.02], rtol=1e-6)


def test_noisy_dense_is_pure_and_factorised():
    layer = NoisyDense(3)
    x = jax.random.normal(jax.random.key(0), (4, 5))
    params = layer.init(jax.random.key(1), x, jax.random.key(2))
    p = params["params"]
    mean = layer.apply(params, x, None)
    np.testing.assert_allclose(mean, x @ p["kernel_mu"] + p["bias_mu"], rtol=1e-6)
    a = layer.apply(params, x, jax.random.key(3))
    np.testing.assert_array_equal(a, layer.apply(params, x, jax.random.key(3)))  # same key, same output
    assert not np.allclose(a, layer.apply(params, x, jax.random.key(4)))
    np.testing.assert_allclose(p["kernel_sigma"], 0.5 / np.sqrt(5))
    assert np.all(np.abs(p["kernel_mu"]) <= 1 / np.sqrt(5))
    # Row 0 alone equals row 0 of the batch when its noise is rebuilt explicitly: W = μ + σ ⊙ (ε_in ε_outᵀ).
    k_in, k_out = jax.random.split(jax.random.key(3))

    def f(e):
        return jnp.sign(e) * jnp.sqrt(jnp.abs(e))

    eps_in, eps_out = f(jax.random.normal(k_in, (4, 5))), f(jax.random.normal(k_out, (4, 3)))
    w0 = p["kernel_mu"] + p["kernel_sigma"] * jnp.outer(eps_in[0], eps_out[0])
    np.testing.assert_allclose(a[0], x[0] @ w0 + p["bias_mu"] + p["bias_sigma"] * eps_out[0], rtol=1e-5, atol=1e-6)


def test_dueling_head_centres_advantages():
    head = DuelingHead(num_actions=4, num_outputs=3)
    x = jax.random.normal(jax.random.key(0), (2, 6))
    params = head.init(jax.random.key(1), x)
    out = head.apply(params, x)
    value = x @ params["params"]["_Dense_1"]["Dense_0"]["kernel"] + params["params"]["_Dense_1"]["Dense_0"]["bias"]
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(out.mean(axis=1), value, rtol=1e-5, atol=1e-6)  # mean_a Q = V


@pytest.mark.parametrize(
    ("module", "args", "shape"),
    [
        (QNetwork(18), (), (2, 18)),
        (C51Network(18), (jax.random.key(0),), (2, 18, 51)),
        (IQNNetwork(18), (jnp.full((2, 64), 0.5),), (2, 64, 18)),
    ],
)
def test_atari_network_shapes(module, args, shape):
    obs = jnp.zeros((2, 84, 84, 4), jnp.uint8)
    params = jax.eval_shape(module.init, jax.random.key(0), obs, *args)
    assert jax.eval_shape(module.apply, params, obs, *args).shape == shape


def test_nature_torso_features():
    obs = jnp.zeros((3, 84, 84, 4), jnp.uint8)
    params = jax.eval_shape(NatureTorso().init, jax.random.key(0), obs)
    assert jax.eval_shape(NatureTorso().apply, params, obs).shape == (3, 11 * 11 * 64)  # SAME padding (dopamine)
