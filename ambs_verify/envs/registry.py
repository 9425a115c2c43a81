"""Task names → environments. One place that knows every family of environments and how to build it.

A task name is ``grid`` or ``grid_<variant>`` (built-in), ``safetygym_<id>`` (Safety Gym through
safety-gymnasium), ``engine:<path.yaml>`` (a custom Safety Gym layout) or ``atari_<game>``. Families are
imported only when used, so listing or building the grid never imports MuJoCo or ALE.

A family module provides ``list_tasks() -> list[TaskInfo]`` and ``make(name: str, **options) -> gymnasium.Env``
where ``name`` is the part after the family's prefix.

Every task is also a gymnasium id in the ``ambs_verify/`` namespace (:mod:`.gym_ids`, registered when
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


def family_for(task: str) -> tuple[Family, str]:
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

    It is also the gymnasium entry point of every registered id but the Engine's (:mod:`.gym_ids`).
    """
    family, name = family_for(task)
    return _load(family).make(name, **options)


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
