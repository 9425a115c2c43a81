"""The shared acting evaluator: run an agent for whole episodes in fresh environments and summarise them.

``evaluate(agent, make_env, episodes)`` builds ``episodes`` environments, steps them together through the
:class:`~ambs_verify.trainers.driver.Driver` (one batched policy call per step) and keeps each environment's first
episode. Learning tests, the ``grid_shielding`` benchmark and comparisons use it, so "final return" means the same
thing everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from .driver import Driver

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Per-episode results, shape ``(episodes,)`` each; ``override_rate`` is None for an agent without a shield."""

    returns: np.ndarray
    violations: np.ndarray
    lengths: np.ndarray
    override_rate: np.ndarray | None

    def summary(self) -> dict[str, float | None]:
        """Means over episodes: ``return``, ``violations`` (per episode), ``length`` and ``override_rate``."""
        return {
            "episodes": len(self.returns),
            "return": float(self.returns.mean()),
            "violations": float(self.violations.mean()),
            "length": float(self.lengths.mean()),
            "override_rate": None if self.override_rate is None else float(self.override_rate.mean()),
        }


def evaluate(
    agent: Any, make_env: Callable[[], Any], episodes: int, seed: int = 0, mode: str | None = None
) -> Evaluation:
    """Run one episode in each of ``episodes`` fresh environments (seeds ``seed .. seed + episodes - 1``).

    Parameters
    ----------
    agent : an agent with ``policy(obs, carry, rng[, mode])`` (the trainers' interface).
    make_env : builds one environment.
    episodes : number of episodes (= environments stepped together).
    seed : environment seeds start here; the policy's key is ``PRNGKey(seed)``.
    mode : the DreamerV3 agents' acting mode (``"shielded"``, ``"task"``, ``"safe"``); None: the default policy.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1 (got {episodes})")
    policy = agent.policy if mode is None else functools.partial(agent.policy, mode=mode)
    driver = Driver([make_env() for _ in range(episodes)], seed=seed)
    key = jax.random.PRNGKey(seed)
    first: dict[int, Any] = {}
    try:
        while len(first) < episodes:
            key, sub = jax.random.split(key)
            for episode in driver.step(policy, sub).episodes:
                first.setdefault(episode.env, episode)
    finally:
        driver.close()
    done = [first[i] for i in range(episodes)]
    overrides = [e.extras.get("override_rate") for e in done]
    return Evaluation(
        returns=np.array([e.ret for e in done], float),
        violations=np.array([e.violations for e in done], float),
        lengths=np.array([e.length for e in done], float),
        override_rate=None if any(o is None for o in overrides) else np.array(overrides, float),
    )
