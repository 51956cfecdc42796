from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import User
from tests.web import post

LINK = re.compile(r"http://testserver(/password-reset/[^/\s]+/[^/\s]+/)")


def test_password_reset_by_email_end_to_end(anonymous_client, user):
    response = post(anonymous_client, "/password-reset/", {"email": user.email})

    assert response["Location"] == "/password-reset/sent/"
    [message] = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "Reset your PureBridge password"
    assert message.alternatives and "Choose a new password" in message.alternatives[0][0]
    link = LINK.search(message.body).group(1)
    form_url = anonymous_client.get(link)["Location"]  # Django swaps the token for a session
    done = post(
        anonymous_client,
        form_url,
        {"new_password1": "brand-new-pass-42", "new_password2": "brand-new-pass-42"},
    )
    assert done["Location"] == "/password-reset/done/"
    user.refresh_from_db()
    assert user.check_password("brand-new-pass-42")


def test_an_unknown_email_gets_the_same_answer_and_no_mail(anonymous_client, transactional_db):
    response = post(anonymous_client, "/password-reset/", {"email": "nobody@example.com"})

    assert response["Location"] == "/password-reset/sent/"
    assert mail.outbox == []


def test_an_account_made_by_createapikey_can_set_its_first_password(anonymous_client, email):
    from accounts.services import account_get_or_create_for_email

    account_get_or_create_for_email(email=email)

    post(anonymous_client, "/password-reset/", {"email": email})

    assert len(mail.outbox) == 1


def test_a_used_reset_link_is_refused(anonymous_client, user):
    post(anonymous_client, "/password-reset/", {"email": user.email})
    link = LINK.search(mail.outbox[0].body).group(1)
    form_url = anonymous_client.get(link)["Location"]
    post(
        anonymous_client,
        form_url,
        {"new_password1": "brand-new-pass-42", "new_password2": "brand-new-pass-42"},
    )

    again = anonymous_client.get(link, follow=True)

    assert "This link has expired" in again.content.decode()


def test_change_password_needs_the_old_one_and_keeps_the_session(anonymous_client, user):
    anonymous_client.force_login(user)

    wrong = post(
        anonymous_client,
        "/account/password/",
        {
            "old_password": "nope",
            "new_password1": "another-pass-77",
            "new_password2": "another-pass-77",
        },
    )
    right = post(
        anonymous_client,
        "/account/password/",
        {
            "old_password": "correct-horse-battery",
            "new_password1": "another-pass-77",
            "new_password2": "another-pass-77",
        },
    )

    assert "Your old password was entered incorrectly" in wrong.content.decode()
    assert right["Location"] == "/account/"
    assert anonymous_client.get("/account/").status_code == 200
    user.refresh_from_db()
    assert user.check_password("another-pass-77")


def test_profile_sets_time_zone_and_default_notification_email(anonymous_client, user):
    anonymous_client.force_login(user)

    response = post(
        anonymous_client,
        "/account/",
        {"name": "Acme", "timezone": "Europe/Berlin", "notification_email": "ops@acme.test"},
    )

    assert response["Location"] == "/account/"
    account = User.objects.get(pk=user.pk).account
    assert (account.name, account.timezone, account.notification_email) == (
        "Acme",
        "Europe/Berlin",
        "ops@acme.test",
    )


def test_an_unknown_time_zone_is_an_inline_error(anonymous_client, user):
    anonymous_client.force_login(user)

    response = post(anonymous_client, "/account/", {"name": "x", "timezone": "Mars/Olympus"})

    assert "Select a valid choice" in response.content.decode()
    assert User.objects.get(pk=user.pk).account.timezone == "UTC"


@pytest.mark.parametrize("url", ["/account/", "/account/password/"])
def test_signed_out_visitor_is_sent_to_log_in(anonymous_client, url):
    response = anonymous_client.get(url)

    assert response["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize("url", ["/account/", "/account/password/"])
def test_profile_posts_without_csrf_token_are_refused(anonymous_client, user, url):
    anonymous_client.force_login(user)

    response = anonymous_client.post(url, {"name": "x", "timezone": "UTC"})

    assert response.status_code == 403


def test_each_user_sees_and_changes_only_their_own_profile(anonymous_client, user):
    other = User.objects.create_user("other-profile@example.com", "pw-other-1234")
    anonymous_client.force_login(user)

    post(anonymous_client, "/account/", {"name": "Mine", "timezone": "UTC"})

    other.refresh_from_db()
    assert other.account.name == "other-profile@example.com"
    assert "other-profile@example.com" not in anonymous_client.get("/account/").content.decode()
