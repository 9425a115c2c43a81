"""Engine-style custom Safety Gym environments built from the original config keys."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest
import yaml

if importlib.util.find_spec("safety_gymnasium") is None or importlib.util.find_spec("mujoco") is None:
    pytest.skip("safety-gymnasium and mujoco are not installed", allow_module_level=True)

from ambs_verify.envs.engine import ENGINE_DEFAULTS, README_CONFIG, Engine, engine_labels, load_engine_config
from ambs_verify.envs.errors import EnvConfigError
from ambs_verify.envs.registry import make_env

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")

EXAMPLE = README_CONFIG


@pytest.fixture(scope="module")
def example():
    env = Engine(EXAMPLE)
    env.reset(seed=0)
    return env


def test_example_builds_as_stated(example):
    task = example.builder.task
    assert task.agent.__class__.__name__ == "Car"
    assert task.hazards.num == 4 and task.vases.num == 4
    assert task.hazards.is_constrained and not task.vases.is_constrained
    assert example.labels == ("hazards",)
    obs_keys = list(task.obs_info.obs_space_dict)
    lidars = [k for k in obs_keys if k.endswith("_lidar")]
    assert sorted(lidars) == ["goal_lidar", "hazards_lidar", "push_box_lidar", "vases_lidar"]
    assert all(task.obs_info.obs_space_dict[k].shape == (16,) for k in lidars)
    assert (task.lidar_conf.num_bins, task.lidar_conf.max_dist) == (16, 3)
    layout = task.world_info.layout
    assert sum(k.startswith("hazard") for k in layout) == 4 and sum(k.startswith("vase") for k in layout) == 4
    assert example.observation_space.shape == (88,)  # 24 car sensor values + 4 lidars × 16
    assert engine_labels(EXAMPLE) == ("hazards",)


def _drive_into_vase(constrain_vases: bool) -> tuple[float, int]:
    """Car at the origin (rot 0 drives towards -y), a vase 0.45 ahead; full throttle. Returns (cost, touching steps)."""
    cfg = {
        **EXAMPLE,
        "constrain_vases": constrain_vases,
        "hazards_num": 0,
        "vases_num": 1,
        "robot_locations": [[0.0, 0.0]],
        "robot_keepout": 0.2,
        "vases_keepout": 0.1,
        "robot_rot": 0.0,
        "vases_locations": [[0.0, -0.45]],
        "goal_locations": [[-1.5, 1.5]],
        "box_locations": [[-1.5, -1.5]],
    }
    env = Engine(cfg)
    env.reset(seed=0)
    task = env.builder.task
    cost = 0.0
    touching = 0
    for _ in range(40):
        _, _, _, _, info = env.step(np.ones(2))
        cost += info["cost"]
        pairs = [
            {task.model.geom(c.geom1).name, task.model.geom(c.geom2).name} for c in task.data.contact[: task.data.ncon]
        ]
        touching += any("vase0" in p and p & set(task.agent.body_info.geom_names) for p in pairs)
        assert set(info["labels"]) == ({"vases"} if constrain_vases else set())
    return cost, touching


def test_vases_cost_only_when_constrained():
    free_cost, free_touching = _drive_into_vase(constrain_vases=False)
    assert free_touching > 0 and free_cost == 0.0
    cost, touching = _drive_into_vase(constrain_vases=True)
    assert touching > 0 and cost > 0


def test_unknown_key_is_one_line_listing_valid_keys():
    with pytest.raises(EnvConfigError) as err:
        load_engine_config({**EXAMPLE, "hazard_num": 3})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("unknown Safety Gym engine key(s) hazard_num; valid: ")
    assert all(key in message for key in ENGINE_DEFAULTS)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"task": "circle"}, "unknown task 'circle'"),
        ({"robot_base": "xmls/tank.xml"}, "unknown robot_base"),
        ({"buttons_num": 2}, "needs task: button"),
        ({"hazards_num": -1}, "hazards_num must be a non-negative integer"),
        ({"lidar_type": "radar"}, "unknown lidar_type"),
    ],
)
def test_bad_values(change, fragment):
    with pytest.raises(EnvConfigError, match=fragment):
        load_engine_config({**EXAMPLE, **change})


def test_unsampleable_layout_is_reported_quickly():
    start = time.perf_counter()
    with pytest.raises(EnvConfigError, match="could not sample a layout") as err:
        Engine({**EXAMPLE, "hazards_num": 40, "placements_extents": [-1, -1, 1, 1]})
    assert "\n" not in str(err.value) and "40 hazards" in str(err.value)
    with pytest.raises(EnvConfigError, match="cannot be placed"):
        Engine({**EXAMPLE, "hazards_keepout": 1.5, "placements_extents": [-1, -1, 1, 1]})
    assert time.perf_counter() - start < 15


def test_yaml_file_through_the_registry(tmp_path):
    path = tmp_path / "button.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "robot_base": "xmls/point.xml",
                "task": "button",
                "buttons_num": 2,
                "constrain_buttons": True,
                "observe_buttons": True,
                "randomize_layout": False,
                "num_steps": 20,
            }
        )
    )
    env = make_env(f"engine:{path}", repeat=2)
    first, info = env.reset(seed=1)
    assert set(info["labels"]) == {"buttons"}
    again, _ = env.reset(seed=2)
    assert np.array_equal(first, again)  # randomize_layout: false keeps the layout whatever the seed
    steps = 0
    done = False
    while not done:
        *_, term, trunc, _ = env.step(np.zeros(2))
        done = term or trunc
        steps += 1
    assert steps == 10  # num_steps 20 raw steps at repeat 2
    with pytest.raises(EnvConfigError, match="cannot read engine config"):
        make_env(f"engine:{tmp_path / 'missing.yaml'}")
