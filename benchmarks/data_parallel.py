"""The data-parallel learner (``jax.devices``) on this machine: one train step and one shield decision on one
device against the same on two, in one child process that splits the host CPU into two devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``), so both settings run in the same run.

``python -m benchmarks.data_parallel [--quick]``: the quickstart's AMBS learner (gridnet model, the grid's one-hot
observation of 36 cells, 4 actions, batch 16 x 32) and its shield (4 envs x 512 traces of 30 steps); full mode adds
the ``small`` size (batch 16 x 64). On a CPU two host devices share the same cores, so the ratio measures what the
split costs or gains there, not the scaling across accelerators the key is for.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

from benchmarks.common import fmt_seconds, main, row, smoke, time_call

SETTINGS = {  # name -> (config blocks, batch size, batch length)
    "quickstart": (["quickstart"], 16, 32),
    "small": (["quickstart", "small"], 16, 64),
}
ENVS, SAMPLES = 4, 512


def _measure(blocks: list[str], batch_size: int, length: int, repeats: int) -> dict:
    """Median seconds of a train step and a shield decision, on device 0 alone and split over both."""
    import dataclasses

    import jax

    from ambs_verify.agents import Agent
    from ambs_verify.agents.sharding import DataParallel
    from ambs_verify.agents.shield import shield_decision
    from ambs_verify.config import resolve
    from ambs_verify.rollout.agents import agent_config, shield_config

    config = resolve(blocks, {"shield.samples": SAMPLES})
    agent = Agent(agent_config(config), {"vec": (36,)}, 4, True)
    shield = dataclasses.replace(shield_config(config), samples=SAMPLES)
    parallel = DataParallel.over(jax.devices()[:2])
    host = jax.device_get(agent.init(jax.random.PRNGKey(0)))
    batch = jax.device_get(agent.dummy_batch(batch_size, length))
    posterior = jax.device_get(agent.wm.initial_state(host["wm"]["params"], ENVS))
    key = jax.random.PRNGKey(1)

    def decide(state, posterior, key):
        return shield_decision(shield, agent.wm, agent.task, state["wm"]["params"], state["task"], posterior, key)

    out = {}
    for name, par in (("one", None), ("two", parallel)):
        state = jax.device_put(host, jax.devices()[0]) if par is None else par.replicate(host)
        step = agent.jit_train_step(donate=False, parallel=par)
        act = jax.jit(decide)
        with par.active() if par is not None else contextlib.nullcontext():
            out[f"update_{name}_s"] = time_call(
                lambda s=step, st=state: jax.block_until_ready(s(st, batch, key)), repeats
            )["median_s"]
            out[f"shield_{name}_s"] = time_call(
                lambda a=act, st=state: jax.block_until_ready(a(st, posterior, key)), repeats
            )["median_s"]
    out["update_speedup"] = out["update_one_s"] / out["update_two_s"]
    out["shield_speedup"] = out["shield_one_s"] / out["shield_two_s"]
    return out


def run(quick: bool) -> dict:
    names = ["quickstart"] if quick or smoke() else ["quickstart", "small"]
    repeats = 2 if smoke() else 5
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = {"devices": 2, "envs": ENVS, "samples": SAMPLES}
    for name in names:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.data_parallel", "--child", name, str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"the {name} child failed: {done.stderr.strip().splitlines()[-1:]}")
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def headline(result: dict) -> list[dict]:
    rows = []
    for name in SETTINGS:
        if name not in result:
            continue
        r, (_, b, t) = result[name], SETTINGS[name]
        rows.append(
            row(
                f"{name}, batch {b} x {t}, 2 host CPU devices",
                "AMBS train step, split over 2 devices (1 device)",
                fmt_seconds(r["update_two_s"]),
                f"1 device {fmt_seconds(r['update_one_s'])}",
                f"1 / 2 devices ×{r['update_speedup']:.2f}",
            )
        )
        rows.append(
            row(
                f"{name}, {result['envs']} envs x {result['samples']} traces, 2 host CPU devices",
                "shield decision, traces split over 2 devices (1 device)",
                fmt_seconds(r["shield_two_s"]),
                f"1 device {fmt_seconds(r['shield_one_s'])}",
                f"1 / 2 devices ×{r['shield_speedup']:.2f}",
            )
        )
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        name, repeats = sys.argv[2], int(sys.argv[3])
        blocks, batch_size, length = SETTINGS[name]
        print(json.dumps(_measure(blocks, batch_size, length, repeats)))
    else:
        main("data_parallel", run)
