"""Failing over to the next route before the first byte, and never after it."""

from decimal import Decimal

import pytest

from gateway.catalogue import invalidate_catalogue
from gateway.models import CatalogModel, Route
from tests.helpers import chat_body, post_chat, sse_data


@pytest.fixture
def model_with_routes(transactional_db):
    """A model whose routes are (provider, upstream_model) pairs in priority order."""

    def make(*routes, public_id: str = "test-model"):
        model = CatalogModel.objects.create(
            public_id=public_id,
            input_per_mtok=Decimal("1"),
            cached_input_per_mtok=Decimal("0.1"),
            output_per_mtok=Decimal("2"),
        )
        for priority, (provider, upstream_model) in enumerate(routes):
            Route.objects.create(
                model=model, provider=provider, upstream_model=upstream_model, priority=priority
            )
        return model

    return make


@pytest.mark.parametrize("first", ["fake?status=500", "fake?status=503", "fake?status=429"])
def test_failing_first_route_falls_over_to_the_second(
    http, api_key, make_provider, model_with_routes, fake_upstream, first
):
    fake = make_provider()
    model_with_routes((fake, first), (fake, "fake"))

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "tok tok tok"
    assert [r["body"]["model"] for r in fake_upstream.requests] == [first, "fake"]


def test_hanging_first_route_falls_over_after_the_first_byte_timeout(
    http, api_key, make_provider, model_with_routes, fake_upstream
):
    fake = make_provider(first_byte_timeout=0.5)
    model_with_routes((fake, "fake?hang=1"), (fake, "fake"))

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 200
    assert len(fake_upstream.requests) == 2


def test_unreachable_first_provider_falls_over_to_the_second(
    http, api_key, make_provider, model_with_routes, dead_base_url
):
    dead = make_provider("dead", base_url=dead_base_url, connect_timeout=2)
    fake = make_provider()
    model_with_routes((dead, "fake"), (fake, "fake"))

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 200


def test_invalid_json_from_the_first_route_falls_over_to_the_second(
    http, api_key, make_provider, model_with_routes
):
    fake = make_provider()
    model_with_routes((fake, "fake?invalid_json=1"), (fake, "fake"))

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 200


@pytest.mark.parametrize("first", ["fake?status=500", "fake?hang=1", "fake?first_ms=3000"])
def test_stream_falls_over_before_its_first_chunk(
    http, api_key, make_provider, model_with_routes, first
):
    fake = make_provider(first_byte_timeout=0.5)
    model_with_routes((fake, first), (fake, "fake?tokens=3"))

    response = post_chat(http, api_key, chat_body(stream=True))

    assert response.status_code == 200
    assert sse_data(response.text)[-1] == "[DONE]"


def test_stream_whose_first_event_is_an_error_falls_over_to_the_second(
    http, api_key, make_provider, model_with_routes, fake_upstream
):
    fake = make_provider()
    model_with_routes((fake, "fake?error_first=1"), (fake, "fake?tokens=3"))

    response = post_chat(http, api_key, chat_body(stream=True))

    assert sse_data(response.text)[-1] == "[DONE]"
    assert len(fake_upstream.requests) == 2


def test_usage_record_names_the_route_that_answered(
    http, api_key, make_provider, model_with_routes, usage_records
):
    first = make_provider("first")
    second = make_provider("second")
    model_with_routes((first, "fake?status=500"), (second, "fake?tokens=2"))

    post_chat(http, api_key, chat_body())

    [record] = usage_records()
    assert record.status == 200
    assert (record.provider, record.upstream_model) == ("second", "fake?tokens=2")
    assert record.completion_tokens == 2


def test_response_carries_the_request_id_of_the_route_that_answered(
    http, api_key, make_provider, model_with_routes, usage_records
):
    fake = make_provider()
    model_with_routes((fake, "fake?status=500"), (fake, "fake"))

    response = post_chat(http, api_key, chat_body())

    [record] = usage_records()
    assert response.headers["x-request-id"] == record.upstream_request_id


def test_priority_decides_which_route_is_tried_first(
    http, api_key, make_provider, model_with_routes, fake_upstream
):
    fake = make_provider()
    model = model_with_routes((fake, "fake?tokens=1"), (fake, "fake?tokens=2"))
    model.routes.filter(upstream_model="fake?tokens=1").update(priority=5)
    invalidate_catalogue()  # a queryset update sends no signal

    post_chat(http, api_key, chat_body())

    assert [r["body"]["model"] for r in fake_upstream.requests] == ["fake?tokens=2"]


def test_when_every_route_fails_the_last_error_is_returned(
    http, api_key, make_provider, model_with_routes, fake_upstream
):
    fake = make_provider()
    model_with_routes((fake, "fake?status=500"), (fake, "fake?status=429&retry_after=3"))

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert len(fake_upstream.requests) == 2


def test_upstream_4xx_is_not_retried_on_the_next_route(
    http, api_key, make_provider, model_with_routes, fake_upstream
):
    fake = make_provider()
    model_with_routes((fake, "fake?status=400"), (fake, "fake"))

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 400
    assert len(fake_upstream.requests) == 1


@pytest.mark.parametrize("fault", ["cut_after=2", "error_after=2", "invalid_json=1"])
def test_mid_stream_failure_is_never_retried_on_the_next_route(
    http, api_key, make_provider, model_with_routes, fake_upstream, fault
):
    fake = make_provider()
    model_with_routes((fake, f"fake?tokens=5&{fault}"), (fake, "fake"))

    response = post_chat(http, api_key, chat_body(stream=True))

    assert "[DONE]" not in sse_data(response.text)
    assert len(fake_upstream.requests) == 1


def test_disabled_provider_is_skipped_from_the_next_request(
    http, api_key, make_provider, model_with_routes, fake_upstream
):
    first = make_provider("first")
    second = make_provider("second")
    model_with_routes((first, "fake?tokens=1"), (second, "fake?tokens=2"))
    post_chat(http, api_key, chat_body())  # the catalogue is cached now

    first.enabled = False
    first.save()
    post_chat(http, api_key, chat_body())

    assert [r["body"]["model"] for r in fake_upstream.requests] == [
        "fake?tokens=1",
        "fake?tokens=2",
    ]
