"""Redeeming is race-safe: many requests at once for one code claim exactly
as many uses as it has, and credit each once (real PostgreSQL, one connection
per thread, all started together)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from billing.codes import INVALID_MESSAGE, Outcome, code_redeem
from billing.models import Balance, LedgerEntry, Redemption, RedemptionCode
from billing.services import reconcile
from tests.billing.race import race

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="races need PostgreSQL (scripts/with-services.sh)"
)


@pytest.fixture(autouse=True)
def _no_throttle(monkeypatch):
    # Every request must reach the database here: the throttle (10 failed
    # attempts a minute) would otherwise turn most of them away first.
    from billing import codes_throttle

    monkeypatch.setattr(codes_throttle, "LIMIT", 1000)


def redeem_all(pairs):
    def attempt(account, code):
        return lambda: code_redeem(account=account, code=code, ip="198.51.100.7")

    return race([attempt(account, code) for account, code in pairs])


def test_a_single_use_code_raced_by_50_requests_of_one_account_credits_once(account, make_codes):
    [code] = make_codes()

    results, pids = redeem_all([(account, code)] * 50)

    assert len(pids) == 50  # fifty connections, not a pool's few
    assert Counter(r.outcome for r in results) == {Outcome.REDEEMED: 1, Outcome.INVALID: 49}
    assert {r.message for r in results if not r.ok} == {INVALID_MESSAGE}
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REDEMPTION).count() == 1
    assert Redemption.objects.count() == 1
    assert Balance.objects.get(account=account).amount_usd == Decimal("10")
    assert RedemptionCode.objects.get().uses_left == 0
    assert reconcile() == []


def test_a_single_use_code_raced_by_50_accounts_credits_one_of_them(make_account, make_codes):
    [code] = make_codes()
    accounts = [make_account() for _ in range(50)]

    results, _ = redeem_all([(account, code) for account in accounts])

    [winner] = [r for r in results if r.ok]
    assert sum(not r.ok for r in results) == 49
    assert Redemption.objects.get().account_id == winner.entry.account_id
    assert [b.amount_usd for b in Balance.objects.exclude(amount_usd=0)] == [Decimal("10")]
    assert LedgerEntry.objects.count() == 1
    assert RedemptionCode.objects.get().uses_left == 0


def test_a_code_with_3_uses_raced_by_10_accounts_credits_exactly_3(make_account, make_codes):
    [code] = make_codes(uses=3)
    accounts = [make_account() for _ in range(10)]

    results, _ = redeem_all([(account, code) for account in accounts])

    winners = {r.entry.account_id for r in results if r.ok}
    assert len(winners) == 3
    assert {r.reason for r in results if not r.ok} == {"used up"}
    assert set(Redemption.objects.values_list("account_id", flat=True)) == winners
    assert (
        set(Balance.objects.filter(amount_usd=10).values_list("account_id", flat=True)) == winners
    )
    assert LedgerEntry.objects.count() == 3
    assert RedemptionCode.objects.get().uses_left == 0
    assert reconcile() == []


def test_one_account_racing_itself_for_a_code_with_3_uses_gets_one_and_leaves_two(
    account, make_codes
):
    [code] = make_codes(uses=3)

    results, _ = redeem_all([(account, code)] * 20)

    assert sum(r.ok for r in results) == 1
    assert {r.reason for r in results if not r.ok} == {"already redeemed by this account"}
    assert RedemptionCode.objects.get().uses_left == 2  # the refused claims were rolled back
    assert Balance.objects.get(account=account).amount_usd == Decimal("10")
