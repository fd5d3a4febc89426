"""API plumbing shared by every app: error mapping, pagination."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from abusewatch.token_auth import TOKEN_EXPIRED


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus model validation and constraint errors as 400s, never 500s."""
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        return Response(
            {"detail": "The change conflicts with data already stored."},
            status=status.HTTP_409_CONFLICT,
        )
    response = drf_exception_handler(exc, context)
    if (
        response is not None
        and isinstance(exc, exceptions.AuthenticationFailed)
        and exc.get_codes() == TOKEN_EXPIRED
    ):
        # DRF answers 403 when the first authentication class (the session) has no challenge;
        # an expired token is a 401 that tells the client to sign in again.
        response.status_code = status.HTTP_401_UNAUTHORIZED
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response
