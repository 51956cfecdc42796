"""Refusals of no key at all (none, malformed, made up) past the first few of
each client in a minute are counted, not each recorded; a real key's are
always recorded (gateway/refusals.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway import refusals
from tests.helpers import chat_body, made_up_key, post_chat
from usage.models import RefusedTally

AT = datetime(2026, 12, 4, 10, 30, 5, tzinfo=UTC)


def decide(tally: refusals.Refusals, clients: list[str], at: datetime = AT) -> list[bool]:
    async def run() -> list[bool]:
        return [tally.record_in_full(client, at) for client in clients]

    return asyncio.run(run())


def test_the_first_refusals_of_each_client_in_a_minute_are_recorded_the_rest_counted():
    tally = refusals.Refusals()
    first = refusals.RECORDED_PER_CLIENT

    decisions = decide(tally, ["10.0.0.1"] * (first + 5) + ["10.0.0.2"] * 3)

    assert decisions == [True] * first + [False] * 5 + [True] * 3
    assert tally._counts == {(int(AT.timestamp() // 60), "10.0.0.1"): 5}


def test_a_new_minute_records_a_clients_first_refusals_again():
    tally = refusals.Refusals()
    decide(tally, ["10.0.0.1"] * (refusals.RECORDED_PER_CLIENT + 1))

    assert decide(tally, ["10.0.0.1"], AT + timedelta(minutes=1)) == [True]


def test_no_more_than_a_hundred_refusals_a_minute_are_recorded_in_full():
    tally = refusals.Refusals()
    clients = [f"10.0.{n // 256}.{n % 256}" for n in range(150)]

    decisions = decide(tally, clients)

    assert decisions.count(True) == refusals.RECORDED_PER_MINUTE == 100


def test_clients_past_the_most_told_apart_are_counted_together(monkeypatch):
    monkeypatch.setattr(refusals, "MAX_CLIENTS", 2)
    tally = refusals.Refusals()

    decisions = decide(tally, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])

    assert decisions == [True, True, False, False]
    assert tally._counts == {(int(AT.timestamp() // 60), "*"): 2}


def test_counts_of_every_worker_add_up_in_one_row_per_minute_and_client(transactional_db):
    workers = [refusals.Refusals(), refusals.Refusals()]
    over = refusals.RECORDED_PER_CLIENT
    for worker in workers:
        decide(worker, ["10.0.0.1"] * (over + 7) + ["10.0.0.2"] * (over + 1))

    for worker in workers:
        worker.write_all()

    rows = {(r.minute, r.client): r.refused for r in RefusedTally.objects.all()}
    minute = AT.replace(second=0)
    assert rows == {(minute, "10.0.0.1"): 14, (minute, "10.0.0.2"): 2}


def test_counts_of_a_minute_that_is_over_are_written_by_the_worker(transactional_db):
    tally = refusals.Refusals()

    async def run() -> None:
        decide_now = [tally.record_in_full("10.0.0.1", AT) for _ in range(14)]
        assert decide_now.count(False) == 14 - refusals.RECORDED_PER_CLIENT
        tally._write_closed()  # what the worker's timer does once the minute is over
        await asyncio.gather(*tally._writing)

    asyncio.run(run())

    assert RefusedTally.objects.get().refused == 14 - refusals.RECORDED_PER_CLIENT
    assert tally._counts == {}


def test_counts_the_database_refused_wait_folded_into_one_per_minute():
    tally = refusals.Refusals()
    minute = int(AT.timestamp() // 60)

    tally._put_back({(minute, "10.0.0.1"): 3, (minute, "10.0.0.2"): 4})

    assert tally._counts == {(minute, "*"): 7}


def at_least_seconds_left_in_the_minute(seconds: float) -> None:
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.1)


def test_refusals_of_made_up_keys_past_the_first_are_counted_not_recorded(
    http, make_model, usage_records, settings
):
    settings.PUREBRIDGE_REFUSAL_PAUSE_SECONDS = 0
    make_model()
    first = refusals.RECORDED_PER_CLIENT
    at_least_seconds_left_in_the_minute(10)

    responses = [post_chat(http, made_up_key(), chat_body()) for _ in range(first + 25)]

    assert {r.status_code for r in responses} == {401}
    records = usage_records()
    assert [r.request_id for r in records] == [
        r.headers["x-purebridge-request-id"] for r in responses[:first]
    ]
    refusals.refusals.write_all()
    [tally] = RefusedTally.objects.all()
    assert (tally.client, tally.refused) == ("127.0.0.1", 25)


def timed(http, key: str | None) -> float:
    started = time.monotonic()
    assert post_chat(http, key, chat_body()).status_code == 401
    return time.monotonic() - started


def test_counted_refusals_are_answered_after_the_pause_the_first_ones_at_once(
    http, make_model, settings
):
    settings.PUREBRIDGE_REFUSAL_PAUSE_SECONDS = 1.0
    make_model()
    at_least_seconds_left_in_the_minute(20)

    first = [timed(http, made_up_key()) for _ in range(refusals.RECORDED_PER_CLIENT)]
    then = [timed(http, made_up_key()) for _ in range(2)]

    assert max(first) < 1.0
    assert min(then) >= 1.0


@pytest.mark.parametrize("why", ["disabled", "wrong secret"])
def test_refusals_of_a_real_key_are_never_paused(http, make_key, make_model, settings, why):
    settings.PUREBRIDGE_REFUSAL_PAUSE_SECONDS = 1.0
    make_model()
    key, secret = make_key()
    if why == "disabled":
        key.is_active = False
        key.save()
    else:
        secret = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")

    assert max(timed(http, secret) for _ in range(refusals.RECORDED_PER_CLIENT + 3)) < 1.0


def test_no_more_than_max_paused_refusals_wait_at_once(monkeypatch, settings):
    settings.PUREBRIDGE_REFUSAL_PAUSE_SECONDS = 0.5
    monkeypatch.setattr(refusals, "MAX_PAUSED", 3)
    tally = refusals.Refusals()

    async def run() -> list[float]:
        async def one() -> float:
            started = time.monotonic()
            await tally.pause()
            return time.monotonic() - started

        return await asyncio.gather(*(one() for _ in range(5)))

    waits = sorted(asyncio.run(run()))

    assert waits[:2] == pytest.approx([0, 0], abs=0.1)
    assert min(waits[2:]) >= 0.5


def test_a_pause_of_zero_answers_at_once(settings):
    settings.PUREBRIDGE_REFUSAL_PAUSE_SECONDS = 0
    started = time.monotonic()

    asyncio.run(refusals.Refusals().pause())

    assert time.monotonic() - started < 0.1


@pytest.mark.parametrize("why", ["disabled", "expired", "wrong secret"])
def test_refusals_of_a_real_key_are_each_recorded(http, make_key, make_model, usage_records, why):
    make_model()
    key, secret = make_key()
    if why == "disabled":
        key.is_active = False
    elif why == "expired":
        key.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    else:
        secret = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    key.save()
    count = refusals.RECORDED_PER_CLIENT + 5

    statuses = {post_chat(http, secret, chat_body()).status_code for _ in range(count)}

    assert statuses == {401}
    assert [r.status for r in usage_records()] == [401] * count
    assert not RefusedTally.objects.exists()


def test_refusals_without_any_key_are_counted_like_made_up_ones(
    http, make_model, usage_records, settings
):
    settings.PUREBRIDGE_REFUSAL_PAUSE_SECONDS = 0
    make_model()
    at_least_seconds_left_in_the_minute(10)
    count = refusals.RECORDED_PER_CLIENT + 3

    for _ in range(count):
        assert post_chat(http, None, chat_body()).status_code == 401

    assert len(usage_records()) == refusals.RECORDED_PER_CLIENT
    refusals.refusals.write_all()
    assert RefusedTally.objects.get().refused == 3
