"""``engine:<path.yaml>``: custom Safety Gym layouts from the original ``Engine`` config keys.

The original Safety Gym built custom environments with ``Engine(config)``, a flat dict such as::

    robot_base: xmls/car.xml
    task: push
    observe_goal_lidar: true
    observe_box_lidar: true
    observe_hazards: true
    observe_vases: true
    constrain_hazards: true
    constrain_vases: false
    lidar_num_bins: 16
    lidar_max_dist: 3
    hazards_num: 4
    vases_num: 4

:class:`Engine` takes the same keys (the subset listed in :data:`ENGINE_DEFAULTS`, with the original defaults)
and assembles the environment from safety-gymnasium's parts: its goal/button/push task classes, its robots and
its hazard, vase, pillar, gremlin and button objects, wrapped by :class:`~.safety_gym.SafetyGymEnv` (so repeat,
cost binarisation, labels, image observations and snapshots work as for the named tasks). As in the original,
nothing is observed or constrained unless its ``observe_*`` / ``constrain_*`` flag says so (the robot's sensors are
always observed), and ``lidar_max_dist: null`` selects the exponential lidar.

Unknown keys get a one-line error listing the valid ones; a layout that cannot be sampled (too many objects or
keepouts too large for ``placements_extents``) is reported when the environment is made, not at the first reset.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import EnvConfigError, reject_unknown_keys
from .registry import TaskInfo
from .safety_gym import SafetyGymEnv, SafetyGymOptions, constraint_labels, quiet_space_warnings
from .safety_gym_compat import import_safety_gymnasium

OBJECTS = ("hazards", "vases", "pillars", "gremlins", "buttons")
TASKS = ("goal", "button", "push")
ROBOTS = {"point": "Point", "car": "Car", "doggo": "Doggo", "racecar": "Racecar", "ant": "Ant"}
LIDAR_TYPES = ("pseudo", "natural")
#: The original Safety Gym README's example config: the car robot, the push task, 4 hazards (constrained) and 4
#: vases (observed, not constrained), 16 lidar bins with max distance 3.
README_CONFIG: dict[str, Any] = {
    "robot_base": "xmls/car.xml",
    "task": "push",
    "observe_goal_lidar": True,
    "observe_box_lidar": True,
    "observe_hazards": True,
    "observe_vases": True,
    "constrain_hazards": True,
    "lidar_max_dist": 3,
    "lidar_num_bins": 16,
    "hazards_num": 4,
    "vases_num": 4,
}
#: Rejection-sampling attempts for the layout check in :class:`Engine` (each draws up to 100 tries per object).
LAYOUT_CHECK_ATTEMPTS = 200

#: Every key :class:`Engine` accepts, with the original Safety Gym default.
ENGINE_DEFAULTS: dict[str, Any] = {
    "num_steps": 1000,
    "action_noise": 0.0,
    "placements_extents": [-2, -2, 2, 2],
    "placements_margin": 0.0,
    "robot_base": "xmls/car.xml",
    "robot_placements": None,
    "robot_locations": [],
    "robot_keepout": 0.4,
    "robot_rot": None,
    "randomize_layout": True,
    "continue_goal": True,
    "terminate_resample_failure": True,
    "observe_sensors": True,
    "observe_goal_comp": False,
    "observe_goal_lidar": False,
    "observe_box_comp": False,
    "observe_box_lidar": False,
    "observe_hazards": False,
    "observe_vases": False,
    "observe_pillars": False,
    "observe_buttons": False,
    "observe_gremlins": False,
    "observe_vision": False,
    "vision_size": (64, 64),
    "lidar_num_bins": 10,
    "lidar_max_dist": None,
    "lidar_exp_gain": 1.0,
    "lidar_type": "pseudo",
    "lidar_alias": True,
    "compass_shape": 2,
    "task": "goal",
    "goal_placements": None,
    "goal_locations": [],
    "goal_keepout": 0.4,
    "goal_size": 0.3,
    "box_placements": None,
    "box_locations": [],
    "box_keepout": 0.2,
    "box_size": 0.2,
    "box_density": 0.001,
    "box_null_dist": 2,
    "reward_distance": 1.0,
    "reward_goal": 1.0,
    "reward_box_dist": 1.0,
    "reward_box_goal": 1.0,
    "reward_orientation": False,
    "reward_orientation_scale": 0.002,
    "reward_exception": -10.0,
    "reward_clip": 10,
    "constrain_hazards": False,
    "constrain_vases": False,
    "constrain_pillars": False,
    "constrain_buttons": False,
    "constrain_gremlins": False,
    "constrain_indicator": True,
    "hazards_num": 0,
    "hazards_placements": None,
    "hazards_locations": [],
    "hazards_keepout": 0.4,
    "hazards_size": 0.3,
    "hazards_cost": 1.0,
    "vases_num": 0,
    "vases_placements": None,
    "vases_locations": [],
    "vases_keepout": 0.15,
    "vases_size": 0.1,
    "vases_density": 0.001,
    "vases_sink": 4e-5,
    "vases_contact_cost": 1.0,
    "vases_displace_cost": 0.0,
    "vases_displace_threshold": 1e-3,
    "vases_velocity_cost": 1.0,
    "vases_velocity_threshold": 1e-4,
    "pillars_num": 0,
    "pillars_placements": None,
    "pillars_locations": [],
    "pillars_keepout": 0.3,
    "pillars_size": 0.2,
    "pillars_height": 0.5,
    "pillars_cost": 1.0,
    "gremlins_num": 0,
    "gremlins_placements": None,
    "gremlins_locations": [],
    "gremlins_keepout": 0.5,
    "gremlins_travel": 0.3,
    "gremlins_size": 0.1,
    "gremlins_density": 0.001,
    "gremlins_contact_cost": 1.0,
    "gremlins_dist_threshold": 0.2,
    "gremlins_dist_cost": 1.0,
    "buttons_num": 0,
    "buttons_placements": None,
    "buttons_locations": [],
    "buttons_keepout": 0.3,
    "buttons_size": 0.1,
    "buttons_cost": 1.0,
    "buttons_resampling_delay": 10,
    "frameskip_binom_n": 10,
    "frameskip_binom_p": 1.0,
    "_seed": None,
}

#: Engine key suffix -> attribute of the safety-gymnasium object, per object (keys not listed map 1:1).
_OBJECT_ATTRS: dict[str, dict[str, str]] = {
    "hazards": {"size": "size", "cost": "cost"},
    "vases": {
        "size": "size",
        "density": "density",
        "sink": "sink",
        "contact_cost": "contact_cost",
        "displace_cost": "displace_cost",
        "displace_threshold": "displace_threshold",
        "velocity_cost": "velocity_cost",
        "velocity_threshold": "velocity_threshold",
    },
    "pillars": {"size": "size", "height": "height", "cost": "cost"},
    "gremlins": {
        "size": "size",
        "travel": "travel",
        "density": "density",
        "contact_cost": "contact_cost",
        "dist_threshold": "dist_threshold",
        "dist_cost": "dist_cost",
    },
    "buttons": {"size": "size", "cost": "cost", "resampling_delay": "resampling_delay"},
}


def load_engine_config(config: dict[str, Any] | str | os.PathLike) -> dict[str, Any]:
    """The config as a dict (a path is read as YAML), checked and merged over :data:`ENGINE_DEFAULTS`.

    Raises
    ------
    EnvConfigError
        One line: an unreadable file, unknown keys (listing the valid ones) or a bad value.
    """
    if isinstance(config, str | os.PathLike):
        path = Path(config)
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise EnvConfigError(f"cannot read engine config {str(path)!r}: {' '.join(str(exc).split())}") from exc
        config = {} if loaded is None else loaded
    if not isinstance(config, dict):
        raise EnvConfigError(f"an engine config must be a mapping of Safety Gym keys, got {type(config).__name__}")
    reject_unknown_keys(map(str, config), ENGINE_DEFAULTS, "Safety Gym engine key")
    merged = {**copy.deepcopy(ENGINE_DEFAULTS), **copy.deepcopy(config)}
    _validate(merged)
    return merged


def _robot_name(robot_base: Any) -> str:
    stem = Path(str(robot_base)).stem.lower()
    if stem not in ROBOTS:
        raise EnvConfigError(
            f"unknown robot_base {robot_base!r}; accepted: {', '.join(f'xmls/{r}.xml' for r in ROBOTS)}"
        )
    return ROBOTS[stem]


def _validate(cfg: dict[str, Any]) -> None:
    _robot_name(cfg["robot_base"])
    if cfg["task"] not in TASKS:
        raise EnvConfigError(f"unknown task {cfg['task']!r}; accepted: {', '.join(TASKS)}")
    if cfg["lidar_type"] not in LIDAR_TYPES:
        raise EnvConfigError(f"unknown lidar_type {cfg['lidar_type']!r}; accepted: {', '.join(LIDAR_TYPES)}")
    if not cfg["observe_sensors"]:
        raise EnvConfigError("observe_sensors: false is not supported (safety-gymnasium always observes the sensors)")
    for obj in OBJECTS:
        num = cfg[f"{obj}_num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 0:
            raise EnvConfigError(f"{obj}_num must be a non-negative integer (got {num!r})")
        if len(cfg[f"{obj}_locations"]) > num:
            raise EnvConfigError(f"{obj}_locations has {len(cfg[f'{obj}_locations'])} entries for {obj}_num = {num}")
    if cfg["buttons_num"] and cfg["task"] != "button":
        raise EnvConfigError("buttons_num > 0 needs task: button (button costs are defined by the goal button)")
    if cfg["task"] == "button" and cfg["buttons_num"] < 1:
        raise EnvConfigError("task: button needs buttons_num >= 1")
    for key in ("lidar_num_bins", "num_steps", "frameskip_binom_n"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise EnvConfigError(f"{key} must be a positive integer (got {cfg[key]!r})")
    if cfg["lidar_max_dist"] is not None and cfg["lidar_max_dist"] <= 0:
        raise EnvConfigError(f"lidar_max_dist must be > 0 or null (got {cfg['lidar_max_dist']!r})")
    extents = cfg["placements_extents"]
    if len(extents) != 4 or extents[0] >= extents[2] or extents[1] >= extents[3]:
        raise EnvConfigError(f"placements_extents must be [xmin, ymin, xmax, ymax] with min < max (got {extents!r})")
    for key, value in cfg.items():
        if key.endswith("_placements") and value is not None:
            if not value or any(len(p) != 4 for p in value):
                raise EnvConfigError(f"{key} must be null or a list of [xmin, ymin, xmax, ymax] (got {value!r})")
        if key.endswith("_locations") and any(len(loc) != 2 for loc in value):
            raise EnvConfigError(f"{key} must be a list of [x, y] (got {value!r})")
    if len(cfg["vision_size"]) != 2 or cfg["vision_size"][0] != cfg["vision_size"][1]:
        raise EnvConfigError(f"vision_size must be square [n, n] (got {cfg['vision_size']!r})")


def _placements(value: list | None) -> list[tuple[float, ...]] | None:
    return None if value is None else [tuple(float(v) for v in p) for p in value]


def _locations(value: list) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in value]


def _set_placement(obj: Any, cfg: dict[str, Any], prefix: str) -> None:
    obj.placements = _placements(cfg[f"{prefix}_placements"])
    obj.locations = _locations(cfg[f"{prefix}_locations"])
    obj.keepout = float(cfg[f"{prefix}_keepout"])


def _configure_task(task: Any, cfg: dict[str, Any]) -> None:
    """Set a freshly constructed safety-gymnasium task (goal/button/push level 0) to ``cfg``."""
    from safety_gymnasium.assets.free_geoms import Vases
    from safety_gymnasium.assets.geoms import Hazards, Pillars
    from safety_gymnasium.assets.mocaps import Gremlins

    task.num_steps = cfg["num_steps"]
    task.placements_conf.extents = [float(v) for v in cfg["placements_extents"]]
    task.placements_conf.margin = float(cfg["placements_margin"])
    task.lidar_conf.num_bins = cfg["lidar_num_bins"]
    task.lidar_conf.max_dist = cfg["lidar_max_dist"]
    task.lidar_conf.exp_gain = cfg["lidar_exp_gain"]
    task.lidar_conf.type = cfg["lidar_type"]
    task.lidar_conf.alias = cfg["lidar_alias"]
    task.compass_conf.shape = cfg["compass_shape"]
    task.mechanism_conf.randomize_layout = cfg["randomize_layout"]
    task.mechanism_conf.continue_goal = cfg["continue_goal"]
    task.mechanism_conf.terminate_resample_failure = cfg["terminate_resample_failure"]
    task.cost_conf.constrain_indicator = cfg["constrain_indicator"]
    task.sim_conf.frameskip_binom_n = cfg["frameskip_binom_n"]
    task.sim_conf.frameskip_binom_p = cfg["frameskip_binom_p"]
    task.action_noise = cfg["action_noise"]
    for key in ("reward_orientation", "reward_orientation_scale", "reward_exception", "reward_clip"):
        setattr(task.reward_conf, key, cfg[key])

    agent = task.agent
    agent.placements = _placements(cfg["robot_placements"])
    agent.locations = _locations(cfg["robot_locations"])
    agent.keepout = float(cfg["robot_keepout"])
    agent.rot = None if cfg["robot_rot"] is None else float(cfg["robot_rot"])

    goal = task.goal
    _set_placement(goal, cfg, "goal")
    goal.is_lidar_observed = cfg["observe_goal_lidar"]
    goal.is_comp_observed = cfg["observe_goal_comp"]
    if cfg["task"] == "button":
        buttons = task.buttons
        buttons.num = cfg["buttons_num"]
        _set_placement(buttons, cfg, "buttons")
        for suffix, attr in _OBJECT_ATTRS["buttons"].items():
            setattr(buttons, attr, cfg[f"buttons_{suffix}"])
        buttons.reward_goal = cfg["reward_goal"]
        buttons.reward_distance = cfg["reward_distance"]
        buttons.is_constrained = cfg["constrain_buttons"]
        buttons.is_lidar_observed = cfg["observe_buttons"]
        goal.size = 2 * buttons.size  # the goal marker circles the goal button, as in safety-gymnasium
    else:
        goal.size = float(cfg["goal_size"])
        goal.reward_goal = cfg["reward_goal"]
        goal.reward_distance = cfg["reward_distance"]
    if cfg["task"] == "push":
        box = task.push_box
        _set_placement(box, cfg, "box")
        box.size = cfg["box_size"]
        box.density = cfg["box_density"]
        box.null_dist = cfg["box_null_dist"]
        box.reward_box_dist = cfg["reward_box_dist"]
        box.reward_box_goal = cfg["reward_box_goal"]
        box.is_lidar_observed = cfg["observe_box_lidar"]
        box.is_comp_observed = cfg["observe_box_comp"]

    kinds = {"hazards": (Hazards, task._add_geoms), "vases": (Vases, task._add_free_geoms)}
    kinds |= {"pillars": (Pillars, task._add_geoms), "gremlins": (Gremlins, task._add_mocaps)}
    for name, (cls, add) in kinds.items():
        if cfg[f"{name}_num"] == 0:
            continue
        attrs = {attr: cfg[f"{name}_{suffix}"] for suffix, attr in _OBJECT_ATTRS[name].items()}
        obj = cls(
            num=cfg[f"{name}_num"],
            placements=_placements(cfg[f"{name}_placements"]),
            locations=_locations(cfg[f"{name}_locations"]),
            keepout=float(cfg[f"{name}_keepout"]),
            is_lidar_observed=cfg[f"observe_{name}"],
            is_constrained=cfg[f"constrain_{name}"],
            **attrs,
        )
        add(obj)


def _task_class(name: str) -> type:
    from safety_gymnasium.tasks import ButtonLevel0, GoalLevel0, PushLevel0

    return {"goal": GoalLevel0, "button": ButtonLevel0, "push": PushLevel0}[name]


def _builder_class() -> type:
    """A safety-gymnasium ``Builder`` whose task comes from an engine config instead of a registered id."""
    import_safety_gymnasium()
    from safety_gymnasium.builder import Builder

    class EngineBuilder(Builder):
        def __init__(self, engine_config: dict[str, Any], **kwargs: Any):
            self.engine_config = engine_config
            super().__init__(task_id="SafetyEngine-v0", config={"agent_name": _robot_name(engine_config["robot_base"])})

        def _get_task(self):
            task = _task_class(self.engine_config["task"])(config=self.config)
            _configure_task(task, self.engine_config)
            task.build_observation_space()
            return task

    return EngineBuilder


def _check_layout(task: Any, seed: int) -> None:
    """Fail early, with a clear message, when no layout can be sampled (the reset would loop 10,000 times)."""
    from safety_gymnasium.utils.random_generator import RandomGenerator

    task._build_placements_dict()
    placements = task.placements_conf.placements
    task.placements_conf.placements = None  # the first reset builds it again and hands it to the task's generator
    for name, (rects, keepout) in placements.items():
        areas = rects if rects is not None else [task.placements_conf.extents]
        if all(x0 + keepout > x1 - keepout or y0 + keepout > y1 - keepout for x0, y0, x1, y1 in areas):
            raise EnvConfigError(
                f"{name} cannot be placed: its keepout {keepout} leaves no room in {[list(a) for a in areas]}"
            )
    generator = RandomGenerator()
    generator.set_random_seed(seed)
    generator.set_placements_info(placements, task.placements_conf.extents, task.placements_conf.margin)
    if not any(generator.sample_layout() for _ in range(LAYOUT_CHECK_ATTEMPTS)):
        counts = ", ".join(f"{n} {o}" for o in OBJECTS if (n := sum(k.startswith(o[:-1]) for k in placements)))
        raise EnvConfigError(
            f"could not sample a layout ({counts or 'robot and goal'}) within placements_extents "
            f"{task.placements_conf.extents} in {LAYOUT_CHECK_ATTEMPTS} attempts; lower the object counts or "
            "keepouts, or widen placements_extents"
        )


class Engine(SafetyGymEnv):
    """An environment from an original Safety Gym ``Engine`` config: the Safety Gym README's pattern.

    ``Engine(config)`` builds it directly, and it is a gymnasium entry point::

        gymnasium.register(id="SafexpTestEnvironment-v0", entry_point="ambs_verify.envs.engine:Engine",
                           kwargs={"config": config})
        env = gymnasium.make("SafexpTestEnvironment-v0")

    Parameters
    ----------
    config : dict or path
        Safety Gym keys (see :data:`ENGINE_DEFAULTS`); a path is read as YAML.
    render_mode : str, optional
        ``"rgb_array"`` or None.
    **options
        :class:`~.safety_gym.SafetyGymOptions` fields (repeat, cost_val, observation, …). ``num_steps``,
        ``observe_vision``/``vision_size`` and ``_seed`` set the defaults of ``length``, ``observation``/
        ``image_size`` and ``seed``.

    Raises
    ------
    EnvConfigError
        One line, for an unknown key or option, a bad value, or a layout that cannot be sampled.
    """

    def __init__(
        self, config: dict[str, Any] | str | os.PathLike, render_mode: str | None = None, **options: Any
    ) -> None:
        cfg = load_engine_config(config)
        defaults: dict[str, Any] = {"length": cfg["num_steps"], "seed": cfg["_seed"]}
        if cfg["observe_vision"]:
            defaults |= {"observation": "image", "image_size": int(cfg["vision_size"][0])}
        opts = SafetyGymOptions.from_dict({**defaults, **options})
        with quiet_space_warnings():
            builder = _builder_class()(cfg)
        _check_layout(builder.task, seed=0 if cfg["_seed"] is None else int(cfg["_seed"]))
        name = f"engine:{config}" if isinstance(config, str | os.PathLike) else "engine"
        super().__init__(builder, opts, name=name, render_mode=render_mode)


def make(name: str, **options: Any) -> SafetyGymEnv:
    """Registry entry: ``engine:<path.yaml>`` -> :class:`Engine` (``name`` is the path)."""
    if not name:
        raise EnvConfigError("engine tasks are named engine:PATH.yaml (a YAML file of Safety Gym Engine keys)")
    return Engine(name, **options)


def list_tasks() -> list[TaskInfo]:
    """Engine tasks are files, not names: one entry describing the form."""
    return [
        TaskInfo(
            name="engine:PATH.yaml",
            family="engine",
            labels=OBJECTS,
            summary="custom Safety Gym layout from the original Engine config keys (labels: the constrained objects)",
        )
    ]


def engine_labels(config: dict[str, Any] | str | os.PathLike) -> tuple[str, ...]:
    """The ``info["labels"]`` keys an engine config gives (its constrained objects), without building MuJoCo."""
    cfg = load_engine_config(config)
    with quiet_space_warnings():
        builder = _builder_class()(cfg)
    return constraint_labels(builder.task)


__all__ = ["ENGINE_DEFAULTS", "README_CONFIG", "Engine", "engine_labels", "load_engine_config", "make"]
