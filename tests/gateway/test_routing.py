"""Route order, weights, cooldown of failing routes and the attempts record."""

import time
from collections import Counter

import pytest

from gateway.catalogue import ProviderConfig, RouteConfig
from gateway.cooldown import cooldowns
from gateway.routing import route_order
from tests.helpers import chat_body, post_chat, wait_for


def _route(route_id: int, priority: int = 0, weight: int = 1) -> RouteConfig:
    provider = ProviderConfig(route_id, f"p{route_id}", "openai", "http://x", "", 1, 1, 1, 1)
    return RouteConfig(route_id, provider, "m", priority, weight, adapter=None)  # type: ignore[arg-type]


def test_lower_priority_numbers_are_tried_first():
    routes = (_route(1, priority=2), _route(2, priority=0), _route(3, priority=1))

    assert [r.id for r in route_order(routes)] == [2, 3, 1]


def test_weights_share_traffic_within_a_priority():
    routes = (_route(1, weight=3), _route(2, weight=1))

    firsts = Counter(route_order(routes)[0].id for _ in range(4000))

    assert 0.70 < firsts[1] / 4000 < 0.80


def test_a_cooling_route_goes_last_but_is_still_tried():
    routes = (_route(1), _route(2, priority=1))
    cooldowns.apply(1, 30)

    assert [r.id for r in route_order(routes)] == [2, 1]


def upstream_models(fake_upstream) -> list[str]:
    return [r["body"]["model"] for r in fake_upstream.requests]


def test_a_route_that_keeps_failing_is_cooled_down_and_comes_back(
    http, api_key, make_model, fake_upstream, monkeypatch
):
    monkeypatch.setattr("gateway.cooldown.COOL_SECONDS", 1.0)
    make_model("test-model", "fake?status=500", "fake")
    for _ in range(3):
        assert post_chat(http, api_key, chat_body()).status_code == 200
    fake_upstream.reset_state()

    assert post_chat(http, api_key, chat_body()).status_code == 200
    assert upstream_models(fake_upstream) == ["fake"]

    time.sleep(1.1)
    fake_upstream.reset_state()
    assert post_chat(http, api_key, chat_body()).status_code == 200
    assert upstream_models(fake_upstream) == ["fake?status=500", "fake"]


def test_an_upstream_retry_after_cools_the_route_that_long(
    http, api_key, make_model, fake_upstream
):
    make_model("test-model", "fake?status=429&retry_after=30", "fake")
    assert post_chat(http, api_key, chat_body()).status_code == 200
    fake_upstream.reset_state()

    post_chat(http, api_key, chat_body())

    assert upstream_models(fake_upstream) == ["fake"]


def test_the_cooldown_is_shared_through_redis(http, api_key, make_model, fake_upstream, settings):
    from gateway.models import Route

    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    from purebridge.redis import sync_client

    make_model("test-model", "fake?status=429&retry_after=30", "fake")
    post_chat(http, api_key, chat_body())
    route = Route.objects.get(upstream_model="fake?status=429&retry_after=30")

    ttl = sync_client().pttl(f"pb:route:{route.id}:cool")

    assert 25_000 < ttl <= 30_000


def test_every_attempt_is_on_the_usage_record(
    http, api_key, make_model, make_provider, dead_base_url, usage_records, settings
):
    from django.db.models import F

    from gateway.models import Route

    settings.PUREBRIDGE_MAX_ATTEMPTS = 4
    model = make_model("test-model", "fake?status=503", "fake?status=429", "fake")
    # An unreachable route first, then the upstreams that answer.
    Route.objects.filter(model=model).update(priority=F("priority") + 1)
    dead = make_provider("dead", base_url=dead_base_url)
    Route.objects.create(model=model, provider=dead, upstream_model="unreachable", priority=0)

    post_chat(http, api_key, chat_body())

    [record] = usage_records()
    # The upstream's own status when it answered; PureBridge's when it did not.
    assert [(a["upstream_model"], a["status"], a["error"]) for a in record.attempts] == [
        ("unreachable", 502, "upstream_error"),
        ("fake?status=503", 503, "upstream_error"),
        ("fake?status=429", 429, "rate_limit_exceeded"),
        ("fake", 200, ""),
    ]
    assert record.upstream_model == "fake"


def test_attempts_are_bounded(http, api_key, make_model, fake_upstream, settings):
    settings.PUREBRIDGE_MAX_ATTEMPTS = 2
    make_model("test-model", "fake?status=500", "fake?status=502", "fake")

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 502
    assert len(fake_upstream.requests) == 2


def test_a_stream_that_fails_after_its_first_byte_is_never_retried(
    http, api_key, make_model, fake_upstream
):
    make_model("test-model", "fake?tokens=5&cut_after=2", "fake")

    response = post_chat(http, api_key, chat_body(stream=True))

    assert '"error"' in response.text
    assert wait_for(lambda: len(fake_upstream.requests) == 1)
    assert upstream_models(fake_upstream) == ["fake?tokens=5&cut_after=2"]
