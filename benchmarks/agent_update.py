"""Jitted world-model + actor-critic update of the AMBS DreamerV3 agent: compile time, median update time,
parameter counts per size preset, and achieved GFLOP/s (DESIGN.md §8).

The update is the full learner step (world model, safe behaviour, task behaviour with its twin cost critic) on
the reference batch (B 16 x T 64) of 64 x 64 x 3 images with 18 discrete actions (Atari). FLOPs come from
XLA's cost analysis. XLA counts a while loop's body once, so the FLOPs are taken from a lowering with the
time scans unrolled (``RSSMConfig.unroll``), which counts every step; the timed function keeps the scans.

``python -m benchmarks.agent_update [--quick]`` (CPU: debug and small; with a GPU also medium, large, xlarge).
``AGENT_BENCH_SIZES=debug,small,medium`` overrides the sizes; ``AGENT_BENCH_REPEATS`` the timed repeats.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax

from ambs_verify.agents import SIZES, Agent, make_config

try:  # run as a module (python -m benchmarks.agent_update) or as a script with PYTHONPATH=.
    from benchmarks.common import main, time_call
except ImportError:  # pragma: no cover
    from common import main, time_call  # type: ignore[no-redef]

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


def bench_size(size: str, repeats: int, batch_size: int = 16, length: int = 64, dtype: str = "float32") -> dict:
    cfg = make_config(size, compute_dtype=dtype)
    agent = Agent(cfg, OBS_SPACE, ACT_DIM, True)
    shapes = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    counts = agent.param_counts(shapes)
    state = agent.init(jax.random.PRNGKey(0))
    batch = agent.dummy_batch(batch_size, length)
    step = agent.jit_train_step()
    t0 = time.perf_counter()
    lowered = step.lower(state, batch, jax.random.PRNGKey(1))
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    flops_loop = _flops(compiled.cost_analysis())
    flops = _flops_unrolled(cfg, batch_size, length)
    holder = {"state": state, "i": 0}

    def call():
        holder["i"] += 1
        holder["state"], metrics = compiled(holder["state"], batch, jax.random.PRNGKey(holder["i"]))
        jax.block_until_ready(metrics)

    timing = time_call(call, repeats=repeats, warmup=1)
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
    }
    return out


def run(quick: bool) -> dict:
    gpu = jax.default_backend() != "cpu"
    default = "debug,small,medium,large,xlarge" if gpu else "debug,small"
    sizes = [s for s in os.environ.get("AGENT_BENCH_SIZES", default).split(",") if s]
    repeats = int(os.environ.get("AGENT_BENCH_REPEATS", "2" if quick else "5"))
    dtypes = ["float32", "bfloat16"] if gpu and not quick else ["float32"]
    if os.environ.get("AGENT_BENCH_DTYPES"):
        dtypes = os.environ["AGENT_BENCH_DTYPES"].split(",")
    results = []
    for size in sizes:
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}")
        for dtype in dtypes if size != "debug" else ["float32"]:
            try:
                res = bench_size(size, repeats, dtype=dtype)
            except Exception as exc:  # one failing size must not hide the others
                print(f"{size} {dtype}: failed: {type(exc).__name__}: {str(exc)[:500]}", flush=True)
                results.append({"size": size, "compute_dtype": dtype, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                continue
            print(
                f"{size:7s} {dtype:9s} params {res['params_m']['total']:8.2f}M "
                f"(DreamerV3 part {res['params_m']['dreamerv3_part']:.2f}M, ref {res['reference_params_m']}M)  "
                f"compile {res['compile_s']:6.1f}s  update {res['update']['median_s']:.3f}s  "
                f"{res['achieved_gflops'] or float('nan'):.1f} GFLOP/s",
                flush=True,
            )
            results.append(res)
    # FLOPs and parameter counts of the sizes not timed here (lowering only: no memory, no compilation), so
    # that times measured elsewhere (e.g. on a GPU) can be turned into GFLOP/s.
    untimed = {}
    for size in SIZES:
        if size in sizes:
            continue
        cfg = make_config(size)
        agent = Agent(cfg, OBS_SPACE, ACT_DIM, True)
        counts = agent.param_counts(jax.eval_shape(agent.init, jax.random.PRNGKey(0)))
        untimed[size] = {"flops_per_update": _flops_unrolled(cfg, 16, 64), "params": counts}
        print(f"{size:7s} (untimed) FLOPs/update {untimed[size]['flops_per_update'] or float('nan'):.3e}", flush=True)
    return {"backend": jax.default_backend(), "results": results, "untimed": untimed}


if __name__ == "__main__":
    main("agent_update", run)
