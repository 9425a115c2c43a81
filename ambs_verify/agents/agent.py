"""The AMBS DreamerV3 agent's learner: initialisation and the jitted train step (spec §1, §3, §4).

One update = world model, then the safe behaviour (reward -clip(cost, 0, C)), then the task behaviour (extrinsic
reward) together with its TD3-style twin cost critic (advantage scale 0), the PENL critic and the PLPG / COPT /
Lagrangian shaping of its advantage when configured (:func:`task_critics`, :func:`task_shaping`). Both behaviours
imagine from the same ``B * T`` posterior states of the batch with the freshly updated world model.

The whole learner state is one pytree of dicts and arrays (saveable as is)::

    step        int32 scalar, number of updates done
    wm          {"params", "opt"}
    task        behaviour state (see ImagActorCritic)
    safe        behaviour state (absent when shielding is off)

``train_step(state, batch, rng) -> (state, metrics)`` is pure; :meth:`Agent.jit_train_step` jits it with the state
buffers donated.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from . import rssm as R
from .actor_critic import CriticSpec, ImagActorCritic
from .config import AgentConfig
from .penalties import Shaping
from .sharding import DataParallel, shard_rows
from .world_model import WorldModel

__all__ = ["Agent", "count_params", "task_critics", "task_shaping"]

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def count_params(tree) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _value_critic(name: str, reward: str, ac, scale: float = 1.0) -> CriticSpec:
    """A single critic with the actor-critic's discount, optimiser and slow-critic settings."""
    return CriticSpec(
        name,
        reward,
        "cont",
        ac.discount,
        scale,
        opt=ac.critic_opt,
        slow_fraction=ac.slow_critic_fraction,
        slow_update=ac.slow_critic_update,
    )


def _safety_critic(name: str, reward: str, cont: str, s, scale: float = 0.0, members: int = 1) -> CriticSpec:
    """A critic with the safety critic's discount gamma_s, optimiser and slow-critic settings."""
    return CriticSpec(
        name,
        reward,
        cont,
        s.discount,
        scale,
        members,
        s.twin_reduction,
        opt=s.safety_critic_opt,
        slow_fraction=s.slow_safety_critic_fraction,
        slow_update=s.slow_safety_critic_update,
    )


def task_critics(config: AgentConfig) -> tuple[CriticSpec, ...]:
    """The task behaviour's critics: ``extr``; the twin ``cost`` critic (shield bootstrap, COPT) or, for the
    Lagrangian baseline, a single ``cost`` critic with ``cont``; and the PENL critic ``penl`` when
    ``penalty_coeff`` != 0 (spec §4.1, §6.1, §7.1)."""
    ac, s, p = config.actor_critic, config.safety, config.penalty
    critics = [_value_critic("extr", "reward", ac)]
    if config.lagrangian.enabled:
        critics.append(_safety_critic("cost", "cost", "cont", s))
    elif s.shield_bootstrap:
        critics.append(_safety_critic("cost", "cost", "safe_cont", s, members=2))
    if p.penalty_coeff != 0.0:
        if p.use_safety_critic_params:
            critics.append(_safety_critic("penl", "neg_cost", "safe_cont", s, scale=p.penalty_coeff))
        else:
            critics.append(_value_critic("penl", "neg_cost", ac, scale=p.penalty_coeff))
    return tuple(critics)


def task_shaping(config: AgentConfig) -> Shaping:
    """The task advantage's :class:`~ambs_verify.agents.penalties.Shaping`; raises ValueError on combinations
    that lack what they need (PLPG without the safe policy, COPT without the cost critic)."""
    s, p, lag = config.safety, config.penalty, config.lagrangian
    if p.plpg and not s.shielding:
        raise ValueError("plpg needs the safe policy's critic: set shielding true")
    if p.copt and not (s.shield_bootstrap or lag.enabled):
        raise ValueError("copt needs the cost critic: set shield_bootstrap true")
    return Shaping(
        plpg=p.plpg,
        copt=p.copt,
        copt_scale=p.sigmoid_scale,
        copt_threshold=s.cost_val * s.discount**p.threshold_horizon,
        cost_discount=s.discount,
        lagrangian=lag.enabled,
        lagrange_mult=lag.lagrange_mult,
        penalty_mult=lag.penalty_mult,
        penalty_pow=lag.penalty_pow,
        cost_threshold=lag.cost_threshold,
    )


class Agent:
    """DreamerV3 + AMBS learner.

    Parameters
    ----------
    config : AgentConfig
    obs_space : mapping observation key -> shape without batch axes (rank 3: image, rank 1: vector).
    act_dim : number of discrete actions or continuous action dimensions.
    discrete : whether actions are one-hot discrete.
    """

    def __init__(
        self, config: AgentConfig, obs_space: Mapping[str, tuple[int, ...]], act_dim: int, discrete: bool
    ) -> None:
        self.config = config
        self.discrete = bool(discrete)
        self.act_dim = int(act_dim)
        dtype = DTYPES[config.compute_dtype]
        s = config.safety
        cost_clip = s.cost_val if s.clip_costs else None
        self.wm = WorldModel(config.world_model, obs_space, act_dim, cost_clip, dtype)
        ac = config.actor_critic
        self.task = ImagActorCritic(
            ac, task_critics(config), self.wm, act_dim, discrete, cost_clip, dtype, task_shaping(config)
        )
        self.safe = None
        if s.shielding:
            safe_critics = (_value_critic("cost", "neg_cost", ac),)
            if s.safe_reward_scale > 0:  # the task reward as a tie-breaker between equally safe actions
                safe_critics += (_value_critic("extr", "reward", ac, scale=s.safe_reward_scale),)
            self.safe = ImagActorCritic(ac, safe_critics, self.wm, act_dim, discrete, cost_clip, dtype)

    # ------------------------------------------------------------------------------------------- init

    def init(self, key: jax.Array) -> dict:
        """Fresh learner state (see module doc)."""
        k_wm, k_task, k_safe = jax.random.split(key, 3)
        wm_params = self.wm.init(k_wm)
        state = {
            "step": jnp.zeros((), jnp.int32),
            "wm": {"params": wm_params, "opt": self.wm.init_opt(wm_params)},
            "task": self.task.init(k_task),
        }
        if self.safe is not None:
            state["safe"] = self.safe.init(k_safe)
        return state

    def param_counts(self, state: dict) -> dict[str, int]:
        """Parameter counts per component (slow critics and optimiser states excluded)."""
        wm = state["wm"]["params"]
        counts = {f"wm/{k}": count_params(v) for k, v in wm.items()}
        counts["wm"] = count_params(wm)
        for name in ("task", "safe"):
            if name not in state:
                continue
            b = state[name]
            counts[f"{name}/actor"] = count_params(b["actor"])
            for cname, cs in b["critics"].items():
                counts[f"{name}/critic_{cname}"] = count_params(cs["params"])
        # DreamerV3 equivalent: world model without the AMBS heads + task actor + task extrinsic critic.
        counts["dreamerv3"] = (
            counts["wm"]
            - counts["wm/cost"]
            - counts["wm/safe_cont"]
            + counts["task/actor"]
            + counts["task/critic_extr"]
        )
        counts["total"] = counts["wm"] + sum(v for k, v in counts.items() if k.startswith(("task/", "safe/")))
        return counts

    # ------------------------------------------------------------------------------------------ train

    def starts(self, post: R.State, batch: Mapping[str, jax.Array]) -> dict:
        """Imagination starts from the ``(B, T)`` posterior: every state flattened to ``N = B * T`` rows."""
        flat = shard_rows(jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), jax.lax.stop_gradient(post)))
        cont = 1.0 - batch["is_terminal"].astype(jnp.float32).reshape(-1)
        safe_cont = (batch["cost"].astype(jnp.float32).reshape(-1) <= 0).astype(jnp.float32)
        return {"state": flat, "cont": cont, "safe_cont": safe_cont}

    def train_step(self, state: dict, batch: Mapping[str, jax.Array], rng: jax.Array) -> tuple[dict, dict]:
        """One update of world model, safe behaviour and task behaviour. Pure; see module doc for shapes."""
        k_wm, k_safe, k_task = jax.random.split(rng, 3)
        step = state["step"]
        wm_params, wm_opt, metrics, post = self.wm.update(state["wm"]["params"], state["wm"]["opt"], batch, k_wm)
        metrics = {f"wm/{k}": v for k, v in metrics.items()}
        start = self.starts(post, batch)
        new = {"step": step + 1, "wm": {"params": wm_params, "opt": wm_opt}}
        if self.safe is not None:
            new["safe"], mets = self.safe.update(state["safe"], wm_params, start, k_safe, step)
            metrics.update({f"safe/{k}": v for k, v in mets.items()})
        aux = {"safe_critic": new["safe"]["critics"]["cost"]["params"]} if self.task.shaping.plpg else None
        new["task"], mets = self.task.update(state["task"], wm_params, start, k_task, step, aux)
        metrics.update({f"task/{k}": v for k, v in mets.items()})
        return new, metrics

    def jit_train_step(self, donate: bool = True, parallel: DataParallel | None = None):
        """``jax.jit(train_step)`` with the state's buffers donated; with ``parallel``, the batch split over its
        devices and the state replicated (:meth:`DataParallel.jit_step`)."""
        if parallel is not None:
            return parallel.jit_step(self.train_step, donate)
        return jax.jit(self.train_step, donate_argnums=(0,) if donate else ())

    # ------------------------------------------------------------------------------------------ acting

    def initial_carry(self, state: dict, batch: int) -> dict:
        """Acting carry ``{"latent": state (N, ...), "action": (N, A)}`` at the learned initial state."""
        latent = self.wm.initial_state(state["wm"]["params"], batch)
        return {"latent": latent, "action": jnp.zeros((batch, self.act_dim), jnp.float32)}

    def observe_step(
        self, state: dict, carry: dict, obs: Mapping[str, jax.Array], is_first: jax.Array, key: jax.Array
    ) -> R.State:
        """Posterior latent ``(N, ...)`` after observing ``obs`` (values ``(N, ...)``) given the carry."""
        params = state["wm"]["params"]
        embed = self.wm.encode(params, obs)
        return self.wm.obs_step(params, carry["latent"], carry["action"], embed, is_first, key)

    def dummy_batch(self, batch_size: int | None = None, length: int | None = None, seed: int = 0) -> dict:
        """A random batch with the right shapes and dtypes (for tests and benchmarks)."""
        b = batch_size or self.config.batch_size
        t = length or self.config.batch_length
        rng = np.random.default_rng(seed)
        out = {}
        for k, shape in self.wm.obs_space.items():
            if len(shape) == 3:
                out[k] = rng.integers(0, 256, (b, t, *shape), dtype=np.uint8)
            else:
                out[k] = rng.normal(size=(b, t, *shape)).astype(np.float32)
        if self.discrete:
            out["action"] = np.eye(self.act_dim, dtype=np.float32)[rng.integers(0, self.act_dim, (b, t))]
        else:
            out["action"] = rng.uniform(-1, 1, (b, t, self.act_dim)).astype(np.float32)
        out["reward"] = rng.normal(size=(b, t)).astype(np.float32)
        out["cost"] = (rng.random((b, t)) < 0.1).astype(np.float32) * self.config.safety.cost_val
        first = np.zeros((b, t), bool)
        first[:, 0] = True
        out["is_first"] = first
        out["is_terminal"] = rng.random((b, t)) < 0.01
        return {k: jnp.asarray(v) for k, v in out.items()}
