import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from keys.models import ApiKey


def create(*args: str) -> str:
    out = StringIO()
    call_command("createapikey", *args, stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()[-1]


@pytest.mark.django_db
def test_every_key_setting_can_be_given_as_an_option(make_model):
    make_model("m1")
    make_model("m2")

    secret = create(
        "--email",
        "ops@example.com",
        "--name",
        "ci",
        "--rpm",
        "60",
        "--tpm",
        "90000",
        "--quota",
        "100",
        "--daily-budget",
        "5.50",
        "--monthly-budget",
        "80",
        "--models",
        "m1,m2",
        "--expires",
        "2099-01-31",
        "--notify-email",
        "alerts@example.com",
        "--allow-ip",
        "203.0.113.7",
        "--allow-ip",
        "10.0.0.0/8,2001:db8::/32",
    )

    key = ApiKey.objects.get()
    assert secret.startswith("sk-pb-")
    assert (key.rpm_limit, key.tpm_limit) == (60, 90000)
    assert (key.quota_usd, key.daily_budget_usd, key.monthly_budget_usd) == (
        Decimal(100),
        Decimal("5.5"),
        Decimal(80),
    )
    assert key.allowed_models == ["m1", "m2"]
    assert key.expires_at.date() == datetime(2099, 1, 31, tzinfo=UTC).date()
    assert key.notification_email == "alerts@example.com"
    assert key.allowed_ips == ["203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32"]


@pytest.mark.django_db
def test_amounts_are_kept_to_the_micro_dollar_and_the_name_as_the_console_keeps_it():
    create(
        "--email",
        "ops@example.com",
        "--name",
        "  ci  ",
        "--quota",
        "99999999.999999",
        "--daily-budget",
        "0.000125",
        "--monthly-budget",
        "1.50",
    )

    key = ApiKey.objects.get()
    assert key.name == "ci"
    assert (key.quota_usd, key.daily_budget_usd, key.monthly_budget_usd) == (
        Decimal("99999999.999999"),
        Decimal("0.000125"),
        Decimal("1.5"),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rpm", "0"), "whole number of 1 or more"),
        (("--daily-budget", "lots"), "not an amount in USD"),
        (("--daily-budget", "-1"), "greater than or equal to 0"),
        (("--daily-budget", "NaN"), "not an amount in USD"),
        (("--quota", "0.0000001"), "no more than 6 decimal places"),
        (("--monthly-budget", "100000000"), "no more than 8 digits before the decimal point"),
        (("--models", "nope"), "unknown model id(s): nope"),
        (("--expires", "2001-01-01"), "in the past"),
        (("--expires", "soon"), "not an ISO date"),
        (("--notify-email", "not-an-email"), "not a valid email address"),
        (("--name", "x\r\nBcc: a@evil.example"), "cannot contain control characters"),
        (("--name", "tab\there"), "cannot contain control characters"),
        (("--allow-ip", "office"), "“office” is not an IP address or CIDR range"),
        (("--allow-ip", "10.1.2.3/8"), "the range is 10.0.0.0/8"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create("--email", "ops@example.com", *args)
    assert not ApiKey.objects.exists()


def test_a_bad_option_on_the_command_line_gets_usage_and_a_message_not_a_traceback():
    result = subprocess.run(
        [sys.executable, "manage.py", "createapikey", "--email", "ops@example.com", "--rpm", "-5"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "argument --rpm: '-5' is not a whole number of 1 or more" in result.stderr
    assert "usage: manage.py createapikey" in result.stderr
    assert "Traceback" not in result.stderr
