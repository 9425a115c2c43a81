"""``atari_<game>``: Atari 2600 games through ale-py with AMBS safety labels (DESIGN.md §6, spec §2.2 and §5).

The environment drives :class:`ale_py.ALEInterface` directly, one emulator frame at a time, because the safety
labels must see every frame inside the action repeat and the snapshot must cover all hidden state. Settings
follow the AMBS Atari configuration:

* observation: the max over the last two emulator frames of the repeat, resized to ``size`` (64×64) with
  OpenCV ``INTER_AREA``; RGB uint8 (``gray=True`` gives one channel);
* ``repeat=4`` emulator frames per agent step; reward = sum of the frame rewards; the repeat stops early at
  game over (and at a lost life when ``lives="terminate"``/``"reset"``);
* sticky actions with probability ``sticky`` (0.25) **per emulator frame**, drawn from the environment's own
  generator (ALE's ``repeat_action_probability`` is set to 0: ale-py 0.12's ``cloneState(include_rng=True)``
  restores ALE's generator but not the previously applied action, so ALE's own sticky actions cannot be
  restored exactly);
* after ``reset_game`` a uniform number of 0..``noops``−1 NOOP emulator frames (restarting if the game ends);
* ``actions="all"`` (18 actions) or ``"minimal"``;
* ``lives``: ``"unused"`` (a lost life is only reported in ``info``), ``"terminate"`` (a lost life ends the
  episode; the next ``reset`` continues the same game unless it is over) or ``"reset"`` (a lost life ends the
  episode and the next ``reset`` starts a new game);
* ``max_steps=27000`` agent steps, then ``truncated``.

Safety labels (:mod:`.atari_labels`) are evaluated after every emulator frame and OR-ed over the repeat.
``info["labels"]`` maps each selected label to whether it fired on any frame of the step, ``info["cost"]``
is ``cost_val · 1[any label]`` (one violation per agent step, as the issue specifies) and
``info["violating_frames"]`` is the number of frames (0..repeat) on which any label fired, so that the AMBS
env's cost (``cost_val ·`` violating frames, 0..40 per step) and its "violations = frames" logging can be
reproduced. ``label_counts`` holds the per-episode number of steps on which each label fired.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import cv2
import gymnasium as gym
import numpy as np
from ale_py import Action, ALEInterface, LoggerMode, roms

from .atari_labels import EXPERIMENT_LABELS, REGISTRY, FrameView, canonical_game, make_labellers
from .errors import EnvConfigError, reject_unknown_keys
from .registry import TaskInfo

LIVES_MODES = ("unused", "terminate", "reset")
ACTION_SETS = ("all", "minimal")

ALEInterface.setLoggerMode(LoggerMode.Error)  # ALE prints a banner per ROM load otherwise


@dataclass(frozen=True)
class AtariConfig:
    """Settings of one Atari environment (AMBS defaults)."""

    labels: tuple[str, ...] | None = None  # None: the game's AMBS experiment labels, else all its labels
    cost_val: float = 10.0
    size: tuple[int, int] = (64, 64)
    gray: bool = False
    repeat: int = 4
    sticky: float = 0.25
    noops: int = 30
    actions: str = "all"
    lives: str = "unused"
    max_steps: int = 27000

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> AtariConfig:
        reject_unknown_keys(options, (f.name for f in fields(cls)), "atari option")
        data = dict(options)
        if data.get("labels") is not None:
            labels = data["labels"]
            data["labels"] = (labels,) if isinstance(labels, str) else tuple(labels)
        if "size" in data:
            size = data["size"]
            data["size"] = (int(size), int(size)) if np.isscalar(size) else tuple(int(v) for v in size)
        if isinstance(data.get("sticky"), bool):
            data["sticky"] = 0.25 if data["sticky"] else 0.0
        return cls(**data)

    def validate(self) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise EnvConfigError(f"size must be two positive integers (height, width); got {self.size}")
        if self.repeat < 1:
            raise EnvConfigError(f"repeat must be >= 1 (got {self.repeat})")
        if not 0.0 <= self.sticky < 1.0:
            raise EnvConfigError(f"sticky must lie in [0, 1) or be a bool (got {self.sticky})")
        if self.noops < 0:
            raise EnvConfigError(f"noops must be >= 0 (got {self.noops})")
        if self.actions not in ACTION_SETS:
            raise EnvConfigError(f"unknown action set {self.actions!r}; accepted: {', '.join(ACTION_SETS)}")
        if self.lives not in LIVES_MODES:
            raise EnvConfigError(f"unknown lives mode {self.lives!r}; accepted: {', '.join(LIVES_MODES)}")
        if self.max_steps < 1:
            raise EnvConfigError(f"max_steps must be >= 1 (got {self.max_steps})")
        if self.cost_val < 0:
            raise EnvConfigError(f"cost_val must be >= 0 (got {self.cost_val})")


@dataclass
class _Episode:
    steps: int = 0
    done: bool = False
    lives: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)
    violating_frames: int = 0


class AtariEnv(gym.Env):
    """One Atari game with safety labels; see the module docstring for the settings and the ``info`` keys.

    Parameters
    ----------
    game : str
        Game name in either spelling (``kung_fu_master`` or ``kungfumaster``); see ``atari_labels.REGISTRY``.
    render_mode : str, optional
        ``"rgb_array"`` renders the raw 210×160 frame.
    **options
        Fields of :class:`AtariConfig`.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 15}  # 60 Hz over the default repeat 4

    def __init__(self, game: str, render_mode: str | None = None, **options: Any) -> None:
        self.game = canonical_game(game)
        self.config = AtariConfig.from_options(options)
        self.config.validate()
        cfg = self.config
        labels = cfg.labels if cfg.labels is not None else EXPERIMENT_LABELS.get(self.game)
        self._labellers = make_labellers(self.game, labels)
        self.label_names = tuple(self._labellers)
        self._labeller_items = tuple(self._labellers.items())
        self.render_mode = render_mode

        self.ale = ALEInterface()
        self.ale.setFloat("repeat_action_probability", 0.0)  # sticky actions are ours (module docstring)
        self.ale.setInt("frame_skip", 1)
        self.ale.setInt("max_num_frames_per_episode", 0)
        self._rom = roms.get_rom_path(self.game)
        self.ale.setInt("random_seed", 0)
        self.ale.loadROM(self._rom)
        self._actions = tuple(self.ale.getLegalActionSet() if cfg.actions == "all" else self.ale.getMinimalActionSet())
        if self._actions[0] != Action.NOOP:
            raise EnvConfigError(f"atari_{self.game}: action 0 of the {cfg.actions} action set is not NOOP")
        height, width = self.ale.getScreenDims()
        self._pool = np.zeros((2, height, width, 3), dtype=np.uint8)
        self._frame = FrameView(self.ale)
        self._last_action = Action.NOOP
        self._seeded = False
        self._started = False  # a game is running that a lives="terminate" episode may continue
        self._episode = _Episode()

        channels = 1 if cfg.gray else 3
        self.observation_space = gym.spaces.Box(0, 255, shape=(*cfg.size, channels), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(len(self._actions))

    # -------------------------------------------------------------------------------------------- gym API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            # ALE draws nothing with sticky actions off, but its seed is part of a repeatable run all the same.
            self.ale.setInt("random_seed", int(self.np_random.integers(2**31 - 1)))
            self.ale.loadROM(self._rom)
            self._seeded = True
            self._started = False  # a reloaded ROM needs a new game
        # lives="terminate": an episode ended by a lost life continues the same game.
        if not (self.config.lives == "terminate" and self._started and not self.ale.game_over()):
            self._new_game()
            self._started = True
        self._last_action = Action.NOOP
        frame = self._frame
        frame.advance(0.0, self.ale.game_over(), self.ale.lives())
        for labeller in self._labellers.values():
            labeller.reset(frame)
        self._episode = _Episode(lives=frame.lives, label_counts=dict.fromkeys(self.label_names, 0))
        self.ale.getScreenRGB(self._pool[0])
        obs = self._observe(self._pool[0])
        info = {
            "cost": 0.0,
            "labels": dict.fromkeys(self.label_names, False),
            "violating_frames": 0,
            "lives": frame.lives,
            "life_lost": False,
        }
        return obs, info

    def _new_game(self) -> None:
        ale = self.ale
        while True:
            ale.reset_game()
            for _ in range(int(self.np_random.integers(self.config.noops)) if self.config.noops else 0):
                ale.act(Action.NOOP)
                if ale.game_over():
                    break
            if not ale.game_over():
                return

    def step(self, action):
        episode = self._episode
        if episode.done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        action = int(action)
        if not 0 <= action < len(self._actions):
            raise ValueError(f"action must be an integer in [0, {len(self._actions) - 1}] (got {action})")
        cfg = self.config
        ale, frame, pool = self.ale, self._frame, self._pool
        chosen = self._actions[action]
        repeat = cfg.repeat
        keep = self.np_random.random(repeat) < cfg.sticky if cfg.sticky > 0 else (False,) * repeat
        stop_on_life = cfg.lives != "unused"
        fired = dict.fromkeys(self.label_names, False)
        reward = 0.0
        violating = 0
        pooled = 0  # frames written into the pool this step
        lives_before = episode.lives
        for i in range(repeat):
            if not keep[i]:
                self._last_action = chosen
            r = ale.act(self._last_action)
            reward += r
            terminal = ale.game_over()
            lives = ale.lives()
            frame.advance(r, terminal, lives)
            if i >= repeat - 2:
                buf = pool[pooled]
                ale.getScreenRGB(buf)
                frame.provide_rgb(buf)
                pooled += 1
            violation = False
            for name, labeller in self._labeller_items:
                if labeller(frame):
                    fired[name] = True
                    violation = True
            violating += violation
            if terminal or (stop_on_life and lives < lives_before):
                break
        if pooled == 0:  # the repeat stopped before its last two frames: observe the final frame alone
            ale.getScreenRGB(pool[0])
            image = pool[0]
        elif pooled == 1:
            image = pool[0]
        else:
            image = np.maximum(pool[0], pool[1], out=pool[0])
        obs = self._observe(image)

        lives = ale.lives()
        life_lost = lives < lives_before
        episode.lives = lives
        episode.steps += 1
        any_label = violating > 0
        for name, hit in fired.items():
            episode.label_counts[name] += hit
        episode.violating_frames += violating
        terminated = ale.game_over() or (stop_on_life and life_lost)
        truncated = not terminated and episode.steps >= cfg.max_steps
        episode.done = terminated or truncated
        info = {
            "cost": cfg.cost_val if any_label else 0.0,
            "labels": fired,
            "violating_frames": violating,
            "lives": lives,
            "life_lost": life_lost,
        }
        return obs, float(reward), terminated, truncated, info

    def _observe(self, image: np.ndarray) -> np.ndarray:
        height, width = self.config.size
        obs = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        if self.config.gray:
            obs = cv2.cvtColor(obs, cv2.COLOR_RGB2GRAY)[..., None]
        return obs

    def render(self):
        return self.ale.getScreenRGB()

    def close(self) -> None:
        self.ale = None  # releases the emulator
        super().close()

    # ------------------------------------------------------------------------------------ snapshot/restore

    def snapshot(self) -> dict:
        """Opaque, deep-copied state: emulator (with ALE's RNG), sticky action, generator, episode, labellers.

        Restoring it and replaying the same actions reproduces the same observations, rewards, labels and
        costs. The observation pool is not part of it: every step refills the pool from its own frames.
        """
        return {
            "ale": self.ale.cloneState(include_rng=True),
            "last_action": self._last_action,
            "rng": copy.deepcopy(self.np_random.bit_generator.state),
            "episode": copy.deepcopy(self._episode),
            "labellers": {name: labeller.state() for name, labeller in self._labellers.items()},
        }

    def restore(self, snapshot: dict) -> None:
        """Return to a state taken by :meth:`snapshot` of an environment of the same game and labels."""
        if set(snapshot["labellers"]) != set(self._labellers):
            raise EnvConfigError(
                f"snapshot has labels {sorted(snapshot['labellers'])}, this env {sorted(self._labellers)}"
            )
        self.ale.restoreState(snapshot["ale"])
        self._last_action = snapshot["last_action"]
        self.np_random.bit_generator.state = copy.deepcopy(snapshot["rng"])
        self._episode = copy.deepcopy(snapshot["episode"])
        for name, labeller in self._labellers.items():
            labeller.set_state(snapshot["labellers"][name])

    # ---------------------------------------------------------------------------------------------- extras

    @property
    def label_counts(self) -> dict[str, int]:
        """Steps of the current episode on which each label fired."""
        return dict(self._episode.label_counts)

    @property
    def violating_frames(self) -> int:
        """Emulator frames of the current episode on which any label fired (AMBS's logged "violations")."""
        return self._episode.violating_frames

    @property
    def steps_taken(self) -> int:
        return self._episode.steps

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self._actions)


def make(name: str, **options: Any) -> AtariEnv:
    """Build ``atari_<name>``; options are :class:`AtariConfig` fields (``labels``, ``cost_val``, ``sticky``…)."""
    render_mode = options.pop("render_mode", None)
    return AtariEnv(name, render_mode=render_mode, **options)


def make_vector(
    name: str, num_envs: int, vectorization: str = "sync", **options: Any
) -> gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv:
    """Several copies of ``atari_<name>`` as a gymnasium vector env (``"sync"``: one process; ``"async"``: one
    subprocess each). ``reset(seed=s)`` seeds copy ``i`` with ``s + i``; infos are batched by gymnasium
    (``info["cost"]`` an array, ``info["labels"][label]`` a bool array). Episodes auto-reset on the next step.
    """
    if num_envs < 1:
        raise EnvConfigError(f"num_envs must be >= 1 (got {num_envs})")
    canonical_game(name)  # fail here, with one line, rather than inside a subprocess
    fns = [lambda: make(name, **options) for _ in range(num_envs)]
    if vectorization == "sync":
        return gym.vector.SyncVectorEnv(fns)
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv(fns)
    raise EnvConfigError(f"unknown vectorization {vectorization!r}; accepted: sync, async")


def list_tasks() -> list[TaskInfo]:
    tasks = []
    for game, labels in REGISTRY.items():
        alias = game.replace("_", "")
        aliases = (f"atari_{alias}",) if alias != game else ()
        default = EXPERIMENT_LABELS.get(game)
        summary = f"Atari {game} (ale-py), 64×64 RGB, repeat 4, sticky 0.25"
        if default:
            summary += f"; AMBS labels: {', '.join(default)}"
        tasks.append(TaskInfo(f"atari_{game}", "atari", tuple(labels), summary, aliases))
    return tasks
