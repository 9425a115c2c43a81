"""Every fix that safety-gymnasium 1.0.0 needs on the modern stack, in one place.

safety-gymnasium 1.0.0 pins gymnasium 0.28.1, mujoco 2.3.3 and Python 3.8–3.10. It is installed without its pins
(README/Makefile) next to Python 3.11+, numpy 2.x (< 2.4), gymnasium 1.x and mujoco 3.x/4.x, where plain
``import safety_gymnasium`` fails. :func:`import_safety_gymnasium` applies the fixes below and returns the module.
No installed file is edited: the dataclass and module-alias shims exist only while the package is imported, and
the two post-import fixes replace one name each inside safety-gymnasium's own modules.

Fixes (each has a test in ``tests/test_safety_gym_compat.py`` showing that its precondition still holds here):

1. ``ndarray`` dataclass defaults (Python 3.11): the asset dataclasses declare ``color: np.array = COLOR[...]``;
   since 3.11 ``dataclasses`` rejects any unhashable default ("mutable default ... use default_factory").
2. Moved/removed gymnasium modules (gymnasium 1.0): ``wrappers.compatibility`` (``EnvCompatibility`` removed),
   ``wrappers.autoreset``, ``wrappers.normalize``, ``wrappers.time_limit`` and ``wrappers.env_checker`` were merged
   into ``wrappers.common`` / ``wrappers.stateful_*``; safety-gymnasium imports them at package import.
3. gymnasium-robotics (only for the multi-agent base class) pins gymnasium < 1; a placeholder base class stands in
   when it is missing, so only the multi-agent tasks are unavailable.
4. ``OffScreenViewer(model, data, width, height)`` (gymnasium 1.0 made width/height required); safety-gymnasium's
   built-in renderer calls it with two arguments.
5. ``np.array(action, copy=False)`` (numpy 2.0) raises when a copy is needed (e.g. a list or an int array);
   :func:`as_action` hands safety-gymnasium a float64 array so no copy is ever needed.

``gymnasium.make`` is not used at all: registry specs lost ``apply_api_compatibility`` in gymnasium 1.0 and
safety-gymnasium's own ``make`` reads it, so environments are built through ``safety_gymnasium.builder.Builder``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Gymnasium <1.0 module -> {name: (gymnasium>=1.0 module, name)} (fix 2).
MOVED_GYMNASIUM_MODULES: dict[str, dict[str, tuple[str, str]]] = {
    "gymnasium.wrappers.autoreset": {"AutoResetWrapper": ("gymnasium.wrappers.common", "Autoreset")},
    "gymnasium.wrappers.normalize": {
        "NormalizeObservation": ("gymnasium.wrappers.stateful_observation", "NormalizeObservation"),
        "NormalizeReward": ("gymnasium.wrappers.stateful_reward", "NormalizeReward"),
        "RunningMeanStd": ("gymnasium.wrappers.utils", "RunningMeanStd"),
    },
    "gymnasium.wrappers.time_limit": {"TimeLimit": ("gymnasium.wrappers.common", "TimeLimit")},
    "gymnasium.wrappers.env_checker": {"PassiveEnvChecker": ("gymnasium.wrappers.common", "PassiveEnvChecker")},
}
#: Removed outright in gymnasium 1.0 (fix 2): stand-ins that fail loudly only if something instantiates them.
REMOVED_GYMNASIUM_NAMES: dict[str, tuple[str, ...]] = {"gymnasium.wrappers.compatibility": ("EnvCompatibility",)}
MULTI_AGENT_MODULE = "gymnasium_robotics.envs.multiagent_mujoco.mujoco_multi"  # fix 3

GL_BACKENDS = ("egl", "osmesa")


def choose_gl_backend() -> str:
    """Set ``MUJOCO_GL`` for headless rendering unless the user already chose one; return the backend in use.

    ``egl`` is the default (it needed nothing extra on the CPU machines we measured); ``osmesa`` (Debian's
    ``libosmesa6``) is the fallback when no EGL library can be loaded. Must run before mujoco creates a context;
    gymnasium's renderer and ``mujoco.Renderer`` both read the variable when a context is made.
    """
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        return chosen
    import ctypes.util

    backend = "egl" if ctypes.util.find_library("EGL") else "osmesa"
    os.environ["MUJOCO_GL"] = backend
    if backend == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return backend


@contextlib.contextmanager
def _ndarray_dataclass_defaults() -> Iterator[None]:
    """Fix 1: while active, a class attribute that is an ndarray becomes ``field(default_factory=...)``.

    The factory returns the very same array, so instances share the default exactly as they did under
    Python <= 3.10 (where the unhashable-default check only covered list, dict and set).
    """
    original = dataclasses._get_field

    def get_field(cls, a_name, a_type, *args):
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if isinstance(default, np.ndarray):
            setattr(cls, a_name, dataclasses.field(default_factory=lambda value=default: value))
        return original(cls, a_name, a_type, *args)

    dataclasses._get_field = get_field
    try:
        yield
    finally:
        dataclasses._get_field = original


def _removed(name: str, module: str) -> type:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{module}.{name} was removed in gymnasium 1.0; safety-gymnasium's make() cannot use it")

    return type(name, (), {"__init__": __init__, "__module__": module})


def _multi_agent_placeholder() -> type:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("safety-gymnasium's multi-agent tasks need gymnasium-robotics, which is not installed")

    return type("MultiAgentMujocoEnv", (), {"__init__": __init__, "__module__": MULTI_AGENT_MODULE})


@contextlib.contextmanager
def _module_aliases(skip: tuple[str, ...] = ()) -> Iterator[None]:
    """Fixes 2 and 3: put stand-in modules in ``sys.modules`` during the import, then take them out again.

    ``skip`` names modules to leave out (the tests use it to show each stand-in is needed).
    """
    added: list[str] = []

    def add(name: str, attrs: dict[str, Any]) -> None:
        if name in sys.modules or name in skip:
            return
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
            return  # the real module exists (an older gymnasium): leave it alone
        parts = name.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in sys.modules:  # gymnasium_robotics' parents when the package is absent
                sys.modules[prefix] = types.ModuleType(prefix)
                sys.modules[prefix].__path__ = []
                added.append(prefix)
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
        added.append(name)

    for name, moved in MOVED_GYMNASIUM_MODULES.items():
        add(name, {attr: getattr(importlib.import_module(src), new) for attr, (src, new) in moved.items()})
    for name, attrs in REMOVED_GYMNASIUM_NAMES.items():
        add(name, {attr: _removed(attr, name) for attr in attrs})
    add(MULTI_AGENT_MODULE, {"MultiAgentMujocoEnv": _multi_agent_placeholder()})
    try:
        yield
    finally:
        for name in reversed(added):
            sys.modules.pop(name, None)


def _offscreen_viewer_with_default_size(underlying: types.ModuleType) -> None:
    """Fix 4: default the viewer's width/height to the model's offscreen buffer, as gymnasium 0.28 did."""
    viewer_cls = underlying.OffScreenViewer
    if getattr(viewer_cls, "_ambs_default_size", False):
        return

    class OffScreenViewer(viewer_cls):
        _ambs_default_size = True

        def __init__(self, model, data, width: int | None = None, height: int | None = None, **kwargs: Any):
            width = model.vis.global_.offwidth if width is None else width
            height = model.vis.global_.offheight if height is None else height
            super().__init__(model, data, width, height, **kwargs)

    underlying.OffScreenViewer = OffScreenViewer


def as_action(action: Any) -> np.ndarray:
    """Fix 5: a float64 ndarray, so safety-gymnasium's ``np.array(action, copy=False)`` needs no copy."""
    return np.asarray(action, dtype=np.float64)


# Car, Doggo and Ant read 1-element sensor arrays with float() on every step, which numpy >= 1.25 deprecates
# (numpy 2.4 is excluded by the project's pin for a related break); keep the per-step warning out of logs.
warnings.filterwarnings(
    "ignore",
    "Conversion of an array with ndim > 0 to a scalar",
    DeprecationWarning,
    "safety_gymnasium.bases.base_agent",
)

# mujoco picks its GL backend when its rendering module is first imported, so choose before anything imports it.
choose_gl_backend()


def import_safety_gymnasium() -> types.ModuleType:
    """Apply every fix above (idempotent) and return the ``safety_gymnasium`` module.

    Raises
    ------
    ImportError
        If safety-gymnasium (or one of its real dependencies: mujoco, xmltodict, pyyaml, imageio) is missing.
    """
    choose_gl_backend()
    if "safety_gymnasium" not in sys.modules:
        with _ndarray_dataclass_defaults(), _module_aliases():
            importlib.import_module("safety_gymnasium")
    module = sys.modules["safety_gymnasium"]
    _offscreen_viewer_with_default_size(importlib.import_module("safety_gymnasium.bases.underlying"))
    return module
