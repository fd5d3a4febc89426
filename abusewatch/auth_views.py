"""Sign-in views with a limit on failed attempts (see abusewatch.login_throttle)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from abusewatch.login_throttle import (
    login_blocked,
    login_failed,
    login_succeeded,
    retry_minutes,
)
from abusewatch.token_auth import token_expired
from portal.http import client_ip


def _typed_username(data: Any) -> str:
    """The user name as typed, from form data or any JSON body (a list has none)."""
    return str(data.get("username", ""))[:150] if hasattr(data, "get") else ""


def _too_many(username: str, ip_address: str | None) -> str:
    return _("Too many failed sign-ins. Try again in %(minutes)d minutes.") % {
        "minutes": retry_minutes(username, ip_address)
    }


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = _typed_username(request.POST)
        if login_blocked(username, client_ip(request)):
            # Refused before the password is checked, so guesses tell nothing while blocked.
            # The form is unbound: rendering a bound one would validate it, and so check the
            # password after all.
            form = self.get_form_class()(self.request, initial={"username": username})
            return self.render_to_response(
                self.get_context_data(form=form, throttled=_too_many(username, client_ip(request))),
                status=429,
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        login_failed(_typed_username(form.data), client_ip(self.request))
        return super().form_invalid(form)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        login_succeeded(form.get_user().get_username(), client_ip(self.request))
        return super().form_valid(form)


class ObtainTokenView(ObtainAuthToken):
    """POST /api/auth/token/ with the same limit as the login page."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        username = _typed_username(request.data)
        ip_address = client_ip(request)
        if login_blocked(username, ip_address):
            return Response(
                {"detail": _too_many(username, ip_address)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        response = super().post(request, *args, **kwargs)
        login_succeeded(username, ip_address)
        token = Token.objects.get(key=response.data["token"])
        if token_expired(token):
            # DRF hands back the user's existing token: an expired one is replaced.
            user = token.user
            token.delete()
            response.data["token"] = Token.objects.create(user=user).key
        return response

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == status.HTTP_400_BAD_REQUEST:
            login_failed(_typed_username(self.request.data), client_ip(self.request))
        return response
