"""Which agent a resolved config asks for: the one place that maps ``agent:`` names to agent objects."""

from __future__ import annotations

import dataclasses

from ..config import Config, ConfigError, agent_config, shield_config

AVAILABLE_AGENTS = ("ambs", "dreamer", "lagrangian")


def build_agent(config: Config):
    """The trainer-facing agent for ``config.agent``.

    ``ambs`` is DreamerV3 with the shield and the safe policy (plus PENL / PLPG / COPT when configured);
    ``dreamer`` is the unshielded DreamerV3 baseline (no safe policy; the twin cost critic is still trained so that
    violations can be predicted and logged); ``lagrangian`` is the augmented-Lagrangian DreamerV3 baseline
    (unshielded, a cost critic whose lambda-return is penalised in the task advantage).
    """
    from ..agents.agent import task_shaping
    from ..agents.ambs import DreamerAgent

    if config.agent not in AVAILABLE_AGENTS:
        raise ConfigError(
            f"agent {config.agent!r} is not available in this version; accepted: {', '.join(AVAILABLE_AGENTS)}"
        )
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
