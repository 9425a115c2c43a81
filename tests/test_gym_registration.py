"""Every task is a gymnasium id under ``ambs_verify/``, takes its family's options as ``make`` keyword arguments,
and passes gymnasium's own ``check_env``; the Safety Gym README's ``Engine(config)`` / ``register`` pattern works
with our entry point."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import ambs_verify.envs  # noqa: F401  (registers the ids)
from ambs_verify.envs.engine import README_CONFIG, Engine  # imports no simulator
from ambs_verify.envs.errors import EnvConfigError
from ambs_verify.envs.registry import make_env

HAVE_MUJOCO = all(importlib.util.find_spec(m) is not None for m in ("safety_gymnasium", "mujoco"))
HAVE_ALE = importlib.util.find_spec("ale_py") is not None
needs_mujoco = pytest.mark.skipif(not HAVE_MUJOCO, reason="safety-gymnasium and mujoco are not installed")
needs_ale = pytest.mark.skipif(not HAVE_ALE, reason="ale-py is not installed")

# safety-gymnasium's own code trips numpy's scalar-conversion deprecation; its sensors are unbounded Boxes.
QUIET = [
    pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*Box observation space (minimum|maximum) value is:UserWarning"),
]


def test_every_task_is_registered_and_registering_imports_no_simulator():
    code = (
        "import json, sys, ambs_verify.envs, gymnasium as gym\n"
        "ids = sorted(k for k in gym.registry if k.startswith('ambs_verify/'))\n"
        "heavy = [m for m in ('jax', 'mujoco', 'safety_gymnasium', 'ale_py', 'cv2') if m in sys.modules]\n"
        "print(json.dumps({'ids': ids, 'heavy': heavy}))"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["heavy"] == []
    ids = set(out["ids"])
    from ambs_verify.envs.atari_labels import REGISTRY
    from ambs_verify.envs.grid import PRESETS
    from ambs_verify.envs.safety_gym import task_ids

    assert {f"ambs_verify/{name}-v0" for name in PRESETS} <= ids
    for task_id in task_ids():  # every task in the three spellings
        body = task_id.removeprefix("Safety").removesuffix("-v0")
        assert {f"ambs_verify/{task_id}", f"ambs_verify/Safety{body}Vision-v0", f"ambs_verify/Safexp-{body}-v0"} <= ids
    assert {f"ambs_verify/atari_{game}-v0" for game in REGISTRY} <= ids
    assert "ambs_verify/Engine-v0" in ids
    assert len(ids) == len(PRESETS) + 3 * len(task_ids()) + len(REGISTRY) + 1


def test_make_takes_the_config_keys_and_refuses_others_in_one_line():
    env = gym.make("ambs_verify/grid-v0", slip=0.2, hazards=[[1, 1]], observation="both")
    same = make_env("grid", slip=0.2, hazards=[[1, 1]], observation="both")
    assert env.unwrapped.config == same.config and env.unwrapped.config.slip == 0.2
    for a, b in zip(env.reset(seed=3)[0].values(), same.reset(seed=3)[0].values(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(EnvConfigError) as info:
        gym.make("ambs_verify/grid-v0", slipp=0.2)
    message = str(info.value)
    assert "\n" not in message and message.startswith("unknown grid option(s) slipp; valid: rows, cols")


CHECKED = [
    pytest.param("ambs_verify/grid-v0", {}, id="grid"),
    pytest.param("ambs_verify/grid_tiny-v0", {"observation": "both"}, id="grid-both"),
    pytest.param("ambs_verify/Safexp-PointGoal1-v0", {}, id="safexp", marks=[needs_mujoco, *QUIET]),
    pytest.param("ambs_verify/SafetyCarPush1Vision-v0", {}, id="safety-vision", marks=[needs_mujoco, *QUIET]),
    pytest.param(
        "ambs_verify/atari_seaquest-v0", {"labels": ["out-of-oxygen"], "cost_val": 2.0}, id="atari", marks=needs_ale
    ),
    pytest.param("ambs_verify/Engine-v0", {"config": README_CONFIG}, id="engine", marks=[needs_mujoco, *QUIET]),
]


@pytest.mark.parametrize(("env_id", "options"), CHECKED)
def test_each_family_passes_gymnasiums_env_checker(env_id, options):
    env = gym.make(env_id, **options)
    check_env(env.unwrapped, skip_render_check=False)
    assert env.spec.id == env_id
    env.close()


@needs_ale
def test_atari_labels_and_cost_are_make_arguments():
    env = gym.make("ambs_verify/atari_seaquest-v0", labels=["out-of-oxygen"], cost_val=2.0)
    assert env.unwrapped.config.labels == ("out-of-oxygen",) and env.unwrapped.config.cost_val == 2.0
    _, info = env.reset(seed=0)
    assert set(info["labels"]) == {"out-of-oxygen"}
    with pytest.raises(EnvConfigError, match="accepted: death, early-surface, out-of-oxygen"):
        gym.make("ambs_verify/atari_seaquest-v0", labels=["surface"])


@needs_mujoco
@QUIET[0]
@QUIET[1]
def test_the_safety_gym_readme_engine_pattern():
    """``Engine(config)`` and ``register(..., entry_point='ambs_verify.envs.engine:Engine', kwargs={'config':
    config})``, as the Safety Gym README writes them, with its example config."""

    env = Engine(README_CONFIG)
    obs, _ = env.reset(seed=0)
    assert env.labels == ("hazards",)  # hazards constrained, vases not
    gym.register(
        id="SafexpTestEnvironment-v0", entry_point="ambs_verify.envs.engine:Engine", kwargs={"config": README_CONFIG}
    )
    try:
        made = gym.make("SafexpTestEnvironment-v0")
        assert isinstance(made.unwrapped, Engine)
        again, _ = made.reset(seed=0)
        np.testing.assert_array_equal(obs, again)  # the same world for the same seed
        _, _, _, _, info = made.step(made.action_space.sample())
        assert set(info["labels"]) == {"hazards"} and "cost" in info
    finally:
        gym.registry.pop("SafexpTestEnvironment-v0", None)
