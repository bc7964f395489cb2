"""The ``afos`` command line: a thin click layer over the library.

Commands parse options, call one library function and print its result. Heavy modules (torch) are
imported inside commands so that ``afos --help`` and input errors answer fast. Every expected failure
becomes one line on stderr and exit code 2 (:mod:`afos.cli.boundary`).

* :mod:`~afos.cli.boundary`: the command group and its error boundary;
* :mod:`~afos.cli.options`: the options several commands share;
* :mod:`~afos.cli.functions`: ``show``, ``primitives`` and ``export``;
* :mod:`~afos.cli.search`: ``search``, ``report`` and ``runs``;
* :mod:`~afos.cli.grid`: ``evaluate`` and ``compare``;
* :mod:`~afos.cli.serve`: ``serve``."""

from __future__ import annotations

from afos.cli import functions, grid, search, serve
from afos.cli.boundary import cli

COMMANDS = (functions, grid, search, serve)  # imported for their commands, which register on ``cli``



def main() -> None:
    """Console-script entry point."""
    cli()
