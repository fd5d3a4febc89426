"""Content-Security-Policy on every response, with a fresh nonce per request.

Scripts run only from this server's static files or from inline blocks carrying the request's
nonce (`nonce="{{ csp_nonce }}"`, see templates): a value a user typed that ends up in a page
cannot run as script even if an escaping mistake lets markup through. Styles keep
'unsafe-inline' because the admin and the API docs (Redoc) set styles inline; a style cannot
run code. Nothing is loaded from other origins (the API docs' web fonts included): the server
may sit on a network that reaches nothing else.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def csp_header(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "font-src 'self' data:",
            "connect-src 'self' ws: wss:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", csp_header(nonce))
        return response


def csp_nonce(request: HttpRequest) -> dict[str, object]:
    """Context processor: `csp_nonce` for the templates' few inline scripts."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
