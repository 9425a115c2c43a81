"""Certification throughput: the model-level sampling of a certificate, and ``certify_checkpoint`` end to end.

* **model level**: :func:`~ambs_verify.agents.shield.model_violation_counts` jitted (as
  :func:`~ambs_verify.reports.certify.certify_checkpoint` calls it) on S states × m samples × H imagined steps of a
  fresh Atari-shaped agent per size (debug and small: 64 × 512 × 30; quick: small at 8 × 256 × 30). Reported:
  compile time, wall time per call, **state-samples per second** (S·m / time), imagined steps per second
  (S·m·H / time) and GFLOP/s (XLA's cost analysis of an unrolled lowering).
* **end to end** (full mode; ``BENCH_CERTIFY_E2E=1`` forces it in quick mode, ``0`` skips it): a fresh 300-step
  quickstart run (debug AMBS on ``grid``: random prefill, no updates yet at this budget) trained with
  :func:`~ambs_verify.trainers.loop.train`, then ``certify_checkpoint`` at its final checkpoint with 16 states ×
  256 samples, 4 episodes, 4 audited states × 32 rollouts. Its wall time is mostly XLA compilation (every call
  builds its own jitted functions), so it is reported once, not as a throughput.

``python -m benchmarks.certify_throughput [--quick]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from ambs_verify.agents.shield import model_violation_counts

from .common import fmt_range, fmt_seconds, main, row, smoke, time_adaptive
from .shield_latency import _CACHE, cached_size, flops_of

COST_VAL = 10.0


def settings(quick: bool) -> list[tuple[str, int, int, int]]:
    """(size, states, samples, horizon)."""
    if smoke():
        return [("debug", 8, 64, 10)]
    if quick:
        return [("debug", 64, 512, 30), ("small", 8, 256, 30)]
    return [("debug", 64, 512, 30), ("small", 64, 512, 30)]


def measure(size: str, states: int, samples: int, horizon: int, budget: tuple[int, float, int]) -> dict:
    sz = cached_size(size)
    post = jax.tree.map(lambda x: jnp.resize(x, (states, *x.shape[1:])), sz.post)  # sampled states, tiled

    def counts_fn(agent):
        def counts(wm_params, task_state, posterior, key):
            return model_violation_counts(
                agent.wm, agent.task, wm_params, task_state, posterior, samples, horizon, COST_VAL, key
            )

        return jax.jit(counts)

    args = (sz.params, sz.task, post, jax.random.PRNGKey(3))
    start = time.perf_counter()
    compiled = counts_fn(sz.agent).lower(*args).compile()
    compile_s = time.perf_counter() - start
    max_repeats, budget_s, min_repeats = budget
    timing = time_adaptive(lambda: jax.block_until_ready(compiled(*args)), max_repeats, budget_s, min_repeats)
    flops = flops_of(counts_fn(sz.unrolled).trace(*args))
    t = timing["median_s"]
    return {
        "size": size,
        "states": states,
        "samples": samples,
        "horizon": horizon,
        "compile_s": compile_s,
        **timing,
        "state_samples_per_s": states * samples / t,
        "imagined_steps_per_s": states * samples * horizon / t,
        "flops": flops,
        "gflops_per_s": flops / t / 1e9 if flops else None,
    }


def end_to_end(steps: int = 300) -> dict:
    """Train a fresh quickstart run for ``steps`` agent steps, then certify its final checkpoint (timed)."""
    from ambs_verify.config import resolve
    from ambs_verify.reports.certify import CertifyOptions, certify_checkpoint
    from ambs_verify.rollout.agents import build_agent
    from ambs_verify.trainers.loop import train

    options = CertifyOptions(states=16, samples=256, episodes=4, audit_states=4, rollouts=32)
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp) / "run"
        config = resolve(["quickstart"], {"logdir": str(logdir), "run.steps": steps, "run.progress": False})
        start = time.perf_counter()
        trained = train(config, build_agent(config))
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        cert = certify_checkpoint(logdir, trained.step, options)
        certify_s = time.perf_counter() - start
    return {
        "run": {"configs": ["quickstart"], "steps": trained.step, "updates": trained.updates, "train_s": train_s},
        "options": {
            "spec": cert["spec"]["text"],
            "states": options.states,
            "samples": options.samples,
            "episodes": options.episodes,
            "audit_states": options.audit_states,
            "rollouts": options.rollouts,
        },
        "certify_s": certify_s,
        "verdict": cert["verdict"]["status"],
        "model_states": cert["model"]["states"],
    }


def run(quick: bool) -> dict:
    budget = (3, 6.0, 1) if quick else (7, 20.0, 2)
    rows = []
    for size, states, samples, horizon in settings(quick):
        rows.append(measure(size, states, samples, horizon, budget))
        r = rows[-1]
        print(
            f"{size:7s} {states} states × {samples} samples × H {horizon}: {r['median_s']:.3f} s, "
            f"{r['state_samples_per_s']:.3g} state-samples/s",
            file=sys.stderr,
            flush=True,
        )
    _CACHE.clear()  # the last user of shield_latency's agents: free them before the training benchmarks
    out: dict = {"device": str(jax.devices()[0]), "model_level": rows}
    flag = os.environ.get("BENCH_CERTIFY_E2E", "")
    if flag == "1" or (not quick and not smoke() and flag != "0"):
        out["end_to_end"] = end_to_end()
    else:
        out["end_to_end"] = {
            "skipped": "quick mode: a fresh run and certify_checkpoint cost 25-60 s here, mostly XLA compilation "
            "(BENCH_CERTIFY_E2E=1 forces it)"
        }
    return out


def headline(result: dict) -> list[dict]:
    out = []
    for r in result["model_level"]:
        gflops = f", {r['gflops_per_s']:.1f} GFLOP/s" if r.get("gflops_per_s") else ""
        out.append(
            row(
                f"{r['size']}, {r['states']} states × {r['samples']} samples, H {r['horizon']}",
                f"model-level sampling: {r['state_samples_per_s']:.3g} state-samples/s{gflops}",
                fmt_seconds(r["median_s"]),
                fmt_range(r["min_s"], r["max_s"]),
            )
        )
    e2e = result.get("end_to_end", {})
    if "certify_s" in e2e:
        o = e2e["options"]
        out.append(
            row(
                f"debug grid, {e2e['run']['steps']}-step run",
                f"certify_checkpoint end to end ({o['states']} states × {o['samples']} samples, {o['episodes']} "
                f"episodes, {o['audit_states']} × {o['rollouts']} audit; train {e2e['run']['train_s']:.0f} s; "
                f"verdict {e2e['verdict']})",
                fmt_seconds(e2e["certify_s"]),
            )
        )
    elif "skipped" in e2e:
        out.append(row("end to end", f"skipped: {e2e['skipped']}"))
    return out


if __name__ == "__main__":
    main("certify_throughput", run)
