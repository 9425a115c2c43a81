"""The benchmark suite: every registered benchmark in one process, one JSON file, one Markdown table.

``python -m benchmarks run [--quick] [--only NAME ...] [--list] [--out DIR]`` runs the registered benchmarks (or
the named ones) one after another in this process. A benchmark that raises is recorded with its one-line error
and the suite goes on; the exit status is then 1. The JSON ``<out>/<date>-<host>.json`` holds the machine
(:func:`~benchmarks.common.machine`), per benchmark its status, wall time and result dict, and every ratio found
in the results (keys containing ``ratio`` or ``speedup``). The Markdown table printed at the end has one row per
benchmark and setting: what was measured, the median, the spread (min – max over repeats) and the ratio.

``--quick`` runs the cheap settings of each benchmark and skips, with a note, the ones that train agents for
minutes (``baselines_atari``, ``grid_shielding``); naming a skipped one with ``--only`` runs its own quick mode.
Goal: under 5 minutes on a 2-core CPU. ``BENCH_SMOKE=1`` shrinks the benchmarks that support it further (tests).

A benchmark module exposes ``run(quick) -> dict`` and, optionally, ``headline(result) -> list[dict]`` with the
table's rows (:func:`~benchmarks.common.row`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import json
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ambs_verify.runs import absolute_path

from .common import RESULTS_DIR, fmt_seconds, machine, row


@dataclass(frozen=True)
class Bench:
    """A registered benchmark: ``benchmarks.<name>``; ``quick_skip`` is the note when quick mode leaves it out."""

    name: str
    what: str
    quick_skip: str | None = None


REGISTRY: tuple[Bench, ...] = (
    Bench("jax_bounds", "jitted f32 upper bounds (KL, Clopper-Pearson, Hoeffding) vs numpy on 10^5 (k, m) pairs"),
    Bench("certificate_soundness", "coverage of real-level upper bounds against the grids' exact probabilities"),
    Bench("atari_wrapper", "labelled Atari env step vs raw ale-py doing the same observation work"),
    Bench("safety_gym_wrapper", "Safety Gym adapter step vs raw safety-gymnasium Builder; task sweep"),
    Bench(
        "shield_latency",
        "shield decision latency, FLOPs vs the f32 matmul ceiling, the paper's per-env loop vs one vectorised call",
    ),
    Bench(
        "sequential_samples",
        "sequential shield and certification: exact samples per decision against fixed m and advance-sized n",
    ),
    Bench("sweep_parallel", "a 4-cell debug sweep on 2 local workers against its cells one after another"),
    Bench("data_parallel", "AMBS train step and shield decision split over 2 host CPU devices against 1 device"),
    Bench("certify_throughput", "model-level sampling throughput of certificates; certify_checkpoint end to end"),
    Bench("agent_update", "world-model + actor-critic update time, FLOPs and peak RSS per size (subprocess each)"),
    Bench(
        "baselines_atari",
        "DQN / Rainbow / IQN agent steps per second on Seaquest",
        quick_skip="trains DQN, Rainbow and IQN on Seaquest (minutes on a CPU): full suite only",
    ),
    Bench(
        "grid_shielding",
        "AMBS vs DreamerV3, Lagrangian and AMBS+PENL/PLPG/COPT on grid, quickstart budget, 5 seeds",
        quick_skip="trains 6 agents x 5 seeds (over an hour on 2 cores): full suite only",
    ),
)
NAMES = tuple(b.name for b in REGISTRY)
RATIO_WORDS = ("ratio", "speedup")
_LABEL_KEYS = ("size", "compute_dtype", "envs", "samples", "horizon", "states", "agent", "seed")


class UnknownBenchmark(ValueError):
    """A name that is not registered."""


def select(names: list[str] | None) -> list[Bench]:
    """The registered benchmarks named (in registry order), or all of them."""
    if not names:
        return list(REGISTRY)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise UnknownBenchmark(f"unknown benchmark {unknown[0]!r}; accepted: {', '.join(NAMES)}")
    return [b for b in REGISTRY if b.name in names]


def _label(item: object, index: int) -> str:
    if isinstance(item, dict):
        parts = [f"{k}={item[k]}" for k in _LABEL_KEYS if k in item and not isinstance(item[k], dict | list)]
        if parts:
            return ",".join(parts)
    return str(index)


def collect_ratios(result: object, prefix: str) -> dict[str, float]:
    """Every number under a key containing ``ratio`` or ``speedup``, by slash-separated path.

    List items are named by their setting (``size=small,envs=8,...``) where they are dicts that carry one.
    """
    found: dict[str, float] = {}
    if isinstance(result, dict):
        for key, value in result.items():
            path = f"{prefix}/{key}"
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if is_number and any(word in str(key).lower() for word in RATIO_WORDS):
                found[path] = float(value)
            else:
                found.update(collect_ratios(value, path))
    elif isinstance(result, list):
        for i, item in enumerate(result):
            found.update(collect_ratios(item, f"{prefix}/{_label(item, i)}"))
    return found


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:300]


def run_one(bench: Bench, quick: bool) -> dict:
    """Import and run one benchmark; failures are recorded, not raised."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{bench.name}")
        result = module.run(quick)
    except Exception as exc:  # the suite goes on; the error is in the JSON and the table
        traceback.print_exc(file=sys.stderr)
        return {"status": "failed", "error": _one_line(exc), "wall_s": time.perf_counter() - start}
    entry = {"status": "ok", "wall_s": time.perf_counter() - start, "result": result}
    try:
        entry["headline"] = module.headline(result) if hasattr(module, "headline") else []
    except Exception as exc:  # a table bug must not lose the measurement
        entry["headline"] = [row("—", f"headline failed: {_one_line(exc)}")]
    return entry


def _release() -> None:
    """Drop what a finished benchmark left behind (JAX's compiled functions, garbage) before the next one."""
    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    gc.collect()


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(entries: dict[str, dict]) -> str:
    """One row per benchmark and setting (failed and skipped benchmarks get one row saying so)."""
    lines = ["| benchmark | setting | what | median | spread | ratio |", "|---|---|---|---|---|---|"]
    for name, entry in entries.items():
        if entry["status"] == "failed":
            rows = [row("—", f"FAILED: {entry['error']}")]
        elif entry["status"] == "skipped":
            rows = [row("—", f"skipped: {entry['note']}")]
        else:
            rows = entry.get("headline") or [row("—", "finished (no headline figures)", fmt_seconds(entry["wall_s"]))]
        for r in rows:
            cells = [name, r["setting"], r["what"], r["median"], r["spread"], r["ratio"]]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def run_suite(benches: list[Bench], quick: bool, out_dir: Path, explicit: bool = False) -> tuple[dict, Path]:
    """Run ``benches`` in order and write the suite's JSON; return the payload and its path."""
    started = dt.datetime.now(dt.UTC)
    info = machine()
    t0 = time.perf_counter()
    entries: dict[str, dict] = {}
    for i, bench in enumerate(benches, 1):
        if quick and bench.quick_skip and not explicit:
            entries[bench.name] = {"status": "skipped", "note": bench.quick_skip, "wall_s": 0.0}
            print(f"[{i}/{len(benches)}] {bench.name}: skipped ({bench.quick_skip})", file=sys.stderr, flush=True)
            continue
        print(f"[{i}/{len(benches)}] {bench.name} ...", file=sys.stderr, flush=True)
        entries[bench.name] = run_one(bench, quick)
        _release()
        e = entries[bench.name]
        status = "ok" if e["status"] == "ok" else f"FAILED ({e['error']})"
        print(f"[{i}/{len(benches)}] {bench.name}: {status} in {e['wall_s']:.1f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    ratios: dict[str, float] = {}
    for name, entry in entries.items():
        if entry["status"] == "ok":
            ratios.update(collect_ratios(entry["result"], name))
    table = markdown_table(entries)
    payload = {
        "kind": "ambs-verify-benchmark-suite",
        "date": started.isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "smoke": os.environ.get("BENCH_SMOKE", "") not in ("", "0"),
        "benchmarks_run": [b.name for b in benches],
        "machine": info,
        "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "wall_s": wall,
        "failed": [n for n, e in entries.items() if e["status"] == "failed"],
        "benchmarks": entries,
        "ratios": ratios,
        "table": table,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started:%Y-%m-%d}-{socket.gethostname()}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return payload, path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="the ambs-verify benchmark suite")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the registered benchmarks and write one JSON file")
    p.add_argument("--quick", action="store_true", help="cheap settings; skip the benchmarks that train agents")
    p.add_argument("--only", nargs="+", action="extend", metavar="NAME", help="run only these benchmarks")
    p.add_argument("--list", action="store_true", help="list the registered benchmarks and exit")
    p.add_argument("--out", type=absolute_path, default=RESULTS_DIR, help=f"results folder (default {RESULTS_DIR})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for b in REGISTRY:
            note = f"  [quick: skipped, {b.quick_skip}]" if b.quick_skip else ""
            print(f"{b.name:22s} {b.what}{note}")
        return 0
    try:
        benches = select(args.only)
    except UnknownBenchmark as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    payload, path = run_suite(benches, args.quick, args.out, explicit=bool(args.only))
    mode = "--quick" if args.quick else "full"
    print(f"\n## Benchmarks ({mode}, {payload['machine']['cpu']}, {payload['machine']['cpu_count']} CPUs)\n")
    print(payload["table"])
    walls = ", ".join(f"{n} {e['wall_s']:.0f} s" for n, e in payload["benchmarks"].items() if e["status"] != "skipped")
    print(f"\nWall time: {payload['wall_s']:.0f} s in all ({walls}).")
    print(f"written: {path}")
    if payload["failed"]:
        print(f"failed: {', '.join(payload['failed'])}", file=sys.stderr)
        return 1
    return 0
