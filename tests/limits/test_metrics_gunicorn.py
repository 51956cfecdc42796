"""/metrics under gunicorn: two worker processes counting on their own, one
scrape adding them up (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import signal
from collections import Counter

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import wait_for
from tests.limits.support import chat, fire, gunicorn_in


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("metrics")
    # A file of an earlier run: gunicorn.conf.py starts the directory afresh.
    (directory / "counter_1.db").write_bytes(b"not a metrics file")
    return directory


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, tmp_path_factory, metrics_dir):
    env = {"PUREBRIDGE_METRICS": "true", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with gunicorn_in(tmp_path_factory, "gunicorn-metrics", env=env) as server:
        yield server


def chat_requests(url: str) -> dict[str, float]:
    """status -> requests to /v1/chat/completions, as one scrape of `url` counts them."""
    response = httpx2.get(f"{url}/metrics", timeout=10, headers={"Connection": "close"})
    assert response.status_code == 200
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "purebridge_requests_total" and sample.labels["route"] == (
                "chat.completions"
            ):
                status = sample.labels["status"]
                counts[status] = counts.get(status, 0) + sample.value
    return counts


def test_counts_match_the_requests_sent_across_two_workers(gunicorn, metrics_dir, make_key, models):
    assert not (metrics_dir / "counter_1.db").exists()
    _, secret = make_key(rpm_limit=30)

    responses = fire(gunicorn.url, secret, [chat("flat")] * 40, concurrency=8)
    sent = Counter(str(r.status_code) for r in responses)
    assert sent == {"200": 30, "429": 10}
    workers = gunicorn.worker_pids()
    assert len(workers) == 2

    def counted_by() -> set[int]:
        return {pid for pid in workers if (metrics_dir / f"counter_{pid}.db").exists()}

    # The kernel may hand one worker every connection of a burst: more
    # (refused, the minute's 30 spent) until both have served some.
    for _ in range(20):
        if counted_by() == set(workers):
            break
        more = fire(gunicorn.url, secret, [chat("flat")] * 16, concurrency=16)
        sent.update(str(r.status_code) for r in more)
    assert counted_by() == set(workers), "both workers served some of the requests"

    assert wait_for(lambda: chat_requests(gunicorn.url) == sent, timeout=10)
    # Whichever worker answers the scrape, it adds up both.
    for _ in range(6):
        assert chat_requests(gunicorn.url) == sent

    # A worker that dies keeps its counts; its live gauges go (child_exit).
    os.kill(workers[0], signal.SIGKILL)
    assert wait_for(lambda: len(set(gunicorn.worker_pids()) - {workers[0]}) == 2, timeout=30)
    assert wait_for(
        lambda: not (metrics_dir / f"gauge_livesum_{workers[0]}.db").exists(), timeout=10
    )
    assert chat_requests(gunicorn.url) == sent
