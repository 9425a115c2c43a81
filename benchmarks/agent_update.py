"""Jitted world-model + actor-critic update of the AMBS DreamerV3 agent: compile time, median update time,
parameter counts per size preset, achieved GFLOP/s (DESIGN.md §8) and the peak memory of the training process.

The update is the full learner step (world model, safe behaviour, task behaviour with its twin cost critic) on
the reference batch (B 16 x T 64) of 64 x 64 x 3 images with 18 discrete actions (Atari). FLOPs come from
XLA's cost analysis. XLA counts a while loop's body once, so the FLOPs are taken from a lowering with the
time scans unrolled (``RSSMConfig.unroll``), which counts every step; the timed function keeps the scans.

Each size runs in a fresh subprocess (``python -m benchmarks.agent_update --child SIZE``), so that its peak
resident set size (``VmHWM``, recorded after import, init, compilation and the timed updates, before the FLOP
count's unrolled lowering) is that size's training step alone: ``peak_rss_mib``. On a GPU
the device's ``peak_bytes_in_use`` is reported too. ``AGENT_BENCH_INPROCESS=1`` times in this process instead
(no memory figures).

``python -m benchmarks.agent_update [--quick]`` (CPU: debug and small, medium too in full mode; with a GPU debug
to xlarge). Quick mode times small with its first compiled call only and skips the untimed sizes' FLOP counts.
``AGENT_BENCH_SIZES=debug,small,medium`` overrides the sizes; ``AGENT_BENCH_REPEATS`` the timed repeats.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import jax

from ambs_verify.agents import Agent
from ambs_verify.rollout.agents import MODEL_SIZES, size_config

try:  # run as a module (python -m benchmarks.agent_update) or as a script with PYTHONPATH=.
    from benchmarks.common import fmt_range, fmt_seconds, main, on_gpu, row, time_adaptive
except ImportError:  # pragma: no cover
    from common import fmt_range, fmt_seconds, main, on_gpu, row, time_adaptive  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent

OBS_SPACE = {"image": (64, 64, 3)}
ACT_DIM = 18
# DreamerV3 (2023) published model sizes, in millions of parameters.
REFERENCE_M = {"small": 18, "medium": 37, "large": 77, "xlarge": 200}


def _flops_unrolled(cfg, batch_size: int, length: int) -> float | None:
    rssm = dataclasses.replace(cfg.world_model.rssm, unroll=True)
    cfg_u = cfg.replace(world_model=dataclasses.replace(cfg.world_model, rssm=rssm))
    agent = Agent(cfg_u, OBS_SPACE, ACT_DIM, True)
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    batch = jax.eval_shape(lambda: agent.dummy_batch(batch_size, length))
    traced = jax.jit(agent.train_step).trace(state, batch, jax.random.PRNGKey(1))
    try:  # FLOPs do not depend on the platform; the CPU lowering has a pre-compilation cost analysis
        lowered = traced.lower(lowering_platforms=("cpu",))
    except Exception:  # pragma: no cover - older/newer JAX without lowering_platforms
        lowered = traced.lower()
    return _flops(lowered.cost_analysis())


def _flops(analysis) -> float | None:
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else None
    if not analysis:
        return None
    return float(analysis.get("flops", 0.0)) or None


def _peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process image alone. (``ru_maxrss``
    is not: Linux carries it across ``fork`` and ``exec``, so a child of a 4 GiB parent starts at 4 GiB.)
    Elsewhere ``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def _device_peak_bytes() -> int | None:
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # CPU devices have no memory statistics
        return None
    return stats.get("peak_bytes_in_use")


def bench_size(
    size: str,
    repeats: int,
    batch_size: int = 16,
    length: int = 64,
    dtype: str = "float32",
    budget_s: float | None = None,
    min_repeats: int = 2,
) -> dict:
    """Compile and time ``size``'s learner step; ``budget_s`` makes the repeats adaptive (``time_adaptive``)."""
    rss = {"after_import": _peak_rss_mib()}
    cfg = size_config(size, compute_dtype=dtype)
    agent = Agent(cfg, OBS_SPACE, ACT_DIM, True)
    shapes = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    counts = agent.param_counts(shapes)
    state = agent.init(jax.random.PRNGKey(0))
    batch = agent.dummy_batch(batch_size, length)
    rss["after_init"] = _peak_rss_mib()
    step = agent.jit_train_step()
    t0 = time.perf_counter()
    lowered = step.lower(state, batch, jax.random.PRNGKey(1))
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    rss["after_compile"] = _peak_rss_mib()
    flops_loop = _flops(compiled.cost_analysis())
    holder = {"state": state, "i": 0}

    def call():
        holder["i"] += 1
        holder["state"], metrics = compiled(holder["state"], batch, jax.random.PRNGKey(holder["i"]))
        jax.block_until_ready(metrics)

    timing = time_adaptive(call, repeats, budget_s if budget_s is not None else float("inf"), min_repeats)
    rss["after_updates"] = _peak_rss_mib()
    device_peak = _device_peak_bytes()
    flops = _flops_unrolled(cfg, batch_size, length)
    median = timing["median_s"]
    out = {
        "size": size,
        "compute_dtype": dtype,
        "batch": [batch_size, length],
        "obs": OBS_SPACE,
        "act_dim": ACT_DIM,
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "update": timing,
        "flops_per_update": flops,
        "flops_loop_body_once": flops_loop,
        "achieved_gflops": (flops / median / 1e9) if flops else None,
        "params": counts,
        "params_m": {"total": counts["total"] / 1e6, "dreamerv3_part": counts["dreamerv3"] / 1e6},
        "reference_params_m": REFERENCE_M.get(size),
        "peak_rss_mib": rss["after_updates"],
        "peak_rss_mib_stages": rss,
        "updates_run": holder["i"],
    }
    if device_peak is not None:
        out["device_peak_mib"] = device_peak / 2**20
    return out


def _child(argv: list[str]) -> None:
    """``--child SIZE DTYPE REPEATS BUDGET MIN_REPEATS``: one size's measurement as one JSON line on stdout."""
    size, dtype, repeats, budget, min_repeats = argv
    res = bench_size(size, int(repeats), dtype=dtype, budget_s=float(budget), min_repeats=int(min_repeats))
    print("RESULT " + json.dumps(res), flush=True)


def _in_subprocess(size: str, dtype: str, repeats: int, budget_s: float, min_repeats: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "benchmarks.agent_update", "--child", size, dtype, str(repeats), str(budget_s)]
    proc = subprocess.run([*cmd, str(min_repeats)], cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"child for {size} {dtype} exited {proc.returncode}: {tail}")
    return json.loads(lines[-1][len("RESULT ") :])


def run(quick: bool) -> dict:
    gpu = on_gpu()
    if gpu:
        default = "debug,small,medium,large,xlarge"
    else:
        default = "debug,small" if quick else "debug,small,medium"
    sizes = [s for s in os.environ.get("AGENT_BENCH_SIZES", default).split(",") if s]
    repeats = int(os.environ.get("AGENT_BENCH_REPEATS", "2" if quick else "5"))
    dtypes = ["float32", "bfloat16"] if gpu and not quick else ["float32"]
    if os.environ.get("AGENT_BENCH_DTYPES"):
        dtypes = os.environ["AGENT_BENCH_DTYPES"].split(",")
    inprocess = os.environ.get("AGENT_BENCH_INPROCESS", "") not in ("", "0")
    # Quick: as many repeats as fit in 8 s after the warm-up call, and a slow size's first compiled call alone.
    budget_s, min_repeats = (8.0, 0) if quick else (90.0, 2)
    results = []
    for size in sizes:
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown size {size!r}")
        for dtype in dtypes if size != "debug" else ["float32"]:
            try:
                least = max(min_repeats, 2) if size == "debug" else min_repeats  # debug is cheap: a spread
                if inprocess:
                    res = bench_size(size, repeats, dtype=dtype, budget_s=budget_s, min_repeats=least)
                else:
                    res = _in_subprocess(size, dtype, repeats, budget_s, least)
            except Exception as exc:  # one failing size must not hide the others
                print(f"{size} {dtype}: failed: {type(exc).__name__}: {str(exc)[:500]}", flush=True)
                results.append({"size": size, "compute_dtype": dtype, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                continue
            print(
                f"{size:7s} {dtype:9s} params {res['params_m']['total']:8.2f}M "
                f"(DreamerV3 part {res['params_m']['dreamerv3_part']:.2f}M, ref {res['reference_params_m']}M)  "
                f"compile {res['compile_s']:6.1f}s  update {res['update']['median_s']:.3f}s  "
                f"{res['achieved_gflops'] or float('nan'):.1f} GFLOP/s  peak RSS {res['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
            results.append(res)
    # FLOPs and parameter counts of the sizes not timed here (lowering only: no memory, no compilation), so
    # that times measured elsewhere (e.g. on a GPU) can be turned into GFLOP/s. Skipped in quick mode.
    untimed = {}
    for size in [] if quick else MODEL_SIZES:
        if size in sizes:
            continue
        cfg = size_config(size)
        agent = Agent(cfg, OBS_SPACE, ACT_DIM, True)
        counts = agent.param_counts(jax.eval_shape(agent.init, jax.random.PRNGKey(0)))
        untimed[size] = {"flops_per_update": _flops_unrolled(cfg, 16, 64), "params": counts}
        print(f"{size:7s} (untimed) FLOPs/update {untimed[size]['flops_per_update'] or float('nan'):.3e}", flush=True)
    return {
        "backend": jax.default_backend(),
        "subprocess_per_size": not inprocess,
        "results": results,
        "untimed": untimed,
    }


def headline(result: dict) -> list[dict]:
    """Suite table rows: update time per size and the peak RSS of its training process."""
    out = []
    for r in result["results"]:
        setting = f"{r['size']}, {r['compute_dtype']}"
        if "error" in r:
            out.append(row(setting, f"FAILED: {r['error'].splitlines()[0][:120]}"))
            continue
        u = r["update"]
        b, t = r["batch"]
        gflops = f", {r['achieved_gflops']:.1f} GFLOP/s" if r.get("achieved_gflops") else ""
        note = " (first call only)" if u.get("first_call_only") else ""
        what = f"WM + actor-critic update B{b}×T{t}, {r['params_m']['total']:.2f}M params{gflops}{note}"
        out.append(row(setting, what, fmt_seconds(u["median_s"]), fmt_range(u["min_s"], u["max_s"])))
        if r.get("peak_rss_mib") is not None:
            dev = f"; device peak {r['device_peak_mib']:.0f} MiB" if r.get("device_peak_mib") is not None else ""
            out.append(
                row(
                    setting,
                    f"peak RSS of the training process ({r['updates_run']} updates){dev}",
                    f"{r['peak_rss_mib']:.0f} MiB",
                )
            )
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        main("agent_update", run)
