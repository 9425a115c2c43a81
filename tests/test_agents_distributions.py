"""Distributions of the DreamerV3 agent: symlog, two-hot, Bernoulli, unimix categoricals, bounded normal."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ambs_verify.agents import distributions as D


def test_symlog_symexp_inverse_and_values():
    x = jnp.array([-1e6, -10.0, -1.0, 0.0, 0.5, 3.0, 1e6])
    np.testing.assert_allclose(D.symexp(D.symlog(x)), x, rtol=1e-5)
    np.testing.assert_allclose(D.symlog(jnp.array([np.e - 1.0, -(np.e - 1.0)])), [1.0, -1.0], rtol=1e-6)


def test_twohot_encode_hand_computed():
    bins = jnp.array([-1.0, 0.0, 1.0, 2.0])
    w = D.twohot_encode(jnp.array([0.25, 2.0, -5.0, 7.0, 1.0]), bins)
    expected = np.array(
        [
            [0.0, 0.75, 0.25, 0.0],  # between 0 and 1, nearer 0
            [0.0, 0.0, 0.0, 1.0],  # exactly on the last bin
            [1.0, 0.0, 0.0, 0.0],  # below the range: all mass on the first bin
            [0.0, 0.0, 0.0, 1.0],  # above the range
            [0.0, 0.0, 1.0, 0.0],  # exactly on a bin
        ]
    )
    np.testing.assert_allclose(w, expected, atol=1e-6)


def test_twohot_round_trip_255_bins():
    bins = D.twohot_bins(255)
    assert bins.shape == (255,) and float(bins[0]) == -20.0 and float(bins[-1]) == 20.0
    x = jnp.array([-3e4, -123.4, -1.0, -1e-3, 0.0, 1e-3, 0.37, 2.5, 999.0, 4e5])
    w = D.twohot_encode(D.symlog(x), bins)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    assert int((w > 0).sum(-1).max()) <= 2
    # Decoding the encoded weights as probabilities (logits = log w) recovers x.
    decoded = D.twohot_mean(jnp.log(w + 1e-30), bins)
    np.testing.assert_allclose(decoded, x, rtol=2e-4, atol=1e-5)
    # The log-likelihood of the target under those logits is the (negative) entropy of the two-hot weights.
    lp = D.twohot_log_prob(jnp.log(w + 1e-30), x, bins)
    ent = -(w * jnp.log(jnp.where(w > 0, w, 1.0))).sum(-1)
    np.testing.assert_allclose(lp, -ent, atol=1e-4)


def test_twohot_extremes_are_finite():
    bins = D.twohot_bins(255)
    x = jnp.array([-3e38, -1e20, 1e20, 3e38, 0.0])
    logits = jnp.zeros((5, 255))
    assert np.isfinite(D.twohot_log_prob(logits, x, bins)).all()
    g = jax.grad(lambda lg: D.twohot_log_prob(lg, x, bins).sum())(logits)
    assert np.isfinite(g).all()
    assert np.isfinite(D.twohot_mean(logits.at[:, -1].set(100.0), bins)).all()


def test_bernoulli():
    logits = jnp.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(D.bernoulli_log_prob(logits, jnp.ones(3)), jnp.log(jax.nn.sigmoid(logits)), rtol=1e-6)
    np.testing.assert_allclose(D.bernoulli_mode(logits), [0.0, 0.0, 1.0])


def test_unimix_and_straight_through():
    logits = jnp.array([[50.0, -50.0, -50.0, -50.0]])
    lp = D.unimix_logits(logits, 0.01)
    probs = jnp.exp(lp)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs[0, 1:], 0.0025, rtol=1e-4)  # 1 % spread uniformly over 4 classes
    key = jax.random.PRNGKey(0)
    sample = D.onehot_sample(key, lp)
    np.testing.assert_allclose(sample.sum(-1), 1.0)
    assert set(np.unique(np.asarray(sample))) <= {0.0, 1.0}
    # Straight-through: the gradient of <sample, v> is that of <softmax, v>.
    v = jnp.array([1.0, 2.0, 3.0, 4.0])
    lg = jnp.array([0.1, -0.3, 0.7, 0.2])
    g_st = jax.grad(lambda z: (D.onehot_sample(key, z) * v).sum())(lg)
    g_sm = jax.grad(lambda z: (jax.nn.softmax(z) * v).sum())(lg)
    np.testing.assert_allclose(g_st, g_sm, rtol=1e-6)


def test_categorical_kl_and_entropy():
    p = jnp.log(jnp.array([0.5, 0.5]))
    q = jnp.log(jnp.array([0.9, 0.1]))
    expected = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    np.testing.assert_allclose(D.categorical_kl(p, q), expected, rtol=1e-6)
    np.testing.assert_allclose(D.categorical_kl(p, p), 0.0, atol=1e-7)
    np.testing.assert_allclose(D.categorical_entropy(p), np.log(2.0), rtol=1e-6)


@pytest.mark.parametrize("raw", [-1e4, -3.0, 0.0, 5.0, 1e4])
def test_bounded_normal_range(raw):
    mean, std = D.bounded_normal(jnp.full((3,), raw), jnp.full((3,), raw), 0.1, 1.0)
    assert np.all(np.abs(mean) <= 1.0)
    assert np.all((std >= 0.1 - 1e-7) & (std <= 1.0 + 1e-7))
    x = D.normal_sample(jax.random.PRNGKey(0), mean, std)
    assert np.isfinite(D.normal_log_prob(mean, std, x)) and np.isfinite(D.normal_entropy(std))
