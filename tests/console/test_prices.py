"""Prices shown to customers: the pricing page, the docs page and the key form."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from console.templatetags.pb import price
from tests.web import post


def price_rows(page: str) -> dict[str, list[str]]:
    """Each row of the price table: the model and its prices as shown."""
    rows = re.findall(
        r'<th scope="row"><span class="model-id">([^<]+)</span></th>((?:<td class="num">[^<]*</td>)+)',
        page,
    )
    return {model: re.findall(r'<td class="num">([^<]*)</td>', cells) for model, cells in rows}


@pytest.fixture
def catalogue(make_model):
    make_model("gpt-5.5", input="1.25", cached="0.125", output="10")
    make_model("gpt-5.4-mini", input="0.000375", cached="0", output="2.5")
    hidden = make_model("not-public-yet")
    hidden.enabled = False
    hidden.save()


def test_the_pricing_page_is_public_and_lists_every_enabled_model(anonymous_client, catalogue):
    response = anonymous_client.get("/pricing/")

    page = response.content.decode()
    assert response.status_code == 200
    assert price_rows(page) == {
        "gpt-5.4-mini": ["$0.000375", "$0.00", "$2.50"],
        "gpt-5.5": ["$1.25", "$0.125", "$10.00"],
    }
    assert "not-public-yet" not in page
    assert "<caption>US dollars per million tokens</caption>" in page


def test_a_cache_write_price_gets_its_column_with_the_input_price_where_unset(
    anonymous_client, catalogue, make_model
):
    model = make_model("claude-sonnet", input="3", cached="0.30", output="15")
    model.cache_write_per_mtok = Decimal("3.75")
    model.save()

    page = anonymous_client.get("/pricing/").content.decode()

    assert ">Cache write</th>" in page
    assert price_rows(page)["claude-sonnet"] == ["$3.00", "$0.30", "$15.00", "$3.75"]
    assert price_rows(page)["gpt-5.5"][3] == "$1.25"


def test_without_cache_write_prices_there_is_no_such_column(anonymous_client, catalogue):
    page = anonymous_client.get("/pricing/").content.decode()

    assert "Cache write" not in page


def test_the_pricing_page_says_when_no_model_is_enabled(anonymous_client):
    page = anonymous_client.get("/pricing/").content.decode()

    assert "No models are enabled on this deployment yet." in page


def test_every_page_links_to_the_pricing_page(anonymous_client):
    page = anonymous_client.get("/docs/").content.decode()

    assert 'href="/pricing/"' in page


def test_the_docs_page_lists_the_prices(anonymous_client, catalogue):
    page = anonymous_client.get("/docs/").content.decode()

    section = page.split('<section id="pricing">')[1].split("</section>")[0]
    assert price_rows(section)["gpt-5.5"] == ["$1.25", "$0.125", "$10.00"]
    assert "not-public-yet" not in section


def test_the_key_form_shows_the_prices_beside_the_budgets(owner_client, catalogue):
    page = owner_client.get("/keys/new/").content.decode()

    budgets = page.split("<h2>Budgets</h2>")[1].split("</form>")[0]
    assert "<summary>Model prices, to size a budget</summary>" in budgets
    assert price_rows(budgets)["gpt-5.4-mini"] == ["$0.000375", "$0.00", "$2.50"]


def test_the_key_form_keeps_the_prices_when_htmx_shows_its_errors(owner_client, catalogue):
    response = post(owner_client, "/keys/new/", {"name": ""}, htmx=True)

    page = response.content.decode()
    assert "This field is required." in page
    assert "gpt-5.5" in price_rows(page)


def test_the_edit_form_shows_the_prices(owner_client, owner_key, catalogue):
    key, _ = owner_key

    page = owner_client.get(f"/keys/{key.id}/edit/").content.decode()

    assert price_rows(page)["gpt-5.5"] == ["$1.25", "$0.125", "$10.00"]


def test_the_edit_form_of_another_accounts_key_is_404(outsider_client, owner_key, catalogue):
    key, _ = owner_key

    assert outsider_client.get(f"/keys/{key.id}/edit/").status_code == 404


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("10", "$10.00"),
        ("10.000000", "$10.00"),
        ("1.25", "$1.25"),
        ("0.125", "$0.125"),
        ("0.000375", "$0.000375"),
        ("1234.5", "$1,234.50"),
        ("0", "$0.00"),
    ],
)
def test_a_price_is_shown_exactly_with_at_least_cents(value, shown):
    assert price(Decimal(value)) == shown
