"""Atari: the labelled environment's time per agent step against raw ale-py doing the same observation work.

"Raw" is the least work the same observation needs: an ``ALEInterface`` with ALE's own sticky actions
(``repeat_action_probability`` 0.25), 4 ``act`` calls per agent step, the RGB screen of the last two frames,
their max and an OpenCV ``INTER_AREA`` resize to 64×64 (a new game with up to 30 no-op frames when the game
ends). The labelled env (:mod:`ambs_verify.envs.atari`) adds its own sticky actions, per-frame labels for
the game's AMBS labels, info dicts and per-episode counts. Both run uniformly random actions, interleaved in
blocks within one process, and the ratio of the median per-step times is reported (goal ≤ 1.2).

The same run reports, per game, the label counts of ``label_steps`` random-policy steps (10,000; seed 0) of
the labelled env with the game's AMBS labels, as ``ambs-verify envs check atari_<game> --steps 10000 --json``
would.

Run: ``python -m benchmarks.atari_wrapper [--quick]``.
"""

from __future__ import annotations

import statistics
import time

import cv2
import numpy as np
from ale_py import Action, ALEInterface, LoggerMode, roms

from ambs_verify.envs.atari import make
from ambs_verify.rollout.acting import check_env

from .common import fmt_range, fmt_seconds, main, row

GAMES = ("seaquest", "assault", "double_dunk", "enduro", "kung_fu_master")


class RawAle:
    """The minimal ale-py loop producing the same 64×64 observation (see the module docstring)."""

    def __init__(self, game: str, seed: int = 0) -> None:
        ALEInterface.setLoggerMode(LoggerMode.Error)
        self.ale = ALEInterface()
        self.ale.setFloat("repeat_action_probability", 0.25)
        self.ale.setInt("random_seed", seed)
        self.ale.loadROM(roms.get_rom_path(game))
        self.actions = self.ale.getLegalActionSet()
        self.pool = np.zeros((2, 210, 160, 3), dtype=np.uint8)
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        self.ale.reset_game()
        for _ in range(int(self.rng.integers(30))):
            self.ale.act(Action.NOOP)

    def step(self, action: int):
        ale, pool = self.ale, self.pool
        a = self.actions[action]
        reward = 0.0
        for i in range(4):
            reward += ale.act(a)
            if i >= 2:
                ale.getScreenRGB(pool[i - 2])
            if ale.game_over():
                break
        obs = cv2.resize(np.maximum(pool[0], pool[1]), (64, 64), interpolation=cv2.INTER_AREA)
        return obs, reward, ale.game_over()


def _time_block(step, reset, actions) -> float:
    start = time.perf_counter()
    for a in actions:
        if step(a):
            reset()
    return (time.perf_counter() - start) / len(actions)


def compare(game: str, blocks: int, block_steps: int) -> dict:
    """Median seconds per agent step of raw ale-py and of the labelled env, interleaved block by block."""
    raw = RawAle(game)
    raw.reset()
    env = make(game)
    env.reset(seed=0)
    rng = np.random.default_rng(1)

    def raw_step(a):
        return raw.step(a)[2]

    def env_step(a):
        _, _, terminated, truncated, _ = env.step(a)
        return terminated or truncated

    raw_times, env_times = [], []
    _time_block(raw_step, raw.reset, rng.integers(18, size=block_steps))  # warm-up
    _time_block(env_step, env.reset, rng.integers(18, size=block_steps))
    for _ in range(blocks):
        raw_times.append(_time_block(raw_step, raw.reset, rng.integers(18, size=block_steps)))
        env_times.append(_time_block(env_step, env.reset, rng.integers(18, size=block_steps)))
    raw_s, env_s = statistics.median(raw_times), statistics.median(env_times)
    return {
        "labels": list(env.label_names),
        "raw_us_per_step": raw_s * 1e6,
        "env_us_per_step": env_s * 1e6,
        "raw_steps_per_s": 1 / raw_s,
        "env_steps_per_s": 1 / env_s,
        "ratio": env_s / raw_s,
        "env_us_per_step_min": min(env_times) * 1e6,
        "env_us_per_step_max": max(env_times) * 1e6,
        "raw_us_per_step_min": min(raw_times) * 1e6,
        "raw_us_per_step_max": max(raw_times) * 1e6,
        "blocks": blocks,
        "block_steps": block_steps,
    }


def run(quick: bool) -> dict:
    blocks, block_steps, label_steps = (3, 200, 1000) if quick else (15, 400, 10_000)
    result = {"settings": "64x64 RGB, repeat 4, sticky 0.25, up to 30 no-ops, full action set", "games": {}}
    for game in GAMES:
        timing = compare(game, blocks, block_steps)
        env = make(game)
        counts = check_env(env, label_steps, seed=0, policy="random")
        env.close()
        result["games"][game] = {
            **timing,
            "random_policy": {k: counts[k] for k in ("steps", "episodes", "return", "cost_sum", "label_counts")},
        }
    ratios = [g["ratio"] for g in result["games"].values()]
    result["max_ratio"] = max(ratios)
    result["goal_ratio"] = 1.2
    return result


def headline(result: dict) -> list[dict]:
    """Suite table rows: the labelled env's time per agent step per game, and its ratio to raw ale-py."""
    out = []
    for game, g in result["games"].items():
        out.append(
            row(
                f"{game}, {g['blocks']} × {g['block_steps']} steps",
                f"labelled env step (raw ale-py {g['raw_us_per_step']:.0f} µs)",
                fmt_seconds(g["env_us_per_step"] / 1e6),
                fmt_range(g["env_us_per_step_min"] / 1e6, g["env_us_per_step_max"] / 1e6),
                f"env/raw ×{g['ratio']:.3f} (goal ≤ {result['goal_ratio']})",
            )
        )
    return out


if __name__ == "__main__":
    main("atari_wrapper", run)
