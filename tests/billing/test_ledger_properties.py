"""The ledger's invariants as properties: whatever mix of credits, refunds,
usage batches (some retried) and repeated sources is posted, the balance is
the sum of the entries and the usage debits are the cost of the records."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from billing.models import Balance, LedgerEntry
from billing.services import ledger_post, reconcile
from tests.helpers import usage_entry
from usage.recorder import _write

_accounts = itertools.count()
AMOUNTS = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000"), places=6)
COSTS = st.decimals(min_value=Decimal(0), max_value=Decimal("5"), places=12)


class Books(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        from accounts.models import User
        from keys.services import key_create

        user = User.objects.create_user(f"books-{next(_accounts)}@example.com", "pw-123456789")
        self.account = user.account
        self.key, _ = key_create(account=self.account, name="books")
        self.expected = Decimal(0)
        self.sources: list[str] = []
        self.batches: list[list] = []
        self.requests = itertools.count()

    @rule(amount=AMOUNTS, refund=st.booleans())
    def credit_or_refund(self, amount: Decimal, refund: bool) -> None:
        source = f"test:{self.account.id}:{len(self.sources)}"
        kind = LedgerEntry.Kind.REFUND if refund else LedgerEntry.Kind.PURCHASE
        signed = -amount if refund else amount
        ledger_post(account_id=self.account.id, kind=kind, amount=signed, source=source)
        self.sources.append(source)
        self.expected += signed

    @rule(data=st.data())
    def repost_a_source(self, data) -> None:
        if not self.sources:
            return
        source = data.draw(st.sampled_from(self.sources))
        posted = ledger_post(
            account_id=self.account.id,
            kind=LedgerEntry.Kind.PURCHASE,
            amount=Decimal(1),
            source=source,
        )
        assert posted is None

    @rule(costs=st.lists(COSTS, min_size=1, max_size=5))
    def usage_batch(self, costs: list[Decimal]) -> None:
        batch = [
            usage_entry(self.key, f"pb-{self.account.id}-{next(self.requests)}", cost_usd=c)
            for c in costs
        ]
        _write(batch)
        self.batches.append(batch)
        self.expected -= sum(costs, Decimal(0))

    @rule(data=st.data())
    def retry_a_batch(self, data) -> None:
        if self.batches:
            _write(data.draw(st.sampled_from(self.batches)))  # its acknowledgement was lost

    @invariant()
    def books_hold(self) -> None:
        assert reconcile([self.account.id]) == []
        balance = Balance.objects.filter(account=self.account).first()
        assert (balance.amount_usd if balance else Decimal(0)) == self.expected


@pytest.mark.django_db(transaction=True)
def test_the_books_hold_whatever_is_posted():
    run = Books.TestCase
    run.settings = settings(
        max_examples=25,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run().runTest()
