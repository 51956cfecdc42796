"""The usage page in a real browser: filters swap the report through htmx,
without a full reload, and put themselves in the URL. Saves screenshots of
the page at desktop and phone width to test-artifacts/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.console.test_browser import browser_page, orm, shot  # noqa: F401  (fixture)

PASSWORD = "browser-pass-2026"


def make_usage() -> None:
    """A user with two keys and two models, used an hour ago and three days ago."""
    from django.utils import timezone

    from accounts.models import User
    from keys.services import key_create
    from usage.models import UsageRecord
    from usage.services import usage_rollup

    user = User.objects.create_user("usage@example.com", PASSWORD)
    user.account.timezone = "Asia/Tokyo"
    user.account.save()
    keys = [key_create(account=user.account, name=name)[0] for name in ("ci-runner", "agent")]
    now = timezone.now()
    n = 0
    for hours in (1, 2, 5, 30, 72, 100):
        for key, model, cost in ((keys[0], "gpt-small", "0.25"), (keys[1], "gpt-large", "1.5")):
            n += 1
            UsageRecord.objects.create(
                created_at=now - timedelta(hours=hours),
                request_id=f"pb-browser-{n}",
                endpoint="chat.completions",
                status=502 if n % 5 == 0 else 200,
                account=user.account,
                api_key=key,
                model=model,
                prompt_tokens=1000 * n,
                cached_tokens=200 * n,
                completion_tokens=300 * n,
                reasoning_tokens=50 * n,
                cost_usd=Decimal(cost) * n,
                latency_ms=400 + n,
                ttft_ms=90 + n,
            )
    usage_rollup()


def test_switching_range_and_grouping_swaps_the_report_without_a_reload(
    live,
    browser_page,  # noqa: F811
):
    page = browser_page
    orm(make_usage)
    page.goto("/login/")
    page.get_by_label("Email").fill("usage@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()

    page.get_by_role("link", name="Usage").click()
    page.get_by_role("heading", name="Usage").wait_for()
    assert page.locator("table.usage-table tbody tr").count() == 2
    assert "daily" in page.locator("#usage-span").inner_text()
    page.evaluate("window.usageMarker = 'still here'")

    page.get_by_label("Range").select_option("24h")
    page.locator("#usage-span", has_text="hourly").wait_for()
    assert "range=24h" in page.url
    assert page.evaluate("window.usageMarker") == "still here"
    assert page.locator("#chart-requests details table tbody tr").count() == 24
    assert page.locator("#chart-requests rect.s-error").count() == 1  # the 5-hour-old error

    page.get_by_label("Group by").select_option("model")
    page.locator("#chart-cost .legend", has_text="gpt-large").wait_for()
    assert "group=model" in page.url and "range=24h" in page.url
    assert "ci-runner" not in page.locator("#chart-cost .legend").inner_text()
    assert page.evaluate("window.usageMarker") == "still here"

    page.get_by_label("Key").select_option(label="agent")
    page.locator("table.usage-table tbody tr").nth(1).wait_for(state="detached")
    assert page.locator("table.usage-table tbody tr").count() == 1
    assert page.evaluate("window.usageMarker") == "still here"

    page.reload()  # the URL alone gives the same view
    assert page.get_by_label("Group by").input_value() == "model"
    assert page.locator("table.usage-table tbody tr").count() == 1
    assert page.evaluate("window.usageMarker") is None

    page.goto("/usage/?range=30d")
    shot(page, "usage-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.querySelector('#chart-cost svg').getBoundingClientRect().width")
    assert width <= 390
    shot(page, "usage-phone")
    page.locator("#chart-tokens details summary").click()
    assert page.locator("#chart-tokens details table tbody tr").count() == 30
