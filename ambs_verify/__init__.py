"""ambs-verify: Approximate Model-Based Shielding for safe RL, with statistical safety certificates.

The Python API (:mod:`ambs_verify.api`): :func:`train`, :func:`certify`, :func:`verify`, :func:`report`,
:func:`load_agent` and their records :class:`Run`, :class:`Certificate`, :class:`LoadedAgent`. Importing the package
imports none of JAX, MuJoCo or ALE; each function imports what it uses when called.
"""

from .api import Certificate, LoadedAgent, Run, certify, load_agent, report, train, verify

__all__ = ["Certificate", "LoadedAgent", "Run", "__version__", "certify", "load_agent", "report", "train", "verify"]


def __getattr__(name: str) -> str:
    if name == "__version__":  # read on demand: importlib.metadata is most of the package's import time
        from importlib import metadata

        try:
            return metadata.version("ambs-verify")
        except metadata.PackageNotFoundError:  # running from a source tree that was not installed
            return "0.0.0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
