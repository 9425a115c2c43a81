"""The agent a resolved config asks for, and the environments it acts in: the one place that maps ``agent:`` names
to agent objects (training, certify and verify all build agents here).

``ambs``, ``dreamer`` and ``lagrangian`` are DreamerV3 agents (:class:`~ambs_verify.agents.ambs.DreamerAgent`);
``rainbow``, ``iqn`` and ``dqn`` are the model-free baselines with dopamine's settings
(:class:`~ambs_verify.agents.baselines.BaselineAgent`), whose Atari frames are preprocessed the dopamine way
(:func:`prepare_config`) and stacked (:func:`make_envs`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym

from ..config import Config, ConfigError, agent_config, env_family, env_options, shield_config

__all__ = [
    "AVAILABLE_AGENTS",
    "BASELINE_AGENTS",
    "SHIELDED_AGENTS",
    "baseline_settings",
    "build_agent",
    "make_envs",
    "observation_key",
    "prepare_config",
]

BASELINE_AGENTS = ("rainbow", "iqn", "dqn")  # model-free, dopamine's settings
SHIELDED_AGENTS = ("ambs",)  # the agents built with a shield and a safe policy
AVAILABLE_AGENTS = (*SHIELDED_AGENTS, "dreamer", "lagrangian", *BASELINE_AGENTS)

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


def build_agent(config: Config):
    """The trainer-facing agent for ``config.agent``.

    ``ambs`` is DreamerV3 with the shield and the safe policy (plus PENL / PLPG / COPT when configured);
    ``dreamer`` is the unshielded DreamerV3 baseline (no safe policy; the twin cost critic is still trained so that
    violations can be predicted and logged); ``lagrangian`` is the augmented-Lagrangian DreamerV3 baseline
    (unshielded, a cost critic whose lambda-return is penalised in the task advantage). ``rainbow``, ``iqn`` and
    ``dqn`` are the model-free baselines with dopamine's settings (:func:`build_baseline_agent`).
    """
    from ..agents.agent import task_shaping
    from ..agents.ambs import DreamerAgent

    if config.agent not in AVAILABLE_AGENTS:
        raise ConfigError(
            f"agent {config.agent!r} is not available in this version; accepted: {', '.join(AVAILABLE_AGENTS)}"
        )
    if config.agent in BASELINE_AGENTS:
        return build_baseline_agent(config)
    learner = agent_config(config)
    if config.agent not in SHIELDED_AGENTS:
        learner = dataclasses.replace(learner, safety=dataclasses.replace(learner.safety, shielding=False))
        shield = None
    elif not config.shielding:
        raise ConfigError("agent 'ambs' needs shielding: true (use --agent dreamer for the unshielded baseline)")
    else:
        try:
            shield = shield_config(config)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    try:
        task_shaping(learner)
    except ValueError as exc:
        raise ConfigError(f"agent {config.agent!r}: {exc}") from exc
    return DreamerAgent(learner, shield)


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


def make_envs(config: Config, amount: int | None = None) -> list[gym.Env]:
    """``amount`` (default ``envs.amount``) copies of ``config.task`` as ``config.agent`` sees them: for the
    baselines (call :func:`prepare_config` first) grey Atari frames are stacked ``baselines.frame_stack`` deep."""
    from ..envs.dopamine_atari import FrameStack
    from ..envs.registry import make_env

    options = env_options(config)
    k = config.baselines.frame_stack
    grey_atari = env_family(config.task) == "atari" and bool(options.get("gray"))
    stack = config.agent in BASELINE_AGENTS and grey_atari and k > 1
    envs = []
    for _ in range(config.envs.amount if amount is None else amount):
        env = make_env(config.task, **options)
        envs.append(FrameStack(env, k) if stack else env)
    return envs


def observation_key(space: gym.spaces.Dict) -> str:
    """The one observation key a baseline agent reads; a one-line error for a task with several."""
    if len(space.spaces) != 1:
        raise ConfigError(
            f"the baseline agents take one observation (vector or image); this task gives {', '.join(space.spaces)}"
            " (e.g. set --env.grid.observation vector)"
        )
    return next(iter(space.spaces))
