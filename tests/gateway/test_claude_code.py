"""Claude Code (`claude -p`) through PureBridge, configured as the docs page
says: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY.

scripts/install-claude-code.sh (run by `make test`) puts a pinned
@anthropic-ai/claude-code in .tools/; PUREBRIDGE_CLAUDE_CODE names another
binary.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

CLAUDE = Path(
    os.environ.get("PUREBRIDGE_CLAUDE_CODE")
    or Path(__file__).resolve().parents[2] / ".tools/claude-code/node_modules/.bin/claude"
)

pytestmark = pytest.mark.skipif(
    not CLAUDE.exists(), reason="Claude Code not installed (make test installs it)"
)


def run_claude(tmp_path: Path, base_url: str, key: str, model: str, prompt: str) -> dict:
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=key,
        # Every model it asks for (the main one and the small fast one) is PureBridge's.
        ANTHROPIC_MODEL=model,
        ANTHROPIC_SMALL_FAST_MODEL=model,
        ANTHROPIC_DEFAULT_HAIKU_MODEL=model,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
    )
    result = subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", "--max-turns", "1"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("route", ["anthropic", "openai"])
def test_claude_code_gets_an_answer_through_purebridge(
    live, api_key, make_model, make_provider, fake_upstream, usage_records, tmp_path, route
):
    kind = {"anthropic": "anthropic", "openai": "openai"}[route]
    provider = make_provider(f"fake-{route}", kind=kind, api_key="upstream-key")
    make_model("claude-e2e", "fake?tokens=3", provider=provider)

    answer = run_claude(tmp_path, live.url, api_key, "claude-e2e", "Say hello from PureBridge.")

    assert answer["is_error"] is False, answer
    assert answer["result"].strip() == "tok0 tok1 tok2"
    expected = "/v1/messages" if route == "anthropic" else "/v1/chat/completions"
    assert {r["path"] for r in fake_upstream.requests} == {expected}
    records = [r for r in usage_records() if r.endpoint == "messages"]
    assert records and all(r.status == 200 and r.model == "claude-e2e" for r in records)
