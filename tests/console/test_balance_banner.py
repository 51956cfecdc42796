"""An account the gateway refuses for want of credit is told so where it
works with keys: the overview, the keys list and the billing page."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import LedgerEntry
from billing.services import ledger_post

PAGES = ("/", "/keys/", "/billing/")


def post(account, amount: str, source: str) -> None:
    kind = LedgerEntry.Kind.ADJUSTMENT if Decimal(amount) > 0 else LedgerEntry.Kind.USAGE
    ledger_post(account_id=account.id, kind=kind, amount=Decimal(amount), source=source)


def shown(client, path: str) -> bool:
    page = client.get(path)
    assert page.status_code == 200
    return 'id="balance-exhausted"' in page.content.decode()


@pytest.mark.parametrize("path", PAGES)
def test_prepaid_a_new_account_is_told_its_requests_are_refused(owner_client, settings, path):
    settings.PUREBRIDGE_BILLING_MODE = "prepaid"

    assert shown(owner_client, path)


@pytest.mark.parametrize("path", PAGES)
def test_prepaid_an_account_with_credit_is_not(owner_client, account, settings, path):
    settings.PUREBRIDGE_BILLING_MODE = "prepaid"
    post(account, "5", "test:credit")

    assert not shown(owner_client, path)


@pytest.mark.parametrize("path", PAGES)
def test_unmetered_only_an_account_credited_and_spent_is(owner_client, account, path):
    assert not shown(owner_client, path)  # never credited: served unmetered

    post(account, "1", "test:credit")
    post(account, "-1.5", "usage:test")

    assert shown(owner_client, path)
