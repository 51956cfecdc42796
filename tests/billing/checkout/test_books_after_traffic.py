"""The books after a day's mix: two plans bought (one partly refunded), a code
redeemed, and 1,000 API requests spending the balance through the gateway.
`billing_reconcile` finds nothing, and fails on one hand-corrupted entry."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx2
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Sum

from billing.codes import code_redeem
from billing.models import Balance, LedgerEntry
from tests.billing.checkout.conftest import balance
from tests.helpers import wait_for
from usage.models import UsageRecord

REQUESTS = 1_000
CREDIT = Decimal("12.5")  # the plan's


def send_all(url: str, secret: str, model: str, count: int, concurrency: int = 16) -> list[int]:
    async def run() -> list[int]:
        gate = asyncio.Semaphore(concurrency)
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx2.AsyncClient(base_url=url, timeout=30) as client:

            async def one() -> int:
                async with gate:
                    answer = await client.post("/v1/chat/completions", json=body, headers=headers)
                    return answer.status_code

            return await asyncio.gather(*(one() for _ in range(count)))

    return asyncio.run(run())


def test_purchases_a_code_a_refund_and_1000_requests_reconcile_to_the_micro_dollar(
    stripe_live, start, account, make_codes, live, make_key, make_model
):
    first, second = start(), start()
    for session_id in (first, second):
        assert stripe_live.deliver(stripe_live.complete(session_id)).status_code == 200
    assert stripe_live.deliver(stripe_live.refund(second, 250)).status_code == 200  # a quarter
    [code] = make_codes()
    assert code_redeem(account=account, code=code, ip="127.0.0.1").entry is not None
    credited = 3 * CREDIT - CREDIT / 4
    assert balance(account) == credited
    # Prices with a fraction of a micro-dollar per request: every debit is exact.
    make_model("mixed", "fake?prompt=7&tokens=11", input="0.37", output="1.9")
    key, secret = make_key()

    statuses = send_all(live.url, secret, "mixed", REQUESTS)

    assert statuses == [200] * REQUESTS
    assert wait_for(lambda: UsageRecord.objects.filter(api_key_id=key.id).count() == REQUESTS, 20)
    spent = UsageRecord.objects.filter(account=account).aggregate(total=Sum("cost_usd"))["total"]
    assert spent == REQUESTS * (7 * Decimal("0.37") + 11 * Decimal("1.9")) / 1_000_000
    assert wait_for(lambda: balance(account) == credited - spent)
    call_command("billing_reconcile")  # the books hold: no error

    usage = LedgerEntry.objects.filter(account=account, kind=LedgerEntry.Kind.USAGE).first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_ledgerentry SET amount_usd = amount_usd - 0.000000000001 WHERE id = %s",
            [usage.pk],
        )
    with pytest.raises(CommandError) as failed:
        call_command("billing_reconcile")
    assert failed.value.returncode == 1
    assert Balance.objects.get(account=account).amount_usd == credited - spent
