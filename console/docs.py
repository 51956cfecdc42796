"""The docs page's copy-ready snippets, generated from this site's API base URL
and a model id, so what a user copies works against this deployment as is.

Only ever a placeholder key: a real secret is shown once, on the page that
creates it, and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PLACEHOLDER_KEY = "sk-xxxxxxxxxxxxxxxxxxxxxxxx"
FALLBACK_MODEL = "your-model-id"
FALLBACK_EMBEDDING_MODEL = "your-embedding-model-id"
# `curl -D -` prints header lines ending in CRLF; names come lower-case from
# HTTP/2 and from PureBridge, and grep -i covers servers that capitalise them.
# Each alternative is a whole header name or a family prefix, then the colon.
HEADER_PATTERN = (
    "^(x-request-id|x-purebridge-request-id|openai-[a-z0-9-]+|x-ratelimit-[a-z0-9-]+|date):"
)


@dataclass(frozen=True)
class Snippet:
    id: str
    code: str


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _chat_curl(v1: str, model: str) -> str:
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "Say hello from PureBridge."},
        ],
        "stream": True,
    }
    return (
        f"curl {v1}/chat/completions \\\n"
        f'  -H "Authorization: Bearer {PLACEHOLDER_KEY}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{_json(body)}'"
    )


def _sse(model: str) -> str:
    def chunk(delta: dict, finish: str | None = None) -> str:
        payload = {
            "id": "chatcmpl_123",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return "data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    lines = [
        chunk({"role": "assistant"}),
        chunk({"content": "Hello from PureBridge."}),
        chunk({}, "stop"),
        "data: [DONE]",
    ]
    return "\n\n".join(lines)


def _verify(v1: str, model: str) -> str:
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "ping"}], "stream": False},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return (
        f'export PB_API_KEY="{PLACEHOLDER_KEY}"\n'
        'CLIENT_REQUEST_ID="pb-verify-$(date +%s)"\n'
        f"BODY='{body}'\n\n"
        'printf "%s" "$BODY" | shasum -a 256\n\n'
        "# -D - prints the response headers, -o keeps the JSON body in a file\n"
        f"curl -sS -D - -o /tmp/purebridge-verify.json {v1}/chat/completions \\\n"
        '  -H "Authorization: Bearer $PB_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        '  -H "X-Client-Request-Id: $CLIENT_REQUEST_ID" \\\n'
        '  --data-binary "$BODY" \\\n'
        "  | tr -d '\\r' \\\n"
        f"  | grep -Ei '{HEADER_PATTERN}'"
    )


def _codex(v1: str, model: str) -> str:
    return (
        "# ~/.codex-purebridge/config.toml  (run: CODEX_HOME=~/.codex-purebridge codex)\n"
        'model_provider = "PureBridge"\n'
        f"model = {json.dumps(model)}\n\n"
        "[model_providers.PureBridge]\n"
        'name = "PureBridge"\n'
        f'base_url = "{v1}"\n'
        'wire_api = "responses"\n'
        "requires_openai_auth = true\n\n"
        "# ~/.codex-purebridge/auth.json\n" + json.dumps({"OPENAI_API_KEY": PLACEHOLDER_KEY})
    )


def _opencode(v1: str, model: str) -> str:
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "purebridge": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "PureBridge",
                "options": {"baseURL": v1, "apiKey": "{env:OPENAI_API_KEY}"},
                "models": {model: {"name": model}},
            }
        },
        "model": f"purebridge/{model}",
    }
    return _json(config)


def _continue(v1: str, model: str) -> str:
    return (
        "# ~/.continue/config.yaml\n"
        "name: PureBridge\n"
        "version: 1.0.0\n"
        "schema: v1\n"
        "models:\n"
        f"  - name: {json.dumps(model)}\n"
        "    provider: openai\n"
        f"    model: {json.dumps(model)}\n"
        f"    apiBase: {v1}\n"
        f"    apiKey: {PLACEHOLDER_KEY}\n"
        "    roles: [chat, edit, apply]"
    )


def _continue_autocomplete(v1: str, model: str) -> str:
    # Continue sends autocomplete (fill-in-the-middle: prompt and suffix) to
    # the legacy /v1/completions when told to.
    return (
        "# ~/.continue/config.yaml: autocomplete through POST /v1/completions\n"
        "models:\n"
        f"  - name: {json.dumps(model + ' autocomplete')}\n"
        "    provider: openai\n"
        f"    model: {json.dumps(model)}\n"
        f"    apiBase: {v1}\n"
        f"    apiKey: {PLACEHOLDER_KEY}\n"
        "    useLegacyCompletionsEndpoint: true\n"
        "    roles: [autocomplete]"
    )


def _completions_curl(v1: str, model: str) -> str:
    body = {
        "model": model,
        "prompt": "def fibonacci(n):\n",
        "suffix": "\n\nprint(fibonacci(10))\n",
        "max_tokens": 64,
        "stop": ["\n\n"],
    }
    return (
        f"curl {v1}/completions \\\n"
        f'  -H "Authorization: Bearer {PLACEHOLDER_KEY}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{_json(body)}'"
    )


def _embeddings_curl(v1: str, model: str) -> str:
    body = {
        "model": model,
        "input": ["PureBridge routes every request.", "Budgets are set per key."],
        "encoding_format": "float",
    }
    return (
        f"curl {v1}/embeddings \\\n"
        f'  -H "Authorization: Bearer {PLACEHOLDER_KEY}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{_json(body)}'"
    )


def _embeddings_tools(v1: str, model: str) -> str:
    return (
        "# Dify: Settings > Model Provider > OpenAI-API-compatible > Add Model\n"
        "#   Model Type: Text Embedding\n"
        f"#   Model Name: {model}\n"
        f"#   API endpoint URL: {v1}\n"
        f"#   API Key: {PLACEHOLDER_KEY}\n"
        "#   then choose it as the knowledge base's embedding model\n\n"
        "# n8n: Embeddings OpenAI node\n"
        f"#   Credential: OpenAI, API Key: {PLACEHOLDER_KEY}, Base URL: {v1}\n"
        f"#   Model: {model}\n\n"
        "# OpenAI Python SDK\n"
        "from openai import OpenAI\n\n"
        f'client = OpenAI(api_key="{PLACEHOLDER_KEY}", base_url="{v1}")\n'
        "vectors = client.embeddings.create(\n"
        f"    model={json.dumps(model)},\n"
        '    input=["first document", "second document"],\n'
        ")\n"
        "print(len(vectors.data), vectors.usage.prompt_tokens)"
    )


def _workflows(v1: str, model: str) -> str:
    return (
        "# Dify: Settings > Model Provider > OpenAI-API-compatible\n"
        f"#   Model name: {model}   API endpoint URL: {v1}   API Key: {PLACEHOLDER_KEY}\n"
        "# n8n: OpenAI credential > Base URL: " + v1 + "\n\n"
        "# LiteLLM proxy config.yaml\n"
        "model_list:\n"
        f"  - model_name: {json.dumps(model)}\n"
        "    litellm_params:\n"
        f"      model: {json.dumps('openai/' + model)}\n"
        f"      api_base: {v1}\n"
        "      api_key: os.environ/PUREBRIDGE_API_KEY"
    )


def _anthropic(base_url: str, model: str) -> str:
    # Anthropic's SDKs add /v1/messages themselves: the base URL has no /v1.
    return (
        "import anthropic\n\n"
        "client = anthropic.Anthropic(\n"
        f'    api_key="{PLACEHOLDER_KEY}",\n'
        f'    base_url="{base_url}",\n'
        ")\n\n"
        "with client.messages.stream(\n"
        f"    model={json.dumps(model)},\n"
        "    max_tokens=1024,\n"
        '    messages=[{"role": "user", "content": "Say hello from PureBridge."}],\n'
        ") as stream:\n"
        "    for text in stream.text_stream:\n"
        '        print(text, end="")'
    )


def _claude_code(base_url: str, model: str) -> str:
    return (
        f'export ANTHROPIC_BASE_URL="{base_url}"\n'
        f'export ANTHROPIC_API_KEY="{PLACEHOLDER_KEY}"\n'
        "# Every model the agent asks for, the main one and its small fast one:\n"
        f"export ANTHROPIC_MODEL={json.dumps(model)}\n"
        f"export ANTHROPIC_SMALL_FAST_MODEL={json.dumps(model)}\n"
        'claude -p "Explain this repository\'s layout."'
    )


# GET /v1/key's answer for a made-up key, in the shape the gateway sends
# (gateway/own_key.py; a test holds the two to the same fields).
OWN_KEY_SAMPLE = {
    "object": "api_key",
    "id": 42,
    "name": "codex-laptop",
    "prefix": "sk-pb-Ab3dE9",
    "allowed_models": None,
    "limits": {
        "rpm": 60,
        "tpm": 200000,
        "daily_budget_usd": "5",
        "monthly_budget_usd": "50",
        "quota_usd": None,
        "expires_at": None,
    },
    "spend": {
        "time_zone": "Europe/Berlin",
        "today_usd": "1.204375",
        "today_started_at": "2026-11-25T00:00:00+01:00",
        "this_month_usd": "18.50125",
        "this_month_started_at": "2026-11-01T00:00:00+01:00",
        "total_usd": "73.0421",
    },
    "remaining": {
        "daily_budget_usd": "3.795625",
        "daily_budget_resets_at": "2026-11-26T00:00:00+01:00",
        "monthly_budget_usd": "31.49875",
        "monthly_budget_resets_at": "2026-12-01T00:00:00+01:00",
        "quota_usd": None,
    },
    "balance": {"amount_usd": "126.9579", "blocked_reason": None},
}


def docs_snippets(
    *, base_url: str, model: str, models: list[str], embedding_model: str = FALLBACK_EMBEDDING_MODEL
) -> dict[str, Snippet]:
    v1 = base_url.rstrip("/") + "/v1"
    key = PLACEHOLDER_KEY
    codes = {
        "chat": _chat_curl(v1, model),
        "embeddings": _embeddings_curl(v1, embedding_model),
        "embeddings_tools": _embeddings_tools(v1, embedding_model),
        "completions": _completions_curl(v1, model),
        "continue_autocomplete": _continue_autocomplete(v1, model),
        "list_models": f'curl {v1}/models \\\n  -H "Authorization: Bearer {key}"',
        "own_key": f'curl {v1}/key \\\n  -H "Authorization: Bearer {key}"',
        "own_key_response": _json(OWN_KEY_SAMPLE),
        "sse": _sse(model),
        "verify": _verify(v1, model),
        "models_response": _json(
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": ""} for m in models],
            }
        ),
        "env": (
            f'export OPENAI_API_KEY="{key}"\n'
            f'export OPENAI_BASE_URL="{v1}"\n'
            f"export PUREBRIDGE_MODEL={json.dumps(model)}"
        ),
        "python": (
            "from openai import OpenAI\n\n"
            "client = OpenAI(\n"
            f'    api_key="{key}",\n'
            f'    base_url="{v1}",\n'
            ")\n\n"
            "response = client.chat.completions.create(\n"
            f"    model={json.dumps(model)},\n"
            '    messages=[{"role": "user", "content": "Say hello from PureBridge."}],\n'
            "    stream=True,\n"
            ")\n"
            "for chunk in response:\n"
            '    print(chunk.choices[0].delta.content or "", end="")'
        ),
        "fields": (
            "Provider: OpenAI Compatible / Custom OpenAI\n"
            f"Base URL: {v1}\n"
            f"API Key: {key}\n"
            f"Model: {model}\n"
            "Streaming: On for interactive chat; off for header verification"
        ),
        "codex": _codex(v1, model),
        "opencode": _opencode(v1, model),
        "aider": (
            f'export OPENAI_API_BASE="{v1}"\n'
            f'export OPENAI_API_KEY="{key}"\n'
            f"aider --model {json.dumps('openai/' + model)}"
        ),
        "continue": _continue(v1, model),
        "cline": (
            f"API Provider: OpenAI Compatible\nBase URL: {v1}\nAPI Key: {key}\nModel ID: {model}"
        ),
        "workflows": _workflows(v1, model),
        "anthropic": _anthropic(base_url.rstrip("/"), model),
        "claude_code": _claude_code(base_url.rstrip("/"), model),
    }
    return {
        name: Snippet(id=f"snippet-{name.replace('_', '-')}", code=code)
        for name, code in codes.items()
    }
