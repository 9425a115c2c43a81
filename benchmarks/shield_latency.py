"""Shield decision latency: one jitted call of :func:`~ambs_verify.agents.shield.shield_decision` for N envs.

For each model size (``debug``, ``small`` and ``medium`` on CPU; ``large`` and ``xlarge`` too when JAX's first
device is a GPU; ``SHIELD_SIZES=debug,small`` overrides), m latent traces × H imagined steps per env, 1 and 8
envs (m ∈ {64, 256, 512, 1024}, H ∈ {15, 30}; quick: debug and small at the paper's m 512, H 15):

* compile time and wall time per decision (median, min, max);
* FLOPs per decision from XLA's cost analysis of an unrolled lowering of the same computation (XLA counts a loop
  body once), the achieved GFLOP/s and its fraction of this machine's **f32 matmul ceiling**, measured in the same
  run (before and after the decisions, the better kept) with large jitted square matmuls at default precision, as
  the model's own matmuls. The FLOP count includes elementwise work, so the fraction is a slight overestimate;
* for debug and small, 1 env, H 15: the **sequential rule** (looks at 32, 64, ..., 512 traces; and a look every 32)
  against the fixed m 512 at p = 1 and at p = 0 (eps 0.01 and 0.05): traces drawn and the latency ratios, in one run;
* for 8 envs at H 15, the **paper's per-env loop**: the published code decided env by env, one jitted shield call
  per env and a Python list comprehension averaging each env's violating traces. Here: the same jitted
  ``shield_decision`` on a 1-env posterior, called once per env (posteriors sliced beforehand, which favours the
  loop), then ``[k / m for k in ...]`` on the host; ``paper_loop_ratio`` = loop time / vectorised time (> 1: the
  single vectorised call is faster).

Run: ``python -m benchmarks.shield_latency [--quick]`` (from the repository root; ``PYTHONPATH=.`` on a machine
where the package is not installed).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from ambs_verify.agents.agent import Agent
from ambs_verify.agents.shield import shield_decision
from ambs_verify.config import resolve
from ambs_verify.rollout.agents import shield_config, size_config

from .common import fmt_range, fmt_seconds, main, on_gpu, row, smoke, time_adaptive, time_call

OBS_SPACE = {"image": (64, 64, 3)}  # Atari-shaped: the paper's shielded setting
ACT_DIM = 18
PAPER = (512, 15)  # m, H


def _flops(analysis) -> float | None:
    if isinstance(analysis, list | tuple):  # older JAX returns one dict per device
        analysis = analysis[0] if analysis else None
    if not analysis:
        return None
    return float(analysis.get("flops", 0.0)) or None


def matmul_ceiling(sizes: tuple[int, ...] | None = None, repeats: int = 5) -> dict:
    """f32 FLOP/s of jitted square matmuls (the best ``n`` and the best repeat): the machine's dense ceiling.

    Default precision, as the model's own matmuls. CPU: n 1024 and 2048; GPU: 4096 and 8192.
    """
    if sizes is None:
        sizes = (4096, 8192) if on_gpu() else (1024, 2048)
    per_n = {}
    for n in sizes:
        ka, kb = jax.random.split(jax.random.PRNGKey(n))
        a = jax.random.normal(ka, (n, n), jnp.float32)
        b = jax.random.normal(kb, (n, n), jnp.float32)
        compiled = jax.jit(jnp.matmul).lower(a, b).compile()
        timing = time_call(lambda c=compiled, a=a, b=b: c(a, b).block_until_ready(), repeats=repeats, warmup=2)
        flops = 2.0 * n**3
        per_n[n] = {
            "n": n,
            "flops": flops,
            **timing,
            "gflops_per_s": flops / timing["min_s"] / 1e9,  # the best repeat
            "gflops_per_s_median": flops / timing["median_s"] / 1e9,
        }
    best = max(per_n.values(), key=lambda r: r["gflops_per_s"])
    return {**best, "dtype": "float32", "sizes": {str(n): r for n, r in per_n.items()}}


class _Size:
    """One size's agent (scanned and unrolled RSSM), parameters and posteriors."""

    def __init__(self, size: str, max_envs: int) -> None:
        self.size = size
        config = size_config(size)
        self.agent = Agent(config, OBS_SPACE, ACT_DIM, True)
        rssm = dataclasses.replace(config.world_model.rssm, unroll=True)
        unrolled = dataclasses.replace(config, world_model=dataclasses.replace(config.world_model, rssm=rssm))
        self.unrolled = Agent(unrolled, OBS_SPACE, ACT_DIM, True)
        state = self.agent.init(jax.random.PRNGKey(0))
        self.params, self.task = state["wm"]["params"], state["task"]
        obs = {"image": jnp.zeros((max_envs, *OBS_SPACE["image"]), jnp.uint8)}
        carry = self.agent.initial_carry(state, max_envs)
        observe = jax.jit(self.agent.observe_step)  # eager, the encoder alone takes seconds
        self.post = observe(state, carry, obs, jnp.ones(max_envs, bool), jax.random.PRNGKey(1))

    def posterior(self, envs: int):
        return jax.tree.map(lambda x: x[:envs], self.post)

    def decide_fn(self, samples: int, horizon: int, unrolled: bool = False, **changes):
        agent = self.unrolled if unrolled else self.agent
        paper = shield_config(resolve([], {"safety.cost_val": 10.0}))  # the paper's shield (defaults block), C = 10
        shield = dataclasses.replace(paper, samples=samples, imag_horizon=horizon, **changes)

        def decide(wm_params, task_state, posterior, key):
            return shield_decision(shield, agent.wm, agent.task, wm_params, task_state, posterior, key)

        return jax.jit(decide)


_CACHE: dict[str, _Size] = {}


def cached_size(size: str) -> _Size:
    """A :class:`_Size` with 8 env posteriors, kept for the debug and small sizes (other benchmarks reuse them)."""
    if size in _CACHE:
        return _CACHE[size]
    sz = _Size(size, max_envs=8)
    if size in ("debug", "small"):
        _CACHE[size] = sz
    return sz


def flops_of(traced) -> float | None:
    """FLOPs of a traced jitted function from XLA's cost analysis of its (CPU) lowering."""
    try:  # FLOPs do not depend on the platform; the CPU lowering has a pre-compilation cost analysis
        return _flops(traced.lower(lowering_platforms=("cpu",)).cost_analysis())
    except Exception:  # pragma: no cover - a JAX without lowering_platforms
        return _flops(traced.lower().compile().cost_analysis())


def measure(sz: _Size, envs: int, samples: int, horizon: int, budget: tuple[int, float, int], loop: bool) -> dict:
    """Compile and time one decision for ``envs`` environments; optionally the paper's per-env loop too."""
    post = sz.posterior(envs)
    key = jax.random.PRNGKey(2)
    args = (sz.params, sz.task, post, key)
    start = time.perf_counter()
    compiled = sz.decide_fn(samples, horizon).lower(*args).compile()
    compile_s = time.perf_counter() - start
    max_repeats, budget_s, min_repeats = budget
    timing = time_adaptive(lambda: jax.block_until_ready(compiled(*args)), max_repeats, budget_s, min_repeats)
    flops = flops_of(sz.decide_fn(samples, horizon, unrolled=True).trace(*args))
    out = {
        "size": sz.size,
        "envs": envs,
        "samples": samples,
        "horizon": horizon,
        "compile_s": compile_s,
        **timing,
        "us_per_env_decision": timing["median_s"] / envs * 1e6,
        "flops": flops,
        "gflops_per_s": flops / timing["median_s"] / 1e9 if flops else None,
    }
    if loop and envs > 1:
        one = sz.decide_fn(samples, horizon).lower(sz.params, sz.task, sz.posterior(1), key).compile()
        singles = [jax.tree.map(lambda x, i=i: x[i : i + 1], post) for i in range(envs)]
        keys = list(jax.random.split(key, envs))

        def paper_loop():
            outs = [one(sz.params, sz.task, p, k) for p, k in zip(singles, keys, strict=True)]
            return [float(np.asarray(o["violations"])[0]) / samples for o in outs]  # per-env average on the host

        loop_timing = time_adaptive(paper_loop, max_repeats, budget_s, min_repeats)
        out["paper_loop"] = loop_timing
        out["paper_loop_ratio"] = loop_timing["median_s"] / timing["median_s"]
    return out


def always_violating(params: dict) -> dict:
    """World-model parameters whose cost head predicts C = 10 everywhere (all its mass on that bin): every imagined
    trace violates, p = 1, as far from eps as a state can be."""
    from ambs_verify.agents.distributions import symlog, twohot_bins

    bins = np.asarray(twohot_bins())
    bias = np.full(bins.shape, -30.0, np.float32)
    bias[int(np.argmin(np.abs(bins - float(symlog(jnp.float32(10.0))))))] = 30.0
    out = jax.tree.map(lambda x: x, params)
    dense = out["cost"]["out"]["Dense_0"]
    dense["bias"], dense["kernel"] = jnp.asarray(bias), jnp.zeros_like(dense["kernel"])
    return out


SEQUENTIAL_VARIANTS = {"estimate": {}, "sequential": {"growth": 2}, "sequential_every_32": {"growth": 1}}


def sequential_rows(sz: _Size, budget: tuple[int, float, int]) -> list[dict]:
    """Fixed m 512 against the sequential rule (first look 32, up to 512, delta 0.01), H 15, 1 env, timed in one run,
    with the default growing looks (32, 64, ..., 512) and with a look every 32 traces: at p = 1 (a cost head that
    predicts a violation everywhere; decided "unsafe" at the first look, eps 0.01) and at the untrained model's
    p = 0 with eps 0.05 (decided "safe") and eps 0.01 (undecided: all 512 traces)."""
    post, key = sz.posterior(1), jax.random.PRNGKey(2)
    cases = [("p=1, eps 0.01", always_violating(sz.params), 0.01), ("p=0, eps 0.05", sz.params, 0.05)]
    cases.append(("p=0, eps 0.01", sz.params, 0.01))
    rows = []
    for name, params, eps in cases:
        args = (params, sz.task, post, key)
        timings, traces = {}, {}
        for variant, changes in SEQUENTIAL_VARIANTS.items():
            rule = "estimate" if variant == "estimate" else "sequential"
            compiled = sz.decide_fn(512, 15, rule=rule, eps=eps, batch=32, **changes).lower(*args).compile()
            timings[variant] = time_adaptive(lambda c=compiled, a=args: jax.block_until_ready(c(*a)), *budget)
            traces[variant] = int(np.asarray(compiled(*args)["samples"])[0])
        fixed = timings["estimate"]["median_s"]
        rows.append(
            {
                "size": sz.size,
                "case": name,
                "traces": traces,
                "fixed_s": fixed,
                "sequential_s": timings["sequential"]["median_s"],
                "speedup": fixed / timings["sequential"]["median_s"],
                "every_32_s": timings["sequential_every_32"]["median_s"],
                "every_32_speedup": fixed / timings["sequential_every_32"]["median_s"],
            }
        )
        r = rows[-1]
        print(
            f"{sz.size:7s} sequential {name}: {traces['sequential']} traces, {r['sequential_s'] * 1e3:.1f} ms "
            f"(every 32: {r['every_32_s'] * 1e3:.1f} ms) against fixed 512 {fixed * 1e3:.1f} ms (x{r['speedup']:.2f})",
            file=sys.stderr,
            flush=True,
        )
    return rows


def settings(quick: bool) -> list[tuple[int, int, int]]:
    """(envs, m, H) to measure per size."""
    if quick or smoke():
        return [(envs, *PAPER) for envs in (1, 8)]
    return [(envs, m, h) for h in (15, 30) for m in (64, 256, 512, 1024) for envs in (1, 8)]


def sizes(quick: bool) -> list[str]:
    if os.environ.get("SHIELD_SIZES"):
        return [s for s in os.environ["SHIELD_SIZES"].split(",") if s]
    if smoke():
        return ["debug"]
    if on_gpu():
        return ["debug", "small", "medium", "large", "xlarge"]
    return ["debug", "small"] if quick else ["debug", "small", "medium"]


def run(quick: bool) -> dict:
    budget = (3, 4.0, 1) if quick else (7, 15.0, 2)  # max repeats, seconds, min repeats (after one warm-up)
    ceiling_sizes = (256, 512) if smoke() else None
    before = matmul_ceiling(ceiling_sizes, repeats=3 if quick else 7)
    print(f"f32 matmul ceiling: {before['gflops_per_s']:.1f} GFLOP/s (n {before['n']})", file=sys.stderr, flush=True)
    rows, sequential = [], []
    for size in sizes(quick):
        sz = cached_size(size)
        if size in ("debug", "small"):
            sequential += sequential_rows(sz, budget)
        for envs, samples, horizon in settings(quick):
            rows.append(measure(sz, envs, samples, horizon, budget, loop=envs > 1 and horizon == 15))
            res = rows[-1]
            print(
                f"{size:7s} envs {envs} m {samples:4d} H {horizon}: {res['median_s'] * 1e3:9.2f} ms"
                f"  {res['gflops_per_s'] or float('nan'):7.1f} GFLOP/s"
                + (f"  paper loop x{res['paper_loop_ratio']:.2f}" if "paper_loop_ratio" in res else ""),
                file=sys.stderr,
                flush=True,
            )
        del sz
    # Measured again at the end and the better of the two kept: on a shared machine one of them may be crowded.
    after = matmul_ceiling(ceiling_sizes, repeats=3 if quick else 7)
    ceiling = max(before, after, key=lambda r: r["gflops_per_s"])
    ceiling = {**ceiling, "gflops_per_s_before": before["gflops_per_s"], "gflops_per_s_after": after["gflops_per_s"]}
    for res in rows:
        if res["gflops_per_s"]:
            res["fraction_of_ceiling"] = res["gflops_per_s"] / ceiling["gflops_per_s"]
    return {"device": str(jax.devices()[0]), "matmul_ceiling": ceiling, "rows": rows, "sequential": sequential}


def headline(result: dict) -> list[dict]:
    """Suite table rows: the matmul ceiling and every setting at the paper's m 512 (the JSON has the rest)."""
    c = result["matmul_ceiling"]
    out = [
        row(
            f"f32 matmul {c['n']}²",
            f"ceiling {c['gflops_per_s']:.1f} GFLOP/s (best repeat; before/after the decisions "
            f"{c.get('gflops_per_s_before', 0):.0f}/{c.get('gflops_per_s_after', 0):.0f})",
            fmt_seconds(c["median_s"]),
            fmt_range(c["min_s"], c["max_s"]),
        )
    ]
    for r in result["rows"]:
        if r["samples"] != PAPER[0]:
            continue
        ratios = []
        if r.get("fraction_of_ceiling") is not None:
            ratios.append(f"{100 * r['fraction_of_ceiling']:.0f}% of ceiling")
        if "paper_loop_ratio" in r:
            ratios.append(f"paper loop/vectorised ×{r['paper_loop_ratio']:.2f}")
        gflop = f", {r['flops'] / 1e9:.3g} GFLOP" if r.get("flops") else ""
        out.append(
            row(
                f"{r['size']}, {r['envs']} env{'s' if r['envs'] > 1 else ''}, m {r['samples']}, H {r['horizon']}",
                f"decision{gflop}",
                fmt_seconds(r["median_s"]),
                fmt_range(r["min_s"], r["max_s"]),
                "; ".join(ratios) or "—",
            )
        )
    for r in result.get("sequential", []):
        out.append(
            row(
                f"{r['size']}, 1 env, H 15, sequential rule, {r['case']}",
                f"{r['traces']['sequential']} traces against 512",
                fmt_seconds(r["sequential_s"]),
                f"fixed {fmt_seconds(r['fixed_s'])}; a look every 32 {fmt_seconds(r['every_32_s'])}",
                f"fixed/sequential ×{r['speedup']:.2f} (every 32: ×{r['every_32_speedup']:.2f})",
            )
        )
    return out


if __name__ == "__main__":
    main("shield_latency", run)
