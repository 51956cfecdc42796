"""One usage record per /v1 request, with what it used and cost, to the cent and below."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx2
import pytest

from keys.models import ApiKey
from tests.helpers import chat_body, post_chat, usage_entry
from usage.models import UsageRecord
from usage.recorder import get_recorder

MILLION = Decimal(1_000_000)


def expected_cost(model, prompt: int, cached: int, completion: int) -> Decimal:
    return (
        (prompt - cached) * model.input_per_mtok
        + cached * model.cached_input_per_mtok
        + completion * model.output_per_mtok
    ) / MILLION


def test_every_v1_request_leaves_one_record_success_or_not(
    http, api_key, make_model, usage_records
):
    make_model()
    auth = {"Authorization": f"Bearer {api_key}"}

    post_chat(http, api_key, chat_body())
    post_chat(http, api_key, chat_body(stream=True))
    post_chat(http, api_key, chat_body("unknown-model"))
    post_chat(http, api_key, b"{bad json")
    post_chat(http, "sk-pb-" + "n" * 48, chat_body())
    http.get("/v1/models", headers=auth)
    http.get("/v1/nowhere", headers=auth)
    http.get("/v1/chat/completions", headers=auth)

    records = usage_records()
    assert [r.status for r in records] == [200, 200, 404, 400, 401, 200, 404, 405]


def test_refused_key_leaves_a_record_without_account_or_key(http, make_model, usage_records):
    make_model()

    response = post_chat(http, "sk-pb-" + "n" * 48, chat_body())

    [record] = usage_records()
    assert record.status == 401
    assert record.account_id is None
    assert record.api_key_id is None
    assert record.error_type == "invalid_api_key"
    assert record.request_id == response.headers["x-purebridge-request-id"]


def test_failed_request_records_its_account_key_and_error(
    http, make_key, make_model, usage_records
):
    make_model()
    key, secret = make_key()

    post_chat(http, secret, chat_body("unknown-model"))

    [record] = usage_records()
    assert (record.account_id, record.api_key_id) == (key.account_id, key.id)
    assert (record.status, record.error_type) == (404, "model_not_found")
    assert record.cost_usd == 0


def test_record_names_account_key_model_and_route(http, make_key, make_model, usage_records):
    make_model("codex-auto-review", "fake?tokens=2")
    key, secret = make_key()

    post_chat(http, secret, chat_body("codex-auto-review"))

    [record] = usage_records()
    assert record.account_id == key.account_id
    assert record.api_key_id == key.id
    assert record.model == "codex-auto-review"
    assert record.provider == "fake"
    assert record.upstream_model == "fake?tokens=2"
    assert record.endpoint == "chat.completions"


def test_record_has_the_token_counts_the_upstream_reported(
    http, api_key, make_model, usage_records
):
    make_model("test-model", "fake?prompt=1200&cached=1000&tokens=9&reasoning=5")

    post_chat(http, api_key, chat_body())

    [record] = usage_records()
    assert record.prompt_tokens == 1200
    assert record.cached_tokens == 1000
    assert record.completion_tokens == 9
    assert record.reasoning_tokens == 5
    assert record.estimated is False


def test_stream_record_has_the_token_counts_the_upstream_reported(
    http, api_key, make_model, usage_records
):
    make_model("test-model", "fake?prompt=1200&cached=1000&tokens=9&reasoning=5")

    post_chat(http, api_key, chat_body(stream=True))

    [record] = usage_records()
    assert (record.prompt_tokens, record.cached_tokens) == (1200, 1000)
    assert (record.completion_tokens, record.reasoning_tokens) == (9, 5)
    assert record.estimated is False


@pytest.mark.parametrize("stream", [False, True])
def test_cost_is_exact_from_the_model_prices(http, api_key, make_model, usage_records, stream):
    model = make_model(
        "test-model",
        "fake?prompt=123457&cached=23456&tokens=7&reasoning=3",
        input="1.37",
        cached="0.137",
        output="11.03",
    )

    post_chat(http, api_key, chat_body(stream=stream))

    [record] = usage_records()
    expected = expected_cost(model, prompt=123457, cached=23456, completion=7)
    # 100001 * 1.37 + 23456 * 0.137 + 7 * 11.03 = 140292.052, worked by hand
    assert expected == Decimal("0.140292052")
    assert record.cost_usd == expected


def test_cost_of_tiny_requests_is_not_rounded_away(http, api_key, make_model, usage_records):
    model = make_model("test-model", "fake?prompt=1&tokens=1", input="0.000001", output="0.000003")

    post_chat(http, api_key, chat_body())

    [record] = usage_records()
    assert record.cost_usd == Decimal("0.000000000004")
    assert record.cost_usd == expected_cost(model, prompt=1, cached=0, completion=1)


def test_record_has_status_latency_and_time_to_first_byte(http, api_key, make_model, usage_records):
    make_model("test-model", "fake?first_ms=50")

    post_chat(http, api_key, chat_body())

    [record] = usage_records()
    assert record.status == 200
    assert record.error_type == ""
    assert record.ttft_ms >= 50
    assert record.latency_ms >= record.ttft_ms


def test_record_has_the_three_request_ids(http, api_key, make_model, usage_records):
    make_model()

    response = post_chat(http, api_key, chat_body(), headers={"X-Client-Request-Id": "mine-42"})

    [record] = usage_records()
    assert record.request_id == response.headers["x-purebridge-request-id"]
    assert record.upstream_request_id == response.headers["x-request-id"]
    assert record.client_request_id == "mine-42"


def test_stream_record_has_the_three_request_ids(http, api_key, make_model, usage_records):
    make_model()

    response = post_chat(
        http, api_key, chat_body(stream=True), headers={"X-Client-Request-Id": "mine-43"}
    )

    [record] = usage_records()
    assert record.request_id == response.headers["x-purebridge-request-id"]
    assert record.upstream_request_id == response.headers["x-request-id"]
    assert record.client_request_id == "mine-43"


@pytest.mark.parametrize("stream", [False, True])
def test_record_without_upstream_usage_is_estimated(
    http, api_key, make_model, usage_records, stream
):
    make_model("test-model", "fake?no_usage=1&tokens=8")

    post_chat(http, api_key, chat_body(stream=stream))

    [record] = usage_records()
    assert record.status == 200
    assert record.estimated is True
    assert record.prompt_tokens > 0
    assert record.completion_tokens > 0
    assert record.cost_usd > 0


def test_key_last_used_at_is_set(http, make_key, make_model, usage_records):
    make_model()
    key, secret = make_key()
    assert key.last_used_at is None

    post_chat(http, secret, chat_body())
    usage_records()

    key.refresh_from_db()
    assert key.last_used_at is not None


def test_refused_request_does_not_touch_last_used_at(http, make_key, make_model, usage_records):
    make_model()
    key, _ = make_key()

    post_chat(http, "sk-pb-" + key.lookup + "x" * 36, chat_body())
    usage_records()

    assert ApiKey.objects.get(pk=key.pk).last_used_at is None


def test_upstream_failure_is_recorded_with_its_route(http, api_key, make_model, usage_records):
    make_model("test-model", "fake?status=500")

    post_chat(http, api_key, chat_body())

    [record] = usage_records()
    assert record.status == 502
    assert record.error_type == "upstream_error"
    assert record.upstream_model == "fake?status=500"
    assert record.cost_usd == 0
    assert record.estimated is False


def test_concurrent_requests_are_each_recorded_once(live, api_key, make_model, usage_records):
    make_model("test-model", "fake?tokens=2&interval_ms=20")

    def one(i: int) -> str:
        with httpx2.Client(base_url=live.url, timeout=20) as http:
            response = post_chat(http, api_key, chat_body(stream=bool(i % 2)))
            return response.headers["x-purebridge-request-id"]

    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(one, range(30)))

    records = usage_records()
    assert sorted(r.request_id for r in records) == sorted(ids)
    assert {r.status for r in records} == {200}


def test_upstream_timeout_is_recorded_as_504(
    http, api_key, make_provider, make_model, usage_records
):
    provider = make_provider(first_byte_timeout=0.3)
    make_model("test-model", "fake?hang=1", provider=provider)

    post_chat(http, api_key, chat_body())

    [record] = usage_records()
    assert (record.status, record.error_type) == (504, "upstream_timeout")


def test_record_of_a_key_deleted_before_the_write_is_still_kept(make_key):
    deleted, _ = make_key(name="deleted")
    kept, _ = make_key(name="kept")
    deleted_id = deleted.id
    deleted.delete()
    for request_id, key_id in (("pb-gone", deleted_id), ("pb-here", kept.id)):
        get_recorder().record(
            usage_entry(kept, request_id, api_key_id=key_id, cost_usd=Decimal("0.1"))
        )

    assert get_recorder().flush(10)

    records = dict(UsageRecord.objects.values_list("request_id", "api_key_id"))
    # Records are never changed: the deleted key's id stays for attribution.
    assert records == {"pb-gone": deleted_id, "pb-here": kept.id}


def test_upstream_error_code_longer_than_the_record_field_is_still_recorded(
    live, http, api_key, make_model, own_recorder
):
    make_model("test-model", "fake?status=400&code=" + "c" * 100)

    response = post_chat(http, api_key, chat_body())

    assert response.status_code == 400
    live.wait_idle()
    assert own_recorder.flush(2), "the usage writer is stuck on this request's record"
    [record] = UsageRecord.objects.all()
    assert record.request_id == response.headers["x-purebridge-request-id"]


def test_a_record_the_database_refuses_does_not_hold_up_the_others(own_recorder, make_key):
    key, _ = make_key()
    for request_id, error_type in (("pb-refused", "e" * 100), ("pb-fine", "")):
        own_recorder.record(usage_entry(key, request_id, status=400, error_type=error_type))

    own_recorder.flush(2)

    assert UsageRecord.objects.filter(request_id="pb-fine").exists()
