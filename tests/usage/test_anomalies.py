"""Unusual spend: a key far above its own baseline is mailed once per episode
and shown on the overview and its page while the episode lasts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.core import mail

from tests.web import browser_like_client
from usage import anomalies
from usage.anomalies import HourFigures, judge, last_whole_hour, spend_anomalies_check
from usage.models import SpendAnomaly, UsageRecord
from usage.services import usage_rollup
from usage.tasks import check_spend_anomalies

HOUR = datetime(2026, 11, 20, 14, tzinfo=UTC)
_ids = count()


@pytest.fixture(autouse=True)
def _locmem_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PUREBRIDGE_CONSOLE_URL = "https://console.example"


def use(key, hour: datetime, *, spend: str, requests: int, tokens: int = 1000) -> None:
    """`requests` records of `tokens` tokens each in the hour, `spend` in all."""
    each = Decimal(spend) / requests
    UsageRecord.objects.bulk_create(
        UsageRecord(
            created_at=hour + timedelta(seconds=i),
            account=key.account,
            api_key=key,
            endpoint="chat.completions",
            model="m",
            status=200,
            prompt_tokens=tokens - 100,
            completion_tokens=100,
            cost_usd=each,
            request_id=f"pb-anomaly-{next(_ids)}",
        )
        for i in range(requests)
    )


def steady(key, *, spend: str = "0.50", requests: int = 10, tokens: int = 1000) -> None:
    """A usual working rhythm: 24 active hours over the week before HOUR."""
    for n in range(24):
        use(key, HOUR - timedelta(hours=3 + n * 6), spend=spend, requests=requests, tokens=tokens)


def check(hour: datetime = HOUR) -> int:
    usage_rollup()
    return spend_anomalies_check(hour=hour)


@pytest.fixture
def outsider(transactional_db):
    from accounts.models import User

    return User.objects.create_user("outsider@example.com", "pw-outsider-1234")


@pytest.fixture
def key(make_key):
    return make_key(name="codex-loop", notification_email="alerts@example.com")[0]


def test_a_spike_over_a_steady_history_is_mailed_once(key):
    steady(key)
    use(key, HOUR, spend="12", requests=200)

    assert check() == 1
    assert check() == 0  # the same hour again: the episode is open already

    [email] = mail.outbox
    assert email.to == ["alerts@example.com"]
    assert email.subject == '[PureBridge] Unusual spend on key "codex-loop"'
    assert "Spend               $12.00    $0.50" in email.body
    assert "Requests            200    10" in email.body
    assert "https://console.example/keys/" in email.body
    [episode] = SpendAnomaly.objects.all()
    assert (episode.hour, episode.ended_at, episode.reasons) == (HOUR, None, "spend,requests")


def test_the_hourly_task_checks_the_last_whole_hour(key, monkeypatch):
    steady(key)
    use(key, HOUR, spend="12", requests=200)
    usage_rollup()
    monkeypatch.setattr(anomalies.budgets, "now", lambda: HOUR + timedelta(hours=1, minutes=5))

    assert check_spend_anomalies.apply().get() == 1
    assert check_spend_anomalies.apply().get() == 0
    assert len(mail.outbox) == 1


def test_a_new_key_spiking_without_history_is_not_mailed(key):
    use(key, HOUR - timedelta(hours=2), spend="0.50", requests=10)
    use(key, HOUR, spend="40", requests=500)

    assert check() == 0
    assert mail.outbox == [] and not SpendAnomaly.objects.exists()


def test_a_tiny_key_under_the_floor_is_not_mailed(key):
    steady(key, spend="0.01", requests=2)
    use(key, HOUR, spend="0.90", requests=180)  # 90 times its usual, under $1

    assert check() == 0
    assert mail.outbox == []


def test_a_busy_hour_within_the_factor_is_not_mailed(key):
    steady(key, spend="2", requests=40)
    use(key, HOUR, spend="7.50", requests=150)  # under 5 times the usual

    assert check() == 0
    assert mail.outbox == []


def test_longer_prompts_alone_can_be_unusual(key):
    steady(key, spend="1", requests=10, tokens=2_000)
    use(key, HOUR, spend="4", requests=10, tokens=40_000)  # the context keeps growing

    assert check() == 1
    assert SpendAnomaly.objects.get().reasons == "tokens_per_request"


def test_another_keys_history_is_not_a_baseline(key, make_key):
    other, _ = make_key(name="other")
    steady(other)
    use(key, HOUR, spend="12", requests=200)

    assert check() == 0


def test_the_episode_ends_with_a_usual_hour_and_a_later_spike_mails_again(key):
    steady(key)
    use(key, HOUR, spend="12", requests=200)
    assert check() == 1

    later = HOUR + timedelta(hours=1)
    use(key, later, spend="0.40", requests=8)
    assert check(later) == 0
    assert SpendAnomaly.objects.get().ended_at is not None

    again = HOUR + timedelta(hours=2)
    use(key, again, spend="15", requests=250)
    assert check(again) == 1
    assert len(mail.outbox) == 2
    assert SpendAnomaly.objects.filter(ended_at__isnull=True).get().hour == again


def test_a_quiet_hour_ends_the_episode_too(key):
    steady(key)
    use(key, HOUR, spend="12", requests=200)
    check()

    check(HOUR + timedelta(hours=1))  # no request at all

    assert SpendAnomaly.objects.get().ended_at is not None


def test_the_banner_shows_the_episode_to_the_owner(key, owner_client):
    steady(key)
    use(key, HOUR, spend="12", requests=200)
    check()

    overview = owner_client.get("/").content.decode()
    page = owner_client.get(f"/keys/{key.id}/").content.decode()

    assert "Unusual spend on" in overview and "codex-loop</a>" in overview
    assert "$12.00 and 200 requests" in overview
    assert "Unusual spend on this key." in page


def test_the_banner_goes_when_the_episode_ends(key, owner_client):
    steady(key)
    use(key, HOUR, spend="12", requests=200)
    check()
    check(HOUR + timedelta(hours=1))

    assert "Unusual spend" not in owner_client.get("/").content.decode()
    assert "Unusual spend" not in owner_client.get(f"/keys/{key.id}/").content.decode()


def test_an_outsider_sees_neither_the_banner_nor_the_key(key, outsider):
    steady(key)
    use(key, HOUR, spend="12", requests=200)
    check()
    client = browser_like_client(outsider)

    assert "Unusual spend" not in client.get("/").content.decode()
    assert client.get(f"/keys/{key.id}/").status_code == 404


def test_the_rule_needs_the_minimum_history(settings):
    settings.PUREBRIDGE_ANOMALY_MIN_HISTORY_HOURS = 3
    usual = [HourFigures(Decimal("1"), 10, 10_000)] * 2
    spike = HourFigures(Decimal("50"), 500, 500_000)

    assert judge(spike, usual) is None
    assert judge(spike, [*usual, usual[0]]) is not None


def test_the_baseline_is_a_median_so_one_earlier_runaway_does_not_hide_the_next(settings):
    settings.PUREBRIDGE_ANOMALY_MIN_HISTORY_HOURS = 3
    history = [HourFigures(Decimal("1"), 10, 10_000)] * 5 + [HourFigures(Decimal("200"), 2000, 0)]

    verdict = judge(HourFigures(Decimal("20"), 200, 200_000), history)

    assert verdict is not None and verdict.usual["spend"] == Decimal("1")


def test_the_last_whole_hour_is_the_clock_hour_before_this_one():
    assert last_whole_hour(datetime(2026, 11, 20, 15, 5, 30, tzinfo=UTC)) == HOUR
