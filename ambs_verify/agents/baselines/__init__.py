"""Model-free Atari baselines of the AMBS comparison: DQN, full Rainbow and IQN (dopamine's settings), in JAX.

Public API: :func:`make_agent` (``"dqn" | "rainbow" | "iqn"``), the agents and configs, :class:`Learner`
(replay + update schedule for a driver), :class:`PrioritizedReplay`, and :func:`make_dopamine_atari`.
"""

from .common import BaseConfig, BaselineAgent, BaselineState, linearly_decaying_epsilon
from .dqn import DQN, DQNConfig
from .iqn import IQN, IQNConfig
from .learner import AGENTS, Learner, make_agent, make_replay
from .prioritized_replay import PrioritizedReplay, SumTree
from .rainbow import Rainbow, RainbowConfig

__all__ = [
    "AGENTS",
    "DQN",
    "IQN",
    "BaseConfig",
    "BaselineAgent",
    "BaselineState",
    "DQNConfig",
    "IQNConfig",
    "Learner",
    "PrioritizedReplay",
    "Rainbow",
    "RainbowConfig",
    "SumTree",
    "linearly_decaying_epsilon",
    "make_agent",
    "make_replay",
]
