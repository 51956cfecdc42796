"""API keys: shape, storage, hashing, and changes that take effect at once."""

import hashlib
import hmac
import re
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import User
from keys.models import ApiKey
from keys.services import key_create, key_hash, key_parse, key_set_active
from tests.helpers import chat_body, post_chat


def test_secret_is_sk_pb_and_48_letters_or_digits(make_key):
    _, secret = make_key()

    assert re.fullmatch(r"sk-pb-[A-Za-z0-9]{48}", secret)


def test_secrets_are_different_every_time(make_key):
    secrets = {make_key()[1] for _ in range(5)}

    assert len(secrets) == 5


def test_secret_is_nowhere_in_the_stored_row(make_key):
    key, secret = make_key(name="ci")
    random_part = secret.removeprefix("sk-pb-")

    row = ApiKey.objects.filter(pk=key.pk).values().get()

    stored = " ".join(str(value) for value in row.values())
    assert secret not in stored
    # Only the lookup prefix of the random part is kept; the rest never is.
    assert random_part[12:] not in stored
    assert random_part[-12:] not in stored


def test_stored_hash_is_an_hmac_of_the_secret_keyed_with_the_hash_secret(make_key, settings):
    key, secret = make_key()

    expected = hmac.new(
        settings.PUREBRIDGE_KEY_HASH_SECRET.encode(), secret.encode(), hashlib.sha256
    ).hexdigest()
    assert key.secret_hash == expected


def test_display_prefix_is_short_and_starts_like_the_secret(make_key):
    key, secret = make_key()

    assert secret.startswith(key.display_prefix)
    assert len(key.display_prefix) <= 12


def test_key_hash_depends_on_the_hash_secret(settings):
    secret = "sk-pb-" + "a1" * 24
    settings.PUREBRIDGE_KEY_HASH_SECRET = "first-secret"
    first = key_hash(secret)

    settings.PUREBRIDGE_KEY_HASH_SECRET = "second-secret"

    assert key_hash(secret) != first


def test_key_is_refused_once_the_hash_secret_changes(http, api_key, make_model, settings):
    make_model()
    assert post_chat(http, api_key, chat_body()).status_code == 200

    settings.PUREBRIDGE_KEY_HASH_SECRET = "a-different-server-secret"

    assert post_chat(http, api_key, chat_body()).status_code == 401


@pytest.mark.parametrize(
    "raw", ["sk-pb-", "sk-pb-" + "a" * 47, "sk-pb-" + "é" * 48, "SK-PB-" + "a" * 48, ""]
)
def test_key_parse_refuses_keys_that_are_not_purebridge_shaped(raw):
    assert key_parse(raw) is None


def test_key_expiring_while_cached_is_refused_from_its_expiry(http, make_key, make_model):
    make_model()
    _, secret = make_key(expires_at=timezone.now() + timedelta(seconds=1.5))
    assert post_chat(http, secret, chat_body()).status_code == 200  # cached now

    time.sleep(1.6)

    assert post_chat(http, secret, chat_body()).status_code == 401


def test_bearer_scheme_is_case_insensitive(http, api_key, make_model):
    make_model()

    response = post_chat(http, None, chat_body(), headers={"Authorization": f"bearer {api_key}"})

    assert response.status_code == 200


def test_new_key_works_at_once(http, make_key, make_model):
    make_model()
    _, secret = make_key()

    assert post_chat(http, secret, chat_body()).status_code == 200


def test_key_created_after_a_refused_attempt_works_at_once(http, account, make_model, settings):
    """A refused lookup is cached briefly; creating the key clears that at once."""
    make_model()
    secret = "sk-pb-" + "Q" * 48
    assert post_chat(http, secret, chat_body()).status_code == 401

    ApiKey.objects.create(
        account=account,
        name="late",
        lookup=key_parse(secret).lookup,
        secret_hash=key_hash(secret),
        display_prefix=secret[:12],
    )

    assert post_chat(http, secret, chat_body()).status_code == 200


def test_key_disabled_with_key_set_active_is_refused_on_the_next_request(
    http, make_key, make_model
):
    make_model()
    key, secret = make_key()
    assert post_chat(http, secret, chat_body()).status_code == 200

    key_set_active(api_key=key, active=False)

    assert post_chat(http, secret, chat_body()).status_code == 401


def test_key_disabled_with_save_is_refused_on_the_next_request(http, make_key, make_model):
    make_model()
    key, secret = make_key()
    assert post_chat(http, secret, chat_body()).status_code == 200

    key.is_active = False
    key.save()

    assert post_chat(http, secret, chat_body()).status_code == 401


def test_key_enabled_again_works_on_the_next_request(http, make_key, make_model):
    make_model()
    key, secret = make_key()
    key_set_active(api_key=key, active=False)
    assert post_chat(http, secret, chat_body()).status_code == 401

    key_set_active(api_key=key, active=True)

    assert post_chat(http, secret, chat_body()).status_code == 200


def test_deleted_key_is_refused_on_the_next_request(http, make_key, make_model):
    make_model()
    key, secret = make_key()
    assert post_chat(http, secret, chat_body()).status_code == 200

    key.delete()

    assert post_chat(http, secret, chat_body()).status_code == 401


def test_narrowed_allowed_models_apply_on_the_next_request(http, make_key, make_model):
    make_model("a")
    make_model("b")
    key, secret = make_key()
    assert post_chat(http, secret, chat_body("b")).status_code == 200

    key.allowed_models = ["a"]
    key.save()

    assert post_chat(http, secret, chat_body("b")).status_code == 404


def test_key_of_another_account_works_for_its_own_account(
    http, make_key, make_model, usage_records
):
    make_model()
    other = User.objects.create_user("other@example.com", "pw").account
    _, secret = key_create(account=other, name="theirs")

    post_chat(http, secret, chat_body())

    [record] = usage_records()
    assert record.account_id == other.id


def createapikey(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("createapikey", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_createapikey_creates_the_account_when_needed(transactional_db):
    createapikey("--email", "New.Person@Example.com", "--name", "laptop")

    user = User.objects.get(email="new.person@example.com")
    assert list(ApiKey.objects.filter(account=user.account).values_list("name", flat=True)) == [
        "laptop"
    ]


def test_createapikey_reuses_an_existing_account(transactional_db):
    createapikey("--email", "dev@example.com", "--name", "one")
    createapikey("--email", "dev@example.com", "--name", "two")

    assert User.objects.filter(email="dev@example.com").count() == 1
    assert ApiKey.objects.filter(account__users__email="dev@example.com").count() == 2


def test_createapikey_prints_the_secret_as_the_last_line(transactional_db):
    out, _ = createapikey("--email", "dev@example.com", "--name", "ci")

    last = out.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(r"sk-pb-[A-Za-z0-9]{48}", last)
    assert key_hash(last) == ApiKey.objects.get().secret_hash


def test_createapikey_secret_works_against_the_live_server(http, make_model):
    make_model()
    out, _ = createapikey("--email", "dev@example.com", "--name", "ci")
    secret = out.rstrip("\n").splitlines()[-1]

    response = post_chat(http, secret, chat_body())

    assert response.status_code == 200


def test_createapikey_refuses_an_invalid_email(transactional_db):
    with pytest.raises(CommandError):
        createapikey("--email", "not-an-email")

    assert User.objects.count() == 0
