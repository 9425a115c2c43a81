"""How each agent family learns from the steps the training loop drives: when it acts, what it stores, when it
updates, and what its checkpoint holds. :func:`~.loop.train` runs either through the same loop.

:class:`SequenceLearner` -- DreamerV3, AMBS and Lagrangian DreamerV3 (spec §10.1, with steps instead of seconds):

* **prefill** with a uniform random policy until the replay holds ``max(B·T, run.train_fill)`` steps and a full
  sequence per env; then the agent's policy acts;
* **train ratio**: from the end of the prefill, updates are due so that ``updates = floor(steps · train_ratio /
  (B·T))`` (exact integer arithmetic), i.e. ``train_ratio / (B·T)`` updates per env step; each samples ``B``
  sequences of ``T`` rows from the sequence replay (:class:`~.replay.Replay`, persisted in chunks);
* its checkpoint holds the agent's state and the loop's JAX key (:func:`~ambs_verify.rollout.restore.agent_tree`),
  the replay head and the replay sampler's generator.

Both act through the agent interface (:mod:`ambs_verify.agents.interface`) in its ``explore`` mode and keep the
agent's state (:attr:`state`, what :func:`~.loop.train` returns).

:class:`TransitionLearner` -- the model-free baselines (DQN, Rainbow, IQN) with dopamine's replay and update
schedule (spec §9), around a :class:`~ambs_verify.agents.baselines.Learner` that owns the agent state, its n-step
transition replay (uniform or prioritized) and the schedule:

* the agent acts from the first step: ε-greedy with ε = 1 for ``baselines.min_replay_history`` transitions, then
  decaying linearly to ``epsilon_train`` over ``epsilon_decay_period`` (Rainbow: NoisyNet exploration, ε = 0);
* a transition (observation, action, clipped reward, n-step window) is stored when the next observation arrives;
  an episode's last observation is stored as its closing slot (the bootstrap state after a time limit);
* once more than ``min_replay_history`` transitions were stored, one gradient update runs every ``update_period``
  transitions -- completed *before* the agent picks its next action, as in dopamine -- and the target network is
  copied every ``target_update_period`` transitions; Rainbow's priorities are updated from each batch's losses;
* the driver also asks for an action on each episode's last observation (never executed); that row counts towards
  ``run.steps`` but not towards the agent's step counter (ε, the update schedule), which counts executed actions;
* observations: one key, ``vector`` or ``image`` (a Dict observation with several keys is rejected);
* its checkpoint holds the agent state (online and target parameters, optimiser state, counters), the learner's
  JAX key and the replay buffers (priorities included) as one pytree, and the transition awaiting its next
  observation beside it.

Both report every update's metrics through ``on_update`` (the loop averages them and stops a run that diverges).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import jax
import numpy as np

from ..agents.interface import EXPLORE
from ..checkpoints import Checkpoint
from ..config import Config
from ..rollout.agents import BASELINE_AGENTS, observation_key
from ..rollout.driver import Driver, random_policy
from ..rollout.restore import agent_tree
from ..runs import RunDir
from .replay import Replay

__all__ = ["SequenceLearner", "TransitionLearner", "learner_family"]

# Train metrics that are not means worth logging.
_SKIPPED_METRICS = ("target_synced",)
OnUpdate = Callable[[dict[str, Any]], None]


class SequenceLearner:
    """A DreamerV3 agent (``init``, ``policy``, ``train``) learning from replayed sequences."""

    onehot = True  # the world model reads discrete actions one-hot

    def __init__(self, config: Config, agent: Any, driver: Driver, run: RunDir, on_update: OnUpdate) -> None:
        """Build ``agent`` for the driver's spaces; its replay lives in ``run.replay_dir``."""
        self.config, self.agent, self.on_update = config, agent, on_update
        batch, length = config.replay.batch_size, config.replay.batch_length
        self.batch, self.length = batch, length
        self.fill = max(batch * length, config.run.train_fill)
        self.ratio = Fraction(config.run.train_ratio) / (batch * length)
        self.key = jax.random.PRNGKey(config.seed)
        self.key, init_key = jax.random.split(self.key)
        self.state = agent.init(init_key, driver.obs_space, driver.act_space)
        self.prefill = random_policy(driver.act_space, driver.num_envs)
        self.sampler = np.random.default_rng([config.seed, 1])
        self.replay_args = (config.replay.size, driver.num_envs, run.replay_dir, config.replay.chunk)
        self.replay: Replay | None = None  # made once the run directory exists
        self.updates, self.train_start = 0, None

    def open(self) -> None:
        """Open the replay (once the run directory exists)."""
        self.replay = Replay(*self.replay_args)

    def start_over(self) -> None:
        """A run that crashed before its first checkpoint starts over: drop the rows it had written."""
        self.replay.load(0)

    def act(self, obs: dict[str, np.ndarray], carry: Any, rng: Any) -> tuple[Any, Any, dict]:
        self.key, policy_key = jax.random.split(self.key)
        if self.train_start is None:
            return self.prefill(obs, carry, policy_key)
        return self.agent.policy(self.state, carry, obs, policy_key, EXPLORE)

    @classmethod
    def build(cls, config: Config, agent: Any, driver: Driver, run: RunDir, on_update: OnUpdate) -> SequenceLearner:
        return cls(config, agent, driver, run, on_update)

    def observe(self, row: dict[str, np.ndarray], step: int) -> None:
        """Store the row; once the prefill is done, run the updates now due at the train ratio."""
        self.replay.add(row)
        if self.train_start is None and len(self.replay) >= self.fill and self.replay.can_sample(self.length):
            self.train_start = step
        if self.train_start is None:
            return
        due = (step - self.train_start) * self.ratio.numerator // self.ratio.denominator
        while self.updates < due:
            self.key, train_key = jax.random.split(self.key)
            sample = self.replay.sample(self.batch, self.length, self.sampler)
            self.state, metrics = self.agent.train(self.state, sample, train_key)
            self.updates += 1
            self.on_update(jax.device_get(metrics or {}))

    def scalars(self) -> dict[str, Any]:
        return {"replay/size": len(self.replay)}

    def checkpoint_target(self) -> Any:
        return agent_tree(self.state, self.key)

    def checkpoint(self) -> tuple[Any, dict[str, Any], dict[str, bytes]]:
        self.replay.flush()
        meta = {
            "train_start": self.train_start,
            "replay_count": self.replay.count,
            "sampler": self.sampler.bit_generator.state,
        }
        return agent_tree(self.state, self.key), meta, {}

    def restore(self, ck: Checkpoint, resumed_exactly: bool) -> None:
        self.state, self.key = ck.tree["agent"], ck.tree["key"]
        meta = ck.metadata
        self.updates, self.train_start = meta["updates"], meta["train_start"]
        self.sampler.bit_generator.state = meta["sampler"]
        self.replay.load(meta["replay_count"])


class TransitionLearner:
    """A model-free baseline learning from n-step transitions the way dopamine does (module docstring)."""

    onehot = False

    def __init__(self, learner: Any, on_update: OnUpdate) -> None:
        """Drive ``learner`` (an :class:`~ambs_verify.agents.baselines.Learner`)."""
        self.learner, self.obs_key, self.on_update = learner, learner.agent.obs_key, on_update
        self.pending: dict[str, np.ndarray] | None = None  # the last row's observation, action and end flag
        self.updates = 0

    @classmethod
    def build(cls, config: Config, agent: Any, driver: Driver, run: RunDir, on_update: OnUpdate) -> TransitionLearner:
        """Build ``agent``'s learner for the driver's spaces."""
        from ..agents.baselines import Learner

        observation_key(driver.obs_space)  # one line for a task with several observations, before the run directory
        learner = Learner(agent, driver.obs_space, driver.act_space, num_envs=driver.num_envs, seed=config.seed)
        return cls(learner, on_update)

    def open(self) -> None:
        pass

    def start_over(self) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray], carry: Any, rng: Any) -> tuple[np.ndarray, Any, dict]:
        """Complete the pending transition with the arriving observation (running the updates now due,
        dopamine's order), then act."""
        if self.pending is not None:
            last, terminal = obs["is_last"], obs["is_terminal"]
            metrics = self.learner.observe(
                self.pending["obs"],
                self.pending["action"],
                obs["reward"],
                terminal,
                last & ~terminal,
                obs[self.obs_key],
                active=~self.pending["is_last"],
            )
            for m in metrics:
                self.updates += 1
                self.on_update({k: v for k, v in m.items() if k not in _SKIPPED_METRICS})
        return self.learner.act(obs), carry, {}

    def observe(self, row: dict[str, np.ndarray], step: int = 0) -> None:
        """Remember the row's observation, action and end flag: its transition completes at the next :meth:`act`."""
        self.pending = {"obs": row[self.obs_key], "action": row["action"], "is_last": row["is_last"]}

    @property
    def state(self) -> Any:
        return self.learner.state

    def scalars(self) -> dict[str, Any]:
        return {
            "replay/size": len(self.learner.replay),
            "replay/transitions": self.learner.replay.add_count,
            "policy/epsilon": self.learner.epsilon(),
        }

    def checkpoint_target(self) -> Any:
        return self.learner.checkpoint()[0]

    def checkpoint(self) -> tuple[Any, dict[str, Any], dict[str, bytes]]:
        tree, learner_meta = self.learner.checkpoint()
        return tree, {"learner": learner_meta}, {"pending.pkl": pickle.dumps(self.pending)}

    def restore(self, ck: Checkpoint, resumed_exactly: bool) -> None:
        self.learner.load_checkpoint(ck.tree, ck.metadata["learner"])
        self.updates = ck.metadata["updates"]
        if resumed_exactly:  # the envs continue their episodes: so does the pending transition
            self.pending = pickle.loads(ck.files["pending.pkl"])


def learner_family(config: Config) -> type[SequenceLearner] | type[TransitionLearner]:
    """The learner class of ``config.agent``'s family."""
    return TransitionLearner if config.agent in BASELINE_AGENTS else SequenceLearner
