"""What every benchmark shares: machine facts, repeat-and-median timing, JSON output.

A benchmark module exposes ``run(quick: bool) -> dict`` and may be run directly
(``python -m benchmarks.NAME [--quick]``), which writes ``benchmarks/results/<date>-<host>-NAME.json``. It may
also expose ``headline(result) -> list[dict]`` (rows made with :func:`row`) for the suite's Markdown table
(``python -m benchmarks run``, :mod:`benchmarks.suite`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def machine() -> dict:
    """Host, CPU, accelerator and package versions, so results are comparable only where they should be."""
    info = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {},
    }
    for pkg in (
        "numpy",
        "scipy",
        "statsmodels",
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "ale-py",
        "safety-gymnasium",
        "mujoco",
        "gymnasium",
    ):
        try:
            info["versions"][pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        import jax

        devices = jax.devices()
        info["jax_backend"] = jax.default_backend()
        info["jax_devices"] = [str(d) for d in devices]
        info["gpu"] = [d.device_kind for d in devices if d.platform == "gpu"]
    except Exception as exc:  # a benchmark without JAX still reports the machine
        info["jax_devices"] = f"unavailable: {exc}"
        info["gpu"] = []
    return info


def on_gpu() -> bool:
    """Whether JAX's first device is a GPU (the suite's GPU mode: large and xlarge sizes too)."""
    import jax

    return jax.devices()[0].platform == "gpu"


def smoke() -> bool:
    """``BENCH_SMOKE=1``: the cheapest settings a benchmark supports (the suite's smoke test), not a result."""
    return os.environ.get("BENCH_SMOKE", "") not in ("", "0")


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


def time_adaptive(fn: Callable[[], object], max_repeats: int, budget_s: float, min_repeats: int = 2) -> dict:
    """:func:`time_call` with as many repeats as fit in ``budget_s`` (from the warm-up call's time), clamped to
    ``[min_repeats, max_repeats]``: cheap settings get many repeats, slow ones a few. With ``min_repeats=0`` a
    warm-up call longer than the budget is reported as the only sample (``first_call_only``)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    repeats = max(min_repeats, min(max_repeats, int(budget_s / max(first, 1e-9))))
    if repeats == 0:  # min_repeats 0 and a first call over budget: that call is the only sample
        return {"median_s": first, "min_s": first, "max_s": first, "repeats": 1, "first_call_only": True}
    return time_call(fn, repeats=repeats, warmup=0)


# ------------------------------------------------------------------------------------- headline formatting


def fmt_seconds(seconds: float | None) -> str:
    """``0.0123`` -> ``"12.3 ms"``."""
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_range(low: float | None, high: float | None, fmt: Callable[[float], str] = fmt_seconds) -> str:
    """``"12.3 ms – 14.1 ms"`` (the spread column)."""
    if low is None or high is None:
        return "—"
    return f"{fmt(low)} – {fmt(high)}"


def row(setting: str, what: str, median: str = "—", spread: str = "—", ratio: str = "—") -> dict:
    """One row of the suite's Markdown table (the suite fills in the benchmark's name)."""
    return {"setting": setting, "what": what, "median": median, "spread": spread, "ratio": ratio}


def timing_row(setting: str, what: str, timing: dict, ratio: str = "—") -> dict:
    """A row from a :func:`time_call` dict."""
    return row(
        setting, what, fmt_seconds(timing.get("median_s")), fmt_range(timing.get("min_s"), timing.get("max_s")), ratio
    )


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


class SelectionError(ValueError):
    """A benchmark was asked for agents, blocks or experiments it does not have."""


def main(name: str, run: Callable[[bool], dict]) -> None:
    """Command-line entry for one benchmark module."""
    parser = argparse.ArgumentParser(description=f"benchmark: {name}")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes")
    args = parser.parse_args()
    try:
        result = run(args.quick)
    except SelectionError as exc:  # an unknown agent, block or experiment in the environment: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    path = write_result(name, result)
    print(json.dumps(result, indent=2))
    print(f"written: {path}")
