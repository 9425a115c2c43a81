"""The shield: cost-to-go against hand computation, p̂ against a slow per-trace reference on the same imagined
states, override exactly when the rule says, with real (debug-size) modules."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ambs_verify.agents import rssm as R
from ambs_verify.agents.agent import Agent
from ambs_verify.agents.distributions import symlog, twohot_bins
from ambs_verify.agents.shield import (
    ShieldConfig,
    discounted_cost_to_go,
    model_violation_counts,
    shield_decision,
    violation_threshold,
)
from ambs_verify.config import ConfigError, resolve
from ambs_verify.estimators import upper_bound
from ambs_verify.estimators.threshold_test import ThresholdTest
from ambs_verify.rollout.agents import shield_config, size_config

N_ENVS, OBS = 3, 36
PAPER = shield_config(resolve([], {"safety.cost_val": 10.0}))  # the defaults block: the paper's shield, C = 10


def shield(**changes) -> ShieldConfig:
    """The paper's shield with ``changes`` (checked by ShieldConfig as a config's would be)."""
    return dataclasses.replace(PAPER, **changes)


@pytest.fixture(scope="module")
def agent():
    ag = Agent(size_config("debug"), {"vector": (OBS,)}, 4, True)
    state = ag.init(jax.random.PRNGKey(0))
    obs = {"vector": jax.nn.one_hot(jnp.array([0, 7, 20]), OBS)}
    post = ag.observe_step(state, ag.initial_carry(state, N_ENVS), obs, jnp.ones(N_ENVS, bool), jax.random.PRNGKey(1))
    return ag, state, post


def with_cost_bias(state, value: float):
    """A copy of the learner state whose cost head predicts ``value`` everywhere (all mass on its bin)."""
    bins = np.asarray(twohot_bins())
    target = int(np.argmin(np.abs(bins - float(symlog(jnp.float32(value))))))
    bias = np.full(bins.shape, -30.0, np.float32)
    bias[target] = 30.0
    params = jax.tree.map(lambda x: x, state["wm"]["params"])
    params["cost"]["out"]["Dense_0"]["bias"] = jnp.asarray(bias)
    params["cost"]["out"]["Dense_0"]["kernel"] = jnp.zeros_like(params["cost"]["out"]["Dense_0"]["kernel"])
    return {**state, "wm": {**state["wm"], "params": params}}


def test_violation_threshold_matches_the_paper():
    assert violation_threshold(shield()) == pytest.approx(10 * (1 - 1 / 333) ** 30)
    assert violation_threshold(shield()) == pytest.approx(9.1372, abs=1e-4)


def test_discounted_cost_to_go_by_hand():
    g = 0.5
    cost = jnp.array([[1.0, 0.0], [2.0, 4.0], [3.0, 8.0]])  # H = 3, two traces
    cont = jnp.array([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    boot = jnp.array([10.0, 10.0])
    out = discounted_cost_to_go(cost, cont, boot, g)
    # trace 0: 1 + .5*2 + .25*3 + .125*10 = 4.0; trace 1: 0 + .5*4 + (cont_2 = 0 stops the rest) = 2.0
    np.testing.assert_allclose(out, [4.0, 2.0])


def slow_reference(agent, state, post, config, key):
    """Per env, per trace, per step in Python on the same imagined states as the shield."""
    ag, m, H = agent, config.samples, config.imag_horizon
    starts = jax.tree.map(lambda x: jnp.repeat(x, m, axis=0), post)
    states, _ = ag.wm.imagine(state["wm"]["params"], ag.task.policy(state["task"]["actor"]), starts, H, key)
    feat = np.asarray(R.feat(states))
    params = state["wm"]["params"]
    cost = np.clip(np.asarray(ag.wm.cost(params, jnp.asarray(feat))), 0, config.cost_val)
    cont = np.asarray(ag.wm.cont(params, jnp.asarray(feat)))
    boot = np.clip(np.asarray(ag.task.value(state["task"], "cost", jnp.asarray(feat[-1]))), 0, config.cost_val)
    threshold = config.cost_val * config.discount**config.threshold_horizon
    p = []
    for env in range(N_ENVS):
        hits = 0
        for j in range(m):
            row = env * m + j  # env-major tiling
            g, alive = 0.0, 1.0
            for t in range(1, H + 1):
                g += config.discount ** (t - 1) * alive * cost[t, row]
                alive *= cont[t, row]
            g += config.discount**H * alive * boot[row]
            hits += g > threshold
        p.append(hits / m)
    return np.array(p)


@pytest.mark.parametrize(("value", "expected"), [(0.0, [0, 0, 0]), (2.0, [0.625, 0.625, 0.75])])
def test_p_hat_equals_slow_reference(agent, value, expected):
    ag, state, post = agent
    # A predicted cost of 2 per step crosses C * gamma^T = 9.14 within 5 steps only on traces whose continue
    # head stays on, so p̂ lands strictly between 0 and 1 (the expected values pin that).
    state = with_cost_bias(state, value)
    config = shield(samples=8, imag_horizon=5, cost_val=10.0)
    key = jax.random.PRNGKey(3)
    out = shield_decision(config, ag.wm, ag.task, state["wm"]["params"], state["task"], post, key)
    np.testing.assert_allclose(np.asarray(out["p_hat"]), slow_reference(ag, state, post, config, key))
    np.testing.assert_allclose(np.asarray(out["p_hat"]), expected)
    assert out["p_hat"].shape == (N_ENVS,) and np.all(np.asarray(out["samples"]) == 8)


def test_overrides_exactly_when_the_rule_says(agent):
    ag, state, post = agent
    key = jax.random.PRNGKey(4)
    config = shield(samples=16, imag_horizon=5)
    safe = shield_decision(config, ag.wm, ag.task, state["wm"]["params"], state["task"], post, key)
    assert np.all(np.asarray(safe["p_hat"]) == 0) and not np.any(np.asarray(safe["override"]))
    # A cost head that predicts a violation (cost C = 10) at every imagined step: every trace violates.
    danger = with_cost_bias(state, 10.0)
    out = shield_decision(config, ag.wm, ag.task, danger["wm"]["params"], danger["task"], post, key)
    assert np.all(np.asarray(out["p_hat"]) == 1) and np.all(np.asarray(out["override"]))


@pytest.mark.parametrize("event", ["discounted", "within"])
def test_a_non_finite_model_is_judged_unsafe(agent, event):
    ag, state, post = agent
    # A diverged cost head (NaN everywhere): every trace counts as violating, so the shield overrides.
    params = jax.tree.map(lambda x: x, state["wm"]["params"])
    params["cost"]["out"]["Dense_0"]["bias"] = jnp.full_like(params["cost"]["out"]["Dense_0"]["bias"], jnp.nan)
    broken = {**state, "wm": {**state["wm"], "params": params}}
    config = shield(samples=16, imag_horizon=5, event=event)
    out = shield_decision(config, ag.wm, ag.task, params, broken["task"], post, jax.random.PRNGKey(4))
    assert np.all(np.asarray(out["p_hat"]) == 1) and np.all(np.asarray(out["override"]))


def test_bound_rule_uses_the_certified_kl_bound(agent):
    ag, state, post = agent
    key = jax.random.PRNGKey(5)
    config = shield(samples=16, imag_horizon=5, rule="bound", delta_safe=0.2, bound_delta=0.01)
    out = shield_decision(config, ag.wm, ag.task, state["wm"]["params"], state["task"], post, key)
    # k = 0 of 16: the KL upper bound is 1 - 0.01**(1/16) = 0.2501 > 0.2, so even p̂ = 0 overrides.
    np.testing.assert_allclose(np.asarray(out["bound"]), upper_bound(0, 16, 0.01, "kl"), atol=1e-6)
    assert np.all(np.asarray(out["override"]))
    relaxed = shield(samples=16, imag_horizon=5, rule="bound", delta_safe=0.3, bound_delta=0.01)
    out = shield_decision(relaxed, ag.wm, ag.task, state["wm"]["params"], state["task"], post, key)
    assert not np.any(np.asarray(out["override"]))


SEQUENTIAL = {"samples": 64, "imag_horizon": 5, "cost_val": 10.0, "rule": "sequential", "eps": 0.2}
SEQUENTIAL |= {"bound_delta": 0.05, "batch": 8}


@pytest.fixture(scope="module", params=[4, 1], ids=["growth4", "growth1"])
def sequential_fn(agent, request):
    """The sequential rule jitted once per look schedule (the parametrised test changes only the state)."""
    ag, _, _ = agent
    config = shield(**SEQUENTIAL, growth=request.param)
    fn = jax.jit(lambda s, p, k: shield_decision(config, ag.wm, ag.task, s["wm"]["params"], s["task"], p, k))
    return fn, ThresholdTest(0.2, 0.05, 8, 64, growth=request.param)


@pytest.mark.parametrize(("value", "decision"), [(0.0, "safe"), (10.0, "unsafe"), (2.0, None)])
def test_sequential_rule_stops_at_the_first_look_the_test_decides(agent, sequential_fn, value, decision):
    """Looks at 8, 32 and 64 traces (batch 8, growth 4) and at every 8 traces (growth 1): a model that predicts no
    cost is judged safe, one that predicts a violation everywhere unsafe, each at the first look where the threshold
    test can decide; p̂ is k/n over the traces drawn. A mixed model (p̂ near 0.6 at the fixed rule) is decided by the
    counts, per env."""
    _, state, post = agent
    state = with_cost_bias(state, value)
    sequential_fn, test = sequential_fn
    assert test.looks.tolist() == ([8, 32, 64] if test.growth == 4 else list(range(8, 65, 8)))
    out = jax.tree.map(np.asarray, sequential_fn(state, post, jax.random.PRNGKey(6)))
    k, n = out["violations"], out["samples"]
    np.testing.assert_allclose(out["p_hat"], k / n)
    looks = np.searchsorted(test.looks, n)
    assert np.all(test.looks[looks] == n)  # every env stopped at a look
    codes = test.decide(k, looks)
    assert np.all((codes != 0) == out["decided"]) and np.all(out["decided"] | (n == 64))
    assert np.all(out["override"] == ((codes == 2) | ((codes == 0) & (k / n > 0.2))))
    if decision == "safe":  # k = 0 until the first look whose safe threshold admits it
        assert np.all(k == 0) and np.all(n == test.looks[np.argmax(test.safe_max >= 0)]) and not out["override"].any()
    elif decision == "unsafe":
        first = test.looks[np.argmax(test.unsafe_min <= test.looks)]
        assert np.all(k == n) and np.all(n == first) and out["override"].all()
    else:  # some traces violate, some do not: decided unsafe wherever k reached the look's threshold
        assert np.all((0 < k) & (k < n)) and np.all(out["override"])
    with pytest.raises(ValueError, match=r"must be a multiple of shield\.batch"):
        shield(rule="sequential", samples=60, batch=8)
    with pytest.raises(ValueError, match=r"set shield\.candidates 0"):
        shield(rule="sequential", samples=64, batch=8, candidates=2)
    with pytest.raises(ConfigError, match=r"shield\.samples \(100\) must be a multiple of shield\.batch \(32\)"):
        shield_config(resolve([], {"shield.rule": "sequential", "shield.samples": 100}))


def test_shield_is_one_jitted_call(agent):
    ag, state, post = agent
    config = shield(samples=32, imag_horizon=4)
    fn = jax.jit(lambda s, p, k: shield_decision(config, ag.wm, ag.task, s["wm"]["params"], s["task"], p, k))
    out = fn(state, post, jax.random.PRNGKey(0))
    assert out["p_hat"].shape == (N_ENVS,)
    with pytest.raises(ValueError, match="accepted: estimate, bound, sequential"):
        shield(rule="vote")


@pytest.mark.parametrize("value", [0.0, 0.3, 0.6, 10.0])
def test_within_event_counts_what_the_certificate_counts(agent, value):
    """``event="within"``: T imagined steps, a trace violates at a predicted cost >= C/2 while alive: the same
    traces (same key, same tiling) and the same count as the certificate's model level, whatever the critic says.
    With C = 1, a constant predicted cost of 0.3 never counts (the discounted test adds 0.3 per step and flags
    every live trace after 4 steps), 0.6 counts on every trace alive at step 1."""
    ag, state, post = agent
    state = with_cost_bias(state, value)
    config = shield(samples=8, imag_horizon=5, threshold_horizon=7, cost_val=1.0, event="within")
    key = jax.random.PRNGKey(6)
    out = shield_decision(config, ag.wm, ag.task, state["wm"]["params"], state["task"], post, key)
    counts = model_violation_counts(ag.wm, ag.task, state["wm"]["params"], state["task"], post, 8, 7, 1.0, key)
    np.testing.assert_array_equal(np.asarray(out["violations"]), np.asarray(counts))
    expected = 8 if value >= 0.5 else 0
    assert np.all(np.asarray(out["violations"]) == expected)
    discounted = shield_decision(
        shield(samples=8, imag_horizon=7, threshold_horizon=7, cost_val=1.0),
        ag.wm,
        ag.task,
        state["wm"]["params"],
        state["task"],
        post,
        key,
    )
    if value == 0.3:
        assert np.all(np.asarray(discounted["p_hat"]) > 0)  # the cost rate crosses the discounted threshold


def test_unknown_shield_event_is_rejected():
    with pytest.raises(ValueError, match="accepted: discounted, within"):
        shield(event="soon")


def test_ranked_candidates_start_with_the_plain_sample_and_are_distinct():
    from ambs_verify.agents.distributions import onehot_ranked, onehot_sample

    logits = jnp.log(jnp.array([[0.7, 0.1, 0.15, 0.05]] * 64))
    key = jax.random.PRNGKey(7)
    ranked = np.asarray(onehot_ranked(key, logits, 4))  # (64, 4, 4)
    np.testing.assert_allclose(ranked[:, 0], np.asarray(onehot_sample(key, logits)), atol=1e-6)  # straight-through
    np.testing.assert_array_equal(ranked.sum(axis=1), np.ones((64, 4)))  # a permutation of the 4 actions


def test_candidates_execute_the_first_action_judged_safe(agent):
    """``candidates`` K: the decision executes the first candidate whose own traces (first imagined action = the
    candidate, then the task policy) stay below eps, reports the proposal's p̂, and overrides only when no
    candidate is safe. Checked candidate by candidate against the same imagined traces, with a cost head whose
    prediction depends on the state so candidates differ."""
    from ambs_verify.agents.actor_critic import actor_candidates
    from ambs_verify.agents.shield import _trace_outcomes

    ag, state, post = agent
    params = jax.tree.map(lambda x: x, state["wm"]["params"])
    dense = params["cost"]["out"]["Dense_0"]
    dense["kernel"] = jax.random.normal(jax.random.PRNGKey(8), dense["kernel"].shape) * 3.0
    state = {**state, "wm": {**state["wm"], "params": params}}
    m, k = 16, 4
    config = shield(samples=m, imag_horizon=3, threshold_horizon=3, cost_val=1.0, event="within", candidates=k)
    key = jax.random.PRNGKey(9)
    out = shield_decision(config, ag.wm, ag.task, params, state["task"], post, key)
    k_traces, k_actions = jax.random.split(key)
    cands = actor_candidates(ag.task.dist(state["task"]["actor"], R.feat(post)), k_actions, k)  # (N, K, A)
    starts = jax.tree.map(lambda x: jnp.repeat(x, k * m, axis=0), post)
    first = jnp.repeat(cands.reshape(N_ENVS * k, -1), m, axis=0)
    bad = np.asarray(_trace_outcomes(config, ag.wm, ag.task, params, state["task"], starts, first, k_traces))
    p = bad.reshape(N_ENVS, k, m).mean(axis=2)
    assert 0 < p.mean() < 1, "the cost head should make some candidates safe and others not"
    for env in range(N_ENVS):
        safe = [c for c in range(k) if p[env, c] <= config.eps]
        assert bool(out["override"][env]) == (not safe)
        assert out["p_hat"][env] == pytest.approx(p[env, 0])
        if safe:
            np.testing.assert_array_equal(np.asarray(out["action"][env]), np.asarray(cands[env, safe[0]]))
            assert bool(out["replaced"][env]) == (safe[0] > 0)


def test_zero_candidates_judge_the_policy_as_the_paper(agent):
    ag, state, post = agent
    out = shield_decision(
        shield(samples=8, imag_horizon=3),
        ag.wm,
        ag.task,
        state["wm"]["params"],
        state["task"],
        post,
        jax.random.PRNGKey(0),
    )
    assert "action" not in out and "replaced" not in out
    with pytest.raises(ValueError, match="candidates must be >= 0"):
        shield(candidates=-1)
