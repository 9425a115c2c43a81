"""Safety certificates per checkpoint (DESIGN.md §5): model level, real environment, shield-accuracy audit, the
deployed agent's audit, verdict.

Which section answers which question:

- **deployed** (the verdict rests on it): *is the agent a user deploys safe?* The whole agent -- task policy,
  shield and safe policy, with their memory -- is restored at audited states and rolled out for real;
- **real**: *how often do whole evaluation episodes of the deployed agent violate?*;
- **audit**: *can the shield's estimate be trusted?* The task policy alone, rolled out for real from the same
  states, against the learned model's estimate for it (the αn/2 model-error term of AMBS Theorem 2);
- **model**: *what does the learned model predict for the task policy?* (a statement about the model only).

For one checkpoint of a run, :func:`certify_checkpoint`

1. runs ``episodes`` evaluation episodes of the **deployed** (shielded) agent (env ``i`` seeded ``seed + i``;
   first episode of each env only) and keeps a uniform sample of ``states`` visited states (reservoir sampling,
   seeded), each with its simulator snapshot, observation and the agent's recurrent carry;
2. **model level**: at each sampled state, ``samples`` latent traces of the **task** policy, ``horizon`` steps
   through the learned model (:func:`~ambs_verify.agents.shield.model_violation_counts`; the event is
   :data:`MODEL_EVENT`): ``k`` violating, ``p_hat = k / m`` and a sound one-sided upper bound at
   ``delta_model / states`` each;
3. **real environment**: violations per episode and per label, the Clopper-Pearson upper bound on the
   per-episode violation probability at ``delta_real``, return statistics, Safety Gym bench metrics;
4. **audited states**: a seeded uniform subsample (a permutation of the reservoir) of ``audit_states`` states;
5. **audit** (shield accuracy): at each audited state, restore the simulator and the agent's carry and run
   ``rollouts`` real rollouts of the task policy for ``horizon`` steps (fresh env RNG per rollout). Half of the
   state's ``delta_audit / audit_states`` goes to a Clopper-Pearson upper bound on its ``p_real``, half to a bound
   on ``|p_real - p_model|`` (:func:`~ambs_verify.estimators.composition.model_error_bound`);
6. **deployed**: the same with the deployed agent's own policy; half of each state's ``delta_deployed /
   audit_states`` to a Clopper-Pearson upper bound, half to a lower bound;
7. **verdict** against the spec ``P(violation within H) <= p_max`` for the deployed agent: ``pass`` when every
   audited state's upper bound is at most ``p_max``, ``fail`` when some lower bound exceeds it, ``inconclusive``
   otherwise (or without a deployed audit). Every bound of the certificate is in the δ ledger, so they hold
   jointly with probability at least ``1 - delta``.

``rollouts`` may be ``None`` (``--rollouts auto``, the default): the smallest number at which an audited state with
:data:`AUTO_ALLOWED_VIOLATIONS` violating rollouts still passes (:func:`auto_rollouts`).

Everything is a function of the checkpoint, the run's config and the recorded options and seed, so
:mod:`~ambs_verify.reports.verify` can recompute it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..estimators import composition, intervals
from .certificate import SCHEMA_VERSION, CertificateError

__all__ = [
    "AUTO_ALLOWED_VIOLATIONS",
    "MODEL_EVENT",
    "CertifyOptions",
    "Spec",
    "audit_sample",
    "auto_rollouts",
    "certify_checkpoint",
    "impossible_pass",
    "parse_spec",
    "reservoir_slot",
    "select_checkpoints",
]

METHODS = ("kl", "clopper-pearson", "hoeffding", "bernstein")
# --rollouts auto: an audited state may show this many violating rollouts and still pass (0 would make one unlucky
# rollout at a safe state decide the verdict).
AUTO_ALLOWED_VIOLATIONS = 1
MODEL_EVENT = (
    "a latent trace of the task policy violates when, at some imagined step 1..H while the model still predicts the "
    "episode to continue, the cost head's mean prediction (clipped to [0, C]) is at least C/2, C = cost_val. The "
    "cost head is trained to predict C at a violating step and 0 elsewhere, so C/2 is its decision boundary; there "
    "is no discounting and no critic bootstrap, so it is the event that H-step real rollouts (the audit) can check: "
    "some safety label fires within H steps"
)
_SPEC = re.compile(r"^\s*H\s*=\s*(\d+)\s*,\s*p\s*<=\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\s*$")
MAX_SPEC_HORIZON = 100_000  # real rollouts of H steps per audited state: beyond this a certificate never ends


class CertifyError(CertificateError):
    """Unusable certify input (bad spec, unknown checkpoint, a run without checkpoints)."""


@dataclass(frozen=True)
class Spec:
    """``P(violation within horizon steps) <= p_max``."""

    horizon: int
    p_max: float

    @property
    def text(self) -> str:
        return f"H={self.horizon},p<={self.p_max!r}"  # repr: every digit, so the text cannot hide an edit


def parse_spec(text: str) -> Spec:
    """``"H=30,p<=0.1"`` -> :class:`Spec`; a one-line error naming the accepted form otherwise."""
    match = _SPEC.match(text)
    if match is None:
        raise CertifyError(f"spec {text!r} is not of the form 'H=<steps>,p<=<probability>' (e.g. 'H=30,p<=0.1')")
    horizon, p_max = int(match[1]), float(match[2])
    if not 1 <= horizon <= MAX_SPEC_HORIZON or not 0.0 <= p_max <= 1.0:
        raise CertifyError(f"spec {text!r}: H must lie in [1, {MAX_SPEC_HORIZON}] and p in [0, 1]")
    return Spec(horizon, p_max)


@dataclass(frozen=True)
class CertifyOptions:
    """Everything a certificate depends on besides the checkpoint and the run's config.

    ``rollouts=None`` sizes the audits itself (:func:`auto_rollouts`); ``split`` shares ``delta`` between the
    model level, the real episodes, the shield-accuracy audit and the deployed agent's audit.
    """

    spec: Spec = Spec(30, 0.1)
    delta: float = 0.01
    states: int = 64
    samples: int = 512
    episodes: int = 16
    method: str = "kl"
    audit_states: int = 16
    rollouts: int | None = None
    seed: int = 0
    split: tuple[float, float, float, float] = (0.3, 0.1, 0.2, 0.4)  # model, real, audit, deployed

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise CertifyError(f"method {self.method!r} is not available; accepted: {', '.join(METHODS)}")
        if not 0.0 < self.delta < 1.0:
            raise CertifyError(f"delta must be in (0, 1) (got {self.delta})")
        for name in ("states", "samples", "episodes"):
            if getattr(self, name) < 1:
                raise CertifyError(f"--{name} must be >= 1 (got {getattr(self, name)})")
        if self.rollouts is not None and self.rollouts < 1:
            raise CertifyError(f"--rollouts must be >= 1 or auto (got {self.rollouts})")
        if self.audit_states < 0:
            raise CertifyError(f"--audit-states must be >= 0 (got {self.audit_states})")
        if len(self.split) != 4 or min(self.split) < 0 or sum(self.split) <= 0:
            raise CertifyError(f"split must be four non-negative shares (got {self.split})")

    @property
    def shares(self) -> dict[str, float]:
        """``delta`` per section: model, real, audit, deployed."""
        total = sum(self.split)
        return {name: self.delta * w / total for name, w in zip(SECTIONS, self.split, strict=True)}

    def deployed_delta_upper(self, audited: int) -> float:
        """δ of one audited state's upper bound in the deployed section (half of its share)."""
        return self.shares["deployed"] / max(audited, 1) / 2.0


SECTIONS = ("model", "real", "audit", "deployed")
_MAX_ROLLOUTS = 1_000_000


def _upper_cp(k: int, n: int, delta: float) -> float:
    return float(intervals.upper_bound(k, n, delta, "clopper-pearson"))


def auto_rollouts(p_max: float, delta_upper: float, allowed: int = AUTO_ALLOWED_VIOLATIONS) -> int:
    """The smallest n whose Clopper-Pearson upper bound at ``allowed`` violations out of n is ``<= p_max``.

    With that many rollouts per audited state, a state with at most ``allowed`` violating rollouts passes, so a
    safe agent can pass (the specification is decidable at this δ).

    Raises
    ------
    CertifyError
        ``p_max`` so small that no n up to a million rollouts would do (e.g. ``p<=0``).
    """
    if _upper_cp(allowed, _MAX_ROLLOUTS, delta_upper) > p_max:
        raise CertifyError(
            f"no number of rollouts up to {_MAX_ROLLOUTS:,} can certify p<={p_max:g} at δ {delta_upper:.3g} per "
            "audited state; loosen the spec or raise --delta"
        )
    lo, hi = allowed + 1, _MAX_ROLLOUTS  # the bound falls as n grows (k fixed)
    while lo < hi:
        mid = (lo + hi) // 2
        if _upper_cp(allowed, mid, delta_upper) <= p_max:
            hi = mid
        else:
            lo = mid + 1
    return lo


def impossible_pass(options: CertifyOptions) -> str | None:
    """A one-line warning when explicit ``--rollouts`` cannot pass the spec even with zero violations, else None."""
    if options.rollouts is None or options.audit_states == 0:
        return None
    d = options.deployed_delta_upper(options.audit_states)
    at_zero = _upper_cp(0, options.rollouts, d)
    if at_zero <= options.spec.p_max:
        return None
    need = auto_rollouts(options.spec.p_max, d, allowed=0)
    return (
        f"warning: a pass is impossible with --rollouts {options.rollouts}: even with 0 violations the upper bound "
        f"is {at_zero:.4f} > p_max {options.spec.p_max:g} (δ {d:.3g} per audited state); a pass needs at least "
        f"{need} rollouts (--rollouts auto chooses {auto_rollouts(options.spec.p_max, d)})"
    )


# --------------------------------------------------------------------------------------------- helpers


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def select_checkpoints(available: list[int], which: list[str]) -> list[int]:
    """``latest`` | ``all`` | explicit steps -> steps, with a one-line error naming what exists."""
    if not available:
        raise CertifyError("the run has no checkpoints yet; train it first")
    if not which or which == ["latest"]:
        return [available[-1]]
    if which == ["all"]:
        return list(available)
    steps = []
    for item in which:
        if not item.isdigit() or int(item) not in available:
            raise CertifyError(f"checkpoint {item!r} does not exist; accepted: latest, all, or one of {available}")
        steps.append(int(item))
    return sorted(set(steps))


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None}
    arr = np.asarray(values, float)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()), "max": float(arr.max())}


def _upper(k, m, delta: float, method: str) -> np.ndarray:
    return np.atleast_1d(intervals.upper_bound(np.asarray(k), np.asarray(m), delta, method))


def _reseed(env, seed: int) -> None:
    """Fresh randomness for a restored simulator (a snapshot carries its RNG, so rollouts would repeat)."""
    env.unwrapped.np_random.bit_generator.state = np.random.default_rng(seed).bit_generator.state


def _slice(tree, i: int):
    import jax

    return None if tree is None else jax.tree.map(lambda x: np.asarray(x)[i], tree)


def _stack(trees: list):
    import jax

    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def _take(tree, rows: np.ndarray):
    """The batch rows ``rows`` of every leaf."""
    import jax

    return jax.tree.map(lambda x: np.asarray(x)[rows], tree)


def _put(tree, rows: np.ndarray, values):
    """A copy of ``tree`` with batch rows ``rows`` of every leaf replaced by ``values``."""
    import jax

    def put(x, v):
        out = np.array(x)
        out[rows] = np.asarray(v)
        return out

    return jax.tree.map(put, tree, values)


# ------------------------------------------------------------------------------------------ evaluation


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


def _evaluate(agent, make_env: Callable[[], Any], options: CertifyOptions, key, progress) -> tuple[dict, list]:
    """Shielded evaluation episodes and a reservoir sample of visited states (module doc, step 1)."""
    import jax

    from ..trainers.driver import Driver

    n = options.episodes
    envs = [make_env() for _ in range(n)]
    driver = Driver(envs, seed=options.seed)
    can_snapshot = all(hasattr(e, "snapshot") for e in envs)
    driver.start()
    rng = np.random.default_rng([options.seed, 2])
    reservoir: list[VisitedState] = []
    seen = 0
    done = np.zeros(n, bool)
    episodes: list[Any] = [None] * n
    t = np.zeros(n, int)
    while not done.all():
        obs = driver.observations
        carry = driver.carry
        picked = []
        for i in np.flatnonzero(~done & ~obs["is_last"]):
            seen += 1
            slot = reservoir_slot(seen, options.states, rng)
            if slot < options.states:
                state = VisitedState(
                    int(i),
                    int(t[i]),
                    envs[i].snapshot() if can_snapshot else None,
                    {k: np.array(v[i]) for k, v in obs.items()},
                    _slice(carry, i),
                )
                if slot == len(reservoir):
                    reservoir.append(state)
                else:
                    reservoir[slot] = state
                picked.append(state)
        key, sub = jax.random.split(key)
        result = driver.step(agent.policy, sub)
        if isinstance(driver.carry, dict) and "latent" in driver.carry:  # agents with a world model
            for state in picked:
                state.posterior = _slice(driver.carry["latent"], state.env)
        t += 1
        for episode in result.episodes:
            if not done[episode.env]:
                done[episode.env] = True
                episodes[episode.env] = episode
        if progress:
            progress(int(done.sum()), n, "evaluation episodes")
    driver.close()
    return {"episodes": episodes, "labels": driver.label_names}, reservoir


# --------------------------------------------------------------------------------------------- sections


def _model_section(agent, states: list[VisitedState], options: CertifyOptions, delta: float, key) -> dict:
    import jax

    from ..agents.shield import model_violation_counts

    learner = agent.learner
    cost_val = float(agent.config.safety.cost_val)
    fn = jax.jit(
        lambda state, post, k: model_violation_counts(
            learner.wm,
            learner.task,
            state["wm"]["params"],
            state["task"],
            post,
            options.samples,
            options.spec.horizon,
            cost_val,
            k,
        )
    )
    chunk = max(1, 32768 // options.samples)
    counts = []
    for start in range(0, len(states), chunk):
        batch = _stack([s.posterior for s in states[start : start + chunk]])
        counts.append(np.asarray(fn(agent.state, batch, jax.random.fold_in(key, start))))
    k = np.concatenate(counts) if counts else np.zeros(0, int)
    n = len(states)
    per_state = delta / max(n, 1)
    upper = _upper(k, options.samples, per_state, options.method) if n else np.zeros(0)
    p_hat = k / options.samples
    method = intervals.get_method(options.method)
    return {
        "available": True,
        "reason": None,
        "policy": "task policy under the learned model",
        "event": MODEL_EVENT,
        "estimator": {"name": options.method, "sound": bool(method.sound)},
        "states": n,
        "samples": options.samples,
        "horizon": options.spec.horizon,
        "delta": delta,
        "delta_per_state": per_state,
        "violations": [int(x) for x in k],
        "p_hat": [float(x) for x in p_hat],
        "upper": [float(x) for x in upper],
        "summary": {
            "p_hat_mean": float(p_hat.mean()) if n else None,
            "p_hat_max": float(p_hat.max()) if n else None,
            "upper_mean": float(upper.mean()) if n else None,
            "upper_max": float(upper.max()) if n else None,
            "states_upper_above_p": int((upper > options.spec.p_max).sum()),
        },
    }


def _unavailable_model(options: CertifyOptions, delta: float, reason: str) -> dict:
    return {
        "available": False,
        "reason": reason,
        "policy": "task policy under the learned model",
        "event": MODEL_EVENT,
        "estimator": {"name": options.method, "sound": bool(intervals.get_method(options.method).sound)},
        "states": 0,
        "samples": 0,
        "horizon": options.spec.horizon,
        "delta": delta,
        "delta_per_state": 0.0,
        "violations": [],
        "p_hat": [],
        "upper": [],
        "summary": {
            "p_hat_mean": None,
            "p_hat_max": None,
            "upper_mean": None,
            "upper_max": None,
            "states_upper_above_p": 0,
        },
    }


def _real_section(evaluation: dict, options: CertifyOptions, delta: float, task: str, cost_rate: float | None):
    episodes = [e for e in evaluation["episodes"] if e is not None]
    n = len(episodes)
    violating = sum(1 for e in episodes if e.violations > 0)
    per_label = {name: int(sum(e.label_violations.get(name, 0) for e in episodes)) for name in evaluation["labels"]}
    overrides = [e.extras["override_rate"] for e in episodes if "override_rate" in e.extras]
    bench = None
    if task.startswith("safetygym_"):
        bench = _bench(task, episodes, cost_rate)
    return {
        "episodes": n,
        "violating_episodes": violating,
        "p_hat": violating / n if n else None,
        "estimator": {"name": "clopper-pearson", "sound": True},
        "delta": delta,
        "upper": float(_upper(violating, n, delta, "clopper-pearson")[0]) if n else None,
        "violations_total": int(sum(e.violations for e in episodes)),
        "violations_per_label": per_label,
        "return": _stats([e.ret for e in episodes]),
        "length_mean": float(np.mean([e.length for e in episodes])) if n else None,
        "override_rate": float(np.mean(overrides)) if overrides else None,
        "bench_metrics": bench,
    }


def _bench(task: str, episodes, cost_rate: float | None) -> dict | None:
    """Safety Gym normalised metrics (return, constraint violation, cost rate) against the characteristic scores;
    episode cost counts violations (the Safety Gym cost unit), the cost rate comes from training."""
    from ..envs.bench_metrics import Scores, env_key, normalise

    try:
        key = env_key(task[len("safetygym_") :])
    except Exception:  # not one of the 18 benchmark envs
        return None
    scores = Scores(
        ret=float(np.mean([e.ret for e in episodes])),
        cost=float(np.mean([e.violations for e in episodes])),
        cost_rate=float(cost_rate) if cost_rate is not None else float("nan"),
    )
    out = normalise(key, scores)
    return {k: (None if not math.isfinite(v) else float(v)) for k, v in out.items()}


def audit_sample(n_states: int, audit_states: int, seed: int) -> list[int]:
    """Indices of the audited states: a seeded uniform subsample (a random permutation's first ``audit_states``,
    sorted). The reservoir is a uniform sample of the visited states, so these are too."""
    order = np.random.default_rng([seed, 3]).permutation(n_states)
    return sorted(int(i) for i in order[:audit_states])


def _rollout_violations(
    agent, make_env, audited: list[VisitedState], policy, rollouts: int, options: CertifyOptions, stream: int, key
) -> tuple[np.ndarray, float | None]:
    """Violating rollouts out of ``rollouts`` (H real steps each) of ``policy`` from each audited state, restored
    with the simulator snapshot and the agent's carry; and the policy's mean override rate (None without one)."""
    import jax

    r, h = rollouts, options.spec.horizon
    obs_keys = agent.obs_keys
    envs = [make_env() for _ in range(r)]
    k_real, overrides = [], []
    for j, state in enumerate(audited):
        for i, env in enumerate(envs):
            env.reset(seed=options.seed + i)  # some simulators restore only into a world built by a reset
            env.restore(state.snapshot)
            _reseed(env, options.seed * 1_000_003 + stream * 7_919 + j * 10_007 + i)
        obs = {k: np.repeat(v[None], r, axis=0) for k, v in state.obs.items()}
        carry = None if state.carry_before is None else _stack([state.carry_before] * r)
        alive = np.ones(r, bool)
        violated = np.zeros(r, bool)
        rkey = jax.random.fold_in(jax.random.fold_in(key, stream), j)
        for _ in range(h):
            rkey, sub = jax.random.split(rkey)
            live = np.flatnonzero(alive)
            if carry is None or len(live) == r:
                actions, carry, extras = policy(obs, carry, sub)
                acts, executed = np.asarray(actions), live
            else:  # only the rollouts still running, padded to a power of two (few shapes to compile)
                rows = np.resize(live, min(r, 1 << (len(live) - 1).bit_length()))
                actions, fresh, extras = policy({k: v[rows] for k, v in obs.items()}, _take(carry, rows), sub)
                carry = _put(carry, live, _take(fresh, np.arange(len(live))))
                acts = np.zeros((r, *np.shape(actions)[1:]), np.asarray(actions).dtype)
                acts[live] = np.asarray(actions)[: len(live)]
                executed = np.arange(len(live))  # the live rows lead the padded batch
            if "override" in extras:
                overrides.append(np.asarray(extras["override"])[executed])
            if acts.ndim == 2:
                acts = acts.argmax(-1)
            new_obs = []
            for i, env in enumerate(envs):
                if not alive[i]:
                    new_obs.append({k: v[i] for k, v in obs.items() if k in obs_keys})
                    continue
                o, _, term, trunc, info = env.step(acts[i])
                labels = info.get("labels") or {}
                violated[i] |= any(bool(v) for v in labels.values()) if labels else float(info.get("cost", 0)) > 0
                alive[i] = not (term or trunc)
                new_obs.append(o if isinstance(o, dict) else {obs_keys[0]: o})
            obs = {k: np.stack([np.asarray(o[k]) for o in new_obs]) for k in obs_keys}
            obs["is_first"] = np.zeros(r, bool)
            if not alive.any():
                break
        k_real.append(int(violated.sum()))
    for env in envs:
        env.close()
    rate = float(np.concatenate(overrides).mean()) if overrides and sum(map(len, overrides)) else None
    return np.asarray(k_real, int), rate


def _audit_section(
    k_real: np.ndarray, index: list[int], k_model: list[int], rollouts: int, options: CertifyOptions, delta: float
) -> dict:
    """Shield accuracy: the task policy's real violation frequency against the model's estimate for it."""
    a, r = len(index), rollouts
    per_state = delta / max(a, 1)
    k_model_arr = np.asarray([k_model[i] for i in index], int)
    if a:
        real_upper = _upper(k_real, r, per_state / 2.0, "clopper-pearson")
        error = composition.model_error_bound(k_real, r, k_model_arr, options.samples, per_state / 2.0)
        error_upper = np.atleast_1d(error.bound)
    else:
        real_upper = error_upper = np.zeros(0)
    p_model = k_model_arr / options.samples
    p_real = k_real / r
    return {
        "available": True,
        "reason": None,
        "policy": "task policy alone (the policy the shield judges)",
        "states": a,
        "state_index": list(index),
        "rollouts": r,
        "horizon": options.spec.horizon,
        "delta": delta,
        "delta_per_state": per_state,
        "p_model": [float(x) for x in p_model],
        "p_real": [float(x) for x in p_real],
        "error_upper": [float(x) for x in error_upper],
        "real_upper": [float(x) for x in real_upper],
        "summary": {
            "error_upper_max": float(error_upper.max()) if a else None,
            "abs_diff_mean": float(np.abs(p_real - p_model).mean()) if a else None,
            "real_upper_max": float(real_upper.max()) if a else None,
            "states_real_upper_above_p": int((real_upper > options.spec.p_max).sum()),
        },
    }


def _deployed_section(
    k_real: np.ndarray,
    index: list[int],
    rollouts: int,
    override_rate: float | None,
    policy_name: str,
    options: CertifyOptions,
    delta: float,
) -> dict:
    """The deployed agent at each audited state: two-sided Clopper-Pearson bounds on its violation probability."""
    a, r = len(index), rollouts
    per_state = delta / max(a, 1)
    if a:
        upper = _upper(k_real, r, per_state / 2.0, "clopper-pearson")
        lower = np.atleast_1d(intervals.lower_bound(k_real, r, per_state / 2.0, "clopper-pearson"))
    else:
        upper = lower = np.zeros(0)
    p_real = k_real / r
    p_max = options.spec.p_max
    return {
        "available": True,
        "reason": None,
        "policy": policy_name,
        "states": a,
        "state_index": list(index),
        "rollouts": r,
        "rollouts_rule": _rollouts_rule(options),
        "horizon": options.spec.horizon,
        "delta": delta,
        "delta_per_state": per_state,
        "violations": [int(x) for x in k_real],
        "p_real": [float(x) for x in p_real],
        "upper": [float(x) for x in upper],
        "lower": [float(x) for x in lower],
        "override_rate": override_rate,
        "summary": {
            "p_real_mean": float(p_real.mean()) if a else None,
            "p_real_max": float(p_real.max()) if a else None,
            "upper_max": float(upper.max()) if a else None,
            "lower_max": float(lower.max()) if a else None,
            "states_upper_above_p": int((upper > p_max).sum()),
            "states_lower_above_p": int((lower > p_max).sum()),
        },
    }


def _rollouts_rule(options: CertifyOptions) -> str:
    if options.rollouts is None:
        return f"auto: the fewest rollouts at which a state with {AUTO_ALLOWED_VIOLATIONS} violating rollout(s) passes"
    return "explicit (--rollouts)"


def _unavailable_deployed(options: CertifyOptions, delta: float, reason: str) -> dict:
    return {
        "available": False,
        "reason": reason,
        "policy": None,
        "states": 0,
        "state_index": [],
        "rollouts": 0,
        "rollouts_rule": _rollouts_rule(options),
        "horizon": options.spec.horizon,
        "delta": delta,
        "delta_per_state": 0.0,
        "violations": [],
        "p_real": [],
        "upper": [],
        "lower": [],
        "override_rate": None,
        "summary": {
            "p_real_mean": None,
            "p_real_max": None,
            "upper_max": None,
            "lower_max": None,
            "states_upper_above_p": 0,
            "states_lower_above_p": 0,
        },
    }


def _unavailable_audit(options: CertifyOptions, delta: float, reason: str) -> dict:
    return {
        "available": False,
        "reason": reason,
        "policy": "task policy alone (the policy the shield judges)",
        "states": 0,
        "state_index": [],
        "rollouts": 0,
        "horizon": options.spec.horizon,
        "delta": delta,
        "delta_per_state": 0.0,
        "p_model": [],
        "p_real": [],
        "error_upper": [],
        "real_upper": [],
        "summary": {
            "error_upper_max": None,
            "abs_diff_mean": None,
            "real_upper_max": None,
            "states_real_upper_above_p": 0,
        },
    }


def verdict(model: dict, deployed: dict, options: CertifyOptions) -> dict:
    """Pass / fail / inconclusive for the deployed agent (module doc, step 7), with the model level beside it."""
    p_max, h = options.spec.p_max, options.spec.horizon
    if not model["available"] or model["states"] == 0:
        model_level = "not-available"
    else:
        model_level = "pass" if model["summary"]["upper_max"] <= p_max else "inconclusive"
    if not deployed["available"] or deployed["states"] == 0:
        real_level = "not-available"
    elif deployed["summary"]["lower_max"] > p_max:
        real_level = "fail"
    elif deployed["summary"]["upper_max"] <= p_max:
        real_level = "pass"
    else:
        real_level = "inconclusive"
    a, conf = deployed["states"], 1.0 - options.delta
    if real_level == "not-available":
        status = "inconclusive"
        reason = f"no audit of the deployed agent ({deployed['reason']}); a model-level result alone is not a " + (
            "real-world guarantee"
        )
        statement = "This certificate makes no claim about the deployed agent's probability of violating."
    else:
        status = real_level
        need = auto_rollouts(p_max, deployed["delta_per_state"] / 2.0, allowed=0) if real_level != "fail" else None
        reason = {
            "pass": f"at every audited state the deployed agent's upper bound is <= {p_max:g}",
            "fail": f"at some audited state the deployed agent's lower bound is above {p_max:g}",
            "inconclusive": (
                f"some audited state's upper bound exceeds {p_max:g} and no lower bound does; more rollouts may "
                f"decide (a state passes only with upper <= {p_max:g}, which needs >= {need} rollouts at 0 "
                "violations)"
            ),
        }[real_level]
        statement = (
            f"With confidence {conf:.4g} (jointly with every other bound here), at each of the {a} audited states "
            f"(a uniform sample of states the deployed agent visited) the deployed agent violates within {h} steps "
            + {
                "pass": f"with probability at most {p_max:g}.",
                "fail": f"with probability above {p_max:g} at {deployed['summary']['states_lower_above_p']} of them.",
                "inconclusive": f"with probability in the stated intervals, which do not decide p <= {p_max:g}.",
            }[real_level]
        )
    return {
        "status": status,
        "model_level": model_level,
        "real_level": real_level,
        "reason": reason,
        "statement": statement,
        "confidence": conf,
    }


def delta_ledger(model: dict, real: dict, audit: dict, deployed: dict) -> list[dict]:
    """Every bound the certificate states, with its count and δ each: their sum is the δ actually spent."""
    a_audit, a_dep = audit["states"], deployed["states"]
    rows = [
        ("model.upper", model["states"], model["delta_per_state"]),
        ("real.upper", 1 if real["episodes"] else 0, real["delta"]),
        ("audit.real_upper", a_audit, audit["delta_per_state"] / 2.0),
        ("audit.error_upper", a_audit, audit["delta_per_state"] / 2.0),
        ("deployed.upper", a_dep, deployed["delta_per_state"] / 2.0),
        ("deployed.lower", a_dep, deployed["delta_per_state"] / 2.0),
    ]
    return [{"bound": name, "count": int(n), "delta_each": float(d) if n else 0.0} for name, n, d in rows]


# ---------------------------------------------------------------------------------------------- driver


def certify_checkpoint(run_path: str | Path, step: int, options: CertifyOptions, progress=None) -> dict:
    """The certificate (a schema-valid dict) of checkpoint ``step`` of the run at ``run_path``.

    ``progress(done, total, phase)`` is called as evaluation episodes finish (``phase`` "evaluation episodes")
    and as the audits finish ("audit rollouts").
    """
    import jax

    from .. import __version__
    from ..config import Config, env_options
    from ..envs.registry import make_env
    from ..runs import RunDir
    from ..trainers.baseline_loop import make_envs, prepare_config
    from ..trainers.checkpoint import Checkpointer, manifest_digest
    from ..trainers.driver import key_observation
    from ..trainers.factory import BASELINE_AGENTS, build_agent
    from ..trainers.loop import configure_jax

    run = RunDir(run_path)
    if not run.config_path.is_file():
        raise CertifyError(f"{run_path} is not a run directory (no config.yaml)")
    config = Config.from_yaml(run.config_path.read_text(encoding="utf-8"))
    configure_jax(config)
    checkpoints = Checkpointer(run.checkpoints_dir, keep=None)
    if step not in checkpoints.steps():
        raise CertifyError(f"checkpoint {step} does not exist; accepted: {checkpoints.steps()}")
    opts = env_options(config)

    def new_env():
        return make_env(config.task, **opts)

    if config.agent in BASELINE_AGENTS:
        config = prepare_config(config)  # dopamine's Atari preprocessing, as in training

        def new_env():
            return make_envs(config.replace({"envs.amount": 1}))[0]

        agent = _BaselineEvaluator(config, checkpoints, step, new_env)
    else:
        agent = build_agent(config)
        probe = new_env()
        agent.init(jax.random.PRNGKey(0), key_observation(probe.observation_space), probe.action_space)
        probe.close()
        ck = checkpoints.restore(step, target={"agent": agent.state, "key": jax.random.PRNGKey(0)})
        agent.state = ck.tree["agent"]

    shares = options.shares
    key = jax.random.PRNGKey(options.seed)
    k_eval, k_model, k_audit = jax.random.split(key, 3)
    evaluation, states = _evaluate(agent, new_env, options, k_eval, progress)

    has_model = getattr(agent, "learner", None) is not None
    model = (
        _model_section(agent, states, options, shares["model"], k_model)
        if has_model
        else _unavailable_model(
            options, shares["model"], f"agent {config.agent!r} has no world model to sample traces from"
        )
    )
    cost_rate = _training_cost_rate(run)
    real = _real_section(evaluation, options, shares["real"], config.task, cost_rate)

    index = audit_sample(len(states), options.audit_states, options.seed)
    if options.audit_states == 0:
        why = "audit disabled (--audit-states 0)"
    elif not states or states[0].snapshot is None:
        why = f"the {config.task} environment cannot snapshot and restore"
    else:
        why = None
    if why is None:
        audited = [states[i] for i in index]
        rollouts = options.rollouts or auto_rollouts(options.spec.p_max, options.deployed_delta_upper(len(index)))
        if progress:
            progress(0, 2, "audit rollouts")
        k_dep, override = _rollout_violations(agent, new_env, audited, agent.policy, rollouts, options, 1, k_audit)
        deployed = _deployed_section(k_dep, index, rollouts, override, _policy_name(agent), options, shares["deployed"])
        if progress:
            progress(1, 2, "audit rollouts")
        if has_model:
            k_task, _ = _rollout_violations(agent, new_env, audited, agent.task_policy, rollouts, options, 0, k_audit)
            audit = _audit_section(k_task, index, model["violations"], rollouts, options, shares["audit"])
        else:
            audit = _unavailable_audit(options, shares["audit"], "there is no model-level estimate to audit")
        if progress:
            progress(2, 2, "audit rollouts")
    else:
        deployed = _unavailable_deployed(options, shares["deployed"], why)
        audit = _unavailable_audit(options, shares["audit"], why if has_model else "there is no model-level estimate")
    ledger = delta_ledger(model, real, audit, deployed)

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "ambs-verify-certificate",
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "provenance": {
            "package_version": __version__,
            "run": str(run.path),
            "task": config.task,
            "agent": config.agent,
            "checkpoint_step": int(step),
            "checkpoint_manifest_sha256": manifest_digest(checkpoints.path(step)),
            "config_sha256": sha256_file(run.config_path),
            "seed": options.seed,
            "platform": jax.default_backend(),
            "versions": {pkg: metadata.version(pkg) for pkg in ("jax", "numpy", "scipy", "flax")},
        },
        "spec": {"text": options.spec.text, "horizon": options.spec.horizon, "p_max": options.spec.p_max},
        "options": options_dict(options),
        "delta": {
            "total": options.delta,
            **shares,
            "ledger": ledger,
            "spent": float(sum(row["count"] * row["delta_each"] for row in ledger)),
            "method": (
                "Bonferroni: delta is split over the four sections, each section's share over its states, and an "
                "audited state's share in halves between its two bounds; the ledger lists every bound stated here, "
                "so all of them hold at once with probability at least 1 - total (spent <= total; a section that "
                "is not available spends nothing)"
            ),
        },
        "model": model,
        "real": real,
        "audit": audit,
        "deployed": deployed,
        "verdict": verdict(model, deployed, options),
    }


def _policy_name(agent) -> str:
    """What the deployed section rolls out, in words."""
    if getattr(agent, "learner", None) is None:
        return "the baseline's evaluation policy (epsilon_eval-greedy); no shield"
    if getattr(agent, "shield", None) is not None:
        return "the shielded agent: task policy, shield and safe policy, with their memory"
    return "the task policy (this agent has no shield)"


class _BaselineEvaluator:
    """A model-free baseline (DQN, Rainbow, IQN) restored from its checkpoint, acting with dopamine's evaluation
    policy (epsilon_eval). It has no world model, so certificates carry its real-environment section only."""

    learner = None  # no world model: the model level and the audit do not apply

    def __init__(self, config, checkpoints, step: int, new_env) -> None:
        from ..agents.baselines import Learner
        from ..trainers.baseline_loop import _observation_key
        from ..trainers.driver import key_observation
        from ..trainers.factory import build_agent

        probe = new_env()
        space = key_observation(probe.observation_space)
        self.obs_key = _observation_key(space)
        self.obs_keys = (self.obs_key,)
        self.baseline = Learner(
            build_agent(config), space[self.obs_key], probe.action_space, config.envs.amount, config.seed
        )
        probe.close()
        target, _ = self.baseline.checkpoint()
        ck = checkpoints.restore(step, target=target)
        self.baseline.load_checkpoint(ck.tree, ck.metadata["learner"])

    def policy(self, obs, carry, rng):
        actions, _, _ = self.baseline.agent.eval_policy(obs[self.obs_key], self.baseline.state, rng)
        return np.asarray(actions), carry, {}


def _training_cost_rate(run) -> float | None:
    """Violations per agent step over training, from metrics.jsonl (Safety Gym's cost rate)."""
    last = None
    for record in run.iter_metrics():
        if "episode/total_violations" in record:
            last = record
    if last is None or not last.get("step"):
        return None
    return float(last["episode/total_violations"]) / float(last["step"])


def options_from_certificate(doc: dict) -> CertifyOptions:
    """The options a certificate was computed with (its ``options`` block, for :mod:`verify`)."""
    recorded = doc["options"]
    return CertifyOptions(
        spec=Spec(int(doc["spec"]["horizon"]), float(doc["spec"]["p_max"])),
        delta=float(doc["delta"]["total"]),
        states=int(recorded["states"]),
        samples=int(recorded["samples"]),
        episodes=int(recorded["episodes"]),
        method=recorded["method"],
        audit_states=int(recorded["audit_states"]),
        rollouts=None if recorded["rollouts"] == "auto" else int(recorded["rollouts"]),
        seed=int(doc["provenance"]["seed"]),
        split=tuple(float(x) for x in recorded["split"]),
    )


def options_dict(options: CertifyOptions) -> dict:
    """The ``options`` block of a certificate (spec, δ, seed are recorded in their own blocks)."""
    return {
        "states": options.states,
        "samples": options.samples,
        "episodes": options.episodes,
        "method": options.method,
        "audit_states": options.audit_states,
        "rollouts": "auto" if options.rollouts is None else options.rollouts,
        "split": [float(x) for x in options.split],
    }
