"""``envs check``: drive an environment with a simple policy and summarise what it reports."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from .errors import EnvConfigError

POLICIES = ("random", "noop")


def _policy(env: gym.Env, name: str, seed: int) -> Callable[[], object]:
    if name == "random":
        env.action_space.seed(seed)
        return env.action_space.sample
    if name == "noop":
        # Action 0 is NOOP for ALE and "up" for the grid; for Box spaces the zero action.
        zero = np.zeros(env.action_space.shape, env.action_space.dtype) if env.action_space.shape else 0
        return lambda: zero
    raise EnvConfigError(f"unknown policy {name!r}; accepted: {', '.join(POLICIES)}")


def check_env_run(
    env: gym.Env, steps: int, seed: int = 0, policy: str = "random", progress: Callable[[int], None] | None = None
) -> dict:
    """Step ``env`` for ``steps`` agent steps (resetting at episode ends) and summarise.

    Returns a dict with steps, finished episodes, total and mean episode return, the cost sum, per-label
    counts (steps on which the label fired) and steps per second (resets included).
    """
    if steps < 1:
        raise EnvConfigError(f"steps must be >= 1 (got {steps})")
    act = _policy(env, policy, seed)
    labels: Counter[str] = Counter()
    total_return = cost_sum = episode_return = 0.0
    episode_returns: list[float] = []
    env.reset(seed=seed)
    start = time.perf_counter()
    for step in range(steps):
        _, reward, terminated, truncated, info = env.step(act())
        total_return += float(reward)
        episode_return += float(reward)
        cost_sum += float(info.get("cost", 0.0))
        labels.update(name for name, fired in info.get("labels", {}).items() if fired)
        if terminated or truncated:
            episode_returns.append(episode_return)
            episode_return = 0.0
            env.reset()
        if progress is not None:
            progress(step + 1)
    elapsed = time.perf_counter() - start
    label_names = getattr(env.unwrapped, "label_names", tuple(labels))
    return {
        "steps": steps,
        "episodes": len(episode_returns),
        "return": total_return,
        "mean_episode_return": float(np.mean(episode_returns)) if episode_returns else None,
        "cost_sum": cost_sum,
        "label_counts": {name: labels.get(name, 0) for name in label_names},
        "steps_per_second": steps / elapsed if elapsed > 0 else float("inf"),
    }
