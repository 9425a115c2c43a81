"""Uniform sequence replay: ring buffers, vectorised sampling, is_first at t = 0, chunked persistence and exact load."""

from __future__ import annotations

import numpy as np
import pytest

from ambs_verify.trainers.replay import Replay, ReplayError


def _row(t: int, n: int) -> dict[str, np.ndarray]:
    # Values encode (env, step) so that every sampled element can be checked.
    env = np.arange(n)
    return {
        "vector": np.stack([np.full(3, 1000 * e + t, np.float32) for e in env]),
        "step": 1000 * env + t,
        "is_first": (np.full(n, t) % 7) == 0,
        "action": np.eye(4, dtype=np.float32)[(env + t) % 4],
    }


def _fill(replay: Replay, start: int, end: int) -> None:
    for t in range(start, end):
        replay.add(_row(t, replay.num_envs))


def test_sample_contiguous_sequences_within_the_ring():
    replay = Replay(capacity=3 * 50, num_envs=3)
    _fill(replay, 0, 120)  # wraps the 50-slot ring twice
    assert len(replay) == 150 and replay.count == 120
    batch = replay.sample(64, 10, np.random.default_rng(0))
    assert batch["vector"].shape == (64, 10, 3) and batch["action"].shape == (64, 10, 4)
    steps = batch["step"] % 1000
    env = batch["step"] // 1000
    assert np.all(np.diff(steps, axis=1) == 1)  # contiguous
    assert np.all(env == env[:, :1])  # one env per sequence
    assert steps.min() >= 70 and steps.max() <= 119  # only what the ring still holds, never past the head
    assert np.all(batch["is_first"][:, 0])
    np.testing.assert_array_equal(batch["is_first"][:, 1:], (steps[:, 1:] % 7) == 0)
    np.testing.assert_array_equal(batch["vector"][..., 0], batch["step"])


def test_sampling_is_uniform_over_starts():
    replay = Replay(capacity=2 * 40, num_envs=2)
    _fill(replay, 0, 40)
    batch = replay.sample(20000, 5, np.random.default_rng(1))
    starts = batch["step"][:, 0] % 1000
    counts = np.bincount(starts, minlength=36)
    assert starts.max() == 35 and counts.min() > 0.7 * counts.mean()
    assert abs((batch["step"][:, 0] // 1000).mean() - 0.5) < 0.03


def test_sampling_is_deterministic_per_generator():
    replay = Replay(capacity=100, num_envs=2)
    _fill(replay, 0, 30)
    a = replay.sample(8, 4, np.random.default_rng(7))
    b = replay.sample(8, 4, np.random.default_rng(7))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_errors():
    replay = Replay(capacity=100, num_envs=2)
    with pytest.raises(ReplayError, match="a sequence needs 5"):
        replay.sample(1, 5, np.random.default_rng(0))
    _fill(replay, 0, 3)
    with pytest.raises(ReplayError, match="same keys"):
        replay.add({"vector": np.zeros((2, 3), np.float32)})
    with pytest.raises(ReplayError, match="shape"):
        replay.add({**_row(3, 2), "vector": np.zeros((2, 4), np.float32)})
    with pytest.raises(ReplayError, match="leading axis"):
        Replay(capacity=100, num_envs=3).add({"x": np.zeros(2)})


def test_chunks_are_written_as_the_replay_fills(tmp_path):
    replay = Replay(capacity=200, num_envs=2, directory=tmp_path, chunk=16)
    _fill(replay, 0, 40)
    names = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert names == ["000000000000-000000000016.npz", "000000000016-000000000032.npz"]
    replay.flush()
    assert "000000000032-000000000040.npz" in {p.name for p in tmp_path.glob("*.npz")}
    _fill(replay, 40, 48)  # completing the chunk replaces the partial file
    assert "000000000032-000000000040.npz" not in {p.name for p in tmp_path.glob("*.npz")}
    with np.load(tmp_path / "000000000016-000000000032.npz") as chunk:
        np.testing.assert_array_equal(chunk["step"][1], 1000 + np.arange(16, 32))


@pytest.mark.parametrize("head", [40, 48, 77])
def test_load_restores_exactly_and_ignores_rows_after_the_checkpoint(tmp_path, head):
    replay = Replay(capacity=2 * 30, num_envs=2, directory=tmp_path, chunk=8)
    _fill(replay, 0, head)
    replay.flush()  # a checkpoint at `head`
    expected = replay.sample(32, 6, np.random.default_rng(3))
    _fill(replay, head, head + 13)  # rows after the checkpoint, then a crash
    restored = Replay(capacity=2 * 30, num_envs=2, directory=tmp_path, chunk=8)
    assert restored.load(head) == 30 and restored.count == head
    got = restored.sample(32, 6, np.random.default_rng(3))
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
    # continuing after the resume writes the same chunks as never stopping
    _fill(restored, head, head + 20)
    restored.flush()
    straight = Replay(capacity=2 * 30, num_envs=2, directory=tmp_path / "straight", chunk=8)
    _fill(straight, 0, head + 20)
    for key in expected:
        np.testing.assert_array_equal(
            restored.rows(head - 10, head + 20)[key], straight.rows(head - 10, head + 20)[key]
        )


def test_flush_prunes_chunks_out_of_the_ring(tmp_path):
    replay = Replay(capacity=2 * 16, num_envs=2, directory=tmp_path, chunk=8)
    _fill(replay, 0, 64)
    replay.flush()
    _fill(replay, 64, 70)
    replay.flush()  # chunks ending <= 64 - 16 are no longer needed by any checkpoint
    starts = sorted(int(p.name[:12]) for p in tmp_path.glob("*.npz"))
    assert starts[0] == 48


def test_load_with_missing_chunks(tmp_path):
    replay = Replay(capacity=2 * 32, num_envs=2, directory=tmp_path, chunk=8)
    _fill(replay, 0, 32)
    (tmp_path / "000000000008-000000000016.npz").unlink()
    partial = Replay(capacity=2 * 32, num_envs=2, directory=tmp_path, chunk=8)
    assert partial.load(32) == 16  # only the contiguous newest chunks
    assert (partial.sample(50, 4, np.random.default_rng(0))["step"] % 1000).min() >= 16
    for path in tmp_path.glob("*.npz"):
        path.unlink()
    empty = Replay(capacity=2 * 32, num_envs=2, directory=tmp_path, chunk=8)
    with pytest.warns(UserWarning, match="missing"):
        assert empty.load(32) == 0
    _fill(empty, 32, 40)
    assert empty.steps_per_env() == 8 and len(list(tmp_path.glob("*.npz"))) == 1
