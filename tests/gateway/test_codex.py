"""Codex CLI (`codex exec`) through PureBridge, configured as the product page says.

scripts/install-codex.sh (run by `make test`) puts a pinned @openai/codex in .tools/.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

CODEX = Path(__file__).resolve().parents[2] / ".tools/codex/node_modules/.bin/codex"

pytestmark = pytest.mark.skipif(
    not CODEX.exists(), reason="Codex CLI not installed (make test installs it)"
)


def run_codex(tmp_path: Path, base_url: str, key: str, prompt: str) -> list[dict]:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'''model_provider = "PureBridge"
model = "codex-auto-review"

[model_providers.PureBridge]
name = "PureBridge"
base_url = "{base_url}"
wire_api = "responses"
requires_openai_auth = true

[analytics]
enabled = false

[otel]
metrics_exporter = "none"
'''
    )
    (home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": key}))
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    result = subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "--json", "--sandbox", "read-only", prompt],
        cwd=work,
        env={**env, "CODEX_HOME": str(home)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events, result.stderr
    return events


def agent_text(events: list[dict]) -> str:
    return "".join(
        e["item"]["text"]
        for e in events
        if e["type"] == "item.completed" and e["item"]["type"] == "agent_message"
    )


@pytest.mark.parametrize(
    "responses_api", [False, True], ids=["chat-only upstream", "responses upstream"]
)
def test_codex_exec_gets_an_answer_through_purebridge(
    live, api_key, make_model, make_provider, fake_upstream, tmp_path, responses_api
):
    provider = make_provider("fake-codex", kind="openai", responses_api=responses_api)
    make_model("codex-auto-review", "fake?tokens=3", provider=provider)

    events = run_codex(tmp_path, f"{live.url}/v1", api_key, "Say hello from PureBridge.")

    assert "turn.completed" in [e["type"] for e in events], events
    assert agent_text(events).strip() == "tok0 tok1 tok2"
    expected = "/v1/responses" if responses_api else "/v1/chat/completions"
    assert {r.get("path", "/v1/chat/completions") for r in fake_upstream.requests} == {expected}
