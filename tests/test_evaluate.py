"""The shared acting evaluator and the DreamerV3 agents' acting modes."""

import jax
import numpy as np
import pytest

from ambs_verify.agents.interface import bind
from ambs_verify.config import resolve
from ambs_verify.envs.grid import GridWorld
from ambs_verify.envs.registry import make_env
from ambs_verify.rollout.acting import evaluate
from ambs_verify.rollout.agents import build_agent
from ambs_verify.rollout.driver import key_observation, random_policy


def test_random_agent_matches_the_exact_episode_means():
    """One episode per environment, counted as the driver counts them: 400 uniform-random episodes on the grid
    agree with the exact expected return and violations within 4 standard errors, and the run is seeded."""
    n = 400
    ev = evaluate(random_policy(GridWorld().action_space, n), lambda: make_env("grid"), n, seed=7)
    assert ev.returns.shape == ev.violations.shape == ev.lengths.shape == (n,) and ev.override_rate is None
    assert np.all((ev.lengths >= 1) & (ev.lengths <= 100))
    exact_return, exact_violations = GridWorld().exact_episode_means(GridWorld().uniform_policy())
    for exact, samples in ((exact_return, ev.returns), (exact_violations, ev.violations)):
        assert abs(samples.mean() - exact) < 4 * samples.std() / np.sqrt(n)
    again = evaluate(random_policy(GridWorld().action_space, n), lambda: make_env("grid"), n, seed=7)
    assert np.array_equal(again.violations, ev.violations)
    summary = ev.summary()
    assert summary["episodes"] == n and summary["return"] == pytest.approx(ev.returns.mean())


def _initialised(name: str):
    """``(agent, state)`` of the quickstart's ``--agent NAME`` for the grid."""
    env = make_env("grid")
    agent = build_agent(resolve(["quickstart"], {"agent": name}))
    return agent, agent.init(jax.random.PRNGKey(0), key_observation(env.observation_space), env.action_space)


@pytest.mark.end_to_end  # compiles the shielded, task and safe acting functions separately (34 s): make test-learning
def test_acting_modes_of_the_dreamer_agents():
    ambs, dreamer = _initialised("ambs"), _initialised("dreamer")
    shielded = evaluate(bind(*ambs), lambda: make_env("grid"), 3, seed=1)
    assert shielded.override_rate is not None and np.all((0 <= shielded.override_rate) & (shielded.override_rate <= 1))
    explore = evaluate(bind(*ambs, "explore"), lambda: make_env("grid"), 3, seed=1)  # AMBS learns shielded
    assert np.array_equal(explore.override_rate, shielded.override_rate)
    for mode in ("task", "safe"):
        assert evaluate(bind(*ambs, mode), lambda: make_env("grid"), 3, seed=1).override_rate is None
    assert evaluate(bind(*dreamer), lambda: make_env("grid"), 2, seed=1).override_rate is None
    with pytest.raises(ValueError, match=r"accepted: explore, deployed, task$"):  # DreamerV3 has no safe policy
        bind(*dreamer, "safe")
    with pytest.raises(ValueError, match="accepted: explore, deployed, task, safe"):
        bind(*ambs, "greedy")
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        evaluate(bind(*ambs), lambda: make_env("grid"), 0)


def test_one_interface_acts_for_every_family():
    """DreamerV3 and a baseline share ``init`` / ``policy(state, carry, obs, rng, mode)``: the same call drives
    both, the policy leaves the state as it was, and only the recurrent agent keeps a carry."""
    env = make_env("grid")
    obs = {"vector": np.stack([env.reset(seed=i)[0] for i in range(3)]), "is_first": np.ones(3, bool)}
    obs["is_last"] = np.zeros(3, bool)
    for name, recurrent in (("dreamer", True), ("dqn", False)):
        agent, state = _initialised(name)
        before = jax.tree.map(np.array, state)
        for mode in ("explore", "deployed"):
            action, carry, extras = agent.policy(state, None, obs, jax.random.PRNGKey(1), mode)
            assert len(action) == 3 and (carry is not None) == recurrent
            again = agent.policy(state, None, obs, jax.random.PRNGKey(1), mode)[0]
            assert np.array_equal(np.asarray(action), np.asarray(again))  # a pure function of its inputs
        assert jax.tree.all(jax.tree.map(np.array_equal, before, jax.tree.map(np.array, state)))
        assert set(extras) == (set() if recurrent else {"epsilon"})
