"""The pure JAX core: networks, RSSM, world model, actor-critic, shield, penalties (DESIGN.md §3).

Importing this package needs Flax and Optax (the ``train`` extra). Main entry points:

* the config dataclasses (``config``; the model sizes are blocks of ``configs.yaml``),
* :class:`Agent` (``agent``): ``init(key) -> state`` and the pure ``train_step(state, batch, rng)``,
* :class:`WorldModel` (``world_model``) with ``observe`` / ``imagine`` for the shield,
* :class:`ImagActorCritic` (``actor_critic``).
"""

from .actor_critic import CriticSpec, ImagActorCritic, lambda_return
from .agent import Agent, count_params
from .config import (
    ActorCriticConfig,
    AgentConfig,
    EncoderConfig,
    OptimizerConfig,
    RSSMConfig,
    SafetyConfig,
    WorldModelConfig,
)
from .world_model import WorldModel

__all__ = [
    "ActorCriticConfig",
    "Agent",
    "AgentConfig",
    "CriticSpec",
    "EncoderConfig",
    "ImagActorCritic",
    "OptimizerConfig",
    "RSSMConfig",
    "SafetyConfig",
    "WorldModel",
    "WorldModelConfig",
    "count_params",
    "lambda_return",
]
