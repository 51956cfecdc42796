"""The request log in a real browser: requests made through the gateway to the
fake upstream, found by the client's X-Client-Request-Id, opened, and the log
downloaded as CSV. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import csv
import io

import httpx2

from tests.console.test_browser import browser_page, orm, shot  # noqa: F401  (fixture)
from tests.helpers import chat_body, post_chat


def make_user_with_key(model: str) -> str:
    from accounts.models import User
    from keys.services import key_create

    user = User.objects.create_user("logger@example.com", "browser-pass-2026")
    user.account.timezone = "Europe/Paris"
    user.account.save()
    return key_create(account=user.account, name="nightly-agent", allowed_models=[model])[1]


def records_newest_first() -> list[dict]:
    from usage.models import UsageRecord

    return list(
        UsageRecord.objects.order_by("-created_at", "-id").values(
            "request_id", "upstream_request_id", "client_request_id", "status", "cost_usd"
        )
    )


def test_find_a_request_by_its_client_id_open_it_and_download_the_log(
    live,
    make_model,
    usage_records,
    browser_page,  # noqa: F811  (the fixture imported above)
):
    page = browser_page
    model = orm(lambda: make_model("echo-test").public_id)
    secret = orm(lambda: make_user_with_key(model))
    with httpx2.Client(base_url=live.url, timeout=20) as http:
        for n in range(4):
            headers = {"X-Client-Request-Id": f"ticket-{n}"}
            assert post_chat(http, secret, chat_body(model), headers).status_code == 200
        assert post_chat(http, secret, chat_body("no-such-model")).status_code == 404
    assert len(orm(usage_records)) == 5
    records = orm(records_newest_first)

    page.goto("/login/")
    page.get_by_label("Email").fill("logger@example.com")
    page.get_by_label("Password").fill("browser-pass-2026")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    page.goto("/usage/requests/")
    assert page.locator("table.requests tbody tr").count() == 5
    shot(page, "request-log")

    page.get_by_label("Find a request").fill("ticket-2")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url("**/usage/requests/?q=ticket-2")
    page.locator("table.requests tbody tr").first.wait_for()
    assert page.locator("table.requests tbody tr").count() == 1
    wanted = next(r for r in records if r["client_request_id"] == "ticket-2")
    page.get_by_role("link", name=wanted["request_id"]).click()

    page.get_by_role("heading", name=wanted["request_id"]).wait_for()
    body = page.inner_text("body")
    assert "ticket-2" in body and wanted["upstream_request_id"] in body
    assert "nightly-agent" in body and "the ones this request was charged at" in body
    assert page.locator("table.attempts tbody tr").count() == 1
    shot(page, "request-page")

    page.get_by_role("link", name="Request log").click()
    page.get_by_role("heading", name="Request log").wait_for()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = download.value.path().read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(row["request_id"], row["client_request_id"], row["status"]) for row in rows] == [
        (r["request_id"], r["client_request_id"], str(r["status"])) for r in records
    ]
    assert [row["upstream_request_id"] for row in rows] == [
        r["upstream_request_id"] for r in records
    ]
    assert "time (Europe/Paris)" in rows[0]
