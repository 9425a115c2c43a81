"""The whole learner (debug size): train step on image / vector / mixed observations, robustness to extreme
rewards and costs, determinism, one-pytree state, and the size presets' parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from ambs_verify.agents import Agent
from ambs_verify.rollout.agents import MODEL_SIZES, size_config

CFG = size_config("debug")
B, T = 4, 8
# Full train steps are compiled twice only (mixed image + vector with discrete actions; vector with continuous
# actions); image-only and vector-only world models are covered in test_agents_world_model.py.
SPACES = {
    "mixed": ({"image": (16, 16, 3), "vec": (6,)}, 3, True),
    "vector": ({"vec": (6,)}, 2, False),
}


@pytest.fixture(scope="module")
def compiled():
    """One agent and one compiled (state-donating) train step per observation kind, shared by the tests."""
    out = {}
    for kind, (space, act_dim, discrete) in SPACES.items():
        agent = Agent(CFG, space, act_dim, discrete)
        out[kind] = (agent, agent.jit_train_step())
    return out


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating))


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_train_step_shapes_and_finite(compiled, kind):
    agent, step = compiled[kind]
    state = agent.init(jax.random.PRNGKey(0))
    structure = jax.tree.structure(state)
    specs = [(x.shape, x.dtype) for x in jax.tree.leaves(state)]
    batch = agent.dummy_batch(B, T)
    new, metrics = step(state, batch, jax.random.PRNGKey(1))
    assert int(new["step"]) == 1
    assert jax.tree.structure(new) == structure
    assert [(x.shape, x.dtype) for x in jax.tree.leaves(new)] == specs
    assert all(v.shape == () for v in metrics.values())
    assert _finite(metrics) and _finite(new)
    for key in (
        "wm/model_loss",
        "wm/cost_loss",
        "wm/safe_cont_loss",
        "task/extr_critic_loss",
        "task/cost_critic_loss",
        "safe/cost_critic_loss",
        "safe/actor_loss",
    ):
        assert key in metrics
    # Parameters stay float32; the twin cost critic holds two members.
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new["wm"]["params"]))
    assert jax.tree.leaves(new["task"]["critics"]["cost"]["params"])[0].shape[0] == 2
    # The slow critics are copied at the first update.
    for beh in ("task", "safe"):
        for cs in new[beh]["critics"].values():
            for p, s in zip(jax.tree.leaves(cs["params"]), jax.tree.leaves(cs["slow"]), strict=True):
                np.testing.assert_array_equal(p, s)


def test_extreme_rewards_and_costs_stay_finite(compiled):
    agent, step = compiled["vector"]
    state = agent.init(jax.random.PRNGKey(0))
    batch = agent.dummy_batch(B, T, seed=3)
    # numpy float32 inputs: same dtypes as the first call, so the compiled step is reused.
    sign = np.where(np.arange(B * T).reshape(B, T) % 2 == 0, 1.0, -1.0).astype(np.float32)
    batch["reward"] = sign * np.float32(1e7)
    batch["cost"] = np.abs(sign) * np.float32(1e6)
    batch["vec"] = np.asarray(batch["vec"]) * np.float32(1e8)
    for i in range(3):
        state, metrics = step(state, batch, jax.random.PRNGKey(i))
        assert _finite(metrics), {k: float(v) for k, v in metrics.items()}
    assert _finite(state)


def test_determinism_given_seeds(compiled):
    agent, step = compiled["mixed"]
    batch = agent.dummy_batch(B, T)
    runs = []
    for _ in range(2):
        state = agent.init(jax.random.PRNGKey(7))
        state, metrics = step(state, batch, jax.random.PRNGKey(8))
        runs.append((state, metrics))
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    other = agent.init(jax.random.PRNGKey(9))
    ref = agent.init(jax.random.PRNGKey(7))
    same = [np.array_equal(a, b) for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(ref), strict=True)]
    assert not all(same)  # a different seed gives different parameters


def test_state_is_one_saveable_pytree(compiled):
    agent, step = compiled["vector"]
    state = agent.init(jax.random.PRNGKey(0))
    state, _ = step(state, agent.dummy_batch(B, T), jax.random.PRNGKey(1))
    blob = serialization.to_bytes(state)
    restored = serialization.from_bytes(agent.init(jax.random.PRNGKey(5)), blob)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)
    # A restored state continues training exactly like the original.
    batch = agent.dummy_batch(B, T, seed=2)
    leaf = jax.tree.leaves(state["wm"]["params"])[0]
    _, m1 = step(state, batch, jax.random.PRNGKey(3))
    assert leaf.is_deleted()  # the state's buffers were donated to the update
    _, m2 = step(restored, batch, jax.random.PRNGKey(3))
    np.testing.assert_array_equal(m1["wm/model_loss"], m2["wm/model_loss"])


# Reference DreamerV3 (2023) model sizes for 64x64x3 images: 18M, 37M, 77M, 200M parameters.
REFERENCE_M = {"small": 18, "medium": 37, "large": 77, "xlarge": 200}


@pytest.mark.parametrize("size", MODEL_SIZES)
def test_preset_parameter_counts(size):
    agent = Agent(size_config(size), {"image": (64, 64, 3)}, 18, True)
    shapes = jax.eval_shape(agent.init, jax.random.PRNGKey(0))  # no memory, no compile
    counts = agent.param_counts(shapes)
    assert counts["total"] > counts["dreamerv3"] > 0
    if size in REFERENCE_M:
        # The DreamerV3-equivalent part (world model without the AMBS heads + task actor + critic) is within
        # 20 % of the published size; the AMBS extras come on top.
        assert abs(counts["dreamerv3"] / 1e6 - REFERENCE_M[size]) / REFERENCE_M[size] < 0.2, counts
    else:
        assert counts["total"] < 1e6
