"""The console in a real browser: Playwright driving Debian's Chromium against
the live server. Saves screenshots of the main pages to
test-artifacts/screenshots/ (git-ignored) for anyone to look at.

Playwright's sync API keeps an event loop running on this thread, so Django
refuses ORM calls here while a page is open; `orm()` runs them on a thread of
their own instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from django.core import mail

from tests.console.conftest import call_v1

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SECRET = re.compile(r"^sk-pb-[A-Za-z0-9]{48}$")
T = TypeVar("T")


def orm(fn: Callable[[], T]) -> T:
    def run() -> T:
        from django.db import connection

        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def browser_page(live, settings) -> Iterator:
    """A fresh browser page on the live server (requested last by each test, so
    the database fixtures are set up before Playwright's loop starts)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    settings.PUREBRIDGE_API_BASE_URL = live.url
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("dialog", lambda dialog: dialog.accept())
        try:
            yield page
        finally:
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_up(page, email: str, password: str = "browser-pass-2026") -> None:
    page.goto("/")
    shot(page, "landing")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/")


def wait_for_usage(count: int) -> None:
    """Until `count` usage records exist. The gateway hands a record to the
    writer just after the response is sent, so a client can be faster than
    a plain flush."""
    from usage.models import UsageRecord
    from usage.recorder import get_recorder

    for _ in range(100):
        assert get_recorder().flush(10)
        if orm(UsageRecord.objects.filter(status=200).count) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} usage records were written")


def test_sign_up_create_key_call_the_api_disable_and_rotate(live, make_model, browser_page):
    page = browser_page
    base = live.url
    model = orm(lambda: make_model("echo-test").public_id)
    sign_up(page, "browser@example.com")
    assert page.get_by_role("heading", name="Overview").is_visible()
    shot(page, "overview-empty")

    page.get_by_role("link", name="Create key").first.click()
    page.get_by_label("Name").fill("browser-test")
    page.get_by_label(model).check()
    page.get_by_label("Daily budget").fill("5")
    shot(page, "create-key-form")
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("You will not see this again").wait_for()
    secret = page.locator("#new-secret").input_value()
    assert SECRET.match(secret)
    page.get_by_role("button", name="Copy secret").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shot(page, "create-key-secret")

    assert call_v1(base, secret, model) == 200
    wait_for_usage(1)
    page.get_by_role("link", name="go to the key").click()
    page.get_by_role("heading", name="browser-test").wait_for()
    assert page.locator("table.requests tbody tr").count() == 1
    assert "echo-test" in page.locator("table.requests").inner_text()
    assert "of $5.00 daily budget" in page.inner_text("body")
    shot(page, "key-page")

    questions: list[str] = []
    page.on("dialog", lambda dialog: questions.append(dialog.message))
    page.get_by_role("button", name="Disable").click()
    page.locator("#key-summary .badge", has_text="Disabled").wait_for()
    assert questions == ["Disable browser-test? Requests with it are refused at once."]
    assert call_v1(base, secret, model) == 401
    page.get_by_role("button", name="Enable").click()
    page.locator("#key-summary .badge", has_text="Active").wait_for()
    assert call_v1(base, secret, model) == 200

    page.get_by_role("link", name="Rotate secret").click()
    page.get_by_label("1 hour").check()
    page.get_by_role("button", name="Rotate secret").click()
    page.get_by_text("You will not see this again").wait_for()
    new_secret = page.locator("#new-secret").input_value()
    assert SECRET.match(new_secret) and new_secret != secret
    assert call_v1(base, secret, model) == 200
    assert call_v1(base, new_secret, model) == 200

    def end_grace_period() -> None:
        from django.utils import timezone

        from keys.models import ApiKey

        key = ApiKey.objects.get(name="browser-test")
        key.previous_valid_until = timezone.now() - timedelta(seconds=1)
        key.save()  # post_save invalidates both lookups, as any change does

    orm(end_grace_period)
    assert call_v1(base, secret, model) == 401
    assert call_v1(base, new_secret, model) == 200
    wait_for_usage(5)

    page.goto("/keys/")
    assert "browser-test" in page.inner_text("table")
    assert secret not in page.content() and new_secret not in page.content()
    shot(page, "keys-list")
    page.goto("/")
    assert page.locator("table.requests tbody tr").count() == 5
    shot(page, "overview")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "overview-phone")
    page.goto("/keys/")
    shot(page, "keys-list-phone")


def test_password_reset_end_to_end_through_the_outbox(transactional_db, browser_page):
    page = browser_page

    def make_user() -> None:
        from accounts.models import User

        User.objects.create_user("forgetful@example.com", "old-password-1")

    orm(make_user)
    page.goto("/login/")
    shot(page, "login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("forgetful@example.com")
    page.get_by_role("button", name="Send reset link").click()
    page.get_by_role("heading", name="Check your email").wait_for()

    [message] = mail.outbox
    link = re.search(r"http://\S+/password-reset/\S+/\S+/", message.body).group(0)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill("fresh-password-2")
    page.get_by_label("New password confirmation").fill("fresh-password-2")
    page.get_by_role("button", name="Set new password").click()
    page.get_by_role("heading", name="Your password is set").wait_for()

    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill("forgetful@example.com")
    page.get_by_label("Password").fill("fresh-password-2")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def test_docs_show_this_sites_base_url_and_models_and_the_picker_changes_snippets(
    make_model, browser_page
):
    page = browser_page
    orm(lambda: (make_model("alpha-model"), make_model("beta-model")))
    page.goto("/docs/")
    base = page.locator("#api-base").inner_text()
    assert base == page.url.split("/docs")[0]
    options = page.locator("#model-picker option").all_inner_texts()
    assert options == ["alpha-model", "beta-model"]
    assert '"alpha-model"' in page.locator("#snippet-python").inner_text()
    assert f"{base}/v1" in page.locator("#snippet-env").inner_text()
    shot(page, "docs")

    page.select_option("#model-picker", "beta-model")
    page.locator("#snippet-python", has_text='"beta-model"').wait_for()
    for snippet in ("chat", "verify", "env", "codex", "opencode", "aider", "continue", "cline"):
        text = page.locator(f"#snippet-{snippet}").inner_text()
        assert "beta-model" in text and "alpha-model" not in text, snippet
    assert page.url.endswith("?model=beta-model")


def key_row(key_id: int) -> dict:
    from keys.models import ApiKey

    return ApiKey.objects.values().get(pk=key_id)


def test_a_keys_edit_page_saved_unchanged_says_saved_and_changes_nothing(
    live, make_model, browser_page
):
    page = browser_page
    model = orm(lambda: make_model("echo-test").public_id)

    def make_key() -> tuple[int, dict]:
        from datetime import UTC, datetime, time
        from decimal import Decimal

        from django.utils import timezone

        from accounts.models import User
        from keys.services import key_create

        user = User.objects.create_user("editor@example.com", "browser-pass-2026")
        user.account.timezone = "Asia/Tokyo"
        user.account.save()
        key, _ = key_create(
            account=user.account,
            name="budgeted",
            # createapikey's end of a day: seconds the datetime-local input does not show
            expires_at=datetime.combine(timezone.now().date() + timedelta(days=9), time.max, UTC),
            allowed_models=[model],
            rpm_limit=60,
            tpm_limit=90000,
            daily_budget_usd=Decimal("1.50"),
            monthly_budget_usd=Decimal("40"),
            quota_usd=Decimal("0.000125"),
            notification_email="alerts@example.com",
        )
        return key.pk, key_row(key.pk)

    key_id, before = orm(make_key)
    page.goto("/login/")
    page.get_by_label("Email").fill("editor@example.com")
    page.get_by_label("Password").fill("browser-pass-2026")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()

    page.goto(f"/keys/{key_id}/edit/")
    assert page.get_by_label("Daily budget").input_value() == "1.5"
    assert page.get_by_label("Total quota").input_value() == "0.000125"
    shot(page, "edit-key")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved budgeted.").wait_for()

    assert page.url.endswith(f"/keys/{key_id}/")
    assert orm(lambda: key_row(key_id)) == before
