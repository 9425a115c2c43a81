"""The run report: ``report.html`` (one self-contained file) and ``report.md`` from a run directory.

The comparison page over several runs (:mod:`.compare`) reuses this module's readers, plot helpers and template
environment, so one run reads the same in both.

The report reads only the run directory (``runs.RunDir``): the resolved config, ``metrics.jsonl`` and the
certificates. It renders whatever is there: a run without certificates still gets its training curves, a run
without metrics still gets its certificates. Plots are PNGs drawn with matplotlib's Agg canvas and embedded as
``data:`` URIs; the CSS is inline; the page needs no network and no JavaScript. The Markdown file carries the same
tables and text, without images.

Certificates are schema 2.0 (:mod:`.certify`). The report says which question each section answers, in this order:

- **deployed** (the verdict rests on it): is the agent a user deploys safe at the audited states? Its largest
  upper bound is the verdict's evidence and the verdict's ``statement`` is quoted verbatim;
- **real**: how often do whole i.i.d. evaluation episodes of the deployed agent violate?
- **audit** (shield accuracy): can the shield's estimate be trusted? The task policy's real probability against
  the learned model's estimate for it, at the audited states only;
- **model**: what the learned model predicts for the task policy, never presented as a real-world guarantee;
- the **δ ledger**: every bound of the certificate, which hold jointly with probability at least ``confidence``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..config import migrate
from ..runs import RunDir, write_text_atomic
from .certificate import CertificateError, certificate_paths, read_certificate

__all__ = ["ReportError", "render_report"]

# Training curves are smoothed over this many episodes at most (a trailing moving average).
MAX_WINDOW = 100


class ReportError(ValueError):
    """The report cannot be made (not a run directory, report dependencies missing); one line."""


# ------------------------------------------------------------------------------------------- formatting


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def fmt(x: Any, digits: int = 4) -> str:
    """A number for a table: ints as they are, floats to ``digits`` significant digits, else ``n/a``."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if _finite(x):
        text = f"{x:.{digits}g}"
        return "0" if text == "-0" else text
    return "n/a"


def _conf(delta: Any) -> str:
    return f"{100 * (1 - delta):.6g} %" if _finite(delta) else "n/a"


# ------------------------------------------------------------------------------------------- run data


def read_config(run: RunDir) -> dict[str, Any]:
    """The run's ``config.yaml`` as a dict, flat aliases moved into their blocks (a run from before the blocks reads
    like a new one); an unreadable or malformed file gives ``{}`` (the report says n/a)."""
    try:
        config = run.read_config()
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return migrate(config) if isinstance(config, dict) else {}


def _read_certificates(run: RunDir) -> tuple[list[dict[str, Any]], list[str]]:
    """The run's valid certificates ``[{"step", "doc"}]`` by step, and a one-line problem for each invalid one."""
    certs, problems = [], []
    for step, path in certificate_paths(run):
        try:
            doc = read_certificate(path)
        except CertificateError as exc:
            problems.append(str(exc))
            continue
        certs.append({"step": step, "doc": doc})
    return certs, problems


def _clean(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if _finite(v)]


def _pairs(episodes: Sequence[Mapping[str, Any]], key: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[key])) for r in episodes if _finite(r.get(key))]


def training_series(run: RunDir) -> dict[str, Any]:
    """Per-episode series from ``metrics.jsonl``.

    Parameters
    ----------
    run : RunDir
        The run whose ``metrics.jsonl`` is read (a missing file gives empty series).

    Returns
    -------
    dict
        ``episodes`` (count), ``return`` and ``violations`` (``[(step, value)]`` by step), ``labels`` (``{label:
        [(step, violations)]}``), ``cumulative`` (``[(step, violations so far)]``), the value lists
        ``episode/violations``, ``episode/override_rate``, ``episode/p_hat_mean``, and ``last_step`` (the last step
        of any record, or None).
    """
    records = list(run.iter_metrics())
    episodes = [r for r in records if "episode/return" in r and _finite(r.get("step"))]
    episodes.sort(key=lambda r: r["step"])  # stable: envs logging at the same step keep their file order
    out: dict[str, Any] = {"episodes": len(episodes), "labels": {}}
    out["return"] = _pairs(episodes, "episode/return")
    out["violations"] = _pairs(episodes, "episode/violations")
    labels = sorted({k.split("/", 2)[2] for r in episodes for k in r if k.startswith("episode/violations/")})
    for label in labels:
        out["labels"][label] = _pairs(episodes, f"episode/violations/{label}")
    cumulative = _pairs(episodes, "episode/total_violations")
    if not cumulative:  # older runs: add up the per-episode counts
        total = 0.0
        for step, value in out["violations"]:
            total += value
            cumulative.append((step, total))
    out["cumulative"] = cumulative
    for key in ("episode/violations", "episode/override_rate", "episode/p_hat_mean"):
        out[key] = _clean([r.get(key) for r in episodes])
    out["last_step"] = max((int(r["step"]) for r in records if _finite(r.get("step"))), default=None)
    return out


def _training_summary(series: Mapping[str, Any]) -> list[tuple[str, str]]:
    if not series["episodes"]:
        return []
    n = min(MAX_WINDOW, series["episodes"])

    def last_mean(values: Sequence[float]) -> str:
        tail = list(values)[-n:]
        return fmt(sum(tail) / len(tail)) if tail else "n/a"

    rows = [
        ("episodes logged", str(series["episodes"])),
        ("last logged step", fmt(series["last_step"])),
        (f"mean return, last {n} episodes", last_mean([v for _, v in series["return"]])),
        (f"mean violations per episode, last {n} episodes", last_mean(series["episode/violations"])),
        ("cumulative violations during training", fmt(series["cumulative"][-1][1]) if series["cumulative"] else "n/a"),
    ]
    for label, values in series["labels"].items():
        rows.append((f"violations labelled {label} (sum over logged episodes)", fmt(sum(v for _, v in values))))
    if series["episode/override_rate"]:
        rows.append((f"shield override rate, last {n} episodes", last_mean(series["episode/override_rate"])))
    if series["episode/p_hat_mean"]:
        rows.append((f"shield's mean p̂ (learned model), last {n} episodes", last_mean(series["episode/p_hat_mean"])))
    return rows


def _config_hash(run: RunDir, latest: Mapping[str, Any] | None) -> tuple[str, str]:
    if latest is not None:
        return latest["provenance"]["config_sha256"], "from the latest certificate"
    try:
        return hashlib.sha256(run.config_path.read_bytes()).hexdigest(), "sha256 of config.yaml"
    except OSError:
        return "n/a", "config.yaml unreadable"


# ---------------------------------------------------------------------------------------------- plots


def new_figure(width: float = 7.0, height: float = 3.6):
    """A matplotlib figure on the Agg canvas (no GUI backend, no global pyplot state), constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_uri(fig) -> str:
    """``fig`` as a ``data:image/png;base64,…`` URI (no timestamped metadata, so equal plots give equal bytes)."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` values (fewer at the start: the mean of what there is so far)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def smoothing_window(n: int) -> int:
    """The moving-average window for ``n`` episodes: a fifth of them, between 1 and :data:`MAX_WINDOW`."""
    return max(1, min(MAX_WINDOW, n // 5))


def plot_model_bounds(certs: Sequence[Mapping[str, Any]]) -> str | None:
    """(a) Model-level upper bound (max and mean over states) and mean p̂ across checkpoints, with the spec's p_max."""
    rows = [(c["step"], c["doc"]["model"]["summary"]) for c in certs if c["doc"]["model"]["available"]]
    rows = [(s, m) for s, m in rows if _finite(m["upper_max"])]
    if not rows:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    steps = [s for s, _ in rows]
    top = 0.0
    for key, label, style in (
        ("upper_max", "upper bound, max over states", "o-"),
        ("upper_mean", "upper bound, mean over states", "s--"),
        ("p_hat_mean", "p̂, mean over states", "^:"),
    ):
        points = [(s, m[key]) for s, m in rows if _finite(m[key])]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
            top = max(top, *(p[1] for p in points))
    p_max = certs[-1]["doc"]["spec"]["p_max"]
    ax.axhline(p_max, color="crimson", linewidth=1.2, label=f"spec p_max = {fmt(p_max)}")
    ax.set_xlabel("checkpoint step")
    ax.set_ylabel("P(violation within H) under the model")
    ax.set_ylim(0, min(1.02, 1.3 * max(top, p_max) + 0.01))
    if len(steps) == 1:
        ax.set_xlim(steps[0] - 1, steps[0] + 1)
    ax.set_title("Model level (learned model, visited states)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return png_uri(fig)


def plot_p_hat_histogram(cert: Mapping[str, Any]) -> str | None:
    """(b) Distribution over visited states of p̂ (and of the upper bound) at one checkpoint."""
    model = cert["doc"]["model"]
    if not model["available"] or not model["p_hat"]:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    p_max = cert["doc"]["spec"]["p_max"]
    right = min(1.0, 1.25 * max(*model["upper"], p_max) + 0.01)  # zoom in on small probabilities
    bins = [right * i / 40 for i in range(41)]
    ax.hist(model["p_hat"], bins=bins, alpha=0.7, label="p̂ (m latent traces)")
    ax.hist(model["upper"], bins=bins, histtype="step", linewidth=1.5, label="upper bound")
    ax.axvline(p_max, color="crimson", linewidth=1.2, label=f"spec p_max = {fmt(p_max)}")
    ax.set_xlim(0, right)
    ax.set_xlabel("P(violation within H) under the model")
    ax.set_ylabel("states")
    ax.set_title(f"Model level at step {cert['step']}: {model['states']} visited states")
    ax.legend(fontsize=8)
    return png_uri(fig)


def _decision(lower: float, upper: float, p_max: float) -> str:
    """How one audited state counts for the verdict: ``fails`` (lower > p_max), ``passes`` (upper <= p_max)."""
    if lower > p_max:
        return "fails"
    return "passes" if upper <= p_max else "undecided"


def plot_deployed(cert: Mapping[str, Any]) -> str | None:
    """(c) The deployed agent at each audited state: p_real with its [lower, upper] interval, against p_max."""
    dep = cert["doc"]["deployed"]
    if not dep["available"] or not dep["p_real"]:
        return None
    p_max = cert["doc"]["spec"]["p_max"]
    fig = new_figure(9.0, 3.8)
    ax = fig.add_subplot()
    groups = {
        "passes": ("passes: upper ≤ p_max", "C2", "o"),
        "undecided": ("undecided: straddles p_max", "C1", "s"),
        "fails": ("fails: lower > p_max", "crimson", "D"),
    }
    decided = [_decision(lo, up, p_max) for lo, up in zip(dep["lower"], dep["upper"], strict=True)]
    for name, (label, colour, marker) in groups.items():
        at = [i for i, d in enumerate(decided) if d == name]
        if not at:
            continue
        ax.errorbar(
            at,
            [dep["p_real"][i] for i in at],
            yerr=[
                [max(0.0, dep["p_real"][i] - dep["lower"][i]) for i in at],
                [max(0.0, dep["upper"][i] - dep["p_real"][i]) for i in at],
            ],
            fmt=marker,
            color=colour,
            markersize=4,
            capsize=3,
            elinewidth=1,
            label=label,
        )
    ax.axhline(p_max, color="crimson", linewidth=1.2, linestyle="--", label=f"spec p_max = {fmt(p_max)}")
    ax.plot([], [], " ", label="bar: [lower, upper]; dot: observed p_real")
    n = len(dep["p_real"])
    if n <= 32:
        ax.set_xticks(range(n), [str(i) for i in dep["state_index"]], fontsize=7 if n > 16 else 8)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(0, min(1.02, 1.3 * max(*dep["upper"], p_max) + 0.01))
    ax.set_xlabel("audited state (index into the sample of visited states)")
    ax.set_ylabel(f"P(violation within {dep['horizon']} steps)")
    ax.set_title(f"Deployed agent at step {cert['step']}: {n} audited states, {_rollouts_each(dep)} real rollouts each")
    fig.legend(fontsize=8, loc="outside lower center", ncol=3)
    ax.grid(alpha=0.3, axis="y")
    return png_uri(fig)


def plot_audit(cert: Mapping[str, Any]) -> str | None:
    """(d) Shield-accuracy audit: the model's p_model for the task policy against its p_real, with error bars."""
    audit = cert["doc"]["audit"]
    if not audit["available"] or not audit["p_model"]:
        return None
    fig = new_figure(5.2, 4.6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="gray", linewidth=1, label="p_real = p_model")
    ax.errorbar(
        audit["p_model"],
        audit["p_real"],
        yerr=[min(e, 1.0) for e in audit["error_upper"]],
        fmt="o",
        markersize=4,
        capsize=2,
        elinewidth=0.8,
        label="audited state (bar: error bound)",
    )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("p_model (learned model's estimate)")
    ax.set_ylabel("p_real (real rollouts)")
    ax.set_title(f"Shield accuracy at step {cert['step']}:\ntask policy alone, {audit['states']} audited states")
    ax.legend(fontsize=8, loc="upper left")
    return png_uri(fig)


def plot_violations(series: Mapping[str, Any]) -> str | None:
    """(e) Violations per episode by label (moving average) and cumulative violations over training."""
    if not series["labels"] and not series["cumulative"]:
        return None
    fig = new_figure(9.0, 3.6)
    left, right = fig.subplots(1, 2)
    for label, points in series["labels"].items():
        if points:
            values = [v for _, v in points]
            left.plot([s for s, _ in points], moving_average(values, smoothing_window(len(values))), label=label)
    if not series["labels"]:
        left.text(0.5, 0.5, "no per-label counts logged", ha="center", va="center", transform=left.transAxes)
    else:
        left.legend(fontsize=8, title="label", title_fontsize=8)
    left.set_xlabel("agent step")
    left.set_ylabel("violations per episode (moving avg.)")
    left.set_title("Violations per label")
    left.grid(alpha=0.3)
    if series["cumulative"]:
        right.plot([s for s, _ in series["cumulative"]], [v for _, v in series["cumulative"]], color="crimson")
    right.set_xlabel("agent step")
    right.set_ylabel("violations")
    right.set_title("Cumulative violations during training")
    right.grid(alpha=0.3)
    return png_uri(fig)


def plot_returns(series: Mapping[str, Any]) -> str | None:
    """(f) Episode return over training: each episode and a trailing moving average."""
    points = series["return"]
    if not points:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    steps, values = [s for s, _ in points], [v for _, v in points]
    window = smoothing_window(len(values))
    ax.scatter(steps, values, s=6, alpha=0.3, label="episode")
    ax.plot(steps, moving_average(values, window), color="C1", label=f"moving average ({window} episodes)")
    ax.set_xlabel("agent step")
    ax.set_ylabel("episode return")
    ax.set_title("Episode return during training")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return png_uri(fig)


# -------------------------------------------------------------------------------------------- context


def _range(values: Sequence[Any]) -> str:
    values = _clean(values)
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    return fmt(low) if low == high else f"{fmt(low)} – {fmt(high)}"


def _deployed_ok(doc: Mapping[str, Any]) -> bool:
    return bool(doc["deployed"]["available"] and doc["deployed"]["states"])


def agent_name(doc: Mapping[str, Any]) -> str:
    """Which agent a certificate is about: the run's agent and, where audited, the policy the deployed audit ran."""
    agent, policy = doc["provenance"]["agent"], doc["deployed"]["policy"]
    return f"{agent}: {policy}" if policy else agent


def verdict_row(cert: Mapping[str, Any]) -> dict[str, str]:
    """One certificate (``{"step", "doc"}``) as the verdict table's formatted cells (status, bounds, counts, reason)."""
    doc = cert["doc"]
    model, real, audit, dep, verdict = doc["model"], doc["real"], doc["audit"], doc["deployed"], doc["verdict"]
    if real["episodes"]:
        real_text, real_count = fmt(real["upper"]), f"{real['violating_episodes']}/{real['episodes']} episodes"
    else:
        real_text, real_count = "n/a", "0 episodes"
    ok = _deployed_ok(doc)
    return {
        "step": str(cert["step"]),
        "spec": doc["spec"]["text"],
        "status": verdict["status"],
        "model_level": verdict["model_level"],
        "real_level": verdict["real_level"],
        "deployed_upper_max": fmt(dep["summary"]["upper_max"]) if ok else "n/a",
        "deployed_lower_max": fmt(dep["summary"]["lower_max"]) if ok else "n/a",
        "deployed_p_real": _range(dep["p_real"]) if ok else "n/a",
        "deployed_size": f"{dep['states']} states × {_rollouts_each(dep)} rollouts" if ok else "not audited",
        "model_upper_max": fmt(model["summary"]["upper_max"]) if model["available"] else "n/a",
        "real_upper": real_text,
        "real_count": real_count,
        "audit_error_max": fmt(audit["summary"]["error_upper_max"]) if audit["available"] else "n/a",
        "confidence": fmt(verdict["confidence"], 6),
        "delta_total": fmt(doc["delta"]["total"]),
        "reason": verdict["reason"],
    }


# What each entry of the δ ledger bounds, in words (an unknown name is shown as it is).
LEDGER_WORDS = {
    "model.upper": "model level: upper bound on the task policy's P(violation) under the learned model, per state",
    "real.upper": "real episodes: upper bound on the per-episode violation probability of the deployed agent",
    "audit.real_upper": "shield accuracy: upper bound on the task policy's real P(violation), per audited state",
    "audit.error_upper": "shield accuracy: bound on |p_real − p_model| for the task policy, per audited state",
    "deployed.upper": "deployed agent: upper bound on its real P(violation), per audited state (the verdict)",
    "deployed.lower": "deployed agent: lower bound on its real P(violation), per audited state (the verdict)",
    "deployed.sequence": "deployed agent: confidence sequence on its real P(violation), per audited state (verdict)",
}


def _ledger(delta: Mapping[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "bound": row["bound"],
            "what": LEDGER_WORDS.get(row["bound"], ""),
            "count": str(row["count"]),
            "each": fmt(row["delta_each"]),
            "total": fmt(row["count"] * row["delta_each"]),
        }
        for row in delta["ledger"]
    ]
    return {"rows": rows, "bounds": sum(row["count"] for row in delta["ledger"]), "spent": fmt(delta["spent"])}


def _rollouts_at(dep: Mapping[str, Any], i: int) -> int:
    """Rollouts drawn at audited state ``i`` (they vary with ``--sequential``)."""
    return dep["sequential"]["rollouts"][i] if dep.get("sequential") else dep["rollouts"]


def _rollouts_each(dep: Mapping[str, Any]) -> str:
    if not dep.get("sequential"):
        return str(dep["rollouts"])
    n = dep["sequential"]["rollouts"]
    return f"{min(n)}–{max(n)} (sequential)" if min(n) != max(n) else f"{n[0]} (sequential)"


def _per_state(doc: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per audited state: the deployed agent's counts and interval, and the task policy's audit beside it."""
    dep, audit, p_max = doc["deployed"], doc["audit"], doc["spec"]["p_max"]
    if not _deployed_ok(doc):
        return []
    task = {}
    if audit["available"]:
        for i, index in enumerate(audit["state_index"]):
            task[index] = (audit["p_real"][i], audit["p_model"][i], audit["error_upper"][i])
    rows = []
    for i, index in enumerate(dep["state_index"]):
        p_task, p_model, error = task.get(index, (None, None, None))
        decision = _decision(dep["lower"][i], dep["upper"][i], p_max)
        rows.append(
            {
                "state": str(index),
                "k": f"{dep['violations'][i]}/{_rollouts_at(dep, i)}",
                "p_real": fmt(dep["p_real"][i]),
                "interval": f"[{fmt(dep['lower'][i])}, {fmt(dep['upper'][i])}]",
                "decision": decision,
                "css": {"passes": "pass", "fails": "fail"}.get(decision, "inconclusive"),
                "task_p_real": fmt(p_task),
                "task_p_model": fmt(p_model),
                "task_error": fmt(error),
            }
        )
    return rows


def _row(key: str, value: str, kind: str = "num") -> tuple[str, str, str]:
    return key, value, kind


def _provenance_rows(doc: Mapping[str, Any]) -> list:
    """(name, value) rows of where a certificate comes from."""
    prov = doc["provenance"]
    provenance = [
        ("agent", prov["agent"]),
        ("task", prov["task"]),
        ("checkpoint step", str(prov["checkpoint_step"])),
        ("checkpoint manifest sha256", prov["checkpoint_manifest_sha256"]),
        ("config sha256", prov["config_sha256"]),
        ("seed", str(prov["seed"])),
        ("ambs-verify version", prov["package_version"]),
        ("platform", prov["platform"]),
        ("created (UTC)", doc["created_utc"]),
    ] + [(f"{name} version", version) for name, version in sorted(prov["versions"].items())]
    return provenance


def _deployed_rows(dep: Mapping[str, Any], p_max: str) -> list:
    dsum = dep["summary"]
    deployed_rows = [
        _row("audited states (uniform sample of visited states)", str(dep["states"])),
        _row("real rollouts per state, each H steps", f"{_rollouts_each(dep)} × {dep['horizon']} steps"),
        _row(
            "δ for this section / per state" + (" (one sequence)" if dep.get("sequential") else " (half per bound)"),
            f"{fmt(dep['delta'])} / {fmt(dep['delta_per_state'])}",
        ),
        _row("p_real (observed) mean / max over states", f"{fmt(dsum['p_real_mean'])} / {fmt(dsum['p_real_max'])}"),
        _row("upper bound, max over states (the verdict's evidence)", fmt(dsum["upper_max"])),
        _row("lower bound, max over states", fmt(dsum["lower_max"])),
        _row(f"states with upper bound above p_max = {p_max}", str(dsum["states_upper_above_p"])),
        _row(f"states with lower bound above p_max = {p_max}", str(dsum["states_lower_above_p"])),
        _row("shield override rate during these rollouts", fmt(dep["override_rate"])),
    ]
    return deployed_rows


def _real_rows(real: Mapping[str, Any]) -> list:
    ret = real["return"]
    real_rows = [
        _row("evaluation episodes (n)", str(real["episodes"])),
        _row("episodes with a violation (k)", str(real["violating_episodes"])),
        _row("p̂ = k / n", fmt(real["p_hat"])),
        _row(f"Clopper-Pearson upper bound at {_conf(real['delta'])} on its own", fmt(real["upper"])),
        _row("violations, total", str(real["violations_total"])),
    ]
    real_rows += [_row(f"violations labelled {k}", str(v)) for k, v in sorted(real["violations_per_label"].items())]
    real_rows += [
        _row(
            "return mean ± std [min, max]",
            f"{fmt(ret['mean'])} ± {fmt(ret['std'])} [{fmt(ret['min'])}, {fmt(ret['max'])}]",
        ),
        _row("episode length, mean", fmt(real["length_mean"])),
        _row("shield override rate", fmt(real["override_rate"])),
    ]
    real_rows += [_row(f"benchmark: {k}", fmt(v)) for k, v in sorted((real["bench_metrics"] or {}).items())]
    return real_rows


def _audit_rows(audit: Mapping[str, Any], p_max: str) -> list:
    asum = audit["summary"]
    audit_rows = [
        _row("audited states (the same as the deployed agent's)", str(audit["states"])),
        _row("real rollouts of the task policy per state", str(audit["rollouts"])),
        _row("horizon H", str(audit["horizon"])),
        _row(
            "δ for the audit / per state (half per bound)", f"{fmt(audit['delta'])} / {fmt(audit['delta_per_state'])}"
        ),
        _row("bound on |p_real − p_model|, max over states", fmt(asum["error_upper_max"])),
        _row("mean |p_real − p_model| (observed)", fmt(asum["abs_diff_mean"])),
        _row("task policy's real upper bound, max over states", fmt(asum["real_upper_max"])),
        _row(
            f"states with task policy's real upper bound above p_max = {p_max}", str(asum["states_real_upper_above_p"])
        ),
    ]
    return audit_rows


def _model_rows(model: Mapping[str, Any], p_max: str) -> list:
    ms = model["summary"]
    estimator = f"{model['estimator']['name']} ({'sound' if model['estimator']['sound'] else 'NOT sound'})"
    model_rows = [
        _row("estimator", estimator),
        _row("visited states", str(model["states"])),
        _row("latent traces per state (m)", str(model["samples"])),
        _row("horizon H", str(model["horizon"])),
        _row("δ for the model level / per state", f"{fmt(model['delta'])} / {fmt(model['delta_per_state'])}"),
        _row("p̂ mean / max over states", f"{fmt(ms['p_hat_mean'])} / {fmt(ms['p_hat_max'])}"),
        _row("upper bound mean / max over states", f"{fmt(ms['upper_mean'])} / {fmt(ms['upper_max'])}"),
        _row(f"states with upper bound above p_max = {p_max}", str(ms["states_upper_above_p"])),
    ]
    return model_rows


def _quoted(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers the "What is certified" text quotes."""
    real, model, audit, dep = doc["real"], doc["model"], doc["audit"], doc["deployed"]
    ms, asum, dsum = model["summary"], audit["summary"], dep["summary"]
    return {
        "dep_states": dep["states"],
        "dep_rollouts": _rollouts_each(dep),
        "dep_rule": dep["rollouts_rule"],
        "dep_interval": (
            "the beta-binomial mixture confidence sequence's interval [lower, upper] at the rollouts where it stopped, "
            "valid at that data-dependent number, at the state's whole δ"
            if dep.get("sequential")
            else "a two-sided Clopper-Pearson interval [lower, upper], half of the state's δ on each side"
        ),
        "dep_h": dep["horizon"],
        "dep_delta_per_state": fmt(dep["delta_per_state"]),
        "dep_p_range": _range(dep["p_real"]),
        "dep_upper_max": fmt(dsum["upper_max"]),
        "dep_lower_max": fmt(dsum["lower_max"]),
        "dep_upper_above": dsum["states_upper_above_p"],
        "dep_lower_above": dsum["states_lower_above_p"],
        "n": real["episodes"],
        "k": real["violating_episodes"],
        "real_upper": fmt(real["upper"]),
        "real_conf": _conf(real["delta"]),
        "model_states": model["states"],
        "model_m": model["samples"],
        "model_h": model["horizon"],
        "model_upper_max": fmt(ms["upper_max"]),
        "model_conf": _conf(model["delta"]),
        "model_delta_per_state": fmt(model["delta_per_state"]),
        "model_estimator": model["estimator"]["name"],
        "model_sound": model["estimator"]["sound"],
        "audit_states": audit["states"],
        "audit_rollouts": audit["rollouts"],
        "audit_h": audit["horizon"],
        "audit_error_max": fmt(asum["error_upper_max"]),
        "audit_real_upper_max": fmt(asum["real_upper_max"]),
        "audit_conf": _conf(audit["delta"]),
    }


def _details(cert: Mapping[str, Any]) -> dict[str, Any]:
    doc = cert["doc"]
    spec, model, real, audit, dep = doc["spec"], doc["model"], doc["real"], doc["audit"], doc["deployed"]
    delta, verdict, prov = doc["delta"], doc["verdict"], doc["provenance"]
    p_max = fmt(spec["p_max"])
    provenance = _provenance_rows(doc)
    deployed_rows = _deployed_rows(dep, p_max)
    real_rows = _real_rows(real)
    audit_rows = _audit_rows(audit, p_max)
    model_rows = _model_rows(model, p_max)
    shares = ", ".join(f"{name} {fmt(delta[name])}" for name in ("deployed", "real", "audit", "model"))
    return {
        "step": cert["step"],
        "spec": spec,
        "p_max": p_max,
        "agent": prov["agent"],
        "agent_name": agent_name(doc),
        "task": prov["task"],
        "delta": {k: fmt(delta[k]) for k in ("total", "model", "real", "audit", "deployed")},
        "delta_method": delta["method"],
        "shares": shares,
        "confidence": fmt(verdict["confidence"], 6),
        "confidence_pct": _conf(delta["total"]),
        "ledger": _ledger(delta),
        "provenance": provenance,
        "verdict": verdict_row(cert),
        "statement": verdict["statement"],
        "deployed_available": _deployed_ok(doc),
        "deployed_reason": dep["reason"] or "no audited states",
        "deployed_policy": dep["policy"] or "",
        "deployed_rows": deployed_rows,
        "per_state": _per_state(doc),
        "real_rows": real_rows,
        "audit_available": audit["available"],
        "audit_reason": audit["reason"] or "",
        "audit_policy": audit["policy"] or "",
        "audit_rows": audit_rows,
        "model_available": model["available"],
        "model_reason": model["reason"] or "",
        "model_policy": model["policy"] or "",
        "model_event": model["event"],
        "model_rows": model_rows,
        **_quoted(doc),
    }


# The question each part of a certificate answers (shown with and without a certificate).
QUESTIONS = {
    "deployed": "Is the agent a user deploys (task policy + shield + safe policy) safe, at the audited states?",
    "real": "How often do whole evaluation episodes of the deployed agent violate?",
    "audit": "Can the shield's estimate be trusted? (the task policy's real probability against the model's estimate)",
    "model": "What does the learned model predict for the task policy? (a statement about the model, not the world)",
    "ledger": "How sure is all of this together?",
    "not": "What does this report not claim?",
}


def _block(key: str, title: str, paragraphs: Sequence[str], quote: str | None = None, ledger=None) -> dict[str, Any]:
    return {
        "id": key,
        "title": title,
        "question": QUESTIONS[key],
        "quote": quote,
        "paragraphs": list(paragraphs),
        "ledger": ledger,
    }


# The "What is certified" parts before any certificate exists.
UNCERTIFIED = [
    _block(
        "deployed",
        "1. The deployed agent (the verdict rests on this)",
        [
            "At a uniform sample of states the deployed agent visited (the audited states), the whole agent "
            "is restored and rolled out for real; a two-sided Clopper-Pearson interval per state decides "
            "pass (every upper bound ≤ p_max), fail (some lower bound > p_max) or inconclusive."
        ],
    ),
    _block(
        "real",
        "2. Real evaluation episodes",
        [
            "About the real environment, assuming i.i.d. evaluation episodes: a Clopper-Pearson upper bound "
            "on the per-episode violation probability of the deployed agent."
        ],
    ),
    _block(
        "audit",
        "3. Shield accuracy (audit)",
        [
            "Where the simulator can restore a state, the task policy alone is rolled out for real from the "
            "audited states and compared with the learned model's estimate for it, there and only there."
        ],
    ),
    _block(
        "model",
        "4. Model level (the learned model only)",
        [
            "At states visited by the deployed agent, an upper bound on the probability that the task "
            "policy violates within H steps under the learned model, from m latent traces per state. It is "
            "not a statement about the real environment."
        ],
    ),
    _block(
        "not",
        "Not certified",
        [
            "Nothing is certified before `ambs-verify certify` has written a certificate; the training "
            "curves below are descriptive."
        ],
    ),
]


def _certified(latest: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The "What is certified" parts, deployed agent first, with the latest certificate's numbers where there is one."""
    if latest is None:
        return [dict(part) for part in UNCERTIFIED]
    d = latest
    out = [
        _block("deployed", "1. The deployed agent (the verdict rests on this)", _deployed_text(d), d["statement"]),
        _block("real", "2. Real evaluation episodes", [_real_text(d)]),
        _block("audit", "3. Shield accuracy (audit of the learned model)", [_audit_text(d)]),
        _block("model", "4. Model level (the learned model only)", _model_text(d)),
    ]
    ledger = d["ledger"]
    text = (
        f"All {ledger['bounds']} bounds of this certificate (the parts above, listed below) hold jointly with "
        f"probability ≥ {d['confidence']} "
        f"(= 1 − δ, δ = {d['delta']['total']}; spent {ledger['spent']}). Shares of δ: {d['shares']}. "
        f"Method: {d['delta_method']}."
    )
    out.append(_block("ledger", "δ ledger: every bound in this certificate", [text], ledger=ledger))
    text = (
        "States that were not audited, other checkpoints than the certified one, other tasks or environment "
        "settings, the learned model's predictions taken as facts about the world, and the training curves in "
        "this report, which are descriptive."
    )
    out.append(_block("not", "Not certified", [text]))
    return out


def _deployed_text(d: Mapping[str, Any]) -> list[str]:
    p_max, step = d["p_max"], d["step"]
    if d["deployed_available"]:
        paragraphs = [
            f"Which agent: {d['agent']} at checkpoint step {step} of task {d['task']}, run as a user deploys it "
            f"({d['deployed_policy']}).",
            f"How: {d['dep_states']} audited states were drawn uniformly from the states this agent visited in its "
            f"evaluation episodes. At each one the simulator and the agent's memory were restored and the agent was "
            f"run for real {d['dep_rollouts']} times for {d['dep_h']} steps (rollouts: {d['dep_rule']}). Each state "
            f"gets {d['dep_interval']} ({d['dep_delta_per_state']}), on its probability of violating within "
            f"{d['dep_h']} steps.",
            f"Result: the observed p_real ranges over {d['dep_p_range']}; the largest upper bound is "
            f"{d['dep_upper_max']} and the largest lower bound {d['dep_lower_max']}, against p_max = {p_max} "
            f"({d['dep_upper_above']} states with upper bound above p_max, {d['dep_lower_above']} with lower bound "
            f"above it). The rule: pass when every upper bound is ≤ p_max, fail when some lower bound is > p_max, "
            f"inconclusive otherwise. Verdict: {d['verdict']['status']}, because {d['verdict']['reason']}.",
            "Scope: the bounds hold at the audited states, each for a fresh H-step run from that state; they are not "
            "a bound over every state the agent may reach. Whole episodes are the next part.",
        ]
    else:
        paragraphs = [
            f"Which agent: {d['agent']} at checkpoint step {step} of task {d['task']}.",
            f"Not audited: {d['deployed_reason']}. The certificate therefore makes no claim about the deployed "
            f"agent's probability of violating, and the verdict is {d['verdict']['status']}, because "
            f"{d['verdict']['reason']}.",
        ]
    return paragraphs


def _real_text(d: Mapping[str, Any]) -> str:
    if d["n"]:
        text = (
            f"{d['k']} of {d['n']} evaluation episodes of the deployed agent had at least one violation. If the "
            "episodes are independent and identically distributed (i.i.d.), the probability that an episode has a "
            f"violation is at most {d['real_upper']} at confidence {d['real_conf']} on its own (Clopper-Pearson; "
            "jointly with the other bounds, see the δ ledger). This is a "
            "per-episode probability for this agent, task and episode distribution; it says nothing about other "
            "conditions, and the verdict does not use it."
        )
    else:
        text = "No evaluation episodes were run, so nothing is certified about whole episodes."
    return text


def _audit_text(d: Mapping[str, Any]) -> str:
    if d["audit_available"]:
        text = (
            "The shield decides with the learned model's estimate of how likely the task policy is to violate. At "
            f"the same {d['audit_states']} audited states, the {d['audit_policy']} was rolled out for real "
            f"{d['audit_rollouts']} times for {d['audit_h']} steps and compared with the model's estimate p_model "
            f"for it: |p_real − p_model| is at most {d['audit_error_max']} at every audited state, and the task "
            f"policy's real probability of violating within {d['audit_h']} steps is at most "
            f"{d['audit_real_upper_max']} there, at confidence {d['audit_conf']} for this part on its own. This is "
            "the model-error term of "
            "AMBS Theorem 2, measured at these states. Nothing is measured at states that were not audited, and "
            "these numbers are about the task policy, not the deployed agent."
        )
    else:
        text = (
            f"Not available: {d['audit_reason']}. The model's error is therefore not measured, and the shield's "
            "estimates are unchecked."
        )
    return text


def _model_text(d: Mapping[str, Any]) -> list[str]:
    step = d["step"]
    if d["model_available"]:
        sound = "a sound bound" if d["model_sound"] else "NOT a sound bound (approximate coverage only)"
        paragraphs = [
            f"Policy: {d['model_policy']}. At each of {d['model_states']} states sampled from those the deployed "
            "agent visited, "
            f"the probability of the violation event below within {d['model_h']} imagined steps, computed in the "
            f"learned world model from {d['model_m']} latent traces per state, is at most {d['model_upper_max']} "
            f"(the largest upper bound over the states), at confidence {d['model_conf']} for this part on its own, "
            f"by a union bound over the states (δ per "
            f"state {d['model_delta_per_state']}; estimator {d['model_estimator']}, {sound}).",
            f"The event: {d['model_event']}.",
            "If the learned model is wrong, so may be these probabilities: this is not a real-world guarantee.",
        ]
    else:
        paragraphs = [f"Not available at step {step}: {d['model_reason']}"]
    return paragraphs


def _plots(certs: list[dict[str, Any]], series) -> list[tuple[str, str, str | None, str]]:
    """(id, title, image or None, caption) of the report's plots."""
    # The histogram and the audit plot use the newest certificate that has the data.
    with_model = [c for c in certs if c["doc"]["model"]["available"] and c["doc"]["model"]["p_hat"]]
    with_audit = [c for c in certs if c["doc"]["audit"]["available"] and c["doc"]["audit"]["p_model"]]
    with_deployed = [c for c in certs if c["doc"]["deployed"]["available"] and c["doc"]["deployed"]["p_real"]]
    return [
        (
            "deployed",
            "Deployed agent at each audited state (the verdict's evidence)",
            plot_deployed(with_deployed[-1]) if with_deployed else None,
            "Each point is an audited state: the deployed agent's observed violation frequency over its real "
            "rollouts, with the two-sided Clopper-Pearson interval [lower, upper]. The verdict passes when every "
            "upper end is at or below the dashed p_max line, and fails when some lower end is above it.",
        ),
        (
            "model-bounds",
            "Model level across checkpoints (learned model only)",
            plot_model_bounds(certs) if certs else None,
            "About the learned model only, for the task policy: the upper bound holds at visited states, "
            "simultaneously, at the confidence shown in each certificate. Not a real-world probability.",
        ),
        (
            "p-hat-histogram",
            "Model level: p̂ over visited states (learned model only)",
            plot_p_hat_histogram(with_model[-1]) if with_model else None,
            "Distribution over visited states of the estimated violation probability under the learned model.",
        ),
        (
            "audit",
            "Shield accuracy: the model's estimate against real rollouts",
            plot_audit(with_audit[-1]) if with_audit else None,
            "Each point is an audited state: the learned model's estimate for the task policy (which the shield "
            "uses) against the task policy's real rollouts from a restored simulator snapshot; the bar is the bound "
            "on |p_real − p_model| at that state. Points near the diagonal mean the shield's estimates can be "
            "trusted there.",
        ),
        (
            "violations",
            "Violations during training",
            plot_violations(series),
            "Descriptive training statistics from metrics.jsonl; not certified.",
        ),
        (
            "returns",
            "Episode return during training",
            plot_returns(series),
            "Descriptive training statistics from metrics.jsonl; not certified.",
        ),
    ]


def _context(run: RunDir) -> dict[str, Any]:
    config = read_config(run)
    certs, problems = _read_certificates(run)
    latest = certs[-1] if certs else None
    latest_doc = latest["doc"] if latest else None
    details = _details(latest) if latest else None
    series = training_series(run)
    config_hash, config_hash_note = _config_hash(run, latest_doc)
    prov = latest_doc["provenance"] if latest_doc else {}
    header = [
        ("run", run.path.name),
        ("run directory", str(run.path)),
        ("task", str(prov.get("task") or config.get("task", "n/a"))),
        ("agent", str(prov.get("agent") or config.get("agent", "n/a"))),
        ("certified agent (latest certificate)", agent_name(latest_doc) if latest_doc else "none yet"),
        ("seed", str(prov.get("seed", config.get("seed", "n/a")))),
        (f"config sha256 ({config_hash_note})", config_hash),
        ("checkpoints on disk", ", ".join(map(str, run.checkpoint_steps())) or "none"),
        ("certificates", ", ".join(str(c["step"]) for c in certs) or "none"),
        ("report generated (UTC)", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("ambs-verify version", __version__),
    ]
    plots = _plots(certs, series)
    return {
        "run_name": run.path.name,
        "run_path": str(run.path),
        "header": header,
        "certificates": [verdict_row(c) for c in certs],
        "problems": problems,
        "latest": details,
        "plots": [{"id": i, "title": t, "src": src, "caption": cap} for i, t, src, cap in plots if src],
        "missing_plots": [t for _, t, src, _ in plots if not src],
        "metrics_present": run.metrics_path.is_file(),
        "training": _training_summary(series),
        "certified": _certified(details),
    }


# ------------------------------------------------------------------------------------------- render


def template_environment():
    """The jinja2 environment of the report templates (HTML autoescaped, an ``md`` filter for table cells).

    Raises
    ------
    ReportError
        matplotlib or jinja2 is not installed.
    """
    try:
        import jinja2
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ReportError(
            f"the report needs matplotlib and jinja2 ({exc.name} is missing): pip install 'ambs-verify[report]'"
        ) from None

    def md(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ambs_verify.reports", "templates"),
        # The HTML template is report.html.j2: escape by its full suffix (a plain "html" would never match).
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md"] = md
    return env


def render_report(run_dir: str | os.PathLike | RunDir) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into the run directory and return their paths.

    Raises
    ------
    ReportError
        ``run_dir`` is not a run directory (no ``config.yaml``), or matplotlib/jinja2 are not installed.
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if not run.exists():
        raise ReportError(f"{run.path} is not a run directory (no config.yaml); pass the --logdir of a training run")
    env = template_environment()
    context = _context(run)
    html = env.get_template("report.html.j2").render(**context)
    markdown = env.get_template("report.md.j2").render(**context)
    write_text_atomic(run.report_html, html)
    write_text_atomic(run.report_md, markdown)
    return run.report_html, run.report_md
