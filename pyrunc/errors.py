"""The exception tree.  Every message is one line: operation, object, cause, lowercase.

The CLI prints ``str(err)`` and exits 1; nothing else reaches the user, so a message
must make sense on its own (`config.json: process.args: must be a non-empty array`).
"""


class PyruncError(Exception):
    """Base of every error pyrunc reports to its caller."""


class ConfigError(PyruncError):
    """config.json (or another input) is invalid: names the file and the field."""


class StateError(PyruncError):
    """The container is missing, or in the wrong state for the operation."""


class NotFoundError(StateError):
    """The container does not exist (callers match on "does not exist")."""


class UsageError(PyruncError):
    """Bad command line."""


class InitError(PyruncError):
    """The container process failed between clone and exec (stage + errno)."""

    def __init__(self, message, stage=0, errno=0):
        super().__init__(message)
        self.stage = stage
        self.errno = errno
