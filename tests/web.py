"""Helpers and fixtures for console tests: clients that enforce CSRF like a
browser does, and a POST that sends the token the way the console's forms and
htmx (hx-headers on <body>) do."""

from __future__ import annotations

import pytest
from django.test import Client


def csrf_token(client: Client) -> str:
    """The CSRF token a browser would have after loading a console page."""
    if "csrftoken" not in client.cookies:
        client.get("/docs/")  # every page carries the token (hx-headers on <body>)
    return client.cookies["csrftoken"].value


def post(client: Client, url: str, data: dict | None = None, *, htmx: bool = False):
    headers = {"X-CSRFToken": csrf_token(client)}
    if htmx:
        headers["HX-Request"] = "true"
    return client.post(url, data or {}, headers=headers)


def browser_like_client(user=None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The default hasher takes half a second per user on purpose; tests make many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def anonymous_client(transactional_db) -> Client:
    return browser_like_client()
