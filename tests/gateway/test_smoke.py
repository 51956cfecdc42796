import openai


def test_sdk_chats_through_purebridge_and_the_request_is_recorded(
    live, api_key, make_model, usage_records
):
    make_model("codex-auto-review")
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=api_key, max_retries=0)

    completion = client.chat.completions.create(
        model="codex-auto-review", messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.model == "codex-auto-review"
    [record] = usage_records()
    assert record.status == 200
    assert record.prompt_tokens == 11
    assert record.completion_tokens == 3
