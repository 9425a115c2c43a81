"""What every benchmark shares: machine facts, repeat-and-median timing, JSON output.

A benchmark module exposes ``run(quick: bool) -> dict`` and may be run directly
(``python -m benchmarks.NAME [--quick]``), which writes ``benchmarks/results/<date>-<host>-NAME.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Host, CPU, accelerator and package versions, so results are comparable only where they should be."""
    info = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": {},
    }
    for pkg in ("numpy", "scipy", "statsmodels", "jax", "jaxlib", "flax", "optax"):
        try:
            info["versions"][pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        import jax

        info["jax_devices"] = [str(d) for d in jax.devices()]
    except Exception as exc:  # a benchmark without JAX still reports the machine
        info["jax_devices"] = f"unavailable: {exc}"
    return info


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Median, min, max and spread of wall seconds over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "repeats": repeats,
    }


def write_result(name: str, result: dict, out_dir: Path = RESULTS_DIR) -> Path:
    """Write ``{"name", "date", "machine", "result"}`` as JSON and return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    path = out_dir / f"{now:%Y-%m-%d}-{socket.gethostname()}-{name}.json"
    payload = {
        "name": name,
        "date": now.isoformat(timespec="seconds"),
        "machine": machine(),
        "result": result,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def main(name: str, run: Callable[[bool], dict]) -> None:
    """Command-line entry for one benchmark module."""
    parser = argparse.ArgumentParser(description=f"benchmark: {name}")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes")
    args = parser.parse_args()
    result = run(args.quick)
    path = write_result(name, result)
    print(json.dumps(result, indent=2))
    print(f"written: {path}")
