"""Exception types shared by every layer.

`UserError` and its subclasses mean *the user asked for something impossible* (bad expression, missing
dataset, bad config). The CLI turns them into one line on stderr and exit code 2; everything else is a bug
and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user; reported as one line, exit code 2."""


class ParseError(UserError):
    """An expression could not be parsed by the whitelist grammar."""


class DatasetNotFound(UserError):
    """A dataset's files are absent and could not be downloaded."""


class DatasetError(UserError):
    """A dataset's files are there but unusable: an empty folder, one class, an unreadable image, a bad table."""


class ConfigError(UserError):
    """A configuration key or value is unknown or invalid."""
