from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import pytest

from tests.web import (  # noqa: F401  (fixtures)
    _fast_password_hashing,
    anonymous_client,
    browser_like_client,
)

_n = itertools.count()


@pytest.fixture(autouse=True)
def _fresh_redeem_throttle(monkeypatch):
    """Throttle counters of this test only: they live in Redis for a minute,
    and the test client's address is always 127.0.0.1."""
    from billing import codes_throttle

    monkeypatch.setattr(codes_throttle, "NAMESPACE", f"redeem-failures-{uuid.uuid4().hex}")


@pytest.fixture
def plan(transactional_db):
    from billing.models import Plan

    return Plan.objects.create(
        name="starter", title="Starter", price=Decimal("10.00"), credit_usd=Decimal("10")
    )


@pytest.fixture
def make_account(transactional_db):
    """Another account (with one user) each call."""
    from accounts.models import User

    def make():
        return User.objects.create_user(f"user{next(_n)}@example.com", "pw-user-123456").account

    return make


@pytest.fixture
def make_codes(plan):
    """Codes of a new batch (for `plan` unless another is given)."""
    from billing.codes import code_batch_create

    def make(count: int = 1, **options) -> list[str]:
        options.setdefault("plan", plan)
        return code_batch_create(count=count, **options)[1]

    return make


@pytest.fixture
def admin_client(transactional_db):
    from accounts.models import User

    return browser_like_client(User.objects.create_superuser("admin@example.com", "pw-admin-1234"))
