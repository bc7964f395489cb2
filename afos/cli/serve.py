"""``afos serve``: every run under a results root, live in a browser and over a JSON API."""

from __future__ import annotations

from pathlib import Path

import click

from afos.cli.boundary import cli


@cli.command()
@click.argument("root", type=click.Path(file_okay=False), default="results")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but loopback needs --token.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="Port to listen on.")
@click.option("--token", envvar="AFOS_SERVE_TOKEN", default=None,
              help="Secret every request must carry (Authorization: Bearer TOKEN, or ?token= once in a browser); "
                   "also read from AFOS_SERVE_TOKEN.")
def serve(root: str, host: str, port: int, token: str | None) -> None:
    """Serve the runs under ROOT (default results/) as web pages and a JSON API (/api), read-only.

    Runs started later appear on their own; a running search's page updates itself within seconds.
    """
    from afos.app.server import check_binding, check_port, run_server

    check_binding(host, token)
    check_port(host, port)
    where = Path(root)
    if not where.is_dir():
        click.echo(f"afos: {root} does not exist yet; runs appear once a command writes there", err=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving the runs under {root} at http://{shown}:{port}/ (read-only; Ctrl-C stops)", err=True)
    run_server(where, host=host, port=port, token=token)
