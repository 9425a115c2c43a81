"""Sweeps: a grid of training runs -- config variants × agents × tasks × overrides × seeds -- each an ordinary run
directory under one sweep directory, run on an executor (:mod:`ambs_verify.executors`).

A spec is a YAML file::

    configs: [quickstart]                 # blocks every cell starts from; a list of lists: one variant each
    overrides: {run.steps: 4000}          # dotted keys every cell gets
    agents: [ambs, dreamer]               # optional
    tasks: [grid]                         # optional
    seeds: [0, 1, 2]                      # optional (default: the configs' seed)
    grid: {shield.eps: [0.01, 0.05]}      # optional: dotted key -> values, crossed with the rest
    certify: {spec: "H=30,p<=0.1"}        # optional: certify each cell's last checkpoint (certify's options)

The sweep directory holds ``sweep.yaml`` (the spec), ``cells/<name>/`` (one run directory per cell),
``status.json`` (each cell's status, written by the sweep as cells finish), ``attempts/<name>.jsonl`` (each cell's
starts and ends, written by the process that trains it) and ``locks/<name>.lock``.

Every cell is resolved before anything runs, so a bad key or value stops the sweep at once in one line. A sweep
started again in the same directory skips finished cells (newest checkpoint at ``run.steps``, and its certificate
where one is asked for) and resumes the others from their newest checkpoint, as ``ambs-verify train`` does. A
cell that fails is recorded with its one-line error and the others go on. A cell is trained under an exclusive
lock on its lock file, which the kernel releases when the process dies: two processes never train one cell at
once, even when an old worker outlives a killed sweep.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .runs import RunDir, absolute_path, write_text_atomic

__all__ = ["Cell", "SweepError", "SweepSpec", "cell_status", "load_spec", "run_cell", "run_sweep"]

SPEC_KEYS = ("configs", "overrides", "agents", "tasks", "seeds", "grid", "certify")


class SweepError(ValueError):
    """An unusable sweep spec or directory; the message is one line."""


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: config blocks and dotted overrides (``agent``, ``task``, ``seed`` among them)."""

    name: str
    configs: tuple[str, ...]
    overrides: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed spec (module doc); :attr:`cells` lists its runs in a fixed order."""

    variants: tuple[tuple[str, ...], ...]
    overrides: dict[str, Any]
    agents: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    grid: dict[str, tuple] = field(default_factory=dict)
    certify: dict[str, Any] | None = None

    @property
    def cells(self) -> list[Cell]:
        keys = list(self.grid)
        axes = [
            [(v, "+".join(v)) for v in self.variants],
            [(a, a) for a in self.agents] or [(None, "")],
            [(t, t) for t in self.tasks] or [(None, "")],
            list(itertools.product(*(self.grid[k] for k in keys))) or [()],
            [(s, f"seed{s}") for s in self.seeds] or [(None, "")],
        ]
        cells = []
        for (blocks, label), (agent, _), (task, _), values, (seed, _) in itertools.product(*axes):
            overrides = dict(self.overrides)
            overrides |= {k: v for k, v in (("agent", agent), ("task", task), ("seed", seed)) if v is not None}
            overrides |= dict(zip(keys, values, strict=True))
            parts = [label if len(self.variants) > 1 else "", agent or "", task or ""]
            parts += [f"{k}={v}" for k, v in zip(keys, values, strict=True)] + [
                f"seed{seed}" if seed is not None else ""
            ]
            name = re.sub(r"[^A-Za-z0-9._=+-]+", "-", "_".join(p for p in parts if p)) or "run"
            cells.append(Cell(name, blocks, overrides))
        return cells


def _strings(value, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SweepError(f"sweep spec: {what} must be a list of names (got {value!r})")
    return tuple(value)


def parse_spec(data: Any) -> SweepSpec:
    """A :class:`SweepSpec` from the YAML's mapping; a one-line :class:`SweepError` naming what is wrong."""
    if not isinstance(data, dict):
        raise SweepError("a sweep spec is a YAML mapping with keys " + ", ".join(SPEC_KEYS))
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise SweepError(f"sweep spec: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(SPEC_KEYS)}")
    configs = data.get("configs")
    if isinstance(configs, list) and configs and all(isinstance(c, list) for c in configs):
        variants = tuple(_strings(c, "each configs variant") for c in configs)
    else:
        variants = (_strings(configs, "configs"),)
    overrides, grid = data.get("overrides") or {}, data.get("grid") or {}
    if not isinstance(overrides, dict):
        raise SweepError(f"sweep spec: overrides must map dotted keys to values (got {overrides!r})")
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SweepError("sweep spec: grid must map dotted keys to non-empty lists of values")
    seeds = data.get("seeds") or []
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SweepError(f"sweep spec: seeds must be a list of integers (got {seeds!r})")
    certify = data.get("certify")
    if certify is not None and not isinstance(certify, dict):
        raise SweepError(f"sweep spec: certify must map certify's options to values (got {certify!r})")
    spec = SweepSpec(
        variants,
        dict(overrides),
        _strings(data.get("agents") or [], "agents"),
        _strings(data.get("tasks") or [], "tasks"),
        tuple(seeds),
        {k: tuple(v) for k, v in grid.items()},
        certify,
    )
    names = [c.name for c in spec.cells]
    if len(set(names)) != len(names):
        raise SweepError("sweep spec: two cells would share a run directory (repeated values in a list?)")
    return spec


def load_spec(path: str | os.PathLike) -> tuple[SweepSpec, dict]:
    """Read and parse a spec file: ``(spec, raw mapping)``."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"no sweep spec at {path}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_spec(raw), raw


def resolve_cells(spec: SweepSpec, sweep_dir: Path) -> dict[str, int]:
    """Check every cell's config (and the certify options) before anything runs: ``{name: run.steps}``."""
    from .config import ConfigError, resolve

    steps = {}
    for cell in spec.cells:
        try:
            config = resolve(cell.configs, {**cell.overrides, "logdir": str(sweep_dir / "cells" / cell.name)})
        except ConfigError as exc:
            raise SweepError(f"cell {cell.name}: {exc}") from None
        steps[cell.name] = int(config.run.steps)
    if spec.certify is not None:
        certify_options(spec.certify)
    return steps


def certify_options(settings: Mapping[str, Any]):
    """:class:`~ambs_verify.reports.certify.CertifyOptions` from a spec's ``certify`` mapping (certify's CLI names)."""
    from .reports.certify import CertifyError, CertifyOptions, parse_spec

    values = {k.replace("-", "_"): v for k, v in settings.items()}
    if isinstance(values.get("spec"), str):
        values["spec"] = parse_spec(values["spec"])
    if values.get("rollouts") == "auto":
        values["rollouts"] = None
    if "split" in values:
        values["split"] = tuple(values["split"])
    try:
        return CertifyOptions(**values)
    except TypeError:
        accepted = ", ".join(CertifyOptions.__dataclass_fields__)
        raise SweepError(f"sweep spec: certify takes {accepted} (got {', '.join(settings)})") from None
    except CertifyError as exc:
        raise SweepError(f"sweep spec: certify: {exc}") from None


def cell_status(sweep_dir: Path, name: str, steps: int, certify: bool) -> str:
    """``done`` when the cell's newest checkpoint is at ``steps`` (and certified, if asked), ``started`` when it has a
    checkpoint before that, else ``pending``."""
    run = RunDir(sweep_dir / "cells" / name)
    latest = run.latest_checkpoint() if run.checkpoints_dir.is_dir() else None
    if latest is None:
        return "pending"
    if latest >= steps and (not certify or run.certificate_path(latest).is_file()):
        return "done"
    return "started"


def _append(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def run_cell(sweep_dir: str, name: str, configs: tuple[str, ...], overrides: dict, certify: dict | None) -> dict:
    """Train (resume) one cell under its lock, then certify it if asked: a plain dict, never an exception.

    Runs in a worker process of the executor; ``attempts/<name>.jsonl`` gets a ``start`` record (with the newest
    checkpoint it resumes from) and an ``end`` record.
    """
    root = Path(sweep_dir)
    (root / "locks").mkdir(parents=True, exist_ok=True)
    attempts = root / "attempts" / f"{name}.jsonl"
    start = time.time()
    with open(root / "locks" / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel when this process ends, however it ends
        run = RunDir(root / "cells" / name)
        latest = run.latest_checkpoint() if run.checkpoints_dir.is_dir() else None
        _append(attempts, {"event": "start", "pid": os.getpid(), "time": start, "checkpoint": latest})
        try:
            out = _train_and_certify(run.path, configs, overrides, certify)
        except Exception as exc:  # one cell's failure is recorded; the sweep goes on
            out = {"status": "failed", "error": " ".join(str(exc).split()) or type(exc).__name__}
        out["wall_s"] = time.time() - start
        _append(attempts, {"event": "end", "pid": os.getpid(), "time": time.time(), **out})
    return out


def _train_and_certify(logdir: Path, configs, overrides: dict, certify: dict | None) -> dict:
    from .api import certify as certify_run
    from .api import train

    run = train(list(configs), **{**overrides, "logdir": str(logdir), "run.progress": False})
    result = run.result
    out = {"status": "done", "step": result.step, "resumed_from": result.resumed_from}
    if result.interrupted:
        out["status"] = "interrupted"
    elif certify is not None:
        cert = certify_run(run, result.step, options=certify_options(certify))
        out["certificate"] = cert.status
    return out


@dataclass
class SweepResult:
    """Each cell's outcome (``status.json``): ``cells[name]`` has ``status`` (done, skipped, failed, interrupted)."""

    sweep_dir: Path
    cells: dict[str, dict]

    @property
    def failed(self) -> list[str]:
        return [name for name, c in self.cells.items() if c["status"] in ("failed", "interrupted")]


def prepare_dir(spec_path: str | os.PathLike, sweep_dir: str | os.PathLike | None) -> tuple[SweepSpec, Path, dict]:
    """Parse the spec, check every cell and claim the sweep directory (default ``runs/<spec name>``): a directory
    that holds another sweep's spec is refused. Returns ``(spec, directory, {cell: run.steps})``."""
    spec, raw = load_spec(spec_path)
    root = absolute_path(sweep_dir if sweep_dir is not None else Path("runs") / Path(spec_path).stem)
    if root.exists() and not root.is_dir():
        raise SweepError(f"--dir {root} is a file; accepted: a directory (new, or holding a sweep)")
    stored = root / "sweep.yaml"
    if stored.is_file() and yaml.safe_load(stored.read_text()) != raw:
        raise SweepError(f"{root} holds another sweep (its sweep.yaml differs from {spec_path}); use another --dir")
    if root.exists() and not stored.is_file() and any(root.iterdir()):
        raise SweepError(f"{root} is not empty and holds no sweep; use another --dir")
    steps = resolve_cells(spec, root)
    root.mkdir(parents=True, exist_ok=True)
    if not stored.is_file():
        write_text_atomic(stored, yaml.safe_dump(raw, sort_keys=False))
    return spec, root, steps


def run_sweep(
    spec_path: str | os.PathLike,
    sweep_dir: str | os.PathLike | None = None,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    show: Callable[[dict[str, dict]], None] | None = None,
) -> SweepResult:
    """Run (or resume) the sweep of ``spec_path`` in ``sweep_dir``; see the module doc.

    ``show(cells)`` is called as the cells progress (``cells[name]``: ``status``, ``step``, ``steps``), for a
    progress display.
    """
    from .executors import JobFailed, check_executor, run_jobs

    check_executor(executor, workers, address)  # before the spec, so that a typo costs nothing
    spec, root, steps = prepare_dir(spec_path, sweep_dir)
    before = _read_status(root)
    cells = {}
    for c in spec.cells:
        status = cell_status(root, c.name, steps[c.name], spec.certify is not None)
        # a cell finished by an earlier sweep keeps what that sweep recorded of it
        cells[c.name] = before.get(c.name, {}) if status == "done" else {}
        cells[c.name] |= {"status": "skipped" if status == "done" else status, "steps": steps[c.name]}
        cells[c.name]["step"] = _last_step(root / "cells" / c.name)
    todo = [c for c in spec.cells if cells[c.name]["status"] != "skipped"]
    for c in todo:
        cells[c.name]["status"] = "queued"
    _write_status(root, cells)

    def on_done(index: int, result) -> None:
        name = todo[index].name
        if isinstance(result, JobFailed):
            result = {"status": "failed", "error": result.error}
        cells[name] |= result
        cells[name]["step"] = _last_step(root / "cells" / name)
        _write_status(root, cells)

    def poll() -> None:
        for c in todo:
            if cells[c.name]["status"] in ("queued", "running"):
                cells[c.name]["step"] = _last_step(root / "cells" / c.name)
                if _running(root / "attempts" / f"{c.name}.jsonl"):
                    cells[c.name]["status"] = "running"
        if show is not None:
            show(cells)

    jobs = [(str(root), c.name, c.configs, c.overrides, spec.certify) for c in todo]
    poll()
    run_jobs(run_cell, jobs, executor, workers, address, on_done, poll)
    poll()
    return SweepResult(root, cells)


def _read_status(root: Path) -> dict[str, dict]:
    try:
        return json.loads((root / "status.json").read_text())["cells"]
    except (FileNotFoundError, ValueError, KeyError):
        return {}


def _write_status(root: Path, cells: dict) -> None:
    write_text_atomic(root / "status.json", json.dumps({"cells": cells}, indent=1, sort_keys=True) + "\n")


def _running(attempts: Path) -> bool:
    """Whether the newest record of a cell's attempts is a start (a worker is training it)."""
    try:
        lines = attempts.read_text().splitlines()
    except FileNotFoundError:
        return False
    return bool(lines) and json.loads(lines[-1]).get("event") == "start"


def _last_step(run_path: Path) -> int:
    """The newest ``step`` in a run's metrics.jsonl (0 without one), read from the file's tail."""
    path = RunDir(run_path).metrics_path
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0
