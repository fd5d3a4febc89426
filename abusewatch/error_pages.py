"""Production-style error pages while DEBUG is on, for `make run`'s demo (issue #15).

`make run` needs DEBUG for its demo accounts and development signing key, but Django's debug
pages then answer every visitor: a 404 lists every URL pattern of the project, a 500 shows
code and settings. With DEBUG_ERROR_PAGES off this middleware answers as production does:
a plain page in the site's style, the status code kept, the exception logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

logger = logging.getLogger("django.request")

# Marked for makemessages here, translated when the page is rendered (in the user's language).
TITLES = {
    403: (gettext_noop("Not allowed"), gettext_noop("Your account may not open this page.")),
    404: (
        gettext_noop("Not found"),
        gettext_noop("There is no such page, or it is not yours to see."),
    ),
    500: (
        gettext_noop("Something went wrong"),
        gettext_noop("The error is recorded. Try again in a moment."),
    ),
}


def error_page(request: HttpRequest, status: int) -> HttpResponse:
    title, text = TITLES.get(status, TITLES[500])
    return render(
        request,
        "error_page.html",
        {"status": status, "title": _(title), "text": _(text)},
        status=status,
    )


class ProductionErrorPages:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @staticmethod
    def active() -> bool:
        return bool(settings.DEBUG) and not settings.DEBUG_ERROR_PAGES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            self.active()
            and response.status_code == 404
            and getattr(request, "resolver_match", None) is None
        ):
            # No URL pattern matched: Django's debug 404 would list them all.
            return error_page(request, 404)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not self.active():
            return None
        if isinstance(exception, Http404):
            return error_page(request, 404)
        if isinstance(exception, PermissionDenied):
            return error_page(request, 403)
        logger.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=exception,
            extra={"status_code": 500},
        )
        return error_page(request, 500)
