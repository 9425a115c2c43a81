"""Safety Gym adapter overhead against safety-gymnasium's raw ``Builder``, and which tasks build and step.

Apples to apples, per agent step:

- **vector**: ``make("SafetyPointGoal1-v0")`` (repeat 2: two raw steps, cost binarisation, labels, float32 obs)
  against two ``Builder.step`` calls on the same task, seed and actions. Goal: adapter ≤ 1.1× raw time per step.
- **vision** (64×64 RGB): the adapter's image observation (our ``mujoco.Renderer``, one render per agent step)
  against the raw Builder with ``observe_vision`` (safety-gymnasium's renderer, one render per raw step), both at
  repeat 2 (two raw steps) and at repeat 1 (one raw step and one render each: the same rendering work).

Timings are medians over repeated blocks of agent steps, adapter and raw alternating within one run; resets are
outside the timed blocks. The task sweep builds every id of ``task_ids()``, resets it and steps it.

Run: ``python -m benchmarks.safety_gym_wrapper [--quick]``.
"""

from __future__ import annotations

import os
import statistics
import time
from importlib import metadata

import numpy as np

from ambs_verify.envs.safety_gym import build_builder, make, task_ids

from .common import fmt_range, fmt_seconds, main, row

TASK = "SafetyPointGoal1-v0"


def _median_step_seconds(step, reset, actions: np.ndarray) -> float:
    reset()
    start = time.perf_counter()
    for a in actions:
        step(a)
    return (time.perf_counter() - start) / len(actions)


def _compare(adapter, raw, raw_steps_per_agent_step: int, n_steps: int, repeats: int) -> dict:
    """Median seconds per agent step of the adapter and of the raw builder, alternating blocks."""
    rng = np.random.default_rng(0)
    adapter_s, raw_s = [], []

    def raw_step(a):
        for _ in range(raw_steps_per_agent_step):
            raw.step(a)

    for i in range(repeats + 1):  # the first round warms up (renderers, caches) and is dropped
        actions = rng.uniform(-1, 1, (n_steps, 2))
        blocks = [
            (adapter_s, lambda a: adapter.step(a), lambda seed=i: adapter.reset(seed=seed)),
            (raw_s, raw_step, lambda seed=i: raw.reset(seed=seed)),
        ]
        for samples, step, reset in blocks if i % 2 == 0 else blocks[::-1]:
            seconds = _median_step_seconds(step, reset, actions)
            if i:
                samples.append(seconds)
    adapter_med, raw_med = statistics.median(adapter_s), statistics.median(raw_s)
    return {
        "adapter_s_per_step": adapter_med,
        "raw_s_per_step": raw_med,
        "adapter_steps_per_s": 1 / adapter_med,
        "raw_steps_per_s": 1 / raw_med,
        "ratio_adapter_over_raw": adapter_med / raw_med,
        "adapter_s_per_step_min": min(adapter_s),
        "adapter_s_per_step_max": max(adapter_s),
        "agent_steps_per_block": n_steps,
        "blocks": repeats,
    }


def _raw_vision_builder():
    config = {
        "agent_name": "Point",
        "observe_vision": True,
        "observation_flatten": False,
        "vision_env_conf.vision_size": (64, 64),
    }
    return build_builder(TASK, config)


def _sweep(ids: list[str], steps: int) -> dict:
    """Build, reset and step each task; record what fails."""
    ok, failed = {}, {}
    for task_id in ids:
        try:
            start = time.perf_counter()
            env = make(task_id)
            env.reset(seed=0)
            built = time.perf_counter() - start
            env.action_space.seed(0)
            start = time.perf_counter()
            for _ in range(steps):
                _, _, term, trunc, _ = env.step(env.action_space.sample())
                if term or trunc:
                    env.reset()
            ok[task_id] = {
                "build_and_reset_s": round(built, 3),
                "agent_steps_per_s": round(steps / (time.perf_counter() - start), 1),
                "labels": list(env.labels),
            }
            env.close()
        except Exception as exc:  # the sweep reports every failure instead of stopping at the first
            failed[task_id] = f"{type(exc).__name__}: {exc}"
    return {"ok": ok, "failed": failed, "n_ok": len(ok), "n_failed": len(failed), "steps_each": steps}


def run(quick: bool) -> dict:
    n_steps, repeats = (100, 3) if quick else (250, 9)
    versions = {p: metadata.version(p) for p in ("safety-gymnasium", "mujoco", "gymnasium", "numpy")}
    result: dict = {"task": TASK, "versions": versions, "MUJOCO_GL": os.environ.get("MUJOCO_GL")}

    result["vector_repeat2"] = _compare(make(TASK), build_builder(TASK, {"agent_name": "Point"}), 2, n_steps, repeats)
    raw_vision = _raw_vision_builder()
    vision_steps = max(20, n_steps // 5)
    result["vision_repeat2"] = _compare(make(TASK, observation="image"), raw_vision, 2, vision_steps, repeats)
    result["vision_repeat1"] = _compare(make(TASK, observation="image", repeat=1), raw_vision, 1, vision_steps, repeats)
    ids = task_ids()
    if quick:
        ids = ["SafetyPointGoal1-v0", "SafetyCarButton2-v0", "SafetyDoggoPush1-v0", "SafetyAntCircle0-v0"]
    result["tasks"] = _sweep(ids, steps=10)
    return result


def headline(result: dict) -> list[dict]:
    """Suite table rows: the adapter's time per agent step against the raw Builder; the task sweep."""
    out = []
    for key, label in (
        ("vector_repeat2", "vector obs, repeat 2"),
        ("vision_repeat2", "64×64 vision, repeat 2"),
        ("vision_repeat1", "64×64 vision, repeat 1"),
    ):
        c = result[key]
        out.append(
            row(
                f"{result['task']}, {label}",
                f"adapter step (raw Builder {fmt_seconds(c['raw_s_per_step'])})",
                fmt_seconds(c["adapter_s_per_step"]),
                fmt_range(c.get("adapter_s_per_step_min"), c.get("adapter_s_per_step_max")),
                f"adapter/raw ×{c['ratio_adapter_over_raw']:.3f}",
            )
        )
    t = result["tasks"]
    out.append(
        row(
            f"{t['n_ok'] + t['n_failed']} tasks",
            f"build + reset + {t['steps_each']} steps: {t['n_ok']} ok, {t['n_failed']} failed",
        )
    )
    return out


if __name__ == "__main__":
    main("safety_gym_wrapper", run)
