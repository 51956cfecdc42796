from __future__ import annotations

import itertools

import pytest

from tests.web import _fast_password_hashing, anonymous_client  # noqa: F401  (fixtures)

_n = itertools.count()


@pytest.fixture
def email():
    """A fresh address per test: login throttle counters live in Redis across tests."""
    return f"user{next(_n)}-{id(object())}@example.com"


@pytest.fixture
def user(transactional_db, email):
    from accounts.models import User

    return User.objects.create_user(email, "correct-horse-battery")
