"""Prioritized replay: sum tree, sampling probabilities, importance weights, n-step returns, frame stacks."""

from __future__ import annotations

import numpy as np
import pytest

from ambs_verify.agents.baselines.prioritized_replay import PrioritizedReplay, SumTree


def test_sum_tree_prefix_search_exact():
    tree = SumTree(6)
    tree.set(np.arange(6), [1.0, 0.0, 3.0, 2.0, 0.0, 4.0])  # inclusive prefix sums [1, 1, 4, 6, 6, 10]
    assert tree.total == 10.0
    values = [0.0, 0.999, 1.0, 3.99, 4.0, 5.5, 6.0, 9.99, 10.0, 12.0]
    expected = [0, 0, 2, 2, 3, 3, 5, 5, 5, 5]  # zero leaves 1 and 4 never found; ≥ total -> last positive leaf
    np.testing.assert_array_equal(tree.find(values), expected)
    tree.set([0, 5], [0.0, 1.0])  # prefix sums now [0, 0, 3, 5, 5, 6]
    assert tree.total == 6.0
    np.testing.assert_array_equal(tree.find([0.0, 2.99, 3.0, 5.0, 5.99]), [2, 2, 3, 5, 5])
    np.testing.assert_array_equal(tree.get([2, 3]), [3.0, 2.0])
    with pytest.raises(ValueError):
        tree.set([0], [-1.0])


def _fill(replay: PrioritizedReplay, rewards, ends, obs_ids, env_offset=1000.0):
    """Feed one stream; ``ends[t]`` is None, "term" or "trunc"; env e gets ids + e·offset."""
    E = replay.num_envs
    for r, end, i in zip(rewards, ends, obs_ids, strict=True):
        obs = np.array([[i + e * env_offset] for e in range(E)], np.float32)
        nxt = obs + 1
        replay.add(obs, np.zeros(E), np.full(E, r), np.full(E, end == "term"), np.full(E, end == "trunc"), nxt)


def _by_obs(replay: PrioritizedReplay, draws: int = 20) -> dict:
    seen = {}
    for _ in range(draws):
        batch = replay.sample(64)
        for o, r, d, n in zip(
            batch["obs"][:, 0], batch["reward"], batch["discount"], batch["next_obs"][:, 0], strict=True
        ):
            seen[float(o)] = (float(r), float(d), float(n))
    return seen


@pytest.mark.parametrize("num_envs", [1, 2])
def test_n_step_returns_respect_episode_ends(num_envs):
    replay = PrioritizedReplay(64, (1,), np.float32, num_envs=num_envs, update_horizon=3, gamma=0.5, prioritized=False)
    # Episode 1: obs 0..3, rewards 1..4, terminated after the 4th step (closing obs 4).
    _fill(replay, [1, 2, 3, 4], [None, None, None, "term"], [0, 1, 2, 3])
    # Episode 2: obs 10, 11, rewards 10, 20, truncated after the 2nd step (closing obs 12).
    _fill(replay, [10, 20], [None, "trunc"], [10, 11])
    # Episode 3, running: obs 100..102; only complete n-step windows are sampleable, so none yet.
    _fill(replay, [100, 200, 300], [None] * 3, [100, 101, 102])
    assert len(replay) == 6 * num_envs
    expected = {
        0.0: (1 + 0.5 * 2 + 0.25 * 3, 0.125, 3.0),  # full window, next obs 3, γ³
        1.0: (2 + 0.5 * 3 + 0.25 * 4, 0.0, 4.0),  # window ends on the terminal step
        2.0: (3 + 0.5 * 4, 0.0, 4.0),  # shortened by the episode end
        3.0: (4.0, 0.0, 4.0),
        10.0: (10 + 0.5 * 20, 0.25, 12.0),  # truncated: bootstrap from the final observation, γ²
        11.0: (20.0, 0.5, 12.0),
    }
    seen = _by_obs(replay)
    for e in range(num_envs):
        for obs, (ret, disc, nxt) in expected.items():
            assert seen[obs + 1000 * e] == pytest.approx((ret, disc, nxt + 1000 * e))
    _fill(replay, [400], [None], [103])  # obs 100's window is now complete
    assert len(replay) == 7 * num_envs
    assert _by_obs(replay)[100.0] == pytest.approx((100 + 0.5 * 200 + 0.25 * 300, 0.125, 103.0))


def test_frame_stacks_are_rebuilt_from_single_frames():
    replay = PrioritizedReplay(32, (2, 2, 4), np.uint8, frame_stack=4, update_horizon=1, gamma=0.9, prioritized=False)
    assert replay.frames.shape == (32, 1, 2, 2)  # one frame per step, not four
    stack = np.zeros((2, 2, 4), np.uint8)

    def push(frame_id):
        stack[..., :-1] = stack[..., 1:]
        stack[..., -1] = frame_id
        return stack.copy()

    frames = {}
    obs = push(1)
    for t, fid in enumerate([2, 3, 4, 5, 6]):
        nxt = push(fid)
        frames[int(obs[0, 0, -1])] = obs.copy()
        end = t == 4
        replay.add(obs[None], [0], [0.0], [False], [end], nxt[None])
        obs = nxt
    frames[6] = obs.copy()
    stack[...] = 0  # new episode: the stack restarts from zeros
    obs7, obs8 = push(7), push(8)
    replay.add(obs7[None], [0], [0.0], [False], [False], obs8[None])
    replay.add(obs8[None], [0], [0.0], [False], [False], push(9)[None])
    batch = replay.sample(64)
    for o, n in zip(batch["obs"], batch["next_obs"], strict=True):
        newest = int(o[0, 0, -1])
        if newest <= 5:
            np.testing.assert_array_equal(o, frames[newest])
            np.testing.assert_array_equal(n, frames[newest + 1])
        else:  # the second episode: zeros before frame 7, never frames of episode 1
            np.testing.assert_array_equal(o[0, 0], [0, 0, 0, 7] if newest == 7 else [0, 0, 7, 8])
            np.testing.assert_array_equal(n[0, 0], [0, 0, 7, 8] if newest == 7 else [0, 7, 8, 9])


def _reference_sample_check(replay, history, episode_of, batch):
    """Check sampled transitions against the full stream ``history`` (list of (id, reward, ended, terminated))."""
    pos = {h[0]: i for i, h in enumerate(history)}
    n, g = replay.n, replay.gamma
    for o, r, d, nx in zip(batch["obs"], batch["reward"], batch["discount"], batch["next_obs"], strict=True):
        newest = int(o[-1])
        t = pos[newest]
        ret, k, term = 0.0, 0, False
        while k < n:
            _, rew, ended, terminated = history[t + k]
            ret += g**k * rew
            k += 1
            if ended:
                term = terminated
                break
        assert r == pytest.approx(ret)
        assert d == pytest.approx(0.0 if term else g**k)
        for stack, last in ((o, newest), (nx, newest + k)):
            ids = last - np.arange(3, -1, -1)
            same = np.array([episode_of.get(int(i)) == episode_of[last] for i in ids])
            np.testing.assert_array_equal(stack, np.where(same, ids, 0))


def test_wraparound_never_returns_stale_data():
    # Capacity 24 over a long stream with random episode ends and 4-frame stacks (each "frame" is its step id):
    # every sample matches the reference built from the full history, stacks included.
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(24, (4,), np.float32, frame_stack=4, update_horizon=3, gamma=0.9, prioritized=True)
    assert replay.frames.shape == (24, 1)
    history, episode_of, next_id, episode = [], {}, 1, 0
    stack = np.zeros(4, np.float32)

    def push(frame_id):
        stack[:-1] = stack[1:]
        stack[-1] = frame_id
        episode_of[frame_id] = episode
        return stack.copy()

    obs = push(next_id)
    for _ in range(400):
        ended = rng.random() < 0.15
        terminated = ended and rng.random() < 0.5
        reward = float(rng.integers(5))
        history.append((next_id, reward, ended, terminated))
        next_id += 1
        nxt = push(next_id)
        replay.add(obs[None], [0], [reward], [terminated], [ended and not terminated], nxt[None])
        if ended:
            history.append((next_id, 0.0, True, False))  # the closing observation (never a start)
            next_id += 1
            episode += 1
            stack[:] = 0
            nxt = push(next_id)
        obs = nxt
        if len(replay):
            batch = replay.sample(8)
            _reference_sample_check(replay, history, episode_of, batch)
            replay.update_priorities(batch["index"], rng.random(8))
    assert len(replay) <= 24


def test_prioritized_sampling_probabilities_and_weights():
    replay = PrioritizedReplay(16, (1,), np.float32, update_horizon=1, prioritized=True, priority_exponent=0.5,
                               importance_exponent=0.4, seed=3)  # fmt: skip
    _fill(replay, [0] * 6, [None] * 5 + ["term"], list(range(6)))
    assert len(replay) == 6
    batch = replay.sample(6)
    order = np.argsort(batch["obs"][:, 0])
    index = batch["index"][order]  # slot of obs 0..5
    losses = np.array([1.0, 4.0, 0.0, 9.0, 16.0, 0.25])
    replay.update_priorities(index, losses)
    priority = (losses + 1e-10) ** 0.5
    expected = priority / priority.sum()
    counts = np.zeros(6)
    for _ in range(400):
        batch = replay.sample(32)
        counts += np.bincount(np.searchsorted(index, batch["index"]), minlength=6)
        # Importance weights: (N · P(i))^−β / max over the batch, with P(i) = p_i / Σ p.
        p = expected[np.searchsorted(index, batch["index"])]
        np.testing.assert_allclose(batch["probability"], p, rtol=1e-9)
        w = (6 * p) ** -0.4
        np.testing.assert_allclose(batch["weight"], w / w.max(), rtol=1e-6)
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.01)
    assert counts[2] < 5  # loss 0 -> priority 1e-5: essentially never sampled
    assert replay.max_priority == pytest.approx(4.0)
    _fill(replay, [0], [None], [6])  # new transitions enter at the largest priority so far
    _fill(replay, [0], [None], [7])
    assert replay.tree.get(replay.sample(32)["index"]).max() == pytest.approx(4.0)


def test_uniform_replay_weights_and_state_dict():
    replay = PrioritizedReplay(32, (1,), np.float32, update_horizon=2, prioritized=False, seed=1)
    _fill(replay, list(range(10)), [None] * 9 + ["trunc"], list(range(10)))
    batch = replay.sample(16)
    np.testing.assert_array_equal(batch["weight"], 1.0)
    np.testing.assert_allclose(batch["probability"], 1 / 10)
    replay.update_priorities(batch["index"], np.full(16, 100.0))  # ignored without priorities
    assert replay.tree.total == 10
    clone = PrioritizedReplay(32, (1,), np.float32, update_horizon=2, prioritized=False, seed=99)
    clone.load_state_dict(replay.state_dict())
    a, b = replay.sample(16), clone.sample(16)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_add_needs_the_final_observation():
    replay = PrioritizedReplay(16, (1,), np.float32)
    with pytest.raises(ValueError, match="next_obs"):
        replay.add(np.zeros((1, 1)), [0], [0.0], [True], [False])
    with pytest.raises(ValueError, match="no sampleable"):
        PrioritizedReplay(16, (1,), np.float32).sample(4)


def test_inactive_envs_take_no_step():
    """``active``: a lockstep driver's env being reset adds nothing; each env's stream is as if fed alone."""
    both = PrioritizedReplay(64, (1,), np.float32, num_envs=2, update_horizon=2, gamma=0.5, prioritized=False)
    alone = [PrioritizedReplay(32, (1,), np.float32, update_horizon=2, gamma=0.5, prioritized=False) for _ in "ab"]
    # (obs of env 0, obs of env 1, end of env 0's step, end of env 1's step, active mask)
    steps = [(0, 10, None, None, (1, 1)), (1, 11, "term", None, (1, 1)), (0, 12, None, "trunc", (0, 1))]
    steps += [(2, 0, None, None, (1, 0)), (3, 20, None, None, (1, 1)), (4, 21, "trunc", "term", (1, 1))]
    for o0, o1, e0, e1, mask in steps:
        obs = np.array([[o0], [o1]], np.float32)
        term, trunc = np.array([e0 == "term", e1 == "term"]), np.array([e0 == "trunc", e1 == "trunc"])
        both.add(obs, [0, 0], [o0, o1], term, trunc, obs + 100, active=np.array(mask, bool))
        for e in np.flatnonzero(mask):
            alone[e].add(obs[e : e + 1], [0], [obs[e, 0]], term[e : e + 1], trunc[e : e + 1], obs[e : e + 1] + 100)
    assert both.add_count == sum(r.add_count for r in alone) == 10
    assert len(both) == sum(len(r) for r in alone)
    for e, single in enumerate(alone):
        assert both.cursor[e] == single.cursor[0] and both.episode_step[e] == single.episode_step[0]
        n = single.cursor[0]
        for name in ("frames", "reward", "terminated", "last", "closing", "ep_step"):
            np.testing.assert_array_equal(getattr(both, name)[:n, e], getattr(single, name)[:n, 0], err_msg=name)
    both.add(np.zeros((2, 1)), [0, 0], [1.0, 1.0], [False] * 2, [False] * 2, active=np.zeros(2, bool))
    assert both.add_count == 10  # nobody active: nothing added
