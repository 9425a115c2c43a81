"""The Safety Gym adapter on real MuJoCo: AMBS cost semantics, seeding, snapshot/restore, vision, task names."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("safety_gymnasium") is None or importlib.util.find_spec("mujoco") is None:
    pytest.skip("safety-gymnasium and mujoco are not installed", allow_module_level=True)

from ambs_verify.envs.errors import EnvConfigError
from ambs_verify.envs.safety_gym import SafetyGymEnv, build_builder, make, parse_task, task_ids

COST_VAL = 10.0
pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


@pytest.fixture(scope="module")
def env() -> SafetyGymEnv:
    # Seed 0 with actions from default_rng(0) enters a hazard within 30 agent steps (found once, deterministic).
    return make("SafetyPointGoal1-v0", cost_val=COST_VAL)


def _actions(n: int, seed: int = 0, dim: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, dim))


def _rollout(env, actions) -> list[tuple]:
    out = []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((np.array(obs, copy=True), r, info["cost"], info["labels"], term, trunc))
        if term or trunc:
            break
    return out


def _same(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(a, b, strict=True))


def test_task_names():
    assert parse_task("safetygym_SafetyPointGoal1-v0") == ("Point", "Goal", 1, False)
    assert parse_task("Safexp-CarPush2-v0") == ("Car", "Push", 2, False)
    assert parse_task("SafetyDoggoButton0Vision-v0") == ("Doggo", "Button", 0, True)
    assert len(task_ids()) == 5 * (6 * 3 + 1)
    for bad in ("SafetyPointGoal3-v0", "SafetyTankGoal1-v0", "PointGoal1"):
        with pytest.raises(EnvConfigError) as err:
            parse_task(bad)
        assert "\n" not in str(err.value) and "Point, Car, Doggo" in str(err.value)


def test_unknown_option_is_one_line():
    with pytest.raises(EnvConfigError) as err:
        make("SafetyPointGoal1-v0", repeats=2)
    assert str(err.value).startswith("unknown Safety Gym option(s) repeats; valid: observation,")
    assert "\n" not in str(err.value)


def test_spaces_and_reset(env):
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and obs.dtype == np.float32
    assert env.action_space.shape == (2,)
    assert info == {"cost": 0.0, "labels": {"hazards": False}, "violations": 0}


def test_cost_is_cost_val_times_violating_raw_steps(env):
    """Against the raw Builder stepped from the same state: cost = cost_val · Σ_repeat 1[raw cost > 0]."""
    env.reset(seed=0)
    total_violations = 0
    for action in _actions(40):
        snap = env.snapshot()
        raw_costs, raw_reward, raw_hazards = [], 0.0, 0.0
        for _ in range(env.options.repeat):
            _, r, c, *_, raw_info = env.builder.step(np.asarray(action, dtype=np.float64))
            raw_costs.append(c)
            raw_reward += r
            raw_hazards += raw_info["cost_hazards"]
        env.restore(snap)
        _, reward, _, _, info = env.step(action)
        violations = sum(c > 0 for c in raw_costs)
        assert info["cost"] == COST_VAL * violations
        assert info["violations"] == violations
        assert info["labels"] == {"hazards": violations > 0}
        assert info["cost_hazards"] == pytest.approx(raw_hazards)
        assert reward == pytest.approx(raw_reward)
        total_violations += violations
    assert total_violations > 0  # the rollout does enter a hazard


def test_episode_is_1000_raw_steps(env):
    env.reset(seed=1)
    zero = np.zeros(2)
    for t in range(1, 501):  # noqa: B007 (t is read after the loop)
        _, _, term, trunc, _ = env.step(zero)
        assert not term
        if trunc:
            break
    assert t == 500 and trunc and env.builder.steps == 1000
    with pytest.raises(RuntimeError, match="reset"):
        env.step(zero)


def test_seeding_repeats(env):
    actions = _actions(30, seed=3)
    obs_a, _ = env.reset(seed=7)
    run_a = _rollout(env, actions)
    obs_b, _ = env.reset(seed=7)
    run_b = _rollout(env, actions)
    obs_c, _ = env.reset(seed=8)
    assert np.array_equal(obs_a, obs_b) and _same(run_a, run_b)
    assert not np.array_equal(obs_a, obs_c)
    fresh = make("SafetyPointGoal1-v0", cost_val=COST_VAL, seed=7)
    assert np.array_equal(fresh.reset()[0], obs_a)  # the constructor's seed drives the first unseeded reset


def test_snapshot_restore_reproduces_100_steps(env):
    env.reset(seed=0)
    for a in _actions(20, seed=1):
        env.step(a)
    snap = env.snapshot()
    actions = _actions(100, seed=2)
    first = _rollout(env, actions)
    env.restore(snap)
    again = _rollout(env, actions)
    assert len(first) == 100 and _same(first, again)
    # Across a reset (which compiles a new MuJoCo model) the snapshot's world is rebuilt.
    env.reset(seed=5)
    env.step(actions[0])
    env.restore(snap)
    assert _same(first, _rollout(env, actions))
    assert env.steps_taken == 120


def test_image_matches_safety_gymnasium_vision():
    """Our renderer gives safety-gymnasium's own 64×64 vision image (exercises the OffScreenViewer fix)."""
    ours = make("SafetyPointGoal1Vision-v0")
    raw = build_builder(
        "SafetyPointGoal1-v0",
        {
            "agent_name": "Point",
            "observe_vision": True,
            "observation_flatten": False,
            "vision_env_conf.vision_size": (64, 64),
        },
    )
    image, _ = ours.reset(seed=4)
    raw_obs, _ = raw.reset(seed=4)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and ours.observation_space.contains(image)
    assert np.array_equal(image, raw_obs["vision"])
    for a in _actions(5, seed=4):
        image, *_ = ours.step(a)
        for _ in range(2):
            raw_obs, *_ = raw.step(a)
    assert np.array_equal(image, raw_obs["vision"])
    assert image.std() > 10  # a real scene, not a blank frame
    ours.close()


@pytest.mark.parametrize(
    ("task", "labels"),
    [
        ("SafetyCarButton1-v0", {"hazards", "gremlins", "buttons"}),
        ("SafetyDoggoPush2-v0", {"hazards", "pillars"}),
    ],
)
def test_other_robots_and_tasks_build_step_and_restore(task, labels):
    env = make(task, observation="both", image_size=32)
    obs, info = env.reset(seed=11)
    assert set(info["labels"]) == labels
    assert obs["image"].shape == (32, 32, 3) and env.observation_space.contains(obs)
    actions = _actions(25, seed=5, dim=env.action_space.shape[0])
    for a in actions[:5]:
        env.step(a)
    snap = env.snapshot()
    first = [(o["vector"], r, i["cost"], i["labels"], te, tr) for o, r, te, tr, i in map(env.step, actions)]
    env.restore(snap)
    again = [(o["vector"], r, i["cost"], i["labels"], te, tr) for o, r, te, tr, i in map(env.step, actions)]
    assert _same(first, again)
    env.close()
