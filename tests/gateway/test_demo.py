"""`manage.py setupdemo`: the embedded default's models, login and key."""

from io import StringIO

import openai
import pytest
from django.core.management import call_command

from gateway.models import Route
from tests.helpers import USER_HI

PRODUCT_PAGE_MODELS = {"codex-auto-review", "gpt-5.4-mini", "gpt-5.5"}


@pytest.fixture
def demo(transactional_db, settings, tmp_path, monkeypatch) -> dict:
    """Run setupdemo with no upstream key; returns the printed `Label: value` lines."""
    settings.DATA_DIR = tmp_path
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = StringIO()
    call_command("setupdemo", stdout=out)
    printed = {}
    for line in out.getvalue().splitlines():
        label, sep, value = line.strip().partition(":")
        if sep and label in {"API key", "Login", "Models", "API base"}:
            printed[label] = value.strip()
    return printed


@pytest.fixture
def demo_client(live, demo):
    with openai.OpenAI(
        base_url=f"{live.url}/v1", api_key=demo["API key"], max_retries=0, timeout=20
    ) as sdk:
        yield sdk


def test_setupdemo_routes_the_product_page_models_to_the_echo_provider(demo):
    routes = Route.objects.filter(model__public_id__in=PRODUCT_PAGE_MODELS).select_related(
        "provider", "model"
    )

    assert {r.model.public_id for r in routes} == PRODUCT_PAGE_MODELS
    assert {r.provider.kind for r in routes} == {"echo"}


def test_setupdemo_prints_a_purebridge_key(demo):
    assert demo["API key"].startswith("sk-pb-")


def test_setupdemo_prints_the_same_key_when_run_again(demo, settings):
    out = StringIO()
    call_command("setupdemo", stdout=out)

    assert f"API key:   {demo['API key']}" in out.getvalue()


def test_demo_key_lists_the_product_page_models(demo_client):
    ids = {m.id for m in demo_client.models.list().data}

    assert ids >= PRODUCT_PAGE_MODELS


@pytest.mark.parametrize("model", sorted(PRODUCT_PAGE_MODELS))
def test_demo_chat_answers_with_the_echo_upstream(demo_client, model):
    completion = demo_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello from PureBridge."}]
    )

    assert completion.model == model
    assert completion.choices[0].message.content == "Say hello from PureBridge."


def test_demo_chat_streams_with_the_echo_upstream(demo_client):
    stream = demo_client.chat.completions.create(
        model="codex-auto-review",
        messages=[{"role": "user", "content": "Say hello from PureBridge."}],
        stream=True,
    )

    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Say hello from PureBridge."
    )
    assert {c.model for c in chunks} == {"codex-auto-review"}


def test_demo_stream_reports_usage_when_asked(demo_client):
    chunks = list(
        demo_client.chat.completions.create(
            model="gpt-5.5", messages=USER_HI, stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[-1].usage.completion_tokens > 0


def test_setupdemo_routes_the_models_to_openai_when_its_key_is_set(
    live, transactional_db, settings, tmp_path, monkeypatch, fake_upstream
):
    settings.DATA_DIR = tmp_path
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator-openai-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_upstream.base_url)
    out = StringIO()
    call_command("setupdemo", stdout=out)
    secret = out.getvalue().split("API key:")[1].split()[0]

    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=0, timeout=20) as sdk:
        completion = sdk.chat.completions.create(model="codex-auto-review", messages=USER_HI)

    assert completion.model == "codex-auto-review"
    [sent] = fake_upstream.requests
    assert sent["body"]["model"] == "gpt-5.5"
    assert sent["headers"]["Authorization"] == "Bearer sk-operator-openai-key"


def test_setupdemo_offers_plans_and_credits_the_demo_account_once(demo, settings):
    from billing.models import Balance, Plan
    from billing.services import reconcile

    call_command("setupdemo", stdout=StringIO())  # a second start

    assert set(Plan.objects.filter(active=True).values_list("name", flat=True)) == {
        "starter",
        "builder",
        "team",
    }
    assert Balance.objects.get().amount_usd == 5
    assert reconcile() == []


def test_demo_embeddings_and_text_completions_answer_with_the_echo_upstream(demo_client):
    """A fresh install can try every OpenAI route: the echo serves embeddings
    (a unit vector per input, the same for the same input) and completions."""
    first = demo_client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "a"])
    vectors = [item.embedding for item in first.data]
    assert len(vectors) == 3 and vectors[0] == vectors[2] != vectors[1]
    assert abs(sum(v * v for v in vectors[0]) - 1) < 1e-6
    assert first.usage.prompt_tokens > 0
    sized = demo_client.embeddings.create(model="text-embedding-3-small", input="a", dimensions=4)
    assert len(sized.data[0].embedding) == 4

    completion = demo_client.completions.create(model="demo-echo", prompt="say hi", max_tokens=5)
    assert completion.choices[0].text == "say hi"
    streamed = demo_client.completions.create(
        model="demo-echo", prompt="say hi", max_tokens=5, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == "say hi"
