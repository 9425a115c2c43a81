"""Which agent a resolved config asks for: the one place that maps ``agent:`` names to agent objects."""

from __future__ import annotations

import dataclasses

from ..config import Config, ConfigError, agent_config, shield_config

BASELINE_AGENTS = ("rainbow", "iqn", "dqn")  # model-free, dopamine's settings; trained by baseline_loop.train
AVAILABLE_AGENTS = ("ambs", "dreamer", "lagrangian", *BASELINE_AGENTS)


def build_agent(config: Config):
    """The trainer-facing agent for ``config.agent``.

    ``ambs`` is DreamerV3 with the shield and the safe policy (plus PENL / PLPG / COPT when configured);
    ``dreamer`` is the unshielded DreamerV3 baseline (no safe policy; the twin cost critic is still trained so that
    violations can be predicted and logged); ``lagrangian`` is the augmented-Lagrangian DreamerV3 baseline
    (unshielded, a cost critic whose lambda-return is penalised in the task advantage). ``rainbow``, ``iqn`` and
    ``dqn`` are the model-free baselines with dopamine's settings (:func:`.baseline_loop.build_baseline_agent`;
    train them with :func:`trainer_for`'s function).
    """
    from ..agents.agent import task_shaping
    from ..agents.ambs import DreamerAgent

    if config.agent not in AVAILABLE_AGENTS:
        raise ConfigError(
            f"agent {config.agent!r} is not available in this version; accepted: {', '.join(AVAILABLE_AGENTS)}"
        )
    if config.agent in BASELINE_AGENTS:  # DQN, Rainbow, IQN from baselines.* (trainers/baseline_loop.py)
        from .baseline_loop import build_baseline_agent

        return build_baseline_agent(config)
    learner = agent_config(config)
    if config.agent in ("dreamer", "lagrangian"):
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


def trainer_for(config: Config):
    """The training function for ``config.agent``, called as ``fn(config, build_agent(config))``.

    :func:`.loop.train` (sequence replay at a train ratio) for the DreamerV3 agents, :func:`.baseline_loop.train`
    (dopamine's transition replay and update schedule) for ``rainbow``, ``iqn`` and ``dqn``.
    """
    if config.agent in BASELINE_AGENTS:
        from .baseline_loop import train
    else:
        from .loop import train
    return train
