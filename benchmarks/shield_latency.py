"""Shield decision latency: one jitted call of :func:`~ambs_verify.agents.shield.shield_decision` for N envs.

For each model size (``debug`` and ``small`` on CPU; ``medium``/``large``/``xlarge`` too when a GPU is present or
``--sizes`` asks), m latent traces × H imagined steps per env, 1 and 8 envs: compile time, median wall time per
decision, XLA's FLOP count of the compiled call and the achieved GFLOP/s. The paper's setting is m 512, H 15.

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

from ambs_verify.agents.agent import Agent
from ambs_verify.agents.config import make_config
from ambs_verify.agents.shield import ShieldConfig, shield_decision

from .common import main, time_call


def _flops(compiled) -> float | None:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):  # older JAX returns one dict per device
        analysis = analysis[0] if analysis else {}
    return float(analysis.get("flops", 0.0)) or None


def _setup(size: str, envs: int, samples: int, horizon: int, unroll: bool):
    config = make_config(size)
    rssm = dataclasses.replace(config.world_model.rssm, unroll=unroll)
    config = dataclasses.replace(config, world_model=dataclasses.replace(config.world_model, rssm=rssm))
    agent = Agent(config, {"image": (64, 64, 3)}, 18, True)  # Atari-shaped: the paper's shielded setting
    state = agent.init(jax.random.PRNGKey(0))
    obs = {"image": jnp.zeros((envs, 64, 64, 3), jnp.uint8)}
    post = agent.observe_step(state, agent.initial_carry(state, envs), obs, jnp.ones(envs, bool), jax.random.PRNGKey(1))
    shield = ShieldConfig(samples=samples, horizon=horizon)

    def decide(wm_params, task_state, posterior, key):
        return shield_decision(shield, agent.wm, agent.task, wm_params, task_state, posterior, key)

    args = (state["wm"]["params"], state["task"], post, jax.random.PRNGKey(2))
    return jax.jit(decide).lower(*args), args


def measure(size: str, envs: int, samples: int, horizon: int, repeats: int) -> dict:
    """Compile and time one shield decision for ``envs`` environments of a fresh ``size`` agent.

    FLOPs come from an unrolled copy of the same computation: XLA's cost analysis counts a loop body once.
    """
    lowered, args = _setup(size, envs, samples, horizon, unroll=False)
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    timing = time_call(lambda: jax.block_until_ready(compiled(*args)), repeats)
    flops = _flops(_setup(size, envs, samples, horizon, unroll=True)[0].compile())
    return {
        "size": size,
        "envs": envs,
        "samples": samples,
        "horizon": horizon,
        "compile_s": compile_s,
        **timing,
        "flops": flops,
        "gflops_per_s": flops / timing["median_s"] / 1e9 if flops else None,
    }


def run(quick: bool) -> dict:
    gpu = any(d.platform == "gpu" for d in jax.devices())
    sizes = os.environ.get("SHIELD_SIZES")
    default = ["debug", "small", "medium", "large", "xlarge"] if gpu else ["debug", "small"]
    sizes = sizes.split(",") if sizes else default
    repeats = 3 if quick else 7
    rows = []
    for size in sizes:
        for envs in (1, 8):
            for samples, horizon in ((512, 15),) if quick else ((64, 15), (512, 15), (1024, 15), (512, 30)):
                rows.append(measure(size, envs, samples, horizon, repeats))
                print(rows[-1], file=sys.stderr, flush=True)
    return {"device": str(jax.devices()[0]), "rows": rows}


if __name__ == "__main__":
    main("shield_latency", run)
