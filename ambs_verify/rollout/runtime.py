"""The JAX runtime of a command: the platform a config asks for, the persistent compilation cache and, for
training, the devices the learner is split over (``jax.devices``).

Every command that runs an agent (``train``, ``certify``, ``verify``) calls :func:`configure_jax` before its first
JAX computation. Only ``train`` splits over several devices (:func:`data_parallel`): ``certify`` and ``verify`` run
one device per worker, so a certificate is recomputed exactly on any machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import jax

from ..config import Config, ConfigError
from .agents import BASELINE_AGENTS

if TYPE_CHECKING:
    from ..agents.sharding import DataParallel

__all__ = ["compilation_cache_dir", "configure_jax", "data_parallel"]

HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def compilation_cache_dir() -> Path | None:
    """Where compiled XLA programs persist between commands: ``$XDG_CACHE_HOME/ambs-verify/jax`` (default
    ``~/.cache/ambs-verify/jax``), or None when ``JAX_COMPILATION_CACHE_DIR`` is set (JAX then follows it; an empty
    value turns the cache off)."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return None
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory to be found: compile every time
        return None
    return base / "ambs-verify" / "jax"


def configure_jax(config: Config, split: bool = False) -> None:
    """Select the JAX platform from ``jax.platform`` and turn on JAX's persistent compilation cache
    (:func:`compilation_cache_dir`): ``verify`` then loads the programs ``certify`` compiled instead of compiling
    them again (about a third of its time on the quickstart). With ``split`` (training) and ``jax.devices`` N > 1 on
    ``cpu``, the host is split into N devices, unless ``XLA_FLAGS`` already sets their number. Call before any JAX
    computation; later calls are ignored."""
    platform = _platform(config)
    host_devices = config.jax.devices if split and platform == "cpu" else 1
    try:
        jax.config.update("jax_platforms", platform)
        if host_devices > 1 and HOST_DEVICES_FLAG not in os.environ.get("XLA_FLAGS", ""):
            jax.config.update("jax_num_cpu_devices", host_devices)
    except RuntimeError:  # the backend is already initialised
        pass
    try:
        jax.devices(platform)
    except (RuntimeError, AssertionError):  # JAX asserts when the only platform allowed fails to start
        raise ConfigError(
            f"--jax.platform {config.jax.platform}: JAX finds no {platform} device on this machine; accepted: cpu, "
            "or a platform whose device and jaxlib plugin are installed"
        ) from None
    cache = compilation_cache_dir()
    if cache is not None:
        jax.config.update("jax_compilation_cache_dir", str(cache))
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # JAX's default 1 s misses most of ours
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def _platform(config: Config) -> str:
    """JAX's name for ``jax.platform`` (``gpu`` is ``cuda``)."""
    return {"gpu": "cuda"}.get(config.jax.platform, config.jax.platform)


def data_parallel(config: Config) -> DataParallel | None:
    """The devices training splits over, from ``jax.devices`` (0: all of ``jax.platform``'s), or None for one.

    Raises
    ------
    ConfigError
        One line: more devices than JAX has, a model-free baseline (one device), or a ``replay.batch_size`` that
        does not split evenly.
    """
    platform = _platform(config)
    available = jax.devices(platform)
    wanted = config.jax.devices or len(available)
    if wanted == 1:
        return None
    if config.agent in BASELINE_AGENTS:
        raise ConfigError(
            f"--jax.devices {wanted}: the model-free baseline {config.agent!r} trains on one device; accepted: 1, "
            "or a DreamerV3 agent (ambs, dreamer, lagrangian)"
        )
    if config.replay.batch_size % wanted:
        raise ConfigError(
            f"--jax.devices {wanted}: replay.batch_size {config.replay.batch_size} does not split evenly over "
            f"{wanted} devices; accepted: a batch size that is a multiple of the device count"
        )
    if wanted > len(available):
        hint = f" (the count is fixed once JAX has started; {HOST_DEVICES_FLAG} in XLA_FLAGS sets it)" * (
            platform == "cpu"
        )
        raise ConfigError(
            f"--jax.devices {wanted}: JAX has {len(available)} {platform} device(s) in this process{hint}; "
            f"accepted: 0 (all) or 1 to {len(available)}"
        )
    from ..agents.sharding import DataParallel  # the agents package needs Flax

    return DataParallel(tuple(available[:wanted]))
