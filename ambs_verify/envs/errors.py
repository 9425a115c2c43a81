"""The exception environments raise for a bad task name or configuration (one-line messages)."""

from __future__ import annotations

from collections.abc import Iterable


class EnvConfigError(ValueError):
    """Bad environment name or option; the message says what was wrong and what is accepted."""


def reject_unknown_keys(given: Iterable[str], valid: Iterable[str], what: str) -> None:
    """Raise a one-line :class:`EnvConfigError` naming the unknown keys of ``given`` and listing ``valid``."""
    valid = list(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise EnvConfigError(f"unknown {what}(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
