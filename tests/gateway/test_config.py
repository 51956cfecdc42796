"""`manage.py loadconfig FILE.toml [--prune]`: declarative, idempotent configuration."""

import contextlib
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from gateway.models import CatalogModel, Provider, Route
from tests.helpers import chat_body, post_chat

ISSUE_TOML = """
[[providers]]
name = "openai"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "TEST_OPENAI_KEY"
first_byte_timeout = 600

[[providers]]
name = "demo"
kind = "echo"

[[models]]
id = "codex-auto-review"
input_per_mtok = "1.25"
cached_input_per_mtok = "0.125"
output_per_mtok = "10.00"
[[models.routes]]
provider = "openai"
upstream_model = "gpt-5.5"
[[models.routes]]
provider = "demo"
upstream_model = "echo"

[[models]]
id = "gpt-5.4-mini"
input_per_mtok = "0.25"
cached_input_per_mtok = "0.025"
output_per_mtok = "2.00"
[[models.routes]]
provider = "demo"
upstream_model = "echo"
"""


@pytest.fixture
def load(tmp_path, transactional_db, monkeypatch):
    """Run loadconfig on a TOML text; returns its stdout lines."""
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-operator-plaintext-key")

    def run(text: str, *args: str) -> list[str]:
        path = tmp_path / "purebridge.toml"
        path.write_text(text)
        out = StringIO()
        call_command("loadconfig", str(path), *args, stdout=out)
        return out.getvalue().splitlines()

    return run


def routes_of(public_id: str) -> list[tuple[str, str, int]]:
    return list(
        Route.objects.filter(model__public_id=public_id)
        .order_by("priority")
        .values_list("provider__name", "upstream_model", "priority")
    )


def test_the_documented_shape_loads(load):
    load(ISSUE_TOML)

    assert set(Provider.objects.values_list("name", "kind")) == {
        ("openai", "openai"),
        ("demo", "echo"),
    }
    assert set(CatalogModel.objects.values_list("public_id", flat=True)) == {
        "codex-auto-review",
        "gpt-5.4-mini",
    }


def test_prices_are_stored_exactly(load):
    load(ISSUE_TOML)

    model = CatalogModel.objects.get(public_id="codex-auto-review")
    assert model.input_per_mtok == Decimal("1.25")
    assert model.cached_input_per_mtok == Decimal("0.125")
    assert model.output_per_mtok == Decimal("10.00")


def test_a_models_kind_is_loaded_and_defaults_to_chat(load):
    load(
        ISSUE_TOML + '[[models]]\nid = "embed-small"\nkind = "embedding"\ninput_per_mtok = "0.02"\n'
        '[[models.routes]]\nprovider = "openai"\nupstream_model = "text-embedding-3-small"\n'
    )

    kinds = dict(CatalogModel.objects.values_list("public_id", "kind"))
    assert kinds == {
        "codex-auto-review": "chat",
        "gpt-5.4-mini": "chat",
        "embed-small": "embedding",
    }


def test_routes_are_kept_in_the_order_written(load):
    load(ISSUE_TOML)

    assert routes_of("codex-auto-review") == [("openai", "gpt-5.5", 0), ("demo", "echo", 1)]


def test_provider_timeouts_are_loaded(load):
    load(ISSUE_TOML)

    assert Provider.objects.get(name="openai").first_byte_timeout == 600.0


def test_loading_reports_what_it_created(load):
    lines = load(ISSUE_TOML)

    assert [line.split() for line in lines] == [
        ["created", "provider", "openai"],
        ["created", "provider", "demo"],
        ["created", "model", "codex-auto-review"],
        ["created", "model", "gpt-5.4-mini"],
    ]


def test_without_redis_loading_says_when_running_servers_see_it(load, settings):
    settings.REDIS_URL = ""
    settings.PUREBRIDGE_CACHE_TTL = 30.0

    lines = load(ISSUE_TOML)

    assert lines[-1] == (
        "Running PureBridge servers use this within 30s (PUREBRIDGE_CACHE_TTL; with Redis, at once)."
    )
    assert load(ISSUE_TOML)[-1].split()[0] == "unchanged"  # nothing changed: nothing to say


def test_loading_twice_changes_nothing(load):
    load(ISSUE_TOML)
    before = {
        "providers": list(Provider.objects.order_by("id").values("id", "name", "updated_at")),
        "models": list(CatalogModel.objects.order_by("id").values("id", "updated_at")),
        "routes": list(Route.objects.order_by("id").values_list("id", flat=True)),
    }

    lines = load(ISSUE_TOML)

    assert {line.split()[0] for line in lines} == {"unchanged"}
    assert len(lines) == 4
    after = {
        "providers": list(Provider.objects.order_by("id").values("id", "name", "updated_at")),
        "models": list(CatalogModel.objects.order_by("id").values("id", "updated_at")),
        "routes": list(Route.objects.order_by("id").values_list("id", flat=True)),
    }
    assert after == before


def test_changing_a_price_updates_the_model(load):
    load(ISSUE_TOML)

    lines = load(ISSUE_TOML.replace('output_per_mtok = "10.00"', 'output_per_mtok = "12.50"'))

    assert CatalogModel.objects.get(public_id="codex-auto-review").output_per_mtok == Decimal(
        "12.5"
    )
    assert "updated model codex-auto-review" in [" ".join(line.split()) for line in lines]
    assert "unchanged model gpt-5.4-mini" in [" ".join(line.split()) for line in lines]


def test_routes_are_replaced_to_match_the_file(load):
    load(ISSUE_TOML)
    changed = ISSUE_TOML.replace(
        '[[models.routes]]\nprovider = "openai"\nupstream_model = "gpt-5.5"\n', ""
    )

    load(changed)

    assert routes_of("codex-auto-review") == [("demo", "echo", 0)]


def test_unnamed_models_and_providers_are_kept_without_prune(load):
    load(ISSUE_TOML)

    load(
        """
[[providers]]
name = "demo"
kind = "echo"
"""
    )

    assert CatalogModel.objects.count() == 2
    assert Provider.objects.count() == 2


def test_prune_removes_unnamed_models_and_providers(load):
    load(ISSUE_TOML)

    lines = load(
        """
[[providers]]
name = "demo"
kind = "echo"

[[models]]
id = "gpt-5.4-mini"
input_per_mtok = "0.25"
cached_input_per_mtok = "0.025"
output_per_mtok = "2.00"
[[models.routes]]
provider = "demo"
upstream_model = "echo"
""",
        "--prune",
    )

    assert list(CatalogModel.objects.values_list("public_id", flat=True)) == ["gpt-5.4-mini"]
    assert list(Provider.objects.values_list("name", flat=True)) == ["demo"]
    assert {" ".join(line.split()) for line in lines} >= {
        "removed model codex-auto-review",
        "removed provider openai",
    }


def test_prune_never_deletes_a_provider_that_a_route_in_the_file_uses(load):
    load('[[providers]]\nname = "demo"\nkind = "echo"\n')

    # The route names a provider the file does not declare: keeping that
    # provider or refusing the file are both fine; deleting it (and with it
    # the route the file asks for) is not.
    with contextlib.suppress(CommandError):
        load(
            """
[[models]]
id = "m"
[[models.routes]]
provider = "demo"
upstream_model = "echo"
""",
            "--prune",
        )

    assert Provider.objects.filter(name="demo").exists()


def test_provider_api_key_is_stored_encrypted(load):
    load(ISSUE_TOML)

    provider = Provider.objects.get(name="openai")
    assert provider.api_key_encrypted
    assert "sk-operator-plaintext-key" not in provider.api_key_encrypted
    assert provider.api_key == "sk-operator-plaintext-key"


def test_provider_api_key_can_be_given_inline(load):
    load(
        """
[[providers]]
name = "inline"
base_url = "https://upstream.example/v1"
api_key = "sk-inline-plaintext"
"""
    )

    provider = Provider.objects.get(name="inline")
    assert "sk-inline-plaintext" not in provider.api_key_encrypted
    assert provider.api_key == "sk-inline-plaintext"


def test_changed_api_key_env_value_updates_the_provider(load, monkeypatch):
    load(ISSUE_TOML)
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-rotated")

    lines = load(ISSUE_TOML)

    assert Provider.objects.get(name="openai").api_key == "sk-rotated"
    assert "updated provider openai" in [" ".join(line.split()) for line in lines]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param(
            '[[providers]]\nname = "x"\nkind = "anthropic-v9"\nbase_url = "https://x.example/v1"\n',
            "anthropic-v9",
            id="unknown-kind",
        ),
        pytest.param(
            '[[models]]\nid = "m"\n[[models.routes]]\nprovider = "ghost"\nupstream_model = "u"\n',
            "ghost",
            id="route-to-unknown-provider",
        ),
        pytest.param(
            '[[providers]]\nname = "e"\nkind = "echo"\n'
            '[[models]]\nid = "m"\ninput_per_mtok = 1.25\n'
            '[[models.routes]]\nprovider = "e"\nupstream_model = "u"\n',
            "input_per_mtok",
            id="price-as-float",
        ),
        pytest.param(
            '[[providers]]\nname = "p"\nbase_url = "https://x.example/v1"\n'
            'api_key_env = "PUREBRIDGE_TEST_UNSET_VARIABLE"\n',
            "PUREBRIDGE_TEST_UNSET_VARIABLE",
            id="missing-api-key-env",
        ),
        pytest.param(
            '[[providers]]\nname = "e"\nkind = "echo"\ncolour = "blue"\n',
            "colour",
            id="unknown-provider-field",
        ),
        pytest.param(
            '[[providers]]\nname = "e"\nkind = "echo"\n'
            '[[models]]\nid = "m"\nprice = "1"\n'
            '[[models.routes]]\nprovider = "e"\nupstream_model = "u"\n',
            "price",
            id="unknown-model-field",
        ),
        pytest.param(
            '[[providers]]\nname = "e"\nkind = "echo"\n'
            '[[models]]\nid = "m"\nkind = "image"\n'
            '[[models.routes]]\nprovider = "e"\nupstream_model = "u"\n',
            "models[0].kind: 'image' is not one of chat, embedding",
            id="unknown-model-kind",
        ),
        pytest.param("[settings]\nx = 1\n", "settings", id="unknown-table"),
        pytest.param('[[providers]\nname = "broken"\n', "invalid TOML", id="invalid-toml"),
        pytest.param(
            '[[providers]]\nname = "p"\nkind = "openai"\n', "base_url", id="openai-without-url"
        ),
        pytest.param(
            '[[providers]]\nname = "e"\nkind = "echo"\n[[models]]\nid = "m"\n',
            "routes",
            id="model-without-routes",
        ),
    ],
)
def test_bad_document_is_a_command_error_that_says_why(load, monkeypatch, text, says):
    monkeypatch.delenv("PUREBRIDGE_TEST_UNSET_VARIABLE", raising=False)

    with pytest.raises(CommandError) as caught:
        load(text)

    assert says in str(caught.value)


def test_price_as_float_error_asks_for_a_string(load):
    text = (
        '[[providers]]\nname = "e"\nkind = "echo"\n'
        '[[models]]\nid = "m"\noutput_per_mtok = 10.5\n'
        '[[models.routes]]\nprovider = "e"\nupstream_model = "u"\n'
    )

    with pytest.raises(CommandError) as caught:
        load(text)

    assert "string" in str(caught.value)


def test_missing_file_is_a_command_error(tmp_path, transactional_db):
    with pytest.raises(CommandError):
        call_command("loadconfig", str(tmp_path / "nope.toml"))


def test_a_bad_document_changes_nothing(load):
    text = ISSUE_TOML + '\n[[models]]\nid = "broken"\ninput_per_mtok = 1.5\n'

    with pytest.raises(CommandError):
        load(text)

    assert Provider.objects.count() == 0
    assert CatalogModel.objects.count() == 0


def test_a_new_model_from_loadconfig_is_served_at_once(load, http, api_key, fake_upstream):
    post_chat(http, api_key, chat_body("fresh-model"))  # the catalogue is now cached

    load(
        f"""
[[providers]]
name = "fake"
base_url = "{fake_upstream.base_url}"

[[models]]
id = "fresh-model"
[[models.routes]]
provider = "fake"
upstream_model = "fake"
"""
    )
    response = post_chat(http, api_key, chat_body("fresh-model"))

    assert response.status_code == 200


def test_a_route_change_from_loadconfig_reaches_the_running_server(
    load, http, api_key, fake_upstream
):
    text = f"""
[[providers]]
name = "fake"
base_url = "{fake_upstream.base_url}"

[[models]]
id = "test-model"
[[models.routes]]
provider = "fake"
upstream_model = "fake?tokens=1"
"""
    load(text)
    post_chat(http, api_key, chat_body())

    load(text.replace("fake?tokens=1", "fake?tokens=2"))
    post_chat(http, api_key, chat_body())

    assert [r["body"]["model"] for r in fake_upstream.requests] == [
        "fake?tokens=1",
        "fake?tokens=2",
    ]


def test_a_price_change_from_loadconfig_is_charged_at_once(
    load, http, api_key, fake_upstream, usage_records
):
    text = f"""
[[providers]]
name = "fake"
base_url = "{fake_upstream.base_url}"

[[models]]
id = "test-model"
input_per_mtok = "1"
output_per_mtok = "1"
[[models.routes]]
provider = "fake"
upstream_model = "fake"
"""
    load(text)
    post_chat(http, api_key, chat_body())

    load(text.replace('output_per_mtok = "1"', 'output_per_mtok = "1000"'))
    post_chat(http, api_key, chat_body())

    first, second = usage_records()
    assert first.cost_usd == Decimal(11 + 3) / 1_000_000
    assert second.cost_usd == Decimal(11 + 3 * 1000) / 1_000_000


def test_a_pruned_model_is_no_longer_served(load, http, api_key, fake_upstream):
    text = f"""
[[providers]]
name = "fake"
base_url = "{fake_upstream.base_url}"

[[models]]
id = "keep"
[[models.routes]]
provider = "fake"
upstream_model = "fake"

[[models]]
id = "drop"
[[models.routes]]
provider = "fake"
upstream_model = "fake"
"""
    load(text)
    assert post_chat(http, api_key, chat_body("drop")).status_code == 200

    load(text.split('[[models]]\nid = "drop"')[0], "--prune")

    assert post_chat(http, api_key, chat_body("drop")).status_code == 404
