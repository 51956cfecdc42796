"""GET /metrics on the live server (one process: prometheus_client's own
registry; across gunicorn workers: tests/limits/test_metrics_gunicorn.py)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import chat_body, post_chat

on = override_settings(PUREBRIDGE_METRICS=True)


def scrape(http, headers: dict | None = None) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def grew(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


CHAT = "chat.completions"


def test_metrics_are_off_by_default_and_the_page_is_a_404(http):
    assert http.get("/metrics").status_code == 404


@on
def test_requests_are_counted_by_route_model_provider_and_status(
    http, make_model, api_key, usage_records
):
    make_model()
    before = scrape(http)

    for _ in range(3):
        assert post_chat(http, api_key, chat_body()).status_code == 200
    assert post_chat(http, api_key, chat_body("no-such-model")).status_code == 404
    assert post_chat(http, "sk-pb-" + "x" * 48, chat_body()).status_code == 401
    usage_records()  # every request settled
    after = scrape(http)

    ok = {"route": CHAT, "model": "test-model", "provider": "fake", "status": "200"}
    assert grew(before, after, "purebridge_requests_total", **ok) == 3
    unknown = {"route": CHAT, "model": "", "provider": "", "status": "404"}
    assert grew(before, after, "purebridge_requests_total", **unknown) == 1
    refused = {"route": CHAT, "model": "", "provider": "", "status": "401"}
    assert grew(before, after, "purebridge_requests_total", **refused) == 1
    assert grew(before, after, "purebridge_request_duration_seconds_count", route=CHAT) == 5
    # Only the requests that reached an upstream have a time PureBridge added to it.
    assert grew(before, after, "purebridge_gateway_added_seconds_count", route=CHAT) == 3
    assert (
        grew(before, after, "purebridge_upstream_attempts_total", provider="fake", status="200")
        == 3
    )
    assert grew(before, after, "purebridge_admissions_total", outcome="ok") == 3


@on
def test_a_stream_has_its_time_to_first_token(http, make_model, api_key, usage_records):
    make_model()
    before = scrape(http)

    response = post_chat(http, api_key, chat_body(stream=True))
    assert response.status_code == 200
    usage_records()
    after = scrape(http)

    assert grew(before, after, "purebridge_time_to_first_token_seconds_count", route=CHAT) == 1
    assert grew(before, after, "purebridge_time_to_first_token_seconds_sum", route=CHAT) > 0


@on
def test_a_failover_counts_both_attempts_and_one_failover(http, make_model, api_key, usage_records):
    make_model("test-model", "fake?status=503", "fake")
    before = scrape(http)

    assert post_chat(http, api_key, chat_body()).status_code == 200
    usage_records()
    after = scrape(http)

    assert (
        grew(before, after, "purebridge_upstream_attempts_total", provider="fake", status="503")
        == 1
    )
    assert (
        grew(before, after, "purebridge_upstream_attempts_total", provider="fake", status="200")
        == 1
    )
    assert grew(before, after, "purebridge_upstream_failovers_total", provider="fake") == 1


@on
def test_admission_refusals_are_counted_by_what_refused(http, make_model, make_key, usage_records):
    make_model()
    _, secret = make_key(rpm_limit=1)
    before = scrape(http)

    assert post_chat(http, secret, chat_body()).status_code == 200
    assert post_chat(http, secret, chat_body()).status_code == 429
    usage_records()
    after = scrape(http)

    assert grew(before, after, "purebridge_admissions_total", outcome="ok") == 1
    assert grew(before, after, "purebridge_admissions_total", outcome="rpm") == 1


@on
def test_reachability_of_the_database_and_redis_is_reported(http, settings):
    samples = scrape(http)

    assert value(samples, "purebridge_dependency_up", dependency="database") == 1
    if settings.REDIS_URL:
        assert value(samples, "purebridge_dependency_up", dependency="redis") == 1
    assert ("purebridge_usage_queue_depth", ()) in samples


@on
@override_settings(PUREBRIDGE_METRICS_TOKEN="scrape-s3cret")
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "scrape-s3cret", "Basic x"])
def test_a_token_is_required_when_one_is_set(http, authorization):
    headers = {"Authorization": authorization} if authorization else None

    response = http.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_metrics_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


@on
@override_settings(PUREBRIDGE_METRICS_TOKEN="scrape-s3cret")
def test_the_right_token_gets_the_metrics(http):
    samples = scrape(http, {"Authorization": "Bearer scrape-s3cret"})

    assert value(samples, "purebridge_dependency_up", dependency="database") == 1
