"""Acting in environments outside training: evaluation episodes, visited states, rollouts from restored states.

One module steps environments with a finished agent, so "an episode" and "a rollout" mean the same thing in the
learning tests, the benchmarks, ``certify`` and ``envs check``:

- :func:`run_episodes`: the first episode of each of N environments, stepped together through the
  :class:`~.driver.Driver` (one batched policy call per step), optionally keeping a uniform reservoir sample of the
  visited states with their simulator snapshots and the agent's recurrent carry (:class:`VisitedState`);
- :func:`evaluate`: :func:`run_episodes` in fresh environments, summarised (:class:`Evaluation`);
- :func:`restored_rollouts`: ``rollouts`` real rollouts of ``horizon`` steps from each of some visited states,
  restored with the snapshot and the carry (a fresh simulator RNG per rollout), counting those that violate;
- :func:`run_steps`: a policy for a fixed number of agent steps (``envs check``, and the baselines' tests).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from .driver import Driver, EpisodeStats, Policy

__all__ = [
    "CHECK_POLICIES",
    "Evaluation",
    "VisitedState",
    "check_env",
    "check_policy",
    "evaluate",
    "override_rate",
    "reservoir_slot",
    "restored_rollout_counts",
    "restored_rollouts",
    "run_episodes",
    "run_steps",
    "stack_trees",
]

CHECK_POLICIES = ("random", "noop")


# --------------------------------------------------------------------------------------- pytree rows


def _row(tree, i: int):
    return None if tree is None else jax.tree.map(lambda x: np.asarray(x)[i], tree)


def stack_trees(trees: list):
    """Stack equally-shaped pytrees along a new leading batch axis."""
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def _take(tree, rows: np.ndarray):
    """The batch rows ``rows`` of every leaf."""
    return jax.tree.map(lambda x: np.asarray(x)[rows], tree)


def _put(tree, rows: np.ndarray, values):
    """A copy of ``tree`` with batch rows ``rows`` of every leaf replaced by ``values``."""

    def put(x, v):
        out = np.array(x)
        out[rows] = np.asarray(v)
        return out

    return jax.tree.map(put, tree, values)


# ------------------------------------------------------------------------------------------ episodes


@dataclass
class VisitedState:
    """One state kept by the reservoir: where it was, how to return to it, and the model's posterior there."""

    env: int
    t: int
    snapshot: Any
    obs: dict[str, np.ndarray]
    carry_before: Any  # the policy carry before observing this state (None at an episode's first step)
    posterior: Any = None  # the posterior latent after observing it


def reservoir_slot(seen: int, size: int, rng: np.random.Generator) -> int:
    """Algorithm R: the slot of the ``seen``-th visited state (1-based) in a reservoir of ``size``; a slot
    ``>= size`` drops it. Every visited state ends in the reservoir with probability ``size / seen_total``."""
    return seen - 1 if seen <= size else int(rng.integers(seen))


class _Reservoir:
    """A uniform sample of ``size`` visited states (Algorithm R with a seeded generator)."""

    def __init__(self, envs: Sequence[gym.Env], size: int, seed: int) -> None:
        self.envs, self.size = envs, size
        self.can_snapshot = all(hasattr(e, "snapshot") for e in envs)
        self.rng = np.random.default_rng([seed, 2])
        self.states: list[VisitedState] = []
        self.seen = 0

    def offer(self, obs: dict[str, np.ndarray], carry: Any, rows: np.ndarray, t: np.ndarray) -> list[VisitedState]:
        """Offer the states of envs ``rows``; the ones kept now (their posterior comes after the step)."""
        picked = []
        for i in rows:
            self.seen += 1
            slot = reservoir_slot(self.seen, self.size, self.rng)
            if slot >= self.size:
                continue
            snapshot = self.envs[i].snapshot() if self.can_snapshot else None
            state = VisitedState(
                int(i), int(t[i]), snapshot, {k: np.array(v[i]) for k, v in obs.items()}, _row(carry, i)
            )
            if slot == len(self.states):
                self.states.append(state)
            else:
                self.states[slot] = state
            picked.append(state)
        return picked


def run_episodes(
    policy: Policy,
    envs: Sequence[gym.Env],
    seed: int,
    key: jax.Array,
    states: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[EpisodeStats], tuple[str, ...], list[VisitedState]]:
    """The first episode of each env (env ``i`` reset with ``seed + i``), stepped together; ``policy`` gets a
    fresh split of ``key`` per step. The envs are closed at the end.

    Returns
    -------
    episodes : list of EpisodeStats, one per env in env order
    labels : the safety label names the envs reported
    visited : a uniform sample of ``states`` visited states (none when ``states`` is 0), each with its snapshot
        (None for envs that cannot snapshot) and, for agents with a world model, the posterior latent there
    """
    n = len(envs)
    driver = Driver(envs, seed=seed)
    reservoir = _Reservoir(envs, states, seed)
    driver.start()
    first: list[EpisodeStats | None] = [None] * n
    t = np.zeros(n, int)
    try:
        while any(e is None for e in first):
            obs = driver.observations
            done = np.array([e is not None for e in first])
            picked = reservoir.offer(obs, driver.carry, np.flatnonzero(~done & ~obs["is_last"]), t) if states else []
            key, sub = jax.random.split(key)
            result = driver.step(policy, sub)
            if isinstance(driver.carry, dict) and "latent" in driver.carry:  # agents with a world model
                for state in picked:
                    state.posterior = _row(driver.carry["latent"], state.env)
            t += 1
            for episode in result.episodes:
                if first[episode.env] is None:
                    first[episode.env] = episode
            if progress:
                progress(sum(e is not None for e in first), n)
    finally:
        driver.close()
    return first, driver.label_names, reservoir.states


@dataclass(frozen=True)
class Evaluation:
    """Per-episode results, shape ``(episodes,)`` each; ``override_rate`` is None for an agent without a shield."""

    returns: np.ndarray
    violations: np.ndarray
    lengths: np.ndarray
    override_rate: np.ndarray | None

    def summary(self) -> dict[str, float | None]:
        """Means over episodes: ``return``, ``violations`` (per episode), ``length`` and ``override_rate``."""
        return {
            "episodes": len(self.returns),
            "return": float(self.returns.mean()),
            "violations": float(self.violations.mean()),
            "length": float(self.lengths.mean()),
            "override_rate": None if self.override_rate is None else float(self.override_rate.mean()),
        }


def evaluate(policy: Policy, make_env: Callable[[], Any], episodes: int, seed: int = 0) -> Evaluation:
    """Run one episode in each of ``episodes`` fresh environments (seeds ``seed .. seed + episodes - 1``).

    Parameters
    ----------
    policy : ``policy(obs, carry, rng)``, e.g. an agent bound to its state (:func:`ambs_verify.agents.interface.bind`).
    make_env : builds one environment.
    episodes : number of episodes (= environments stepped together).
    seed : environment seeds start here; the policy's key is ``PRNGKey(seed)``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1 (got {episodes})")
    done, _, _ = run_episodes(policy, [make_env() for _ in range(episodes)], seed, jax.random.PRNGKey(seed))
    overrides = [e.extras.get("override_rate") for e in done]
    return Evaluation(
        returns=np.array([e.ret for e in done], float),
        violations=np.array([e.violations for e in done], float),
        lengths=np.array([e.length for e in done], float),
        override_rate=None if any(o is None for o in overrides) else np.array(overrides, float),
    )


# ------------------------------------------------------------------------------- restored rollouts


def _reseed(env, seed: int) -> None:
    """Fresh randomness for a restored simulator (a snapshot carries its RNG, so rollouts would repeat)."""
    env.unwrapped.np_random.bit_generator.state = np.random.default_rng(seed).bit_generator.state


def _act_live(policy: Policy, obs, carry, alive: np.ndarray, key) -> tuple[np.ndarray, Any, np.ndarray | None]:
    """One policy step for the rollouts still running: actions for every row (0 for finished ones), the carry and
    the executed rows' override flags (None when the policy has no shield)."""
    r = len(alive)
    live = np.flatnonzero(alive)
    if carry is None or len(live) == r:
        actions, carry, extras = policy(obs, carry, key)
        acts, executed = np.asarray(actions), live
    else:  # only the rollouts still running, padded to a power of two (few shapes to compile)
        rows = np.resize(live, min(r, 1 << (len(live) - 1).bit_length()))
        actions, fresh, extras = policy({k: v[rows] for k, v in obs.items()}, _take(carry, rows), key)
        carry = _put(carry, live, _take(fresh, np.arange(len(live))))
        acts = np.zeros((r, *np.shape(actions)[1:]), np.asarray(actions).dtype)
        acts[live] = np.asarray(actions)[: len(live)]
        executed = np.arange(len(live))  # the live rows lead the padded batch
    override = np.asarray(extras["override"])[executed] if "override" in extras else None
    return (acts.argmax(-1) if acts.ndim == 2 else acts), carry, override


def restored_rollout_counts(
    policy: Policy,
    make_env: Callable[[], gym.Env],
    obs_keys: Sequence[str],
    states: Sequence[VisitedState],
    rollouts: int,
    horizon: int,
    seed: int,
    stream: int,
    key: jax.Array,
    ids: Sequence[int] | None = None,
) -> tuple[np.ndarray, int, int]:
    """Violating rollouts out of ``rollouts`` (``horizon`` real steps each) of ``policy`` from each state.

    Each rollout restores the state's simulator snapshot and the agent's carry before it; its env gets a fresh RNG
    from ``seed``, ``stream`` (one per policy rolled out from the same states), the state's id (``ids``, by default
    its position in ``states``) and the rollout. A rollout violates when a safety label fires (or, without labels, a
    cost is paid) within ``horizon`` steps.

    Returns
    -------
    violations : int array, shape ``(len(states),)``
    overrides, steps : the policy's overrides over its executed steps and the number of those steps (0, 0 for a
        policy without a shield): integers, so that chunks of states rolled out apart add up exactly
    """
    r = rollouts
    envs = [make_env() for _ in range(r)]
    k_real, overrides = [], []
    try:
        for j, state in zip(range(len(states)) if ids is None else ids, states, strict=True):
            for i, env in enumerate(envs):
                env.reset(seed=seed + i)  # some simulators restore only into a world built by a reset
                env.restore(state.snapshot)
                _reseed(env, seed * 1_000_003 + stream * 7_919 + j * 10_007 + i)
            obs = {k: np.repeat(v[None], r, axis=0) for k, v in state.obs.items()}
            carry = None if state.carry_before is None else stack_trees([state.carry_before] * r)
            alive, violated = np.ones(r, bool), np.zeros(r, bool)
            rkey = jax.random.fold_in(jax.random.fold_in(key, stream), j)
            for _ in range(horizon):
                rkey, sub = jax.random.split(rkey)
                acts, carry, override = _act_live(policy, obs, carry, alive, sub)
                if override is not None:
                    overrides.append(override)
                new_obs = []
                for i, env in enumerate(envs):
                    if not alive[i]:
                        new_obs.append({k: v[i] for k, v in obs.items() if k in obs_keys})
                        continue
                    o, _, term, trunc, info = env.step(acts[i])
                    labels = info.get("labels") or {}
                    violated[i] |= any(map(bool, labels.values())) if labels else float(info.get("cost", 0)) > 0
                    alive[i] = not (term or trunc)
                    new_obs.append(o if isinstance(o, dict) else {obs_keys[0]: o})
                obs = {k: np.stack([np.asarray(o[k]) for o in new_obs]) for k in obs_keys}
                obs["is_first"] = np.zeros(r, bool)
                if not alive.any():
                    break
            k_real.append(int(violated.sum()))
    finally:
        for env in envs:
            env.close()
    flags = np.concatenate(overrides) if overrides else np.zeros(0, bool)
    return np.asarray(k_real, int), int(flags.sum()), int(flags.size)


def restored_rollouts(policy: Policy, *args, **kwargs) -> tuple[np.ndarray, float | None]:
    """:func:`restored_rollout_counts` with the override rate (None for a policy without a shield)."""
    k, overrides, steps = restored_rollout_counts(policy, *args, **kwargs)
    return k, override_rate(overrides, steps)


def override_rate(overrides: int, steps: int) -> float | None:
    """Overrides per executed step, or None when no step had a shield decision."""
    return overrides / steps if steps else None


# ------------------------------------------------------------------------------------- fixed steps


def check_policy(name: str, act_space: gym.Space, seed: int) -> Policy:
    """``envs check``'s one-env policies: ``random`` (the action space's own sampler, seeded; nothing is drawn for
    an episode's last row, whose action never runs) or ``noop`` (action 0, the zero vector for a Box)."""
    if name not in CHECK_POLICIES:
        raise ValueError(f"unknown policy {name!r}; accepted: {', '.join(CHECK_POLICIES)}")
    zero = np.zeros(act_space.shape, act_space.dtype) if act_space.shape else 0
    act_space.seed(seed)

    def policy(obs, carry, rng):
        draw = name == "random" and not obs["is_last"][0]
        return np.array([act_space.sample() if draw else zero]), carry, {}

    return policy


def run_steps(
    policy: Policy,
    driver: Driver,
    steps: int,
    key: jax.Array | None = None,
    on_row: Callable[[dict[str, np.ndarray]], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[EpisodeStats], int]:
    """Step ``policy`` on ``driver``'s envs until ``steps`` env steps have run (rows whose action was executed; an
    episode's last row starts the next episode instead), restarting episodes as they end. ``policy`` gets a fresh
    split of ``key`` per step (None when ``key`` is None); ``on_row`` sees every row.

    Returns
    -------
    episodes : the episodes that finished
    executed : env steps executed (``>= steps``: the envs step in lockstep)
    """
    episodes: list[EpisodeStats] = []
    executed = 0
    while executed < steps:
        sub = None
        if key is not None:
            key, sub = jax.random.split(key)
        result = driver.step(policy, sub)
        if on_row is not None:
            on_row(result.row)
        executed += int((~result.row["is_last"]).sum())
        episodes += result.episodes
        if progress is not None:
            progress(min(executed, steps))
    return episodes, executed


def check_env(env: gym.Env, steps: int, seed: int = 0, policy: str = "random", progress=None) -> dict:
    """``envs check``: step ``env`` with a simple policy for ``steps`` env steps (resetting at episode ends).

    Returns a dict with steps, finished episodes, total and mean episode return, the cost sum, per-label
    counts (steps on which the label fired) and steps per second (resets included).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1 (got {steps})")
    driver = Driver([env], seed=seed, onehot=False)
    totals: Counter[str] = Counter()

    def add(arrived: dict[str, np.ndarray]) -> None:  # what arrived with an observation: the step that led to it
        totals.update({k: float(v[0]) for k, v in arrived.items() if k in ("reward", "cost") or k.startswith("label/")})

    start = time.perf_counter()
    episodes, executed = run_steps(
        check_policy(policy, env.action_space, seed), driver, steps, on_row=add, progress=progress
    )
    add(driver.arrival)  # the last step's reward, cost and labels arrive with the observation after it
    elapsed = time.perf_counter() - start
    label_names = getattr(env.unwrapped, "label_names", driver.label_names)
    return {
        "steps": executed,
        "episodes": len(episodes),
        "return": totals["reward"],
        "mean_episode_return": float(np.mean([e.ret for e in episodes])) if episodes else None,
        "cost_sum": totals["cost"],
        "label_counts": {name: int(totals[f"label/{name}"]) for name in label_names},
        "steps_per_second": executed / elapsed if elapsed > 0 else float("inf"),
    }
