"""The run directory (DESIGN.md §2): the one place that knows where a run's files live.

::

    runs/NAME/
      config.yaml              the fully resolved config
      checkpoints/<step>/      orbax checkpoint + manifest.json (sha256 of every file); <step> counts agent steps
      replay/                  persisted replay chunks (resume)
      metrics.jsonl, events.*  one JSON object per line + TensorBoard
      certificates/<step>.json
      report.html, report.md

Trainers write it and reports read it; neither imports the other, both import this module. It reads and lists,
it does not interpret checkpoints (``ambs_verify.checkpoints`` does).

Resuming: a directory "holds a run" when it has a ``config.yaml``. :meth:`RunDir.prepare` then compares the stored
config with the new one and refuses, in one line, when a key that changes the experiment differs (the seed, the
task, env options, model sizes, the replay …). Keys that only say how long to run or how often to log and save
(:data:`RESUMABLE_KEYS`) may change freely, so ``--run.steps`` can be raised to continue a finished run. Pass
``force=True`` (``--force``) to resume anyway; the previous config is kept as ``config.previous.yaml``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "RESUMABLE_KEYS",
    "RunDir",
    "RunMismatchError",
    "absolute_path",
    "config_differences",
    "holds_run",
    "sweep_runs",
    "write_text_atomic",
]

# Keys that may differ between a run and its resumption (fnmatch patterns over dotted keys).
RESUMABLE_KEYS = (
    "logdir",
    "run.steps",
    "run.log_every",
    "run.save_every",
    "run.keep_checkpoints",
    "run.progress",
    "jax.platform",
    "jax.jit",
    "jax.debug_nans",
    "jax.devices",  # the batch split differently: the same updates up to float summation order
)


class RunMismatchError(ValueError):
    """The logdir holds a run whose config differs in a key that matters; the message names the keys."""


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    to_dict = getattr(config, "to_dict", None)
    return to_dict() if callable(to_dict) else json.loads(json.dumps(config))


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], ignore=RESUMABLE_KEYS) -> dict[str, tuple]:
    """``{dotted key: (old, new)}`` for every leaf that differs, except keys matching ``ignore``."""
    a, b = _flatten(_plain(old)), _flatten(_plain(new))
    out = {}
    for key in sorted(set(a) | set(b)):
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in ignore):
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            out[key] = (a.get(key, "<absent>"), b.get(key, "<absent>"))
    return out


def absolute_path(path: str | os.PathLike) -> Path:
    """``path`` made absolute against the current directory once, where a user hands it over (``~`` expanded,
    symlinks kept): later code may change directory, and orbax refuses relative paths."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def holds_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run directory (it has a ``config.yaml``)."""
    return (Path(path) / "config.yaml").is_file()


def sweep_runs(path: str | os.PathLike) -> list[Path] | None:
    """The run directories of a sweep directory (``sweep.yaml`` and ``cells/<name>/``, :mod:`ambs_verify.sweep`)
    that hold a run, sorted by name; None when ``path`` is not a sweep directory."""
    root = absolute_path(path)
    if not (root / "sweep.yaml").is_file():
        return None
    cells = root / "cells"
    return sorted(p for p in cells.iterdir() if holds_run(p)) if cells.is_dir() else []


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then ``os.replace`` it into place (readers see
    the old file or the new one, never a torn one); the file gets the mode ``open()`` would give it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """Paths and readers of one run directory.

    Parameters
    ----------
    path : str or PathLike
        The logdir; it need not exist yet. A relative path is made absolute against the current directory.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = absolute_path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ----------------------------------------------------------------------------------------- paths

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def replay_dir(self) -> Path:
        return self.path / "replay"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def tensorboard_dir(self) -> Path:
        """TensorBoard event files sit in the run directory itself (``tensorboard --logdir runs/``)."""
        return self.path

    @property
    def certificates_dir(self) -> Path:
        return self.path / "certificates"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @property
    def report_md(self) -> Path:
        return self.path / "report.md"

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / str(int(step))

    def certificate_path(self, step: int) -> Path:
        return self.certificates_dir / f"{int(step)}.json"

    # ---------------------------------------------------------------------------------------- config

    def exists(self) -> bool:
        """Whether this directory holds a run (a ``config.yaml``)."""
        return holds_run(self.path)

    def read_config(self) -> dict[str, Any]:
        """The stored resolved config as plain data."""
        with open(self.config_path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Write ``config.yaml`` atomically (a :class:`~ambs_verify.config.Config` or plain mapping)."""
        write_text_atomic(self.config_path, yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True))

    def prepare(self, config: Mapping[str, Any], force: bool = False, migrate=None) -> bool:
        """Create the run, or check that ``config`` may resume the run already here.

        ``migrate(mapping)`` brings a stored config written by an older version to today's layout before the two
        are compared (:func:`ambs_verify.config.migrate`).

        Returns
        -------
        bool
            True when the directory already held a run (the caller resumes), False for a fresh run.

        Raises
        ------
        RunMismatchError
            The stored config differs from ``config`` in a key outside :data:`RESUMABLE_KEYS` and ``force`` is
            False. The message lists up to three differing keys.
        """
        if not self.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            self.write_config(config)
            return False
        old = self.read_config()
        diffs = config_differences(migrate(old) if migrate else old, config)
        if diffs and not self.checkpoint_steps() and not self.metrics_path.is_file():
            self.write_config(config)  # an earlier attempt stopped before its first step: nothing to resume
            return False
        if diffs and not force:
            shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diffs.items())[:3])
            more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
            raise RunMismatchError(
                f"{self.path} holds a run with a different config ({shown}{more}); "
                "use another --logdir, or --force to resume with the new config"
            )
        if diffs:
            write_text_atomic(self.path / "config.previous.yaml", self.config_path.read_text(encoding="utf-8"))
        self.write_config(config)
        return True

    # ----------------------------------------------------------------------------------- checkpoints

    def checkpoint_steps(self) -> list[int]:
        """Steps of the complete checkpoints (directories named by an integer that hold a ``manifest.json``)."""
        if not self.checkpoints_dir.is_dir():
            return []
        steps = [
            int(p.name)
            for p in self.checkpoints_dir.iterdir()
            if p.is_dir() and p.name.isdigit() and (p / "manifest.json").is_file()
        ]
        return sorted(steps)

    def latest_checkpoint(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        steps = self.checkpoint_steps()
        return steps[-1] if steps else None

    def read_manifest(self, step: int) -> dict[str, Any]:
        """A checkpoint's ``manifest.json`` (file hashes, step, metadata)."""
        with open(self.checkpoint_path(step) / "manifest.json", encoding="utf-8") as f:
            return json.load(f)

    # --------------------------------------------------------------------------------------- metrics

    def iter_metrics(self) -> Iterator[dict[str, Any]]:
        """Records of ``metrics.jsonl`` in file order (a torn last line, from a crash mid-write, and lines that hold
        no JSON object are skipped)."""
        if not self.metrics_path.is_file():
            return
        with open(self.metrics_path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):  # a stray null or number (a hand edit) is no record
                    yield record

    def read_metrics(self, prefix: str | None = None) -> list[dict[str, Any]]:
        """All metric records; with ``prefix``, only records holding a key that starts with it (e.g. ``episode/``)."""
        records = list(self.iter_metrics())
        if prefix is None:
            return records
        return [r for r in records if any(k.startswith(prefix) for k in r)]

    def scalar_series(self, key: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one metric key across the run."""
        steps, values = [], []
        for record in self.iter_metrics():
            if key in record:
                steps.append(int(record["step"]))
                values.append(record[key])
        return steps, values

    # ---------------------------------------------------------------------------------- certificates

    def certificate_steps(self) -> list[int]:
        """Steps with a certificate ``certificates/<step>.json``."""
        if not self.certificates_dir.is_dir():
            return []
        return sorted(int(p.stem) for p in self.certificates_dir.glob("*.json") if p.stem.isdigit())

    def write_certificate(self, step: int, certificate: Mapping[str, Any]) -> Path:
        """Write ``certificates/<step>.json`` atomically; returns its path."""
        path = self.certificate_path(step)
        write_text_atomic(path, json.dumps(certificate, indent=2, sort_keys=True) + "\n")
        return path

    def read_certificate(self, step: int) -> dict[str, Any]:
        with open(self.certificate_path(step), encoding="utf-8") as f:
            return json.load(f)
