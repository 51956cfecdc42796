"""Helpers and fixtures for console tests: clients that enforce CSRF like a
browser does, and a POST that sends the token the way the console's forms and
htmx (hx-headers on <body>) do."""

from __future__ import annotations

from html.parser import HTMLParser

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


class _FormReader(HTMLParser):
    """The entries a browser submits for the first form whose attributes
    include `match`: every named, enabled input (checkboxes and radios only
    when checked, buttons never), each select's selected options (a single
    select's first option when none is), every textarea."""

    def __init__(self, match: dict[str, str]) -> None:
        super().__init__()
        self.match = match
        self.found = self.inside = self.done = False
        self.data: dict[str, list[str]] = {}
        self.select: tuple[str, bool] | None = None  # name, multiple
        self.options: list[tuple[str, bool]] = []  # value, selected
        self.option: dict[str, str | None] | None = None
        self.textarea: str | None = None
        self.text = ""

    def add(self, name: str | None, value: str) -> None:
        if name:
            self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and not self.done and all(a.get(k) == v for k, v in self.match.items()):
            self.found = self.inside = True
        if not self.inside or "disabled" in a:
            return
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in {"checkbox", "radio"} and "checked" in a:
                self.add(a.get("name"), a.get("value") or "on")
            elif kind not in {"checkbox", "radio", "submit", "button", "reset", "image", "file"}:
                self.add(a.get("name"), a.get("value") or "")
        elif tag == "select":
            self.select, self.options = (a.get("name") or "", "multiple" in a), []
        elif tag == "option" and self.select is not None:
            self.option, self.text = a, ""
        elif tag == "textarea":
            self.textarea, self.text = a.get("name") or "", ""

    def handle_data(self, data: str) -> None:
        self.text += data

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "form":
            self.inside, self.done = False, True
        elif tag == "option" and self.option is not None:
            value = self.option.get("value")
            self.options.append((self.text if value is None else value, "selected" in self.option))
            self.option = None
        elif tag == "select" and self.select is not None:
            name, multiple = self.select
            chosen = [value for value, selected in self.options if selected]
            if not multiple and not chosen and self.options:
                chosen = [self.options[0][0]]
            for value in chosen if multiple else chosen[-1:]:
                self.add(name, value)
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            # A newline right after <textarea> is not part of its value.
            self.add(self.textarea, self.text.removeprefix("\n"))
            self.textarea = None


def form_data(html: str, **match: str) -> dict[str, list[str]]:
    """What a browser would post for the form with these attributes (e.g.
    action="/keys/1/edit/" or id="apikey_form") if nothing were changed."""
    reader = _FormReader(match)
    reader.feed(html)
    reader.close()
    assert reader.found, f"no form with {match}"
    return reader.data
