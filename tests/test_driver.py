"""The env driver: row layout, episode ends (termination vs truncation), labels, extras timing, resume state."""

from __future__ import annotations

import gymnasium as gym
import jax
import numpy as np
import pytest

from ambs_verify.envs.registry import make_env
from ambs_verify.rollout.driver import Driver, key_observation, random_policy

UP, RIGHT, DOWN, LEFT = range(4)


def scripted(plans):
    """A policy playing fixed action lists per env; its extras are the call index (to check their timing)."""
    calls = {"t": 0}

    def policy(obs, carry, rng):
        t = calls["t"]
        calls["t"] += 1
        actions = [plan[t] if t < len(plan) else UP for plan in plans]
        return (
            np.array(actions),
            carry,
            {"t": np.full(len(plans), float(t)), "flag": np.array([t % 2 == 0] * len(plans))},
        )

    return policy


def test_rows_episode_ends_and_labels():
    # env 0 walks to the goal (termination) past the hazard's side; env 1 steps on the hazard and is truncated.
    envs = [make_env("grid_tiny", slip=0.0), make_env("grid_tiny", slip=0.0, max_steps=2)]
    driver = Driver(envs, seed=0)
    policy = scripted([[RIGHT, RIGHT, DOWN, DOWN, UP], [RIGHT, DOWN, UP, UP, UP]])
    results = [driver.step(policy, None) for _ in range(5)]
    rows = [r.row for r in results]
    assert set(rows[0]) == {"vector", "reward", "cost", "is_first", "is_last", "is_terminal", "label/hazard", "action"}
    assert rows[0]["vector"].shape == (2, 9) and rows[0]["action"].shape == (2, 4)
    np.testing.assert_array_equal(rows[0]["action"], np.eye(4, dtype=np.float32)[[RIGHT, RIGHT]])
    np.testing.assert_array_equal(rows[0]["is_first"], [True, True])
    flags = lambda key, env: [bool(r[key][env]) for r in rows]  # noqa: E731
    # env 0: rows 0..4 = start, (0,1), (0,2), (1,2), goal -> terminal
    assert flags("is_last", 0) == [False, False, False, False, True]
    assert flags("is_terminal", 0) == [False, False, False, False, True]
    assert [float(r["reward"][0]) for r in rows] == [0, 0, 0, 0, 1]
    # env 1: start, (0,1), hazard (1,1) at the time limit -> last but not terminal; then a reset row
    assert flags("is_last", 1) == [False, False, True, False, False]
    assert flags("is_terminal", 1) == [False] * 5
    assert flags("label/hazard", 1) == [False, False, True, False, False]
    assert float(rows[2]["cost"][1]) == 1.0
    assert flags("is_first", 1) == [True, False, False, True, False] and float(rows[3]["reward"][1]) == 0.0
    # episode statistics, emitted with the last row
    assert [len(r.episodes) for r in results] == [0, 0, 1, 0, 1]
    trunc, goal = results[2].episodes[0], results[4].episodes[0]
    assert (trunc.env, trunc.length, trunc.cost, trunc.violations, trunc.label_violations) == (
        1,
        2,
        1.0,
        1,
        {"hazard": 1},
    )
    assert (goal.env, goal.length, goal.ret, goal.violations, goal.total_violations) == (0, 4, 1.0, 0, 1)
    # extras belong to the step they were computed for and are averaged over executed steps only
    assert [float(r.extras["t"][0]) for r in results] == [0, 1, 2, 3, 4]
    assert trunc.extras == {"t_mean": 0.5, "flag_rate": 0.5}
    assert goal.extras == {"t_mean": 1.5, "flag_rate": 0.5}
    metrics = goal.metrics()
    assert metrics["episode/return"] == 1.0 and metrics["episode/violations/hazard"] == 0
    assert metrics["episode/total_violations"] == 1 and metrics["episode/t_mean"] == 1.5


def _run(driver, steps, seed):
    policy = random_policy(driver.act_space, driver.num_envs)
    rows = []
    for t in range(steps):
        rows.append(driver.step(policy, jax.random.PRNGKey(seed * 1000 + t)).row)
    return rows


def _assert_rows_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_state_dict_continues_bit_for_bit():
    make = lambda: [make_env("grid", slip=0.3, max_steps=15) for _ in range(3)]  # noqa: E731
    driver = Driver(make(), seed=4)
    _run(driver, 20, seed=1)
    saved = driver.dumps()
    expected = _run(driver, 40, seed=2)
    fresh = Driver(make(), seed=4)
    assert fresh.loads(saved) is True
    _assert_rows_equal(_run(fresh, 40, seed=2), expected)
    assert fresh.total_violations == driver.total_violations


def test_vector_env_matches_list_of_envs():
    make = lambda: make_env("grid", slip=0.3, max_steps=12)  # noqa: E731
    listed = Driver([make() for _ in range(2)], seed=9)
    vector = Driver(gym.vector.SyncVectorEnv([make, make]), seed=9)
    _assert_rows_equal(_run(vector, 40, seed=3), _run(listed, 40, seed=3))
    with pytest.warns(UserWarning, match="fresh episodes"):
        assert vector.load_state_dict(vector.state_dict()) is False


def test_random_policy_and_spaces():
    box = gym.spaces.Box(-2.0, 2.0, shape=(3,), dtype=np.float32)
    actions, _, extras = random_policy(box, 5)(None, None, jax.random.PRNGKey(0))
    assert actions.shape == (5, 3) and actions.dtype == np.float32 and np.all(np.abs(actions) <= 2) and extras == {}
    same, _, _ = random_policy(box, 5)(None, None, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(actions, same)
    discrete, _, _ = random_policy(gym.spaces.Discrete(4), 100)(None, None, np.random.default_rng(0))
    assert set(discrete.tolist()) == {0, 1, 2, 3}
    assert list(key_observation(gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)).spaces) == ["image"]
    assert list(key_observation(gym.spaces.Box(0, 1, (5,))).spaces) == ["vector"]


def test_policy_may_return_one_hot_actions():
    driver = Driver([make_env("grid_tiny", slip=0.0)], seed=0)
    result = driver.step(lambda obs, carry, rng: (np.eye(4)[[DOWN]], carry, {}), None)
    np.testing.assert_array_equal(result.row["action"], np.eye(4, dtype=np.float32)[[DOWN]])
    assert driver.step(lambda obs, carry, rng: ([UP], carry, {}), None).row["vector"][0, 3] == 1.0  # moved down
