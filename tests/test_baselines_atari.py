"""Dopamine's Atari preprocessing on the labelled env: options, frame stack, untouched costs/labels, replay stacks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from ambs_verify.agents.baselines.prioritized_replay import PrioritizedReplay
from ambs_verify.envs.dopamine_atari import DOPAMINE_ATARI_OPTIONS, make_dopamine_atari
from ambs_verify.envs.registry import make_env

LABELS = ("death", "early-surface", "out-of-oxygen")


def test_dopamine_preprocessing_passes_costs_and_labels_through():
    env = make_dopamine_atari("seaquest", labels=LABELS, cost_val=10.0)
    raw = make_env("atari_seaquest", **DOPAMINE_ATARI_OPTIONS, labels=LABELS, cost_val=10.0)
    cfg = env.unwrapped.config
    assert (cfg.size, cfg.gray, cfg.repeat, cfg.sticky, cfg.noops) == ((84, 84), True, 4, 0.25, 0)
    assert (cfg.lives, cfg.actions, cfg.max_steps) == ("unused", "minimal", 27_000)
    assert env.observation_space.shape == (84, 84, 4) and env.observation_space.dtype == np.uint8
    obs, info = env.reset(seed=3)
    raw_obs, raw_info = raw.reset(seed=3)
    assert info == raw_info
    np.testing.assert_array_equal(obs[..., :3], 0)  # dopamine's initial stack: zeros + the first frame
    np.testing.assert_array_equal(obs[..., 3], raw_obs[..., 0])
    replay = PrioritizedReplay(512, (84, 84, 4), np.uint8, frame_stack=4, update_horizon=3, prioritized=False)
    rng = np.random.default_rng(0)
    history = [obs]
    costs, violating = 0.0, 0
    for _ in range(300):
        action = int(rng.integers(env.action_space.n))
        nxt, reward, terminated, truncated, info = env.step(action)
        raw_nxt, raw_reward, raw_terminated, raw_truncated, raw_info = raw.step(action)
        assert (reward, terminated, truncated, info) == (raw_reward, raw_terminated, raw_truncated, raw_info)
        np.testing.assert_array_equal(nxt[..., :3], history[-1][..., 1:])
        np.testing.assert_array_equal(nxt[..., 3], raw_nxt[..., 0])
        replay.add(obs[None], [action], [reward], [terminated], [truncated], nxt[None])
        costs += info["cost"]
        violating += any(info["labels"].values())
        history.append(nxt)
        obs = nxt
        if terminated or truncated:
            break
    assert env.label_counts == raw.unwrapped.label_counts
    assert set(info["labels"]) == set(LABELS)
    assert costs == 10.0 * violating  # cost_val · 1[any label] per step, as for the DreamerV3 agents
    # Replay stores one 84×84 frame per step and rebuilds exactly the stacks the agent acted on.
    assert replay.frames.shape[2:] == (84, 84)
    by_step = {h.tobytes(): i for i, h in enumerate(history)}
    batch = replay.sample(32)
    for o, nx in zip(batch["obs"], batch["next_obs"], strict=True):
        i = by_step[o.tobytes()]
        assert nx.tobytes() in by_step and by_step[nx.tobytes()] > i


def test_frame_stack_snapshot_restore():
    env = make_dopamine_atari("seaquest")
    env.reset(seed=0)
    for _ in range(5):
        env.step(1)
    snap = env.snapshot()
    after = [env.step(a) for a in (2, 3, 4)]
    env.restore(snap)
    again = [env.step(a) for a in (2, 3, 4)]
    for (o1, r1, *_, i1), (o2, r2, *_, i2) in zip(after, again, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert (r1, i1) == (r2, i2)
