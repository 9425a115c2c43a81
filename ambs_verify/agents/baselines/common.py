"""What DQN, Rainbow and IQN share: the config base, the state pytree, ε-greedy, the optimiser, the agent shell.

An agent object holds only static things (config, network definition, optimiser, jitted functions); everything
that changes is one :class:`BaselineState` pytree, so checkpoints save exactly that.

They implement the agent interface of :mod:`ambs_verify.agents.interface`:

* ``agent.init(rng, obs_space, act_space) -> state``: ``obs_space`` is a keyed ``Dict`` with one key (``vector``
  or ``image``), the observation the agent reads;
* ``agent.policy(state, carry, obs, rng, mode) -> (actions (N,), carry, extras)``: for ``N`` envs at once.
  ``explore`` is ε-greedy with dopamine's linearly decaying ε at ``state.env_steps`` (the agent steps taken so far,
  which the :class:`~.learner.Learner` counts as it stores transitions; NoisyNet agents use ε = 0); ``deployed`` is
  dopamine's eval mode (``epsilon_eval``, no NoisyNet noise). The carry is passed through (these agents have no
  memory); ``extras["epsilon"]`` is the ε used.
* ``agent.train(state, batch, rng) -> (state, metrics)``: one gradient step on a replay batch (keys ``obs``,
  ``action``, ``reward``, ``discount``, ``next_obs``, ``weight``; see :mod:`.prioritized_replay`), then the
  target network is copied every ``target_update_period / update_period`` updates — i.e. every
  ``target_update_period`` agent steps when the caller runs one update per ``update_period`` agent steps, as
  dopamine does. ``metrics["per_sample_loss"] (B,)`` feeds prioritized replay; the other metrics are scalars.
  The input ``state`` is donated.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import flax
import gymnasium as gym
import jax
import jax.numpy as jnp
import optax

from ..interface import DEPLOYED, EXPLORE, check_mode

__all__ = [
    "BaseConfig",
    "BaselineAgent",
    "BaselineState",
    "linearly_decaying_epsilon",
    "make_optimizer",
]

TORSOS = ("nature", "mlp", "auto")


@dataclass(frozen=True)
class BaseConfig:
    """Settings shared by the baselines; configs.yaml's ``baselines`` block holds their values
    (dopamine's Atari gin values; see each agent's module).

    Sources: ``dopamine/jax/agents/{dqn,full_rainbow,implicit_quantile}/configs/*.gin`` (google/dopamine) and
    AMBS supplement Tables 6-7 (``reference/ambs_spec.md`` §9, §11.3).
    """

    gamma: float
    update_horizon: int
    min_replay_history: int  # agent steps before learning starts (and ε starts decaying)
    update_period: int  # agent steps per gradient update
    target_update_period: int  # agent steps per target-network copy
    epsilon_train: float
    epsilon_eval: float
    epsilon_decay_period: int  # agent steps
    optimizer: str  # "adam" or "rmsprop" (Nature DQN)
    learning_rate: float
    adam_eps: float
    rmsprop_decay: float
    rmsprop_eps: float
    rmsprop_centered: bool
    batch_size: int
    replay_capacity: int
    reward_clip: float | None  # dopamine clips rewards to [-1, 1] for learning
    frame_stack: int  # observations arrive stacked; replay stores one frame per step
    torso: str  # "nature" (pixels), "mlp" (vector observations) or "auto" (by the observation's rank)
    mlp_units: tuple[int, ...]
    hidden: int

    def validate(self) -> None:
        if self.update_period < 1 or self.target_update_period < 1:
            raise ValueError("update_period and target_update_period must be >= 1")
        if self.target_update_period % self.update_period:
            raise ValueError(
                f"target_update_period ({self.target_update_period}) must be a multiple of update_period "
                f"({self.update_period}) so the target is copied at an update"
            )
        if self.update_horizon < 1:
            raise ValueError(f"update_horizon must be >= 1 (got {self.update_horizon})")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1] (got {self.gamma})")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; accepted: adam, rmsprop")
        if self.torso not in TORSOS:
            raise ValueError(f"unknown torso {self.torso!r}; accepted: {', '.join(TORSOS)}")
        if self.batch_size < 1 or self.min_replay_history < 0 or self.epsilon_decay_period < 1:
            raise ValueError("batch_size and epsilon_decay_period must be >= 1 and min_replay_history >= 0")
        if not 0.0 <= self.epsilon_train <= 1.0 or not 0.0 <= self.epsilon_eval <= 1.0:
            raise ValueError("epsilon_train and epsilon_eval must lie in [0, 1]")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0 (got {self.learning_rate})")

    def torso_for(self, obs_shape: tuple[int, ...]) -> str:
        """The torso for observations of ``obs_shape``: ``auto`` picks ``nature`` for ``(H, W, C)`` images and
        ``mlp`` for anything else."""
        if self.torso != "auto":
            return self.torso
        return "nature" if len(obs_shape) == 3 else "mlp"

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)

    @property
    def target_update_every(self) -> int:
        """Gradient updates between target copies."""
        return self.target_update_period // self.update_period


@flax.struct.dataclass
class BaselineState:
    """Everything that changes during training (one pytree; checkpoint it whole).

    Attributes
    ----------
    params, target_params : pytree
        Online and target network parameters.
    opt_state : pytree
        Optax state.
    env_steps : () int32
        Agent steps taken so far (all envs together; the learner sets it): drives ε.
    updates : () int32
        Gradient updates taken through :meth:`BaselineAgent.train`.
    """

    params: Any
    target_params: Any
    opt_state: Any
    env_steps: jax.Array
    updates: jax.Array


def linearly_decaying_epsilon(step: jax.Array, decay_period: int, warmup_steps: int, epsilon: float) -> jax.Array:
    """Dopamine's ε: 1 for ``warmup_steps`` agent steps, then linear to ``epsilon`` over ``decay_period``."""
    steps_left = decay_period + warmup_steps - step
    bonus = (1.0 - epsilon) * steps_left / decay_period
    return epsilon + jnp.clip(bonus, 0.0, 1.0 - epsilon)


def make_optimizer(config: BaseConfig) -> optax.GradientTransformation:
    """Adam (dopamine's JAX agents) or centred RMSProp (Nature DQN / dopamine's TF DQN)."""
    if config.optimizer == "adam":
        return optax.adam(config.learning_rate, eps=config.adam_eps)
    return optax.rmsprop(
        config.learning_rate, decay=config.rmsprop_decay, eps=config.rmsprop_eps, centered=config.rmsprop_centered
    )


def _global_norm(tree: Any) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))


class BaselineAgent(ABC):
    """Shell shared by the three agents; subclasses provide the network and the loss (see the module docstring).

    Parameters
    ----------
    config : BaseConfig
        The agent's typed settings.
    """

    name: ClassVar[str] = ""
    modes: ClassVar[tuple[str, ...]] = (EXPLORE, DEPLOYED)
    uses_noise: ClassVar[bool] = False  # NoisyNet exploration (Rainbow): ε is forced to 0 when acting
    has_world_model: ClassVar[bool] = False  # certificates: model-level sections do not apply to these agents

    def __init__(self, config: BaseConfig) -> None:
        config.validate()
        self.config = config
        self.requested_torso = config.torso  # "auto" is resolved per observation space in init()
        self.optimizer = make_optimizer(config)
        self.num_actions: int | None = None
        self.network: flax.linen.Module | None = None
        self.obs_key: str | None = None
        self._explore_fn = None
        self._deploy_fn = None
        self._train_fn = None

    # ------------------------------------------------------------------------------------- subclass API

    @abstractmethod
    def build_network(self, num_actions: int) -> flax.linen.Module: ...

    @abstractmethod
    def init_params(self, rng: jax.Array, obs: jax.Array) -> Any: ...

    @abstractmethod
    def greedy_actions(self, params: Any, obs: jax.Array, rng: jax.Array | None) -> jax.Array:
        """``(N, *obs)`` → greedy actions ``(N,)``; ``rng=None`` means eval mode (no NoisyNet noise)."""
        ...

    @abstractmethod
    def loss(self, params: Any, target_params: Any, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]: ...

    # ------------------------------------------------------------------------------------- public API

    def init(self, rng: jax.Array, obs_space: gym.spaces.Dict, act_space: gym.Space) -> BaselineState:
        """Build the network for the spaces and return the initial state (target = online parameters).

        A ``torso="auto"`` config is resolved here, from the observation's rank (:meth:`BaseConfig.torso_for`).
        """
        if not isinstance(act_space, gym.spaces.Discrete):
            raise ValueError(f"{self.name} needs a discrete action space (got {act_space})")
        if len(obs_space.spaces) != 1:
            raise ValueError(f"{self.name} reads one observation (vector or image), not {', '.join(obs_space.spaces)}")
        ((self.obs_key, space),) = obs_space.spaces.items()
        torso = self.config.replace(torso=self.requested_torso).torso_for(tuple(space.shape))
        if torso != self.config.torso:
            self.config = self.config.replace(torso=torso)
            self.network = None
        if self.network is None or self.num_actions != act_space.n:  # keep compiled functions across inits
            self.num_actions = int(act_space.n)
            self.network = self.build_network(self.num_actions)
            self._explore_fn = jax.jit(self._explore)
            self._deploy_fn = jax.jit(self._deploy)
            self._train_fn = jax.jit(self._train, donate_argnums=(0,))
        params = self.init_params(rng, jnp.zeros((1, *space.shape), dtype=space.dtype))
        return BaselineState(
            params=params,
            target_params=jax.tree.map(jnp.copy, params),
            opt_state=self.optimizer.init(params),
            env_steps=jnp.zeros((), jnp.int32),
            updates=jnp.zeros((), jnp.int32),
        )

    def policy(
        self, state: BaselineState, carry: Any, obs: Mapping[str, Any], rng: jax.Array, mode: str = DEPLOYED
    ) -> tuple[jax.Array, Any, dict]:
        """Actions ``(N,)`` for ``obs[obs_key] (N, *obs_shape)`` in ``mode`` (module docstring)."""
        check_mode(self.modes, mode)
        # Only the parameters (and the step counter) enter the compiled call: passing the whole state would copy
        # both networks and the optimiser moments on every step.
        if mode == EXPLORE:
            actions, extras = self._explore_fn(obs[self.obs_key], state.params, state.env_steps, rng)
        else:
            actions, extras = self._deploy_fn(obs[self.obs_key], state.params, rng)
        return actions, carry, extras

    def train(self, state: BaselineState, batch: dict, rng: jax.Array) -> tuple[BaselineState, dict]:
        return self._train_fn(state, batch, rng)

    def epsilon(self, env_steps: jax.Array) -> jax.Array:
        """Training ε at ``env_steps`` (0 for NoisyNet agents, as dopamine's ``identity_epsilon``)."""
        if self.uses_noise:
            return jnp.zeros((), jnp.float32)
        c = self.config
        return linearly_decaying_epsilon(env_steps, c.epsilon_decay_period, c.min_replay_history, c.epsilon_train)

    # ------------------------------------------------------------------------------------- pure functions

    def _epsilon_greedy(self, greedy: jax.Array, epsilon: jax.Array, rng: jax.Array) -> jax.Array:
        k_explore, k_random = jax.random.split(rng)
        n = greedy.shape[0]
        explore = jax.random.uniform(k_explore, (n,)) <= epsilon
        random_actions = jax.random.randint(k_random, (n,), 0, self.num_actions)
        return jnp.where(explore, random_actions, greedy).astype(jnp.int32)

    def _explore(self, obs, params, env_steps, rng):
        k_net, k_eps = jax.random.split(rng)
        epsilon = self.epsilon(env_steps)
        actions = self._epsilon_greedy(self.greedy_actions(params, obs, k_net), epsilon, k_eps)
        return actions, {"epsilon": epsilon}

    def _deploy(self, obs, params, rng):
        k_net, k_eps = jax.random.split(rng)
        epsilon = jnp.asarray(self.config.epsilon_eval, jnp.float32)
        # IQN samples quantile fractions even in eval mode; only NoisyNet noise is switched off.
        greedy = self.greedy_actions(params, obs, None if self.uses_noise else k_net)
        return self._epsilon_greedy(greedy, epsilon, k_eps), {"epsilon": epsilon}

    def _train(self, state: BaselineState, batch: dict, rng):
        def loss_fn(params):
            return self.loss(params, state.target_params, batch, rng)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        count = state.updates + 1
        sync = count % self.config.target_update_every == 0
        target = jax.tree.map(lambda p, t: jnp.where(sync, p, t), params, state.target_params)
        metrics = {**metrics, "loss": loss, "grad_norm": _global_norm(grads), "target_synced": sync}
        state = BaselineState(params, target, opt_state, state.env_steps, count)
        return state, metrics


def select(values: jax.Array, actions: jax.Array) -> jax.Array:
    """``values (B, A, ...)``, ``actions (B,)`` → ``values[b, actions[b], ...]`` of shape ``(B, ...)``."""
    idx = actions.reshape(actions.shape + (1,) * (values.ndim - 1)).astype(jnp.int32)
    return jnp.take_along_axis(values, idx, axis=1)[:, 0]
