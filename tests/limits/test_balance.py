"""The account's balance as admission's last window: held across gunicorn
workers, charged past zero by a request that costs more than it reserved,
raised by a top-up every worker hears of within a second, and the
prepaid/unmetered choice."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest
from django.test import Client

from billing.models import Balance, LedgerEntry
from billing.services import ledger_post, reconcile
from console.templatetags.pb import usd
from gateway.limits import _money, reserved_in_flight
from tests.helpers import wait_for
from tests.limits.support import (
    FLAT_COST,
    FLAT_RESERVED,
    MICROS,
    PROMPT,
    chat,
    fire,
    gunicorn_in,
    micros,
    records_of,
)

BILLING_PAGE = "/billing/"


@pytest.fixture(scope="module")
def prepaid(django_db_setup, tmp_path_factory):
    """Two gunicorn workers holding every account to its balance."""
    with gunicorn_in(tmp_path_factory, "prepaid", env={"PUREBRIDGE_BILLING_MODE": "prepaid"}) as s:
        yield s


def credit(account, usd: Decimal) -> None:
    ledger_post(
        account_id=account.id,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=usd,
        source=f"test:{uuid.uuid4()}",
        reason="test credit",
    )


def balance_of(account) -> Decimal:
    return Balance.objects.get(account=account).amount_usd


def assert_balance_refusal(response, *, says: str) -> dict:
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["x-purebridge-limit"] == "balance"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "balance" in error["message"] and says in error["message"]
    assert BILLING_PAGE in error["message"]
    return error


def test_50_concurrent_requests_against_a_balance_for_10_spend_none_past_it(
    prepaid, account, make_key, models, redis_client
):
    """The balance covers 10 requests' worst case: 50 at once across two
    workers admit exactly 10 (the answers take 2 s, so none settles while the
    others ask); each costs less than it reserved, so nothing is spent past
    the balance (the overshoot bound is zero: README, "Billing")."""
    credited = Decimal(10 * FLAT_RESERVED) / MICROS
    credit(account, credited)
    key, secret = make_key()
    owner = Client()
    owner.force_login(account.users.get())

    with ThreadPoolExecutor(1) as pool:
        burst = pool.submit(
            fire, prepaid.url, secret, [chat("flat-slower", max_tokens=5)] * 50, concurrency=50
        )
        # While they are in flight, the billing page says what they hold.
        assert wait_for(lambda: reserved_in_flight(account.id) == 10 * FLAT_RESERVED)
        page = owner.get("/billing/").content.decode()
        responses = burst.result()

    held = Decimal(10 * FLAT_RESERVED) / MICROS
    assert f"{usd(held)} is held for requests in flight" in page
    assert Counter(r.status_code for r in responses) == {200: 10, 429: 40}
    for response in responses:
        if response.status_code == 429:
            assert_balance_refusal(response, says="left")
    assert wait_for(lambda: len(records_of(key)) == 50, timeout=20)
    assert wait_for(lambda: balance_of(account) == credited - Decimal(10 * FLAT_COST) / MICROS)
    assert balance_of(account) >= 0
    assert wait_for(lambda: reserved_in_flight(account.id) == 0)
    assert reconcile([account.id]) == []


class Sender:
    """One key's requests to a server, counted, so a test can wait for all
    their records before its tables are emptied."""

    def __init__(self, url: str, secret: str, key) -> None:
        self.url, self.secret, self.key = url, secret, key
        self.sent = 0

    def __call__(self, model: str = "flat", times: int = 1) -> list:
        self.sent += times
        return fire(self.url, self.secret, [chat(model, max_tokens=5)] * times, concurrency=times)

    def until(self, answered, within: float) -> bool:
        """Send until an answer satisfies `answered`, for at most `within` seconds."""
        return wait_for(lambda: answered(self()[0]), timeout=within)

    def recorded(self) -> list:
        assert wait_for(lambda: len(records_of(self.key)) == self.sent, timeout=20)
        return records_of(self.key)


def test_the_sdk_raises_at_once_and_a_top_up_lets_the_next_request_through_within_a_second(
    prepaid, account, make_key, models
):
    """An account never credited has nothing to spend (prepaid): the OpenAI SDK,
    retries on, raises on the first answer. A credit posted meanwhile (in this
    process: the console, a webhook) reaches both workers within a second."""
    key, secret = make_key()
    send = Sender(prepaid.url, secret, key)
    sdk = openai.OpenAI(base_url=f"{prepaid.url}/v1", api_key=secret, max_retries=3)

    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(
            model="flat", messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
    send.sent += 1
    assert time.monotonic() - started < 0.5  # no retry waited for
    assert refused.value.code == "insufficient_quota"
    assert "has $0.00 left" in refused.value.message
    [record] = send.recorded()  # asked once
    assert record.status == 429

    credit(account, Decimal("1"))
    credited_at = time.monotonic()
    # Both of a pair served (one per worker, most likely), within the second.
    assert wait_for(
        lambda: [r.status_code for r in send("flat", times=2)] == [200, 200],
        timeout=1.0,
    )
    assert time.monotonic() - credited_at < 1.0
    send.recorded()


def test_a_request_costing_more_than_it_reserved_is_charged_past_zero(
    prepaid, account, make_key, models
):
    """The upstream counts 500 prompt tokens where PureBridge counted PROMPT:
    the request reserved less than it costs. It is admitted, served, recorded
    and debited in full, taking the balance below zero; the next request is
    refused saying what is owed, until a top-up covers the debt."""
    reserved = Decimal(micros(PROMPT, 5)) / MICROS
    credit(account, reserved)
    key, secret = make_key()
    send = Sender(prepaid.url, secret, key)

    [served] = send("big-prompt")

    assert served.status_code == 200
    cost = Decimal(micros(500, 3)) / MICROS
    [record] = send.recorded()
    assert record.cost_usd == cost
    assert wait_for(lambda: balance_of(account) == reserved - cost)
    owed = cost - reserved
    [refused] = send()
    assert_balance_refusal(refused, says=f"owes {_money(int(owed * MICROS))}")

    credit(account, owed)  # covers the debt, and nothing more
    assert send.until(lambda answer: "has $0.00 left" in answer.text, within=1)
    assert_balance_refusal(send()[0], says="has $0.00 left")
    credit(account, Decimal("1"))
    assert send.until(lambda answer: answer.status_code == 200, within=1)
    send.recorded()
    assert reconcile([account.id]) == []


def test_a_held_account_is_refused_until_the_hold_is_lifted(prepaid, account, make_key, models):
    """A disputed payment puts the account on hold (billing/reversals.py): its
    keys are refused with 403 until the hold is lifted, within a second each way."""
    credit(account, Decimal("1"))
    key, secret = make_key()
    send = Sender(prepaid.url, secret, key)
    assert send()[0].status_code == 200
    balance = Balance.objects.get(account=account)

    balance.blocked_reason = "Payment disputed (dp_1)"
    balance.save(update_fields=["blocked_reason"])

    assert send.until(lambda answer: answer.status_code == 403, within=1)
    error = send()[0].json()["error"]
    assert error["code"] == "account_on_hold"
    assert "Payment disputed (dp_1)" in error["message"]

    balance.blocked_reason = ""
    balance.save(update_fields=["blocked_reason"])
    assert send.until(lambda answer: answer.status_code == 200, within=1)
    records = send.recorded()
    assert {r.status for r in records} == {200, 403}


def test_unmetered_serves_accounts_never_credited_and_holds_those_credited(
    live, http, account, make_key, models, settings
):
    """PUREBRIDGE_BILLING_MODE=unmetered (the tests' default, as a self-hosted
    team gateway's): an account with no credit ever posted is served without
    a balance; once credited it is held to it, spent down or not."""
    assert settings.PUREBRIDGE_BILLING_MODE == "unmetered"
    key, secret = make_key()
    headers = {"Authorization": f"Bearer {secret}"}

    assert http.post("/v1/chat/completions", json=chat("flat"), headers=headers).status_code == 200

    credit(account, Decimal(FLAT_RESERVED) / MICROS)  # one request's worst case
    ok = http.post("/v1/chat/completions", json=chat("flat", max_tokens=5), headers=headers)
    assert ok.status_code == 200
    refused = http.post("/v1/chat/completions", json=chat("flat", max_tokens=5), headers=headers)
    assert_balance_refusal(refused, says="left of this account's balance")


def test_prepaid_refuses_an_account_never_credited(live, http, make_key, models, settings):
    settings.PUREBRIDGE_BILLING_MODE = "prepaid"
    _, secret = make_key()

    refused = http.post(
        "/v1/chat/completions", json=chat("flat"), headers={"Authorization": f"Bearer {secret}"}
    )

    assert_balance_refusal(refused, says="has $0.00 left")


def test_a_budget_refusal_names_its_window(live, http, make_key, models):
    _, secret = make_key(daily_budget_usd=Decimal("0.000001"))

    refused = http.post(
        "/v1/chat/completions", json=chat("flat"), headers={"Authorization": f"Bearer {secret}"}
    )

    assert refused.status_code == 429
    assert refused.headers["x-purebridge-limit"] == "daily"


def test_a_lost_balance_counter_is_rebuilt_from_the_books(
    live, http, account, make_key, models, redis_client
):
    """Redis lost the balance counter: the next request rebuilds it from the
    one row the usage writer keeps in step with the records (Balance.used_usd)."""
    credit(account, Decimal("1"))
    key, secret = make_key()
    headers = {"Authorization": f"Bearer {secret}"}
    counter = f"pb:{{a{account.id}}}:balance"

    def spent() -> int:
        return int(redis_client.hget(counter, "spent") or -1)

    for _ in range(3):
        assert http.post("/v1/chat/completions", json=chat("flat", max_tokens=5), headers=headers)
    assert wait_for(lambda: spent() == 3 * FLAT_COST)
    redis_client.delete(counter)

    ok = http.post("/v1/chat/completions", json=chat("flat", max_tokens=5), headers=headers)

    assert ok.status_code == 200
    assert wait_for(lambda: len(records_of(key)) == 4)
    assert wait_for(lambda: spent() == 4 * FLAT_COST)
    assert Balance.objects.get(account=account).used_usd == Decimal(4 * FLAT_COST) / MICROS


def test_a_refusal_is_recorded_with_the_window_that_refused_it(
    live, http, account, make_key, models, usage_records
):
    credit(account, Decimal("0.000001"))
    _, secret = make_key(daily_budget_usd=Decimal("5"))
    headers = {"Authorization": f"Bearer {secret}"}

    refused = http.post("/v1/chat/completions", json=chat("flat", max_tokens=5), headers=headers)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "insufficient_quota"  # what clients read
    [record] = usage_records()
    assert record.error_type == "insufficient_quota:balance"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", chat("flat"), "max_completion_tokens"),
        ("/v1/completions", {"model": "flat", "prompt": "hi"}, "max_tokens"),
        # Translated for this chat-only upstream: max_output_tokens → max_tokens.
        ("/v1/responses", {"model": "flat", "input": "hi"}, "max_tokens"),
    ],
)
def test_a_metered_request_without_an_output_cap_is_sent_with_the_one_it_reserved(
    live, http, account, make_key, models, fake_upstream, path, body, field
):
    """Its reservation (the model's default cap) is its worst case only if the
    upstream keeps to it: a long answer can no longer take the balance further
    below zero than the overshoot bound says. Without money at stake the
    request goes as the client sent it."""
    from accounts.models import User

    credit(account, Decimal("100"))
    _, metered_secret = make_key()
    unmetered = User.objects.create_user("free@example.com", "pw-free-123456").account
    _, free_secret = make_key(account=unmetered)  # never credited: served unmetered

    for secret in (metered_secret, free_secret):
        answer = http.post(path, json=body, headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 200, answer.text

    capped, free = fake_upstream.requests[-2:]
    default = models["flat"].default_max_output_tokens
    assert capped["body"][field] == default
    assert field not in free["body"]
