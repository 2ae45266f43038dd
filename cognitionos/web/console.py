"""The web console: static HTML, ES modules and CSS under ``static/console``, no build step.

``/`` answers the page; ``/console/…`` its modules and stylesheet. The console talks to the
server only through the public GraphQL API (HTTP and graphql-transport-ws), so everything
it shows is something any client can do.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["CONSOLE_DIR", "console_routes"]

CONSOLE_DIR = Path(__file__).resolve().parent / "static" / "console"

# Everything comes from this origin: no CDN, no inline script or style, no framing.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _index(request: Request) -> Response:
    return FileResponse(CONSOLE_DIR / "index.html", headers=_HEADERS)


class _Assets(StaticFiles):
    """Modules are revalidated on every load: a server upgrade is seen at once."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def console_routes() -> list[BaseRoute]:
    return [
        Route("/", _index, methods=["GET", "HEAD"]),
        Mount("/console", _Assets(directory=CONSOLE_DIR, check_dir=False), name="console"),
    ]
