"""The AMBS shield (spec §4.3, DESIGN §4): estimate, per environment, the probability that the task policy
violates soon, from ``m`` latent traces imagined through the RSSM prior, and decide whether to override.

Per environment step and for each of ``N`` environments:

1. copy the posterior latent ``m`` times (env-major layout: env 0's ``m`` copies first);
2. roll the task policy out ``H`` steps through the prior (:func:`~ambs_verify.agents.rssm.imagine`), a fresh
   action sample at every step including the first (the proposed action itself is not conditioned on; spec
   §14.3);
3. score every trace by its discounted cost-to-go
   ``G_0 = sum_{k=1..H} gamma_s^(k-1) (prod_{j<k} cont_j) c_k + gamma_s^H (prod_{j<=H} cont_j) B(s_H)``
   with ``c_k = clip(cost head(s_k), 0, C)``, ``cont_j`` the mode of the continue head and ``B`` the twin cost
   critic's reduced value clipped to ``[0, C]`` (0 without bootstrapping);
4. call a trace violating when ``G_0 > C * gamma_s^T`` (T = ``shield_horizon``, 30), count the ``k`` violating
   traces and estimate ``p_hat = k / m``;

   or, with ``event="within"``, roll out ``T`` steps instead and call a trace violating when some imagined state
   ``1..T`` has a predicted cost ``>= C / 2`` while the episode is still predicted to continue, with no discount
   and no critic bootstrap (:func:`violating_traces`). ``p_hat`` then estimates "the task policy violates within
   ``T`` steps" under the model: the event the certificate's model level bounds and its audit checks against
   real rollouts. The paper's discounted test adds the cost critic's value and every partial cost prediction of a
   trace, so on a task with frequent costs it measures a cost rate rather than this probability;
5. override with the safe policy when the decision rule says unsafe: the paper's ``p_hat > shield_eps``
   (``rule="estimate"``, default) or a certified one-sided upper bound on p above ``delta_safe``
   (``rule="bound"``, KL-Chernoff from :mod:`ambs_verify.estimators.jax_bounds`, confidence ``1 - bound_delta``);

   or, with ``rule="sequential"``, draw the traces in looks of growing size (``batch``, then ``growth`` times as
   many traces in all at each look: 32, 64, 128, 256, 512 by default; one jitted ``lax.while_loop`` per look size)
   and stop as soon as the anytime-valid test of :mod:`ambs_verify.estimators.threshold_test` decides "p < eps" (act) or
   "p > eps" (override), at most ``samples`` traces. Guarantee, per decision and under the learned model: the
   shield lets the task policy act with probability at most ``bound_delta`` when its violation probability is at
   least ``eps``, and overrides it with probability at most ``bound_delta`` when it is at most ``eps``. A state
   left undecided after ``samples`` traces (p close to eps) falls back to the paper's ``p_hat > eps`` on all of
   them, without that guarantee; the extras ``samples`` (traces drawn) and ``decided`` say which happened.

6. or, with ``candidates`` K >= 1, judge actions instead of the policy: draw K candidate actions from the task
   policy (distinct ones in a random order drawn without replacement for a discrete space, the first being the
   proposal; K independent samples for a continuous one), estimate ``p_hat`` for each from ``m`` traces whose
   first imagined action is that candidate (the task policy acts from state 1 on), and execute the first
   candidate judged safe; the safe policy takes over only when none is. For a discrete space with K = number
   of actions this samples the task policy restricted to the actions judged safe. The paper judges the policy
   with a fresh first action (spec §14.3), so a proposal is overridden for the risk of actions it did not take,
   and the reward-blind safe policy acts where a safe task action exists. Cost: K times the traces.

Everything is one jitted function of arrays: no Python loop over environments or traces (the published code
tiled and averaged per env in Python lists; spec §14.2). Under a :class:`~ambs_verify.agents.sharding.DataParallel`
the traces' rows are split over its devices (:func:`~ambs_verify.agents.sharding.shard_rows`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from ..estimators import jax_bounds
from ..estimators.threshold_test import ThresholdTest
from . import rssm as R
from .actor_critic import actor_candidates
from .sharding import shard_rows

__all__ = [
    "EVENTS",
    "ShieldConfig",
    "discounted_cost_to_go",
    "model_violation_counts",
    "shield_decision",
    "violating_traces",
    "violation_threshold",
]

RULES = ("estimate", "bound", "sequential")
EVENTS = ("discounted", "within")


@dataclass(frozen=True)
class ShieldConfig:
    """Shield hyper-parameters: the ``shield:`` block of ``configs.yaml`` (the only source of their defaults, the
    paper's: spec §12.1, Table 4) plus four values the agent's config resolves, built by
    :func:`ambs_verify.rollout.agents.shield_config`.

    Attributes
    ----------
    samples : m, imagined traces per decision.
    threshold_horizon : T in the violation threshold ``C * gamma_s^T`` (``event="within"``: the rollout length).
    eps : override when ``p_hat > eps`` (rule ``"estimate"``; the sequential rule's threshold).
    rule : ``"estimate"`` (the paper), ``"bound"`` (the KL upper bound against ``delta_safe``) or ``"sequential"``
        (module doc, step 5).
    delta_safe, bound_delta : the bound rule's Δ and the bound's failure probability δ (the sequential rule's
        error bound, each way).
    batch, growth : the sequential rule's first look (``samples`` is a multiple of it) and the factor by which each
        later look's number of traces grows (1: a look every ``batch``; ``threshold_test.look_schedule``).
    event : which traces count as violating (module doc, step 4).
    candidates : 0 judges the policy (the paper); K judges K candidate actions (module doc, step 6).
    imag_horizon : H, imagined steps of the ``"discounted"`` event (the paper hard-wires imag_horizon; §14.1).
    cost_val, discount, shield_bootstrap : C, gamma_s and whether the twin cost critic bootstraps, from ``safety:``.
    """

    samples: int
    threshold_horizon: int
    eps: float
    rule: Literal["estimate", "bound", "sequential"]
    delta_safe: float
    bound_delta: float
    batch: int
    growth: int
    event: Literal["discounted", "within"]
    candidates: int
    imag_horizon: int
    cost_val: float
    discount: float
    shield_bootstrap: bool

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown shield rule {self.rule!r}; accepted: {', '.join(RULES)}")
        if self.event not in EVENTS:
            raise ValueError(f"unknown shield event {self.event!r}; accepted: {', '.join(EVENTS)}")
        if self.samples < 1 or self.imag_horizon < 1:
            raise ValueError("shield samples and horizon must be >= 1")
        if self.candidates < 0:
            raise ValueError("shield candidates must be >= 0 (0 judges the policy, as the paper does)")
        if self.rule == "sequential" and (self.batch < 1 or self.samples % self.batch):
            raise ValueError(
                f"the sequential rule draws traces in batches: shield.samples ({self.samples}) must be a multiple of "
                f"shield.batch ({self.batch})"
            )
        if self.rule == "sequential" and self.growth < 1:
            raise ValueError(f"shield.growth must be an integer >= 1 (got {self.growth})")
        if self.rule == "sequential" and self.candidates:
            raise ValueError("the sequential rule judges the task policy: set shield.candidates 0")


def violation_threshold(config: ShieldConfig) -> float:
    """``C * gamma_s^T``: 10 * (1 - 1/333)^30 = 9.1372 with the paper's numbers."""
    return config.cost_val * config.discount**config.threshold_horizon


def discounted_cost_to_go(cost: jax.Array, cont: jax.Array, bootstrap: jax.Array, discount: float) -> jax.Array:
    """``G_0`` of every trace.

    Parameters
    ----------
    cost, cont : (H, M)
        Clipped predicted costs and continue flags of imagined states 1..H.
    bootstrap : (M,)
        Value at state H (zeros when not bootstrapping).
    discount : gamma_s.

    Returns
    -------
    (M,) discounted cost-to-go, with the episode continuation stopping later costs (spec §4.3 step 4).
    """
    horizon = cost.shape[0]
    alive = jnp.cumprod(cont, axis=0)  # prod_{j<=k} cont_j, (H, M)
    before = jnp.concatenate([jnp.ones_like(alive[:1]), alive[:-1]], axis=0)  # prod_{j<k} cont_j
    powers = discount ** jnp.arange(horizon, dtype=cost.dtype)[:, None]
    return jnp.sum(powers * before * cost, axis=0) + discount**horizon * alive[-1] * bootstrap


def violating_traces(cost: jax.Array, cont: jax.Array, cost_val: float) -> jax.Array:
    """Whether each trace violates within its ``H`` imagined steps.

    A trace violates when some state ``k = 1..H`` has a clipped predicted cost ``>= C / 2`` while the episode is
    still predicted to continue (``prod_{j<k} cont_j = 1``). The cost head predicts ``C`` at a violation and 0
    elsewhere, so ``C / 2`` is the decision boundary of its mean. A non-finite cost or continue prediction counts as
    a violation (a diverged model must not look safe).

    Parameters
    ----------
    cost, cont : (H, M)
        Clipped predicted costs and continue flags of imagined states 1..H.
    cost_val : C.

    Returns
    -------
    (M,) bool.
    """
    alive_before = jnp.concatenate([jnp.ones_like(cont[:1]), jnp.cumprod(cont, axis=0)[:-1]], axis=0)
    # written as negations so that a non-finite prediction (a diverged model) counts as a violation
    return jnp.any(~(cost < 0.5 * cost_val) & ~(alive_before <= 0), axis=0)


def _imagined_costs(horizon: int, cost_val: float, wm, wm_params, policy, starts, first, key):
    """Clipped predicted costs and continue flags ``(H, M)`` of imagined states 1..H, and the features ``(M, F)``
    of state H, from ``starts (M, ...)``: the task policy acts at every step, or from state 1 on where ``first
    (M, A)`` gives each trace's first action. The heads run inside the scan, so only ``(H, M)`` scalars are kept
    (not the ``(H, M, bins)`` head logits and states of :func:`~ambs_verify.agents.rssm.imagine`, whose memory
    traffic dominated the shield's time); with ``first`` None the random stream is that of ``imagine``."""

    def heads(state):
        feat = R.feat(state)
        cost = jnp.clip(wm.cost(wm_params, feat), 0.0, cost_val)
        return cost, wm.cont(wm_params, feat).astype(cost.dtype)

    def step(state, k):
        k_act, k_img = jax.random.split(k)
        nxt = wm.img_step(wm_params, state, policy(state, k_act), k_img)
        return nxt, heads(nxt)

    if first is not None:  # state 1 follows the candidate action
        k_first, key = jax.random.split(key)
        starts = wm.img_step(wm_params, starts, first, k_first)
        horizon -= 1
    last, (cost, cont) = jax.lax.scan(step, starts, jax.random.split(key, horizon))
    if first is not None:
        c1, k1 = heads(starts)
        cost, cont = jnp.concatenate([c1[None], cost]), jnp.concatenate([k1[None], cont])
    return cost, cont, R.feat(last)


def _trace_outcomes(config, wm, task_behaviour, wm_params, task_state, starts, first, key) -> jax.Array:
    """Whether each imagined trace violates, by the configured event: ``starts (M, ...)`` latent rows, ``first``
    None (every action sampled from the task policy) or ``(M, A)`` the first action of each trace; returns ``(M,)``
    bool."""
    policy = task_behaviour.policy(task_state["actor"])
    horizon = config.threshold_horizon if config.event == "within" else config.imag_horizon
    cost, cont, last = _imagined_costs(horizon, config.cost_val, wm, wm_params, policy, starts, first, key)
    if config.event == "within":
        return violating_traces(cost, cont, config.cost_val)
    if config.shield_bootstrap and "cost" in task_state["critics"]:
        boot = jnp.clip(task_behaviour.value(task_state, "cost", last), 0.0, config.cost_val)
    else:
        boot = jnp.zeros(last.shape[0], cost.dtype)
    # not "<=": a non-finite cost-to-go (a diverged model) counts as a violation
    return ~(discounted_cost_to_go(cost, cont, boot, config.discount) <= violation_threshold(config))


def shield_decision(
    config: ShieldConfig,
    wm,
    task_behaviour,
    wm_params: dict,
    task_state: dict,
    posterior: R.State,
    key: jax.Array,
) -> dict[str, jax.Array]:
    """Estimate the violation probability of the task policy from ``posterior`` and decide.

    Parameters
    ----------
    config : ShieldConfig
    wm : the :class:`~ambs_verify.agents.world_model.WorldModel`.
    task_behaviour : the task :class:`~ambs_verify.agents.actor_critic.ImagActorCritic` (its actor rolls out;
        its ``"cost"`` critic, when present, bootstraps).
    wm_params, task_state : their parameters / behaviour state.
    posterior : latent state with leading axis ``N`` (environments).
    key : PRNG key.

    Returns
    -------
    dict of ``(N,)`` arrays: ``p_hat`` (float), ``violations`` (int, k), ``samples`` (int, m), ``bound`` (the
    KL-Chernoff upper bound on p at ``1 - bound_delta``, computed whatever the rule), ``override`` (bool: the
    safe policy acts). With ``config.candidates`` K > 0 these describe the task policy's proposal (the first
    candidate), and two more entries: ``action (N, A)``, the first candidate judged safe (the proposal when it
    is; meaningless where ``override``), and ``replaced`` (bool: a later candidate replaced the proposal).
    """
    if config.rule == "sequential":
        return _sequential_decision(config, wm, task_behaviour, wm_params, task_state, posterior, key)
    m, k_cand = config.samples, config.candidates
    n_envs = jax.tree.leaves(posterior)[0].shape[0]
    k_traces, k_actions = jax.random.split(key) if k_cand else (key, None)
    posterior = jax.lax.stop_gradient(posterior)
    if k_cand:
        dist = task_behaviour.dist(task_state["actor"], R.feat(posterior))
        candidates = jax.lax.stop_gradient(actor_candidates(dist, k_actions, k_cand))  # (N, K, A)
        k_cand = candidates.shape[1]  # at most the number of discrete actions
        first = shard_rows(jnp.repeat(candidates.reshape(n_envs * k_cand, -1), m, axis=0))  # env-major, then candidate
    else:
        first = None
    rows = max(k_cand, 1) * m
    starts = shard_rows(jax.tree.map(lambda x: jnp.repeat(x, rows, axis=0), posterior))  # (N*K*m, ...)
    violating = _trace_outcomes(config, wm, task_behaviour, wm_params, task_state, starts, first, k_traces)
    k = violating.reshape(n_envs, max(k_cand, 1), m).sum(axis=2)  # (N, K)
    m_arr = jnp.full(k.shape, m, jnp.float32)
    bound = jax_bounds.kl_upper(k.astype(jnp.float32), m_arr, config.bound_delta)
    unsafe = ~(k / m <= config.eps) if config.rule == "estimate" else ~(bound <= config.delta_safe)  # NaN: unsafe
    out = {
        "p_hat": k[:, 0] / m,
        "violations": k[:, 0],
        "samples": jnp.full((n_envs,), m, jnp.int32),
        "bound": bound[:, 0],
        "override": jnp.all(unsafe, axis=1),
    }
    if k_cand:
        choice = jnp.argmin(unsafe, axis=1)  # the first safe candidate (0 when none is)
        out["action"] = jnp.take_along_axis(candidates, choice[:, None, None], axis=1)[:, 0]
        out["replaced"] = choice > 0
    return out


@functools.lru_cache(maxsize=16)
def _threshold_test(eps: float, delta: float, batch: int, budget: int, growth: int) -> ThresholdTest:
    return ThresholdTest(eps, delta, batch, budget, growth)


def _segments(draws) -> list[tuple[int, int, int]]:
    """``(draw, first look, looks)`` for each run of looks that draw the same number of traces."""
    out = []
    for j, draw in enumerate(int(d) for d in draws):
        if out and out[-1][0] == draw:
            out[-1] = (draw, out[-1][1], out[-1][2] + 1)
        else:
            out.append((draw, j, 1))
    return out


def _sequential_decision(config, wm, task_behaviour, wm_params, task_state, posterior, key) -> dict[str, jax.Array]:
    """The sequential rule (module doc, step 5): looks at growing numbers of traces until the threshold test
    decides, per env.

    Each run of equally sized looks is one ``lax.while_loop`` (trace arrays need static shapes): one loop of 16 looks
    for ``growth`` 1, five loops of one look for the default 32, 64, ..., 512. A loop runs no look once every env is
    decided. Returns the entries of :func:`shield_decision` over the traces each env drew (``samples`` varies), plus
    ``decided (N,)`` bool.
    """
    test = _threshold_test(config.eps, config.bound_delta, config.batch, config.samples, config.growth)
    safe_max, unsafe_min = jnp.asarray(test.safe_max), jnp.asarray(test.unsafe_min)
    n_envs = jax.tree.leaves(posterior)[0].shape[0]
    posterior = jax.lax.stop_gradient(posterior)
    zeros = jnp.zeros((n_envs,), jnp.int32)
    carry = (zeros, zeros, zeros)  # k, n, decision per env
    for draw, first, count in _segments(test.draws):
        starts = shard_rows(jax.tree.map(lambda x, d=draw: jnp.repeat(x, d, axis=0), posterior))

        def undecided(state, end=first + count):
            look, (_, _, decision) = state
            return (look < end) & jnp.any(decision == 0)

        def look_again(state, draw=draw, starts=starts):
            look, (k, n, decision) = state
            violating = _trace_outcomes(
                config, wm, task_behaviour, wm_params, task_state, starts, None, jax.random.fold_in(key, look)
            )
            live = decision == 0  # a decided env keeps its counts (its traces of this look are not used)
            k = k + jnp.where(live, violating.reshape(n_envs, draw).sum(axis=1), 0)
            n = n + jnp.where(live, draw, 0)
            verdict = jnp.where(k <= safe_max[look], 1, jnp.where(k >= unsafe_min[look], 2, 0))
            return look + 1, (k, n, jnp.where(live, verdict, decision))

        _, carry = jax.lax.while_loop(undecided, look_again, (jnp.int32(first), carry))
    k, n, decision = carry
    p_hat = k / n
    # undecided after the budget: the paper's rule on every trace drawn (NaN counts as unsafe)
    override = (decision == 2) | ((decision == 0) & ~(p_hat <= config.eps))
    return {
        "p_hat": p_hat,
        "violations": k,
        "samples": n,
        "bound": jax_bounds.kl_upper(k.astype(jnp.float32), n.astype(jnp.float32), config.bound_delta),
        "override": override,
        "decided": decision != 0,
    }


def model_violation_counts(
    wm,
    task_behaviour,
    wm_params: dict,
    task_state: dict,
    posterior: R.State,
    samples: int,
    horizon: int,
    cost_val: float,
    key: jax.Array,
) -> jax.Array:
    """Violating traces out of ``samples`` per state, for the event "the task policy violates within ``horizon``
    steps under the learned model" (the certificate's model level; DESIGN §5), judged by
    :func:`violating_traces`. No discounting and no critic bootstrap: the event is exactly the one real rollouts
    of H steps can audit, and the one a shield with ``event="within"`` estimates.

    Parameters
    ----------
    posterior : latent state with leading axis ``N`` (states).
    samples, horizon : m traces of H imagined steps per state.

    Returns
    -------
    (N,) int32 counts ``k``.
    """
    n_states = jax.tree.leaves(posterior)[0].shape[0]
    starts = shard_rows(jax.tree.map(lambda x: jnp.repeat(x, samples, axis=0), jax.lax.stop_gradient(posterior)))
    policy = task_behaviour.policy(task_state["actor"])
    cost, cont, _ = _imagined_costs(horizon, cost_val, wm, wm_params, policy, starts, None, key)
    violating = violating_traces(cost, cont, cost_val)
    return violating.reshape(n_states, samples).sum(axis=1).astype(jnp.int32)
