"""The trainer of the model-free baselines (DQN, Rainbow, IQN) with dopamine's replay and update schedule.

The DreamerV3 loop (:mod:`.loop`) replays *sequences* at a train ratio after a random prefill; the baselines
learn from n-step *transitions* the way dopamine does (spec §9), so they get their own small loop built from the
same parts — :class:`~.driver.Driver` (episode statistics: return, cost, violations in total and per label,
cumulative violations), :class:`~.logger.MetricsLogger` (``metrics.jsonl`` + TensorBoard),
:class:`~.logger.ProgressBar`, :class:`~.checkpoint.Checkpointer` (sha256 manifests) and
:class:`~ambs_verify.runs.RunDir` — around a :class:`~ambs_verify.agents.baselines.Learner`, which owns the
agent state, its transition replay (uniform or prioritized, n-step) and the update schedule.

Schedule (dopamine's ``_train_step``), in agent steps summed over ``envs.amount`` lockstep envs:

* the agent acts from the first step: ε-greedy with ε = 1 for ``baselines.min_replay_history`` transitions, then
  decaying linearly to ``epsilon_train`` over ``epsilon_decay_period`` (Rainbow: NoisyNet exploration, ε = 0);
* a transition (observation, action, clipped reward, n-step window) is stored when the next observation arrives;
  an episode's last observation is stored as its closing slot (the bootstrap state after a time limit);
* once more than ``min_replay_history`` transitions were stored, one gradient update runs every
  ``update_period`` transitions — completed *before* the agent picks its next action, as in dopamine — and the
  target network is copied every ``target_update_period`` transitions; Rainbow's priorities are updated from
  each batch's losses.

The driver also asks for an action on each episode's last observation (it is never executed); that row counts
towards ``run.steps`` and the progress bar, as in the DreamerV3 loop, but not towards the agent's step counter (ε,
the update schedule), which counts executed actions only, as dopamine's does.

Observations: one key, ``vector`` or ``image`` (a Dict observation with several keys is rejected). With
``baselines.atari_preprocessing: dopamine`` (the default), an ``atari_*`` task is played the way dopamine plays it
— ``env.atari`` is set to 84×84 grey, max-pool of the last two frames, repeat 4, sticky actions 0.25, no no-op
starts, minimal action set, 27,000 steps per episode (the resolved ``config.yaml`` shows these values) — and
grey frames are stacked ``baselines.frame_stack`` deep (:class:`~ambs_verify.envs.dopamine_atari.FrameStack`).
``baselines.torso: auto`` gives the Nature CNN for images and an MLP (``baselines.mlp_units``) for vectors.

Outputs: every finished episode writes its ``episode/*`` record; every ``run.log_every`` steps a record with the
``train/*`` means of the updates since the last one (``loss``, ``grad_norm``, the agent's own loss terms),
``train/updates``, ``policy/epsilon``, ``replay/size`` (sampleable transitions), ``replay/transitions`` (stored
so far), ``fps`` and ``steps_per_second`` (agent steps per second; ``fps`` is the DreamerV3 loop's name) and
``updates_per_second``. Every ``run.save_every`` steps, and at the end, a checkpoint holds the agent state
(online and target parameters, optimiser state, step and update counters), the learner's JAX key and the replay
buffers (priorities included) as one orbax pytree, with the replay's counters and sampling generator, the loop's
counters, the driver state (env snapshots, episode accumulators) and the transition awaiting its next
observation beside it. A logdir that holds a run resumes from its newest checkpoint; stopping at step S and
resuming gives the same result as never stopping. Ctrl-C: the first saves and returns, the second aborts.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from ..config import Config, ConfigError, env_family, env_options
from ..runs import RunDir
from .checkpoint import Checkpointer
from .driver import Driver
from .factory import BASELINE_AGENTS
from .health import TrainingDiverged, diverged_metric, divergence_message, first_non_finite
from .logger import MeanAggregator, MetricsLogger, ProgressBar
from .loop import Cadence, TrainResult, _Interrupt

__all__ = ["BASELINE_AGENTS", "baseline_settings", "build_baseline_agent", "make_envs", "prepare_config", "train"]

# ``baselines.<key>`` shared by the three agents, as :class:`~ambs_verify.agents.baselines.BaseConfig` fields.
SHARED_KEYS = (
    "frame_stack",
    "torso",
    "mlp_units",
    "hidden",
    "gamma",
    "min_replay_history",
    "update_period",
    "target_update_period",
    "epsilon_train",
    "epsilon_eval",
    "epsilon_decay_period",
    "batch_size",
    "replay_capacity",
    "reward_clip",
    "optimizer",
    "rmsprop_decay",
    "rmsprop_eps",
    "rmsprop_centered",
)
# Train metrics that are not means worth logging.
_SKIPPED_METRICS = ("target_synced",)


# ------------------------------------------------------------------------------------------------- config


def prepare_config(config: Config) -> Config:
    """``config`` with dopamine's Atari preprocessing written into ``env.atari`` when it applies.

    It applies to ``atari_*`` tasks with ``baselines.atari_preprocessing: dopamine``; labels and ``cost_val``
    stay as configured. Anything else is returned unchanged.
    """
    if config.baselines.atari_preprocessing != "dopamine" or env_family(config.task) != "atari":
        return config
    from ..envs.dopamine_atari import DOPAMINE_ATARI_OPTIONS

    overrides = {
        f"env.atari.{key}": list(value) if isinstance(value, tuple) else value
        for key, value in DOPAMINE_ATARI_OPTIONS.items()
    }
    return config.replace(overrides)


def baseline_settings(config: Config) -> dict[str, Any]:
    """Keyword settings of ``config.agent``'s config class from ``baselines.*`` and ``baselines.<agent>.*``.

    ``reward_clip: 0`` means no clipping (``None``); ``mlp_units`` becomes a tuple.
    """
    if config.agent not in BASELINE_AGENTS:
        raise ConfigError(
            f"agent {config.agent!r} is not a model-free baseline; accepted: {', '.join(BASELINE_AGENTS)}"
        )
    block = config.baselines
    settings = {key: block[key] for key in SHARED_KEYS}
    settings["mlp_units"] = tuple(block.mlp_units)
    settings["reward_clip"] = block.reward_clip if block.reward_clip > 0 else None
    settings.update(block[config.agent].to_dict())
    return settings


def _check(config: Config, settings: dict[str, Any]) -> None:
    """One-line :class:`ConfigError` for values the per-key checks of :mod:`ambs_verify.config` cannot see."""
    # single keys' ranges (gamma, epsilons, learning rates, v_max …) are declared in config.RANGES
    if settings["target_update_period"] % settings["update_period"]:
        raise ConfigError(
            f"--baselines.target_update_period ({settings['target_update_period']}) must be a multiple of "
            f"--baselines.update_period ({settings['update_period']}), so that the target is copied at an update"
        )
    per_env = settings["replay_capacity"] // config.envs.amount
    needed = settings["update_horizon"] + settings["frame_stack"] + 2
    if per_env < needed:
        raise ConfigError(
            f"--baselines.replay_capacity ({settings['replay_capacity']}) must hold at least {needed} transitions "
            f"per env (update_horizon + frame_stack + 2) for --envs.amount {config.envs.amount}"
        )


def build_baseline_agent(config: Config):
    """The :class:`~ambs_verify.agents.baselines.BaselineAgent` that ``config.agent`` and ``baselines.*`` describe.

    Raises
    ------
    ConfigError
        One line naming the key, for values outside what the agent accepts.
    """
    from ..agents.baselines import make_agent

    settings = baseline_settings(config)
    _check(config, settings)
    try:
        return make_agent(config.agent, **settings)
    except ValueError as exc:
        raise ConfigError(f"agent {config.agent!r}: {exc}") from None


# --------------------------------------------------------------------------------------------------- envs


def make_envs(config: Config) -> list[gym.Env]:
    """``envs.amount`` copies of ``config.task`` (call :func:`prepare_config` first); grey Atari frames are stacked
    ``baselines.frame_stack`` deep."""
    from ..envs.dopamine_atari import FrameStack
    from ..envs.registry import make_env

    options = env_options(config)
    k = config.baselines.frame_stack
    stack = env_family(config.task) == "atari" and bool(options.get("gray")) and k > 1
    envs = []
    for _ in range(config.envs.amount):
        env = make_env(config.task, **options)
        envs.append(FrameStack(env, k) if stack else env)
    return envs


def _observation_key(space: gym.spaces.Dict) -> str:
    if len(space.spaces) != 1:
        raise ConfigError(
            f"the baseline agents take one observation (vector or image); this task gives {', '.join(space.spaces)}"
            " (e.g. set --env.grid.observation vector)"
        )
    return next(iter(space.spaces))


class _Actor:
    """The driver's policy: completes the pending transition with the arriving observation (running the updates
    now due, dopamine's order), then acts. ``pending`` holds the last row's observation, action and end flag."""

    def __init__(self, learner, obs_key: str, on_update) -> None:
        self.learner = learner
        self.obs_key = obs_key
        self.on_update = on_update
        self.pending: dict[str, np.ndarray] | None = None

    def __call__(self, obs: dict[str, np.ndarray], carry: Any, rng: Any) -> tuple[np.ndarray, Any, dict]:
        if self.pending is not None:
            last, terminal = obs["is_last"], obs["is_terminal"]
            metrics = self.learner.observe(
                self.pending["obs"],
                self.pending["action"],
                obs["reward"],
                terminal,
                last & ~terminal,
                obs[self.obs_key],
                active=~self.pending["is_last"],
            )
            self.on_update(metrics)
        return self.learner.act(obs[self.obs_key], active=~obs["is_last"]), carry, {}

    def remember(self, row: dict[str, np.ndarray]) -> None:
        self.pending = {"obs": row[self.obs_key], "action": row["action"], "is_last": row["is_last"]}


# -------------------------------------------------------------------------------------------------- train


def train(
    config: Config,
    agent,
    *,
    envs: Sequence[gym.Env] | gym.vector.VectorEnv | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train a model-free baseline as ``config`` says, writing (or resuming) the run directory ``config.logdir``.

    Parameters
    ----------
    config : Config
        A resolved config with ``agent`` one of :data:`BASELINE_AGENTS`.
    agent : BaselineAgent
        From :func:`build_baseline_agent` (``ambs_verify.trainers.factory.build_agent``).
    envs : list of gymnasium.Env or VectorEnv, optional
        Environments to use instead of :func:`make_envs`; they are not closed at the end.
    force : bool
        Resume even if the stored config differs in a key that matters (:meth:`RunDir.prepare`).
    progress : bool, optional
        Show the progress bar (default: ``run.progress``).

    Returns
    -------
    TrainResult
        ``updates`` counts gradient updates.
    """
    from ..agents.baselines import Learner

    config = prepare_config(config)
    own_envs = envs is None
    driver = Driver(make_envs(config) if own_envs else envs, seed=config.seed, onehot=False)
    try:
        obs_key = _observation_key(driver.obs_space)  # before the run directory is written
        run = RunDir(config.logdir)
        n = driver.num_envs
        with ExitStack() as stack:
            stack.enter_context(jax.disable_jit(not config.jax.jit))
            stack.enter_context(jax.debug_nans(config.jax.debug_nans))
            learner = Learner(agent, driver.obs_space[obs_key], driver.act_space, num_envs=n, seed=config.seed)
            resumed = run.prepare(config, force=force)  # written once the agent builds (loop.train says why)
            checkpoints = Checkpointer(run.checkpoints_dir, keep=config.run.keep_checkpoints)
            train_metrics = MeanAggregator()
            counts = {"updates": 0}

            def on_update(metrics: list[dict]) -> None:
                for m in metrics:
                    bad = diverged_metric(m)
                    if bad is not None:
                        where = run.checkpoints_dir
                        raise TrainingDiverged(divergence_message(f"train/{bad[0]}", bad[1], step, last_saved, where))
                    train_metrics.add({k: v for k, v in m.items() if k not in _SKIPPED_METRICS})
                counts["updates"] += len(metrics)

            actor = _Actor(learner, obs_key, on_update)
            step, episodes = 0, 0
            resumed_from = checkpoints.latest() if resumed else None
            if resumed_from is not None:
                target, _ = learner.checkpoint()
                ck = checkpoints.restore(resumed_from, target=target)
                meta = ck.metadata
                learner.load_checkpoint(ck.tree, meta["learner"])
                step, episodes, counts["updates"] = meta["step"], meta["episodes"], meta["updates"]
                if driver.loads(ck.files["driver.pkl"]):
                    actor.pending = pickle.loads(ck.files["pending.pkl"])
            logger = stack.enter_context(MetricsLogger(run.path, resume_step=step if resumed else None))
            show = config.run.progress if progress is None else progress
            bar = stack.enter_context(ProgressBar(config.run.steps, step, enabled=show))
            interrupt = stack.enter_context(_Interrupt())
            cadence = Cadence(step, config.run.log_every, config.run.save_every)
            last_saved = step if resumed_from is not None else None
            clock = {"time": time.perf_counter(), "step": step, "updates": counts["updates"], "logged": None}

            def write_log() -> None:
                now = time.perf_counter()
                elapsed = max(now - clock["time"], 1e-9)
                rate = (step - clock["step"]) / elapsed
                scalars: dict[str, Any] = {
                    "replay/size": len(learner.replay),
                    "replay/transitions": learner.replay.add_count,
                    "train/updates": counts["updates"],
                    "policy/epsilon": learner.epsilon(),
                    "fps": rate,
                    "steps_per_second": rate,
                    "updates_per_second": (counts["updates"] - clock["updates"]) / elapsed,
                }
                scalars.update(train_metrics.means("train/"))
                logger.write(step, scalars)
                train_metrics.reset()
                clock.update(time=now, step=step, updates=counts["updates"], logged=step)

            def save() -> None:
                nonlocal last_saved
                tree, learner_meta = learner.checkpoint()
                bad = first_non_finite(tree)
                if bad is not None:
                    where = run.checkpoints_dir
                    raise TrainingDiverged(
                        divergence_message(f"the parameter {bad}", "not finite", step, last_saved, where)
                    )
                if clock["logged"] != step:  # a log record first, unless one was just written at this step
                    write_log()
                metadata = {
                    "step": step,
                    "updates": counts["updates"],
                    "episodes": episodes,
                    "learner": learner_meta,
                    "agent": config.agent,
                    "task": config.task,
                    "seed": config.seed,
                }
                files = {"driver.pkl": driver.dumps(), "pending.pkl": pickle.dumps(actor.pending)}
                checkpoints.save(step, tree, metadata, files)
                last_saved = step

            interrupted = False
            while step < config.run.steps:
                result = driver.step(actor, None)
                actor.remember(result.row)
                step += n
                for episode in result.episodes:
                    episodes += 1
                    logger.write(step, {**episode.metrics(), "episode/env": episode.env})
                    bar.update(step, f"return {episode.ret:.3g}, violations {episode.violations}")
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
    finally:
        if own_envs:
            driver.close()
    return TrainResult(step, counts["updates"], episodes, resumed_from, interrupted, run.path)
