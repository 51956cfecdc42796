"""The low-balance alert: one email each time a debit takes the balance below
the threshold the account set, claimed by a unique row per crossing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from billing import alerts, tasks
from billing.alerts import low_balance_alert_send, low_balance_alerts_due
from billing.models import LowBalanceAlert
from billing.services import ledger_post, low_balance_alert_set


@pytest.fixture(autouse=True)
def _locmem_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PUREBRIDGE_CONSOLE_URL = "https://console.example"


_n = iter(range(10**6))


def post(account, amount: str, kind: str = "usage") -> None:
    ledger_post(account_id=account.pk, kind=kind, amount=Decimal(amount), source=f"t:{next(_n)}")


def send(account) -> bool:
    return low_balance_alert_send(account_id=account.pk)


@pytest.fixture
def funded(account):
    """$10 on the balance and an alert at $5."""
    post(account, "10", kind="purchase")
    low_balance_alert_set(account=account, amount=Decimal("5"))
    return account


def test_no_alert_is_sent_without_a_threshold(account):
    post(account, "10", kind="purchase")
    post(account, "-9.5")

    assert not send(account) and low_balance_alerts_due() == []
    assert mail.outbox == []


def test_no_alert_is_sent_above_the_threshold(funded):
    post(funded, "-4")

    assert low_balance_alerts_due() == [] and not send(funded)


def test_a_debit_crossing_the_threshold_mails_the_owner_once(funded):
    post(funded, "-6")

    assert low_balance_alerts_due() == [funded.pk]
    assert send(funded)
    assert not send(funded)
    assert low_balance_alerts_due() == []

    [email] = mail.outbox
    assert email.to == ["owner@example.com"]
    assert email.subject == "[PureBridge] Your balance is below $5.00"
    assert "Balance: $4.00" in email.body
    assert "https://console.example/billing/" in email.body
    assert "$4.00" in email.alternatives[0][0]


def test_more_debits_below_the_threshold_send_nothing_more(funded):
    post(funded, "-6")
    send(funded)
    post(funded, "-1")
    post(funded, "-1")

    assert not send(funded) and low_balance_alerts_due() == []
    assert len(mail.outbox) == 1


def test_a_top_up_and_a_new_crossing_mail_again(funded):
    post(funded, "-6")
    send(funded)
    post(funded, "20", kind="purchase")  # $24
    post(funded, "-20")  # $4: crossed again

    assert send(funded)
    assert len(mail.outbox) == 2
    assert LowBalanceAlert.objects.filter(account=funded).count() == 2


def test_a_top_up_that_stays_below_is_no_new_crossing(funded):
    post(funded, "-6")  # $4
    send(funded)
    post(funded, "0.5", kind="redemption")  # $4.50: still below
    post(funded, "-1")

    assert not send(funded) and len(mail.outbox) == 1


def test_a_balance_that_never_was_above_the_threshold_sends_nothing(account):
    post(account, "3", kind="purchase")
    low_balance_alert_set(account=account, amount=Decimal("5"))
    post(account, "-1")

    assert not send(account) and mail.outbox == []


def test_a_debt_is_mailed_as_owed(funded):
    post(funded, "-11")

    send(funded)

    assert "you owe $1.00" in mail.outbox[0].body
    assert "refused until a top-up" in mail.outbox[0].body


def test_the_account_notification_email_comes_first(funded):
    funded.notification_email = "billing@example.com"
    funded.save()
    post(funded, "-6")

    send(funded)

    assert mail.outbox[0].to == ["billing@example.com"]


def test_a_failed_send_leaves_the_crossing_unclaimed_for_the_next_try(funded, monkeypatch):
    post(funded, "-6")

    def fail(*args, **kwargs):
        raise OSError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", fail)
    with pytest.raises(OSError):
        send(funded)
    assert not LowBalanceAlert.objects.exists()
    monkeypatch.undo()

    assert send(funded) and len(mail.outbox) == 1


def test_each_account_has_its_own_crossings(funded, make_account):
    other = make_account()
    post(other, "10", kind="purchase")
    low_balance_alert_set(account=other, amount=Decimal("5"))
    post(funded, "-6")

    assert low_balance_alerts_due() == [funded.pk]
    assert not send(other)


def test_the_sweep_queues_each_due_account_once(funded, monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_low_balance_alert, "delay", queued.append)
    post(funded, "-6")

    assert tasks.sweep_low_balance_alerts() == 1
    assert queued == [funded.pk]
    assert tasks.send_low_balance_alert(funded.pk)
    assert tasks.sweep_low_balance_alerts() == 0


def test_the_crossing_is_the_latest_entry_that_went_below(funded):
    post(funded, "-6")  # $4, crossing 1
    post(funded, "10", kind="purchase")  # $14
    post(funded, "-12")  # $2, crossing 2

    entry = alerts.crossing(funded.pk, Decimal("5"))

    assert entry is not None and entry.balance_after_usd == Decimal("2")
