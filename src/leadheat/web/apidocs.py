"""The API's interactive docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``) from assets
installed with the package, so they work on a network with no way out: FastAPI's defaults
load both from a CDN (and a favicon and Google Fonts from other hosts), leaving a blank page
offline. The assets are vendored in ``static/`` (versions and licences in its README).

Each page states a Content-Security-Policy that lets it load nothing from another host: its
one inline script (Swagger UI's set-up) is allowed by its hash, not by ``'unsafe-inline'``.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

FAVICON = "/static/favicon.svg"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: str) -> str:
    """The CSP of a docs page: scripts from this server and the page's own inline scripts
    (by hash), styles from here and inline (both UIs set styles from script), images and
    fonts from here or ``data:``, ReDoc's search worker from a ``blob:``.

    >>> policy = docs_policy("<script>go()</script>")
    >>> "script-src 'self' 'sha256-" in policy and "https:" not in policy
    True
    """
    scripts = " ".join(
        [
            "'self'",
            *(
                "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
                for body in _INLINE_SCRIPT.findall(html)
            ),
        ]
    )
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    return HTMLResponse(html, headers={"content-security-policy": docs_policy(html)})


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI over ``/openapi.json``, from this server only (no online validator)."""
    return _with_policy(
        get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="leadheat API",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
            swagger_favicon_url=FAVICON,
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """ReDoc over ``/openapi.json``, with the system's fonts instead of Google Fonts."""
    return _with_policy(
        get_redoc_html(
            openapi_url="/openapi.json",
            title="leadheat API",
            redoc_js_url="/static/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
    )
