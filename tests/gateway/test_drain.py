"""What is charged when the client leaves mid-stream or the upstream cuts."""

from tests.helpers import chat_body, read_events_then_hang_up, wait_for


def test_a_client_that_leaves_is_charged_what_the_upstream_reports(
    live, api_key, make_model, fake_upstream, usage_records, settings
):
    settings.PUREBRIDGE_DRAIN_SECONDS = 5
    make_model("test-model", "fake?tokens=20&interval_ms=20&prompt=33")

    read_events_then_hang_up(live.port, api_key, chat_body(stream=True), events=2)

    assert wait_for(lambda: fake_upstream.stats["completed"] == 1, timeout=5)
    [record] = usage_records()
    assert record.status == 499
    assert (record.prompt_tokens, record.completion_tokens) == (33, 20)
    assert record.estimated is False


def test_a_drain_past_its_time_bound_closes_the_upstream_and_estimates(
    live, api_key, make_model, fake_upstream, usage_records, settings
):
    settings.PUREBRIDGE_DRAIN_SECONDS = 0.3
    make_model("test-model", "fake?tokens=50&interval_ms=50")

    read_events_then_hang_up(live.port, api_key, chat_body(stream=True), events=2)

    assert wait_for(lambda: fake_upstream.stats["client_gone"] == 1, timeout=5)
    [record] = usage_records()
    assert record.status == 499
    assert record.estimated is True
    assert record.completion_tokens < 50


def test_a_drain_past_its_byte_bound_closes_the_upstream(
    live, api_key, make_model, fake_upstream, usage_records, settings
):
    settings.PUREBRIDGE_DRAIN_SECONDS = 30
    settings.PUREBRIDGE_DRAIN_BYTES = 200
    make_model("test-model", "fake?tokens=50&interval_ms=10")

    read_events_then_hang_up(live.port, api_key, chat_body(stream=True), events=2)

    assert wait_for(lambda: fake_upstream.stats["client_gone"] == 1, timeout=5)
    [record] = usage_records()
    assert record.estimated is True


def test_an_upstream_cut_is_charged_as_delivered_and_marked_estimated(
    http, api_key, make_model, usage_records
):
    from tests.helpers import post_chat

    make_model("test-model", "fake?tokens=10&cut_after=4")

    post_chat(http, api_key, chat_body(stream=True))

    [record] = usage_records()
    assert record.estimated is True
    assert record.status == 502
    assert 0 < record.completion_tokens < 10


def test_a_final_usage_event_that_passes_the_byte_bound_is_still_charged(
    live, api_key, make_model, fake_upstream, usage_records, settings
):
    settings.PUREBRIDGE_DRAIN_SECONDS = 30
    # The chunks after the hang-up fit in the bound; the usage event does not.
    settings.PUREBRIDGE_DRAIN_BYTES = 3000
    make_model("test-model", "fake?tokens=6&interval_ms=50&prompt=33&usage_pad=5000")

    read_events_then_hang_up(live.port, api_key, chat_body(stream=True), events=2)

    assert wait_for(lambda: fake_upstream.stats["completed"] == 1, timeout=5)
    [record] = usage_records()
    assert record.status == 499
    assert (record.prompt_tokens, record.completion_tokens) == (33, 6)
    assert record.estimated is False
