"""The pure JAX core: networks, RSSM, world model, actor-critic, shield, penalties (DESIGN.md §3).

Importing this package needs Flax and Optax (the ``train`` extra). Main entry points:

* :func:`make_config` / :data:`SIZES` / the config dataclasses (``config``),
* :class:`Agent` (``agent``): ``init(key) -> state`` and the pure ``train_step(state, batch, rng)``,
* :class:`WorldModel` (``world_model``) with ``observe`` / ``imagine`` for the shield,
* :class:`ImagActorCritic` (``actor_critic``).
"""

from .actor_critic import CriticSpec, ImagActorCritic, lambda_return
from .agent import Agent, count_params
from .config import (
    SIZES,
    ActorCriticConfig,
    AgentConfig,
    EncoderConfig,
    OptimizerConfig,
    RSSMConfig,
    SafetyConfig,
    SizePreset,
    WorldModelConfig,
    make_config,
)
from .world_model import WorldModel

__all__ = [
    "SIZES",
    "ActorCriticConfig",
    "Agent",
    "AgentConfig",
    "CriticSpec",
    "EncoderConfig",
    "ImagActorCritic",
    "OptimizerConfig",
    "RSSMConfig",
    "SafetyConfig",
    "SizePreset",
    "WorldModel",
    "WorldModelConfig",
    "count_params",
    "lambda_return",
    "make_config",
]
