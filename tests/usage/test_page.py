"""The usage page (/usage/) and its CSV export: read from the rollups, scoped
to the signed-in account."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx2
import pytest
from django.utils import timezone

from tests.web import browser_like_client
from usage.services import usage_rollup

URL = "/usage/"


@pytest.fixture
def outsider_key(transactional_db, make_key):
    from accounts.models import User

    outsider = User.objects.create_user("outsider@example.com", "pw-outsider-1234")
    key, _ = make_key(account=outsider.account, name="outsiders-secret-tool")
    return key


@pytest.fixture
def usage(make_key, record):
    """Two keys and two models of the owner, used an hour ago and three days
    ago, rolled up. Returns the keys."""
    ci, _ = make_key(name="ci-runner")
    agent, _ = make_key(name="coding-agent")
    now = timezone.now()
    for at in (now - timedelta(hours=1), now - timedelta(days=3)):
        record(ci, at=at, model="gpt-small", prompt_tokens=100, cost_usd=Decimal("0.25"))
        record(agent, at=at, model="gpt-large", completion_tokens=40, cost_usd=Decimal("1.5"))
        record(agent, at=at, model="gpt-large", status=502, latency_ms=900)
    usage_rollup()
    return ci, agent


def table_rows(html: str) -> int:
    table = html.split('<table class="usage-table">', 1)[1].split("</table>", 1)[0]
    return table.split("<tbody>", 1)[1].count("<tr>")


def test_owner_sees_the_totals_charts_and_table_of_their_keys(owner_client, usage):
    response = owner_client.get(URL, {"range": "7d"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "ci-runner" in html and "coding-agent" in html
    assert table_rows(html) == 2
    assert "$3.50" in html  # 2 × (0.25 + 1.50)
    for chart in ("chart-cost", "chart-requests", "chart-tokens"):
        assert f'id="{chart}"' in html and f'aria-labelledby="{chart}-title {chart}-desc"' in html


def test_the_last_24_hours_leave_out_usage_of_three_days_ago(owner_client, usage):
    html = owner_client.get(URL, {"range": "24h"}).content.decode()

    assert "$1.75" in html and "$3.50" not in html
    assert "hourly" in html


def test_a_key_filter_shows_that_key_only(owner_client, usage):
    ci, _ = usage

    html = owner_client.get(URL, {"range": "7d", "key": ci.id}).content.decode()

    assert table_rows(html) == 1 and "gpt-large" not in html.split("usage-table", 1)[1]


def test_grouping_by_model_stacks_cost_by_model(owner_client, usage):
    html = owner_client.get(URL, {"range": "7d", "group": "model"}).content.decode()

    legend = html.split('id="chart-cost"', 1)[1].split("</ul>", 1)[0]
    assert "gpt-large" in legend and "ci-runner" not in legend


def test_an_htmx_request_gets_only_the_report(owner_client, usage):
    response = owner_client.get(URL, {"range": "30d"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.startswith('<div id="usage-report"') and "<html" not in html
    assert "HX-Request" in response["Vary"]


def test_a_full_get_of_the_same_url_renders_the_whole_page(owner_client, usage):
    html = owner_client.get(URL, {"range": "30d"}).content.decode()

    assert "<html" in html and 'id="usage-filters"' in html and 'id="usage-report"' in html


def test_another_accounts_key_id_in_the_filter_is_refused_and_shows_nothing(
    owner_client, usage, outsider_key, record
):
    record(outsider_key, at=timezone.now(), model="gpt-secret", cost_usd=Decimal("9"))
    usage_rollup()

    response = owner_client.get(URL, {"range": "7d", "key": outsider_key.id})

    html = response.content.decode()
    assert response.status_code == 400
    assert "Select a valid choice" in html
    assert "outsiders-secret-tool" not in html and "gpt-secret" not in html and "$9" not in html


def test_the_outsider_sees_none_of_the_owners_usage(usage, outsider_key):
    client = browser_like_client(outsider_key.account.users.get())

    html = client.get(URL, {"range": "30d"}).content.decode()

    assert "ci-runner" not in html and "gpt-large" not in html and "$3.50" not in html


def test_the_outsider_cannot_export_the_owners_key(usage, outsider_key):
    ci, _ = usage
    client = browser_like_client(outsider_key.account.users.get())

    response = client.get("/usage/export.csv", {"key": ci.id})

    assert response.status_code == 400


def test_a_custom_range_whose_last_day_is_before_its_first_explains_itself(owner_client, usage):
    response = owner_client.get(
        URL, {"range": "custom", "start": "2026-03-10", "end": "2026-03-01"}
    )

    assert response.status_code == 400
    assert "The last day is before the first." in response.content.decode()


def test_a_custom_range_needs_both_days(owner_client, usage):
    response = owner_client.get(URL, {"range": "custom", "start": "2026-03-10"})

    assert "A custom range needs a first and a last day." in response.content.decode()


def test_the_anonymous_visitor_is_sent_to_log_in(anonymous_client):
    response = anonymous_client.get(URL)

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_change_against_the_previous_span_is_shown(owner_client, make_key, record):
    key, _ = make_key(name="steady")
    today = timezone.now()
    record(key, at=today - timedelta(days=2), cost_usd=Decimal("3"))
    record(key, at=today - timedelta(days=9), cost_usd=Decimal("2"))
    usage_rollup()

    html = owner_client.get(URL, {"range": "7d"}).content.decode()

    cost = html.split('<div class="stat-label">Cost</div>', 1)[1].split("</div>\n</div>", 1)[0]
    assert "$3.00" in cost and "▲ 50 %" in cost


def test_the_usage_link_is_in_the_apps_navigation(owner_client):
    html = owner_client.get(URL).content.decode()

    assert '<a href="/usage/" aria-current="page">Usage</a>' in html


@pytest.fixture
def session_http(live, owner):
    """A plain HTTP client of the live server, signed in as the owner."""
    client = browser_like_client(owner)
    with httpx2.Client(base_url=live.url, timeout=20) as http:
        http.cookies.set("sessionid", client.cookies["sessionid"].value)
        yield http


def test_the_export_streams_one_row_per_day_key_and_model_in_the_accounts_zone(
    session_http, make_key, record, account
):
    account.timezone = "Asia/Tokyo"
    account.save()
    key, _ = make_key(name='=HYPERLINK("http://evil")')
    yesterday = datetime.now(UTC) - timedelta(days=1)
    record(key, at=yesterday, model="-m", prompt_tokens=5, cost_usd=Decimal("0.5"))
    record(key, at=yesterday, model="-m", latency_ms=300, ttft_ms=100)
    usage_rollup()

    response = session_http.get("/usage/export.csv", params={"range": "7d"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    [header, row] = list(csv.reader(io.StringIO(response.text)))
    assert header[:4] == ["period_start", "key_id", "key", "model"]
    values = dict(zip(header, row, strict=True))
    day = yesterday.astimezone(ZoneInfo("Asia/Tokyo")).date()
    assert values["period_start"] == f"{day.isoformat()}T00:00:00+09:00"
    assert values["key"] == '\'=HYPERLINK("http://evil")' and values["model"] == "'-m"
    assert (values["requests"], values["prompt_tokens"], values["cost_usd"]) == (
        "2",
        "5",
        "0.500000000000",
    )
    assert (values["avg_latency_ms"], values["avg_ttft_ms"]) == ("150", "100")


def test_the_export_of_an_empty_range_is_the_header_alone(session_http):
    response = session_http.get("/usage/export.csv", params={"range": "last-month"})

    assert response.text.splitlines() == [",".join(_header())]


def _header() -> list[str]:
    from usage.reports import EXPORT_HEADER

    return EXPORT_HEADER


def test_the_days_of_the_export_follow_the_custom_range(owner_client, usage):
    today = date.today()
    response = owner_client.get(
        URL, {"range": "custom", "start": today - timedelta(days=5), "end": today}
    )

    assert response.status_code == 200
    assert 'href="/usage/export.csv?range=custom' in response.content.decode()


@pytest.fixture
def modelless(usage, record):
    """A model listing of the owner's first key: a record that names no model."""
    ci, _ = usage
    record(ci, at=timezone.now() - timedelta(hours=1), model="", status=200)
    usage_rollup()
    return ci


def test_usage_without_a_model_is_labelled_in_the_table(owner_client, modelless):
    html = owner_client.get(URL, {"range": "7d"}).content.decode()

    table = html.split('<table class="usage-table">', 1)[1]
    assert '<span class="no-model" title="Requests that name no model: model listings' in table
    assert "(no model)</span>" in table


def test_usage_without_a_model_is_labelled_in_the_cost_charts_legend(owner_client, modelless):
    html = owner_client.get(URL, {"range": "7d", "group": "model"}).content.decode()

    legend = html.split('id="chart-cost"', 1)[1].split("</ul>", 1)[0]
    assert '<li title="Requests that name no model: model listings' in legend
    assert "</span>(no model)</li>" in legend


def test_no_model_is_no_choice_of_the_model_filter(owner_client, modelless):
    html = owner_client.get(URL, {"range": "7d"}).content.decode()

    select = html.split('name="model"', 1)[1].split("</select>", 1)[0]
    assert select.count("<option") == 3  # every model, gpt-large, gpt-small


def test_the_export_leaves_the_model_cell_of_usage_without_a_model_empty(session_http, modelless):
    response = session_http.get("/usage/export.csv", params={"range": "7d"})

    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(row["model"] for row in rows if row["key"] == "ci-runner") == [
        "",
        "gpt-small",
        "gpt-small",
    ]
