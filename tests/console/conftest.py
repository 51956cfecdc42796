from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.web import (  # noqa: F401  (fixtures)
    _fast_password_hashing,
    anonymous_client,
    browser_like_client,
)


def call_v1(base_url: str, secret: str, model: str | None = None) -> int:
    """The status of GET /v1/models, or of a chat completion when a model is given."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    data = None
    url = f"{base_url}/v1/models"
    if model is not None:
        url = f"{base_url}/v1/chat/completions"
        data = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    request = urllib.request.Request(url, data=data.encode() if data else None, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def live(live):
    """The shared server, with this test's usage records written before the
    database is emptied: a record left behind would name a deleted account
    and hold up the writer for the tests after it. The gateway hands a record
    over just after sending the response, hence the pause before the flush."""
    from usage.recorder import get_recorder

    yield live
    time.sleep(0.2)
    assert get_recorder().flush(10), "usage writer did not drain"


@pytest.fixture
def v1():
    return call_v1


@pytest.fixture
def outsider(transactional_db):
    from accounts.models import User

    return User.objects.create_user("outsider@example.com", "pw-outsider-1234")


@pytest.fixture
def outsider_client(outsider):
    return browser_like_client(outsider)


@pytest.fixture
def owner_key(make_key):
    """A key of the owner's account, and its secret."""
    return make_key(name="ci-runner", daily_budget_usd="5.00", rpm_limit=60)
