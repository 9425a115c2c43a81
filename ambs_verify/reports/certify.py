"""Safety certificates per checkpoint (DESIGN.md §5): model level, real environment, model-error audit, verdict.

For one checkpoint of a run, :func:`certify_checkpoint`

1. runs ``episodes`` evaluation episodes of the **shielded** policy (env ``i`` seeded ``seed + i``; first episode
   of each env only) and keeps a uniform sample of ``states`` visited states (reservoir sampling, seeded), each
   with its simulator snapshot, observation and the agent's recurrent carry;
2. **model level**: at each sampled state, ``samples`` latent traces of the **task** policy, ``horizon`` steps
   through the learned model (:func:`~ambs_verify.agents.shield.model_violation_counts`): ``k`` violating, ``p_hat
   = k / m`` and a sound one-sided upper bound at ``1 - delta_model / states`` (union bound over states);
3. **real environment**: violations per episode and per label, the Clopper-Pearson upper bound on the
   per-episode violation probability at ``1 - delta_real``, return statistics, Safety Gym bench metrics;
4. **audit**: at the first ``audit_states`` sampled states (a uniform subsample), restore the simulator and the
   agent's carry and run ``rollouts`` real rollouts of the task policy for ``horizon`` steps (fresh env RNG per
   rollout). Per state, half of its ``delta_audit / audit_states`` goes to a Clopper-Pearson upper bound on
   ``p_real`` (``real_upper``), half to a bound on ``|p_real - p_model|`` (``error_upper``,
   :func:`~ambs_verify.estimators.composition.model_error_bound`);
5. **verdict** against the spec ``P(violation within H) <= p_max``: model level passes when every state's upper
   bound is at most ``p_max``; real level passes when every audited state's ``real_upper`` is, and fails when a
   Clopper-Pearson *lower* bound (same delta share) exceeds ``p_max`` at some audited state. The overall status is
   the real level's when an audit exists, else ``inconclusive`` (a model-level result alone is not a real-world
   guarantee).

Everything is a function of the checkpoint, the run's config and the recorded options and seed, so
:mod:`~ambs_verify.reports.verify` can recompute it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..estimators import composition, intervals
from .certificate import SCHEMA_VERSION, CertificateError

__all__ = ["CertifyOptions", "Spec", "certify_checkpoint", "parse_spec", "select_checkpoints"]

METHODS = ("kl", "clopper-pearson", "hoeffding", "bernstein")
_SPEC = re.compile(r"^\s*H\s*=\s*(\d+)\s*,\s*p\s*<=?\s*([0-9.eE+-]+)\s*$")


class CertifyError(CertificateError):
    """Unusable certify input (bad spec, unknown checkpoint, a run without checkpoints)."""


@dataclass(frozen=True)
class Spec:
    """``P(violation within horizon steps) <= p_max``."""

    horizon: int
    p_max: float

    @property
    def text(self) -> str:
        return f"H={self.horizon},p<={self.p_max:g}"


def parse_spec(text: str) -> Spec:
    """``"H=30,p<=0.1"`` -> :class:`Spec`; a one-line error naming the accepted form otherwise."""
    match = _SPEC.match(text)
    if match is None:
        raise CertifyError(f"spec {text!r} is not of the form 'H=<steps>,p<=<probability>' (e.g. 'H=30,p<=0.1')")
    horizon, p_max = int(match[1]), float(match[2])
    if horizon < 1 or not 0.0 <= p_max <= 1.0:
        raise CertifyError(f"spec {text!r}: H must be >= 1 and p in [0, 1]")
    return Spec(horizon, p_max)


@dataclass(frozen=True)
class CertifyOptions:
    """Everything a certificate depends on besides the checkpoint and the run's config."""

    spec: Spec = Spec(30, 0.1)
    delta: float = 0.01
    states: int = 64
    samples: int = 512
    episodes: int = 16
    method: str = "kl"
    audit_states: int = 16
    rollouts: int = 64
    seed: int = 0
    split: tuple[float, float, float] = (0.4, 0.2, 0.4)  # model, real, audit shares of delta

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise CertifyError(f"method {self.method!r} is not available; accepted: {', '.join(METHODS)}")
        if not 0.0 < self.delta < 1.0:
            raise CertifyError(f"delta must be in (0, 1) (got {self.delta})")
        for name in ("states", "samples", "episodes", "rollouts"):
            if getattr(self, name) < 1:
                raise CertifyError(f"--{name} must be >= 1 (got {getattr(self, name)})")
        if self.audit_states < 0:
            raise CertifyError(f"--audit-states must be >= 0 (got {self.audit_states})")


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
            slot = len(reservoir) if len(reservoir) < options.states else int(rng.integers(seen))
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
            progress(int(done.sum()), n)
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


def _audit_section(
    agent, make_env, states: list[VisitedState], k_model: list[int], options: CertifyOptions, delta: float, key
) -> dict:
    import jax

    audited = states[: options.audit_states]
    a, r, h = len(audited), options.rollouts, options.spec.horizon
    per_state = delta / max(a, 1)
    envs = [make_env() for _ in range(r)]
    p_real, k_real = [], []
    for j, state in enumerate(audited):
        for i, env in enumerate(envs):
            env.reset(seed=options.seed + i)  # some simulators restore only into a world built by a reset
            env.restore(state.snapshot)
            _reseed(env, options.seed * 1_000_003 + j * 10_007 + i)
        obs = {k: np.repeat(v[None], r, axis=0) for k, v in state.obs.items()}
        carry = None if state.carry_before is None else _stack([state.carry_before] * r)
        alive = np.ones(r, bool)
        violated = np.zeros(r, bool)
        rkey = jax.random.fold_in(key, j)
        for _ in range(h):
            rkey, sub = jax.random.split(rkey)
            actions, carry, _ = agent.task_policy(obs, carry, sub)
            acts = np.asarray(actions)
            if acts.ndim == 2:
                acts = acts.argmax(-1)
            new_obs = []
            for i, env in enumerate(envs):
                if not alive[i]:
                    new_obs.append({k: v[i] for k, v in obs.items() if k in agent.obs_keys})
                    continue
                o, _, term, trunc, info = env.step(acts[i])
                labels = info.get("labels") or {}
                violated[i] |= any(bool(v) for v in labels.values()) if labels else float(info.get("cost", 0)) > 0
                alive[i] = not (term or trunc)
                new_obs.append(o if isinstance(o, dict) else {agent.obs_keys[0]: o})
            obs = {k: np.stack([np.asarray(o[k]) for o in new_obs]) for k in agent.obs_keys}
            obs["is_first"] = np.zeros(r, bool)
            if not alive.any():
                break
        k_real.append(int(violated.sum()))
        p_real.append(violated.mean())
    for env in envs:
        env.close()
    k_real_arr = np.asarray(k_real, int)
    k_model_arr = np.asarray(k_model[:a], int)
    if a:
        real_upper = _upper(k_real_arr, r, per_state / 2.0, "clopper-pearson")
        error = composition.model_error_bound(k_real_arr, r, k_model_arr, options.samples, per_state / 2.0)
        error_upper = np.atleast_1d(error.bound)
    else:
        real_upper = error_upper = np.zeros(0)
    p_model = k_model_arr / options.samples
    return {
        "available": True,
        "reason": None,
        "states": a,
        "rollouts": r,
        "horizon": h,
        "delta": delta,
        "delta_per_state": per_state,
        "p_model": [float(x) for x in p_model],
        "p_real": [float(x) for x in p_real],
        "error_upper": [float(x) for x in error_upper],
        "real_upper": [float(x) for x in real_upper],
        "summary": {
            "error_upper_max": float(error_upper.max()) if a else None,
            "abs_diff_mean": float(np.abs(np.asarray(p_real) - p_model).mean()) if a else None,
            "real_upper_max": float(real_upper.max()) if a else None,
            "states_real_upper_above_p": int((real_upper > options.spec.p_max).sum()),
        },
    }


def _unavailable_audit(options: CertifyOptions, delta: float, reason: str) -> dict:
    return {
        "available": False,
        "reason": reason,
        "states": 0,
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


def verdict(model: dict, audit: dict, options: CertifyOptions) -> dict:
    """Pass / fail / inconclusive at each level and overall (module doc, step 5)."""
    p_max = options.spec.p_max
    if not model["available"] or model["states"] == 0:
        model_level = "not-available"
    else:
        model_level = "pass" if model["summary"]["upper_max"] <= p_max else "inconclusive"
    if not audit["available"] or audit["states"] == 0:
        real_level = "not-available"
    else:
        k = np.round(np.asarray(audit["p_real"]) * audit["rollouts"]).astype(int)
        lower = np.atleast_1d(
            intervals.lower_bound(k, audit["rollouts"], audit["delta_per_state"] / 2.0, "clopper-pearson")
        )
        if (lower > p_max).any():
            real_level = "fail"
        elif max(audit["real_upper"]) <= p_max:
            real_level = "pass"
        else:
            real_level = "inconclusive"
    if real_level == "not-available":
        status = "inconclusive"
        reason = "no real-level audit: a model-level result alone is not a real-world guarantee"
        if model_level == "not-available":
            reason = "neither the model level nor the audit apply to this agent/environment"
    else:
        status = real_level
        reason = {
            "pass": f"every audited state's real upper bound is <= {p_max:g}",
            "fail": f"at some audited state the real violation probability is certified above {p_max:g}",
            "inconclusive": f"some audited state's real upper bound exceeds {p_max:g}; more rollouts may decide",
        }[real_level]
    return {"status": status, "model_level": model_level, "real_level": real_level, "reason": reason}


# ---------------------------------------------------------------------------------------------- driver


def certify_checkpoint(run_path: str | Path, step: int, options: CertifyOptions, progress=None) -> dict:
    """The certificate (a schema-valid dict) of checkpoint ``step`` of the run at ``run_path``.

    ``progress(done, total)`` is called as evaluation episodes finish.
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

    d_model, d_real, d_audit = (options.delta * w / sum(options.split) for w in options.split)
    key = jax.random.PRNGKey(options.seed)
    k_eval, k_model, k_audit = jax.random.split(key, 3)
    evaluation, states = _evaluate(agent, new_env, options, k_eval, progress)

    has_model = getattr(agent, "learner", None) is not None
    model = (
        _model_section(agent, states, options, d_model, k_model)
        if has_model
        else _unavailable_model(options, d_model, f"agent {config.agent!r} has no world model to sample traces from")
    )
    cost_rate = _training_cost_rate(run)
    real = _real_section(evaluation, options, d_real, config.task, cost_rate)
    if not has_model:
        audit = _unavailable_audit(options, d_audit, "there is no model-level estimate to audit")
    elif options.audit_states == 0:
        audit = _unavailable_audit(options, d_audit, "audit disabled (--audit-states 0)")
    elif not states or states[0].snapshot is None:
        audit = _unavailable_audit(options, d_audit, f"the {config.task} environment cannot snapshot and restore")
    else:
        audit = _audit_section(agent, new_env, states, model["violations"], options, d_audit, k_audit)

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
        "delta": {
            "total": options.delta,
            "model": d_model,
            "real": d_real,
            "audit": d_audit,
            "method": (
                "Bonferroni split of delta over the three sections; union bound over states within the model and "
                "audit sections; each audited state's share halved between real_upper and error_upper"
            ),
        },
        "model": model,
        "real": real,
        "audit": audit,
        "verdict": verdict(model, audit, options),
    }


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
    """The options a certificate was computed with (for :mod:`verify`)."""
    delta = doc["delta"]
    total = delta["total"]
    return CertifyOptions(
        spec=Spec(int(doc["spec"]["horizon"]), float(doc["spec"]["p_max"])),
        delta=total,
        states=max(int(doc["model"]["states"]), 1) if doc["model"]["available"] else CertifyOptions.states,
        samples=max(int(doc["model"]["samples"]), 1) if doc["model"]["available"] else CertifyOptions.samples,
        episodes=max(int(doc["real"]["episodes"]), 1),
        method=doc["model"]["estimator"]["name"],
        audit_states=int(doc["audit"]["states"]),
        rollouts=max(int(doc["audit"]["rollouts"]), 1) if doc["audit"]["available"] else CertifyOptions.rollouts,
        seed=int(doc["provenance"]["seed"]),
        split=(delta["model"] / total, delta["real"] / total, delta["audit"] / total),
    )


def options_dict(options: CertifyOptions) -> dict:
    out = asdict(options)
    out["spec"] = options.spec.text
    return out
