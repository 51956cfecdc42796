"""What a new user's first look at the console found, measured in a real
browser at desktop (1280 px) and phone (390 px) width: chart labels clipped or
piled on each other, a table wider than its card, a nav link off the screen,
model ids in capitals, and a "Custom" range that silently did nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.console.test_browser import browser_page, orm, shot  # noqa: F401  (fixture)

EMAIL, PASSWORD = "trial@example.com", "browser-pass-2026"
PHONE = {"width": 390, "height": 844}

# Every text of each chart: its box in the SVG's own units, whether it is an
# x axis label, and the SVG's width.
CHART_TEXTS = """() => [...document.querySelectorAll('.chart svg')].map(svg => ({
  id: svg.closest('.chart').id,
  width: svg.viewBox.baseVal.width,
  texts: [...svg.querySelectorAll('text.tick')].map(t => {
    const box = t.getBBox();
    return {text: t.textContent, x: box.x, right: box.x + box.width,
            xAxis: t.getAttribute('text-anchor') === 'middle'};
  }),
}))"""


def make_trial_usage() -> None:
    """A new account's first day: a handful of requests on two keys, costs of
    fractions of a cent, large token counts on one row, and records with no
    model (a model listing, a refused request)."""
    from django.utils import timezone

    from accounts.models import User
    from keys.services import key_create
    from usage.models import UsageRecord
    from usage.services import usage_rollup

    user = User.objects.create_user(EMAIL, PASSWORD)
    keys = [key_create(account=user.account, name=n)[0] for n in ("demo", "trial-key-renamed")]
    now = timezone.now()
    rows = [
        (keys[0], "codex-auto-review", "0.000376", 1_234_567, 12_345, 1, 200),
        (keys[0], "gpt-5.5", "0.000136", 45, 8, 2, 502),
        (keys[1], "gpt-5.5", "0.000125", 36, 8, 1, 200),
        (keys[1], "gpt-5.4-mini", "0.000013", 12, 5, 3, 200),
        (keys[0], "", "0", 0, 0, 1, 200),
        (keys[1], "", "0", 0, 0, 1, 401),
    ]
    for n, (key, model, cost, prompt, completion, hours, status) in enumerate(rows):
        UsageRecord.objects.create(
            created_at=now - timedelta(hours=hours),
            request_id=f"pb-trial-{n}",
            endpoint="models.list" if not model else "chat.completions",
            status=status,
            account=user.account,
            api_key=key,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=Decimal(cost),
            latency_ms=12_345,
            ttft_ms=1_234,
        )
    usage_rollup()


def log_in(page) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def on_top(page, locator) -> bool:
    """Whether the element is on screen and nothing covers its middle."""
    box = locator.bounding_box()
    assert box is not None
    middle = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
    inside = box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).textContent", middle)
    return inside and hit == locator.text_content()


def assert_chart_labels_fit(page) -> None:
    charts = page.evaluate(CHART_TEXTS)
    assert [c["id"] for c in charts] == ["chart-cost", "chart-requests", "chart-tokens"]
    for chart in charts:
        for text in chart["texts"]:
            assert text["x"] >= 0 and text["right"] <= chart["width"], (chart["id"], text)
        x_axis = sorted((t for t in chart["texts"] if t["xAxis"]), key=lambda t: t["x"])
        assert len(x_axis) >= 3, chart["id"]
        for before, after in zip(x_axis, x_axis[1:], strict=False):
            assert after["x"] - before["right"] >= 4, (chart["id"], before, after)
        y_axis = [t["text"] for t in chart["texts"] if not t["xAxis"]]
        assert len(set(y_axis)) == len(y_axis), (chart["id"], y_axis)


def test_chart_labels_are_whole_apart_and_distinct_on_desktop_and_phone(
    live,
    browser_page,  # noqa: F811
):
    page = browser_page
    orm(make_trial_usage)
    log_in(page)

    page.goto("/usage/?range=24h")
    assert_chart_labels_fit(page)
    assert "$0.0004" in page.locator("#chart-cost svg").text_content()
    x_axis = page.locator("#chart-requests svg text[text-anchor=middle]").all_text_contents()
    assert any(len(label) == 5 and label.endswith(":00") for label in x_axis)  # "22:00"
    y_axis = page.locator("#chart-requests svg text[text-anchor=end]").all_text_contents()
    assert all(label.isdigit() for label in y_axis)  # whole requests only: no 0, 0, 1
    shot(page, "usage-24h-desktop")

    page.set_viewport_size(PHONE)
    assert_chart_labels_fit(page)
    page.goto("/usage/?range=30d")
    assert_chart_labels_fit(page)
    shot(page, "usage-30d-phone")


def test_the_key_and_model_table_fits_its_card_and_scrolls_inside_it_on_a_phone(
    live,
    browser_page,  # noqa: F811
):
    page = browser_page
    orm(make_trial_usage)
    log_in(page)
    page.goto("/usage/?range=7d")
    wrap = "document.querySelector('#usage-table .table-wrap')"

    assert page.evaluate(f"{wrap}.scrollWidth <= {wrap}.clientWidth")
    assert page.get_by_role("columnheader", name="TTFT").is_visible()

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(f"{wrap}.scrollWidth > {wrap}.clientWidth")  # the card scrolls
    page.evaluate("document.querySelector('#usage-table').scrollIntoView()")
    page.evaluate(f"{wrap}.scrollLeft = {wrap}.scrollWidth")
    for cell in (
        page.get_by_role("columnheader", name="Key"),
        page.locator("#usage-table tbody tr").first.locator("td").first,
    ):
        assert on_top(page, cell)  # the key column stays in view, uncovered
    shot(page, "usage-table-phone-scrolled")


def test_every_link_of_the_nav_is_on_screen_on_a_phone(live, browser_page):  # noqa: F811
    page = browser_page
    orm(make_trial_usage)
    log_in(page)
    page.set_viewport_size(PHONE)
    page.goto("/usage/")

    links = page.locator("nav[aria-label=Main] a")
    assert links.all_text_contents() == [
        "Overview",
        "API keys",
        "Usage",
        "Billing",
        "Docs",
        "Pricing",
    ]
    for link in links.all():
        assert on_top(page, link), link.text_content()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "nav-phone")


def test_model_ids_are_shown_exactly_as_spelled_on_every_page(
    live,
    make_model,
    browser_page,  # noqa: F811
):
    page = browser_page
    orm(lambda: make_model("codex-auto-review"))
    orm(make_trial_usage)
    log_in(page)

    page.goto("/pricing/")
    assert page.get_by_role("rowheader").first.inner_text() == "codex-auto-review"
    for url in ("/pricing/", "/docs/", "/usage/?range=7d", "/usage/requests/", "/"):
        page.goto(url)
        ids = page.locator(".model-id")
        assert ids.count() > 0, url
        for shown in ids.all():
            assert shown.inner_text() == shown.text_content(), url  # no text-transform


def test_rows_without_a_model_say_so(live, browser_page):  # noqa: F811
    page = browser_page
    orm(make_trial_usage)
    log_in(page)

    page.goto("/usage/?range=7d&group=model")
    label = page.locator("#usage-table .no-model").first
    assert label.inner_text() == "(no model)"
    assert "GET /v1/models" in label.get_attribute("title")
    legend = page.locator("#chart-cost .legend li", has_text="(no model)")
    assert "GET /v1/models" in legend.get_attribute("title")
    page.goto("/usage/requests/")
    assert page.locator("table.requests .no-model").count() == 2


def test_custom_waits_for_both_days_then_shows_the_report_or_the_error(
    live,
    browser_page,  # noqa: F811
):
    page = browser_page
    orm(make_trial_usage)
    log_in(page)
    page.goto("/usage/?range=7d")
    page.evaluate(
        "window.asked = 0;"
        "document.body.addEventListener('htmx:beforeRequest', () => window.asked++)"
    )

    page.get_by_label("Range").select_option("custom")
    assert (
        page.get_by_label("From:", exact=True).is_visible()
        and page.get_by_label("To:", exact=True).is_visible()
    )
    assert page.evaluate("document.activeElement.name") == "start"
    page.get_by_label("From:", exact=True).fill("2026-03-10")
    assert page.evaluate("window.asked") == 0  # nothing asked with a day missing
    assert "range=7d" in page.url and page.locator("#usage-totals").is_visible()

    page.get_by_label("To:", exact=True).fill("2026-03-01")
    error = page.locator("#usage-errors")
    error.wait_for()
    assert "The last day is before the first." in error.inner_text()
    assert page.evaluate("window.asked") == 1

    page.get_by_label("To:", exact=True).fill("2026-03-12")
    page.locator("#usage-span", has_text="10 Mar 2026 – 12 Mar 2026").wait_for()
    assert error.count() == 0
    assert "range=custom" in page.url and "start=2026-03-10" in page.url
    assert "end=2026-03-12" in page.url
    page.reload()  # the URL alone gives the same view
    assert page.locator("#usage-span").inner_text().startswith("10 Mar 2026 – 12 Mar 2026")
