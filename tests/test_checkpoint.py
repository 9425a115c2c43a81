"""Orbax checkpoints: round trip of an arbitrary pytree, atomic writes, keep-K, manifest verification."""

from __future__ import annotations

import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ambs_verify import checkpoints as C


class Moments(NamedTuple):
    low: jax.Array
    high: jax.Array


def _tree():
    params = {"w": jnp.arange(12.0).reshape(3, 4), "b": jnp.ones(4, jnp.bfloat16)}
    return {
        "params": params,
        "opt": optax.adam(1e-3).init(params),
        "key": jax.random.key(3),
        "raw_key": jax.random.PRNGKey(5),
        "step": np.int64(1234),
        "counts": np.arange(5, dtype=np.int32),
        "moments": Moments(jnp.float32(-1.5), jnp.float32(2.5)),
        "scalar": 7,
    }


def _assert_same(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array))
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert np.asarray(x).dtype == np.asarray(y).dtype


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ckpt")
    tree = _tree()
    path = C.save(directory, 300, tree, {"replay_count": 100}, {"driver.pkl": b"\x00\x01state"})
    return directory, path, tree


def test_round_trip_with_target(saved):
    _, path, tree = saved
    ck = C.load(path, target=tree)
    _assert_same(ck.tree, tree)
    assert ck.step == 300 and ck.metadata == {"step": 300, "replay_count": 100}
    assert ck.files == {"driver.pkl": b"\x00\x01state"}
    # typed keys come back typed and usable
    np.testing.assert_array_equal(jax.random.uniform(ck.tree["key"], (3,)), jax.random.uniform(tree["key"], (3,)))


def test_round_trip_without_target(saved):
    _, path, tree = saved
    ck = C.load(path)
    np.testing.assert_array_equal(np.asarray(ck.tree["params"]["w"]), np.asarray(tree["params"]["w"]))
    np.testing.assert_array_equal(np.asarray(ck.tree["key"]), np.asarray(jax.random.key_data(tree["key"])))


def test_manifest_lists_every_file(saved):
    _, path, _ = saved
    manifest = C.verify(path)
    files = set(manifest["files"])
    assert {"metadata.json", "files/driver.pkl"} <= files
    assert any(name.startswith("state/") for name in files)
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert files == on_disk
    assert len(C.manifest_digest(path)) == 64


def test_verify_detects_an_edited_byte(tmp_path):
    path = C.save(tmp_path, 10, _tree())
    victim = max((p for p in (path / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    name = victim.relative_to(path).as_posix()
    with pytest.raises(C.CheckpointError, match=f"{name} has sha256 .* the manifest says"):
        C.verify(path)
    with pytest.raises(C.CheckpointError):
        C.load(path, _tree())


def test_verify_detects_missing_and_extra_files(tmp_path):
    path = C.save(tmp_path, 10, {"a": np.zeros(3)}, files={"x.bin": b"x"})
    (path / "files" / "extra.txt").write_text("hi")
    with pytest.raises(C.CheckpointError, match=r"extra\.txt is not listed"):
        C.verify(path)
    (path / "files" / "extra.txt").unlink()
    (path / "files" / "x.bin").unlink()
    with pytest.raises(C.CheckpointError, match=r"files/x\.bin is missing"):
        C.verify(path)
    (path / "manifest.json").unlink()
    with pytest.raises(C.CheckpointError, match=r"no manifest\.json"):
        C.verify(path)


def test_keep_last_k_latest_and_resave(tmp_path):
    ckpt = C.Checkpointer(tmp_path, keep=2)
    assert ckpt.latest() is None
    for step in (100, 200, 300):
        ckpt.save(step, {"x": np.full(2, step)})
    assert ckpt.steps() == [200, 300] and ckpt.latest() == 300
    ckpt.save(300, {"x": np.full(2, 7)})  # re-saving a step replaces it
    np.testing.assert_array_equal(ckpt.restore(target={"x": np.zeros(2, int)}).tree["x"], [7, 7])
    assert not list(tmp_path.glob(".*"))
    with pytest.raises(C.CheckpointError, match="no checkpoint of step 100"):
        ckpt.restore(100)


def test_interrupted_write_leaves_no_checkpoint(tmp_path, monkeypatch):
    ckpt = C.Checkpointer(tmp_path)
    ckpt.save(1, {"x": np.zeros(2)})

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(C, "_hash_tree", fail)
    with pytest.raises(OSError):
        ckpt.save(2, {"x": np.ones(2)})
    assert ckpt.steps() == [1] and not list(tmp_path.glob(".tmp-*"))
    (tmp_path / ".tmp-3-deadbeef").mkdir()  # a crash mid-write: removed on the next start
    C.Checkpointer(tmp_path)
    assert not list(tmp_path.glob(".tmp-*"))
    assert json.loads((tmp_path / "1" / "manifest.json").read_text())["step"] == 1


def test_non_finite_parameters_are_never_written_or_restored(tmp_path, monkeypatch):
    tree = {"wm": {"w": np.array([1.0, np.nan])}, "key": jax.random.key(0), "count": np.int32(3)}
    with pytest.raises(C.CheckpointError, match=r"refusing to write checkpoint 5: the parameter \['wm'\]\['w'\]"):
        C.save(tmp_path, 5, tree)
    assert not list(tmp_path.iterdir())  # nothing half-written
    # A checkpoint written without the guard (an older version) is refused on restore, so certify refuses it too.
    monkeypatch.setattr(C, "first_non_finite", lambda tree: None)
    path = C.save(tmp_path, 5, {"w": np.array([np.inf])})
    monkeypatch.undo()
    with pytest.raises(C.CheckpointError, match=r"the parameter \['w'\] is not finite"):
        C.load(path, {"w": np.zeros(1)})


def test_a_checkpoint_under_another_steps_name_is_refused(tmp_path):
    import shutil

    path = C.save(tmp_path, 2000, {"w": np.ones(2)})
    shutil.copytree(path, tmp_path / "4000")
    with pytest.raises(C.CheckpointError, match=r"holds the checkpoint of step 2000 .*not of step 4000"):
        C.load(tmp_path / "4000", {"w": np.zeros(2)})
