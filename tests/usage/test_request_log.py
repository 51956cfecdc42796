"""The request log (/usage/requests/) and one request's page: scoped to the
signed-in account, keyset pages, search by any of the three request ids,
filters in the URL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.usage.log_support import T0, many, record
from tests.web import browser_like_client
from usage.log import Cursor, Filters, log_page
from usage.models import UsageRecord

LOG = "/usage/requests/"


@pytest.fixture
def other_account(transactional_db):
    from accounts.models import User

    return User.objects.create_user("outsider@example.com", "pw-outsider-1234").account


@pytest.fixture
def outsider_client(other_account):
    return browser_like_client(other_account.users.get())


def request_ids(html: str) -> list[str]:
    """The PureBridge request ids of the log's rows, in order."""
    return re.findall(r'title="PureBridge request id: open the request">([^<]+)</a>', html)


def older_link(html: str) -> str | None:
    found = re.search(r'<a class="btn btn-sm" href="([^"]+)"[^>]*rel="next"', html)
    return found and found.group(1).replace("&amp;", "&")


def test_the_urls_are_named():
    assert reverse("usage:log") == LOG
    assert reverse("usage:log_export") == LOG + "export.csv"
    assert reverse("usage:request", args=["pb-1"]) == LOG + "pb-1/"


def test_logged_out_visitor_is_sent_to_log_in(transactional_db):
    for url in (LOG, LOG + "export.csv", LOG + "pb-anything/"):
        response = browser_like_client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_owner_sees_their_requests_newest_first(owner_client, account, make_key):
    key, _ = make_key(name="ci-runner")
    older = record(account, key, at=T0)
    newer = record(account, key, at=T0 + timedelta(minutes=1))

    response = owner_client.get(LOG)

    assert response.status_code == 200
    assert request_ids(response.content.decode()) == [newer.request_id, older.request_id]
    assert "ci-runner" in response.content.decode()


def test_each_request_says_which_route_it_called(owner_client, account):
    record(account, endpoint="chat.completions")
    record(account, endpoint="messages.count_tokens")

    html = owner_client.get(LOG).content.decode()

    assert ">chat/completions<" in html
    assert ">messages/count_tokens<" in html


def test_outsider_sees_none_of_the_owners_requests(outsider_client, account, other_account):
    mine = record(account)
    theirs = record(other_account)

    html = outsider_client.get(LOG).content.decode()

    assert request_ids(html) == [theirs.request_id]
    assert mine.request_id not in html


def test_outsider_gets_404_for_someone_elses_request(outsider_client, account):
    mine = record(account)

    assert outsider_client.get(reverse("usage:request", args=[mine.request_id])).status_code == 404


def test_an_unknown_request_id_is_404(owner_client):
    assert owner_client.get(reverse("usage:request", args=["pb-nothing"])).status_code == 404


def test_an_outsider_searching_for_the_owners_ids_finds_nothing(
    outsider_client, account, other_account
):
    mine = record(account, client_request_id="shared-ticket-7")
    theirs = record(other_account, client_request_id="shared-ticket-7")

    for text in (mine.request_id, mine.upstream_request_id):
        assert request_ids(outsider_client.get(LOG, {"q": text}).content.decode()) == []
    assert request_ids(outsider_client.get(LOG, {"q": "shared-ticket-7"}).content.decode()) == [
        theirs.request_id
    ]


def test_another_accounts_key_in_the_filter_shows_nothing_of_theirs(
    owner_client, account, other_account, make_key
):
    theirs_key, _ = make_key(account=other_account, name="their-key")
    theirs = record(other_account, theirs_key)
    record(account)

    response = owner_client.get(LOG, {"key": theirs_key.pk})

    html = response.content.decode()
    assert response.status_code == 200
    assert request_ids(html) == []
    assert theirs.request_id not in html and "their-key" not in html
    assert "Select a valid choice" in html


@pytest.mark.parametrize("field", ["request_id", "upstream_request_id", "client_request_id"])
def test_search_finds_a_request_by_each_of_its_ids(owner_client, account, field):
    wanted = record(account)
    many(account, count=5)

    html = owner_client.get(LOG, {"q": getattr(wanted, field)}).content.decode()

    assert request_ids(html) == [wanted.request_id]


def test_search_is_an_exact_match(owner_client, account):
    record(account, client_request_id="ticket-1234")

    html = owner_client.get(LOG, {"q": "ticket-12"}).content.decode()

    assert request_ids(html) == []
    assert "No request of your account has" in html


def test_every_retry_with_one_client_id_is_found(owner_client, account):
    first = record(account, client_request_id="retry-me", at=T0)
    second = record(account, client_request_id="retry-me", at=T0 + timedelta(seconds=5))

    html = owner_client.get(LOG, {"q": "retry-me"}).content.decode()

    assert request_ids(html) == [second.request_id, first.request_id]


def test_filters_by_key_and_by_model(owner_client, account, make_key):
    key_a, _ = make_key(name="agent-a")
    key_b, _ = make_key(name="agent-b")
    a_small = record(account, key_a, model="small")
    a_large = record(account, key_a, model="large")
    record(account, key_b, model="small")

    assert set(request_ids(owner_client.get(LOG, {"key": key_a.pk}).content.decode())) == {
        a_small.request_id,
        a_large.request_id,
    }
    by_both = owner_client.get(LOG, {"key": key_a.pk, "model": "small"}).content.decode()
    assert request_ids(by_both) == [a_small.request_id]


@pytest.mark.parametrize(
    ("status_class", "expected"), [("2xx", [200]), ("4xx", [429, 499]), ("5xx", [502])]
)
def test_filters_by_status_class(owner_client, account, status_class, expected):
    for minutes, status in enumerate((200, 429, 499, 502)):
        record(account, status=status, at=T0 + timedelta(minutes=minutes))

    html = owner_client.get(LOG, {"status": status_class}).content.decode()

    statuses = sorted(UsageRecord.objects.get(request_id=rid).status for rid in request_ids(html))
    assert statuses == expected


@pytest.mark.parametrize(("field", "value"), [("streamed", "stream"), ("estimated", "estimated")])
def test_filters_by_streamed_and_by_estimated(owner_client, account, field, value):
    flagged = record(account, **{value: True}, at=T0)
    plain = record(account, at=T0 + timedelta(seconds=1))

    assert request_ids(owner_client.get(LOG, {field: "yes"}).content.decode()) == [
        flagged.request_id
    ]
    assert request_ids(owner_client.get(LOG, {field: "no"}).content.decode()) == [plain.request_id]


def test_the_date_range_is_whole_days_in_the_accounts_zone(owner_client, account):
    account.timezone = "Asia/Tokyo"
    account.save()
    # March 10 in Tokyo runs from 15:00 UTC on March 9 to 15:00 UTC on March 10.
    before = record(account, at=datetime(2026, 3, 9, 14, 59, 59, tzinfo=UTC))
    first = record(account, at=datetime(2026, 3, 9, 15, 0, tzinfo=UTC))
    last = record(account, at=datetime(2026, 3, 10, 14, 59, 59, tzinfo=UTC))
    after = record(account, at=datetime(2026, 3, 10, 15, 0, tzinfo=UTC))

    html = owner_client.get(LOG, {"since": "2026-03-10", "until": "2026-03-10"}).content.decode()

    assert request_ids(html) == [last.request_id, first.request_id]
    assert before.request_id not in html and after.request_id not in html
    assert "Mar 10, 00:00:00" in html  # shown in Tokyo time


def test_an_end_date_before_the_start_is_explained(owner_client, account):
    record(account)

    html = owner_client.get(LOG, {"since": "2026-03-10", "until": "2026-03-09"}).content.decode()

    assert "The end date is before the start date." in html
    assert request_ids(html) == []


def test_a_changed_cursor_is_refused_with_a_way_back(owner_client, account):
    record(account)
    token = Cursor(T0, 1).encode()

    html = owner_client.get(LOG, {"cursor": token[:-3] + "abc"}).content.decode()

    assert "This page link is broken or was changed." in html
    assert request_ids(html) == []


def test_pages_follow_older_links_without_a_gap_or_a_repeat(owner_client, account):
    # Five records share each timestamp: the page edges fall inside such runs.
    rows = []
    for second in range(24):
        rows += many(account, count=5, start=T0 - timedelta(seconds=second), step=timedelta(0))
    expected = [
        r.request_id for r in sorted(rows, key=lambda r: (r.created_at, r.pk), reverse=True)
    ]

    seen: list[str] = []
    url: str | None = LOG
    while url:
        html = owner_client.get(url).content.decode()
        seen += request_ids(html)
        url = older_link(html)

    assert seen == expected


def test_keyset_pages_walk_back_and_forth_over_equal_timestamps(account):
    rows = many(account, count=23, step=timedelta(0))
    rows += many(account, count=11, start=T0 - timedelta(hours=1))
    expected = [r.pk for r in sorted(rows, key=lambda r: (r.created_at, r.pk), reverse=True)]

    pages = [log_page(account=account, filters=Filters(), size=7)]
    while pages[-1].older:
        pages.append(log_page(account=account, filters=Filters(), cursor=pages[-1].older, size=7))
    backwards = [pages[-1]]
    while backwards[-1].newer:
        page = log_page(account=account, filters=Filters(), cursor=backwards[-1].newer, size=7)
        backwards.append(page)

    assert [r.pk for page in pages for r in page.records] == expected
    assert [r.pk for page in reversed(backwards) for r in page.records] == expected
    assert [len(p.records) for p in pages] == [7, 7, 7, 7, 6]
    assert pages[0].newer is None and backwards[-1].newer is None


def test_a_record_written_while_reading_does_not_shift_older_pages(account):
    rows = many(account, count=10)
    first = log_page(account=account, filters=Filters(), size=5)

    record(account, at=T0 + timedelta(minutes=5))
    second = log_page(account=account, filters=Filters(), cursor=first.older, size=5)

    assert [r.pk for r in second.records] == [r.pk for r in rows[5:]]


def test_cursor_round_trips_to_the_microsecond():
    at = datetime(2026, 3, 9, 12, 0, 0, 999_999, tzinfo=UTC)

    assert Cursor.decode(Cursor(at, 42, older=False).encode()) == Cursor(at, 42, older=False)


def test_htmx_gets_the_results_only_and_a_plain_get_the_whole_page(owner_client, account):
    mine = record(account)

    partial = owner_client.get(LOG, {"model": "gpt-test"}, headers={"HX-Request": "true"})
    page = owner_client.get(LOG, {"model": "gpt-test"})

    assert partial.content.decode().lstrip().startswith('<section id="log-results"')
    assert mine.request_id in partial.content.decode()
    assert "<html" in page.content.decode() and 'value="gpt-test"' in page.content.decode()
    assert "HX-Request" in partial["Vary"]


def test_the_csv_link_carries_the_filters(owner_client, account, make_key):
    key, _ = make_key()
    record(account, key)

    html = owner_client.get(LOG, {"key": key.pk, "status": "2xx", "q": ""}).content.decode()

    assert f'href="/usage/requests/export.csv?key={key.pk}&amp;status=2xx"' in html


def test_a_keys_page_links_to_its_requests_in_the_log(owner_client, make_key):
    key, _ = make_key(name="ci-runner")

    html = owner_client.get(reverse("keys:detail", args=[key.pk])).content.decode()

    assert f'href="/usage/requests/?key={key.pk}"' in html


def test_a_request_page_shows_everything_its_record_has(
    owner_client, account, make_model, make_key
):
    make_model("gpt-test", input="2", cached="0.5", output="8")
    key, _ = make_key(name="ci-runner")
    attempts = [
        {
            "provider": "primary",
            "upstream_model": "gpt-a",
            "status": 503,
            "error": "upstream_error",
            "ms": 120,
        },
        {"provider": "backup", "upstream_model": "gpt-b", "status": 200, "error": "", "ms": 850},
    ]
    # 1,000 prompt (300 cached), 200 completion (50 reasoning):
    # 700 x $2 + 300 x $0.5 + 200 x $8 per million = $0.00315
    mine = record(
        account,
        key,
        prompt_tokens=1000,
        cached_tokens=300,
        completion_tokens=200,
        reasoning_tokens=50,
        cost_usd=Decimal("0.00315"),
        attempts=attempts,
        client_request_id="ticket-42",
        upstream_request_id="req_abc",
        ttft_ms=310,
    )

    response = owner_client.get(reverse("usage:request", args=[mine.request_id]))

    html = response.content.decode()
    assert response.status_code == 200
    for text in (
        mine.request_id,
        "req_abc",
        "ticket-42",
        "ci-runner",
        "primary",
        "gpt-a",
        "503",
        "upstream failed",
        "backup",
        "gpt-b",
        "850 ms",
        "310 ms",
    ):
        assert text in html, text
    assert re.search(
        r"Input</td><td class=\"num\">700</td><td class=\"num\">\$2.00</td><td class=\"num\">\$0.0014</td>",
        html,
    )
    assert re.search(
        r"Cached input</td><td class=\"num\">300</td><td class=\"num\">\$0.50</td><td class=\"num\">\$0.00015</td>",
        html,
    )
    assert re.search(
        r"Output <span class=\"cell-sub\">incl. 50 reasoning</span></td><td class=\"num\">200</td><td class=\"num\">\$8.00</td><td class=\"num\">\$0.0016</td>",
        html,
    )
    assert "the ones this request was charged at" in html
    assert "Lines at today" not in html


def test_a_request_page_says_when_the_price_changed_since(owner_client, account, make_model):
    make_model("gpt-test", input="4", cached="1", output="16")
    mine = record(account, prompt_tokens=1000, completion_tokens=200, cost_usd=Decimal("0.00325"))

    html = owner_client.get(reverse("usage:request", args=[mine.request_id])).content.decode()

    assert "prices changed since this request" in html
    assert "Lines at today's prices" in html and "$0.0072" in html
    assert "$0.00325" in html


def test_a_request_page_explains_an_estimate(owner_client, account):
    mine = record(account, estimated=True, estimate_reason="usage_missing:client_left", status=499)

    html = owner_client.get(reverse("usage:request", args=[mine.request_id])).content.decode()

    assert "These tokens are estimated." in html
    assert "Your client disconnected before the upstream reported" in html


def test_htmx_pushes_the_filters_that_are_set_into_the_address_bar(owner_client, account):
    record(account)
    fields = {"q": "", "key": "", "model": "gpt-test", "status": "", "since": ""}

    response = owner_client.get(LOG, fields, headers={"HX-Request": "true"})

    assert response["HX-Push-Url"] == LOG + "?model=gpt-test"


def test_a_changed_cursor_never_reaches_a_header(owner_client, account):
    record(account)

    response = owner_client.get(
        LOG, {"cursor": "x\r\nSet-Cookie: a=b"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert response["HX-Push-Url"] == LOG


def test_a_request_without_a_model_says_so_in_the_log_and_on_its_page(owner_client, account):
    listing = record(account, endpoint="models.list", model="", provider="", upstream_model="")
    named = record(account, at=T0 + timedelta(minutes=1), model="gpt-Test-Mixed")

    log = owner_client.get(LOG).content.decode()
    page = owner_client.get(f"{LOG}{listing.request_id}/").content.decode()

    assert log.count('<span class="no-model" title="Requests that name no model: model') == 1
    assert f'<span class="model-id">{named.model}</span>' in log
    assert page.count("(no model)</span>") == 2  # the heading and the Model row
