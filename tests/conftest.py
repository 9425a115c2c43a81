"""Shared test settings: hypothesis profiles sized for a 2-core CI machine, the number of pytest-xdist workers, and
one XLA compilation cache for the test session."""

import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("default")

# Many tests build the same debug-size learners, whose jitted steps lower to identical programs: a persistent
# compilation cache compiles each once per session and loads it afterwards. The xdist workers and the tests'
# subprocesses inherit it through the environment (the controller sets it before it starts them). It starts empty
# every session, so the suite's time is what a clean clone sees. Set before JAX is imported: JAX reads these
# variables at import.
_OWN_CACHE = None if "JAX_COMPILATION_CACHE_DIR" in os.environ else tempfile.mkdtemp(prefix="ambs-verify-tests-xla-")
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# Compiling is most of the suite's time, and the tests run each program for a few steps: XLA's CPU backend compiles
# about a third faster without LLVM's optimisation passes. The programs and their results are the same (no
# fast-math: the byte-for-byte certificate fixture passes either way); only their speed differs, which the suite
# does not measure (benchmarks/ does, without this flag).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject's addopts): one worker per core, at most 4. XLA compiles a program on one thread, and
    compiling the debug learners is most of the suite's time; each worker holds its own JAX (about 2 GiB)."""
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_unconfigure(config):
    if _OWN_CACHE:  # the process that made the cache (the xdist controller, or a run without xdist) removes it
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
