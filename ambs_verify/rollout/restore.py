"""Restoring a trained agent from a run directory's checkpoint: the one place that turns ``checkpoints/<step>/``
back into something that acts.

Training saves an agent as one pytree (:func:`agent_tree`) beside the loop's own state; :func:`restore_agent`
rebuilds the agent a run's ``config.yaml`` describes, initialises it for the task's spaces and loads the tree.
``certify``, ``verify`` and the Python API act with what it returns (:meth:`RestoredAgent.policy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax

from ..agents.interface import DEPLOYED, bind
from ..checkpoints import Checkpointer
from ..config import Config
from ..runs import RunDir
from .agents import BASELINE_AGENTS, build_agent, make_envs, prepare_config
from .driver import Policy, key_observation
from .runtime import configure_jax

__all__ = ["RestoredAgent", "agent_tree", "restore_agent"]


def agent_tree(state: Any, key: jax.Array) -> dict[str, Any]:
    """What a checkpoint of a DreamerV3 agent holds: its state and the training loop's JAX key."""
    return {"agent": state, "key": key}


@dataclass
class RestoredAgent:
    """An agent restored from checkpoint ``step`` of a run: the agent (:mod:`ambs_verify.agents.interface`) and
    its ``state``.

    :meth:`policy` binds them into what a driver steps: ``deployed`` (the default) is the agent a certificate is
    about (for AMBS the shielded agent; for a baseline dopamine's evaluation policy), and the DreamerV3 agents also
    act as ``task`` and ``safe``. ``make_env()`` builds one environment as the agent saw it in training;
    ``obs_keys`` are the keys of its observations and ``action_space`` its actions.
    """

    config: Config
    agent: Any
    state: Any
    make_env: Callable[[], gym.Env]
    obs_keys: tuple[str, ...]
    action_space: gym.Space
    step: int
    checkpoints: Checkpointer

    def policy(self, mode: str = DEPLOYED) -> Policy:
        return bind(self.agent, self.state, mode)

    @property
    def has_model(self) -> bool:
        """Whether the agent has a world model (the DreamerV3 agents; the model-free baselines have none)."""
        return getattr(self.agent, "learner", None) is not None

    @property
    def checkpoint_dir(self) -> Path:
        return self.checkpoints.path(self.step)


def _baseline_state(config: Config, checkpoints: Checkpointer, step: int, agent: Any, probe: gym.Env) -> Any:
    """A baseline's state from its learner's checkpoint (agent state, key and replay; the replay gives the shapes)."""
    from ..agents.baselines import Learner

    space = key_observation(probe.observation_space)
    learner = Learner(agent, space, probe.action_space, config.envs.amount, config.seed)
    target, _ = learner.checkpoint()
    return checkpoints.restore(step, target=target).tree["agent"]


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
    agent = build_agent(config)
    try:
        obs_space = key_observation(probe.observation_space)
        if config.agent in BASELINE_AGENTS:
            state = _baseline_state(config, checkpoints, step, agent, probe)
        else:
            template = agent.init(jax.random.PRNGKey(0), obs_space, probe.action_space)
            state = checkpoints.restore(step, target=agent_tree(template, jax.random.PRNGKey(0))).tree["agent"]
    finally:
        probe.close()
    keys = tuple(obs_space.spaces)
    return RestoredAgent(config, agent, state, make_env, keys, probe.action_space, step, checkpoints)
