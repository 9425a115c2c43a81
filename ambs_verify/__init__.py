"""ambs-verify: Approximate Model-Based Shielding for safe RL, with statistical safety certificates."""

from importlib import metadata

try:
    __version__ = metadata.version("ambs-verify")
except metadata.PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
