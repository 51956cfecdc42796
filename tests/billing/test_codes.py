"""Redemption codes: what a code looks like, how it is stored, and what
redeeming one does and refuses."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing import codes_throttle
from billing.codes import (
    ALPHABET,
    ENTROPY_BITS,
    INVALID_MESSAGE,
    THROTTLED_MESSAGE,
    Outcome,
    code_batch_create,
    code_normalise,
    code_redeem,
)
from billing.models import Balance, CodeBatch, LedgerEntry, Plan, Redemption, RedemptionCode

SHAPE = re.compile(r"PB(-[0-9A-HJKMNP-TV-Z]{4}){4}")
IP = "203.0.113.5"


def redeem(account, code, ip=IP):
    return code_redeem(account=account, code=code, ip=ip)


def unknown_code(n: int) -> str:
    return f"PB-ZZZZ-ZZZZ-ZZZZ-{n:04d}"


def test_codes_have_at_least_64_bits_and_no_look_alike_characters(make_codes):
    codes = make_codes(2000)

    assert all(SHAPE.fullmatch(code) for code in codes)
    assert len(set(codes)) == 2000
    assert ENTROPY_BITS == 16 * math.log2(len(ALPHABET)) == 80
    assert len(set(ALPHABET)) == 32 and not set("ILOU") & set(ALPHABET)
    # Every character of the alphabet turns up, in every position, about as
    # often as the others: drawn uniformly, not from a narrower source.
    bodies = [code.replace("-", "")[2:] for code in codes]
    for position in range(16):
        seen = Counter(body[position] for body in bodies)
        assert set(seen) == set(ALPHABET)
        assert max(seen.values()) < 3 * 2000 / 32


@pytest.mark.parametrize(
    "typed",
    [
        "PB-7K3M-Q9TD-2WXF-8HJN",
        "pb-7k3m-q9td-2wxf-8hjn",
        "  PB 7K3M Q9TD 2WXF 8HJN ",
        "7K3MQ9TD2WXF8HJN",
        "7k3m–q9td—2wxf-8hjn",  # dashes from a word processor
    ],
)
def test_a_code_is_read_whatever_its_case_spaces_and_dashes(typed):
    assert code_normalise(typed) == "7K3MQ9TD2WXF8HJN"


def test_look_alike_letters_are_read_as_the_digits_they_look_like():
    assert code_normalise("PB-O0I1-L000-0000-0000") == "0011100000000000"


@pytest.mark.parametrize(
    "typed", ["", "PB-7K3M", "PB-7K3M-Q9TD-2WXF-8HJNX", "PB-UUUU-0000-0000-0000"]
)
def test_what_cannot_be_a_code_is_none(typed):
    assert code_normalise(typed) is None


def test_codes_are_stored_only_as_a_keyed_hash(make_account, plan, transactional_db):
    account = make_account()
    batch, codes = code_batch_create(plan=plan, count=20, uses=2, note="launch")
    assert redeem(account, codes[0]).ok
    assert not redeem(account, unknown_code(1)).ok  # and a failed attempt

    dump = _whole_database()

    assert f"CODE {codes[0][:7]}-…" in dump  # the ledger's reference: the dump sees the rows

    for code in codes:
        body = code.replace("-", "")[2:]
        hidden = body[4:]  # the first group is the stored lookup; the rest is nowhere
        assert code not in dump and body not in dump and hidden not in dump
    stored = RedemptionCode.objects.filter(batch=batch)
    assert all(len(c.code_hash) == 64 and c.lookup == codes[i][3:7] for i, c in enumerate(stored))


def _whole_database() -> str:
    """Every row of every table, as text: what a `pg_dump | grep` would see."""
    with connection.cursor() as cursor:
        rows = []
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')
            rows += [row[0] for row in cursor.fetchall()]
    return "\n".join(rows).upper()


def test_redeeming_credits_the_plan_and_records_the_redemption(account, make_codes):
    [code] = make_codes()

    result = redeem(account, code.lower())

    assert result.ok and result.outcome is Outcome.REDEEMED
    entry = result.entry
    assert entry.kind == LedgerEntry.Kind.REDEMPTION
    assert entry.amount_usd == Decimal("10")
    assert entry.source == f"code:{RedemptionCode.objects.get().pk}:{account.pk}"
    assert entry.reference.startswith("Starter · code PB-" + code[3:7])
    assert Balance.objects.get(account=account).amount_usd == Decimal("10")
    redemption = Redemption.objects.get()
    assert (redemption.account, redemption.ledger_entry, redemption.ip) == (account, entry, IP)


def test_the_credit_expires_after_the_plans_validity_not_the_codes_deadline(account, make_codes):
    plan = Plan.objects.create(
        name="trial",
        title="Trial",
        price=Decimal("1"),
        credit_usd=Decimal("2"),
        credit_valid_days=30,
    )
    [code] = make_codes(plan=plan, redeem_by=timezone.now() + timedelta(days=1))

    entry = redeem(account, code).entry

    assert entry.expires_at - entry.created_at == pytest.approx(
        timedelta(days=30), abs=timedelta(seconds=5)
    )


def test_a_credit_of_a_plan_without_validity_does_not_expire(account, make_codes):
    [code] = make_codes(redeem_by=timezone.now() + timedelta(days=1))

    assert redeem(account, code).entry.expires_at is None


def test_an_expired_code_is_refused_and_credits_nothing(account, make_codes, caplog):
    [code] = make_codes(redeem_by=timezone.now() + timedelta(days=1))
    RedemptionCode.objects.update(redeem_by=timezone.now() - timedelta(seconds=1))

    with caplog.at_level(logging.INFO, logger="billing.codes"):
        result = redeem(account, code)

    assert (result.outcome, result.message, result.reason) == (
        Outcome.INVALID,
        INVALID_MESSAGE,
        "expired",
    )
    assert not LedgerEntry.objects.exists() and not Redemption.objects.exists()
    assert RedemptionCode.objects.get().uses_left == 1
    assert "refused (expired)" in caplog.text


def test_every_refusal_reads_the_same_and_logs_its_real_reason(
    account, make_account, make_codes, caplog
):
    used, mine, expired = make_codes(3, redeem_by=timezone.now() + timedelta(days=1))
    assert redeem(make_account(), used).ok
    assert redeem(account, mine).ok
    RedemptionCode.objects.filter(lookup=expired[3:7]).update(redeem_by=timezone.now())

    with caplog.at_level(logging.INFO, logger="billing.codes"):
        results = [redeem(account, c) for c in (unknown_code(1), used, expired, mine)]

    assert {(r.outcome, r.message) for r in results} == {(Outcome.INVALID, INVALID_MESSAGE)}
    assert [r.reason for r in results] == [
        "unknown",
        "used up",
        "expired",
        "already redeemed by this account",
    ]
    for reason in ("unknown", "used up", "expired", "already redeemed by this account"):
        assert f"refused ({reason})" in caplog.text
    for code in (used, mine, expired):
        assert code not in caplog.text  # only the first group is logged


def test_an_account_redeems_a_code_with_several_uses_once(account, make_account, make_codes):
    [code] = make_codes(uses=3)

    assert redeem(account, code).ok
    again = redeem(account, code)
    assert redeem(make_account(), code).ok

    assert again.reason == "already redeemed by this account"
    assert RedemptionCode.objects.get().uses_left == 1
    assert Balance.objects.get(account=account).amount_usd == Decimal("10")


def test_11_bad_codes_in_a_minute_from_one_account_are_throttled(account, make_codes):
    [good] = make_codes()
    results = [redeem(account, unknown_code(n), ip=f"192.0.2.{n}") for n in range(11)]

    assert [r.outcome for r in results] == [Outcome.INVALID] * 10 + [Outcome.THROTTLED]
    assert results[-1].message == THROTTLED_MESSAGE == "Too many attempts; try again in a minute."
    # Even a good code waits: a throttled attempt never looks at its code.
    assert redeem(account, good, ip="192.0.2.99").outcome is Outcome.THROTTLED
    assert not Redemption.objects.exists()


def test_11_bad_codes_in_a_minute_from_one_address_across_accounts_are_throttled(make_account):
    results = [redeem(make_account(), unknown_code(n)) for n in range(11)]

    assert [r.outcome for r in results] == [Outcome.INVALID] * 10 + [Outcome.THROTTLED]
    assert redeem(make_account(), unknown_code(99), ip="192.0.2.1").outcome is Outcome.INVALID


def test_a_redeemed_code_does_not_count_against_the_throttle(account, make_codes):
    codes = make_codes(12)

    results = [redeem(account, code) for code in codes]

    assert all(r.ok for r in results)


def test_the_throttle_lifts_when_its_window_ends(account, monkeypatch):
    monkeypatch.setattr(codes_throttle, "WINDOW_SECONDS", 1)
    for n in range(10):
        redeem(account, unknown_code(n))
    assert redeem(account, unknown_code(10)).outcome is Outcome.THROTTLED

    import time

    time.sleep(1.2)
    assert redeem(account, unknown_code(11)).outcome is Outcome.INVALID


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"count": 0}, "1 to 10000"),
        ({"count": 10_001}, "1 to 10000"),
        ({"count": 1, "uses": 0}, "at least one use"),
        ({"count": 1, "redeem_by": timezone.now()}, "has passed"),
    ],
)
def test_a_batch_out_of_bounds_is_refused(plan, options, error):
    with pytest.raises(ValueError, match=error):
        code_batch_create(plan=plan, **options)
    assert not CodeBatch.objects.exists()
