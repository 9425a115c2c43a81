"""The gymnasium ids of every task, in the ``ambs_verify/`` namespace; :func:`register_gym_envs` registers them
(``ambs_verify.envs`` does so when imported).

``gymnasium.make("ambs_verify/grid-v0", slip=0.2)`` builds what ``make_env("grid", slip=0.2)`` does: the entry
point is :func:`~.registry.make_env`, and the keyword arguments are the task family's options (the keys of its
``env.<family>`` config block). Listing the ids imports no simulator.
"""

from __future__ import annotations

import gymnasium as gym

from .registry import family_for

__all__ = ["GYM_NAMESPACE", "gym_id", "gym_tasks", "register_gym_envs"]

GYM_NAMESPACE = "ambs_verify"


def gym_tasks() -> dict[str, str]:
    """Every gymnasium id :func:`register_gym_envs` registers (but the Engine's), to the task name it builds.

    Listing them imports no simulator: the grid layouts, the Safety Gym task ids and the labelled Atari games are
    plain tables.
    """
    from .atari_labels import REGISTRY
    from .grid import PRESETS
    from .safety_gym import task_ids

    ids = {f"{GYM_NAMESPACE}/{name}-v0": name for name in PRESETS}
    for task_id in task_ids():  # Safety<Robot><Task><Level>-v0
        body = task_id.removeprefix("Safety").removesuffix("-v0")
        for spelling in (task_id, f"Safety{body}Vision-v0", f"Safexp-{body}-v0"):
            ids[f"{GYM_NAMESPACE}/{spelling}"] = f"safetygym_{spelling}"
    ids.update({f"{GYM_NAMESPACE}/atari_{game}-v0": f"atari_{game}" for game in REGISTRY})
    return ids


def gym_id(task: str) -> tuple[str, dict]:
    """The gymnasium id of task name ``task`` and the ``make`` keyword arguments it implies (the Engine's
    ``config``): ``gymnasium.make(env_id, **kwargs, **options)`` builds what ``make_env(task, **options)`` does."""
    family, name = family_for(task)
    if family.name == "engine":
        return f"{GYM_NAMESPACE}/Engine-v0", {"config": name}
    if family.name == "safetygym":
        return f"{GYM_NAMESPACE}/{name}", {}
    if family.name == "atari":
        from .atari_labels import canonical_game

        return f"{GYM_NAMESPACE}/atari_{canonical_game(name)}-v0", {}
    return f"{GYM_NAMESPACE}/{name}-v0", {}


def register_gym_envs() -> None:
    """Register every task with gymnasium under the ``ambs_verify/`` namespace (once; the module docstring)."""
    for env_id, task in gym_tasks().items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="ambs_verify.envs.registry:make_env", kwargs={"task": task})
    engine = f"{GYM_NAMESPACE}/Engine-v0"
    if engine not in gym.registry:
        gym.register(engine, entry_point="ambs_verify.envs.engine:Engine")
