"""GET /health: a cheap probe for load balancers."""

import pytest

from gateway.views import _HealthCache


@pytest.fixture(autouse=True)
def _checks_run_now():
    """/health reuses its result for a second; each test sees a fresh check."""
    _HealthCache.checked_at = 0.0


def test_health_reports_database_and_redis_ok(http):
    response = http.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"] == "ok"


def test_health_needs_no_key(http):
    response = http.get("/health", headers={"Authorization": "Bearer nonsense"})

    assert response.status_code == 200


def test_health_is_never_cached_by_a_proxy(http):
    response = http.get("/health")

    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")


def test_health_never_calls_an_upstream(http, make_model, fake_upstream):
    make_model()

    http.get("/health")

    assert fake_upstream.stats["hits"] == 0


def test_health_leaves_no_usage_record(http, usage_records):
    http.get("/health")

    assert usage_records() == []
