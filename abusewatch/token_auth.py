"""API tokens that expire (its own module: DRF imports authentication classes while
rest_framework.views is still loading, so this must not import the views)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

TOKEN_EXPIRED = "token_expired"  # noqa: S105 (an error code, not a secret)


def token_expired(token: Token) -> bool:
    age = timezone.now() - token.created
    return bool(age > dt.timedelta(days=int(settings.API_TOKEN_MAX_AGE_DAYS)))


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token, refused (401) once API_TOKEN_MAX_AGE_DAYS old: a token copied into a script
    or leaked in a log does not open the API for ever."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                "Token expired: sign in again for a new one.", code=TOKEN_EXPIRED
            )
        return user, token
