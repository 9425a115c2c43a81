"""Task names → environments. One place that knows every family of environments and how to build it.

A task name is ``grid`` or ``grid_<variant>`` (built-in), ``safetygym_<id>`` (Safety Gym through
safety-gymnasium), ``engine:<path.yaml>`` (a custom Safety Gym layout) or ``atari_<game>``. Families are
imported only when used, so listing or building the grid never imports MuJoCo or ALE.

A family module provides ``list_tasks() -> list[TaskInfo]`` and ``make(name: str, **options) -> gymnasium.Env``
where ``name`` is the part after the family's prefix.

Every task is also a gymnasium id in the ``ambs_verify/`` namespace (:func:`register_gym_envs`, run when
``ambs_verify.envs`` is imported): ``gymnasium.make("ambs_verify/grid-v0", slip=0.2)``,
``ambs_verify/SafetyPointGoal1-v0`` (also ``…Vision-v0`` and ``Safexp-PointGoal1-v0``),
``ambs_verify/atari_seaquest-v0`` (``labels=…``, ``cost_val=…``) and ``ambs_verify/Engine-v0`` (``config=…``). The
keyword arguments are the task family's options, the keys of its ``env.<family>`` config block.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import gymnasium as gym

from .errors import EnvConfigError


@dataclass(frozen=True)
class TaskInfo:
    """One task a user can name: its full name, family, safety labels and a line of description."""

    name: str
    family: str
    labels: tuple[str, ...]
    summary: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Family:
    name: str
    prefix: str
    module: str
    extra: str  # the pip extra that installs its simulator, for the error message when it is missing


FAMILIES = (
    Family("grid", "grid", "ambs_verify.envs.grid", ""),
    Family("safetygym", "safetygym_", "ambs_verify.envs.safety_gym", "safetygym"),
    Family("engine", "engine:", "ambs_verify.envs.engine", "safetygym"),
    Family("atari", "atari_", "ambs_verify.envs.atari", "atari"),
)


def _family_for(task: str) -> tuple[Family, str]:
    for family in FAMILIES:
        if family.name == "grid" and (task == "grid" or task.startswith("grid_")):
            return family, task
        if family.name != "grid" and task.startswith(family.prefix):
            return family, task[len(family.prefix) :]
    prefixes = ", ".join(f.prefix + ("" if f.name == "grid" else "…") for f in FAMILIES)
    raise EnvConfigError(
        f"unknown task {task!r}; task names start with one of: {prefixes} (see `ambs-verify envs list`)"
    )


def _load(family: Family):
    try:
        return importlib.import_module(family.module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(family.module):
            raise EnvConfigError(f"the {family.name} environments are not part of this build") from exc
        hint = f"pip install 'ambs-verify[{family.extra}]'" if family.extra else "reinstall ambs-verify"
        raise EnvConfigError(f"the {family.name} environments need {exc.name!r}, which is missing: {hint}") from exc


def make_env(task: str, **options) -> gym.Env:
    """Build the environment a task name refers to, with family-specific options (one-line errors).

    It is also the gymnasium entry point of every registered id but the Engine's (:func:`register_gym_envs`).
    """
    family, name = _family_for(task)
    return _load(family).make(name, **options)


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


def register_gym_envs() -> None:
    """Register every task with gymnasium under the ``ambs_verify/`` namespace (once; the module docstring)."""
    for env_id, task in gym_tasks().items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"{__name__}:make_env", kwargs={"task": task})
    engine = f"{GYM_NAMESPACE}/Engine-v0"
    if engine not in gym.registry:
        gym.register(engine, entry_point="ambs_verify.envs.engine:Engine")


def list_tasks(families: tuple[str, ...] | None = None) -> list[TaskInfo]:
    """Every task of the available families (families whose simulator is not installed are skipped)."""
    known = [f.name for f in FAMILIES]
    unknown = sorted(set(families or ()) - set(known))
    if unknown:
        raise EnvConfigError(f"unknown family {', '.join(unknown)}; accepted: {', '.join(known)}")
    tasks: list[TaskInfo] = []
    for family in FAMILIES:
        if families is not None and family.name not in families:
            continue
        try:
            module = _load(family)
        except EnvConfigError:
            continue
        tasks.extend(module.list_tasks())
    return tasks
