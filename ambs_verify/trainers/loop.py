"""The generic training loop: envs -> driver -> replay -> agent updates, with logging, checkpoints and resume.

An agent plugs in through four members (:class:`Agent`)::

    agent.init(rng, obs_space, act_space)         # builds agent.state (a JAX key, keyed Dict space, action space)
    agent.state                                   # ONE pytree: params, optimiser states, normaliser stats …
    agent.policy(obs, carry, rng)                 # -> (actions, carry, extras), as Driver.step expects
    agent.train(state, batch, rng)                # -> (state, metrics); batch = replay sample {key: (B, T, ...)}

Schedule (spec §10.1, with steps instead of seconds):

* the step counter counts agent steps summed over envs (``envs.amount`` per driver step);
* **prefill** with a uniform random policy until the replay holds ``max(B·T, run.train_fill)`` steps and a full
  sequence per env; then the agent's policy acts;
* **train ratio**: from the end of the prefill, updates are due so that ``updates = floor(steps · train_ratio /
  (B·T))`` (exact integer arithmetic), i.e. ``train_ratio / (B·T)`` updates per env step;
* every ``run.log_every`` steps a record of ``train/*`` means, ``policy/*`` statistics of the policy's extras
  (p̂: mean, std, max, histogram), ``replay/size`` and ``fps``; every finished episode its own ``episode/*`` record;
* every ``run.save_every`` steps, and at the end, a checkpoint (a log record is written first, so metrics are
  never lost at a checkpoint). Each checkpoint holds the agent pytree, the loop's JAX key, the step and update
  counters, the replay sampler's generator, the replay head and the driver state (env snapshots, current
  observations, episode accumulators, policy carry);
* **resume**: when ``logdir`` holds a run, the newest checkpoint whose files match their manifest is restored (a
  corrupted newer one is skipped with a warning; the replay is reloaded up to the restored head, metrics after it
  dropped) and the run continues; stopping at step S and resuming gives the same result as
  never stopping;
* **Ctrl-C**: the first interrupt finishes the current step, saves a checkpoint and returns; a second one aborts.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import jax
import numpy as np

from ..config import Config, ConfigError, env_options
from ..runs import RunDir
from .checkpoint import Checkpoint, Checkpointer, CheckpointError
from .driver import Driver, random_policy
from .health import TrainingDiverged, diverged_metric, divergence_message, first_non_finite, world_model_collapse
from .logger import MeanAggregator, MetricsLogger, ProgressBar
from .replay import Replay

__all__ = ["Agent", "TrainResult", "TrainingDiverged", "configure_jax", "train"]


class Agent(Protocol):
    """What :func:`train` needs from an agent (see the module docstring)."""

    state: Any

    def init(self, rng: jax.Array, obs_space: gym.spaces.Dict, act_space: gym.Space) -> Any: ...

    def policy(self, obs: dict[str, np.ndarray], carry: Any, rng: jax.Array) -> tuple[Any, Any, dict]: ...

    def train(self, state: Any, batch: dict[str, np.ndarray], rng: jax.Array) -> tuple[Any, dict]: ...


@dataclass
class TrainResult:
    """Where a :func:`train` call ended."""

    step: int
    updates: int
    episodes: int
    resumed_from: int | None
    interrupted: bool
    logdir: Path


def compilation_cache_dir() -> Path | None:
    """Where compiled XLA programs persist between commands: ``$XDG_CACHE_HOME/ambs-verify/jax`` (default
    ``~/.cache/ambs-verify/jax``), or None when ``JAX_COMPILATION_CACHE_DIR`` is set (JAX then follows it; an empty
    value turns the cache off)."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return None
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory to be found: compile every time
        return None
    return base / "ambs-verify" / "jax"


def configure_jax(config: Config) -> None:
    """Select the JAX platform from ``jax.platform`` and turn on JAX's persistent compilation cache
    (:func:`compilation_cache_dir`): ``verify`` then loads the programs ``certify`` compiled instead of compiling
    them again (about a third of its time on the quickstart). Call before any JAX computation; later calls are
    ignored."""
    platform = {"gpu": "cuda"}.get(config.jax.platform, config.jax.platform)
    try:
        jax.config.update("jax_platforms", platform)
    except RuntimeError:  # the backend is already initialised
        pass
    try:
        jax.devices(platform)
    except (RuntimeError, AssertionError):  # JAX asserts when the only platform allowed fails to start
        raise ConfigError(
            f"--jax.platform {config.jax.platform}: JAX finds no {platform} device on this machine; accepted: cpu, "
            "or a platform whose device and jaxlib plugin are installed"
        ) from None
    cache = compilation_cache_dir()
    if cache is not None:
        jax.config.update("jax_compilation_cache_dir", str(cache))
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # JAX's default 1 s misses most of ours
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


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


def _make_envs(config: Config) -> list[gym.Env]:
    from ..envs.registry import make_env

    return [make_env(config.task, **env_options(config)) for _ in range(config.envs.amount)]


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


def train(
    config: Config,
    agent: Agent,
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
    agent : Agent
        See :class:`Agent`.
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
    """
    run = RunDir(config.logdir)
    own_envs = envs is None
    driver = Driver(_make_envs(config) if own_envs else envs, seed=config.seed)
    n = driver.num_envs
    batch, length = config.replay.batch_size, config.replay.batch_length
    fill = max(batch * length, config.run.train_fill)
    ratio = Fraction(config.run.train_ratio) / (batch * length)

    key = jax.random.PRNGKey(config.seed)
    key, init_key = jax.random.split(key)
    with ExitStack() as stack:
        stack.enter_context(jax.disable_jit(not config.jax.jit))
        stack.enter_context(jax.debug_nans(config.jax.debug_nans))
        returned = agent.init(init_key, driver.obs_space, driver.act_space)
        if returned is not None:
            agent.state = returned
        # the run directory is written only once the environments and the agent build: a rejected command leaves
        # nothing behind that would refuse the corrected one
        resumed = run.prepare(config, force=force)
        replay = Replay(config.replay.size, n, run.replay_dir, config.replay.chunk)
        checkpoints = Checkpointer(run.checkpoints_dir, keep=config.run.keep_checkpoints)
        sampler = np.random.default_rng([config.seed, 1])
        step, updates, episodes, train_start = 0, 0, 0, None
        ck = _restore_newest_valid(checkpoints, {"agent": agent.state, "key": key}) if resumed else None
        resumed_from = ck.step if ck is not None else None
        if ck is not None:
            agent.state, key = ck.tree["agent"], ck.tree["key"]
            meta = ck.metadata
            step, updates, episodes, train_start = meta["step"], meta["updates"], meta["episodes"], meta["train_start"]
            sampler.bit_generator.state = meta["sampler"]
            driver.loads(ck.files["driver.pkl"])
            replay.load(meta["replay_count"])
        elif resumed:
            replay.load(0)  # a run that crashed before its first checkpoint starts over
        logger = stack.enter_context(MetricsLogger(run.path, resume_step=step if resumed else None))
        show = config.run.progress if progress is None else progress
        bar = stack.enter_context(ProgressBar(config.run.steps, step, enabled=show))
        interrupt = stack.enter_context(_Interrupt())
        prefill = random_policy(driver.act_space, n)
        train_metrics, policy_extras = MeanAggregator(), MeanAggregator()
        cadence = Cadence(step, config.run.log_every, config.run.save_every)
        last_saved = step if resumed_from is not None else None
        clock = {"time": time.perf_counter(), "step": step, "updates": updates}
        warned = {"collapse": False}

        def write_log() -> None:
            now = time.perf_counter()
            elapsed = max(now - clock["time"], 1e-9)
            scalars: dict[str, Any] = {
                "replay/size": len(replay),
                "train/updates": updates,
                "fps": (step - clock["step"]) / elapsed,
                "updates_per_second": (updates - clock["updates"]) / elapsed,
            }
            scalars.update(train_metrics.means("train/"))
            hists = policy_extras.values("policy/")
            for name, values in hists.items():
                scalars.update(
                    {f"{name}_mean": values.mean(), f"{name}_std": values.std(), f"{name}_max": values.max()}
                )
            logger.write(step, scalars, histograms=hists)
            problem = world_model_collapse(scalars, config.free_bits)
            if problem and not warned["collapse"]:
                warned["collapse"] = True
                bar.print(f"warning: {problem}")
            train_metrics.reset()
            policy_extras.reset()
            clock.update(time=now, step=step, updates=updates)

        def save() -> None:
            nonlocal last_saved
            bad = first_non_finite(agent.state)
            if bad is not None:
                raise TrainingDiverged(
                    divergence_message(f"the parameter {bad}", "not finite", step, last_saved, run.checkpoints_dir)
                )
            write_log()
            replay.flush()
            metadata = {
                "step": step,
                "updates": updates,
                "episodes": episodes,
                "train_start": train_start,
                "replay_count": replay.count,
                "sampler": sampler.bit_generator.state,
                "task": config.task,
                "seed": config.seed,
            }
            checkpoints.save(step, {"agent": agent.state, "key": key}, metadata, {"driver.pkl": driver.dumps()})
            last_saved = step

        interrupted = False
        while step < config.run.steps:
            key, policy_key = jax.random.split(key)
            acting = prefill if train_start is None else agent.policy
            result = driver.step(acting, policy_key)
            replay.add(result.row)
            step += n
            if result.extras:
                policy_extras.add({k: np.asarray(v, np.float64) for k, v in result.extras.items()}, keep_values=True)
            for episode in result.episodes:
                episodes += 1
                metrics = episode.metrics()
                logger.write(step, {**metrics, "episode/env": episode.env})
                bar.update(step, f"return {episode.ret:.3g}, violations {episode.violations}")
            if train_start is None and len(replay) >= fill and replay.can_sample(length):
                train_start = step
            if train_start is not None:
                due = (step - train_start) * ratio.numerator // ratio.denominator
                while updates < due:
                    key, train_key = jax.random.split(key)
                    sample = replay.sample(batch, length, sampler)
                    agent.state, metrics = agent.train(agent.state, sample, train_key)
                    metrics = jax.device_get(metrics or {})
                    bad = diverged_metric(metrics)
                    if bad is not None:
                        raise TrainingDiverged(
                            divergence_message(f"train/{bad[0]}", bad[1], step, last_saved, run.checkpoints_dir)
                        )
                    train_metrics.add(metrics)
                    updates += 1
            bar.update(step)
            action = cadence.due(step)
            if action == "save":
                save()
            elif action == "log":
                write_log()
            if interrupt.requested:
                interrupted = True
                break
        if last_saved != step:
            save()
    if own_envs:
        driver.close()
    return TrainResult(step, updates, episodes, resumed_from, interrupted, run.path)
