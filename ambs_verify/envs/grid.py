"""``grid``: a tabular gridworld whose violation probabilities are known exactly.

The agent moves on a ``rows × cols`` grid with four actions (up, right, down, left). With probability
``slip`` the intended action is replaced by one drawn uniformly from all four. Walking into the border leaves
the agent in place. A step that ends on a hazard cell is a safety violation (``info["cost"] = cost_val``,
``info["labels"]["hazard"] = True``); reaching the goal pays ``reward_goal`` and ends the episode. Episodes are
truncated after ``max_steps`` agent steps.

Because the transition tensor ``P[s, a, s']`` is explicit, the probability of a violation within ``H`` steps
from every state under a stochastic policy ``pi[s, a]`` is computed exactly by dynamic programming
(:meth:`GridWorld.exact_violation_probability`). That makes this environment the ground truth against which
certificates are checked, and the quickstart's default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from .errors import EnvConfigError, reject_unknown_keys
from .registry import TaskInfo

ACTIONS = ("up", "right", "down", "left")
_MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])
OBSERVATIONS = ("vector", "image", "both")

# Cell colours of the image observation (uint8 RGB): floor, hazard, goal, agent.
_FLOOR, _HAZARD, _GOAL, _AGENT = (30, 30, 30), (220, 40, 40), (40, 200, 60), (60, 120, 255)


_SCALAR_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_KIND_TEXT = {int: "an integer", float: "a finite number", bool: "true or false", str: "text"}


def _is_cell(value: Any) -> bool:
    """``[row, col]``: two integers."""
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _is_kind(value: Any, kind: type) -> bool:
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and np.isfinite(value)
    return isinstance(value, kind)


@dataclass(frozen=True)
class GridConfig:
    """Layout and dynamics of a grid. Cells are ``(row, col)``; ``start=None`` (``"random"`` in a config) draws a
    free cell per episode."""

    rows: int = 6
    cols: int = 6
    hazards: tuple[tuple[int, int], ...] = ((1, 2), (2, 2), (3, 4), (4, 1))
    goal: tuple[int, int] = (5, 5)
    start: tuple[int, int] | None = (0, 0)
    slip: float = 0.1
    max_steps: int = 100
    cost_val: float = 1.0
    reward_goal: float = 1.0
    terminate_on_hazard: bool = False
    observation: str = "vector"
    image_size: int = 64

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridConfig:
        """Build from plain data (YAML/JSON lists become tuples); unknown keys get a one-line error."""
        reject_unknown_keys(data, (f.name for f in fields(cls)), "grid option")
        data = dict(data)
        if data.get("start") == "random":  # a config's null means "the default", so random starts have a name
            data["start"] = None
        for key in ("goal", "start"):
            value = data.get(key)
            if value is not None and not _is_cell(value):
                accepted = "[row, col] or random" if key == "start" else "[row, col]"
                raise EnvConfigError(f"grid option {key} takes {accepted} (got {value!r})")
        hazards = data.get("hazards", ())
        if not isinstance(hazards, list | tuple) or not all(_is_cell(cell) for cell in hazards):
            raise EnvConfigError(f"grid option hazards takes a list of [row, col] cells (got {hazards!r})")
        for f in fields(cls):  # scalar options by their declared type: 1.5 steps or "maybe" are not accepted
            value, kind = data.get(f.name), _SCALAR_TYPES.get(f.type)
            if f.name in data and kind is not None and not _is_kind(value, kind):
                raise EnvConfigError(f"grid option {f.name} takes {_KIND_TEXT[kind]} (got {value!r})")
        if "hazards" in data:
            data["hazards"] = tuple(tuple(int(v) for v in cell) for cell in data["hazards"])
        for key in ("goal", "start"):
            if data.get(key) is not None:
                data[key] = tuple(int(v) for v in data[key])
        return cls(**data)

    def validate(self) -> None:
        if self.rows < 2 or self.cols < 2:
            raise EnvConfigError(f"grid needs at least 2 rows and 2 cols (got {self.rows}×{self.cols})")
        cells = [*self.hazards, self.goal] + ([self.start] if self.start is not None else [])
        for r, c in cells:
            if not (0 <= r < self.rows and 0 <= c < self.cols):
                raise EnvConfigError(f"cell ({r}, {c}) lies outside the {self.rows}×{self.cols} grid")
        if self.goal in self.hazards:
            raise EnvConfigError(f"the goal {self.goal} must not be a hazard")
        if self.start is not None and (self.start in self.hazards or self.start == self.goal):
            raise EnvConfigError(f"the start {self.start} must be a free cell (not a hazard or the goal)")
        if len(self.hazards) + 1 >= self.rows * self.cols:
            raise EnvConfigError("the grid has no free cell to start from")
        if not (0.0 <= self.slip <= 1.0):
            raise EnvConfigError(f"slip must lie in [0, 1] (got {self.slip})")
        if not self.cost_val >= 0:
            raise EnvConfigError(f"cost_val must be >= 0 (got {self.cost_val})")
        if self.max_steps < 1:
            raise EnvConfigError(f"max_steps must be >= 1 (got {self.max_steps})")
        if self.observation not in OBSERVATIONS:
            raise EnvConfigError(f"unknown observation {self.observation!r}; accepted: {', '.join(OBSERVATIONS)}")
        if self.image_size < max(self.rows, self.cols):
            raise EnvConfigError(f"image_size must be at least max(rows, cols) = {max(self.rows, self.cols)}")


@dataclass
class _EpisodeState:
    cell: int = 0
    steps: int = 0
    done: bool = False
    label_counts: dict[str, int] = field(default_factory=lambda: {"hazard": 0})


class GridWorld(gym.Env):
    """Gymnasium environment over :class:`GridConfig`; see the module docstring for the rules.

    Observations: ``"vector"`` is a one-hot float32 of shape ``(rows * cols,)``; ``"image"`` is uint8
    ``(image_size, image_size, 3)``; ``"both"`` is a dict with keys ``vector`` and ``image``.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 4}
    label_names = ("hazard",)

    def __init__(self, config: GridConfig | None = None, render_mode: str | None = None, **overrides: Any):
        base = config if config is not None else GridConfig()
        self.config = GridConfig.from_dict({**_as_dict(base), **overrides}) if overrides else base
        self.config.validate()
        self.render_mode = render_mode
        cfg = self.config
        self.num_states = cfg.rows * cfg.cols
        self.hazard_mask = np.zeros(self.num_states, dtype=bool)
        for r, c in cfg.hazards:
            self.hazard_mask[r * cfg.cols + c] = True
        self.goal_state = cfg.goal[0] * cfg.cols + cfg.goal[1]
        self.free_states = np.flatnonzero(~self.hazard_mask & (np.arange(self.num_states) != self.goal_state))
        self.transitions = self._transition_tensor()
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.observation_space = self._observation_space()
        self._state = _EpisodeState()

    # ---------------------------------------------------------------------------------------------- model

    def _transition_tensor(self) -> np.ndarray:
        """``P[s, a, s']`` of shape ``(S, 4, S)``; the goal is absorbing."""
        cfg = self.config
        S = self.num_states
        rc = np.stack(np.divmod(np.arange(S), cfg.cols), axis=1)  # (S, 2)
        target = rc[:, None, :] + _MOVES[None, :, :]  # (S, 4, 2)
        target[..., 0] = np.clip(target[..., 0], 0, cfg.rows - 1)
        target[..., 1] = np.clip(target[..., 1], 0, cfg.cols - 1)
        next_state = target[..., 0] * cfg.cols + target[..., 1]  # (S, 4) deterministic successor
        deterministic = np.zeros((S, 4, S))
        np.put_along_axis(deterministic, next_state[..., None], 1.0, axis=2)
        # The executed action is the intended one w.p. 1 - slip, else uniform over all four.
        executed = (1.0 - cfg.slip) * np.eye(4) + cfg.slip / 4.0  # (intended, executed)
        P = np.einsum("ae,set->sat", executed, deterministic)
        P[self.goal_state] = 0.0
        P[self.goal_state, :, self.goal_state] = 1.0
        return P

    def exact_violation_probability(self, policy: np.ndarray, horizon: int) -> np.ndarray:
        """P(some step 1..H ends on a hazard | s_0 = s) for every state s, by dynamic programming.

        Parameters
        ----------
        policy : ndarray, shape (S, 4)
            Row-stochastic ``pi[s, a]``.
        horizon : int
            H >= 0; H = 0 gives zeros.

        Returns
        -------
        ndarray, shape (S,)
            Exact probabilities (up to float64 rounding). The goal is absorbing and safe; the step cap
            ``max_steps`` is not applied (pass ``min(H, steps left)`` for a state met mid-episode).

        Notes
        -----
        ``v_0 = 0`` and ``v_h(s) = sum_a pi(a|s) sum_s' P(s, a, s') (1[s' hazard] + 1[s' not hazard] v_{h-1}(s'))``:
        only the first violation matters, so the recursion stops at hazards whether or not the episode does.
        """
        policy = self._checked_policy(policy)
        if horizon < 0:
            raise EnvConfigError(f"horizon must be >= 0 (got {horizon})")
        chain = np.einsum("sa,sat->st", policy, self.transitions)  # P_pi[s, s']
        hit = chain[:, self.hazard_mask].sum(axis=1)
        stay_safe = chain * ~self.hazard_mask[None, :]
        value = np.zeros(self.num_states)
        for _ in range(horizon):  # H matrix-vector products; H is small (tens)
            value = hit + stay_safe @ value
        return value

    def exact_episode_means(self, policy: np.ndarray) -> tuple[float, float]:
        """Exact expected return and expected number of violations of one episode under ``pi[s, a]``.

        Returns
        -------
        (return, violations) : float
            ``reward_goal * P(the goal is reached within max_steps)`` and the expected number of steps that end on
            a hazard, from propagating the state distribution of the unfinished episode over ``max_steps`` steps
            (``start=None``: uniform over the free cells). A hazard ends the episode only with
            ``terminate_on_hazard``.
        """
        chain = np.einsum("sa,sat->st", self._checked_policy(policy), self.transitions)
        cfg = self.config
        alive = np.zeros(self.num_states)  # P(episode not finished, at s)
        if cfg.start is None:
            alive[self.free_states] = 1.0 / len(self.free_states)
        else:
            alive[cfg.start[0] * cfg.cols + cfg.start[1]] = 1.0
        reached = violations = 0.0
        for _ in range(cfg.max_steps):  # max_steps vector-matrix products (100 on the default grid)
            alive = alive @ chain
            violations += alive[self.hazard_mask].sum()
            reached += alive[self.goal_state]
            alive[self.goal_state] = 0.0
            if cfg.terminate_on_hazard:
                alive[self.hazard_mask] = 0.0
        return cfg.reward_goal * reached, violations

    def _checked_policy(self, policy: np.ndarray) -> np.ndarray:
        policy = np.asarray(policy, dtype=float)
        if policy.shape != (self.num_states, len(ACTIONS)):
            raise EnvConfigError(f"policy must have shape ({self.num_states}, {len(ACTIONS)}); got {policy.shape}")
        if np.any(policy < 0) or not np.allclose(policy.sum(axis=1), 1.0):
            raise EnvConfigError("policy rows must be probability vectors (non-negative, summing to 1)")
        return policy

    def uniform_policy(self) -> np.ndarray:
        return np.full((self.num_states, len(ACTIONS)), 1.0 / len(ACTIONS))

    # -------------------------------------------------------------------------------------------- gym API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cfg = self.config
        if options and "cell" in options:
            r, c = options["cell"]
            cell = r * cfg.cols + c
        elif cfg.start is not None:
            cell = cfg.start[0] * cfg.cols + cfg.start[1]
        else:
            cell = int(self.np_random.choice(self.free_states))
        self._state = _EpisodeState(cell=int(cell))
        return self._observation(), self._info(cost=0.0, hazard=False)

    def step(self, action):
        if self._state.done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        action = int(action)
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in [0, {len(ACTIONS) - 1}] (got {action})")
        s = self._state
        probs = self.transitions[s.cell, action]
        s.cell = int(self.np_random.choice(self.num_states, p=probs))
        s.steps += 1
        hazard = bool(self.hazard_mask[s.cell])
        at_goal = s.cell == self.goal_state
        s.label_counts["hazard"] += int(hazard)
        terminated = at_goal or (hazard and self.config.terminate_on_hazard)
        truncated = not terminated and s.steps >= self.config.max_steps
        s.done = terminated or truncated
        reward = self.config.reward_goal if at_goal else 0.0
        cost = self.config.cost_val if hazard else 0.0
        return self._observation(), reward, terminated, truncated, self._info(cost=cost, hazard=hazard)

    def render(self):
        return self._image()

    # ------------------------------------------------------------------------------------ snapshot/restore

    def snapshot(self) -> dict:
        """Opaque, deep-copied state: position, step counter, label counts and the RNG."""
        return {"episode": copy.deepcopy(self._state), "rng": copy.deepcopy(self.np_random.bit_generator.state)}

    def restore(self, snapshot: dict) -> None:
        self._state = copy.deepcopy(snapshot["episode"])
        self.np_random.bit_generator.state = copy.deepcopy(snapshot["rng"])

    @property
    def state_index(self) -> int:
        """The current cell as a state index ``row * cols + col``."""
        return self._state.cell

    @property
    def steps_taken(self) -> int:
        return self._state.steps

    @property
    def label_counts(self) -> dict[str, int]:
        return dict(self._state.label_counts)

    # ---------------------------------------------------------------------------------------- observations

    def _observation_space(self) -> gym.Space:
        cfg = self.config
        vector = gym.spaces.Box(0.0, 1.0, shape=(self.num_states,), dtype=np.float32)
        image = gym.spaces.Box(0, 255, shape=(cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
        return {"vector": vector, "image": image, "both": gym.spaces.Dict({"vector": vector, "image": image})}[
            cfg.observation
        ]

    def _observation(self):
        mode = self.config.observation
        if mode == "vector":
            return self._vector()
        if mode == "image":
            return self._image()
        return {"vector": self._vector(), "image": self._image()}

    def _vector(self) -> np.ndarray:
        obs = np.zeros(self.num_states, dtype=np.float32)
        obs[self._state.cell] = 1.0
        return obs

    def _image(self) -> np.ndarray:
        cfg = self.config
        cells = np.empty((cfg.rows, cfg.cols, 3), dtype=np.uint8)
        cells[:] = _FLOOR
        for r, c in cfg.hazards:
            cells[r, c] = _HAZARD
        cells[cfg.goal] = _GOAL
        cells[divmod(self._state.cell, cfg.cols)] = _AGENT
        # Nearest-neighbour upscale to image_size × image_size.
        rows = np.arange(cfg.image_size) * cfg.rows // cfg.image_size
        cols = np.arange(cfg.image_size) * cfg.cols // cfg.image_size
        return cells[rows[:, None], cols[None, :]]

    def _info(self, cost: float, hazard: bool) -> dict:
        return {"cost": float(cost), "labels": {"hazard": hazard}, "state": self._state.cell}


def _as_dict(config: GridConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(config)}


# Named layouts: ``grid`` is the quickstart's default; ``grid_tiny`` is small enough to enumerate by hand.
PRESETS: dict[str, GridConfig] = {
    "grid": GridConfig(),
    "grid_tiny": GridConfig(rows=3, cols=3, hazards=((1, 1),), goal=(2, 2), start=(0, 0), max_steps=20),
    "grid_large": GridConfig(
        rows=10,
        cols=10,
        hazards=((2, 3), (3, 3), (4, 3), (6, 6), (6, 7), (7, 2), (8, 5), (1, 7)),
        goal=(9, 9),
        start=(0, 0),
        max_steps=200,
    ),
}


def list_tasks() -> list[TaskInfo]:
    return [
        TaskInfo(name, "grid", GridWorld.label_names, f"{cfg.rows}×{cfg.cols} gridworld, {len(cfg.hazards)} hazards")
        for name, cfg in PRESETS.items()
    ]


def check_options(name: str, **options: Any) -> GridConfig:
    """The validated layout of grid task ``name`` with option overrides; a one-line error for a bad one (the config
    calls this before anything is written)."""
    if name not in PRESETS:
        raise EnvConfigError(f"unknown grid task {name!r}; accepted: {', '.join(PRESETS)}")
    options = dict(options)
    labels = options.pop("labels", None)  # the grid's one label is always on; naming it is allowed
    if labels is not None:
        labels = [labels] if isinstance(labels, str) else list(labels)
        unknown = [label for label in labels if label not in GridWorld.label_names]
        if unknown:
            accepted = ", ".join(GridWorld.label_names)
            raise EnvConfigError(f"unknown grid label(s) {', '.join(map(str, unknown))}; accepted: {accepted}")
    config = GridConfig.from_dict({**_as_dict(PRESETS[name]), **options})
    config.validate()
    return config


def make(name: str, render_mode: str | None = None, **options: Any) -> GridWorld:
    """Build a named grid layout with option overrides (any :class:`GridConfig` field)."""
    return GridWorld(check_options(name, **options), render_mode=render_mode)
