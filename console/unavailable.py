"""The console while PostgreSQL (or Redis) cannot answer: a 503 page, never a
500 and never a wait per request for a deadline.

The middleware answers at once while the process takes the database for
down (purebridge/db.py: for a second after a failure, then one request tries
it); `server_error`, the project's handler500, turns an error that says the
database or Redis cannot answer into the same page, wherever it was raised
(a view, the session or auth middleware, a template)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import TemplateDoesNotExist, loader
from django.utils.decorators import sync_and_async_middleware
from redis.exceptions import RedisError

from purebridge import db

RETRY_AFTER = "5"


def unavailable_page(what: str = "its database") -> HttpResponse:
    # Rendered without the request: its context processors may need the
    # database (the user), which is what failed.
    body = loader.get_template("503.html").render({"what": what})
    return HttpResponse(body, status=503, headers={"Retry-After": RETRY_AFTER})


@sync_and_async_middleware
def database_unavailable(get_response: Callable) -> Callable:
    if iscoroutinefunction(get_response):

        async def middleware_async(request: HttpRequest) -> HttpResponse:
            down = db.taken_for_down()
            if down and not db.usable():
                return unavailable_page()
            return _after(down, await get_response(request))

        return middleware_async

    def middleware(request: HttpRequest) -> HttpResponse:
        down = db.taken_for_down()
        if down and not db.usable():
            return unavailable_page()
        return _after(down, get_response(request))

    return middleware


def _after(down: bool, response: HttpResponse) -> HttpResponse:
    if down and response.status_code != 503:
        db.mark_up()  # the request that tried it again got through
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    error = sys.exc_info()[1]
    if error is not None and db.unavailable(error):
        if db.unreachable(error):
            db.mark_down(error)
        return unavailable_page()
    if isinstance(error, RedisError):
        return unavailable_page("its cache (Redis)")
    try:
        return HttpResponseServerError(loader.get_template("500.html").render())
    except TemplateDoesNotExist:
        return HttpResponseServerError(b"<h1>Server Error (500)</h1>")
