"""The command group and its error boundary: expected failures are one line and exit code 2, never a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import sys
import traceback
import warnings
from typing import Any, NoReturn

import click

from afos.errors import ExitCode, UserError

_SHOWN: set[str] = set()  # warnings already shown by this command


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` for the CLI: one ``afos: warning: ...`` line, without Python's source line,
    once per command however many code paths warn it (a dataset is read to check it, then to train), and
    written above a running progress bar rather than into it."""
    from tqdm import tqdm

    text = " ".join(str(message).split())
    if text not in _SHOWN:
        _SHOWN.add(text)
        tqdm.write(f"afos: warning: {text}", file=sys.stderr)


class Group(click.Group):
    """The one error boundary: an expected failure is one line on stderr and exit code 2, never a traceback.

    Expected failures are the user's input (:class:`UserError`, click's usage errors), files and folders
    (``OSError``: missing, unwritable, read-only, disk full) and broken run databases (``sqlite3`` errors of
    the file or the disk, see :func:`_is_expected`). Anything else is a bug: its traceback is printed, then a line asking for a
    report, exit code 1. Exit code 130 is kept for a real Ctrl-C. Python warnings become one
    ``afos: warning:`` line each.
    """

    def invoke(self, ctx: click.Context) -> Any:  # noqa: D102 - click hook
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # before click, which would exit 1, the code of a bug
            _silence_output()
            sys.exit(ExitCode.PIPE_CLOSED)

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - click hook
        try:
            with warnings.catch_warnings():  # restores Python's own hook when the command returns
                warnings.showwarning = show_warning
                return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.exceptions.Abort as error:
            # click turns both Ctrl-C and an EOFError into Abort; only the first is an interrupt.
            if not isinstance(error.__context__, EOFError):
                click.echo("afos: aborted", err=True)
                sys.exit(ExitCode.INTERRUPTED)
            _report_bug(error.__context__)
        except KeyboardInterrupt:
            click.echo("afos: aborted", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        except Exception as error:  # noqa: BLE001 - the boundary: sorted into expected failures and bugs
            if not _is_expected(error):
                _report_bug(error)
            click.echo(f"afos: error: {_expected_failure(error)}", err=True)
            sys.exit(ExitCode.USER_ERROR)


def _silence_output() -> None:
    """Point stdout and stderr at /dev/null, so that Python's own flush at exit finds no closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())


def _is_expected(error: Exception) -> bool:
    """Failures of the input or the environment, not of afos. Of sqlite3's errors only those of the file and
    the disk (a plain DatabaseError: not a database, malformed; OperationalError: cannot open, read-only,
    full, I/O); a misused connection (ProgrammingError, IntegrityError, ...) is a bug."""
    if isinstance(error, (UserError, click.ClickException, OSError, sqlite3.OperationalError)):
        return True
    return type(error) is sqlite3.DatabaseError


def _report_bug(error: BaseException) -> NoReturn:
    traceback.print_exception(error)
    click.echo("afos: internal error (a bug in afos): please report it with the traceback above", err=True)
    sys.exit(ExitCode.BUG)


#: What to do about an OSError, by errno; the default is to check the path.
_OS_ADVICE = {
    errno.ENOSPC: "free disk space, then run the same command again (a search: --resume its folder)",
    errno.EDQUOT: "free space within your disk quota, then run the same command again",
    errno.EACCES: "check the permissions, or choose another folder (--out)",
    errno.EPERM: "check the permissions, or choose another folder (--out)",
    errno.EROFS: "choose a folder on a writable filesystem (--out)",
    errno.ENOENT: "check the path",
    errno.EISDIR: "a folder is in the way of a file; give a file path or remove the folder",
    errno.ENOTDIR: "a file is in the way of a folder; give a folder path or remove the file",
}

#: What to do about a broken or unusable run database, by SQLite's primary error name (Python >= 3.11 gives
#: it; older ones get the neutral advice).
_SQLITE_ADVICE = {
    "SQLITE_NOTADB": "it is not an intact afos run database: restore it from a copy, or start the run in a new "
                     "folder",
    "SQLITE_CORRUPT": "the run database is damaged: restore it from a copy, or start the run in a new folder",
    "SQLITE_FULL": "free disk space, then run the same command again (a search: --resume its folder)",
    "SQLITE_READONLY": "the database or its folder cannot be written; check the permissions or copy the folder "
                       "somewhere writable",
    "SQLITE_CANTOPEN": "it must be a file you can read and write, in a folder you can write",
    "SQLITE_IOERR": "the disk could not be read or written; check the filesystem and free space",
    "SQLITE_BUSY": "another afos process holds it; wait until that one ends",
    "SQLITE_LOCKED": "another afos process holds it; wait until that one ends",
}


def _expected_failure(error: Exception) -> str:
    """The one-line message of an expected failure: what went wrong, on which file, and what to do."""
    if isinstance(error, click.ClickException):
        return error.format_message()
    if isinstance(error, sqlite3.DatabaseError):
        primary = "_".join(getattr(error, "sqlite_errorname", "").split("_")[:2])  # SQLITE_IOERR_WRITE: IOERR
        database = _database_of(error)
        if primary == "SQLITE_IOERR" and database is not None and _disk_full(database):
            return f"{database}: the disk is full (SQLite: {error}); {_SQLITE_ADVICE['SQLITE_FULL']}"
        advice = _SQLITE_ADVICE.get(primary, "check the file and the disk it is on")
        return f"{database or 'run database'}: {error}; {advice}"
    if isinstance(error, OSError) and error.errno is not None:
        where = f"{error.filename}: " if error.filename is not None else ""
        advice = _OS_ADVICE.get(error.errno, "check the path" if error.filename is not None else "")
        return f"{where}{error.strerror or error}" + (f"; {advice}" if advice else "")
    return str(error)


def _disk_full(path: str) -> bool:
    """Whether the filesystem holding ``path`` has (almost) no room left: SQLite reports a write it could
    not finish there as a plain "disk I/O error"."""
    try:
        return shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < 1 << 20
    except OSError:
        return False


def _database_of(error: BaseException) -> str | None:
    """The file of the run store whose call raised ``error``: sqlite3's errors do not name their file.

    Found as the innermost ``RunStore`` bound to ``self`` in the traceback's frames.
    """
    from afos.storage.database import Database

    stores = [frame.f_locals.get("self") for frame, _ in traceback.walk_tb(error.__traceback__)]
    paths = [str(store.path) for store in stores if isinstance(store, Database)]
    return paths[-1] if paths else None


#: Expressions often start with '-' ("-x*erf(exp(-x))"); let them through as arguments, not options.
EXPRESSION_COMMAND = {"ignore_unknown_options": True}


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="afos")
def cli() -> None:
    """Discover activation functions by genetic search, and evaluate them rigorously."""
