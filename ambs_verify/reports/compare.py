"""The comparison page: ``comparison.html`` (one self-contained file) and ``comparison.md`` over two or more runs.

The page reads only the run directories, with the same readers as the single-run report (:mod:`.render`), and
writes nothing into them. It has four parts:

- **runs**: one row a run (agent, task, seed, steps trained, shield, config blocks where ``config.yaml`` records
  them) and the group whose colour its curves carry;
- **training curves** over agent steps (descriptive, not certified): episode return, cumulative violations and
  violations per episode. Runs with the same agent, task and config that differ only in their seed form a group;
  a group of two or more is drawn as its mean over seeds with a 95 % t-interval across seeds, each seed's curve
  linearly interpolated onto a grid shared by the group (:func:`mean_band`); single runs are plain lines;
- **certificates**: each run's newest certificate, about the agent that run deploys, or why there is none;
- **how to read this**: what is descriptive and what is certified.

Grouping compares the whole resolved config, not only ``(agent, task)``: AMBS with a penalty technique (the ``penl``,
``plpg`` and ``copt`` blocks) keeps ``agent: ambs``, and averaging it with plain AMBS as if it were another seed would
be wrong. Groups that share agent and task but not their config are told apart by a variant number, and the page
names the keys they differ in.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import __version__
from ..rollout.agents import SHIELDED_AGENTS
from ..runs import RESUMABLE_KEYS, RunDir, absolute_path, config_differences, write_text_atomic
from .certificate import CertificateError, certificate_paths, read_certificate
from .render import (
    ReportError,
    agent_name,
    fmt,
    moving_average,
    new_figure,
    png_uri,
    read_config,
    smoothing_window,
    template_environment,
    training_series,
    verdict_row,
)

__all__ = [
    "Band",
    "Group",
    "RunSummary",
    "default_out",
    "group_runs",
    "mean_band",
    "read_run",
    "render_comparison",
    "run_curve",
]

COMPARISON_HTML = "comparison.html"
COMPARISON_MD = "comparison.md"
# Points of the step grid a group's seeds are interpolated onto (the plot's resolution, not a statistic).
GRID_POINTS = 200
CONFIDENCE = 0.95
# Keys two runs of one experiment may differ in: the seed, and how long or how often they ran and logged.
SEED_ONLY_KEYS = (*RESUMABLE_KEYS, "seed")


class Curve(NamedTuple):
    """One curve plot: its series in :func:`.render.training_series`, and how it is drawn."""

    key: str
    title: str
    ylabel: str
    smoothed: bool  # per-episode values are smoothed (a moving average, as in the single-run report)
    counts: bool  # never below 0: the plot is cut at 0 (a t-band of a count can reach below it)


CURVES = (
    Curve("return", "Episode return", "episode return", smoothed=True, counts=False),
    Curve("cumulative", "Cumulative violations", "violations since the start of training", smoothed=False, counts=True),
    Curve("violations", "Violations per episode", "violations per episode", smoothed=True, counts=True),
)
ACCEPTED = (
    "accepted: run directories (the --logdir of a training run, holding config.yaml), two or more; "
    "for a sweep, pass its runs (e.g. runs/sweep/*)"
)


@dataclass
class RunSummary:
    """What the comparison needs from one run directory."""

    run: RunDir
    config: dict[str, Any]
    series: dict[str, Any]
    certificate: dict[str, str]
    name: str = ""  # the directory's name; longer where runs' names collide (:func:`_name_runs`)

    def __post_init__(self) -> None:
        self.name = self.name or self.run.path.name

    @property
    def agent(self) -> str:
        return str(self.config.get("agent") or "n/a")

    @property
    def task(self) -> str:
        return str(self.config.get("task") or "n/a")

    @property
    def seed(self) -> str:
        seed = self.config.get("seed")
        return "n/a" if seed is None else str(seed)

    @property
    def shielded(self) -> bool:
        return self.agent in SHIELDED_AGENTS and bool(self.config.get("safety", {}).get("shielding", True))

    @property
    def blocks(self) -> str | None:
        """The ``--configs`` blocks, where ``config.yaml`` records them (a list under ``configs``)."""
        blocks = self.config.get("configs")
        return ", ".join(map(str, blocks)) if isinstance(blocks, list) and blocks else None


@dataclass
class Group:
    """Runs of one experiment (same agent, task and config) that differ only in their seed."""

    label: str
    members: list[RunSummary]
    colour: str = "C0"
    linestyle: str = "-"
    note: str = ""

    @property
    def config(self) -> dict[str, Any]:
        return self.members[0].config


@dataclass
class Band:
    """A group's mean curve over seeds and its two-sided t-interval, on the group's shared step grid."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


@dataclass
class _Drawn:
    """One legend entry of a curve plot: a group's band, or one run's plain line (``low``/``high`` None)."""

    group: Group
    label: str
    steps: np.ndarray
    values: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    runs: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- runs


def _certificate_row(run: RunDir, shielded: bool) -> dict[str, str]:
    """The certificate table's cells for the run's newest certificate: ``kind`` is valid, invalid or none.

    ``shielded`` (from the run's config) names the agent where the certificate cannot: without a deployed audit it
    records no deployed policy.
    """
    paths = certificate_paths(run)
    if not paths:
        return {"kind": "none"}
    step, path = paths[-1]
    try:
        doc = read_certificate(path)
    except CertificateError as exc:
        return {"kind": "invalid", "step": str(step), "problem": str(exc)}
    audit, agent = doc["audit"], agent_name(doc)
    if not doc["deployed"]["policy"]:
        agent += f" ({'shielded agent' if shielded else 'unshielded'}; not audited)"
    return {
        "kind": "valid",
        **verdict_row({"step": step, "doc": doc}),
        "agent": agent,
        "audit_abs_diff_mean": fmt(audit["summary"]["abs_diff_mean"]) if audit["available"] else "n/a",
        "audit_size": f"{audit['states']} audited states" if audit["available"] else "not audited",
    }


def _not_a_run(path: Path) -> ReportError:
    return ReportError(f"{path} is not a run directory (no config.yaml); {ACCEPTED}")


def read_run(path: str | os.PathLike) -> RunSummary:
    """Read one run directory for the comparison.

    Raises
    ------
    ReportError
        ``path`` is not a run directory (no ``config.yaml``).
    """
    run = RunDir(path)
    if not run.exists():
        raise _not_a_run(run.path)
    summary = RunSummary(run, read_config(run), training_series(run), {})
    summary.certificate = _certificate_row(run, summary.shielded)
    return summary


def _name_runs(runs: Sequence[RunSummary]) -> None:
    """Name each run by as many trailing path parts as it takes to tell all of them apart (``a/runs/quickstart``)."""
    for depth in range(1, max(len(r.run.path.parts) for r in runs) + 1):
        names = ["/".join(r.run.path.parts[-depth:]) for r in runs]
        if len(set(names)) == len(names):
            break
    for run, name in zip(runs, names, strict=True):
        run.name = name


def _variant_note(first: Group, other: Group) -> str:
    diffs = config_differences(first.config, other.config, ignore=SEED_ONLY_KEYS)
    if not diffs:
        return (
            f"{other.label} repeats a seed of {first.label} with the same config: runs with equal seeds are not "
            "averaged as if they were different seeds."
        )

    def show(value: Any) -> str:
        # config_differences writes "<absent>" for a key that one config lacks
        return "absent" if value == "<absent>" else repr(value)

    shown = "; ".join(f"{key}: {show(a)} → {show(b)}" for key, (a, b) in list(diffs.items())[:4])
    more = f" (and {len(diffs) - 4} more)" if len(diffs) > 4 else ""
    return f"{other.label} differs from {first.label} in its config: {shown}{more}."


def group_runs(runs: Sequence[RunSummary]) -> list[Group]:
    """Group runs that share agent, task and config (up to the seed and run-length keys) and differ in their seed.

    Groups keep the order of their first run. Each gets a colour (and, beyond ten groups, a line style); groups
    with the same agent and task but another config, or a repeated seed, are numbered and carry a note saying why.
    """
    groups: list[Group] = []
    for summary in runs:
        for group in groups:
            same = group.members[0].agent == summary.agent and group.members[0].task == summary.task
            if (
                same
                and summary.seed not in {m.seed for m in group.members}
                and not config_differences(group.config, summary.config, ignore=SEED_ONLY_KEYS)
            ):
                group.members.append(summary)
                break
        else:
            groups.append(Group(f"{summary.agent} on {summary.task}", [summary]))
    from matplotlib.colors import to_hex

    variants: dict[str, list[Group]] = defaultdict(list)
    for i, group in enumerate(groups):
        group.colour = to_hex(f"C{i % 10}")
        group.linestyle = ("-", "--", ":")[(i // 10) % 3]
        variants[group.label].append(group)
    for same in variants.values():
        if len(same) > 1:
            for j, group in enumerate(same):
                group.label += f" #{j + 1}"
            for group in same[1:]:
                group.note = _variant_note(same[0], group)
    return groups


# ----------------------------------------------------------------------------------------- curves


def run_curve(summary: RunSummary, key: str, window: int, smoothed: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """One run's curve ``(steps, values)`` for series ``key``, steps strictly increasing; None without data.

    Parameters
    ----------
    summary : RunSummary
        The run.
    key : str
        ``return``, ``violations`` (per episode) or ``cumulative`` (see :func:`.render.training_series`).
    window : int
        Episodes in the trailing moving average, when ``smoothed``.
    smoothed : bool
        Smooth per-episode values (return, violations per episode); a cumulative count is drawn as it is.
    """
    points = summary.series[key]
    if not points:
        return None
    steps = np.array([s for s, _ in points], dtype=float)
    values = [v for _, v in points]
    values = np.asarray(moving_average(values, window) if smoothed else values, dtype=float)
    # Several envs can end an episode at the same step: keep the last value there, so np.interp sees increasing x.
    last = np.r_[steps[1:] != steps[:-1], True]
    return steps[last], values[last]


def mean_band(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = GRID_POINTS, confidence: float = CONFIDENCE
) -> Band | None:
    """The mean of several seeds' curves and a two-sided t-interval for it, at each step of a shared grid.

    Parameters
    ----------
    curves : sequence of (steps, values)
        One curve a seed, steps increasing; at least two.
    points : int
        Grid points, evenly spaced over the steps every curve covers (no curve is extrapolated).
    confidence : float
        Two-sided confidence of the band.

    Returns
    -------
    Band or None
        None when the curves share no step. Otherwise, with each curve linearly interpolated onto the grid
        (``np.interp``) and n curves: the mean, and mean ± t_{(1+confidence)/2, n−1} · s / √n with s the sample
        standard deviation across seeds (ddof 1).
    """
    from scipy import stats

    if len(curves) < 2:
        raise ValueError(f"a band needs two or more curves, got {len(curves)}")
    start, end = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    if start > end:
        return None
    grid = np.linspace(start, end, points) if end > start else np.array([start])
    values = np.stack([np.interp(grid, x, y) for x, y in curves])
    n = len(curves)
    mean = values.mean(axis=0)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return Band(grid, mean, mean - half, mean + half, n)


def _drawn(groups: Sequence[Group], key: str, window: int, smoothed: bool) -> list[_Drawn]:
    """What one curve plot draws: a band for each group with two or more seeds that overlap, else plain lines."""
    out = []
    for group in groups:
        curves = [(m, run_curve(m, key, window, smoothed)) for m in group.members]
        curves = [(m, c) for m, c in curves if c is not None]
        band = mean_band([c for _, c in curves]) if len(curves) > 1 else None
        if band is not None:
            label = f"{group.label}: mean of {band.seeds} seeds, {100 * CONFIDENCE:g} % band"
            names = [m.name for m, _ in curves]
            out.append(_Drawn(group, label, band.steps, band.mean, band.low, band.high, names))
            continue
        apart = " (no common steps)" if len(curves) > 1 else ""
        for member, (steps, values) in curves:
            label = f"{group.label}: {member.name}, seed {member.seed}{apart}"
            out.append(_Drawn(group, label, steps, values, runs=[member.name]))
    return out


def _plot(drawn: Sequence[_Drawn], curve: Curve, window: int) -> str:
    fig = new_figure(9.6, 4.2)
    ax = fig.add_subplot()
    for d in drawn:
        style = {"color": d.group.colour, "linestyle": d.group.linestyle}
        if d.low is not None:
            ax.fill_between(d.steps, d.low, d.high, alpha=0.2, linewidth=0, color=d.group.colour)
        ax.plot(d.steps, d.values, label=d.label, linewidth=1.6, **style)
    ax.set_xlabel("agent step")
    ax.set_ylabel(f"{curve.ylabel}\n(moving average, {window} episodes)" if curve.smoothed else curve.ylabel)
    ax.set_title(curve.title)
    if curve.counts:
        ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncol=2 if len(drawn) > 3 else 1)
    return png_uri(fig)


def _endpoint(d: _Drawn) -> str:
    """The curve's last value, with its band where there is one."""
    if d.low is None:
        return fmt(d.values[-1].item())
    return f"{fmt(d.values[-1].item())} [{fmt(d.low[-1].item())}, {fmt(d.high[-1].item())}]"


def _curves(groups: Sequence[Group]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The curve plots, the table of their end points (one row a legend entry), and the smoothing window."""
    counts = [len(m.series["return"]) for g in groups for m in g.members if m.series["return"]]
    window = smoothing_window(min(counts, default=0))  # one window for every run, so curves compare like for like
    plots, rows = [], {}
    for curve in CURVES:
        drawn = _drawn(groups, curve.key, window, curve.smoothed)
        plots.append({**curve._asdict(), "src": _plot(drawn, curve, window) if drawn else None})
        for d in drawn:
            row = rows.setdefault((d.group.label, *d.runs), {"label": d.label, "colour": d.group.colour, "cells": {}})
            row["cells"][curve.key] = f"{_endpoint(d)} at step {fmt(int(d.steps[-1]))}"
    table = [
        {"label": r["label"], "colour": r["colour"], "cells": [r["cells"].get(c.key, "n/a") for c in CURVES]}
        for r in rows.values()
    ]
    return plots, table, window


# --------------------------------------------------------------------------------------- the page


def default_out(runs: Sequence[str | os.PathLike]) -> Path:
    """Where the comparison goes by default: the first run's parent when every run has that parent, else ``.``."""
    parents = {absolute_path(r).parent for r in runs}
    first = absolute_path(runs[0]).parent
    return first if parents == {first} else absolute_path(".")


def _check_paths(runs: Sequence[str | os.PathLike], out: Path) -> list[Path]:
    """The runs as absolute paths, once each, and ``out`` outside all of them; else one :class:`ReportError` line."""
    if len(runs) < 2:
        raise ReportError(f"a comparison needs two or more runs, got {len(runs)}; {ACCEPTED}")
    paths, seen = [], {}
    for given in runs:
        path = absolute_path(given)
        if not RunDir(path).exists():
            raise _not_a_run(path)
        real = path.resolve()
        if real in seen:
            raise ReportError(f"{path} is given twice (also as {seen[real]}); list each run once")
        seen[real] = path
        paths.append(path)
    if out.exists() and not out.is_dir():
        raise ReportError(f"output directory {out} is a file; pass a directory with --out")
    real_out = out.resolve()
    for real, path in seen.items():
        if real_out == real or real in real_out.parents:
            raise ReportError(f"output directory {out} is inside run {path}; a comparison is never written into a run")
    return paths


def _context(summaries: Sequence[RunSummary], groups: Sequence[Group]) -> dict[str, Any]:
    group_of = {id(m): g for g in groups for m in g.members}
    runs = [
        {
            "name": s.name,
            "path": str(s.run.path),
            "group": group_of[id(s)].label,
            "colour": group_of[id(s)].colour,
            "agent": s.agent,
            "task": s.task,
            "seed": s.seed,
            "steps": fmt(s.series["last_step"]),
            "episodes": str(s.series["episodes"]),
            "shield": "on" if s.shielded else "off",
            "blocks": s.blocks or "not recorded",
        }
        for s in summaries
    ]
    plots, endpoints, window = _curves(groups)
    certificates = [{"run": s.name, "path": str(s.run.path), **s.certificate} for s in summaries]
    return {
        "title": f"ambs-verify comparison: {len(summaries)} runs",
        "runs": runs,
        "show_blocks": any(s.blocks for s in summaries),
        "notes": [g.note for g in groups if g.note],
        "no_metrics": [s.name for s in summaries if not s.series["episodes"]],
        "plots": [p for p in plots if p["src"]],
        "missing_plots": [p["title"] for p in plots if not p["src"]],
        "endpoints": endpoints,
        "curve_titles": [c.title for c in CURVES],
        "window": window,
        "confidence": f"{100 * CONFIDENCE:g} %",
        "certificates": certificates,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": __version__,
    }


def render_comparison(runs: list[Path], out: Path) -> tuple[Path, Path]:
    """Write ``comparison.html`` and ``comparison.md`` over ``runs`` into ``out`` and return their paths.

    Parameters
    ----------
    runs : list of Path
        Two or more run directories, each once. They are only read.
    out : Path
        The directory the two files go into (created if missing); not one of the runs, nor inside one.

    Raises
    ------
    ReportError
        Fewer than two runs, a path that is not a run directory, a run listed twice, ``out`` inside a run or a
        file, or matplotlib/jinja2 missing. Raised before anything is written.
    """
    out = absolute_path(out)
    paths = _check_paths(runs, out)
    env = template_environment()
    summaries = [read_run(p) for p in paths]
    _name_runs(summaries)
    context = _context(summaries, group_runs(summaries))
    # Both texts are rendered before either file is replaced, and each replace is atomic.
    html = env.get_template("comparison.html.j2").render(**context)
    markdown = env.get_template("comparison.md.j2").render(**context)
    html_path, md_path = out / COMPARISON_HTML, out / COMPARISON_MD
    write_text_atomic(html_path, html)
    write_text_atomic(md_path, markdown)
    return html_path, md_path
