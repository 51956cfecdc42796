from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.decorators import account_required, current_account
from accounts.forms import LoginForm, ProfileForm, SignUpForm
from accounts.models import User
from accounts.services import account_profile_update, user_sign_up
from console.methods import post_only

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _next_url(request: HttpRequest) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _data(request: HttpRequest):
    return request.POST if request.method == "POST" else None


@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(_data(request))
    if form.is_valid():
        try:
            user = user_sign_up(
                email=form.cleaned_data["email"], password=form.cleaned_data["password"]
            )
        except IntegrityError:  # the same email signed up a moment ago
            form.add_error("email", "An account with this email already exists.")
        else:
            auth_login(request, user, backend=MODEL_BACKEND)
            messages.success(request, "Welcome to PureBridge. Create an API key to get started.")
            return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


@require_http_methods(["GET", "POST"])
def log_in(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request)
    if request.user.is_authenticated:
        return redirect(next_url)
    form = LoginForm(request, data=_data(request))
    if form.is_valid():
        auth_login(request, form.get_user())
        return redirect(next_url)
    return render(request, "accounts/login.html", {"form": form, "next": next_url})


@post_only
def log_out(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    messages.info(request, "You are logged out.")
    return redirect("login")


@account_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    account = current_account(request)
    form = ProfileForm.for_account(account, _data(request))
    if form.is_valid():
        account_profile_update(account=account, **form.cleaned_data)
        messages.success(request, "Profile saved.")
        return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form, "account": account})


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = PasswordChangeForm(user, _data(request))
    if form.is_valid():
        form.save()
        update_session_auth_hash(request, user)  # stay signed in here, out everywhere else
        messages.success(request, "Password changed.")
        return redirect("profile")
    return render(request, "accounts/password-change.html", {"form": form})
