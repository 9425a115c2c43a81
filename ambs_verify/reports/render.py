"""The run report: ``report.html`` (one self-contained file) and ``report.md`` from a run directory.

The report reads only the run directory (``runs.RunDir``): the resolved config, ``metrics.jsonl`` and the
certificates. It renders whatever is there: a run without certificates still gets its training curves, a run
without metrics still gets its certificates. Plots are PNGs drawn with matplotlib's Agg canvas and embedded as
``data:`` URIs; the CSS is inline; the page needs no network and no JavaScript. The Markdown file carries the same
tables and text, without images.

Wording follows DESIGN.md §5: a model-level number is about the learned model and is never presented as a
real-world guarantee; the real level is about i.i.d. evaluation episodes; the audit holds at audited states only.
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


def _read_certificates(run: RunDir) -> tuple[list[dict[str, Any]], list[str]]:
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


def _training_series(run: RunDir) -> dict[str, Any]:
    """Per-episode series from ``metrics.jsonl``: return, violations per label, cumulative violations, …"""
    records = list(run.iter_metrics())
    episodes = [r for r in records if "episode/return" in r and _finite(r.get("step"))]
    episodes.sort(key=lambda r: r["step"])  # stable: envs logging at the same step keep their file order
    out: dict[str, Any] = {"episodes": len(episodes), "labels": {}}
    out["return"] = [(int(r["step"]), float(r["episode/return"])) for r in episodes if _finite(r["episode/return"])]
    labels = sorted({k.split("/", 2)[2] for r in episodes for k in r if k.startswith("episode/violations/")})
    for label in labels:
        key = f"episode/violations/{label}"
        out["labels"][label] = [(int(r["step"]), float(r[key])) for r in episodes if _finite(r.get(key))]
    cumulative = [
        (int(r["step"]), float(r["episode/total_violations"]))
        for r in episodes
        if _finite(r.get("episode/total_violations"))
    ]
    if not cumulative:  # older runs: add up the per-episode counts
        total = 0.0
        for r in episodes:
            if _finite(r.get("episode/violations")):
                total += float(r["episode/violations"])
                cumulative.append((int(r["step"]), total))
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


def _figure(width: float = 7.0, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> str:
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _window(n: int) -> int:
    return max(1, min(MAX_WINDOW, n // 5))


def plot_model_bounds(certs: Sequence[Mapping[str, Any]]) -> str | None:
    """(a) Model-level upper bound (max and mean over states) and mean p̂ across checkpoints, with the spec's p_max."""
    rows = [(c["step"], c["doc"]["model"]["summary"]) for c in certs if c["doc"]["model"]["available"]]
    rows = [(s, m) for s, m in rows if _finite(m["upper_max"])]
    if not rows:
        return None
    fig = _figure()
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
    return _png(fig)


def plot_p_hat_histogram(cert: Mapping[str, Any]) -> str | None:
    """(b) Distribution over visited states of p̂ (and of the upper bound) at one checkpoint."""
    model = cert["doc"]["model"]
    if not model["available"] or not model["p_hat"]:
        return None
    fig = _figure()
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
    return _png(fig)


def plot_audit(cert: Mapping[str, Any]) -> str | None:
    """(c) Audited states: p_model against p_real, the diagonal, and error bars of half-width error_upper."""
    audit = cert["doc"]["audit"]
    if not audit["available"] or not audit["p_model"]:
        return None
    fig = _figure(5.2, 4.6)
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
    ax.set_xlabel("p_model (learned model)")
    ax.set_ylabel("p_real (real rollouts)")
    ax.set_title(f"Audit at step {cert['step']}: {audit['states']} states")
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def plot_violations(series: Mapping[str, Any]) -> str | None:
    """(d) Violations per episode by label (moving average) and cumulative violations over training."""
    if not series["labels"] and not series["cumulative"]:
        return None
    fig = _figure(9.0, 3.6)
    left, right = fig.subplots(1, 2)
    for label, points in series["labels"].items():
        if points:
            values = [v for _, v in points]
            left.plot([s for s, _ in points], _moving_average(values, _window(len(values))), label=label)
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
    return _png(fig)


def plot_returns(series: Mapping[str, Any]) -> str | None:
    """(e) Episode return over training: each episode and a trailing moving average."""
    points = series["return"]
    if not points:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    steps, values = [s for s, _ in points], [v for _, v in points]
    window = _window(len(values))
    ax.scatter(steps, values, s=6, alpha=0.3, label="episode")
    ax.plot(steps, _moving_average(values, window), color="C1", label=f"moving average ({window} episodes)")
    ax.set_xlabel("agent step")
    ax.set_ylabel("episode return")
    ax.set_title("Episode return during training")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


# -------------------------------------------------------------------------------------------- context


def _verdict_row(cert: Mapping[str, Any]) -> dict[str, str]:
    doc = cert["doc"]
    model, real, audit, delta, verdict = doc["model"], doc["real"], doc["audit"], doc["delta"], doc["verdict"]
    if real["episodes"]:
        real_text = f"{fmt(real['upper'])} ({real['violating_episodes']}/{real['episodes']} episodes)"
    else:
        real_text = "n/a (0 episodes)"
    return {
        "step": str(cert["step"]),
        "spec": doc["spec"]["text"],
        "status": verdict["status"],
        "model_level": verdict["model_level"],
        "real_level": verdict["real_level"],
        "model_upper_max": fmt(model["summary"]["upper_max"]) if model["available"] else "n/a",
        "real_upper": real_text,
        "audit_error_max": fmt(audit["summary"]["error_upper_max"]) if audit["available"] else "n/a",
        "delta": f"{fmt(delta['total'])} ({fmt(delta['model'])} / {fmt(delta['real'])} / {fmt(delta['audit'])})",
        "reason": verdict["reason"],
    }


def _details(cert: Mapping[str, Any]) -> dict[str, Any]:
    doc = cert["doc"]
    spec, model, real, audit, delta = doc["spec"], doc["model"], doc["real"], doc["audit"], doc["delta"]
    prov = doc["provenance"]
    ms, asum = model["summary"], audit["summary"]
    provenance = [
        ("checkpoint step", str(prov["checkpoint_step"])),
        ("checkpoint manifest sha256", prov["checkpoint_manifest_sha256"]),
        ("config sha256", prov["config_sha256"]),
        ("seed", str(prov["seed"])),
        ("ambs-verify version", prov["package_version"]),
        ("platform", prov["platform"]),
        ("created (UTC)", doc["created_utc"]),
    ] + [(f"{name} version", version) for name, version in sorted(prov["versions"].items())]
    model_rows = [
        ("estimator", f"{model['estimator']['name']} ({'sound' if model['estimator']['sound'] else 'NOT sound'})"),
        ("visited states", str(model["states"])),
        ("latent traces per state (m)", str(model["samples"])),
        ("horizon H", str(model["horizon"])),
        ("δ for the model level / per state", f"{fmt(model['delta'])} / {fmt(model['delta_per_state'])}"),
        ("p̂ mean / max over states", f"{fmt(ms['p_hat_mean'])} / {fmt(ms['p_hat_max'])}"),
        ("upper bound mean / max over states", f"{fmt(ms['upper_mean'])} / {fmt(ms['upper_max'])}"),
        (f"states with upper bound above p_max = {fmt(spec['p_max'])}", str(ms["states_upper_above_p"])),
    ]
    ret = real["return"]
    real_rows = [
        ("evaluation episodes (n)", str(real["episodes"])),
        ("episodes with a violation (k)", str(real["violating_episodes"])),
        ("p̂ = k / n", fmt(real["p_hat"])),
        (f"Clopper-Pearson upper bound at {_conf(real['delta'])}", fmt(real["upper"])),
        ("violations, total", str(real["violations_total"])),
    ]
    real_rows += [(f"violations labelled {k}", str(v)) for k, v in sorted(real["violations_per_label"].items())]
    real_rows += [
        (
            "return mean ± std [min, max]",
            f"{fmt(ret['mean'])} ± {fmt(ret['std'])} [{fmt(ret['min'])}, {fmt(ret['max'])}]",
        ),
        ("episode length, mean", fmt(real["length_mean"])),
        ("shield override rate", fmt(real["override_rate"])),
    ]
    real_rows += [(f"benchmark: {k}", fmt(v)) for k, v in sorted((real["bench_metrics"] or {}).items())]
    audit_rows = [
        ("audited states", str(audit["states"])),
        ("real rollouts per state", str(audit["rollouts"])),
        ("horizon H", str(audit["horizon"])),
        ("δ for the audit / per state", f"{fmt(audit['delta'])} / {fmt(audit['delta_per_state'])}"),
        ("bound on |p_real − p_model|, max over audited states", fmt(asum["error_upper_max"])),
        ("mean |p_real − p_model| (observed)", fmt(asum["abs_diff_mean"])),
        ("upper bound on p_real, max over audited states", fmt(asum["real_upper_max"])),
        (
            f"audited states with real upper bound above p_max = {fmt(spec['p_max'])}",
            str(asum["states_real_upper_above_p"]),
        ),
    ]
    return {
        "step": cert["step"],
        "spec": spec,
        "p_max": fmt(spec["p_max"]),
        "delta": {k: fmt(delta[k]) for k in ("total", "model", "real", "audit")} | {"method": delta["method"]},
        "confidence": _conf(delta["total"]),
        "provenance": provenance,
        "model_available": model["available"],
        "model_reason": model["reason"] or "",
        "model_rows": model_rows,
        "real_rows": real_rows,
        "audit_available": audit["available"],
        "audit_reason": audit["reason"] or "",
        "audit_rows": audit_rows,
        "verdict": _verdict_row(cert),
        # Numbers the "What is certified" text quotes.
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


def _certified(latest: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The "What is certified" paragraphs, with the latest certificate's numbers where there is one."""
    if latest is None:
        return [
            (
                "Model level",
                "About the learned world model only: at states visited by the shielded policy, an upper "
                "bound on the probability that the task policy violates within H steps under the model, from m latent "
                "traces per state. It is not a statement about the real environment.",
            ),
            (
                "Real level",
                "About the real environment, assuming i.i.d. evaluation episodes: a Clopper-Pearson upper "
                "bound on the per-episode violation probability of the shielded policy.",
            ),
            (
                "Audit",
                "Where the simulator can restore a state, real rollouts from audited states bound the model's "
                "error there, and only there.",
            ),
            (
                "Not certified",
                "Nothing is certified before `ambs-verify certify` has written a certificate; the "
                "training curves below are descriptive.",
            ),
        ]
    d = latest
    sound = "a sound bound" if d["model_sound"] else "NOT a sound bound (approximate coverage only)"
    out = []
    if d["model_available"]:
        text = (
            f"At each of the {d['model_states']} states visited by the shielded policy at step {d['step']}, the "
            f"probability that the task policy violates the specification within {d['model_h']} steps, computed "
            f"in the learned world model from {d['model_m']} latent traces per state, is at most "
            f"{d['model_upper_max']} (the largest upper bound over the states). The bounds hold simultaneously at "
            f"confidence {d['model_conf']} by a union bound (δ per state {d['model_delta_per_state']}; estimator "
            f"{d['model_estimator']}, {sound}). If the learned model is wrong, so may be these probabilities: this "
            "is not a real-world guarantee."
        )
        out.append(("Model level (about the learned model, not the real environment)", text))
    else:
        out.append(("Model level", f"Not available at step {d['step']}: {d['model_reason']}"))
    if d["n"]:
        text = (
            f"{d['k']} of {d['n']} evaluation episodes of the shielded policy had at least one violation. If the "
            "episodes are independent and identically distributed, the probability that an episode has a "
            f"violation is at most {d['real_upper']} at confidence {d['real_conf']} (Clopper-Pearson). This is a "
            "per-episode probability for this policy, task and episode distribution; it says nothing about other "
            "conditions."
        )
        out.append(("Real level (real environment, i.i.d. episodes)", text))
    else:
        text = "No evaluation episodes were run, so nothing is certified about the real environment."
        out.append(("Real level", text))
    if d["audit_available"]:
        text = (
            f"At {d['audit_states']} audited states, {d['audit_rollouts']} real rollouts of {d['audit_h']} steps "
            f"each from restored simulator snapshots bound |p_real − p_model| by at most {d['audit_error_max']}, "
            f"and P_real(violation within {d['audit_h']} steps) by at most {d['audit_real_upper_max']} there, at "
            f"confidence {d['audit_conf']}. Nothing is measured at states that were not audited."
        )
        out.append(("Audit (model error, measured at audited states only)", text))
    else:
        out.append(("Audit", f"Not available: {d['audit_reason']}. The model's error is therefore not measured."))
    text = (
        f"Against the specification {d['spec']['text']} with total δ = {d['delta']['total']} "
        f"({d['delta']['model']} model + {d['delta']['real']} real + {d['delta']['audit']} audit, "
        f"{d['delta']['method']}): {d['verdict']['status']} ({d['verdict']['reason']})."
    )
    out.append(("Verdict", text))
    text = (
        "States the policy did not visit, other checkpoints than the certified one, other tasks or environment "
        "settings, and the training curves in this report, which are descriptive."
    )
    out.append(("Not certified", text))
    return out


def _context(run: RunDir) -> dict[str, Any]:
    try:
        config = run.read_config()
    except (OSError, ValueError, yaml.YAMLError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    certs, problems = _read_certificates(run)
    latest = certs[-1] if certs else None
    latest_doc = latest["doc"] if latest else None
    details = _details(latest) if latest else None
    series = _training_series(run)
    config_hash, config_hash_note = _config_hash(run, latest_doc)
    prov = latest_doc["provenance"] if latest_doc else {}
    header = [
        ("run", run.path.name),
        ("run directory", str(run.path)),
        ("task", str(prov.get("task") or config.get("task", "n/a"))),
        ("agent", str(prov.get("agent") or config.get("agent", "n/a"))),
        ("seed", str(prov.get("seed", config.get("seed", "n/a")))),
        (f"config sha256 ({config_hash_note})", config_hash),
        ("checkpoints on disk", ", ".join(map(str, run.checkpoint_steps())) or "none"),
        ("certificates", ", ".join(str(c["step"]) for c in certs) or "none"),
        ("report generated (UTC)", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("ambs-verify version", __version__),
    ]
    # The histogram and the audit plot use the newest certificate that has the data.
    with_model = [c for c in certs if c["doc"]["model"]["available"] and c["doc"]["model"]["p_hat"]]
    with_audit = [c for c in certs if c["doc"]["audit"]["available"] and c["doc"]["audit"]["p_model"]]
    plots = [
        (
            "model-bounds",
            "Model-level bounds across checkpoints",
            plot_model_bounds(certs) if certs else None,
            "About the learned model only: the upper bound holds at visited states, simultaneously, at the confidence "
            "shown in each certificate.",
        ),
        (
            "p-hat-histogram",
            "Model-level p̂ over visited states",
            plot_p_hat_histogram(with_model[-1]) if with_model else None,
            "Distribution over visited states of the estimated violation probability under the learned model.",
        ),
        (
            "audit",
            "Audit: predicted against real",
            plot_audit(with_audit[-1]) if with_audit else None,
            "Each point is an audited state: the model's prediction against real rollouts from a restored simulator "
            "snapshot; the bar is the bound on |p_real − p_model| at that state.",
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
    return {
        "run_name": run.path.name,
        "run_path": str(run.path),
        "header": header,
        "certificates": [_verdict_row(c) for c in certs],
        "problems": problems,
        "latest": details,
        "plots": [{"id": i, "title": t, "src": src, "caption": cap} for i, t, src, cap in plots if src],
        "missing_plots": [t for _, t, src, _ in plots if not src],
        "metrics_present": run.metrics_path.is_file(),
        "training": _training_summary(series),
        "certified": _certified(details),
    }


# ------------------------------------------------------------------------------------------- render


def _environment():
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
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
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
    env = _environment()
    context = _context(run)
    html = env.get_template("report.html.j2").render(**context)
    markdown = env.get_template("report.md.j2").render(**context)
    write_text_atomic(run.report_html, html)
    write_text_atomic(run.report_md, markdown)
    return run.report_html, run.report_md
