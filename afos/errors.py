"""Exception types shared by every layer.

The last two are not errors but the two limits a caller sets (an evaluation budget, a deadline): raised
where the limit is met, by the evaluation layer or the proposer, and caught by the search, which stops
there with every finished record committed.

`UserError` and its subclasses mean *the user asked for something impossible* (bad expression, missing or
broken dataset, bad config, a folder that is not a usable run). The CLI turns them into one line on stderr
and exit code 2; everything else is a bug and keeps its traceback. :class:`ExitCode` is every exit status
the command line uses (the docs' table is generated from it).
"""

from enum import IntEnum


class ExitCode(IntEnum):
    """How an ``afos`` command ended. Each member's description is the documented meaning."""

    description: str

    def __new__(cls, code: int, description: str) -> "ExitCode":
        member = int.__new__(cls, code)
        member._value_ = code
        member.description = description
        return member

    OK = 0, ("the command ran; for search, evaluate and compare even if some candidates failed (each is "
             "recorded with its status and reason)")
    BUG = 1, "a bug in afos: its traceback is printed above the last line; please report it"
    USER_ERROR = 2, ("an expected failure, reported as one `afos: error: ...` line before any training where "
                     "it can be: bad input or config, a missing or corrupt dataset, an unusable run folder")
    INTERRUPTED = 130, "interrupted by Ctrl-C; a search or grid says how to resume it"
    PIPE_CLOSED = 141, ("the output's reader closed it (`afos ... | head`): the command went on to its end "
                        "without printing, its run folder and log hold everything")
    TERMINATED = 143, ("terminated by SIGTERM (a scheduler's cancel); the run is marked interrupted and "
                       "resumes the same way")


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


class RunInUse(StoreError):
    """Another live process is writing the run folder; a second writer would train the same runs twice."""


class NothingTrains(UserError):
    """Not one training of a search's first generation, nor of its baselines, ended ok: nothing can be
    compared, so going on would only spend the machine's time."""


class BudgetSpent(Exception):
    """Not an error: the caller's evaluation budget ran out; the records made before it are committed."""


class TimeUp(Exception):
    """Not an error: the caller's deadline passed; the records made before it are committed."""
