"""What the usage benchmarks (benchmarks/rollup.py, benchmarks/usage_scale.py)
share: Django set up in the script's own process (they work in the database
directly), the throwaway database migrated, and one account in Asia/Tokyo with
its keys. The models the records are spread over are MODELS.

    from harness import usage_setup

    usage_setup.django()  # before importing any model
    account, keys = usage_setup.bench_account("bench@example.com")
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from harness.base import ROOT

if TYPE_CHECKING:
    from accounts.models import Account
    from keys.models import ApiKey

KEYS = 20
MODELS = [f"model-{i}" for i in range(6)]
ZONE = "Asia/Tokyo"


def django() -> None:
    """Settings from the environment (scripts/with-services.sh), apps loaded."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purebridge.settings")
    import django as django_

    django_.setup()


def bench_account(email: str, *, keys: int = KEYS) -> tuple[Account, list[ApiKey]]:
    """Migrate, then one user whose account is in ZONE, with `keys` API keys
    named key-0, key-1…"""
    from django.core.management import call_command

    from accounts.models import User
    from keys.services import key_create

    call_command("migrate", verbosity=0)
    account = User.objects.create_user(email).account
    account.timezone = ZONE
    account.save()
    return account, [key_create(account=account, name=f"key-{i}")[0] for i in range(keys)]
