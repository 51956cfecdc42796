"""Budget alert emails: one per threshold and window, however many checks run,
in this process or on real Celery workers."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx2
import pytest
from django.conf import settings
from django.db import connection

from tests.helpers import post_chat, wait_for
from tests.limits.support import (
    INPUT,
    PROMPT,
    chat,
    gunicorn_in,
    records_of,
    spend_counter,
)
from tests.workers import GATED_BACKEND, Workers
from usage import alerts
from usage.models import BudgetAlert, UsageRecord, Watermark
from usage.services import budget_alerts_send, budget_alerts_sweep
from usage.tasks import check_budget_alerts

RECIPIENT = "alerts@example.com"
_ids = itertools.count(1)


@pytest.fixture
def workers(transactional_db, tmp_path):
    running = Workers(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def gated_workers(transactional_db, tmp_path, broker):
    """Workers on the module's Redis whose sends wait for a gate (tests.gated_mail)."""
    running = Workers(tmp_path, broker_url=broker.url, mail_backend=GATED_BACKEND)
    yield running
    running.stop()


def spend(key, usd: str) -> None:
    """A request the key made today, as the usage writer records it."""
    UsageRecord.objects.create(
        created_at=datetime.now(UTC),
        request_id=f"pb-alerts-{os.getpid()}-{next(_ids)}",
        endpoint="chat.completions",
        status=200,
        account_id=key.account_id,
        api_key=key,
        model="flat",
        cost_usd=Decimal(usd),
    )


def claimed(key) -> set[tuple[str, int]]:
    return set(BudgetAlert.objects.filter(api_key=key).values_list("window", "threshold"))


def test_crossing_80_percent_through_the_gateway_mails_once_however_often_checked(
    live, http, make_key, make_model, workers
):
    """One answer costs $0.808 of a $1.00 daily budget: it crosses 50% and 80%
    at once, and the owner gets one email, about 80%. The usage writer asks a
    real worker to check; two more checks of the same crossing send nothing."""
    workers.start(1)
    make_model("pricey", f"fake?prompt={PROMPT}&tokens=8", input=INPUT, output="100000")
    key, secret = make_key(daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT)

    assert post_chat(http, secret, chat("pricey", max_tokens=9)).status_code == 200

    assert wait_for(lambda: len(workers.emails()) == 1, timeout=30), workers.tail()
    again = [check_budget_alerts.delay(key.id).id for _ in range(2)]
    assert set(workers.wait(again).values()) == {"0"}
    [message] = workers.emails()
    assert message["To"] == RECIPIENT
    assert "80%" in message["Subject"]
    assert claimed(key) == {("daily", 50), ("daily", 80)}


def test_two_workers_checking_one_crossing_at_once_mail_once(make_key, workers):
    workers.start(2)
    key, _ = make_key(daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT)
    spend(key, "0.85")

    tasks = [check_budget_alerts.delay(key.id).id for _ in range(6)]

    results = workers.wait(tasks)
    assert sorted(results.values()) == ["0"] * 5 + ["1"]
    assert len(workers.emails()) == 1
    assert claimed(key) == {("daily", 50), ("daily", 80)}


def test_two_concurrent_checks_in_one_process_mail_once(make_key, mailoutbox):
    key, _ = make_key(daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT)
    spend(key, "0.85")
    start = threading.Barrier(2)
    sent: list[int] = []

    def check() -> None:
        try:
            start.wait(5)
            sent.append(budget_alerts_send(key_id=key.id))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    assert sorted(sent) == [0, 1]
    assert len(mailoutbox) == 1


def test_the_same_crossing_checked_twice_mails_once(make_key, mailoutbox):
    key, _ = make_key(daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT)
    spend(key, "0.85")

    assert budget_alerts_send(key_id=key.id) == 1
    assert budget_alerts_send(key_id=key.id) == 0
    assert len(mailoutbox) == 1


def test_the_next_threshold_gets_its_own_email(make_key, mailoutbox):
    key, _ = make_key(daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT)
    spend(key, "0.60")
    budget_alerts_send(key_id=key.id)
    spend(key, "0.25")

    assert budget_alerts_send(key_id=key.id) == 1
    assert ["50%" in m.subject for m in mailoutbox] == [True, False]
    assert "80%" in mailoutbox[1].subject


def test_the_alert_names_the_key_window_spend_and_limit_and_links_to_the_key(make_key, mailoutbox):
    key, secret = make_key(
        name="nightly agent", daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT
    )
    spend(key, "0.85")

    budget_alerts_send(key_id=key.id)

    [message] = mailoutbox
    html = message.alternatives[0][0]
    assert message.to == [RECIPIENT]
    assert message.subject == '[PureBridge] Key "nightly agent" has used 80% of its daily budget'
    today = datetime.now(UTC).date().isoformat()
    link = f"{settings.PUREBRIDGE_CONSOLE_URL}/keys/{key.id}/"
    for body in (message.body, html):
        assert "nightly agent" in body
        assert key.display_prefix in body
        assert "daily budget" in body
        assert f"$0.85</strong> of $1.00 ({today})" in body or f"$0.85 of $1.00 ({today})" in body
        assert link in body
    secret_part = secret[len(key.display_prefix) :]
    for text in (message.subject, message.body, html):
        assert secret not in text
        assert secret_part not in text


def test_the_alert_goes_to_the_account_or_its_owner_without_a_key_email(
    account, make_key, mailoutbox
):
    key, _ = make_key(daily_budget_usd=Decimal("1.00"))
    spend(key, "0.85")
    budget_alerts_send(key_id=key.id)
    account.notification_email = "team@example.com"
    account.save()
    other, _ = make_key(name="other", daily_budget_usd=Decimal("1.00"))
    spend(other, "0.85")
    budget_alerts_send(key_id=other.id)

    assert [m.to for m in mailoutbox] == [["owner@example.com"], ["team@example.com"]]


def test_a_key_named_with_a_line_break_still_gets_its_alert_with_no_header_added(
    make_key, mailoutbox
):
    """A key made before names were checked (createapikey took any name): its
    alert goes out with the name on one line, to the owner alone."""
    key, _ = make_key(
        name="x\r\nBcc: a@evil.example",
        daily_budget_usd=Decimal("1.00"),
        notification_email=RECIPIENT,
    )
    spend(key, "0.85")

    assert budget_alerts_send(key_id=key.id) == 1

    [message] = mailoutbox
    assert message.recipients() == [RECIPIENT]
    assert message.subject == (
        '[PureBridge] Key "x Bcc: a@evil.example" has used 80% of its daily budget'
    )
    sent = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    assert "bcc" not in {name.lower() for name in sent}
    assert sent.get_all("To") == [RECIPIENT]
    assert sent["Subject"] == message.subject
    assert 'Your API key "x Bcc: a@evil.example"' in message.body


def test_the_subject_and_text_keep_the_key_name_as_typed_and_the_html_escapes_it(
    make_key, mailoutbox
):
    name = 'R&D "nightly" <agent>'
    key, _ = make_key(name=name, daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT)
    spend(key, "0.85")

    budget_alerts_send(key_id=key.id)

    [message] = mailoutbox
    assert message.subject == f'[PureBridge] Key "{name}" has used 80% of its daily budget'
    assert f'Your API key "{name}"' in message.body
    assert "R&amp;D &quot;nightly&quot; &lt;agent&gt;" in message.alternatives[0][0]


@pytest.mark.parametrize("killed", ["pool process", "worker"])
def test_an_alert_whose_worker_is_killed_mid_send_is_sent_once(make_key, gated_workers, killed):
    """The worker dies while the email is being sent: its claim rolls back, the
    task goes back to the queue (at once when a pool process dies and its
    parent lives on; after the visibility timeout when the whole worker dies,
    to the next worker) and the email goes out once."""
    workers = gated_workers
    workers.start(pool="prefork" if killed == "pool process" else "solo")
    key, _ = make_key(daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT)
    spend(key, "0.85")

    workers.send("usage.tasks.check_budget_alerts", key.id)
    assert wait_for(lambda: workers.sends_begun() == 1, timeout=30), workers.tail()
    if killed == "pool process":
        workers.kill_pool_process()
    else:
        workers.kill()
        # The next worker gives back, as it starts, what was taken over a
        # second (its visibility timeout) before.
        time.sleep(1.5)
        workers.start(env={"CELERY_VISIBILITY_TIMEOUT": "1"})
    workers.open_gate()

    assert wait_for(lambda: len(workers.emails()) == 1, timeout=30), workers.tail()
    again = workers.send("usage.tasks.check_budget_alerts", key.id)
    assert workers.wait([again]) == {again: "0"}
    assert len(workers.emails()) == 1
    assert workers.sends_begun() == 2
    assert claimed(key) == {("daily", 50), ("daily", 80)}


def test_a_crossing_recorded_while_the_broker_is_down_is_mailed_once_it_is_back(
    make_model, make_key, broker, tmp_path, tmp_path_factory
):
    """Redis (the broker, and the budget counters) goes down while a request is
    in flight: the request's record is written, its budget check cannot be
    queued. Once Redis is back, beat's budget alert sweep finds the crossing
    and the owner gets one email."""
    make_model(
        "pricey-slow", f"fake?prompt={PROMPT}&tokens=8&first_ms=1500", input=INPUT, output="100000"
    )
    key, secret = make_key(daily_budget_usd=Decimal("1.00"), notification_email=RECIPIENT)
    with gunicorn_in(tmp_path_factory, "gunicorn-broker-down", broker.url) as web:
        answers = []

        def ask() -> None:
            with httpx2.Client(base_url=web.url, timeout=30) as http:
                answers.append(post_chat(http, secret, chat("pricey-slow", max_tokens=9)))

        asking = threading.Thread(target=ask)
        asking.start()
        # Admitted: its reservation is in the budget counter.
        assert wait_for(lambda: spend_counter(broker.client(), key, "d"), timeout=10)
        broker.kill()
        asking.join(30)
        assert [answer.status_code for answer in answers] == [200]
        assert wait_for(lambda: len(records_of(key)) == 1, timeout=20)
        assert wait_for(lambda: "could not queue" in web.tail(50_000), timeout=20), web.tail()

    broker.start()
    workers = Workers(tmp_path, broker_url=broker.url).start()
    try:
        workers.send("usage.tasks.sweep_budget_alerts")  # as beat does every minute
        assert wait_for(lambda: len(workers.emails()) == 1, timeout=30), workers.tail()
        workers.send("usage.tasks.sweep_budget_alerts")
        last = workers.send("usage.tasks.check_budget_alerts", key.id)
        assert workers.wait([last]) == {last: "0"}
    finally:
        workers.stop()
    [message] = workers.emails()
    assert "80%" in message["Subject"]
    assert claimed(key) == {("daily", 50), ("daily", 80)}


def test_a_check_that_could_not_be_queued_is_queued_when_the_broker_is_back(monkeypatch):
    """With no further spend: the usage writer's asker keeps trying."""
    monkeypatch.setattr(alerts, "RETRY_EVERY", 0.05)
    queued: list[int] = []
    failures = iter([True, True, False])

    def apply_async(args):
        if next(failures, False):
            raise ConnectionError("the broker is down")
        queued.append(args[0])

    monkeypatch.setattr(check_budget_alerts, "apply_async", apply_async)
    asker = alerts.AlertAsker()

    asker.ask([7])

    assert wait_for(lambda: queued == [7], timeout=5)


def test_a_key_charged_again_within_the_quiet_period_gets_one_more_check_at_its_end(monkeypatch):
    monkeypatch.setattr(alerts, "CHECK_EVERY", 0.3)
    queued: list[int] = []
    monkeypatch.setattr(check_budget_alerts, "apply_async", lambda args: queued.append(args[0]))
    asker = alerts.AlertAsker()

    asker.ask([7])
    assert wait_for(lambda: queued == [7], timeout=5)
    asker.ask([7])
    asker.ask([7])

    assert wait_for(lambda: queued == [7, 7], timeout=5)
    assert not wait_for(lambda: len(queued) > 2, timeout=0.6)


def test_the_sweep_hands_over_the_keys_with_a_budget_charged_since_its_last_run(make_key):
    budgeted, _ = make_key(name="budgeted", daily_budget_usd=Decimal("1.00"))
    quota, _ = make_key(name="quota", quota_usd=Decimal("5"))
    earlier, _ = make_key(name="earlier", monthly_budget_usd=Decimal("10"))
    unlimited, _ = make_key(name="unlimited")
    for key in (budgeted, quota, earlier, unlimited):
        spend(key, "0.10")
    checked: list[int] = []
    assert budget_alerts_sweep(check=checked.append) == 3
    assert sorted(checked) == sorted([budgeted.id, quota.id, earlier.id])

    # Written an hour before the last sweep: not read again.
    UsageRecord.objects.filter(api_key_id=earlier.id).update(
        recorded_at=datetime.now(UTC) - timedelta(hours=1)
    )
    spend(quota, "0.10")
    checked.clear()
    budget_alerts_sweep(check=checked.append)

    assert sorted(checked) == sorted([budgeted.id, quota.id])


def test_a_sweep_that_fails_midway_leaves_its_watermark_for_the_next_to_start_from(make_key):
    key, _ = make_key(daily_budget_usd=Decimal("1.00"))
    spend(key, "0.10")
    budget_alerts_sweep(check=lambda key_id: None)
    before = Watermark.objects.get(name="budget-alerts").position
    spend(key, "0.10")

    def broker_down(key_id: int) -> None:
        raise ConnectionError("the broker is down")

    with pytest.raises(ConnectionError):
        budget_alerts_sweep(check=broker_down)

    assert Watermark.objects.get(name="budget-alerts").position == before
