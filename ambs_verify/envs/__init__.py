"""Environments speaking gymnasium 1.x; cost comes as ``info["cost"]`` plus per-label flags (DESIGN.md §6).

Importing this package registers every task with gymnasium under the ``ambs_verify/`` namespace
(:func:`~.gym_ids.register_gym_envs`); no simulator is imported until an environment is made.
"""

from .gym_ids import register_gym_envs

register_gym_envs()
