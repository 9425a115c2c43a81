"""The four sections of a certificate, each composed from estimator records, and the verdict and δ ledger computed
from those records.

The chain (DESIGN.md §5): :func:`~ambs_verify.estimators.composition.split_delta` shares δ over the sections ->
each section splits its share over its states and keeps the bound it states as an
:class:`~ambs_verify.estimators.records.Interval` (or a
:class:`~ambs_verify.estimators.composition.ModelErrorBound`) -> :meth:`Section.ledger` lists every bound with its
δ, read off the records -> :func:`verdict` decides from the deployed section's interval -> ``to_json`` writes the
certificate's blocks.

- :class:`ModelLevel` -- the task policy under the learned model: a one-sided upper bound per visited state;
- :class:`RealLevel` -- whole evaluation episodes of the deployed agent: a Clopper-Pearson upper bound;
- :class:`ShieldAudit` -- the task policy's real rollouts against the model's estimate (shield accuracy);
- :class:`DeployedAudit` -- the deployed agent's real rollouts: a two-sided Clopper-Pearson interval per state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..estimators import composition, intervals
from ..estimators.records import Interval
from ..estimators.sequential import cs_bounds
from ..estimators.threshold_test import CONTINUE, SAFE, UNSAFE, ThresholdTest

__all__ = [
    "DeployedAudit",
    "LedgerRow",
    "ModelLevel",
    "RealLevel",
    "ShieldAudit",
    "delta_ledger",
    "from_certificate",
    "verdict",
]

MODEL_EVENT = (
    "a latent trace of the task policy violates when, at some imagined step 1..H while the model still predicts the "
    "episode to continue, the cost head's mean prediction (clipped to [0, C]) is at least C/2, C = cost_val. The "
    "cost head is trained to predict C at a violating step and 0 elsewhere, so C/2 is its decision boundary; there "
    "is no discounting and no critic bootstrap, so it is the event that H-step real rollouts (the audit) can check: "
    "some safety label fires within H steps"
)
MODEL_POLICY = "task policy under the learned model"
AUDIT_POLICY = "task policy alone (the policy the shield judges)"


@dataclass(frozen=True)
class LedgerRow:
    """``count`` bounds named ``bound``, each at failure probability ``delta_each``."""

    bound: str
    count: int
    delta_each: float

    def to_json(self) -> dict[str, Any]:
        return {
            "bound": self.bound,
            "count": int(self.count),
            "delta_each": float(self.delta_each) if self.count else 0.0,
        }


def _floats(values) -> list[float]:
    return [float(x) for x in np.atleast_1d(values)] if values is not None else []


def _ints(values) -> list[int]:
    return [int(x) for x in np.atleast_1d(values)] if values is not None else []


def _per_state(delta: float, states: int) -> float:
    return delta / max(states, 1)


# --------------------------------------------------------------------------------------------- model level


@dataclass(frozen=True)
class ModelLevel:
    """``k`` of ``samples`` latent traces violate at each visited state; ``bound`` is the one-sided upper bound at
    ``delta / states`` each (None when the section is not available or no state was visited)."""

    delta: float
    horizon: int
    samples: int
    method: str
    p_max: float
    bound: Interval | None = None
    reason: str | None = None

    @classmethod
    def from_counts(cls, k, samples: int, delta: float, method: str, horizon: int, p_max: float) -> ModelLevel:
        k = np.asarray(k, int)
        bound = intervals.interval(k, samples, _per_state(delta, k.size), method, "upper") if k.size else None
        return cls(delta, horizon, samples, method, p_max, bound)

    @property
    def available(self) -> bool:
        return self.reason is None

    @property
    def states(self) -> int:
        return 0 if self.bound is None else int(np.size(self.bound.k))

    def ledger(self) -> list[LedgerRow]:
        return [LedgerRow("model.upper", self.states, _per_state(self.delta, self.states) if self.available else 0.0)]

    def to_json(self) -> dict[str, Any]:
        n, b = self.states, self.bound
        upper = np.atleast_1d(b.upper) if b is not None else np.zeros(0)
        p_hat = np.atleast_1d(b.k) / self.samples if b is not None else np.zeros(0)
        return {
            "available": self.available,
            "reason": self.reason,
            "policy": MODEL_POLICY,
            "event": MODEL_EVENT,
            "estimator": {"name": self.method, "sound": bool(intervals.get_method(self.method).sound)},
            "states": n,
            "samples": self.samples if self.available else 0,
            "horizon": self.horizon,
            "delta": self.delta,
            "delta_per_state": _per_state(self.delta, n) if self.available else 0.0,
            "violations": _ints(b.k if b is not None else None),
            "p_hat": _floats(p_hat) if n else [],
            "upper": _floats(upper) if n else [],
            "summary": {
                "p_hat_mean": float(p_hat.mean()) if n else None,
                "p_hat_max": float(p_hat.max()) if n else None,
                "upper_mean": float(upper.mean()) if n else None,
                "upper_max": float(upper.max()) if n else None,
                "states_upper_above_p": int((upper > self.p_max).sum()),
            },
        }


# ---------------------------------------------------------------------------------------------- real level


@dataclass(frozen=True)
class RealLevel:
    """Violating episodes among the evaluation episodes of the deployed agent: a Clopper-Pearson upper bound at
    the section's δ on the per-episode violation probability (None without episodes), and the episodes' figures."""

    delta: float
    bound: Interval | None
    episodes: Sequence[Any] = field(default_factory=list)  # EpisodeStats of the finished episodes
    labels: Sequence[str] = ()
    bench_metrics: dict | None = None

    @classmethod
    def from_episodes(cls, episodes, labels, delta: float, bench_metrics: dict | None = None) -> RealLevel:
        done = [e for e in episodes if e is not None]
        violating = sum(1 for e in done if e.violations > 0)
        bound = intervals.interval(violating, len(done), delta, "clopper-pearson", "upper") if done else None
        return cls(delta, bound, done, tuple(labels), bench_metrics)

    def ledger(self) -> list[LedgerRow]:
        return [LedgerRow("real.upper", 1 if self.bound is not None else 0, self.delta)]

    def to_json(self) -> dict[str, Any]:
        eps, n = self.episodes, len(self.episodes)
        violating = int(self.bound.k) if self.bound is not None else 0
        overrides = [e.extras["override_rate"] for e in eps if "override_rate" in e.extras]
        returns = np.asarray([e.ret for e in eps], float)
        return {
            "episodes": n,
            "violating_episodes": violating,
            "p_hat": violating / n if n else None,
            "estimator": {"name": "clopper-pearson", "sound": True},
            "delta": self.delta,
            "upper": float(self.bound.upper) if self.bound is not None else None,
            "violations_total": int(sum(e.violations for e in eps)),
            "violations_per_label": {
                name: int(sum(e.label_violations.get(name, 0) for e in eps)) for name in self.labels
            },
            "return": {
                "mean": float(returns.mean()) if n else None,
                "std": float(returns.std()) if n else None,
                "min": float(returns.min()) if n else None,
                "max": float(returns.max()) if n else None,
            },
            "length_mean": float(np.mean([e.length for e in eps])) if n else None,
            "override_rate": float(np.mean(overrides)) if overrides else None,
            "bench_metrics": self.bench_metrics,
        }


# --------------------------------------------------------------------------------------------- the audits


@dataclass(frozen=True)
class ShieldAudit:
    """Shield accuracy at the audited states: the task policy's real violating rollouts (``real``: a one-sided
    Clopper-Pearson upper bound) against the model's estimate there (``error``: a bound on ``|p_real - p_model|``),
    half of each state's share of δ to each."""

    delta: float
    horizon: int
    p_max: float
    index: Sequence[int] = ()
    rollouts: int = 0
    real: Interval | None = None
    error: composition.ModelErrorBound | None = None
    reason: str | None = None

    @classmethod
    def from_counts(cls, k_real, k_model, samples: int, index, rollouts: int, delta: float, horizon: int, p_max):
        a = len(index)
        half = _per_state(delta, a) / 2.0
        real = error = None
        if a:
            real = intervals.interval(np.asarray(k_real), rollouts, half, "clopper-pearson", "upper")
            error = composition.model_error_bound(k_real, rollouts, np.asarray(k_model, int), samples, half)
        return cls(delta, horizon, p_max, list(index), rollouts, real, error)

    @property
    def available(self) -> bool:
        return self.reason is None

    def ledger(self) -> list[LedgerRow]:
        a = len(self.index)
        half = _per_state(self.delta, a) / 2.0 if self.available else 0.0
        return [LedgerRow("audit.real_upper", a, half), LedgerRow("audit.error_upper", a, half)]

    def to_json(self) -> dict[str, Any]:
        a = len(self.index)
        p_model = np.atleast_1d(self.error.k_model) / self.error.m_model if a else np.zeros(0)
        p_real = np.atleast_1d(self.real.k) / self.rollouts if a else np.zeros(0)
        real_upper = np.atleast_1d(self.real.upper) if a else np.zeros(0)
        error_upper = np.atleast_1d(self.error.bound) if a else np.zeros(0)
        return {
            "available": self.available,
            "reason": self.reason,
            "policy": AUDIT_POLICY,
            "states": a,
            "state_index": list(self.index),
            "rollouts": self.rollouts,
            "horizon": self.horizon,
            "delta": self.delta,
            "delta_per_state": _per_state(self.delta, a) if self.available else 0.0,
            "p_model": _floats(p_model),
            "p_real": _floats(p_real),
            "error_upper": _floats(error_upper),
            "real_upper": _floats(real_upper),
            "summary": {
                "error_upper_max": float(error_upper.max()) if a else None,
                "abs_diff_mean": float(np.abs(p_real - p_model).mean()) if a else None,
                "real_upper_max": float(real_upper.max()) if a else None,
                "states_real_upper_above_p": int((real_upper > self.p_max).sum()),
            },
        }


@dataclass(frozen=True)
class DeployedAudit:
    """The deployed agent at each audited state: ``bound`` is a two-sided interval on its probability of violating
    within the horizon, at the state's share of δ.

    With a fixed number of rollouts per state (``from_counts``) it is a Clopper-Pearson interval, half the share per
    side. With ``--sequential`` (``from_sequence``) each state drew rollouts until an anytime-valid test decided
    (``sequential`` records the looks, the rollouts and the decision per state) and the interval is the beta-binomial
    mixture confidence sequence at the state's whole share: one event covers both sides, and it holds at the
    data-dependent number of rollouts where sampling stopped.
    """

    delta: float
    horizon: int
    p_max: float
    rollouts_rule: str
    index: Sequence[int] = ()
    rollouts: int = 0
    bound: Interval | None = None
    override_rate: float | None = None
    policy: str | None = None
    reason: str | None = None
    sequential: dict[str, Any] | None = None

    @classmethod
    def from_counts(cls, k, index, rollouts: int, delta: float, horizon: int, p_max: float, rule: str, **more):
        a = len(index)
        bound = intervals.interval(np.asarray(k), rollouts, _per_state(delta, a), "clopper-pearson") if a else None
        return cls(delta, horizon, p_max, rule, list(index), rollouts, bound, **more)

    @classmethod
    def from_sequence(cls, k, n, index, test: ThresholdTest, delta: float, horizon: int, **more):
        """``k`` violations in ``n`` rollouts per audited state, drawn under ``test`` (a
        :class:`~ambs_verify.estimators.threshold_test.ThresholdTest` of p <= p_max at the state's share)."""
        k, n = np.asarray(k, np.int64), np.asarray(n, np.int64)
        lower, upper = cs_bounds(k, n, test.delta, test.a, test.b)
        bound = Interval(k / n, lower, upper, SEQUENCE_METHOD, True, test.delta, k, n, "two-sided")
        looks = np.searchsorted(test.looks, n)
        codes = test.decide(k, np.minimum(looks, len(test.looks) - 1))
        codes = np.where(looks < len(test.looks), codes, CONTINUE)  # a state left before its first look: undecided
        needed = test.needed(k)
        sequential = {
            "stopping_rule": SEQUENTIAL_RULE,
            "first_look": int(test.batch),
            "growth": int(test.growth),
            "looks": [int(x) for x in test.looks],
            "max_rollouts": int(test.max_n),
            "rollouts": _ints(n),
            "decision": [DECISIONS[int(c)] for c in codes],
            # an undecided state: the rollouts at which its violations so far would pass, if no more came
            "rollouts_needed": [
                int(m) if c == CONTINUE and m > 0 else None for c, m in zip(codes, needed, strict=True)
            ],
        }
        rule = f"sequential: looks at {', '.join(map(str, test.looks))} rollouts until the state is decided"
        index = list(index)
        return cls(delta, horizon, test.eps, rule, index, int(n.max(initial=0)), bound, sequential=sequential, **more)

    @property
    def available(self) -> bool:
        return self.reason is None

    @property
    def states(self) -> int:
        return len(self.index)

    @property
    def delta_per_side(self) -> float:
        """δ of each state's upper bound (and of its lower bound; with ``--sequential`` one bound gives both)."""
        if not self.available:
            return 0.0
        return _per_state(self.delta, self.states) / (1.0 if self.sequential else 2.0)

    def ledger(self) -> list[LedgerRow]:
        a, d = self.states, self.delta_per_side
        if self.sequential:
            return [LedgerRow("deployed.sequence", a, d)]
        return [LedgerRow("deployed.upper", a, d), LedgerRow("deployed.lower", a, d)]

    def to_json(self) -> dict[str, Any]:
        a, b, p_max = self.states, self.bound, self.p_max
        upper = np.atleast_1d(b.upper) if a else np.zeros(0)
        lower = np.atleast_1d(b.lower) if a else np.zeros(0)
        p_real = np.atleast_1d(b.k) / np.atleast_1d(b.m) if a else np.zeros(0)
        out = {
            "available": self.available,
            "reason": self.reason,
            "policy": self.policy,
            "states": a,
            "state_index": list(self.index),
            "rollouts": self.rollouts,
            "rollouts_rule": self.rollouts_rule,
            "horizon": self.horizon,
            "delta": self.delta,
            "delta_per_state": _per_state(self.delta, a) if self.available else 0.0,
            "violations": _ints(b.k if a else None),
            "p_real": _floats(p_real),
            "upper": _floats(upper),
            "lower": _floats(lower),
            "override_rate": self.override_rate,
            "summary": {
                "p_real_mean": float(p_real.mean()) if a else None,
                "p_real_max": float(p_real.max()) if a else None,
                "upper_max": float(upper.max()) if a else None,
                "lower_max": float(lower.max()) if a else None,
                "states_upper_above_p": int((upper > p_max).sum()),
                "states_lower_above_p": int((lower > p_max).sum()),
            },
        }
        return out | ({"sequential": self.sequential} if self.sequential else {})


SEQUENCE_METHOD = "beta-binomial mixture confidence sequence (Jeffreys prior), two-sided"
SEQUENTIAL_RULE = (
    "each audited state's rollouts are drawn in looks; a state stops at the first look where the anytime-valid "
    "confidence sequence at its share of delta excludes p_max (decision pass: p <= p_max; fail: p > p_max); all "
    "stop at the first failing state, or undecided at max_rollouts. The bound stated is that sequence at the stop, "
    "valid at a data-dependent stopping time (Ville's inequality)"
)
DECISIONS = {CONTINUE: "undecided", SAFE: "pass", UNSAFE: "fail"}


# ------------------------------------------------------------------------------------- ledger and verdict


def delta_ledger(model: ModelLevel, real: RealLevel, audit: ShieldAudit, deployed: DeployedAudit) -> list[dict]:
    """Every bound the certificate states, with its count and δ each, read off the sections' records: their sum is
    the δ actually spent."""
    return [row.to_json() for section in (model, real, audit, deployed) for row in section.ledger()]


def _level(bound: Interval | None, p_max: float, decides_fail: bool) -> str:
    if bound is None:
        return "not-available"
    if decides_fail and np.max(bound.lower) > p_max:
        return "fail"
    return "pass" if np.max(bound.upper) <= p_max else "inconclusive"


def verdict(model: ModelLevel, deployed: DeployedAudit, confidence: float, need_rollouts) -> dict:
    """Pass / fail / inconclusive for the deployed agent from its audit's intervals, with the model level beside it.

    ``need_rollouts(delta_upper)`` gives the rollouts at which a state with no violation passes (for the
    inconclusive reason).
    """
    p_max, h = deployed.p_max, deployed.horizon
    model_level = _level(model.bound if model.available else None, p_max, decides_fail=False)
    real_level = _level(deployed.bound if deployed.available else None, p_max, decides_fail=True)
    if real_level == "not-available":
        return {
            "status": "inconclusive",
            "model_level": model_level,
            "real_level": real_level,
            "reason": f"no audit of the deployed agent ({deployed.reason}); a model-level result alone is not a "
            "real-world guarantee",
            "statement": "This certificate makes no claim about the deployed agent's probability of violating.",
            "confidence": confidence,
        }
    need = need_rollouts(deployed.delta_per_side) if real_level != "fail" else None
    above = int((np.atleast_1d(deployed.bound.lower) > p_max).sum())
    reason = {
        "pass": f"at every audited state the deployed agent's upper bound is <= {p_max:g}",
        "fail": f"at some audited state the deployed agent's lower bound is above {p_max:g}",
        "inconclusive": (
            f"some audited state's upper bound exceeds {p_max:g} and no lower bound does; more rollouts may "
            + (
                f"decide (the undecided states would pass at {need} rollouts if no further violation came; "
                "raise --max-rollouts)"
                if deployed.sequential
                else f"decide (a state passes only with upper <= {p_max:g}, which needs >= {need} rollouts at 0 "
                "violations)"
            )
        ),
    }[real_level]
    statement = (
        f"With confidence {confidence:.4g} (jointly with every other bound here), at each of the {deployed.states} "
        f"audited states (a uniform sample of states the deployed agent visited) the deployed agent violates within "
        f"{h} steps "
        + {
            "pass": f"with probability at most {p_max:g}.",
            "fail": f"with probability above {p_max:g} at {above} of them.",
            "inconclusive": f"with probability in the stated intervals, which do not decide p <= {p_max:g}.",
        }[real_level]
    )
    return {
        "status": real_level,
        "model_level": model_level,
        "real_level": real_level,
        "reason": reason,
        "statement": statement,
        "confidence": confidence,
    }


def from_certificate(doc: dict[str, Any]) -> tuple[ModelLevel, RealLevel, ShieldAudit, DeployedAudit]:
    """The four sections of a certificate with their records rebuilt from the counts it stores (the bounds are
    recomputed, so they equal the stated ones). The real level carries its bound but not its episodes."""
    spec, m, r, a, d = doc["spec"], doc["model"], doc["real"], doc["audit"], doc["deployed"]
    h, p_max = int(spec["horizon"]), float(spec["p_max"])
    method = m["estimator"]["name"]
    if m["available"]:
        model = ModelLevel.from_counts(m["violations"], m["samples"], m["delta"], method, h, p_max)
    else:
        model = ModelLevel(m["delta"], h, m["samples"], method, p_max, reason=m["reason"])
    n = r["episodes"]
    bound = intervals.interval(r["violating_episodes"], n, r["delta"], "clopper-pearson", "upper") if n else None
    real = RealLevel(r["delta"], bound, bench_metrics=r["bench_metrics"])
    rule = d["rollouts_rule"]
    if d["available"]:
        more = {"override_rate": d["override_rate"], "policy": d["policy"]}
        if d.get("sequential"):
            seq = d["sequential"]
            delta_state = _per_state(d["delta"], len(d["state_index"]))
            test = ThresholdTest(p_max, delta_state, seq["first_look"], seq["max_rollouts"], seq["growth"])
            deployed = DeployedAudit.from_sequence(
                d["violations"], seq["rollouts"], d["state_index"], test, d["delta"], h, **more
            )
        else:
            deployed = DeployedAudit.from_counts(
                d["violations"], d["state_index"], d["rollouts"], d["delta"], h, p_max, rule, **more
            )
    else:
        deployed = DeployedAudit(d["delta"], h, p_max, rule, reason=d["reason"])
    if a["available"]:
        k_real = np.rint(np.asarray(a["p_real"]) * a["rollouts"]).astype(int)
        k_model = np.rint(np.asarray(a["p_model"]) * m["samples"]).astype(int)
        audit = ShieldAudit.from_counts(
            k_real, k_model, m["samples"], a["state_index"], a["rollouts"], a["delta"], h, p_max
        )
    else:
        audit = ShieldAudit(a["delta"], h, p_max, reason=a["reason"])
    return model, real, audit, deployed
