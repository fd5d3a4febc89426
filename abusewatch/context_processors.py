from __future__ import annotations

from django.http import HttpRequest

from access.policy import role_of


def role(request: HttpRequest) -> dict[str, object]:
    # A plain string: templates call callables they meet, so the Role enum class itself
    # cannot be compared against there (Role.EXPERT would resolve to "").
    return {"user_role": str(role_of(request.user))}
