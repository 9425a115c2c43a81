"""The agent a resolved config asks for, and the environments it acts in: the one place that maps ``agent:`` names
to agent objects and config keys to the agents' dataclasses (:func:`agent_config`, :func:`shield_config`); training,
certify and verify all build agents here.

``ambs``, ``dreamer`` and ``lagrangian`` are DreamerV3 agents (:class:`~ambs_verify.agents.ambs.DreamerAgent`);
``rainbow``, ``iqn`` and ``dqn`` are the model-free baselines with dopamine's settings
(:class:`~ambs_verify.agents.baselines.BaselineAgent`), whose Atari frames are preprocessed the dopamine way
(:func:`prepare_config`) and stacked (:func:`make_envs`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from ..config import CHOICES, Config, ConfigError, env_family, env_options

if TYPE_CHECKING:
    from ..agents.sharding import DataParallel

__all__ = [
    "AVAILABLE_AGENTS",
    "BASELINE_AGENTS",
    "MODEL_SIZES",
    "SHIELDED_AGENTS",
    "agent_config",
    "baseline_settings",
    "build_agent",
    "make_envs",
    "observation_key",
    "prepare_config",
    "shield_config",
    "size_config",
]

BASELINE_AGENTS = ("rainbow", "iqn", "dqn")  # model-free, dopamine's settings
SHIELDED_AGENTS = ("ambs",)  # the agents built with a shield and a safe policy
AVAILABLE_AGENTS = CHOICES["agent"]  # declared once, with the other keys' choices


def build_agent(config: Config, parallel: DataParallel | None = None):
    """The trainer-facing agent for ``config.agent``; a DreamerV3 agent trains and acts split over ``parallel``'s
    devices when given (:func:`~ambs_verify.rollout.runtime.data_parallel`).

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
    elif not config.safety.shielding:
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
    return DreamerAgent(learner, shield, parallel)


def prepare_config(config: Config) -> Config:
    """``config`` with dopamine's Atari preprocessing written into ``env.atari`` when it applies.

    It applies to the model-free baselines on ``atari_*`` tasks with ``baselines.atari_preprocessing: dopamine``;
    labels and ``cost_val`` stay as configured. Anything else (DreamerV3 and AMBS agents included) is returned
    unchanged.
    """
    if config.agent not in BASELINE_AGENTS:  # DreamerV3 and AMBS keep their own env.atari settings (64x64 RGB)
        return config
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

    The shared keys are the block's keys that name a :class:`~ambs_verify.agents.baselines.BaseConfig` field;
    ``reward_clip: 0`` means no clipping (``None``); ``mlp_units`` becomes a tuple.
    """
    from ..agents.baselines import BaseConfig

    if config.agent not in BASELINE_AGENTS:
        raise ConfigError(
            f"agent {config.agent!r} is not a model-free baseline; accepted: {', '.join(BASELINE_AGENTS)}"
        )
    block = config.baselines
    shared = {field.name for field in dataclasses.fields(BaseConfig)}
    settings = {key: value for key, value in block.to_dict().items() if key in shared}
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


def shield_config(config: Config):
    """The :class:`ambs_verify.agents.shield.ShieldConfig` of the ``shield:`` block (None when shielding is off).

    With ``shield.event: discounted`` (the paper) the rollout length is ``imag_horizon`` and
    ``shield.threshold_horizon`` only sets the threshold ``C·γ_s^T``, as in the reference (spec §14.1); with
    ``within`` the shield rolls out ``threshold_horizon`` steps and counts traces with a predicted violation. C is
    the same resolved ``safety.cost_val`` as the learner's clip bound, γ_s the safety critic's discount.
    """
    if not config.safety.shielding:
        return None
    from ..agents.config import build
    from ..agents.shield import ShieldConfig

    safety = _safety(config)
    try:
        return build(
            ShieldConfig,
            config.shield.to_dict(),
            imag_horizon=config.imag_horizon,
            cost_val=safety.cost_val,
            discount=safety.discount,
            shield_bootstrap=safety.shield_bootstrap,
        )
    except ValueError as exc:  # a combination of shield keys the single-key checks cannot see
        raise ConfigError(str(exc)) from None


MODEL_SIZES = ("debug", "small", "medium", "large", "xlarge")  # spec §12.2 and §12.4: blocks of configs.yaml


def size_config(size: str, **changes):
    """The :class:`~ambs_verify.agents.config.AgentConfig` of model size ``size`` (its ``configs.yaml`` block over
    the defaults), with the paper's cost C = 10; ``changes`` replace top-level fields (e.g. ``compute_dtype``).

    For code that builds a learner without a task (the agents' tests and benchmarks); ``train`` builds it from the
    whole resolved config (:func:`agent_config`).
    """
    from ..config import resolve

    if size not in MODEL_SIZES:
        raise ConfigError(f"unknown model size {size!r}; accepted: {', '.join(MODEL_SIZES)}")
    config = agent_config(resolve([size], {"safety.cost_val": 10.0}))
    return config.replace(**changes) if changes else config


def agent_config(config: Config):
    """The :class:`ambs_verify.agents.config.AgentConfig` these keys describe (sizes, losses, optimisers, safety).

    Every block is built by field name (:func:`ambs_verify.agents.config.build`); what the config leaves to be
    resolved is given here: ``safety.cost_val`` null takes the task family's ``env.<family>.cost_val`` (1.0 for the
    grid's own default), so the clip bound and the env's cost scale cannot drift apart (spec §14.7); COPT's T is the
    shield's ``threshold_horizon``; ``lagrangian`` is on for ``--agent lagrangian``.
    """
    from ..agents import config as A

    keys = config.to_dict()
    return A.AgentConfig(
        world_model=A.build(A.WorldModelConfig, keys),
        actor_critic=A.build(A.ActorCriticConfig, keys),
        safety=_safety(config),
        penalty=A.build(A.PenaltyConfig, keys["penalty"], threshold_horizon=config.shield.threshold_horizon),
        lagrangian=A.build(A.LagrangianConfig, keys["lagrangian"], enabled=config.agent == "lagrangian"),
        compute_dtype=config.jax.precision,
        batch_size=config.replay.batch_size,
        batch_length=config.replay.batch_length,
    )


def _safety(config: Config):
    from ..agents import config as A

    cost_val = config.safety.cost_val
    if cost_val is None:  # C follows the task family's env cost (spec §14.7)
        env_cost = config.env[env_family(config.task)].get("cost_val")
        cost_val = env_cost if env_cost is not None else 1.0
    return A.build(A.SafetyConfig, config.safety.to_dict(), cost_val=float(cost_val))
