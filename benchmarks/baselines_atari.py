"""Model-free baselines on Seaquest: agent steps/s of DQN, Rainbow and IQN on this machine, and compile times.

Each agent runs the real thing at dopamine's network sizes (Nature torso on 84×84×4, 512 hidden units; Rainbow
51 atoms, dueling, noisy; IQN N = N′ = 64, K = 32; batch 32): the labelled ``atari_seaquest`` env with dopamine's
preprocessing (:func:`~ambs_verify.envs.dopamine_atari.make_dopamine_atari`), one jitted
acting call per agent step, replay adds, and one gradient update every 4 agent steps (update period 4) with
prioritized sampling and priority updates for Rainbow. Learning starts after ``warmup`` steps (the replay is
kept small, 50k, to spare memory; capacity does not change the per-step cost). Reported per agent:

* ``steps_per_s``: agent steps per second over ``steps`` timed steps with learning on (the figure of issue 8);
* ``act_ms`` / ``update_ms``: medians of the jitted acting call and of one update (sample + train + priorities);
* ``train_ms``, ``train_gflop``, ``train_gflop_per_s``: the jitted train step alone on a fixed batch, its FLOPs
  from XLA's cost analysis, and the rate achieved (DESIGN.md §8 asks for it next to wall time);
* ``env_steps_per_s``: the preprocessed env alone, random actions;
* ``compile_s``: first-call time of the acting and train functions (trace + XLA compile);
* ``trainer``: the same agent through the real trainer (``ambs-verify train --agent NAME --task atari_seaquest``
  with dopamine's preprocessing, one env, :func:`ambs_verify.trainers.loop.train`: driver, episode
  statistics, logging), learning from step ``warmup`` on. ``steps_per_s`` is the median of the trainer's own
  ``steps_per_second`` log records over the windows after the one that holds the train step's compilation.

Run: ``python -m benchmarks.baselines_atari [--quick]``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from ambs_verify.agents.baselines import Learner
from ambs_verify.config import resolve
from ambs_verify.envs.dopamine_atari import make_dopamine_atari
from ambs_verify.rollout.agents import build_agent, build_baseline_agent
from ambs_verify.rollout.driver import key_observation
from ambs_verify.runs import RunDir
from ambs_verify.trainers.loop import train

from .common import main, row, time_call

AGENTS = ("dqn", "rainbow", "iqn")


def _env_rate(steps: int) -> float:
    env = make_dopamine_atari("seaquest")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def bench_agent(name: str, warmup: int, steps: int) -> dict:
    """Time one agent's acting + learning loop on Seaquest (see the module docstring)."""
    env = make_dopamine_atari("seaquest")
    agent = build_baseline_agent(resolve([], {"agent": name, "baselines.min_replay_history": warmup}))
    space = key_observation(env.observation_space)
    learner = Learner(agent, space, env.action_space, num_envs=1, seed=0, replay_capacity=50_000)
    obs, _ = env.reset(seed=0)

    def act() -> np.ndarray:
        return learner.act({agent.obs_key: obs[None]})

    start = time.perf_counter()
    act()
    jax.block_until_ready(learner.state)
    compile_act = time.perf_counter() - start

    def play(n: int) -> int:
        nonlocal obs
        updates = 0
        for _ in range(n):
            action = act()
            nxt, reward, terminated, truncated, _ = env.step(int(action[0]))
            updates += len(learner.observe(obs[None], action, [reward], [terminated], [truncated], nxt[None]))
            obs = env.reset()[0] if terminated or truncated else nxt
        return updates

    play(warmup)  # fill replay up to the learning threshold (no updates yet)
    start = time.perf_counter()
    learner.update()  # first update: compiles the train step
    jax.block_until_ready(learner.state)
    compile_train = time.perf_counter() - start

    start = time.perf_counter()
    updates = play(steps)
    jax.block_until_ready(learner.state)
    elapsed = time.perf_counter() - start

    act_s = time_call(act, repeats=20)
    update = time_call(lambda: jax.block_until_ready(learner.update()), repeats=5)
    batch = learner.replay.sample(agent.config.batch_size)
    for key in ("index", "probability"):
        batch.pop(key)
    key = jax.random.key(1)
    flops = agent._train_fn.lower(learner.state, batch, key).compile().cost_analysis().get("flops", float("nan"))

    def train_only():
        learner.state, metrics = agent.train(learner.state, batch, key)
        jax.block_until_ready(metrics)

    train = time_call(train_only, repeats=5)
    return {
        "steps_per_s": steps / elapsed,
        "timed_steps": steps,
        "updates": updates,
        "act_ms": 1e3 * act_s["median_s"],
        "update_ms": 1e3 * update["median_s"],
        "train_ms": 1e3 * train["median_s"],
        "train_gflop": flops / 1e9,
        "train_gflop_per_s": flops / 1e9 / train["median_s"],
        "compile_s": {"act": compile_act, "train": compile_train},
        "config": {
            "update_period": agent.config.update_period,
            "batch_size": agent.config.batch_size,
            "update_horizon": agent.config.update_horizon,
        },
    }


def bench_trainer(name: str, warmup: int, windows: int, log_every: int) -> dict:
    """Agent steps/s of ``name`` through the real trainer on Seaquest (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = resolve(
            overrides={
                "agent": name,
                "task": "atari_seaquest",
                "env.atari.labels": ["death", "early-surface", "out-of-oxygen"],
                "envs.amount": 1,
                "seed": 0,
                "logdir": str(Path(tmp) / "run"),
                "run.steps": warmup + (windows + 1) * log_every,
                "run.log_every": log_every,
                "run.save_every": 10**9,  # only the final checkpoint, after the last log record
                "run.progress": False,
                "baselines.min_replay_history": warmup,
                "baselines.replay_capacity": 50_000,
            }
        )
        start = time.perf_counter()
        result = train(config, build_agent(config))
        wall = time.perf_counter() - start
        records = [r for r in RunDir(config.logdir).read_metrics() if "steps_per_second" in r]
    timed = [r["steps_per_second"] for r in records if r["step"] > warmup + log_every]
    return {
        "steps_per_s": statistics.median(timed),
        "window_steps_per_s": timed,
        "window_steps": log_every,
        "updates": result.updates,
        "steps": result.step,
        "wall_s": wall,
    }


def run(quick: bool) -> dict:
    warmup, steps = (200, 100) if quick else (1000, 800)
    windows, log_every = (2, 100) if quick else (4, 200)
    result = {"game": "seaquest", "env_steps_per_s": _env_rate(500 if quick else 2000), "agents": {}}
    for name in AGENTS:
        result["agents"][name] = bench_agent(name, warmup, steps)
        result["agents"][name]["trainer"] = bench_trainer(name, warmup, windows, log_every)
    return result


def headline(result: dict) -> list[dict]:
    """Suite table rows: agent steps per second with learning on, per agent (median over trainer windows)."""
    out = []
    for name, a in result["agents"].items():
        tr = a["trainer"]
        windows = tr["window_steps_per_s"]
        out.append(
            row(
                f"{name}, {result['game']}",
                f"agent steps/s through the trainer (loop alone {a['steps_per_s']:.1f}; update {a['update_ms']:.0f} "
                f"ms, {a['train_gflop_per_s']:.0f} GFLOP/s)",
                f"{tr['steps_per_s']:.1f} steps/s",
                f"{min(windows):.1f} – {max(windows):.1f} steps/s" if windows else "—",
            )
        )
    return out


if __name__ == "__main__":
    main("baselines_atari", run)
