"""Host-side glue around a baseline agent: its replay and dopamine's update/target schedule.

:class:`Learner` is what a driver calls once per vector step — ``act(obs)`` then ``observe(...)`` — and it does
the rest the way dopamine's ``_train_step`` does: transitions go to replay and the agent's step counter
(``state.env_steps``, which drives ε) follows the transitions stored; once more than
``min_replay_history`` transitions were added, one gradient update runs every ``update_period`` agent steps
(transitions added, all envs counted), and the agent copies the target network every ``target_update_period``
agent steps (:mod:`.common`). Prioritized replay gets its new priorities from each update. ``observe`` takes an
``active`` mask for lockstep drivers in which some envs take no step (an env being reset). :meth:`Learner.checkpoint`
and :meth:`Learner.load_checkpoint` give everything that changes — agent state, key, replay buffers and scalars —
as one pytree of arrays plus JSON-serialisable metadata.

It steps no environment: the training loop (:class:`ambs_verify.trainers.learners.TransitionLearner`) calls it.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from ..interface import EXPLORE
from .common import BaselineAgent, BaselineState
from .dqn import DQN, DQNConfig
from .iqn import IQN, IQNConfig
from .prioritized_replay import PrioritizedReplay
from .rainbow import Rainbow, RainbowConfig

__all__ = ["AGENTS", "Learner", "make_agent", "make_replay"]

AGENTS: dict[str, tuple[type[BaselineAgent], type]] = {
    "dqn": (DQN, DQNConfig),
    "rainbow": (Rainbow, RainbowConfig),
    "iqn": (IQN, IQNConfig),
}


def make_agent(name: str, **settings) -> BaselineAgent:
    """``"dqn" | "rainbow" | "iqn"`` from every field of its config class.

    The fields have no defaults here: configs.yaml's ``baselines`` block holds them, and
    :func:`ambs_verify.rollout.agents.baseline_settings` reads them for an agent.
    """
    if name not in AGENTS:
        raise ValueError(f"unknown baseline agent {name!r}; accepted: {', '.join(AGENTS)}")
    agent_cls, config_cls = AGENTS[name]
    return agent_cls(config_cls(**settings))


def make_replay(
    agent: BaselineAgent, obs_space: gym.spaces.Box, num_envs: int = 1, seed: int = 0, capacity: int | None = None
) -> PrioritizedReplay:
    """The replay an agent's config asks for (prioritized for Rainbow, uniform for DQN and IQN); ``obs_space`` is
    the one observation the agent reads."""
    c = agent.config
    stacked = c.frame_stack > 1 and len(obs_space.shape) == 3 and obs_space.shape[-1] == c.frame_stack
    return PrioritizedReplay(
        capacity=capacity or c.replay_capacity,
        obs_shape=tuple(obs_space.shape),
        obs_dtype=obs_space.dtype,
        num_envs=num_envs,
        frame_stack=c.frame_stack if stacked else 1,
        update_horizon=c.update_horizon,
        gamma=c.gamma,
        prioritized=getattr(c, "prioritized", False),
        priority_exponent=getattr(c, "priority_exponent", 0.5),
        importance_exponent=getattr(c, "importance_exponent", 0.5),
        reward_clip=c.reward_clip,
        seed=seed,
    )


class Learner:
    """One agent, its state and its replay, stepped by a driver (see the module docstring).

    Parameters
    ----------
    agent : BaselineAgent
    obs_space : gymnasium.spaces.Dict
        One env's keyed observation space, with one key (the observation the agent reads).
    act_space : gymnasium.Space
    num_envs : int
    seed : int
        Seeds parameters, acting/training keys and replay sampling.
    replay_capacity : int, optional
        Overrides the config's capacity (tests, benchmarks).
    """

    def __init__(
        self,
        agent: BaselineAgent,
        obs_space: gym.Space,
        act_space: gym.Space,
        num_envs: int = 1,
        seed: int = 0,
        replay_capacity: int | None = None,
    ) -> None:
        self.agent = agent
        self.config = agent.config
        key = jax.random.key(seed)
        key, init_key = jax.random.split(key)
        self.key = key
        self.state: BaselineState = agent.init(init_key, obs_space, act_space)
        self.replay = make_replay(agent, obs_space[agent.obs_key], num_envs, seed, replay_capacity)
        self.num_envs = num_envs
        self.env_steps = 0

    def restore(self, state: BaselineState, replay_state: dict | None = None, key: jax.Array | None = None) -> None:
        """Resume from a checkpointed agent ``state``, the replay's ``state_dict`` and the learner's ``key``
        (default: this learner's key folded with the step, so a resumed run draws fresh randomness); the host
        step counter follows ``state.env_steps``."""
        self.state = state
        self.env_steps = int(state.env_steps)
        if replay_state is not None:
            self.replay.load_state_dict(replay_state)
        self.key = key if key is not None else jax.random.fold_in(self.key, self.env_steps)

    def _next_key(self) -> jax.Array:
        self.key, key = jax.random.split(self.key)
        return key

    def act(self, obs: Mapping[str, np.ndarray], mode: str = EXPLORE) -> np.ndarray:
        """Actions ``(E,)`` for the keyed observations of ``E`` envs (``explore``: ε-greedy / noisy at the current
        step count; ``deployed``: ε_eval)."""
        actions, _, _ = self.agent.policy(self.state, None, obs, self._next_key(), mode)
        return np.asarray(actions)

    def observe(self, obs, action, reward, terminated, truncated, next_obs=None, active=None) -> list[dict]:
        """Store one vector step and run the updates now due; returns their metrics (scalars, host floats).

        Parameters
        ----------
        obs, next_obs : (E, *obs_shape)
        action, reward, terminated, truncated : (E,)
        active : (E,) bool, optional
            Envs that took a step (the others' rows are ignored); default all.
        """
        before = self.replay.add_count
        self.replay.add(obs, action, reward, terminated, truncated, next_obs, active)
        after = self.replay.add_count
        self.env_steps += after - before
        self.state = self.state.replace(env_steps=jnp.asarray(self.env_steps, jnp.int32))
        if after <= self.config.min_replay_history:
            return []
        period = self.config.update_period
        due = after // period - before // period
        return [self.update() for _ in range(due)]

    def update(self) -> dict:
        """One gradient update on a replay batch (and the priority update it implies)."""
        batch = self.replay.sample(self.config.batch_size)
        index = batch.pop("index")
        batch.pop("probability")
        self.state, metrics = self.agent.train(self.state, batch, self._next_key())
        metrics = jax.device_get(metrics)  # one transfer; the next act waits for these parameters anyway
        per_sample = metrics.pop("per_sample_loss")
        if self.replay.prioritized:
            self.replay.update_priorities(index, per_sample)
        return {name: float(value) for name, value in metrics.items()}

    def epsilon(self) -> float:
        """The training ε at the current step count (0 for NoisyNet agents)."""
        return float(self.agent.epsilon(self.state.env_steps))

    # ------------------------------------------------------------------------------------------ checkpoints

    def checkpoint(self) -> tuple[dict, dict]:
        """Everything that changes, for a checkpoint.

        Returns
        -------
        tree : dict
            ``{"agent": BaselineState, "key": typed key, "replay": {name: ndarray}}`` (the replay's buffers by
            reference; also the ``target`` structure for restoring).
        metadata : dict
            JSON-serialisable: the replay's scalars (counters, largest priority, sampling generator state) and
            the host step counter.
        """
        tree = {"agent": self.state, "key": self.key, "replay": self.replay.state_arrays()}
        return tree, {"replay": self.replay.state_scalars(), "env_steps": self.env_steps}

    def load_checkpoint(self, tree: dict, metadata: dict) -> None:
        """Continue from :meth:`checkpoint`'s ``tree`` (as restored) and ``metadata``; the restored replay buffers
        are adopted, not copied."""
        self.state, self.key = tree["agent"], tree["key"]
        self.replay.load_state_dict({**tree["replay"], **metadata["replay"]}, copy=False)
        self.env_steps = int(metadata["env_steps"])
