"""The one training loop: envs -> driver -> learner -> updates, with logging, checkpoints and resume.

Every agent family trains through :func:`train`; what differs between them -- when the agent acts, what it
stores, when it updates, what its checkpoint holds -- is its learner (:mod:`.learners`: sequence replay at a train
ratio for DreamerV3 and AMBS, dopamine's transition replay and update schedule for the model-free baselines).

* the step counter counts agent steps summed over envs (``envs.amount`` per driver step);
* every ``run.log_every`` steps a record of ``train/*`` means, ``policy/*`` statistics of the policy's extras
  (p̂: mean, std, max, histogram), the learner's scalars (``replay/size`` …), ``fps`` and ``updates_per_second``;
  every finished episode its own ``episode/*`` record (return, cost, violations in total and per label,
  cumulative violations);
* every ``run.save_every`` steps, and at the end, a checkpoint (a log record is written first, so metrics are
  never lost at a checkpoint) with the learner's pytree, the loop's counters and the driver state (env snapshots,
  current observations, episode accumulators, policy carry);
* **resume**: when ``logdir`` holds a run, the newest checkpoint whose files match their manifest is restored (a
  corrupted newer one is skipped with a warning; the replay is reloaded up to the restored head, metrics after it
  dropped) and the run continues; stopping at step S and resuming gives the same result as never stopping;
* **divergence**: a non-finite loss or gradient norm, or a non-finite parameter at a checkpoint, stops the run
  with :class:`~.health.TrainingDiverged` (no such checkpoint is written);
* **Ctrl-C**: the first interrupt finishes the current step, saves a checkpoint and returns; a second one aborts.
"""

from __future__ import annotations

import signal
import threading
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from ..checkpoints import Checkpoint, Checkpointer, CheckpointError, first_non_finite
from ..config import Config, migrate
from ..rollout.agents import make_envs, prepare_config
from ..rollout.driver import Driver
from ..runs import RunDir
from .health import TrainingDiverged, diverged_metric, divergence_message, world_model_collapse
from .learners import learner_family
from .logger import MeanAggregator, MetricsLogger, ProgressBar

__all__ = ["TrainResult", "TrainingDiverged", "train"]


@dataclass
class TrainResult:
    """Where a :func:`train` call ended; ``state`` is the agent's state there (act with
    :func:`ambs_verify.agents.interface.bind`)."""

    step: int
    updates: int
    episodes: int
    resumed_from: int | None
    interrupted: bool
    logdir: Path
    state: Any = field(default=None, repr=False)


class Cadence:
    """When a loop writes a log record and a checkpoint: at the first step past each multiple of ``log_every`` /
    ``save_every`` (a save also counts as a log, since it writes one first)."""

    def __init__(self, step: int, log_every: int, save_every: int) -> None:
        self.log_every, self.save_every = log_every, save_every
        self._schedule(step)

    def _schedule(self, step: int) -> None:
        self.next_log = (step // self.log_every + 1) * self.log_every
        self.next_save = (step // self.save_every + 1) * self.save_every

    def due(self, step: int) -> str | None:
        """``"save"``, ``"log"`` or None for the loop's current ``step`` (and plan the next ones)."""
        if step >= self.next_save:
            self._schedule(step)
            return "save"
        if step >= self.next_log:
            self.next_log = (step // self.log_every + 1) * self.log_every
            return "log"
        return None


class _Interrupt:
    """First SIGINT sets a flag (the loop saves and stops); the second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _restore_newest_valid(checkpoints: Checkpointer, target: Any) -> Checkpoint | None:
    """The newest checkpoint whose files match their manifest; a corrupted newer one is skipped with a warning
    (it is overwritten when training reaches its step again). None when there is no checkpoint at all."""
    steps = checkpoints.steps()
    for i, step in enumerate(reversed(steps)):
        try:
            return checkpoints.restore(step, target=target)
        except CheckpointError as exc:
            older = steps[-i - 2] if i + 1 < len(steps) else None
            fallback = f"falling back to step {older}" if older is not None else "no older checkpoint: starting over"
            warnings.warn(f"checkpoint {step} is unusable ({exc}); {fallback}", RuntimeWarning, stacklevel=2)
    return None


class _Session:
    """One call of :func:`train` once the run directory is open: the driver, the learner, the counters, and the
    log and checkpoint writers (kept together so that each step of the loop is a short method)."""

    def __init__(self, config: Config, run: RunDir, driver: Driver, agent: Any, stack: ExitStack) -> None:
        self.config, self.run, self.driver = config, run, driver
        self.step, self.episodes, self.last_saved = 0, 0, None
        self.train_metrics, self.policy_extras = MeanAggregator(), MeanAggregator()
        self.learner = learner_family(config).build(config, agent, driver, run, self.on_update)
        self.stack = stack

    def open(self, force: bool, progress: bool | None) -> int | None:
        """Write (or resume) the run directory; restore the newest valid checkpoint. Returns its step or None."""
        config = self.config
        # the run directory is written only once the environments and the agent build: a rejected command leaves
        # nothing behind that would refuse the corrected one
        resumed = self.run.prepare(config, force=force, migrate=migrate)
        self.checkpoints = Checkpointer(self.run.checkpoints_dir, keep=config.run.keep_checkpoints)
        self.learner.open()
        ck = _restore_newest_valid(self.checkpoints, self.learner.checkpoint_target()) if resumed else None
        if resumed and ck is None:
            self.learner.start_over()
        if ck is not None:
            meta = ck.metadata
            self.step, self.episodes = meta["step"], meta["episodes"]
            self.learner.restore(ck, self.driver.loads(ck.files["driver.pkl"]))
            self.last_saved = self.step
        self.logger = self.stack.enter_context(MetricsLogger(self.run.path, resume_step=self.step if resumed else None))
        show = config.run.progress if progress is None else progress
        self.bar = self.stack.enter_context(ProgressBar(config.run.steps, self.step, enabled=show))
        self.clock = {"time": time.perf_counter(), "step": self.step, "updates": self.learner.updates, "logged": None}
        self.warned_collapse = False
        return None if ck is None else ck.step

    def on_update(self, metrics: dict[str, Any]) -> None:
        bad = diverged_metric(metrics)
        if bad is not None:
            raise TrainingDiverged(self._diverged(f"train/{bad[0]}", bad[1]))
        self.train_metrics.add(metrics)

    def _diverged(self, quantity: str, value: Any) -> str:
        return divergence_message(quantity, value, self.step, self.last_saved, self.run.checkpoints_dir)

    def advance(self) -> None:
        """One driver step: act, store, update, and log the episodes that ended."""
        result = self.driver.step(self.learner.act, None)
        self.step += self.driver.num_envs
        self.learner.observe(result.row, self.step)
        if result.extras:
            extras = {k: np.asarray(v, np.float64) for k, v in result.extras.items()}
            self.policy_extras.add(extras, keep_values=True)
        for episode in result.episodes:
            self.episodes += 1
            self.logger.write(self.step, {**episode.metrics(), "episode/env": episode.env})
            self.bar.update(self.step, f"return {episode.ret:.3g}, violations {episode.violations}")
        self.bar.update(self.step)

    def write_log(self) -> None:
        now, clock, updates = time.perf_counter(), self.clock, self.learner.updates
        elapsed = max(now - clock["time"], 1e-9)
        rate = (self.step - clock["step"]) / elapsed
        scalars: dict[str, Any] = {
            **self.learner.scalars(),
            "train/updates": updates,
            "fps": rate,
            "steps_per_second": rate,
            "updates_per_second": (updates - clock["updates"]) / elapsed,
        }
        scalars.update(self.train_metrics.means("train/"))
        hists = self.policy_extras.values("policy/")
        for name, values in hists.items():
            scalars.update({f"{name}_mean": values.mean(), f"{name}_std": values.std(), f"{name}_max": values.max()})
        self.logger.write(self.step, scalars, histograms=hists)
        problem = world_model_collapse(scalars, self.config.free_bits)
        if problem and not self.warned_collapse:
            self.warned_collapse = True
            self.bar.print(f"warning: {problem}")
        self.train_metrics.reset()
        self.policy_extras.reset()
        clock.update(time=now, step=self.step, updates=updates, logged=self.step)

    def save(self) -> None:
        tree, learner_meta, files = self.learner.checkpoint()
        bad = first_non_finite(tree)
        if bad is not None:
            raise TrainingDiverged(self._diverged(f"the parameter {bad}", "not finite"))
        if self.clock["logged"] != self.step:  # a log record first, unless one was just written at this step
            self.write_log()
        config = self.config
        metadata = {
            "step": self.step,
            "updates": self.learner.updates,
            "episodes": self.episodes,
            **learner_meta,
            "agent": config.agent,
            "task": config.task,
            "seed": config.seed,
        }
        self.checkpoints.save(self.step, tree, metadata, {"driver.pkl": self.driver.dumps(), **files})
        self.last_saved = self.step


def train(
    config: Config,
    agent: Any,
    *,
    envs: Sequence[gym.Env] | gym.vector.VectorEnv | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``agent`` as ``config`` says, writing (or resuming) the run directory ``config.logdir``.

    Parameters
    ----------
    config : Config
        A resolved config (:func:`ambs_verify.config.resolve`).
    agent
        From :func:`ambs_verify.rollout.agents.build_agent` (a DreamerV3 agent or a model-free baseline): the agent
        interface of :mod:`ambs_verify.agents.interface`.
    envs : list of gymnasium.Env or VectorEnv, optional
        Environments to use instead of building ``config.envs.amount`` copies of ``config.task``; they are not
        closed at the end.
    force : bool
        Resume even if the stored config differs in a key that matters (:meth:`RunDir.prepare`).
    progress : bool, optional
        Show the progress bar (default: ``run.progress``).

    Returns
    -------
    TrainResult
        ``updates`` counts gradient updates.
    """
    config = prepare_config(config)  # the baselines' dopamine Atari preprocessing (config.yaml shows it)
    own_envs = envs is None
    driver = Driver(make_envs(config) if own_envs else envs, seed=config.seed, onehot=learner_family(config).onehot)
    try:
        with ExitStack() as stack:
            stack.enter_context(jax.disable_jit(not config.jax.jit))
            stack.enter_context(jax.debug_nans(config.jax.debug_nans))
            session = _Session(config, RunDir(config.logdir), driver, agent, stack)
            resumed_from = session.open(force, progress)
            interrupt = stack.enter_context(_Interrupt())
            cadence = Cadence(session.step, config.run.log_every, config.run.save_every)
            while session.step < config.run.steps and not interrupt.requested:
                session.advance()
                action = cadence.due(session.step)
                if action == "save":
                    session.save()
                elif action == "log":
                    session.write_log()
            if session.last_saved != session.step:
                session.save()
    finally:
        if own_envs:
            driver.close()
    s = session
    return TrainResult(
        s.step, s.learner.updates, s.episodes, resumed_from, interrupt.requested, s.run.path, s.learner.state
    )
