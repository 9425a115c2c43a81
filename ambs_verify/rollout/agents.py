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
from typing import Any

import gymnasium as gym

from ..config import CHOICES, Config, ConfigError, env_family, env_options

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
    return DreamerAgent(learner, shield)


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


def shield_config(config: Config):
    """The :class:`ambs_verify.agents.shield.ShieldConfig` of the ``shield:`` block (None when shielding is off).

    With ``shield.event: discounted`` (the paper) the rollout length is ``imag_horizon`` and
    ``shield.threshold_horizon`` only sets the threshold ``C·γ_s^T``, as in the reference (spec §14.1); with
    ``within`` the shield rolls out ``threshold_horizon`` steps and counts traces with a predicted violation. C is
    the same resolved ``safety.cost_val`` as the learner's clip bound, γ_s the safety critic's discount.
    """
    if not config.safety.shielding:
        return None
    from ..agents.shield import ShieldConfig

    safety = _safety(config)
    return ShieldConfig(
        **config.shield.to_dict(),
        horizon=config.imag_horizon,
        cost_val=safety.cost_val,
        discount=safety.discount,
        bootstrap=safety.shield_bootstrap,
    )


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

    ``safety.cost_val`` null takes the task family's ``env.<family>.cost_val`` (1.0 for the grid's own default), so the
    clip bound and the env's cost scale cannot drift apart (spec §14.7).
    """
    from ..agents import config as A

    c = config
    return A.AgentConfig(
        world_model=_world_model(c),
        actor_critic=_actor_critic(c),
        safety=_safety(c),
        penalty=A.PenaltyConfig(**c.penalty.to_dict(), threshold_horizon=c.shield.threshold_horizon),
        lagrangian=A.LagrangianConfig(**c.lagrangian.to_dict(), enabled=c.agent == "lagrangian"),
        compute_dtype=c.jax.precision,
        batch_size=c.replay.batch_size,
        batch_length=c.replay.batch_length,
    )


def _optimizer(block: Config):
    from ..agents.config import OptimizerConfig

    return OptimizerConfig(lr=block.lr, eps=block.eps, clip=block.clip)


def _world_model(c: Config):
    from ..agents import config as A

    ls, opt = c.loss_scales, _optimizer
    return A.WorldModelConfig(
        rssm=A.RSSMConfig(**c.rssm.to_dict()),
        encoder=A.EncoderConfig(**c.encoder.to_dict()),
        decoder=A.EncoderConfig(symlog_inputs=False, **c.decoder.to_dict()),
        head_layers=c.heads.layers,
        head_units=c.heads.units,
        bins=c.heads.bins,
        image_scale=ls.image,
        vector_scale=ls.vector,
        reward_scale=ls.reward,
        cont_scale=ls.cont,
        cost_scale=ls.cost,
        safe_cont_scale=ls.safe_cont,
        dyn_scale=ls.dyn,
        rep_scale=ls.rep,
        free_bits=c.free_bits,
        opt=opt(c.model_opt),
    )


def _actor_critic(c: Config):
    from ..agents import config as A

    ls, opt = c.loss_scales, _optimizer
    return A.ActorCriticConfig(
        actor_layers=c.actor.layers,
        actor_units=c.actor.units,
        critic_layers=c.critic.layers,
        critic_units=c.critic.units,
        bins=c.critic.bins,
        minstd=c.actor.minstd,
        maxstd=c.actor.maxstd,
        unimix=c.actor.unimix,
        imag_horizon=c.imag_horizon,
        horizon=c.horizon,
        return_lambda=c.return_lambda,
        slow_critic_fraction=c.slow_critic_fraction,
        slow_critic_update=c.slow_critic_update,
        slowreg=ls.slowreg,
        retnorm_decay=c.retnorm.decay,
        retnorm_max=c.retnorm.max,
        retnorm_low=c.retnorm.perclo,
        retnorm_high=c.retnorm.perchi,
        actent=c.actent,
        actor_scale=ls.actor,
        critic_scale=ls.critic,
        normalise_ret=c.normalise_ret,
        actor_grad=c.actor_grad,
        actor_opt=opt(c.actor_opt),
        critic_opt=opt(c.critic_opt),
    )


def _safety(c: Config):
    from ..agents import config as A

    block = c.safety.to_dict()
    env_cost = c.env[env_family(c.task)].get("cost_val")
    if block["cost_val"] is None:  # C follows the task family's env cost (spec §14.7)
        block["cost_val"] = env_cost if env_cost is not None else 1.0
    block["cost_val"] = float(block["cost_val"])
    block["safety_critic_opt"] = _optimizer(c.safety.safety_critic_opt)
    return A.SafetyConfig(**block)
