"""Restoring a trained agent from a run directory's checkpoint: the one place that turns ``checkpoints/<step>/``
back into something that acts.

Training saves an agent as one pytree (:func:`agent_tree`) beside the loop's own state; :func:`restore_agent`
rebuilds the agent a run's ``config.yaml`` describes, initialises it for the task's spaces and loads the tree.
``certify``, ``verify`` and the Python API act with what it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from ..checkpoints import Checkpointer
from ..config import Config
from ..runs import RunDir
from .agents import BASELINE_AGENTS, build_agent, make_envs, observation_key, prepare_config
from .driver import key_observation
from .runtime import configure_jax

__all__ = ["BaselinePolicy", "RestoredAgent", "agent_tree", "restore_agent"]


def agent_tree(agent: Any, key: jax.Array) -> dict[str, Any]:
    """What a checkpoint of a DreamerV3 agent holds: its state and the training loop's JAX key."""
    return {"agent": agent.state, "key": key}


class BaselinePolicy:
    """A model-free baseline (DQN, Rainbow, IQN) restored from its checkpoint, acting with dopamine's evaluation
    policy (``epsilon_eval``). It has no world model (``learner`` is None) and no shield."""

    learner = None
    shield = None

    def __init__(self, config: Config, checkpoints: Checkpointer, step: int, probe: gym.Env) -> None:
        from ..agents.baselines import Learner

        space = key_observation(probe.observation_space)
        self.obs_key = observation_key(space)
        self.obs_keys = (self.obs_key,)
        agent = build_agent(config)
        self.baseline = Learner(agent, space[self.obs_key], probe.action_space, config.envs.amount, config.seed)
        target, _ = self.baseline.checkpoint()
        ck = checkpoints.restore(step, target=target)
        self.baseline.load_checkpoint(ck.tree, ck.metadata["learner"])

    def policy(self, obs, carry, rng):
        actions, _, _ = self.baseline.agent.eval_policy(obs[self.obs_key], self.baseline.state, rng)
        return np.asarray(actions), carry, {}


@dataclass
class RestoredAgent:
    """An agent restored from checkpoint ``step`` of a run.

    ``agent.policy(obs, carry, rng)`` is the deployed policy (for AMBS the shielded agent); DreamerV3 agents also
    have ``task_policy`` and ``learner`` (the world model); ``make_env()`` builds one environment as the agent saw
    it in training.
    """

    config: Config
    agent: Any
    make_env: Callable[[], gym.Env]
    step: int
    checkpoints: Checkpointer

    @property
    def has_model(self) -> bool:
        return getattr(self.agent, "learner", None) is not None

    @property
    def checkpoint_dir(self) -> Path:
        return self.checkpoints.path(self.step)


def restore_agent(run_path: str | Path, step: int) -> RestoredAgent:
    """The agent of checkpoint ``step`` of the run at ``run_path``, on the JAX platform its config names.

    Raises
    ------
    CheckpointError
        The checkpoint is missing or fails its manifest.
    """
    run = RunDir(run_path)
    config = Config.from_yaml(run.config_path.read_text(encoding="utf-8"))
    configure_jax(config)
    checkpoints = Checkpointer(run.checkpoints_dir, keep=None)
    config = prepare_config(config)  # the baselines' dopamine Atari preprocessing, as in training

    def make_env() -> gym.Env:
        return make_envs(config, amount=1)[0]

    probe = make_env()
    try:
        if config.agent in BASELINE_AGENTS:
            agent = BaselinePolicy(config, checkpoints, step, probe)
        else:
            agent = build_agent(config)
            agent.init(jax.random.PRNGKey(0), key_observation(probe.observation_space), probe.action_space)
            agent.state = checkpoints.restore(step, target=agent_tree(agent, jax.random.PRNGKey(0))).tree["agent"]
    finally:
        probe.close()
    return RestoredAgent(config, agent, make_env, step, checkpoints)
