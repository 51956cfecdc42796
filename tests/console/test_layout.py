"""House rules every console page follows (STYLE.md)."""

from __future__ import annotations

import re
import urllib.request

import pytest

PAGES = ["/", "/keys/", "/keys/new/", "/docs/", "/account/", "/account/password/"]
TAG = re.compile(r"<(\w+)\b([^>]*)>", re.S)


@pytest.fixture
def pages(owner_client, owner_key, make_model):
    make_model("m")
    key, _ = owner_key
    urls = [*PAGES, f"/keys/{key.pk}/", f"/keys/{key.pk}/edit/", f"/keys/{key.pk}/rotate/"]
    return {url: owner_client.get(url).content.decode() for url in urls}


def test_htmx_and_styles_come_from_this_site_never_a_cdn(pages):
    for url, page in pages.items():
        sources = re.findall(r'<script[^>]*src="([^"]+)"', page)
        sources += re.findall(r'<link[^>]*href="([^"]+)"', page)
        assert "/static/vendor/htmx.min.js" in sources, url
        assert all(source.startswith("/static/") for source in sources), (url, sources)


def test_the_csrf_token_is_sent_by_htmx_from_the_body(pages):
    for url, page in pages.items():
        assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[A-Za-z0-9]+"\}\'', page), url


def test_every_hx_get_also_works_as_a_plain_link_or_form(pages):
    seen = 0
    for url, page in pages.items():
        for name, attrs in TAG.findall(page):
            if "hx-get=" not in attrs:
                continue
            seen += 1
            fallback = "href=" if name == "a" else "action="
            assert name in ("a", "form") and fallback in attrs, (url, name, attrs)
    assert seen


def test_static_files_are_served_by_the_app(live):
    with urllib.request.urlopen(f"{live.url}/static/vendor/htmx.min.js", timeout=10) as response:
        assert response.status == 200
        assert b"htmx" in response.read(2000)
    with urllib.request.urlopen(f"{live.url}/static/css/console.css", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/css")


def test_another_accounts_key_gets_the_consoles_own_404_page(outsider_client, owner_key):
    key, _ = owner_key

    response = outsider_client.get(f"/keys/{key.pk}/")

    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert key.name.encode() not in response.content


def test_a_post_without_csrf_token_explains_itself(owner_client, owner_key):
    key, _ = owner_key

    response = owner_client.post(f"/keys/{key.pk}/disable/")

    assert response.status_code == 403
    assert b"This form expired" in response.content


def test_the_error_page_renders_without_a_request(transactional_db):
    from django.template import loader

    page = loader.get_template("500.html").render()

    assert "Something went wrong" in page
