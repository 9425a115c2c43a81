"""Penalty techniques (PENL, PLPG, COPT) and the Lagrangian baseline: exact values on hand-computed cases, ranges
(hypothesis), the multiplier moving the actor's update, and the whole learner with the seeds' flag combinations."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_agents_actor_critic import AC, SLOW, ToyWorld, _start

from ambs_verify.agents import Agent
from ambs_verify.agents.actor_critic import CriticSpec, ImagActorCritic
from ambs_verify.agents.agent import task_critics, task_shaping
from ambs_verify.agents.config import OptimizerConfig
from ambs_verify.agents.penalties import (
    Shaping,
    copt_weight,
    discounted_cost_returns,
    lagrangian_penalty,
    lagrangian_update,
    plpg_weight,
)
from ambs_verify.agents.shield import discounted_cost_to_go
from ambs_verify.rollout.agents import size_config

DEBUG = size_config("debug")
OFF = task_shaping(DEBUG)  # no shaping, with the config's constants (C = 10, the paper's multipliers)


def shaping(**switches) -> Shaping:
    return dataclasses.replace(OFF, **switches)


floats = st.floats(-50, 50, allow_nan=False, width=32)


def test_plpg_weight_hand_computed():
    cost = jnp.array([[0.0], [10.0]])
    value = jnp.array([[-1.0], [-1.0], [-4.0]])
    # TD_0 = 0 - 1 + 1 = 0 -> 1; TD_1 = -10 - 4 + 1 = -13 -> exp(-13) = 2.26e-6
    np.testing.assert_allclose(plpg_weight(cost, value)[:, 0], [1.0, np.exp(-13.0)], rtol=1e-6)
    # A positive TD error is capped at 1, a very negative one at 1e-6.
    np.testing.assert_allclose(plpg_weight(jnp.array([[0.0]]), jnp.array([[0.0], [5.0]])), [[1.0]])
    np.testing.assert_allclose(plpg_weight(jnp.array([[100.0]]), jnp.array([[0.0], [0.0]])), [[1e-6]])


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (4, 3), elements=floats), arrays(np.float32, (5, 3), elements=floats))
def test_plpg_weight_in_range(cost, value):
    w = np.asarray(plpg_weight(jnp.asarray(cost), jnp.asarray(value)))
    assert np.all(w >= 1e-6 - 1e-12) and np.all(w <= 1.0)


def test_cost_returns_match_the_shield():
    rng = np.random.default_rng(0)
    cost = jnp.asarray(rng.uniform(0, 10, (15, 7)), jnp.float32)
    cont = jnp.asarray(rng.random((15, 7)) > 0.1, jnp.float32)
    boot = jnp.asarray(rng.uniform(0, 10, 7), jnp.float32)
    g = discounted_cost_returns(cost, cont, boot, 0.997)
    assert g.shape == (15, 7)
    np.testing.assert_allclose(g[0], discounted_cost_to_go(cost, cont, boot, 0.997), rtol=1e-5)
    # G_{H-1} = c_H + gamma * cont_H * B
    np.testing.assert_allclose(g[-1], cost[-1] + 0.997 * cont[-1] * boot, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (6, 2), elements=st.floats(-1e4, 1e4, width=32)), st.floats(0.1, 100))
def test_copt_weight_in_range(returns, scale):
    w = np.asarray(copt_weight(jnp.asarray(returns), 9.137, scale))
    assert np.all(np.isfinite(w)) and np.all(w >= 0.0) and np.all(w <= 1.0)
    order = np.argsort(returns.ravel())
    assert np.all(np.diff(w.ravel()[order]) >= 0.0)


def test_copt_weight_hand_computed():
    np.testing.assert_allclose(copt_weight(jnp.array([9.137]), 9.137, 10.0), [0.5])
    np.testing.assert_allclose(copt_weight(jnp.array([10.137]), 9.137, 10.0), [1 / (1 + np.exp(-10.0))], rtol=1e-6)


def test_lagrangian_penalty_and_update_hand_computed():
    ret = jnp.array([3.0, 0.0])
    psi, cond = lagrangian_penalty(ret, jnp.float32(0.5), jnp.float32(2.0), 1.0)
    # g = (2, -1); cond = 0.5 + 2 g = (4.5, -1.5); psi = (0.5*2 + 1*4, -0.25/4)
    np.testing.assert_allclose(cond, [4.5, -1.5])
    np.testing.assert_allclose(psi, [5.0, -0.0625])
    lam, mu = lagrangian_update(jnp.float32(0.5), jnp.float32(2.0), cond, 1e-6)
    np.testing.assert_allclose(lam, 1.5)
    np.testing.assert_allclose(mu, 2.0 * (1 + 1e-6))
    # mu jumps to 1 after the first update from its tiny initial value; lam never goes negative.
    lam, mu = lagrangian_update(jnp.float32(0.01), jnp.float32(5e-9), jnp.array([-3.0, -1.0]), 1e-6)
    assert float(lam) == 0.0 and float(mu) == 1.0


# ------------------------------------------------------------------------------------ behaviour level


class RiskyWorld(ToyWorld):
    """Action 0 earns reward 1 and costs 1 per step; the other actions earn and cost nothing."""

    def cost(self, params, feat):
        return feat[..., 0]


def _risky_behaviour(shaping):
    fast = OptimizerConfig(1e-3, 1e-5, 100.0)
    ac = dataclasses.replace(AC, actor_opt=fast, critic_opt=fast, imag_horizon=5)
    specs = (
        CriticSpec("extr", "reward", "cont", ac.discount, 1.0, opt=fast, **SLOW),
        CriticSpec("cost", "cost", "cont", 0.9, 0.0, opt=fast, **SLOW),
    )
    return ImagActorCritic(ac, specs, RiskyWorld(3, True), 3, True, 10.0, shaping=shaping)


def _train_risky(shaping, updates=120):
    beh = _risky_behaviour(shaping)
    state = beh.init(jax.random.PRNGKey(0))
    start = _start(3)
    update = jax.jit(beh.update)
    for i in range(updates):
        state, metrics = update(state, {}, start, jax.random.PRNGKey(i), jnp.int32(i))
    return beh, state, metrics


def test_lagrangian_multiplier_moves_the_actor_update():
    """Same data, same key: the actor's gradient differs between two multiplier values (the Atari-paper version
    added the penalty to the loss as a constant, so its gradient did not depend on the multiplier)."""
    beh = _risky_behaviour(shaping(lagrangian=True, cost_threshold=0.0))
    state = beh.init(jax.random.PRNGKey(0))
    start = _start(3)

    @jax.jit
    def grad(lam):
        st = {**state, "lagrange": {"lambda": lam, "mu": jnp.float32(1.0)}}
        return jax.grad(lambda p: beh.actor_loss(p, st, {}, start, jax.random.PRNGKey(1))[0])(st["actor"])

    g_small, g_large = grad(jnp.float32(0.0)), grad(jnp.float32(5.0))
    pairs = zip(jax.tree.leaves(g_small), jax.tree.leaves(g_large), strict=True)
    diff = max(float(jnp.abs(a - b).max()) for a, b in pairs)
    scale = max(float(jnp.abs(a).max()) for a in jax.tree.leaves(g_small))
    assert diff > 0.1 * scale, (diff, scale)


def test_lagrangian_steers_the_policy_away_from_cost():
    plain_beh, plain, _ = _train_risky(OFF)
    lag_beh, lag, metrics = _train_risky(shaping(lagrangian=True, cost_threshold=0.0))
    feat = jnp.zeros((1, 4))
    p_plain = float(jnp.exp(plain_beh.dist(plain["actor"], feat)["logits"])[0, 0])
    p_lag = float(jnp.exp(lag_beh.dist(lag["actor"], feat)["logits"])[0, 0])
    # Measured: 0.94 without the penalty, 0.02 with it (lambda 24.9) (the multiplier grows while costs exceed d = 0).
    assert p_plain > 0.8 and p_lag < 0.2, (p_plain, p_lag)
    assert float(lag["lagrange"]["lambda"]) > 0.0 and float(lag["lagrange"]["mu"]) == pytest.approx(1.0, rel=1e-3)
    assert "lagrange_multiplier" in metrics


def test_copt_weights_reported_in_range():
    _, _, metrics = _train_risky(shaping(copt=True, copt_threshold=0.5, cost_discount=0.9), updates=3)
    assert 0.0 <= float(metrics["copt_weight_mean"]) <= float(metrics["copt_weight_max"]) <= 1.0


def test_shaping_needs_its_critics():
    with pytest.raises(ValueError, match="cost"):
        fast = OptimizerConfig(1e-3, 1e-5, 100.0)
        extr = CriticSpec("extr", "reward", "cont", AC.discount, 1.0, opt=fast, **SLOW)
        ImagActorCritic(AC, (extr,), RiskyWorld(3, True), 3, True, shaping=shaping(copt=True))


# ------------------------------------------------------------------------------------------ learner level

SPACE = ({"vec": (6,)}, 3, True)


def _learner(**changes):
    cfg = size_config("debug")
    return Agent(dataclasses.replace(cfg, **changes), *SPACE)


def test_seed_flag_combination_trains():
    """``--penalty_coeff 0.8 --plpg True --normalise_ret False --penl_critic_type vfunction`` plus COPT."""
    cfg = size_config("debug")
    agent = _learner(
        penalty=dataclasses.replace(DEBUG.penalty, penalty_coeff=0.8, plpg=True, copt=True),
        actor_critic=dataclasses.replace(cfg.actor_critic, normalise_ret=False),
    )
    assert [c.name for c in agent.task.critics] == ["extr", "cost", "penl"]
    penl = agent.task.critics[2]
    assert (penl.reward, penl.scale, penl.cont) == ("neg_cost", 0.8, "cont")
    state = agent.init(jax.random.PRNGKey(0))
    new, metrics = agent.jit_train_step()(state, agent.dummy_batch(4, 8), jax.random.PRNGKey(1))
    assert 1e-6 <= float(metrics["task/plpg_weight_min"]) <= float(metrics["task/plpg_weight_mean"]) <= 1.0
    assert 0.0 <= float(metrics["task/copt_weight_mean"]) <= 1.0
    assert "penl" in new["task"]["retnorm"] and "task/penl_critic_loss" in metrics
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_penl_with_safety_critic_params_and_shaping_errors():
    s = size_config("debug").safety
    critics = task_critics(
        DEBUG.replace(penalty=dataclasses.replace(DEBUG.penalty, penalty_coeff=1.0, use_safety_critic_params=True))
    )
    penl = critics[-1]
    assert (penl.cont, penl.discount, penl.opt) == ("safe_cont", s.discount, s.safety_critic_opt)
    unshielded = size_config("debug").replace(safety=dataclasses.replace(s, shielding=False))
    with pytest.raises(ValueError, match="plpg needs the safe policy"):
        task_shaping(unshielded.replace(penalty=dataclasses.replace(DEBUG.penalty, plpg=True)))
    no_boot = size_config("debug").replace(safety=dataclasses.replace(s, shield_bootstrap=False))
    with pytest.raises(ValueError, match="copt needs the cost critic"):
        task_shaping(no_boot.replace(penalty=dataclasses.replace(DEBUG.penalty, copt=True)))


def test_lagrangian_learner_state_and_step():
    s = size_config("debug").safety
    agent = _learner(
        safety=dataclasses.replace(s, shielding=False),
        lagrangian=dataclasses.replace(DEBUG.lagrangian, enabled=True, cost_threshold=0.5),
    )
    assert agent.safe is None
    cost = agent.task.critics[1]
    assert (cost.name, cost.cont, cost.members, cost.scale) == ("cost", "cont", 1, 0.0)
    state = agent.init(jax.random.PRNGKey(0))
    assert float(state["task"]["lagrange"]["lambda"]) == pytest.approx(0.01)
    new, metrics = agent.jit_train_step()(state, agent.dummy_batch(4, 8), jax.random.PRNGKey(1))
    assert float(new["task"]["lagrange"]["mu"]) == 1.0  # max(mu * (1 + pow), 1)
    assert float(new["task"]["lagrange"]["lambda"]) >= 0.0
    assert "task/penalty_mean" in metrics
