"""Soundness of real-level upper bounds on ground truth: the built-in grid's exact violation probabilities.

:func:`fixed_policy_coverage` draws states of a grid uniformly, runs ``rollouts`` real rollouts of a fixed
stochastic policy for ``horizon`` steps from each (sampled from the grid's transition tensor, the dynamics
``GridWorld.step`` samples from), computes the audit's real upper bound (one-sided Clopper-Pearson at ``delta``
per state, as a certificate's ``audit.real_upper`` with the state's delta share) and compares it with the exact
probability from :meth:`~ambs_verify.envs.grid.GridWorld.exact_violation_probability`.

Two numbers come out: the **measured** fraction of states whose bound covers the truth (random, seeded), and the
**exact** coverage probability of every state's bound, ``sum_k Binom(k; R, p) 1[upper(k) >= p]`` — the guarantee
itself, computed without sampling; the goal is ``>= 1 - delta`` for both.

Notes
-----
The fixed policy is Markov in the grid cell, which is what makes the truth exactly computable. A trained agent's
policy depends on its recurrent latent, so its per-state truth is not a function of the cell alone; for it the
certificate's audit (real rollouts from restored snapshots) is the reference, not an exact value.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..estimators import intervals

__all__ = ["exact_coverage", "fixed_policy_coverage", "goal_seeking_policy", "simulate_violations"]


def goal_seeking_policy(env, greedy: float = 0.7) -> np.ndarray:
    """``pi (S, 4)``: with probability ``greedy`` step toward the goal (down first, then right/left), else uniform."""
    cfg = env.config
    pi = np.full((env.num_states, 4), (1.0 - greedy) / 4.0)
    for s in range(env.num_states):
        r, c = divmod(s, cfg.cols)
        if r < cfg.goal[0]:
            a = 2
        elif r > cfg.goal[0]:
            a = 0
        else:
            a = 1 if c < cfg.goal[1] else 3
        pi[s, a] += greedy
    return pi


def simulate_violations(env, policy: np.ndarray, starts: np.ndarray, rollouts: int, horizon: int, seed: int):
    """Violating rollouts ``k (N,)`` out of ``rollouts`` per start state, vectorised over states x rollouts.

    Each step draws the action from ``policy[cell]`` and the next cell from ``P[cell, action]``; a rollout violates
    when it enters a hazard within ``horizon`` steps (the goal is absorbing and safe).
    """
    rng = np.random.default_rng(seed)
    cells = np.repeat(np.asarray(starts, int), rollouts)
    violated = np.zeros(cells.shape, bool)
    policy_cdf = np.cumsum(policy, axis=1)
    trans_cdf = np.cumsum(env.transitions, axis=2)
    for _ in range(horizon):  # time steps only; every rollout advances in one vector operation
        actions = (rng.random(cells.shape)[:, None] > policy_cdf[cells]).sum(axis=1).clip(0, 3)
        nxt = (rng.random(cells.shape)[:, None] > trans_cdf[cells, actions]).sum(axis=1)
        cells = nxt.clip(0, env.num_states - 1)
        violated |= env.hazard_mask[cells]
    return violated.reshape(-1, rollouts).sum(axis=1)


def exact_coverage(p: np.ndarray, rollouts: int, delta: float, method: str = "clopper-pearson") -> np.ndarray:
    """``P(upper(K) >= p)`` with ``K ~ Binom(rollouts, p)``, exactly, for every ``p``."""
    k = np.arange(rollouts + 1)
    upper = np.atleast_1d(intervals.upper_bound(k, rollouts, delta, method))
    p = np.atleast_1d(np.asarray(p, float))
    pmf = stats.binom.pmf(k[None, :], rollouts, p[:, None])
    return (pmf * (upper[None, :] >= p[:, None])).sum(axis=1)


def fixed_policy_coverage(
    env,
    policy: np.ndarray | None = None,
    states: int = 1000,
    rollouts: int = 64,
    horizon: int = 30,
    delta: float = 0.01,
    seed: int = 0,
) -> dict:
    """Measured and exact coverage of per-state real upper bounds (module doc). Returns plain numbers."""
    policy = goal_seeking_policy(env) if policy is None else policy
    truth = env.exact_violation_probability(policy, horizon)
    rng = np.random.default_rng(seed)
    starts = rng.choice(env.free_states, size=states, replace=True)
    k = simulate_violations(env, policy, starts, rollouts, horizon, seed + 1)
    upper = np.atleast_1d(intervals.upper_bound(k, rollouts, delta, "clopper-pearson"))
    p = truth[starts]
    covered = upper >= p
    exact = exact_coverage(truth[env.free_states], rollouts, delta)
    return {
        "states": int(states),
        "rollouts": int(rollouts),
        "horizon": int(horizon),
        "delta": float(delta),
        "covered_fraction": float(covered.mean()),
        "exact_coverage_min": float(exact.min()),
        "exact_coverage_mean": float(exact.mean()),
        "truth_mean": float(p.mean()),
        "truth_max": float(p.max()),
        "upper_mean": float(upper.mean()),
        "abs_error_mean": float(np.abs(k / rollouts - p).mean()),
    }
