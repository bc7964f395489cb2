"""Exception types shared by every layer.

The last two are not errors but the two limits a caller sets (an evaluation budget, a deadline): raised
where the limit is met, by the evaluation layer or the proposer, and caught by the search, which stops
there with every finished record committed.

`UserError` and its subclasses mean *the user asked for something impossible* (bad expression, missing or
broken dataset, bad config, a folder that is not a usable run). The CLI turns them into one line on stderr
and exit code 2; everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user; reported as one line, exit code 2."""


class ParseError(UserError):
    """An expression could not be parsed by the whitelist grammar."""


class DatasetError(UserError):
    """A dataset's files are absent, truncated, corrupt or larger than the dataset can be, or unusable: an
    empty image folder, one class, an unreadable image, a table without its target column."""


class DatasetNotFound(DatasetError):
    """A dataset's files are absent and could not be downloaded."""


class ConfigError(UserError):
    """A configuration key or value is unknown or invalid."""


class StoreError(UserError):
    """The file is not a usable afos run database, or a write was attempted on a read-only store."""


class BudgetSpent(Exception):
    """Not an error: the caller's evaluation budget ran out; the records made before it are committed."""


class TimeUp(Exception):
    """Not an error: the caller's deadline passed; the records made before it are committed."""
