"""The shared acting evaluator and the DreamerV3 agents' acting modes."""

import jax
import numpy as np
import pytest

from ambs_verify.config import resolve
from ambs_verify.envs.grid import GridWorld
from ambs_verify.envs.registry import make_env
from ambs_verify.rollout.acting import evaluate
from ambs_verify.rollout.agents import build_agent
from ambs_verify.rollout.driver import key_observation, random_policy


class RandomAgent:
    def __init__(self, episodes: int):
        self.policy = random_policy(GridWorld().action_space, episodes)


def test_random_agent_matches_the_exact_episode_means():
    """One episode per environment, counted as the driver counts them: 400 uniform-random episodes on the grid
    agree with the exact expected return and violations within 4 standard errors, and the run is seeded."""
    n = 400
    ev = evaluate(RandomAgent(n), lambda: make_env("grid"), n, seed=7)
    assert ev.returns.shape == ev.violations.shape == ev.lengths.shape == (n,) and ev.override_rate is None
    assert np.all((ev.lengths >= 1) & (ev.lengths <= 100))
    exact_return, exact_violations = GridWorld().exact_episode_means(GridWorld().uniform_policy())
    for exact, samples in ((exact_return, ev.returns), (exact_violations, ev.violations)):
        assert abs(samples.mean() - exact) < 4 * samples.std() / np.sqrt(n)
    again = evaluate(RandomAgent(n), lambda: make_env("grid"), n, seed=7)
    assert np.array_equal(again.violations, ev.violations)
    summary = ev.summary()
    assert summary["episodes"] == n and summary["return"] == pytest.approx(ev.returns.mean())


def test_acting_modes_of_the_dreamer_agents():
    def agent_for(name):
        config = resolve(["quickstart"], {"agent": name})
        agent = build_agent(config)
        env = make_env("grid")
        agent.init(jax.random.PRNGKey(0), key_observation(env.observation_space), env.action_space)
        return agent

    ambs = agent_for("ambs")
    shielded = evaluate(ambs, lambda: make_env("grid"), 3, seed=1, mode="shielded")
    assert shielded.override_rate is not None and np.all((0 <= shielded.override_rate) & (shielded.override_rate <= 1))
    for mode in ("task", "safe"):
        assert evaluate(ambs, lambda: make_env("grid"), 3, seed=1, mode=mode).override_rate is None
    dreamer = agent_for("dreamer")
    assert evaluate(dreamer, lambda: make_env("grid"), 2, seed=1).override_rate is None
    with pytest.raises(ValueError, match="no safe policy"):
        evaluate(dreamer, lambda: make_env("grid"), 2, mode="safe")
    with pytest.raises(ValueError, match="accepted: shielded, task, safe"):
        evaluate(ambs, lambda: make_env("grid"), 2, mode="greedy")
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        evaluate(ambs, lambda: make_env("grid"), 0)
