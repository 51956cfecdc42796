"""Plans in loadconfig's [[plans]]: created, unchanged the second time,
updated, checked, and deactivated (never deleted) by --prune."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Plan

PLANS = """
[[plans]]
name = "starter"
title = "Starter"
price = "5.00"
credit_usd = "5"
credit_valid_days = 365

[[plans]]
name = "team"
title = "Team"
price = "50"
currency = "EUR"
credit_usd = "55.5"
recommended = true
display_order = 1
"""


def load(tmp_path, text: str, *args: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    out = StringIO()
    call_command("loadconfig", str(path), *args, stdout=out)
    return out.getvalue()


def test_plans_are_created_then_left_unchanged(tmp_path, transactional_db):
    first = load(tmp_path, PLANS)
    second = load(tmp_path, PLANS)

    assert "created plan starter" in first and "created plan team" in first
    assert "unchanged plan starter" in second and "unchanged plan team" in second
    team = Plan.objects.get(name="team")
    assert (team.price, team.currency, team.credit_usd) == (50, "eur", Decimal("55.5"))
    assert team.recommended and Plan.objects.get(name="starter").credit_valid_days == 365


def test_a_changed_plan_is_updated_and_prune_deactivates_the_others(tmp_path, transactional_db):
    load(tmp_path, PLANS)
    starter_only = '[[plans]]\nname = "starter"\nprice = "6.00"\ncredit_usd = "5"\n'

    output = load(tmp_path, starter_only, "--prune")

    assert "updated plan starter" in output
    assert "removed plan team (deactivated)" in output
    assert Plan.objects.get(name="starter").price == 6
    assert Plan.objects.get(name="team").active is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[plans]]\nname = "x"\nprice = 5.0\ncredit_usd = "5"', "as strings"),
        ('[[plans]]\nname = "x"\nprice = "5"', "`credit_usd` is required"),
        ('[[plans]]\nname = "x"\nprice = "5"\ncredit_usd = "5"\ncurrency = "dollars"', "currency"),
        ('[[plans]]\nname = "x"\nprice = "5"\ncredit_usd = "5"\nbonus = 1', "unknown field"),
    ],
)
def test_a_wrong_plan_is_refused_with_where_and_why(tmp_path, transactional_db, text, message):
    with pytest.raises(CommandError, match=message):
        load(tmp_path, text)
    assert not Plan.objects.exists()
