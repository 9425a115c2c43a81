"""The trainer-facing DreamerV3 / AMBS agent: shielded acting plus the jitted learner update.

It implements the agent interface of :mod:`.interface` (``init``, ``policy``, ``train``). Acting is one jitted
call per environment step for all ``N`` environments: posterior update, task action, safe action, the shield's
decision (:func:`~ambs_verify.agents.shield.shield_decision`) and the executed action, which is fed back into the
recurrent carry (spec §4.3 step 7). With ``shield=None`` (or a learner without a safe behaviour) it is plain
DreamerV3: the unshielded baseline.

The policy's extras are returned for the step they were computed for: ``p_hat``, ``bound`` and ``override``
(with the sequential shield rule also ``samples``, the traces drawn, and ``decided``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from . import rssm as R
from .agent import Agent
from .config import AgentConfig
from .interface import DEPLOYED, EXPLORE, check_mode
from .sharding import DataParallel
from .shield import ShieldConfig, shield_decision

__all__ = ["DreamerAgent"]


class DreamerAgent:
    """DreamerV3 with (``shield`` given) or without the AMBS shield.

    Parameters
    ----------
    config : AgentConfig
        Learner hyper-parameters; ``config.safety.shielding`` must be True for a shield (the safe policy).
    shield : ShieldConfig or None
        The shield's settings; None acts with the task policy alone.
    parallel : DataParallel or None
        Devices to split the learner's batch and the shield's traces over (the state is replicated on each); None
        runs on JAX's default device.
    """

    def __init__(self, config: AgentConfig, shield: ShieldConfig | None, parallel: DataParallel | None = None) -> None:
        if shield is not None and not config.safety.shielding:
            raise ValueError("a shield needs the safe policy: set shielding True in the agent config")
        self.config = config
        self.shield = shield
        self.parallel = parallel
        self.learner: Agent | None = None

    def _devices(self):
        """The context the jitted functions are traced and run in: the data-parallel mesh, when there is one."""
        return self.parallel.active() if self.parallel is not None else contextlib.nullcontext()

    @property
    def modes(self) -> tuple[str, ...]:
        """``explore`` and ``deployed`` (both: the task policy under the shield, when there is one), ``task`` (the
        task policy alone: certificates audit its own rollouts) and, with a safe policy, ``safe``."""
        return (EXPLORE, DEPLOYED, "task", *(("safe",) if self.config.safety.shielding else ()))

    # ------------------------------------------------------------------------------------------- setup

    def init(self, rng: jax.Array, obs_space: gym.spaces.Dict, act_space: gym.Space) -> dict:
        """Build the learner for these spaces; its initial state."""
        shapes = {key: tuple(space.shape) for key, space in obs_space.spaces.items()}
        if isinstance(act_space, gym.spaces.Discrete):
            act_dim, discrete = int(act_space.n), True
        elif isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
            act_dim, discrete = int(act_space.shape[0]), False
        else:
            raise ValueError(f"unsupported action space {act_space}; accepted: Discrete or a 1-D Box")
        self.obs_keys = tuple(shapes)
        self.learner = Agent(self.config, shapes, act_dim, discrete)
        self._train = self.learner.jit_train_step(parallel=self.parallel)
        self._act = jax.jit(self._act_fn, static_argnames="mode")
        state = self.learner.init(rng)
        return state if self.parallel is None else self.parallel.replicate(state)

    # ------------------------------------------------------------------------------------------ acting

    def _act_fn(
        self,
        state: dict,
        carry: dict,
        obs: Mapping[str, jax.Array],
        is_first: jax.Array,
        key: jax.Array,
        mode: str,
    ) -> tuple[jax.Array, dict, dict[str, jax.Array]]:
        learner = self.learner
        k_obs, k_task, k_safe, k_shield = jax.random.split(key, 4)
        post = learner.observe_step(state, carry, obs, is_first, k_obs)
        feat = R.feat(post)
        extras: dict[str, jax.Array] = {}
        if mode == "safe":
            action = learner.safe.act(state["safe"]["actor"], feat, k_safe)
            return action, {"latent": post, "action": action}, extras
        action = learner.task.act(state["task"]["actor"], feat, k_task)
        if self.shield is not None and mode != "task":
            safe_action = learner.safe.act(state["safe"]["actor"], feat, k_safe)
            decision = shield_decision(
                self.shield, learner.wm, learner.task, state["wm"]["params"], state["task"], post, k_shield
            )
            action = jnp.where(decision["override"][:, None], safe_action, decision.get("action", action))
            shown = (
                "p_hat",
                "bound",
                "override",
                "replaced",
                *(("samples", "decided") if "decided" in decision else ()),
            )
            extras = {k: decision[k] for k in shown if k in decision}
        return action, {"latent": post, "action": action}, extras

    def policy(
        self, state: dict, carry: dict | None, obs: Mapping[str, np.ndarray], rng: jax.Array, mode: str = DEPLOYED
    ):
        """Actions ``(N, A)`` (one-hot for discrete spaces) for the current observations of ``N`` envs.

        The carry is ``{"latent": posterior at these observations, "action": executed action}`` (both ``(N, ...)``;
        None starts from the learned initial state). ``mode``: one of :attr:`modes`.
        """
        check_mode(self.modes, mode)
        n = len(obs["is_first"])
        if carry is None:
            carry = self.learner.initial_carry(state, n)
        inputs = {k: jnp.asarray(obs[k]) for k in self.obs_keys}
        # explore and deployed act alike: one compiled function for both
        mode = DEPLOYED if mode == EXPLORE else mode
        with self._devices():
            action, carry, extras = self._act(state, carry, inputs, jnp.asarray(obs["is_first"]), rng, mode)
        return np.asarray(action), carry, {k: np.asarray(v) for k, v in extras.items()}

    # ---------------------------------------------------------------------------------------- learning

    def train(self, state: dict, batch: Mapping[str, np.ndarray], rng: jax.Array) -> tuple[dict, dict]:
        """One world-model + safe + task update (jitted, state buffers donated)."""
        keys = (*self.obs_keys, "action", "reward", "cost", "is_first", "is_last", "is_terminal")
        with self._devices():  # numpy rows go straight to their devices under a DataParallel
            new_state, metrics = self._train(state, {k: np.asarray(batch[k]) for k in keys}, rng)
        return new_state, metrics
