"""A key's IP allowlist, through the live server: the client's address from
the socket, or from X-Forwarded-For only through the trusted proxy hops."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from django.test import override_settings

from tests.conftest import ServerThread
from tests.helpers import chat_body, post_chat

FORGED = {"X-Forwarded-For": "203.0.113.7"}


@pytest.fixture
def chat(live, http, make_model, make_key):
    """A key with this allowlist, and one chat request with it (any headers)."""
    make_model()

    def send(allowed_ips: list[str], headers: dict | None = None, via=http) -> httpx2.Response:
        _, secret = make_key(allowed_ips=allowed_ips)
        return post_chat(via, secret, chat_body(), headers)

    return send


def assert_refused(response: httpx2.Response, address: str) -> None:
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "ip_not_allowed"
    assert error["type"] == "invalid_request_error"
    assert f"may not be used from {address}" in error["message"]


@pytest.mark.parametrize("allowed", [["127.0.0.1"], ["127.0.0.0/8"], ["10.0.0.0/8", "127.0.0.1"]])
def test_a_client_on_the_allowlist_is_served(chat, allowed):
    assert chat(allowed).status_code == 200


def test_a_key_without_an_allowlist_is_served_from_anywhere(chat):
    assert chat([]).status_code == 200


def test_a_client_elsewhere_is_refused_and_the_refusal_is_the_keys_record(chat, usage_records):
    response = chat(["10.0.0.0/8", "2001:db8::/32"])

    assert_refused(response, "127.0.0.1")
    assert response.headers["x-purebridge-request-id"]
    [record] = usage_records()
    assert record.request_id == response.headers["x-purebridge-request-id"]
    assert (record.status, record.error_type) == (403, "ip_not_allowed")
    assert record.api_key_id is not None and record.account_id is not None
    assert record.provider == "" and record.cost_usd == 0


def test_a_forged_forwarded_for_is_ignored_without_trusted_hops(chat):
    assert_refused(chat(["203.0.113.7"], FORGED), "127.0.0.1")
    assert chat(["127.0.0.1"], FORGED).status_code == 200


@override_settings(PUREBRIDGE_TRUSTED_PROXY_HOPS=1)
def test_one_trusted_hop_takes_the_last_forwarded_address(chat):
    # The proxy appended 203.0.113.7; what the client sent before it is forged.
    headers = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}

    assert chat(["203.0.113.7"], headers).status_code == 200
    assert_refused(chat(["198.51.100.9", "127.0.0.1"], headers), "203.0.113.7")


@override_settings(PUREBRIDGE_TRUSTED_PROXY_HOPS=2)
def test_two_trusted_hops_take_the_second_address_from_the_right(chat):
    # The outer proxy appended the client (203.0.113.7), the inner one the outer proxy.
    headers = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7, 10.0.0.2"}

    assert chat(["203.0.113.7/32"], headers).status_code == 200
    assert_refused(chat(["10.0.0.2", "198.51.100.9"], headers), "203.0.113.7")


@override_settings(PUREBRIDGE_TRUSTED_PROXY_HOPS=2)
def test_a_forwarded_for_shorter_than_the_hops_falls_back_to_the_socket(chat):
    assert_refused(chat(["203.0.113.7"], FORGED), "127.0.0.1")
    assert chat(["127.0.0.1"], FORGED).status_code == 200


@override_settings(PUREBRIDGE_TRUSTED_PROXY_HOPS=1)
@pytest.mark.parametrize("forwarded", ["not-an-address", "", "203.0.113.7, 999.1.1.1"])
def test_a_malformed_forwarded_for_falls_back_to_the_socket(chat, forwarded):
    assert chat(["127.0.0.1"], {"X-Forwarded-For": forwarded}).status_code == 200


@override_settings(PUREBRIDGE_TRUSTED_PROXY_HOPS=1)
def test_an_ipv6_client_behind_a_trusted_proxy_is_matched_by_its_range(chat):
    headers = {"X-Forwarded-For": "2001:db8::5"}

    assert chat(["2001:db8::/32"], headers).status_code == 200
    assert_refused(chat(["2001:db9::/32", "127.0.0.1"], headers), "2001:db8::5")


@pytest.fixture(scope="module")
def ipv6_server(server) -> Iterator[ServerThread]:
    """A second server of this process on [::1] (no lifespan: the first owns
    the process's upstream pool and listeners)."""
    running = ServerThread("::1", lifespan="off").start()
    yield running
    running.stop()


def test_an_ipv6_client_from_the_socket_is_checked_by_address_and_range(chat, ipv6_server):
    with httpx2.Client(base_url=ipv6_server.url, timeout=20) as over_ipv6:
        assert chat(["::1"], via=over_ipv6).status_code == 200
        assert chat(["::/0"], via=over_ipv6).status_code == 200
        assert_refused(chat(["2001:db8::/32", "127.0.0.1"], via=over_ipv6), "::1")
    ipv6_server.wait_idle()


def test_a_changed_allowlist_applies_to_the_cached_key(live, http, make_model, make_key):
    from keys.services import key_update

    make_model()
    key, secret = make_key(allowed_ips=["10.0.0.0/8"])
    assert post_chat(http, secret, chat_body()).status_code == 403

    key_update(api_key=key, allowed_ips=["127.0.0.1"])

    assert post_chat(http, secret, chat_body()).status_code == 200
