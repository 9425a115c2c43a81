"""``safetygym_<id>``: Safety Gym tasks through safety-gymnasium, with the AMBS wrapper's semantics.

Task names are ``safetygym_Safety<Robot><Task><Level>-v0`` (e.g. ``safetygym_SafetyPointGoal1-v0``); the original
Safety Gym spelling ``safetygym_Safexp-PointGoal1-v0`` used by the AMBS presets means the same task, and a
``Vision`` suffix (``SafetyPointGoal1Vision-v0``) selects image observations. Environments are built through
safety-gymnasium's ``Builder`` (never ``gymnasium.make``; see :mod:`.safety_gym_compat`).

Semantics (AMBS ``embodied/envs/safetygym.py``, ``reference/ambs_spec.md`` §2.3):

- One agent step repeats the action for ``repeat`` raw steps (2 by default) and stops early when the episode ends.
  The reward is the sum over the repeat; the cost is **binarised per raw step**:
  ``info["cost"] = Σ_repeat cost_val · 1[raw cost_sum > 0]`` (``cost_val`` 1.0 by default; the AMBS shield
  configuration uses 10).
- ``info`` also carries every raw per-constraint cost summed over the repeat (``cost_hazards``,
  ``cost_vases_contact``, …, and ``cost_sum``), ``info["labels"]``, one flag per constrained object
  (``hazards``, ``vases``, ``pillars``, ``buttons``, ``gremlins``, …) OR-ed over the repeat, ``violations`` (the
  number of violating raw steps) and ``goal_met``.
- Episodes last ``length`` raw steps (1,000, as in AMBS: 500 agent steps at repeat 2). The end of the time limit is
  reported as ``truncated`` (gymnasium 1.x); AMBS treated it as terminal, which a trainer can still do.
- Observations: ``"vector"`` is the flattened Safety Gym observation as float32; ``"image"`` is the robot's
  ``vision`` camera as ``image_size × image_size × 3`` uint8 (64×64 by default), rendered once per agent step by
  our own ``mujoco.Renderer`` — the image safety-gymnasium's vision observation gives (all geom groups visible,
  top row first) without its per-raw-step rendering; ``"both"`` is a dict with both.
- Seeding: ``reset(seed=s)`` seeds the layout and simulator noise, so equal seeds give equal episodes. Without a
  seed the first reset draws one from ``seed`` (the constructor option) or fresh entropy; later unseeded resets
  continue the simulator's random stream, like safety-gymnasium.
- :meth:`SafetyGymEnv.snapshot` / :meth:`SafetyGymEnv.restore` capture the full state (physics, model fields that
  tasks move such as the goal, layout, random streams and task state such as button timers), so
  restore-then-same-actions reproduces observations, rewards and costs exactly.
"""

from __future__ import annotations

import contextlib
import copy
import re
import uuid
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from .errors import EnvConfigError, reject_unknown_keys
from .registry import TaskInfo
from .safety_gym_compat import as_action, import_safety_gymnasium

ROBOTS = ("Point", "Car", "Doggo", "Racecar", "Ant")
#: Task name -> levels: every Builder-based (navigation and vision) task safety-gymnasium 1.0.0 registers, except
#: Race0-2, whose floor texture (assets/textures/village_floor.PNG) is missing from the 1.0.0 wheel.
TASKS: dict[str, tuple[int, ...]] = {
    "Goal": (0, 1, 2),
    "Button": (0, 1, 2),
    "Push": (0, 1, 2),
    "Circle": (0, 1, 2),
    "Run": (0,),
    "FadingEasy": (0, 1, 2),
    "FadingHard": (0, 1, 2),
}
#: Extra Builder config per task, as in safety-gymnasium's registrations (only the Race tasks had one).
TASK_CONFIG: dict[str, dict[str, Any]] = {}
OBSERVATIONS = ("vector", "image", "both")
_ID = re.compile(r"^Safety(?P<robot>[A-Z][a-z]+)(?P<task>[A-Z][A-Za-z]*?)(?P<level>\d)(?P<vision>Vision)?-v0$")
_SAFEXP = re.compile(r"^Safexp-(?P<body>[A-Za-z]+\d)-v0$")


def task_ids() -> list[str]:
    """Every ``Safety<Robot><Task><Level>-v0`` id this adapter builds (without the ``safetygym_`` prefix)."""
    return [f"Safety{robot}{task}{level}-v0" for task, levels in TASKS.items() for robot in ROBOTS for level in levels]


def parse_task(name: str) -> tuple[str, str, int, bool]:
    """``(robot, task, level, vision)`` of a task id; accepts ``Safexp-`` spellings and a ``safetygym_`` prefix.

    Raises
    ------
    EnvConfigError
        For a name that is not one of :func:`task_ids` (optionally with ``Vision``).
    """
    bare = name.removeprefix("safetygym_")
    safexp = _SAFEXP.match(bare)
    if safexp:
        bare = f"Safety{safexp['body']}-v0"
    match = _ID.match(bare)
    if not match or match["robot"] not in ROBOTS or int(match["level"]) not in TASKS.get(match["task"], ()):
        raise EnvConfigError(
            f"unknown Safety Gym task {name!r}; accepted: Safety<Robot><Task><Level>[Vision]-v0 (or Safexp-…) with "
            f"robots {', '.join(ROBOTS)} and tasks "
            + ", ".join(f"{t}{'/'.join(map(str, lv))}" for t, lv in TASKS.items())
        )
    return match["robot"], match["task"], int(match["level"]), bool(match["vision"])


@dataclass
class SafetyGymOptions:
    """Adapter options (``make(name, **options)``); unknown keys get a one-line error listing these."""

    observation: str = "vector"
    image_size: int = 64
    repeat: int = 2
    length: int = 1000
    cost_val: float = 1.0
    seed: int | None = None
    camera: str = "vision"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SafetyGymOptions:
        reject_unknown_keys(data, (f.name for f in fields(cls)), "Safety Gym option")
        options = cls(**data)
        options.validate()
        return options

    def validate(self) -> None:
        if self.observation == "vision":  # the AMBS name for the same thing
            self.observation = "image"
        if self.observation not in OBSERVATIONS:
            raise EnvConfigError(f"unknown observation {self.observation!r}; accepted: {', '.join(OBSERVATIONS)}")
        if self.repeat < 1:
            raise EnvConfigError(f"repeat must be >= 1 (got {self.repeat})")
        if self.length < 1:
            raise EnvConfigError(f"length must be >= 1 raw step (got {self.length})")
        if self.image_size < 8:
            raise EnvConfigError(f"image_size must be >= 8 (got {self.image_size})")
        if self.cost_val <= 0:
            raise EnvConfigError(f"cost_val must be > 0 (got {self.cost_val})")


def build_builder(task_id: str, config: dict[str, Any]):
    """A safety-gymnasium ``Builder`` for ``task_id`` (e.g. ``SafetyPointGoal1-v0``) with ``config``."""
    import_safety_gymnasium()
    from safety_gymnasium.builder import Builder

    with quiet_space_warnings():
        return Builder(task_id, config=config)


@contextlib.contextmanager
def quiet_space_warnings() -> Iterator[None]:
    """Silence gymnasium's Box warning about float32 bounds compared with float64 limits (harmless)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
        yield


def constraint_labels(task) -> tuple[str, ...]:
    """Names of the constrained objects of a safety-gymnasium task (the keys of ``info["labels"]``)."""
    labels = [o.name for o in task._obstacles if getattr(o, "is_constrained", False)]
    if task._is_load_static_geoms and task.static_geoms_contact_cost:
        labels.append("static_geoms")
    return tuple(labels)


def _label_of(cost_key: str, labels: tuple[str, ...]) -> str:
    """Which label a raw cost key (``cost_vases_contact``, ``cost_out_of_boundary``, …) belongs to."""
    rest = cost_key.removeprefix("cost_")
    if rest == "out_of_boundary":
        return "sigwalls"
    for label in labels:
        if rest.startswith(label):
            return label
    return rest


class SafetyGymEnv(gym.Env):
    """Gymnasium 1.x environment over a safety-gymnasium ``Builder``; see the module docstring.

    Parameters
    ----------
    builder : safety_gymnasium.builder.Builder
        The raw environment (not reset yet).
    options : SafetyGymOptions
        Observation kind, repeat, length, cost_val, seed and camera.
    name : str
        The task name, for messages.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 30}  # safety-gymnasium's Builder

    def __init__(self, builder, options: SafetyGymOptions, name: str = "", render_mode: str | None = None):
        self.builder = builder
        self.options = options
        self.name = name
        self.render_mode = render_mode
        task = builder.task
        task.num_steps = options.length  # the Builder truncates at this many raw steps
        self.labels = constraint_labels(task)
        self._fixed_layout = not task.mechanism_conf.randomize_layout
        self.action_space = gym.spaces.Box(
            task.action_space.low.astype(np.float32), task.action_space.high.astype(np.float32), dtype=np.float32
        )
        self.observation_space = self._observation_space()
        self._renderer = None
        self._renderer_model = None
        # Close the GL renderer before interpreter shutdown (osmesa's free() fails once modules are torn down).
        self._renderers: list = []
        weakref.finalize(self, _close_renderers, self._renderers)
        self._scene_option = None
        self._camera_id: int | None = None
        self._steps = 0
        self._done = True
        self._seeded = False
        # The MuJoCo model of the current world and a token naming it in snapshots (see _world_token).
        self._token_model = None
        self._token = ""

    # -------------------------------------------------------------------------------------------- gym API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = self.options.seed if self.options.seed is not None else int(self.np_random.integers(2**31))
        self._seeded = True
        from safety_gymnasium.utils.common_utils import ResamplingError

        try:
            # A fixed layout (randomize_layout False) is re-seeded by the Builder itself, which refuses a seed.
            self.builder.reset(seed=None if self._fixed_layout else seed)
        except ResamplingError as exc:
            raise EnvConfigError(
                f"{self.name}: could not sample a layout ({exc}); lower the object counts or keepouts, or widen "
                "placements_extents"
            ) from exc
        self._steps = 0
        self._done = False
        info = {"cost": 0.0, "labels": dict.fromkeys(self.labels, False), "violations": 0}
        return self._observation(self.builder.task.obs() if self._needs_vector else None), info

    def step(self, action):
        if self._done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        action = as_action(action)
        builder = self.builder
        reward = 0.0
        violations = 0
        raw_costs: dict[str, float] = {}
        goal_met = terminated = truncated = False
        obs = None
        for _ in range(self.options.repeat):
            obs, r, c, terminated, truncated, raw_info = builder.step(action)
            reward += float(r)
            violations += c > 0
            for key, value in raw_info.items():
                if key.startswith("cost_"):
                    raw_costs[key] = raw_costs.get(key, 0.0) + float(value)
            goal_met |= bool(raw_info.get("goal_met", False))
            if terminated or truncated:
                break
        self._steps += 1
        self._done = terminated or truncated
        labels = dict.fromkeys(self.labels, False)
        for key, value in raw_costs.items():
            if key != "cost_sum" and value > 0:
                labels[_label_of(key, self.labels)] = True
        info = {
            "cost": self.options.cost_val * violations,
            "labels": labels,
            "violations": int(violations),
            "goal_met": goal_met,
            **raw_costs,
        }
        return self._observation(obs), reward, bool(terminated), bool(truncated), info

    def render(self):
        return self._image()

    def close(self):
        _close_renderers(self._renderers)
        self._renderer = self._renderer_model = None

    # ------------------------------------------------------------------------------------ snapshot/restore

    def snapshot(self) -> dict:
        """Deep-copied state: physics, moved model fields, layout, random streams and task/object state."""
        import mujoco

        task = self.builder.task
        model, data = task.model, task.data
        physics = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION))
        mujoco.mj_getState(model, data, physics, mujoco.mjtState.mjSTATE_INTEGRATION)
        return {
            # A token, not the model: the model pickles to ~190 MB, and only its identity matters here.
            "world": self._world_token(),
            "physics": physics,
            "body_pos": model.body_pos.copy(),  # the goal body moves when a goal is resampled
            "world_info": copy.deepcopy(task.world_info),
            "task_rng": task.random_generator.random_generator.get_state(),
            "rng": copy.deepcopy(self.np_random.bit_generator.state),
            "task": _plain_state(task),
            "objects": {o.name: _plain_state(o) for o in task._obstacles},
            "builder": _plain_state(self.builder),
            "builder_cost": copy.deepcopy(self.builder.cost),
            "adapter": {"steps": self._steps, "done": self._done, "seeded": self._seeded},
        }

    def _world_token(self) -> str:
        """A random id for the current MuJoCo world, renewed whenever a reset builds a new model."""
        model = self.builder.task.model
        if model is not self._token_model:
            self._token_model, self._token = model, uuid.uuid4().hex
        return self._token

    def restore(self, snapshot: dict) -> None:
        """Return to a :meth:`snapshot` of this environment (of this or an earlier episode)."""
        import mujoco

        task = self.builder.task
        if task.world is None:
            raise RuntimeError("restore() needs an environment that has been reset at least once")
        if snapshot["world"] != self._world_token():
            # A reset rebuilt the MuJoCo model since (or the snapshot comes from another process): rebuild the
            # snapshot's world from its config; the rebuilt world is then the snapshot's.
            task.world.rebuild(copy.deepcopy(snapshot["world_info"].world_config_dict), state=False)
            self._token_model, self._token = task.model, snapshot["world"]
        model, data = task.model, task.data
        model.body_pos[:] = snapshot["body_pos"]
        mujoco.mj_setState(model, data, snapshot["physics"], mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(model, data)
        task.world_info = copy.deepcopy(snapshot["world_info"])
        task.random_generator.random_generator.set_state(snapshot["task_rng"])
        self.np_random.bit_generator.state = copy.deepcopy(snapshot["rng"])
        _set_plain_state(task, snapshot["task"])
        for obstacle in task._obstacles:
            _set_plain_state(obstacle, snapshot["objects"][obstacle.name])
        _set_plain_state(self.builder, snapshot["builder"])
        self.builder.cost = copy.deepcopy(snapshot["builder_cost"])
        self._steps = snapshot["adapter"]["steps"]
        self._done = snapshot["adapter"]["done"]
        self._seeded = snapshot["adapter"]["seeded"]

    @property
    def steps_taken(self) -> int:
        """Agent steps since the last reset."""
        return self._steps

    # ---------------------------------------------------------------------------------------- observations

    @property
    def _needs_vector(self) -> bool:
        return self.options.observation != "image"

    def _observation_space(self) -> gym.Space:
        flat = self.builder.task.observation_space
        vector = gym.spaces.Box(flat.low.astype(np.float32), flat.high.astype(np.float32), dtype=np.float32)
        size = self.options.image_size
        image = gym.spaces.Box(0, 255, shape=(size, size, 3), dtype=np.uint8)
        return {"vector": vector, "image": image, "both": gym.spaces.Dict({"vector": vector, "image": image})}[
            self.options.observation
        ]

    def _observation(self, vector: np.ndarray | None):
        mode = self.options.observation
        if mode == "vector":
            return np.asarray(vector, dtype=np.float32)
        if mode == "image":
            return self._image()
        return {"vector": np.asarray(vector, dtype=np.float32), "image": self._image()}

    def _image(self) -> np.ndarray:
        """The camera image (top row first), like safety-gymnasium's vision observation but rendered once."""
        import mujoco

        task = self.builder.task
        if self._renderer is None or self._renderer_model is not task.model:
            # Each reset compiles a new MjModel; the GL context belongs to one model.
            _close_renderers(self._renderers)
            size = self.options.image_size
            self._renderer = mujoco.Renderer(task.model, height=size, width=size)
            self._renderers.append(self._renderer)
            self._renderer_model = task.model
            self._camera_id = mujoco.mj_name2id(task.model, mujoco.mjtObj.mjOBJ_CAMERA, self.options.camera)
            if self._camera_id < 0:
                raise EnvConfigError(f"{self.name}: the model has no camera {self.options.camera!r}")
            self._scene_option = mujoco.MjvOption()
            self._scene_option.geomgroup[:] = 1  # safety-gymnasium turns every geom group on
        self._renderer.update_scene(task.data, camera=self._camera_id, scene_option=self._scene_option)
        return self._renderer.render()


def _close_renderers(renderers: list) -> None:
    while renderers:
        renderers.pop().close()


_PLAIN = (bool, int, float, str, type(None), np.ndarray, np.generic, tuple)


def _plain_state(obj: Any) -> dict[str, Any]:
    """The plain-data attributes of ``obj`` (numbers, arrays, strings, tuples), deep-copied."""
    return {k: copy.deepcopy(v) for k, v in vars(obj).items() if isinstance(v, _PLAIN)}


def _set_plain_state(obj: Any, state: dict[str, Any]) -> None:
    for key, value in state.items():
        setattr(obj, key, copy.deepcopy(value))


def make(name: str, render_mode: str | None = None, **options: Any) -> SafetyGymEnv:
    """Build ``safetygym_<name>``; ``options`` are :class:`SafetyGymOptions` fields.

    A ``Vision`` task id implies ``observation="image"`` unless ``observation`` is given.
    """
    robot, task, level, vision = parse_task(name)
    if vision:
        options.setdefault("observation", "image")
    opts = SafetyGymOptions.from_dict(options)
    task_id = f"Safety{robot}{task}{level}-v0"
    builder = build_builder(task_id, {"agent_name": robot, **TASK_CONFIG.get(task, {})})
    return SafetyGymEnv(builder, opts, name=f"safetygym_{task_id}", render_mode=render_mode)


_LABELS_BY_TASK: dict[tuple[str, int], tuple[str, ...]] = {}


def list_tasks() -> list[TaskInfo]:
    """Every task :func:`make` builds, with its labels (found by constructing, not resetting, each task)."""
    infos = []
    for task_id in task_ids():
        robot, task, level, _ = parse_task(task_id)
        if (task, level) not in _LABELS_BY_TASK:
            builder = build_builder(
                f"SafetyPoint{task}{level}-v0", {"agent_name": "Point", **TASK_CONFIG.get(task, {})}
            )
            _LABELS_BY_TASK[task, level] = constraint_labels(builder.task)
        aliases = (f"safetygym_Safexp-{robot}{task}{level}-v0", f"safetygym_Safety{robot}{task}{level}Vision-v0")
        infos.append(
            TaskInfo(
                name=f"safetygym_{task_id}",
                family="safetygym",
                labels=_LABELS_BY_TASK[task, level],
                summary=f"Safety Gym {robot} robot, {task} task, level {level}",
                aliases=aliases,
            )
        )
    return infos
