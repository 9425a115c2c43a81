"""Checkpoints: an arbitrary JAX/numpy pytree saved with orbax-checkpoint, plus JSON metadata and small files.

Layout of ``checkpoints/<step>/`` (``<step>`` counts agent steps)::

    state/           orbax PyTree checkpoint of the tree (params, optimiser states, RNG key, counters …)
    metadata.json    small JSON (replay head, RNG states of numpy generators, episode counters …)
    files/<name>     opaque extra files (e.g. pickled env snapshots)
    manifest.json    {"format", "step", "files": {relative path: sha256}} over every file above

A checkpoint is written into ``checkpoints/.tmp-<step>-<random>/`` and renamed into place only when complete, so a
crash never leaves a half-written ``<step>/`` (an unfinished temporary directory is removed on the next start).
Only the newest ``keep`` checkpoints are kept. :func:`verify` recomputes every hash and reports the first mismatch,
missing file or unexpected file in one line.

Typed PRNG keys (``jax.random.key``) are stored as their key data and re-wrapped on restore when the ``target``
tree has a typed key at that place; numpy scalars are stored as 0-d arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .runs import absolute_path

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "first_non_finite",
    "load",
    "manifest_digest",
    "save",
    "verify",
]

FORMAT = "ambs-verify-checkpoint/1"
MANIFEST = "manifest.json"
_HASH_BLOCK = 1 << 20


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or fails its manifest (one-line message naming the first problem)."""


@dataclass
class Checkpoint:
    """A restored checkpoint: the pytree, its metadata, extra files and where it came from."""

    step: int
    tree: Any
    metadata: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    path: Path | None = None


def first_non_finite(tree: Any) -> str | None:
    """The path (``['agent']['wm']…``) of the first floating-point leaf of ``tree`` holding NaN or ±inf, else None."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    for path, leaf in leaves:
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            continue
        value = np.asarray(leaf) if isinstance(leaf, np.ndarray | jax.Array | float | np.floating) else None
        if value is not None and np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
            return jax.tree_util.keystr(path) or "(the value)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): _sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _is_typed_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_savable(tree: Any) -> Any:
    def convert(x):
        if _is_typed_key(x):
            return jax.random.key_data(x)
        if isinstance(x, np.generic):
            return np.asarray(x)
        return x

    return jax.tree.map(convert, tree)


def _restore_args(target: Any) -> tuple[Any, Any]:
    """Restore target and per-leaf restore arguments: jax arrays onto the target's sharding, numpy as numpy."""
    import orbax.checkpoint as ocp

    item = _to_savable(target)
    return item, ocp.checkpoint_utils.construct_restore_args(item)


def _rewrap(restored: Any, target: Any) -> Any:
    """Restored leaves cast back to the target's kinds: typed keys re-wrapped, numpy stays numpy."""

    def convert(r, t):
        if _is_typed_key(t):
            return jax.random.wrap_key_data(r, impl=jax.random.key_impl(t))
        if isinstance(t, np.generic):
            return np.asarray(r, dtype=t.dtype)[()]
        if isinstance(t, np.ndarray):
            return np.asarray(r)
        return r

    return jax.tree.map(convert, restored, target)


def _checkpointer():
    import orbax.checkpoint as ocp  # imported lazily: orbax pulls in tensorstore

    return ocp.Checkpointer(ocp.PyTreeCheckpointHandler())


def save(
    directory: str | os.PathLike,
    step: int,
    tree: Any,
    metadata: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write one checkpoint atomically as ``directory/<step>/``; an existing one of that step is replaced.

    Parameters
    ----------
    directory : path
        The run's ``checkpoints/`` directory.
    step : int
        Agent steps at the time of the checkpoint.
    tree : pytree
        Arrays (jax or numpy), Python scalars, dicts, lists, tuples, named tuples.
    metadata : mapping, optional
        JSON-serialisable data stored beside the tree.
    files : mapping of str to bytes, optional
        Extra opaque files (flat names) stored under ``files/``.

    Returns
    -------
    Path
        The final checkpoint directory.
    """
    directory = absolute_path(directory)  # orbax >= 0.12.8 refuses relative paths
    bad = first_non_finite(tree)
    if bad is not None:  # a diverged state must never look like an intact checkpoint
        raise CheckpointError(f"refusing to write checkpoint {int(step)}: the parameter {bad} is not finite")
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / str(int(step))
    tmp = directory / f".tmp-{int(step)}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        _checkpointer().save(tmp / "state", _to_savable(tree))
        meta = {"step": int(step), **dict(metadata or {})}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if files:
            (tmp / "files").mkdir()
            for name, data in files.items():
                if "/" in name or name.startswith("."):
                    raise CheckpointError(f"checkpoint file names must be flat (got {name!r})")
                (tmp / "files" / name).write_bytes(data)
        manifest = {"format": FORMAT, "step": int(step), "files": _hash_tree(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if final.exists():  # re-saving a step (e.g. after a resume): swap the old one out first
            trash = directory / f".old-{int(step)}-{uuid.uuid4().hex[:8]}"
            final.rename(trash)
            tmp.rename(final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def verify(path: str | os.PathLike) -> dict[str, Any]:
    """Recompute the sha256 of every file of a checkpoint directory against its manifest.

    Returns
    -------
    dict
        The manifest, when every file matches.

    Raises
    ------
    CheckpointError
        At the first problem: no manifest, a missing file, a file whose hash differs, or a file the manifest
        does not list.
    """
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} has no {MANIFEST}; it is not a complete checkpoint") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / MANIFEST} is not valid JSON ({exc.msg})") from None
    expected: dict[str, str] = manifest.get("files", {})
    for name, digest in sorted(expected.items()):
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{path}: {name} is missing")
        actual = _sha256(file)
        if actual != digest:
            raise CheckpointError(f"{path}: {name} has sha256 {actual[:16]}…, the manifest says {digest[:16]}…")
    extra = sorted(set(_hash_tree(path)) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: {extra[0]} is not listed in the manifest")
    return manifest


def manifest_digest(path: str | os.PathLike) -> str:
    """sha256 of a checkpoint's ``manifest.json`` (one hash that pins every file; certificates cite it)."""
    return _sha256(Path(path) / MANIFEST)


def load(path: str | os.PathLike, target: Any = None, check: bool = True) -> Checkpoint:
    """Read a checkpoint directory.

    Parameters
    ----------
    path : path
        ``checkpoints/<step>/``.
    target : pytree, optional
        A tree of the saved structure (e.g. a freshly initialised agent state); restored leaves get its
        container types (tuples, named tuples), dtypes and kinds (numpy vs jax, typed PRNG keys), and jax arrays
        its shardings. Without it, every leaf comes back as a numpy array, whatever devices it was saved from
        (tuples may come back as lists).
    check : bool
        :func:`verify` the manifest first.
    """
    path = absolute_path(path)
    if check:
        verify(path)
    elif not (path / MANIFEST).is_file():
        raise CheckpointError(f"{path} has no {MANIFEST}; it is not a complete checkpoint")
    import orbax.checkpoint as ocp

    checkpointer = _checkpointer()
    if target is None:  # numpy leaves: the devices the run was saved from (a data-parallel mesh) may not exist here
        metadata = checkpointer.metadata(path / "state").item_metadata.tree
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), metadata)
        tree = checkpointer.restore(path / "state", args=ocp.args.PyTreeRestore(restore_args=restore_args))
    else:
        item, restore_args = _restore_args(target)
        tree = checkpointer.restore(path / "state", args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args))
        tree = _rewrap(tree, target)
    metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    if path.name.isdigit() and int(path.name) != int(metadata["step"]):
        raise CheckpointError(
            f"{path} holds the checkpoint of step {metadata['step']} (its metadata.json), not of step {path.name}"
        )
    bad = first_non_finite(tree)
    if bad is not None:
        raise CheckpointError(f"{path}: the parameter {bad} is not finite (the run diverged before this checkpoint)")
    files = {p.name: p.read_bytes() for p in sorted((path / "files").glob("*"))} if (path / "files").is_dir() else {}
    return Checkpoint(step=int(metadata["step"]), tree=tree, metadata=metadata, files=files, path=path)


class Checkpointer:
    """Numbered checkpoints in one directory, keeping the newest ``keep``.

    Parameters
    ----------
    directory : path
        The run's ``checkpoints/`` directory (created if missing). Leftover temporary directories from an
        interrupted save are removed.
    keep : int or None
        How many of the newest checkpoints to keep; None keeps all.
    """

    def __init__(self, directory: str | os.PathLike, keep: int | None = 5):
        if keep is not None and keep < 1:
            raise CheckpointError(f"keep must be >= 1 or None (got {keep})")
        self.directory = Path(directory)
        self.keep = keep
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.directory.glob(".old-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        return sorted(
            int(p.name)
            for p in self.directory.iterdir()
            if p.is_dir() and p.name.isdigit() and (p / MANIFEST).is_file()
        )

    def latest(self) -> int | None:
        """The newest checkpoint's step, or None."""
        steps = self.steps()
        return steps[-1] if steps else None

    def path(self, step: int) -> Path:
        return self.directory / str(int(step))

    def save(
        self,
        step: int,
        tree: Any,
        metadata: Mapping[str, Any] | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> Path:
        """:func:`save`, then delete all but the newest ``keep`` checkpoints."""
        path = save(self.directory, step, tree, metadata, files)
        if self.keep is not None:
            for old in self.steps()[: -self.keep]:
                shutil.rmtree(self.path(old), ignore_errors=True)
        return path

    def restore(self, step: int | None = None, target: Any = None, check: bool = True) -> Checkpoint:
        """:func:`load` the checkpoint of ``step`` (default: the newest)."""
        step = self.latest() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        if not (self.path(step) / MANIFEST).is_file():
            raise CheckpointError(f"no checkpoint of step {step} in {self.directory} (have: {self.steps()})")
        return load(self.path(step), target, check)

    def verify(self, step: int | None = None) -> dict[str, Any]:
        """:func:`verify` the checkpoint of ``step`` (default: the newest)."""
        step = self.latest() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        return verify(self.path(step))
