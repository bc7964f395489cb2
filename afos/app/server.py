"""The ``afos serve`` application and the server that runs it.

Why Starlette and uvicorn: the smallest well-kept ASGI pair (Starlette's only dependency is anyio), with
the routing, static files, test client and host checking this needs and nothing else; FastAPI would add
pydantic for models afos already has as frozen records, and its documentation pages load their scripts
from a CDN. Routes are plain functions, which Starlette runs in its thread pool: each opens the run
database it reads (read-only) in that thread and closes it before answering.

Security, in the order a request meets it:

* **Size.** A request line over :data:`MAX_TARGET` characters or with a body is refused (414, 413): every
  route is a GET that needs neither.
* **Token.** With a token (required by :func:`check_binding` for any address but loopback), every request
  must carry it: ``Authorization: Bearer TOKEN``, the ``afos_token`` cookie, or ``?token=`` once (which
  sets the cookie, so the pages' own requests carry it). Compared in constant time.
* **Host.** Served on loopback, only loopback host names are answered, so a web page elsewhere cannot
  reach the server through DNS rebinding.
* **Headers.** A strict Content-Security-Policy (scripts, styles, fonts and pictures from the server only;
  no inline script, no framing), ``nosniff`` and no referrer.

Answers over 1 KiB are gzipped for clients that accept it (KaTeX's script alone is 270 KB).
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from afos.app import api, function_pages, pages
from afos.errors import UserError

#: The longest request target (path and query) answered.
MAX_TARGET = 8192
#: The environment variable a token may come from instead of ``--token``.
TOKEN_VARIABLE = "AFOS_SERVE_TOKEN"
COOKIE = "afos_token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
STATIC = Path(__file__).parent / "static"

Handler = Callable[[Request], Awaitable[Response]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise UserError(f"--host {host} serves beyond this machine: give --token (or set {TOKEN_VARIABLE}) so that "
                        "every request must carry it")


class Guard(BaseHTTPMiddleware):
    """Size limits, the token, and the security headers on every answer."""

    def __init__(self, app: object, token: str | None) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.token = token

    async def dispatch(self, request: Request, call_next: Handler) -> Response:
        target = len(request.url.path) + len(request.url.query)
        if target > MAX_TARGET:
            return self._headed(PlainTextResponse("request too long", 414))
        if int(request.headers.get("content-length") or 0) > 0 or "transfer-encoding" in request.headers:
            return self._headed(PlainTextResponse("this server only reads: no request body", 413))
        offered = self._offered(request)
        if self.token and not (offered and hmac.compare_digest(offered.encode(), self.token.encode())):
            return self._headed(PlainTextResponse("a token is required (Authorization: Bearer TOKEN or ?token=)", 401))
        response = self._headed(await call_next(request))
        if self.token and request.query_params.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        return response

    @staticmethod
    def _offered(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.query_params.get("token") or request.cookies.get(COOKIE)

    @staticmethod
    def _headed(response: Response) -> Response:
        response.headers.update(HEADERS)
        return response


def create_app(root: str | Path, *, token: str | None = None, hosts: Sequence[str] = LOOPBACK_NAMES) -> Starlette:
    """The application over the runs under ``root``; ``hosts`` are the host names it answers (``*``: any)."""
    app = Starlette(routes=[*api.routes(), *pages.routes(), *function_pages.routes(),
                            Mount("/static", StaticFiles(directory=STATIC), name="static")],
                    middleware=[Middleware(Guard, token=token), Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
                                Middleware(GZipMiddleware, minimum_size=1024)])
    app.state.root = Path(root)
    return app


def check_port(host: str, port: int) -> None:
    """Refuse, in one line, an address another program holds (uvicorn would log a traceback-like error)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            raise UserError(f"cannot listen on {host} port {port} ({error.strerror or error}); choose another with "
                            "--port") from None


def run_server(root: str | Path, host: str = "127.0.0.1", port: int = 8765, token: str | None = None) -> None:
    """Serve the runs under ``root`` until interrupted."""
    import uvicorn

    check_binding(host, token)
    check_port(host, port)
    hosts = LOOPBACK_NAMES if is_loopback(host) else ["*"]
    uvicorn.run(create_app(root, token=token, hosts=hosts), host=host, port=port, log_level="warning",
                server_header=False, limit_concurrency=200)
