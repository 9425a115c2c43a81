"""The exception environments raise for a bad task name or configuration (one-line messages)."""


class EnvConfigError(ValueError):
    """Bad environment name or option; the message says what was wrong and what is accepted."""
