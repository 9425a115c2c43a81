"""The JAX runtime of a command: the platform a config asks for and the persistent compilation cache.

Every command that runs an agent (``train``, ``certify``, ``verify``) calls :func:`configure_jax` before its first
JAX computation.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

from ..config import Config, ConfigError

__all__ = ["compilation_cache_dir", "configure_jax"]


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


def configure_jax(config: Config) -> None:
    """Select the JAX platform from ``jax.platform`` and turn on JAX's persistent compilation cache
    (:func:`compilation_cache_dir`): ``verify`` then loads the programs ``certify`` compiled instead of compiling
    them again (about a third of its time on the quickstart). Call before any JAX computation; later calls are
    ignored."""
    platform = {"gpu": "cuda"}.get(config.jax.platform, config.jax.platform)
    try:
        jax.config.update("jax_platforms", platform)
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
