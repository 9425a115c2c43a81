"""Imagination actor-critic (spec §3.3, §3.4, §4.1, §4.2): actor, critics (incl. the TD3-style twin cost
critic), lambda-returns, percentile return normalisation, losses and the update of one behaviour.

A *behaviour* (:class:`ImagActorCritic`) is one actor plus any number of critics, each described by a
:class:`CriticSpec`: which imagined signal is its reward, which continuation flag stops its bootstrapping,
its discount, its advantage scale (0 = trained but not used by the actor) and its number of ensemble members
(2 for the twin cost critic, combined by ``min``/``max``/``mean``). The AMBS agent has two behaviours:

* task: ``extr`` (reward head, ``cont``, scale 1) and ``cost`` (clip(cost head, 0, C), ``safe_cont``,
  gamma_s, scale 0, twin critic), the latter used only by the shield's bootstrap (and COPT);
* safe: ``cost`` (reward = -clip(cost head, 0, C), ``cont``, scale 1).

Imagined trajectories are time-major: ``(H + 1, N, ...)`` for states and per-state quantities, ``(H, N, ...)``
for actions and per-transition quantities, ``N`` start states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from . import distributions as D
from . import rssm as R
from .config import ActorCriticConfig, OptimizerConfig
from .nets import MLP, OutDense
from .optim import ema, make_optimizer, optimizer_step
from .penalties import (
    Shaping,
    copt_weight,
    discounted_cost_returns,
    lagrangian_penalty,
    lagrangian_update,
    plpg_weight,
)

__all__ = [
    "Actor",
    "Critic",
    "CriticSpec",
    "ImagActorCritic",
    "cumulative_weight",
    "lambda_return",
    "reduce_members",
    "retnorm_update",
]

sg = jax.lax.stop_gradient


# ------------------------------------------------------------------------------------------------ modules


class Actor(nn.Module):
    """Policy network on the latent feature.

    Discrete: ``(..., F) -> {'logits': (..., A)}`` (log-probabilities after unimix).
    Continuous: ``(..., F) -> {'mean': (..., A), 'std': (..., A)}`` of a bounded normal.
    """

    config: ActorCriticConfig
    act_dim: int
    discrete: bool
    dtype: jnp.dtype | type = jnp.float32

    @nn.compact
    def __call__(self, feat: jax.Array) -> dict[str, jax.Array]:
        c = self.config
        x = MLP(c.actor.layers, c.actor.units, dtype=self.dtype, name="mlp")(feat)
        if self.discrete:
            logits = OutDense(self.act_dim, 1.0, dtype=self.dtype, name="out")(x)
            return {"logits": D.unimix_logits(logits, c.actor.unimix)}
        out = OutDense(2 * self.act_dim, 1.0, dtype=self.dtype, name="out")(x)
        mean, std = D.bounded_normal(out[..., : self.act_dim], out[..., self.act_dim :], c.actor.minstd, c.actor.maxstd)
        return {"mean": mean, "std": std}


class Critic(nn.Module):
    """Value network: ``(..., F) -> (..., bins)`` two-hot symlog logits, zero-initialised output layer."""

    config: ActorCriticConfig
    dtype: jnp.dtype | type = jnp.float32

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        c = self.config
        x = MLP(c.critic.layers, c.critic.units, dtype=self.dtype, name="mlp")(feat)
        return OutDense(c.critic.bins, 0.0, dtype=self.dtype, name="out")(x)


# ---------------------------------------------------------------------------------------------- functions


def lambda_return(reward: jax.Array, value: jax.Array, disc: jax.Array, lam: float) -> jax.Array:
    """TD(lambda) returns over an imagined trajectory.

    ``R_H = V_H``; ``R_t = r_t + disc_t * ((1 - lam) * V_{t+1} + lam * R_{t+1})`` for t = H-1 .. 0, where
    ``r_t`` is the reward received on the transition t -> t+1 (the head's prediction at state t+1) and
    ``disc_t = gamma * cont_{t+1}``.

    Parameters
    ----------
    reward : ``(H, ...)``
    value : ``(H + 1, ...)``
    disc : ``(H, ...)``

    Returns
    -------
    ``(H, ...)`` returns ``R_0 .. R_{H-1}``.
    """
    interm = reward + disc * value[1:] * (1.0 - lam)

    def step(nxt: jax.Array, inp: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        i, d = inp
        cur = i + d * lam * nxt
        return cur, cur

    _, rets = jax.lax.scan(step, value[-1], (interm, disc), reverse=True)
    return rets


def cumulative_weight(cont: jax.Array, discount: float) -> jax.Array:
    """``weight_t = discount**t * prod_{i<=t} cont_i`` along axis 0: ``(H + 1, ...) -> (H + 1, ...)``."""
    return jnp.cumprod(discount * cont, axis=0) / discount


def retnorm_update(
    stats: jax.Array, ret: jax.Array, config: ActorCriticConfig
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Percentile return normalisation (EMA of the 5th/95th percentiles, no bias correction).

    ``stats (2,)`` = (low, high), starting at 0. Returns ``(new_stats, offset, scale)`` with
    ``scale = max(1 / retnorm_max, high - low)``; everything stop-gradiented.
    """
    x = sg(ret).astype(jnp.float32).reshape(-1)
    q = jnp.percentile(x, jnp.array([config.retnorm.perclo, config.retnorm.perchi], jnp.float32))
    decay = config.retnorm.decay
    new = decay * stats + (1.0 - decay) * q
    scale = jnp.maximum(1.0 / config.retnorm.max, new[1] - new[0])
    return new, new[0], scale


def reduce_members(values: jax.Array, reduction: str) -> jax.Array:
    """Combine ensemble values over axis 0 by ``min``, ``max`` or ``mean``."""
    if values.shape[0] == 1:
        return values[0]
    if reduction == "min":
        return values.min(0)
    if reduction == "max":
        return values.max(0)
    if reduction == "mean":
        return values.mean(0)
    raise ValueError(f"unknown reduction {reduction!r}")


def actor_sample(dist: Mapping[str, jax.Array], key: jax.Array) -> jax.Array:
    """Sample an action: straight-through one-hot (discrete) or reparameterised normal (continuous)."""
    if "logits" in dist:
        return D.onehot_sample(key, dist["logits"])
    return D.normal_sample(key, dist["mean"], dist["std"])


def actor_candidates(dist: Mapping[str, jax.Array], key: jax.Array, k: int) -> jax.Array:
    """``k`` candidate actions ``(..., k, A)`` in order of preference, the first a plain sample: distinct actions
    drawn without replacement (discrete; ``k`` at most the number of actions) or ``k`` independent samples
    (continuous). No gradient: a shield chooses among them."""
    if "logits" in dist:
        return D.onehot_ranked(key, dist["logits"], min(k, dist["logits"].shape[-1]))
    mean, std = (jnp.repeat(dist[name][..., None, :], k, axis=-2) for name in ("mean", "std"))
    return jax.lax.stop_gradient(D.normal_sample(key, mean, std))


def actor_mode(dist: Mapping[str, jax.Array]) -> jax.Array:
    """Most likely action (greedy one-hot, or the normal's mean)."""
    if "logits" in dist:
        return D.onehot_mode(dist["logits"])
    return dist["mean"]


def actor_log_prob(dist: Mapping[str, jax.Array], action: jax.Array) -> jax.Array:
    if "logits" in dist:
        return D.onehot_log_prob(dist["logits"], action)
    return D.normal_log_prob(dist["mean"], dist["std"], action)


def actor_entropy(dist: Mapping[str, jax.Array]) -> jax.Array:
    if "logits" in dist:
        return D.categorical_entropy(dist["logits"])
    return D.normal_entropy(dist["std"])


# ---------------------------------------------------------------------------------------------- behaviour


@dataclass(frozen=True)
class CriticSpec:
    """One critic of a behaviour.

    ``reward``: ``"reward"`` (reward head), ``"cost"`` (clip(cost head, 0, C)) or ``"neg_cost"`` (its negative).
    ``cont``: continuation flag stopping the bootstrap, ``"cont"`` or ``"safe_cont"``; the critic's loss is
    weighted by the cumulative product of ``discount * cont``.
    ``scale``: advantage scale in the actor loss (0: trained, not used by the actor).
    ``members``: ensemble size (2 = TD3-style twin with ``reduction`` over members).
    """

    name: str
    reward: Literal["reward", "cost", "neg_cost"]
    cont: Literal["cont", "safe_cont"]
    discount: float
    scale: float
    members: int = 1
    reduction: Literal["min", "max", "mean"] = "min"  # over members; a single critic has nothing to reduce
    # the settings of the critic's config block (critic_opt or safety_critic_opt, slow_*), which hold their defaults
    opt: OptimizerConfig = field(kw_only=True)
    slow_fraction: float = field(kw_only=True)
    slow_update: int = field(kw_only=True)


class ImagActorCritic:
    """One behaviour: an actor and its critics, trained on trajectories imagined with the world model.

    The behaviour's state (a dict pytree) is::

        actor       actor parameters
        actor_opt   its optimiser state
        critics     {name: {"params", "slow", "opt"}}  (parameters stacked over ensemble members)
        retnorm     {name: (2,) [low, high]}           (critics with a non-zero advantage scale)
        lagrange    {"lambda", "mu"} scalars             (only with the Lagrangian shaping)

    Parameters
    ----------
    config : ActorCriticConfig
    critics : the :class:`CriticSpec` tuple.
    wm : the :class:`~ambs_verify.agents.world_model.WorldModel`.
    act_dim, discrete : the action space.
    cost_clip : C for clipping predicted costs used as critic rewards (``None``: no clipping).
    shaping : :class:`~ambs_verify.agents.penalties.Shaping` of the ``"extr"`` advantage (PLPG, COPT, Lagrangian).
        PLPG needs the safe critic's parameters in ``aux["safe_critic"]``; COPT the ``"cost"`` critic (bootstrap);
        the Lagrangian a ``"cost"`` critic whose lambda-return is penalised.
    """

    def __init__(
        self,
        config: ActorCriticConfig,
        critics: tuple[CriticSpec, ...],
        wm,
        act_dim: int,
        discrete: bool,
        cost_clip: float | None = 10.0,
        dtype: jnp.dtype | type = jnp.float32,
        shaping: Shaping | None = None,
    ) -> None:
        self.config = config
        self.critics = tuple(critics)
        self.shaping = shaping = shaping or Shaping.none()
        names = {s.name for s in self.critics}
        if (shaping.copt or shaping.lagrangian) and "cost" not in names:
            raise ValueError("COPT and the Lagrangian penalty need a 'cost' critic")
        if shaping.active and "extr" not in names:
            raise ValueError("advantage shaping needs the 'extr' critic")
        self.wm = wm
        self.act_dim = int(act_dim)
        self.discrete = bool(discrete)
        self.cost_clip = cost_clip
        grad = config.actor_grad
        if grad == "auto":
            grad = "reinforce" if discrete else "backprop"
        self.actor_grad = grad
        self.actor_net = Actor(config, act_dim, discrete, dtype)
        self.critic_net = Critic(config, dtype)
        self.bins = D.twohot_bins(config.critic.bins)
        self.actor_tx = make_optimizer(config.actor_opt)
        self.critic_tx = {s.name: make_optimizer(s.opt) for s in critics}
        self._jit_init = jax.jit(self._init)

    # ------------------------------------------------------------------------------------------- init

    def init(self, key: jax.Array) -> dict:
        """Fresh behaviour state (jitted)."""
        return self._jit_init(key)

    def _init(self, key: jax.Array) -> dict:
        feat = jnp.zeros((1, self.wm.feat_dim), jnp.float32)
        k_actor, k_critic = jax.random.split(key)
        actor = self.actor_net.init(k_actor, feat)["params"]
        critics, retnorm = {}, {}
        for spec, k in zip(self.critics, jax.random.split(k_critic, len(self.critics)), strict=True):
            params = jax.vmap(lambda kk: self.critic_net.init(kk, feat)["params"])(jax.random.split(k, spec.members))
            critics[spec.name] = {
                "params": params,
                "slow": jax.tree.map(jnp.copy, params),
                "opt": jax.vmap(self.critic_tx[spec.name].init)(params),
            }
            if spec.scale != 0.0:
                retnorm[spec.name] = jnp.zeros((2,), jnp.float32)
        state = {"actor": actor, "actor_opt": self.actor_tx.init(actor), "critics": critics, "retnorm": retnorm}
        if self.shaping.lagrangian:
            state["lagrange"] = {
                "lambda": jnp.asarray(self.shaping.lagrange_mult, jnp.float32),
                "mu": jnp.asarray(self.shaping.penalty_mult, jnp.float32),
            }
        return state

    # -------------------------------------------------------------------------------------- functions

    def dist(self, actor_params: dict, feat: jax.Array) -> dict[str, jax.Array]:
        """Action distribution parameters at ``feat (..., F)``."""
        return self.actor_net.apply({"params": actor_params}, feat)

    def act(self, actor_params: dict, feat: jax.Array, key: jax.Array, sample: bool = True) -> jax.Array:
        """Action ``(..., A)`` at ``feat (..., F)``: a sample, or the mode when ``sample`` is False."""
        dist = self.dist(actor_params, feat)
        return actor_sample(dist, key) if sample else actor_mode(dist)

    def policy(self, actor_params: dict) -> R.Policy:
        """A policy function for :func:`~ambs_verify.agents.rssm.imagine` (actor input stop-gradiented)."""

        def fn(state: R.State, key: jax.Array) -> jax.Array:
            return actor_sample(self.dist(actor_params, sg(R.feat(state))), key)

        return fn

    def critic_values(self, params: dict, feat: jax.Array) -> jax.Array:
        """Values of every ensemble member: stacked ``params``, ``feat (..., F)`` -> ``(members, ...)``."""
        logits = jax.vmap(lambda p: self.critic_net.apply({"params": p}, feat))(params)
        return D.twohot_mean(logits, self.bins)

    def value(self, state: dict, name: str, feat: jax.Array) -> jax.Array:
        """The reduced value of critic ``name`` at ``feat (..., F)`` (e.g. the twin cost critic's min)."""
        spec = next(s for s in self.critics if s.name == name)
        return reduce_members(self.critic_values(state["critics"][name]["params"], feat), spec.reduction)

    def _clip_cost(self, cost: jax.Array) -> jax.Array:
        return jnp.clip(cost, 0.0, self.cost_clip) if self.cost_clip is not None else cost

    def imagine(
        self, actor_params: dict, wm_params: dict, start: Mapping[str, jax.Array], key: jax.Array
    ) -> dict[str, jax.Array]:
        """Imagine ``imag_horizon`` steps from ``start`` with this behaviour's actor.

        ``start``: ``{"state": latent (N, ...), "cont": (N,), "safe_cont": (N,)}`` (the last two from the real
        data: ``1 - is_terminal`` and ``1[cost == 0]``). Returns a trajectory dict with ``feat (H+1, N, F)``,
        ``action (H, N, A)``, ``cont``/``safe_cont``/``weight`` ``(H+1, N)`` and the rewards the critics need
        (``reward``, ``cost`` clipped) ``(H, N)`` for states 1..H.
        """
        wm = self.wm
        horizon = self.config.imag_horizon
        states, actions = wm.imagine(wm_params, self.policy(actor_params), start["state"], horizon, key)
        f = R.feat(states)
        traj = {"feat": f, "action": actions}
        needs = {s.reward for s in self.critics} | {s.cont for s in self.critics} | {"cont"}
        if self.shaping.active:
            needs.add("cost")
        if "cont" in needs:
            traj["cont"] = jnp.concatenate([start["cont"][None].astype(jnp.float32), wm.cont(wm_params, f[1:])])
        if "safe_cont" in needs:
            traj["safe_cont"] = jnp.concatenate(
                [start["safe_cont"][None].astype(jnp.float32), wm.safe_cont(wm_params, f[1:])]
            )
        if "reward" in needs:
            traj["reward"] = wm.reward(wm_params, f[1:])
        if "cost" in needs or "neg_cost" in needs:
            traj["cost"] = self._clip_cost(wm.cost(wm_params, f[1:]))
        traj["weight"] = cumulative_weight(traj["cont"], self.config.discount)
        return traj

    def _critic_reward(self, spec: CriticSpec, traj: Mapping[str, jax.Array]) -> jax.Array:
        if spec.reward == "reward":
            return traj["reward"]
        if spec.reward == "cost":
            return traj["cost"]
        return -traj["cost"]

    def score(
        self, spec: CriticSpec, params: dict, traj: Mapping[str, jax.Array]
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(reward (H, N), lambda-return (H, N), baseline V(s_0..s_{H-1}) (H, N))`` of one critic, using its
        online (fast) networks reduced over members."""
        rew = self._critic_reward(spec, traj)
        value = reduce_members(self.critic_values(params, traj["feat"]), spec.reduction)
        disc = spec.discount * traj[spec.cont][1:]
        ret = lambda_return(rew, value, disc, self.config.return_lambda)
        return rew, ret, value[:-1]

    # ------------------------------------------------------------------------------------------- loss

    def shaping_weight(
        self, state: dict, traj: Mapping[str, jax.Array], aux: Mapping[str, dict]
    ) -> tuple[jax.Array, dict]:
        """The factor ``(H, N)`` on the normalised ``"extr"`` advantage: PLPG's ``rho`` first, then COPT's
        ``1 - sg(w)`` (spec §6.3: that order when both are on); 1 when neither is on."""
        sh, metrics = self.shaping, {}
        weight = jnp.ones_like(traj["cost"] if "cost" in traj else traj["reward"])
        if sh.plpg:
            safe_value = self.critic_values(aux["safe_critic"], traj["feat"])[0]
            rho = plpg_weight(traj["cost"], safe_value)
            weight = weight * rho
            metrics.update(plpg_weight_mean=sg(rho).mean(), plpg_weight_min=sg(rho).min())
        if sh.copt:
            boot = self._clip_cost(self.value(state, "cost", traj["feat"][-1]))
            returns = discounted_cost_returns(traj["cost"], traj["cont"][1:], boot, sh.cost_discount)
            w = sg(copt_weight(returns, sh.copt_threshold, sh.copt_scale))
            weight = weight * (1.0 - w)
            metrics.update(copt_weight_mean=w.mean(), copt_weight_max=w.max())
        return weight, metrics

    def actor_loss(
        self,
        actor_params: dict,
        state: dict,
        wm_params: dict,
        start: Mapping[str, jax.Array],
        key: jax.Array,
        aux: Mapping[str, dict] | None = None,
    ) -> tuple[jax.Array, tuple[dict, dict, dict, dict]]:
        """Actor loss on freshly imagined trajectories.

        The advantage is ``sum_critics scale * (R - V) / S / Z`` (``S`` the critic's return scale, ``Z`` the sum
        of scales with ``normalise_ret``, else 1), the ``"extr"`` term multiplied by :meth:`shaping_weight`, minus
        the Lagrangian penalty when that is on. ``aux`` holds other behaviours' parameters (``"safe_critic"`` for
        PLPG).

        Returns ``(loss, (metrics, traj, returns, extra))``: ``returns`` are every critic's lambda-returns
        (stop-gradiented; the critics' targets); ``extra`` holds the updated ``retnorm`` statistics and, with the
        Lagrangian, the updated multipliers.
        """
        c = self.config
        aux = aux or {}
        traj = self.imagine(actor_params, wm_params, start, key)
        if self.actor_grad == "reinforce":
            traj = sg(traj)
        dist = self.dist(actor_params, sg(traj["feat"][:-1]))
        total = sum(s.scale for s in self.critics) if c.normalise_ret else 1.0
        adv = 0.0
        metrics, returns, raw_returns, extra = {}, {}, {}, {"retnorm": {}}
        for spec in self.critics:
            rew, ret, base = self.score(spec, state["critics"][spec.name]["params"], traj)
            returns[spec.name], raw_returns[spec.name] = sg(ret), ret
            metrics[f"{spec.name}_reward_mean"] = sg(rew).mean()
            metrics[f"{spec.name}_return_mean"] = sg(ret).mean()
            metrics[f"{spec.name}_value_mean"] = sg(base).mean()
            if spec.scale == 0.0:
                continue
            stats, _, scale = retnorm_update(state["retnorm"][spec.name], ret, c)
            extra["retnorm"][spec.name] = stats
            metrics[f"{spec.name}_return_scale"] = scale
            normed = (ret - base) / scale
            if spec.name == "extr" and (self.shaping.plpg or self.shaping.copt):
                weight, mets = self.shaping_weight(state, traj, aux)
                normed = normed * weight
                metrics.update(mets)
            adv = adv + normed * (spec.scale / total)
        if self.shaping.lagrangian:
            lag = state["lagrange"]
            psi, cond = lagrangian_penalty(raw_returns["cost"], lag["lambda"], lag["mu"], self.shaping.cost_threshold)
            adv = adv - psi
            lam, mu = lagrangian_update(lag["lambda"], lag["mu"], cond, self.shaping.penalty_pow)
            extra["lagrange"] = {"lambda": lam, "mu": mu}
            metrics.update(
                lagrange_multiplier=lag["lambda"],
                penalty_multiplier=lag["mu"],
                penalty_mean=sg(psi).mean(),
                safety_cond_mean=sg(cond).mean(),
            )
        if self.actor_grad == "backprop":
            loss = -adv
        else:
            loss = -actor_log_prob(dist, sg(traj["action"])) * sg(adv)
        ent = actor_entropy(dist)
        loss = (loss - c.actent * ent) * sg(traj["weight"][:-1])
        loss = loss.mean() * c.loss_scales.actor
        metrics["actor_loss"] = loss
        metrics["actor_entropy"] = ent.mean()
        metrics["adv_mean"] = sg(jnp.asarray(adv)).mean()
        metrics["adv_std"] = sg(jnp.asarray(adv)).std()
        return loss, (metrics, sg(traj), returns, sg(extra))

    def critic_loss(
        self,
        params: dict,
        slow: dict,
        spec: CriticSpec,
        traj: Mapping[str, jax.Array],
        target: jax.Array,
    ) -> tuple[jax.Array, dict]:
        """Critic loss summed over ensemble members (so each member gets its own gradient).

        Per member: ``mean_t sg(w_t) * [-log p(sg(R_t) | s_t) - slowreg * log p(sg(slow mean(s_t)) | s_t)]``
        over t = 0..H-1, with ``w`` the cumulative ``discount * cont`` weight of the critic.
        """
        c = self.config
        feat = sg(traj["feat"][:-1])
        weight = sg(cumulative_weight(traj[spec.cont], spec.discount)[:-1])
        logits = jax.vmap(lambda p: self.critic_net.apply({"params": p}, feat))(params)
        slow_mean = sg(self.critic_values(slow, feat))
        nll = -D.twohot_log_prob(logits, sg(target)[None], self.bins)
        reg = -D.twohot_log_prob(logits, slow_mean, self.bins)
        per_member = ((nll + c.loss_scales.slowreg * reg) * weight[None]).mean(axis=(1, 2))
        loss = per_member.sum() * c.loss_scales.critic
        return loss, {f"{spec.name}_critic_loss": per_member.mean(), f"{spec.name}_critic_nll": nll.mean()}

    # ----------------------------------------------------------------------------------------- update

    def update(
        self,
        state: dict,
        wm_params: dict,
        start: Mapping[str, jax.Array],
        key: jax.Array,
        step: jax.Array,
        aux: Mapping[str, dict] | None = None,
    ) -> tuple[dict, dict]:
        """Actor step, then one step per critic on the same trajectories, then slow-critic EMA (and the
        Lagrangian multipliers' step, when on).

        ``step`` is the agent's update counter (0 at the first update: the slow critics are then copied);
        ``aux`` as in :meth:`actor_loss`. Returns ``(state, metrics)``.
        """
        grad_fn = jax.value_and_grad(self.actor_loss, has_aux=True)
        (_, (metrics, traj, returns, extra)), grads = grad_fn(state["actor"], state, wm_params, start, key, aux)
        actor, actor_opt, gnorm = optimizer_step(self.actor_tx, state["actor"], state["actor_opt"], grads)
        metrics["actor_grad_norm"] = gnorm
        critics = {}
        for spec in self.critics:
            cs = state["critics"][spec.name]
            (_, mets), cgrads = jax.value_and_grad(self.critic_loss, has_aux=True)(
                cs["params"], cs["slow"], spec, traj, returns[spec.name]
            )
            params, opt, cnorm = optimizer_step(
                self.critic_tx[spec.name], cs["params"], cs["opt"], cgrads, ensemble=True
            )
            mix = jnp.where(step == 0, 1.0, spec.slow_fraction)
            mix = jnp.where(step % spec.slow_update == 0, mix, 0.0)
            critics[spec.name] = {"params": params, "slow": ema(cs["slow"], params, mix), "opt": opt}
            metrics.update(mets)
            metrics[f"{spec.name}_critic_grad_norm"] = cnorm.mean()
        new_state = {"actor": actor, "actor_opt": actor_opt, "critics": critics, "retnorm": extra["retnorm"]}
        if "lagrange" in extra:
            new_state["lagrange"] = extra["lagrange"]
        return new_state, metrics
