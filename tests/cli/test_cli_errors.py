"""The CLI's error boundary, through the real CLI in a subprocess: every expected failure (broken run
databases, missing folders, unwritable, read-only and full filesystems) is one ``afos: error:`` line naming
the file, exit code 2, no traceback; an unexpected exception keeps its traceback and says it is a bug (exit
1); exit code 130 only for Ctrl-C."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _afos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afos", *args], capture_output=True, text=True, timeout=300)


def _in_private_mount(script: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``afos ARGS`` after ``script`` mounted something at ``folder``, in a mount namespace of its own
    (``unshare -m``): the mount exists only for that process and vanishes with it. Skips where mounting is
    not allowed (not root, no unshare), because chmod alone does not stop root from writing."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("a real read-only or full filesystem needs root and unshare(1) to mount one privately")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"{script} && echo mounted", "sh", str(folder)],
                           capture_output=True, text=True, timeout=30)
    if "mounted" not in probe.stdout:
        pytest.skip(f"cannot mount in a private namespace here: {probe.stderr.strip()}")
    command = [sys.executable, "-m", "afos", *args]
    return subprocess.run(["unshare", "-m", "sh", "-c", f'{script} && shift && exec "$@"', "sh", str(folder),
                           *command], capture_output=True, text=True, timeout=300)


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Assert the whole of stderr is one ``afos: error:`` line holding ``needles``, exit code 2; return it."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert lines[0].startswith("afos: error: ") and all(n in lines[0] for n in needles), lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------- broken run databases


def _run_folder(tmp_path: Path, content: bytes | None) -> Path:
    """A folder holding an ``afos.db``: a file with ``content``, or a directory when ``content`` is None."""
    folder = tmp_path / "run"
    folder.mkdir()
    if content is None:
        (folder / "afos.db").mkdir()
    else:
        (folder / "afos.db").write_bytes(content)
    return folder


_BROKEN = {"zero-byte": b"", "garbage": bytes(range(256)) * 20, "directory": None}


@pytest.mark.parametrize(("kind", "command"), [("zero-byte", "report"), ("garbage", "report"),
                                               ("garbage", "search --resume"), ("directory", "compare --from")])
def test_broken_database_is_one_line(tmp_path: Path, kind: str, command: str) -> None:
    folder = _run_folder(tmp_path, _BROKEN[kind])
    _one_error_line(_afos(*command.split(), str(folder)), str(folder / "afos.db"))


def test_new_search_into_a_directory_named_afos_db(tmp_path: Path) -> None:
    folder = _run_folder(tmp_path, None)
    _one_error_line(_afos("search", "--out", str(folder), "--quiet"), str(folder / "afos.db"))


def test_report_on_a_folder_without_a_database(tmp_path: Path) -> None:
    _one_error_line(_afos("report", str(tmp_path)), str(tmp_path / "afos.db"))


# ------------------------------------------------------------------------------------------- filesystems


def test_out_below_a_file_is_one_line(tmp_path: Path) -> None:
    """A real ENOTDIR from mkdir, raised by the real search command."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = _one_error_line(_afos("search", "--out", str(blocker / "run"), "--quiet"), str(blocker))
    assert "Not a directory" in line


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, the always-full device of Linux")
def test_full_device_is_one_line(tmp_path: Path) -> None:
    """A real ENOSPC: the plot is written to /dev/full."""
    line = _one_error_line(_afos("show", "relu", "--plot", "/dev/full"), "No space left on device")
    assert "free disk space" in line


def test_read_only_filesystem_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    read_only = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1"'
    line = _one_error_line(_in_private_mount(read_only, folder, "search", "--out", str(folder / "run"), "--quiet"),
                           str(folder / "run"))
    assert "Read-only file system" in line
    assert not any(folder.iterdir())


def test_full_filesystem_during_a_search_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "small-disk"
    folder.mkdir()
    full = 'mount -t tmpfs -o size=16k afos-test-full "$1"'
    result = _in_private_mount(full, folder, "search", "--out", str(folder / "run"), "--population", "4",
                               "--generations", "1", "--epochs", "0.2", "--quiet")
    line = _one_error_line(result, str(folder / "run"))  # SQLite says "disk I/O error" or "database or disk is full"
    assert ("disk is full" in line or "No space left" in line) and "free disk space" in line, line


def test_report_of_a_read_only_run_is_printed_and_out_writes_elsewhere(tmp_path: Path) -> None:
    """A run folder that cannot be written still gets its report: printed, or written elsewhere (--out)."""
    run = tmp_path / "archive" / "run"
    made = _afos("search", "--out", str(run), "--population", "3", "--generations", "1", "--epochs", "0.2",
                 "--no-confirm", "--quiet")
    assert made.returncode == 0, made.stderr
    (run / "report.md").unlink()
    read_only = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1"'
    printed = _in_private_mount(read_only, run.parent, "report", str(run))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("# afos search report: run") and "--out DIR" in printed.stderr
    elsewhere = tmp_path / "copy"
    written = _in_private_mount(read_only, run.parent, "report", str(run), "--out", str(elsewhere))
    assert written.returncode == 0, written.stderr
    assert {"report.md", "hall_of_fame.csv", "generations.csv"} <= {p.name for p in elsewhere.iterdir()}
    assert not (run / "report.md").exists()


def test_a_config_whose_train_is_not_a_table_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("population = 4\ntrain = 5\n")
    line = _one_error_line(_afos("search", "--config", str(config), "--dataset", "digits", "--epochs", "0.2"),
                           "train must be a table")
    assert "got 5" in line


# ------------------------------------------------------------------------------------------- bugs and Ctrl-C

_RAISING_COMMAND = textwrap.dedent("""
    import sqlite3
    import sys
    from afos.cli import cli

    @cli.command("raise")
    def raise_() -> None:
        raise {"bug": ZeroDivisionError("division by zero"), "eof": EOFError("ran out of input"),
               "misuse": sqlite3.ProgrammingError("Cannot operate on a closed database."),
               "interrupt": KeyboardInterrupt()}[sys.argv[1]]

    cli(["raise"])
""")


def _raising(kind: str) -> subprocess.CompletedProcess[str]:
    """The real CLI group with one extra command that raises, as a bug deep inside a command would."""
    return subprocess.run([sys.executable, "-c", _RAISING_COMMAND, kind], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("kind", "exception"), [("bug", "ZeroDivisionError"), ("eof", "EOFError"),
                                               ("misuse", "ProgrammingError")])
def test_unexpected_exception_keeps_its_traceback_and_says_bug(kind: str, exception: str) -> None:
    result = _raising(kind)
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr and exception in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("afos: internal error (a bug in afos)")


def test_ctrl_c_alone_exits_130() -> None:
    result = _raising("interrupt")
    assert result.returncode == 130 and "afos: aborted" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------- words a user reads


@pytest.mark.parametrize(("args", "needles"), [
    (("search", "--dataset", "mnsit"), ("dataset='mnsit'", "did you mean 'mnist'?")),
    (("search", "--model", "resnet2"), ("did you mean 'resnet20'?",)),
    (("evaluate", "relu", "--dataset", "mnsit"), ("unknown dataset 'mnsit'; did you mean 'mnist'?",)),
    (("compare", "relu", "--tasks", "digits/mpl"), ("unknown model 'mpl'; did you mean 'mlp'?",)),
    (("evaluate", "x*sigmoid(beta*x)"), ("unknown name 'beta'", "--learnable beta=1", "learnable={'beta': 1.0}")),
])
def test_a_typo_gets_one_line_with_a_suggestion(args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    _one_error_line(_afos(*args), *needles)  # nothing else on stderr: no "N runs into <folder never made>"


def test_a_failed_download_leaves_no_folders_behind(tmp_path: Path) -> None:
    _one_error_line(_afos("search", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")),
                    "dataset 'mnist' not found")
    assert list(tmp_path.iterdir()) == []


def test_a_grid_counts_in_words_and_says_which_baselines_it_added(tmp_path: Path) -> None:
    done = _afos("compare", "relu", "--seeds", "1", "--epochs", "0.2", "--datasets", "digits", "--out",
                 str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert "note: baselines: relu, silu, gelu, mish (the default; --baseline names others)" in done.stderr
    assert "'relu' is listed as a candidate and as a baseline; it is evaluated once, as a baseline" in done.stderr
    one = _afos("evaluate", "relu", "--seeds", "1", "--epochs", "0.2", "--out", str(tmp_path / "e"))
    assert f"evaluate: 1 run into {tmp_path / 'e'}" in one.stderr and "1 runs" not in one.stderr


def test_export_of_a_results_folder_names_a_run_to_export(tmp_path: Path) -> None:
    done = _afos("evaluate", "relu", "--seeds", "1", "--epochs", "0.2", "--out", str(tmp_path / "results" / "e"))
    assert done.returncode == 0, done.stderr
    _one_error_line(_afos("export", str(tmp_path / "results")), "holds 1 run folder(s), not one run",
                    f"afos export {tmp_path / 'results' / 'e'}")


@pytest.mark.slow  # a whole search through a pipe, ~20 s
def test_a_closed_output_pipe_ends_quietly_and_the_run_finishes(tmp_path: Path) -> None:
    """`afos search ... 2>&1 | head -1`: the reader goes away after one line; the search goes on to its end
    (logged, status finished) and exits 141, as a command killed by SIGPIPE would, not 1 (a bug)."""
    from afos.records.runs import RunStatus
    from afos.runs.listing import list_runs

    command = [sys.executable, "-m", "afos", "search", "--population", "4", "--generations", "1", "--epochs", "1",
               "--no-confirm", "--out", str(tmp_path / "run")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().startswith("run folder")
    process.stdout.close()
    assert process.wait(timeout=300) == 141
    (row,) = list_runs(tmp_path)
    assert row.status is RunStatus.FINISHED
    assert "generation 1/1 done" in (tmp_path / "run" / "search.log").read_text()


def test_export_of_a_folder_that_does_not_exist_says_so(tmp_path: Path) -> None:
    _one_error_line(_afos("export", str(tmp_path / "nonexistent")), f"{tmp_path / 'nonexistent'} is neither a run "
                    "folder (there is no such folder) nor an expression")
