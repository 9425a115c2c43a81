"""Uniform sequence replay over N lockstep env streams, persisted in chunks for exact resumption.

Storage is one numpy ring buffer per key of shape ``(num_envs, capacity // num_envs, ...)``; every :meth:`Replay.add`
writes one row for each env at the shared write head (all envs step together, so one counter suffices). A row is
one agent step in the world model's layout: the observation, the ``reward``/``cost`` that arrived with it,
``is_first``/``is_last``/``is_terminal``, the label flags, and the ``action`` taken at it.

:meth:`Replay.sample` draws ``batch`` (env, start) pairs uniformly and gathers ``length`` contiguous rows for all
of them at once (fancy indexing, no loop over rows). Sequences never straddle the write head and may cross
episode boundaries; ``is_first[:, 0]`` is forced True (spec §3.2) so the world model resets its state at t = 0.

Persistence: with a ``directory``, every ``chunk`` steps per env the completed chunk is written as
``<start>-<end>.npz`` (steps per env, zero-padded; arrays ``(num_envs, end - start, ...)``). :meth:`Replay.flush`
also writes the incomplete tail chunk, so that a checkpoint taken right after it can be resumed exactly:
:meth:`Replay.load` with the checkpoint's ``count`` rebuilds the same ring (same slots, same sampling) and ignores
rows written after that checkpoint. Chunks that fell out of the ring before the previous flush are deleted, so
the disk holds about one capacity's worth.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["Replay", "ReplayError"]

_CHUNK_NAME = re.compile(r"^(\d{12})-(\d{12})\.npz$")


class ReplayError(ValueError):
    """Inconsistent data added to the replay, or a sample requested before enough data arrived."""


class Replay:
    """Uniform sequence replay (see the module docstring).

    Parameters
    ----------
    capacity : int
        Steps held, summed over envs (each env stream keeps ``capacity // num_envs``).
    num_envs : int
        Env streams written by each :meth:`add`.
    directory : str or Path, optional
        Where chunks are persisted; None keeps the replay in memory only.
    chunk : int
        Steps per env in each chunk file (at most the per-env capacity).
    compress : bool
        Write ``.npz`` chunks compressed (slower, much smaller for images).
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        directory: str | os.PathLike | None = None,
        chunk: int = 1024,
        compress: bool = False,
    ):
        if num_envs < 1 or capacity < num_envs:
            raise ReplayError(f"replay capacity ({capacity}) must be at least the number of envs ({num_envs})")
        self.num_envs = int(num_envs)
        self.per_env = int(capacity) // self.num_envs
        self.chunk = max(1, min(int(chunk), self.per_env))
        self.directory = Path(directory) if directory is not None else None
        self.compress = compress
        self._data: dict[str, np.ndarray] | None = None
        self._count = 0  # rows written per env since the start of the run (monotone step index)
        self._valid_from = 0  # first step index held (a resume with missing chunks starts later)
        self._saved = 0  # rows per env persisted in complete chunks
        self._last_flush = 0
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------------------------ info

    @property
    def count(self) -> int:
        """Rows written per env since the run started (the write head's step index; saved in checkpoints)."""
        return self._count

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._data) if self._data is not None else ()

    def steps_per_env(self) -> int:
        """Rows currently held per env stream."""
        return self._count - max(self._valid_from, self._count - self.per_env)

    def __len__(self) -> int:
        """Rows held, summed over envs."""
        return self.num_envs * self.steps_per_env()

    def can_sample(self, length: int) -> bool:
        """Whether a sequence of ``length`` rows exists in every env stream."""
        return self.steps_per_env() >= length

    # ------------------------------------------------------------------------------------------- add

    def _allocate(self, step: Mapping[str, np.ndarray]) -> None:
        self._data = {}
        for key, value in step.items():
            value = np.asarray(value)
            if value.ndim == 0 or value.shape[0] != self.num_envs:
                raise ReplayError(f"replay key {key!r} must have a leading axis of {self.num_envs} envs")
            self._data[key] = np.zeros((self.num_envs, self.per_env, *value.shape[1:]), value.dtype)

    def add(self, step: Mapping[str, np.ndarray]) -> None:
        """Append one row per env: ``step[key]`` has shape ``(num_envs, ...)``; keys and shapes stay fixed."""
        if self._data is None:
            self._allocate(step)
        assert self._data is not None
        if step.keys() != self._data.keys():
            missing = sorted(set(self._data) ^ set(step))
            raise ReplayError(f"replay rows must keep the same keys; these differ: {', '.join(missing)}")
        pos = self._count % self.per_env
        for key, buffer in self._data.items():
            value = np.asarray(step[key])
            if value.shape != (self.num_envs, *buffer.shape[2:]):
                raise ReplayError(
                    f"replay key {key!r}: shape {value.shape}, expected {(self.num_envs, *buffer.shape[2:])}"
                )
            buffer[:, pos] = value
        self._count += 1
        if self.directory is not None and self._count - self._saved >= self.chunk:
            self._write_chunk(self._saved, self._count)
            self._saved = self._count

    # ---------------------------------------------------------------------------------------- sample

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch`` uniformly drawn sequences of ``length`` contiguous rows: ``{key: (batch, length, ...)}``.

        Raises
        ------
        ReplayError
            Fewer than ``length`` rows held per env.
        """
        if self._data is None or not self.can_sample(length):
            raise ReplayError(f"replay holds {self.steps_per_env()} rows per env; a sequence needs {length}")
        low = max(self._valid_from, self._count - self.per_env)
        env = rng.integers(0, self.num_envs, size=batch)
        start = rng.integers(low, self._count - length + 1, size=batch)
        slots = (start[:, None] + np.arange(length)[None, :]) % self.per_env
        out = {key: buffer[env[:, None], slots] for key, buffer in self._data.items()}  # fancy indexing copies
        if "is_first" in out:
            out["is_first"][:, 0] = True
        return out

    def rows(self, start: int, end: int) -> dict[str, np.ndarray]:
        """Rows of step indices ``[start, end)`` of every env (must still be held): ``{key: (num_envs, n, ...)}``."""
        low = max(self._valid_from, self._count - self.per_env)
        if self._data is None or not (low <= start <= end <= self._count):
            raise ReplayError(f"rows [{start}, {end}) are not held (held: [{low}, {self._count}))")
        slots = np.arange(start, end) % self.per_env
        return {key: buffer[:, slots] for key, buffer in self._data.items()}

    # ----------------------------------------------------------------------------------- persistence

    def _files(self) -> list[tuple[int, int, Path]]:
        assert self.directory is not None
        found = []
        for path in self.directory.iterdir():
            match = _CHUNK_NAME.match(path.name)
            if match:
                found.append((int(match[1]), int(match[2]), path))
        return sorted(found)

    def _write_chunk(self, start: int, end: int) -> None:
        assert self.directory is not None
        data = self.rows(start, end)
        path = self.directory / f"{start:012d}-{end:012d}.npz"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".chunk-", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                (np.savez_compressed if self.compress else np.savez)(f, **data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for other_start, _, other in self._files():  # a longer chunk replaces the partial one of the same start
            if other_start == start and other != path:
                other.unlink(missing_ok=True)

    def flush(self) -> None:
        """Persist the incomplete tail chunk (call before a checkpoint) and prune chunks no longer needed."""
        if self.directory is None or self._data is None:
            return
        if self._count > self._saved:
            self._write_chunk(self._saved, self._count)
        # Chunks out of the ring at the previous flush are not needed by any newer checkpoint's resume.
        horizon = self._last_flush - self.per_env
        for _, end, path in self._files():
            if end <= horizon:
                path.unlink(missing_ok=True)
        self._last_flush = self._count

    def load(self, count: int | None = None) -> int:
        """Rebuild the ring from the chunk files as it was when ``count`` rows per env had been written.

        Parameters
        ----------
        count : int, optional
            The write head to restore (a checkpoint's :attr:`count`); default: the newest row on disk. Rows
            beyond it (written after that checkpoint) are ignored and their files removed.

        Returns
        -------
        int
            Rows per env restored. Fewer than the ring holds when older chunks are missing (then sampling uses
            only what was restored); 0 with a warning when the newest rows are missing.
        """
        if self.directory is None:
            raise ReplayError("this replay has no directory to load from")
        files = self._files()
        if count is None:
            count = max((end for _, end, _ in files), default=0)
        count = int(count)
        self._data, self._count = None, count
        self._valid_from = self._saved = self._last_flush = count
        low = max(0, count - self.per_env)
        pieces = []  # (first, end, path, file start), newest first, contiguous back from count
        cursor = count
        while cursor > low:
            covering = [(start, end, path) for start, end, path in files if start < cursor <= end]
            if not covering:
                break
            start, _, path = min(covering)
            pieces.append((max(start, low), cursor, path, start))
            cursor = start
        if count and not pieces:
            warnings.warn(
                f"replay chunks up to step {count} are missing in {self.directory}; starting with an empty replay",
                stacklevel=2,
            )
        for first, end, path, start in reversed(pieces):
            with np.load(path) as chunk:
                arrays = {key: chunk[key] for key in chunk.files}
            if self._data is None:
                self._allocate({k: v[:, 0] for k, v in arrays.items()})
            assert self._data is not None
            slots = np.arange(first, end) % self.per_env
            for key, buffer in self._data.items():
                buffer[:, slots] = arrays[key][:, first - start : end - start]
        if pieces:
            self._valid_from = pieces[-1][0]
            newest_start = pieces[0][3]
            # Keep filling the newest chunk unless it is complete.
            self._saved = count if count - newest_start >= self.chunk else newest_start
        for start, _, path in files:  # rows after the checkpoint belong to a lost future
            if start >= count:
                path.unlink(missing_ok=True)
        return self.steps_per_env()
