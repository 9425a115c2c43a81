"""Metric logging: ``metrics.jsonl`` + TensorBoard (tensorboardX), a mean aggregator, and a rich progress bar.

``metrics.jsonl`` holds one flat JSON object per write: ``{"step": …, "time": <unix seconds>, "<group>/<name>": …}``
with ``step`` in agent steps. Non-finite values are written as ``null`` (JSON has no NaN). TensorBoard gets the same
scalars, plus histograms for 1-D arrays passed as ``histograms``.

On resume (``resume_step`` given), records with ``step > resume_step`` -- written after the checkpoint the run
resumes from -- are dropped from ``metrics.jsonl`` and TensorBoard is told to purge them (``purge_step``), so the
resumed run appends without duplicate steps.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

__all__ = ["MeanAggregator", "MetricsLogger", "ProgressBar", "to_json_value"]


def to_json_value(value: Any) -> Any:
    """A scalar as a JSON value: numpy scalars and 0-d arrays unwrapped, non-finite floats as None."""
    if isinstance(value, np.ndarray | np.generic):
        value = np.asarray(value).item()
    elif hasattr(value, "item") and callable(value.item):  # jax scalars
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLogger:
    """Append metrics to ``<run>/metrics.jsonl`` and TensorBoard event files in ``<run>/``.

    Parameters
    ----------
    directory : path
        The run directory.
    resume_step : int, optional
        Drop records after this step (see the module docstring).
    tensorboard : bool
        Also write TensorBoard events.
    """

    def __init__(self, directory: str | os.PathLike, resume_step: int | None = None, tensorboard: bool = True):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            self._truncate(resume_step)
        self._file = open(self.path, "a", encoding="utf-8")
        self._writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            purge = resume_step + 1 if resume_step is not None else None
            self._writer = SummaryWriter(logdir=str(self.directory), purge_step=purge, flush_secs=30)

    def _truncate(self, step: int) -> None:
        kept = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a torn last line from a crash
                    continue
                if int(record.get("step", 0)) <= step:
                    kept.append(line if line.endswith("\n") else line + "\n")
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".metrics-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(kept)
        os.replace(tmp, self.path)

    def write(
        self,
        step: int,
        scalars: Mapping[str, Any],
        histograms: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write one record of ``scalars`` (and TensorBoard histograms) at ``step``; returns the JSON record."""
        record: dict[str, Any] = {"step": int(step), "time": round(time.time(), 3)}
        record.update({str(k): to_json_value(v) for k, v in scalars.items()})
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in record.items():
                if key not in ("step", "time") and value is not None and not isinstance(value, str):
                    self._writer.add_scalar(key, float(value), int(step))
            for key, values in (histograms or {}).items():
                values = np.asarray(values, dtype=np.float64).ravel()
                values = values[np.isfinite(values)]
                if values.size:
                    self._writer.add_histogram(key, values, int(step))
        return record

    def flush(self) -> None:
        self._file.flush()
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close both outputs (idempotent)."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MeanAggregator:
    """Means of scalar metrics between two logs (e.g. the ``train/`` losses of many updates).

    Array values contribute all their elements; :meth:`values` keeps them for histograms.
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._values: dict[str, list[np.ndarray]] = {}

    def add(self, metrics: Mapping[str, Any], keep_values: bool = False) -> None:
        """Accumulate ``metrics``; ``keep_values`` also stores the raw values (for histograms)."""
        for key, value in metrics.items():
            array = np.asarray(value, dtype=np.float64).ravel()
            self._sums[key] = self._sums.get(key, 0.0) + float(array.sum())
            self._counts[key] = self._counts.get(key, 0) + array.size
            if keep_values:
                self._values.setdefault(key, []).append(array)

    def means(self, prefix: str = "") -> dict[str, float]:
        """``{prefix + key: mean}`` of everything added since the last :meth:`reset`."""
        return {prefix + k: self._sums[k] / self._counts[k] for k in self._sums if self._counts[k]}

    def values(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Raw values kept with ``keep_values=True``."""
        return {prefix + k: np.concatenate(v) for k, v in self._values.items() if v}

    def reset(self) -> None:
        self._sums.clear()
        self._counts.clear()
        self._values.clear()

    def __bool__(self) -> bool:
        return bool(self._sums)


class _StepsPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} steps/s" if speed else "… steps/s", style="cyan")


class ProgressBar:
    """A rich progress bar over agent steps with steps/s, ETA and a short status text.

    Parameters
    ----------
    total : int
        Step count at which training ends.
    completed : int
        Steps already done (on resume).
    enabled : bool
        False makes every method a no-op (tests, ``--run.progress False``).
    console : rich.console.Console, optional
        Defaults to stderr.
    """

    def __init__(self, total: int, completed: int = 0, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self._progress = None
        if not enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _StepsPerSecond(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console or Console(stderr=True),
            speed_estimate_period=60.0,
        )
        self._task = self._progress.add_task("train", total=total, completed=completed, status="")
        self._progress.start()

    def print(self, text: str) -> None:
        """A line above the bar (on stderr without a bar)."""
        if self._progress is None:
            print(text, file=sys.stderr)
        else:
            self._progress.console.print(text, markup=False, highlight=False)

    def update(self, step: int, status: str | None = None) -> None:
        """Move the bar to ``step``; ``status`` replaces the text at its end (e.g. the last episode return)."""
        if self._progress is None:
            return
        fields = {"status": status} if status is not None else {}
        self._progress.update(self._task, completed=step, **fields)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
