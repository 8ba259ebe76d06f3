"""User-facing errors.

Every problem caused by the user's input (a file, a flag, a config) is raised as
:class:`HtposeError` with a one-line message; the CLI prints it without a traceback and
exits non-zero. Anything else reaching the CLI is a bug in htpose.
"""

from __future__ import annotations


class HtposeError(Exception):
    """An error in the user's input, reported as one line.

    Messages quote user data (keys, paths, values) that may hold line breaks or other
    control characters; they are shown escaped so the message stays on one line.
    """

    def __str__(self) -> str:
        text = super().__str__()
        if text.isprintable():
            return text
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class DataError(HtposeError):
    """A data file is missing, malformed, or of an unknown format."""


class ConfigError(HtposeError):
    """A configuration file or value is invalid."""


class CheckpointError(HtposeError):
    """A checkpoint cannot be read or does not fit the requested model."""
