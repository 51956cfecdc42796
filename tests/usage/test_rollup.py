"""Folding usage records into hourly aggregates, directly and through a real Celery worker."""

import os
import signal
import subprocess
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from unittest.mock import patch

import pytest
from django.db import connection, transaction

from tests.helpers import celery_worker_command, database_url_for_tests, usage_entry, wait_for
from tests.workers import Workers, waiting_on_a_lock
from usage import recorder
from usage.models import UsageHourly, UsageRecord
from usage.services import usage_rollup

HOUR = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


def hourly() -> dict:
    """Every aggregate row, by (hour, account, key, model)."""
    return {
        (row.hour, row.account_id, row.api_key_id, row.model): (
            row.requests,
            row.errors,
            row.prompt_tokens,
            row.cached_tokens,
            row.completion_tokens,
            row.reasoning_tokens,
            row.cost_usd,
        )
        for row in UsageHourly.objects.all()
    }


@pytest.fixture
def mixed_usage(make_key, record) -> dict:
    """Records over two hours, two keys and two models; returns the expected aggregates."""
    key_a, _ = make_key(name="a")
    key_b, _ = make_key(name="b")
    rows = [
        (key_a, HOUR + timedelta(minutes=1), "m1", 200, 100, 40, 10, 2, "0.000123456789"),
        (key_a, HOUR + timedelta(minutes=59), "m1", 200, 7, 0, 3, 0, "0.000000000001"),
        (key_a, HOUR + timedelta(minutes=30), "m2", 502, 11, 0, 0, 0, "0"),
        (key_b, HOUR + timedelta(minutes=5), "m1", 200, 1000, 900, 50, 25, "0.003333333333"),
        (key_a, HOUR + timedelta(hours=1), "m1", 499, 20, 0, 5, 1, "0.000045000000"),
        (key_a, HOUR + timedelta(hours=1, minutes=59), "m1", 200, 30, 10, 6, 0, "0.1"),
    ]
    expected: dict = defaultdict(lambda: [0, 0, 0, 0, 0, 0, Decimal(0)])
    for key, at, model, status, prompt, cached, completion, reasoning, cost in rows:
        record(
            key,
            at=at,
            model=model,
            status=status,
            prompt_tokens=prompt,
            cached_tokens=cached,
            completion_tokens=completion,
            reasoning_tokens=reasoning,
            cost_usd=Decimal(cost),
        )
        hour = at.replace(minute=0, second=0, microsecond=0)
        total = expected[(hour, key.account_id, key.id, model)]
        for i, value in enumerate((1, int(status >= 400), prompt, cached, completion, reasoning)):
            total[i] += value
        total[6] += Decimal(cost)
    return {k: tuple(v) for k, v in expected.items()}


def test_rollup_sums_tokens_and_cost_exactly_per_hour_key_and_model(mixed_usage):
    usage_rollup()

    assert hourly() == mixed_usage


def test_rollup_counts_requests_and_errors(mixed_usage):
    usage_rollup()

    row = UsageHourly.objects.get(hour=HOUR + timedelta(hours=1))
    assert (row.requests, row.errors) == (2, 1)


def test_rollup_keeps_every_digit_of_the_cost(mixed_usage):
    usage_rollup()

    row = UsageHourly.objects.get(hour=HOUR, model="m1", prompt_tokens=107)
    assert row.cost_usd == Decimal("0.000123456790")


def test_rollup_twice_gives_the_same_rows(mixed_usage):
    usage_rollup()
    first = hourly()
    ids = set(UsageHourly.objects.values_list("id", flat=True))

    written = usage_rollup(since=HOUR - timedelta(days=1))

    assert written == len(mixed_usage)
    assert hourly() == first
    assert UsageHourly.objects.count() == len(ids)


def test_rollup_leaves_out_requests_refused_before_a_key_was_known(make_key, record):
    key, _ = make_key()
    record(key, at=HOUR, prompt_tokens=5, cost_usd=Decimal("0.5"))
    record(None, at=HOUR, status=401)

    usage_rollup()

    [row] = UsageHourly.objects.all()
    assert (row.requests, row.errors, row.cost_usd) == (1, 0, Decimal("0.5"))


def test_rollup_folds_in_records_written_after_its_last_run(make_key, record):
    key, _ = make_key()
    record(key, at=HOUR + timedelta(minutes=10), prompt_tokens=5, cost_usd=Decimal("0.25"))
    usage_rollup()

    record(key, at=HOUR + timedelta(minutes=20), prompt_tokens=6, cost_usd=Decimal("0.5"))
    usage_rollup()

    [row] = UsageHourly.objects.all()
    assert (row.requests, row.prompt_tokens, row.cost_usd) == (2, 11, Decimal("0.75"))


def test_rollup_keeps_the_spend_of_a_key_deleted_later_in_the_hour(make_key, record):
    kept, _ = make_key(name="kept")
    deleted, _ = make_key(name="deleted")
    record(deleted, at=HOUR + timedelta(minutes=1), cost_usd=Decimal("0.75"))
    usage_rollup()

    deleted.delete()
    record(kept, at=HOUR + timedelta(minutes=2), cost_usd=Decimal("0.25"))
    usage_rollup()

    account_total = sum(
        UsageHourly.objects.filter(hour=HOUR, account_id=kept.account_id).values_list(
            "cost_usd", flat=True
        ),
        Decimal(0),
    )
    assert account_total == Decimal("1.00")


def test_two_overlapping_rollups_of_the_same_hour_both_succeed(make_key, record):
    """Two workers may run the task at once (a slow run overlapping the next)."""
    key, _ = make_key()
    record(key, at=HOUR + timedelta(minutes=1), prompt_tokens=5, cost_usd=Decimal("0.5"))
    first_wrote, release_first = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def run(hold: bool) -> None:
        try:
            with transaction.atomic():
                usage_rollup(since=HOUR - timedelta(days=1))
                if hold:  # still uncommitted when the second run starts
                    first_wrote.set()
                    release_first.wait(10)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=run, args=(True,))
    first.start()
    assert first_wrote.wait(10)
    second = threading.Thread(target=run, args=(False,))
    second.start()
    second.join(0.5)  # the second run now waits on the first's rows
    release_first.set()
    first.join(10)
    second.join(10)

    assert errors == []
    [row] = UsageHourly.objects.all()
    assert (row.requests, row.prompt_tokens, row.cost_usd) == (1, 5, Decimal("0.5"))


def raw_sums() -> dict:
    """What the aggregates should hold: the raw records summed in Python, in
    the shape of `hourly()`."""
    sums: dict = defaultdict(lambda: [0, 0, 0, 0, 0, 0, Decimal(0)])
    for r in UsageRecord.objects.filter(account__isnull=False, api_key__isnull=False):
        total = sums[
            (
                r.created_at.replace(minute=0, second=0, microsecond=0),
                r.account_id,
                r.api_key_id,
                r.model,
            )
        ]
        counts = (
            1,
            int(r.status >= 400),
            r.prompt_tokens,
            r.cached_tokens,
            r.completion_tokens,
            r.reasoning_tokens,
        )
        for i, value in enumerate(counts):
            total[i] += value
        total[6] += r.cost_usd
    return {k: tuple(v) for k, v in sums.items()}


def test_a_record_dated_in_the_future_hides_no_later_record_from_the_rollup(make_key, record):
    """A host whose clock runs a day ahead writes one record; the records
    written after it are still folded in."""
    key, _ = make_key()
    now = datetime.now(UTC)
    record(key, at=now + timedelta(days=1), prompt_tokens=1, cost_usd=Decimal("1"))
    usage_rollup()

    record(key, at=now, prompt_tokens=2, cost_usd=Decimal("0.25"))
    record(key, at=now - timedelta(hours=3), prompt_tokens=3, cost_usd=Decimal("0.5"))
    usage_rollup()

    assert hourly() == raw_sums()
    assert len(hourly()) == 3


def test_a_record_written_by_a_host_whose_clock_runs_behind_is_rolled_up(make_key, record):
    """Its writer's clock says yesterday; the rollup goes by when the database
    took the record, not by any host's clock."""
    key, _ = make_key()
    now = datetime.now(UTC)
    record(key, at=now, prompt_tokens=1, cost_usd=Decimal("1"))
    usage_rollup()

    behind = now - timedelta(days=1)
    with patch("django.utils.timezone.now", return_value=behind):
        recorder._write([usage_entry(key, "pb-behind", created_at=behind, cost_usd=Decimal("2"))])
    usage_rollup()

    assert UsageRecord.objects.get(request_id="pb-behind").recorded_at > now
    assert hourly() == raw_sums()
    assert len(hourly()) == 2


def test_a_batch_committed_after_a_run_read_is_rolled_up_by_the_next_run(make_key, record):
    """A writer's batch that was in flight (its ids taken, not yet committed)
    while a run read the records."""
    key, _ = make_key()
    inserted, commit = threading.Event(), threading.Event()

    def late_batch() -> None:
        try:
            with transaction.atomic():
                record(key, at=datetime.now(UTC), prompt_tokens=5, cost_usd=Decimal("0.5"))
                inserted.set()
                commit.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=late_batch)
    writer.start()
    assert inserted.wait(10)
    record(key, at=datetime.now(UTC), prompt_tokens=1, cost_usd=Decimal("0.25"))
    usage_rollup()
    assert sum(row[0] for row in hourly().values()) == 1
    commit.set()
    writer.join(10)

    usage_rollup()

    assert hourly() == raw_sums()
    assert sum(row[0] for row in hourly().values()) == 2


def test_rollup_with_no_records_writes_nothing(transactional_db):
    assert usage_rollup() == 0
    assert UsageHourly.objects.count() == 0


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real `celery -A purebridge worker` on the test database and Redis."""
    log = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": database_url_for_tests()}
    command = celery_worker_command(f"test-{os.getpid()}")
    with log.open("wb") as out:
        worker = subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)


def test_rollup_task_runs_on_a_real_celery_worker(mixed_usage, celery_worker):
    from usage.tasks import rollup_usage

    rollup_usage.delay()

    done = wait_for(lambda: UsageHourly.objects.count() == len(mixed_usage), timeout=30)
    assert done, celery_worker.read_text()[-3000:]
    assert hourly() == mixed_usage


@pytest.fixture
def broker_workers(transactional_db, tmp_path, broker):
    """Workers on a broker of the module's own: a killed worker's task is
    never left in the shared one."""
    running = Workers(tmp_path, broker_url=broker.url)
    yield running
    running.stop()


@contextmanager
def holding_aggregate(hour: datetime, key, model: str):
    """An uncommitted aggregate row of this hour, key and model, in a
    transaction of another session: a rollup that reaches that group waits on
    it (the unique constraint) until the transaction rolls back, at exit."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                UsageHourly.objects.create(
                    hour=hour, account_id=key.account_id, api_key_id=key.id, model=model
                )
                holding.set()
                release.wait(60)
                transaction.set_rollback(True)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(30)


@pytest.mark.parametrize("killed", ["pool process", "worker"])
def test_a_rollup_whose_worker_is_killed_midway_is_run_again(
    make_key, record, broker_workers, killed
):
    """Three hours of records; the run has folded the first (not committed)
    and waits on the second when its worker dies. The task goes back to the
    queue (at once when a pool process dies and its parent lives on; after the
    visibility timeout when the whole worker dies, to the next worker) and the
    aggregates end equal to the raw sums."""
    key, _ = make_key()
    for hours, cost in ((0, "0.25"), (1, "0.5"), (2, "0.125")):
        record(key, at=HOUR + timedelta(hours=hours, minutes=5), cost_usd=Decimal(cost))
    workers = broker_workers.start(pool="prefork" if killed == "pool process" else "solo")

    with holding_aggregate(HOUR + timedelta(hours=1), key, "m"):
        workers.send("usage.tasks.rollup_usage")
        assert wait_for(lambda: waiting_on_a_lock() == 1, timeout=30), workers.tail()
        if killed == "pool process":
            workers.kill_pool_process()
        else:
            workers.kill()
            # The next worker gives back, as it starts, what was taken over a
            # second (its visibility timeout) before.
            time.sleep(1.5)
            workers.start(env={"CELERY_VISIBILITY_TIMEOUT": "1"})

    assert wait_for(lambda: len(hourly()) == 3 and hourly() == raw_sums(), timeout=30), (
        workers.tail()
    )
