from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Account, User
from accounts.throttle import LIMIT
from tests.web import post


def test_sign_up_creates_a_user_with_an_account_and_signs_in(anonymous_client, email):
    response = post(
        anonymous_client, "/signup/", {"email": email.upper(), "password": "pb-s3cret-pass"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(email=email)
    assert isinstance(user.account, Account)
    assert user.check_password("pb-s3cret-pass")
    assert b"Overview" in anonymous_client.get("/").content


def test_sign_up_errors_are_shown_next_to_the_fields(anonymous_client, user):
    response = post(anonymous_client, "/signup/", {"email": user.email, "password": "12345678"})

    page = response.content.decode()
    assert "An account with this email already exists" in page
    assert User.objects.count() == 1


def test_a_taken_email_and_a_short_password_are_both_told_at_once(anonymous_client, user):
    response = post(anonymous_client, "/signup/", {"email": user.email, "password": "pb-1"})

    page = response.content.decode()
    assert "An account with this email already exists" in page
    assert "This password is too short." in page


def test_an_invalid_email_and_a_password_like_it_are_both_told(anonymous_client):
    response = post(
        anonymous_client, "/signup/", {"email": "mallory.example", "password": "mallory.example"}
    )

    page = response.content.decode()
    assert "Enter a valid email address." in page
    assert "The password is too similar to the email." in page


def test_a_weak_password_is_refused_inline(anonymous_client, email):
    response = post(anonymous_client, "/signup/", {"email": email, "password": "password"})

    assert "This password is too common." in response.content.decode()
    assert not User.objects.filter(email=email).exists()


def test_sign_up_without_csrf_token_is_refused(anonymous_client, email):
    response = anonymous_client.post("/signup/", {"email": email, "password": "pb-s3cret-pass"})

    assert response.status_code == 403
    assert not User.objects.filter(email=email).exists()


def test_log_in_goes_to_the_page_asked_for(anonymous_client, user):
    response = post(
        anonymous_client,
        "/login/",
        {"username": user.email, "password": "correct-horse-battery", "next": "/keys/"},
    )

    assert response["Location"] == "/keys/"


def test_log_in_never_redirects_to_another_site(anonymous_client, user):
    response = post(
        anonymous_client,
        "/login/?next=https://evil.example/",
        {"username": user.email, "password": "correct-horse-battery"},
    )

    assert response["Location"] == "/"


def test_a_wrong_password_is_an_inline_error(anonymous_client, user):
    response = post(anonymous_client, "/login/", {"username": user.email, "password": "nope"})

    assert response.status_code == 200
    assert "That email and password do not match an account." in response.content.decode()


def test_log_in_without_csrf_token_is_refused(anonymous_client, user):
    response = anonymous_client.post(
        "/login/", {"username": user.email, "password": "correct-horse-battery"}
    )

    assert response.status_code == 403


def test_repeated_failures_throttle_that_email_from_that_address(anonymous_client, user):
    for _ in range(LIMIT):
        post(anonymous_client, "/login/", {"username": user.email, "password": "wrong"})

    response = post(
        anonymous_client, "/login/", {"username": user.email, "password": "correct-horse-battery"}
    )

    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in anonymous_client.session


def test_the_throttle_does_not_lock_the_owner_out_from_elsewhere(anonymous_client, user):
    for _ in range(LIMIT):
        post(anonymous_client, "/login/", {"username": user.email, "password": "wrong"})
    elsewhere = Client(enforce_csrf_checks=True, REMOTE_ADDR="203.0.113.9")

    response = post(
        elsewhere, "/login/", {"username": user.email, "password": "correct-horse-battery"}
    )

    assert response.status_code == 302


def test_a_successful_log_in_clears_earlier_failures(anonymous_client, user):
    for _ in range(LIMIT - 1):
        post(anonymous_client, "/login/", {"username": user.email, "password": "wrong"})
    post(anonymous_client, "/login/", {"username": user.email, "password": "correct-horse-battery"})
    anonymous_client.logout()

    post(anonymous_client, "/login/", {"username": user.email, "password": "wrong"})
    response = post(
        anonymous_client, "/login/", {"username": user.email, "password": "correct-horse-battery"}
    )

    assert response.status_code == 302


@pytest.mark.parametrize("method", ["get", "post"])
def test_log_out_is_post_only(anonymous_client, user, method):
    anonymous_client.force_login(user)

    if method == "get":
        assert anonymous_client.get("/logout/").status_code == 405
        assert "_auth_user_id" in anonymous_client.session
    else:
        response = post(anonymous_client, "/logout/")
        assert response["Location"] == "/login/"
        assert "_auth_user_id" not in anonymous_client.session


def test_log_out_without_csrf_token_is_refused(anonymous_client, user):
    anonymous_client.force_login(user)

    assert anonymous_client.post("/logout/").status_code == 403
    assert "_auth_user_id" in anonymous_client.session
