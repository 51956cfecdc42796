"""POST-only console addresses opened in a browser (a bookmark, a reload, a
link pasted from the address bar): the console's own 405 page, saying what the
address is for and leading to the page its form is on, rather than Django's
empty 405 that the browser dresses up as an error page of its own.

Only for console views: the /v1 routes answer 405 in the OpenAI error shape
(gateway), and Stripe's webhook is never opened by a person."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.log import log_response


def post_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return method_not_allowed(request, allowed=["POST"])
        return view(request, *args, **kwargs)

    return wrapped


def method_not_allowed(request: HttpRequest, *, allowed: list[str]) -> HttpResponse:
    response = render(request, "405.html", {"back": _parent(request.path)}, status=405)
    response["Allow"] = ", ".join(allowed)
    log_response(
        "Method Not Allowed (%s): %s",
        request.method,
        request.path,
        response=response,
        request=request,
    )
    return response


def _parent(path: str) -> str:
    """The page a form's action belongs to, by this console's URL layout:
    /billing/buy/ is on /billing/, /keys/7/disable/ on /keys/7/, /logout/ on /."""
    return path.rstrip("/").rpartition("/")[0] + "/"
