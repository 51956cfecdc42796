from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts.models import Account, User

# Any response: a page, or a streamed one (a CSV export).
Response = TypeVar("Response", bound=HttpResponseBase)


def current_account(request: HttpRequest) -> Account:
    """The signed-in user's account: every console query is scoped to it."""
    user = request.user
    assert isinstance(user, User), "current_account() needs a signed-in user"
    return user.account


def account_required(view: Callable[..., Response]) -> Callable[..., Response]:
    """Signed in, and the view (forms and templates) runs in the account's time zone."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> Response:
        with timezone.override(current_account(request).timezone):
            return view(request, *args, **kwargs)

    return login_required(wrapped)
