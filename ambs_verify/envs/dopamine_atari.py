"""Dopamine's Atari preprocessing on top of the labelled env ``atari_<game>`` (spec §9).

Dopamine (``discrete_domains/atari_lib.py``) plays ``<Game>NoFrameskip-v0`` (ALE sticky actions 0.25, minimal
action set) through ``AtariPreprocessing``: frame skip 4, grayscale max-pool of the last two frames, 84×84
``INTER_AREA`` resize, no terminal on life loss, no no-op starts, 27,000 agent steps per episode; the agent
stacks the last 4 frames (zeros before the episode's first frame).

The labelled env already does almost all of it through its options, so nothing is re-implemented here:
``size=84, gray=True, repeat=4, sticky=0.25`` (per emulator frame, as ALE's), ``noops=0``, ``lives="unused"``,
``actions="minimal"``, ``max_steps=27000``. :class:`FrameStack` adds the 4-frame stack. ``info["cost"]``,
``info["labels"]``, ``info["violating_frames"]`` and the env's ``label_counts`` pass through untouched, so costs
and per-label counts are logged exactly as for the DreamerV3 agents.

One difference remains that options cannot remove (``envs/atari.py`` is not ours to change): the labelled env
max-pools the two RGB frames, resizes, then converts to gray with OpenCV's luma weights, where dopamine reads
ALE's grayscale screen of each frame and max-pools in gray. The two agree wherever the pooled frames agree
and differ slightly on flickering sprites (gray(max(a, b)) ≥ max(gray(a), gray(b))).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["DOPAMINE_ATARI_OPTIONS", "FrameStack", "make_dopamine_atari"]

# Labelled-env options reproducing dopamine's AtariPreprocessing (module docstring).
DOPAMINE_ATARI_OPTIONS: dict[str, Any] = {
    "size": (84, 84),
    "gray": True,
    "repeat": 4,
    "sticky": 0.25,
    "noops": 0,
    "lives": "unused",
    "actions": "minimal",
    "max_steps": 27_000,
}


class FrameStack(gym.Wrapper):
    """Stack the last ``k`` single-channel observations on the last axis: ``(H, W, 1)`` → ``(H, W, k)`` uint8.

    At ``reset`` the stack is zeros except the newest frame (dopamine's initial state), matching what
    :class:`~.prioritized_replay.PrioritizedReplay` rebuilds from its stored frames. Everything else —
    rewards, ``info`` (cost, labels), ``label_counts``, snapshot/restore — is the wrapped env's.
    """

    def __init__(self, env: gym.Env, k: int = 4) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or space.shape[-1] != 1:
            raise ValueError(f"FrameStack needs single-channel (H, W, 1) observations; got {space}")
        self.k = int(k)
        self.observation_space = gym.spaces.Box(0, 255, shape=(*space.shape[:-1], self.k), dtype=space.dtype)
        self._stack = np.zeros(self.observation_space.shape, dtype=space.dtype)

    def _push(self, frame: np.ndarray) -> np.ndarray:
        self._stack[..., :-1] = self._stack[..., 1:]
        self._stack[..., -1] = frame[..., 0]
        return self._stack.copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._stack[...] = 0
        return self._push(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._push(obs), reward, terminated, truncated, info

    def snapshot(self) -> dict:
        """The wrapped env's snapshot plus the frame stack."""
        return {"env": self.env.unwrapped.snapshot(), "stack": self._stack.copy()}

    def restore(self, snapshot: dict) -> None:
        self.env.unwrapped.restore(snapshot["env"])
        self._stack[...] = snapshot["stack"]

    @property
    def label_counts(self) -> dict[str, int]:
        return self.env.unwrapped.label_counts

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.env.unwrapped.label_names


def make_dopamine_atari(game: str, frame_stack: int = 4, **options: Any) -> FrameStack:
    """``atari_<game>`` with dopamine's preprocessing and a ``frame_stack``-frame stack: obs ``(84, 84, 4)`` uint8.

    Parameters
    ----------
    game : str
        Game name as ``make_env`` accepts it after ``atari_`` (e.g. ``"seaquest"``).
    frame_stack : int
        Frames per observation (dopamine: 4).
    **options
        Labelled-env options; they override :data:`DOPAMINE_ATARI_OPTIONS` (e.g. ``labels``, ``cost_val``).
    """
    from .registry import make_env

    env = make_env(f"atari_{game}", **{**DOPAMINE_ATARI_OPTIONS, **options})
    return FrameStack(env, frame_stack)
