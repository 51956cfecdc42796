#!/usr/bin/env bash
# Try two real coding tools against a local PureBridge: opencode (npm
# `opencode-ai`, through the product page's `@ai-sdk/openai-compatible`
# provider block) and Aider (PyPI `aider-chat`, through litellm's `openai/`
# prefix and OPENAI_API_BASE).
#
# What it does, end to end:
#   1. installs each tool under /tmp if it is not there yet
#      (opencode: npm install --prefix $OPENCODE_PREFIX opencode-ai;
#       Aider:    python3.11 -m venv $AIDER_VENV && pip install aider-chat);
#   2. starts PureBridge's embedded default (SQLite, no Redis) with a private
#      temporary data dir on a free loopback port, with the demo models on the
#      built-in "echo" upstream (which answers with the last user message, so
#      each tool's "answer" is its own prompt echoed back: that is expected);
#   3. runs `opencode run MESSAGE` and `aider ... --message MESSAGE` with HOME
#      and the XDG dirs in a temporary dir, so nothing global is touched;
#   4. prints PASS/FAIL per tool with the answer and the usage records the
#      tool's requests left in PureBridge;
#   5. stops everything it started, by PID, and removes its temp dirs (EXIT trap).
#
# Usage:   scripts/try-clients.sh            (from anywhere; needs .venv: `make run` once)
# Env:     OPENCODE_PREFIX (default /tmp/opencode), AIDER_VENV (default /tmp/aider-venv),
#          PYTHON311 (default python3.11), KEEP_TMP=1 to keep the temp dirs and logs,
#          TOOL_TIMEOUT seconds per tool (default 300), MODEL (default codex-auto-review;
#          any demo model id, or a missing one to see both tools FAIL).
# Exit:    0 if both tools pass, 1 otherwise.
#
# Things the tools print that are not failures (there is no internet here):
#   opencode logs "Failed to fetch models.dev" (GET https://models.opencode.ai/api.json)
#   and carries on; Aider prints a NameResolutionError for raw.githubusercontent.com
#   (litellm's model_prices_and_context_window.json) and "Unknown context window
#   size and costs, using sane defaults", and carries on. Aider's echoed prompt
#   contains its own file-listing example, so it "applies" path/to/filename.js
#   inside its throwaway work dir.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OPENCODE_PREFIX=${OPENCODE_PREFIX:-/tmp/opencode}
AIDER_VENV=${AIDER_VENV:-/tmp/aider-venv}
PYTHON311=${PYTHON311:-python3.11}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-300}
MESSAGE="Say hello from PureBridge."
MODEL=${MODEL:-codex-auto-review}
py="$repo/.venv/bin/python"

[[ -x $py ]] || { echo "no $repo/.venv: run 'make run' (or the Makefile's venv step) once" >&2; exit 2; }

tmp=$(mktemp -d /tmp/try-clients.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  if [[ ${KEEP_TMP:-} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

strip_ansi() { sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\r//g'; }

# --- 1. installs ------------------------------------------------------------
opencode="$OPENCODE_PREFIX/node_modules/.bin/opencode"
if ! "$opencode" --version >/dev/null 2>&1; then
  echo "== installing opencode-ai into $OPENCODE_PREFIX"
  mkdir -p "$OPENCODE_PREFIX"
  npm install --prefix "$OPENCODE_PREFIX" --no-fund --no-audit opencode-ai >"$tmp/opencode-install.log" 2>&1 \
    || { cat "$tmp/opencode-install.log"; echo "FAIL: npm install opencode-ai"; exit 1; }
fi
aider="$AIDER_VENV/bin/aider"
if ! "$aider" --version >/dev/null 2>&1; then
  echo "== installing aider-chat into $AIDER_VENV (large; a few minutes)"
  "$PYTHON311" -m venv "$AIDER_VENV" && "$AIDER_VENV/bin/pip" install -q aider-chat >"$tmp/aider-install.log" 2>&1 \
    || { tail -30 "$tmp/aider-install.log"; echo "FAIL: pip install aider-chat"; exit 1; }
fi
echo "opencode $("$opencode" --version 2>/dev/null)   $("$aider" --version 2>/dev/null)"

# --- 2. PureBridge ------------------------------------------------------------
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
data="$tmp/pb-data"
mkdir -p "$data"
# The embedded default, whatever this shell has: no provider keys (setupdemo
# would route the demo models to a real upstream), no Postgres, no Redis.
pb_env=(env -u OPENAI_API_KEY -u OPENAI_BASE_URL -u ANTHROPIC_API_KEY -u ANTHROPIC_BASE_URL
        -u DATABASE_URL -u REDIS_URL PUREBRIDGE_DATA_DIR="$data" PUREBRIDGE_API_BASE_URL="$base")
cd "$repo"
"${pb_env[@]}" "$py" manage.py migrate --no-input -v 0 || { echo "FAIL: migrate"; exit 1; }
"${pb_env[@]}" "$py" manage.py setupdemo --base-url "$base" >/dev/null || { echo "FAIL: setupdemo"; exit 1; }
key=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_key"])' "$data/demo.json")
"${pb_env[@]}" .venv/bin/uvicorn purebridge.asgi:application --host 127.0.0.1 --port "$port" \
  --no-access-log --log-level warning >"$tmp/purebridge.log" 2>&1 &
pids+=($!)
up=
for _ in $(seq 100); do
  curl -fsS "$base/health" >/dev/null 2>&1 && { up=1; break; }
  sleep 0.1
done
[[ -n $up ]] || { cat "$tmp/purebridge.log"; echo "FAIL: PureBridge did not come up on $base"; exit 1; }
echo "PureBridge up on $base (pid ${pids[0]}, data $data)"

# Usage records with id > $1, one per line (the server flushes them shortly after each request).
usage_after() {
  "${pb_env[@]}" "$py" manage.py shell -v 0 -c "
from usage.models import UsageRecord
for r in UsageRecord.objects.filter(id__gt=$1).order_by('id').values('id','endpoint','model','status','stream','prompt_tokens','completion_tokens','error_type'):
    print(r)" 2>/dev/null
}
last_usage_id() {
  "${pb_env[@]}" "$py" manage.py shell -v 0 -c "
from usage.models import UsageRecord
print(UsageRecord.objects.order_by('-id').values_list('id', flat=True).first() or 0)" 2>/dev/null
}
# Wait up to ~5 s for the records of a tool's requests to be flushed.
usage_since() {
  local since=$1 out=
  for _ in $(seq 10); do
    sleep 0.5
    out=$(usage_after "$since")
    [[ -n $out ]] && break
  done
  printf '%s\n' "$out"
}

# The tools run with a clean environment: only what they need, HOME and XDG in $tmp.
tool_env() {
  local home=$1
  shift
  env -i PATH="$PATH" LANG=C.UTF-8 TERM=dumb HOME="$home" XDG_CONFIG_HOME="$home/.config" \
    XDG_DATA_HOME="$home/.local/share" XDG_CACHE_HOME="$home/.cache" XDG_STATE_HOME="$home/.local/state" "$@"
}

results=()
verdict() { # tool pass|fail answer-file usage
  local tool=$1 ok=$2 answer=$3 usage=$4
  echo
  if [[ $ok == pass ]]; then echo "PASS  $tool"; results+=(pass); else echo "FAIL  $tool"; results+=(fail); fi
  echo "  answer (first lines):"
  grep -v '^[[:space:]]*$' "$answer" | head -5 | sed 's/^/    | /'
  echo "  usage records:"
  if [[ -n $usage ]]; then printf '%s\n' "$usage" | sed 's/^/    /'; else echo "    (none)"; fi
}
# A tool passes when it exits 0, its answer holds the echoed prompt, it made at
# least one request, and every request it made got a 200 on chat.completions.
judge() { # rc answer-file usage
  [[ $1 == 0 ]] && grep -qF "$MESSAGE" "$2" && [[ -n $3 ]] \
    && ! grep -v "'status': 200" <<<"$3" | grep -q . && grep -q "'endpoint': 'chat.completions'" <<<"$3"
}

# --- 3a. opencode -----------------------------------------------------------------
oc_proj="$tmp/opencode-project"
mkdir -p "$oc_proj" "$tmp/opencode-home"
cat >"$oc_proj/opencode.json" <<EOF
{"\$schema": "https://opencode.ai/config.json", "provider": {"purebridge": {"npm": "@ai-sdk/openai-compatible", "name": "PureBridge", "options": {"baseURL": "$base/v1", "apiKey": "{env:OPENAI_API_KEY}"}, "models": {"$MODEL": {"name": "$MODEL"}}}}, "model": "purebridge/$MODEL"}
EOF
echo
echo "== opencode run \"$MESSAGE\"   (in $oc_proj)"
since=$(last_usage_id)
(cd "$oc_proj" && tool_env "$tmp/opencode-home" OPENAI_API_KEY="$key" \
  timeout "$TOOL_TIMEOUT" "$opencode" run "$MESSAGE" </dev/null >"$tmp/opencode.out" 2>"$tmp/opencode.err")
rc=$?
strip_ansi <"$tmp/opencode.err" | grep -v '^[[:space:]]*$' | sed 's/^/  stderr| /'
strip_ansi <"$tmp/opencode.out" >"$tmp/opencode.answer"
usage=$(usage_since "$since")
if judge "$rc" "$tmp/opencode.answer" "$usage"; then ok=pass; else ok=fail; echo "  exit code $rc"; fi
grep -h "level=ERROR" "$tmp"/opencode-home/.local/share/opencode/log/*.log 2>/dev/null | cut -c1-300 | sed 's/^/  log| /'
verdict opencode "$ok" "$tmp/opencode.answer" "$usage"

# --- 3b. Aider ----------------------------------------------------------------------
ai_proj="$tmp/aider-project"
mkdir -p "$ai_proj" "$tmp/aider-home"
echo
echo "== aider --model openai/$MODEL --message \"$MESSAGE\"   (in $ai_proj)"
since=$(last_usage_id)
(cd "$ai_proj" && tool_env "$tmp/aider-home" OPENAI_API_BASE="$base/v1" OPENAI_API_KEY="$key" \
  timeout "$TOOL_TIMEOUT" "$aider" --model "openai/$MODEL" --no-git --yes-always --no-check-update \
  --analytics-disable --no-show-release-notes --no-auto-commits --message "$MESSAGE" \
  </dev/null >"$tmp/aider.out" 2>"$tmp/aider.err")
rc=$?
# Aider's banner and warnings, then the answer after "Repo-map: ...".
strip_ansi <"$tmp/aider.out" | sed -n '1,/^Repo-map:/p' | grep -v '^[[:space:]]*$' | cut -c1-200 | sed 's/^/  aider| /'
strip_ansi <"$tmp/aider.err" | grep -v '^[[:space:]]*$' | sed 's/^/  stderr| /'
strip_ansi <"$tmp/aider.out" | sed '1,/^Repo-map:/d' >"$tmp/aider.answer"
grep -E '^(Tokens:|Applied edit)|Error' "$tmp/aider.answer" | sed 's/^/  aider| /'
usage=$(usage_since "$since")
if judge "$rc" "$tmp/aider.answer" "$usage" && ! grep -qE 'litellm\.[A-Za-z]*Error|APIConnectionError' "$tmp/aider.out"; then
  ok=pass
else
  ok=fail; echo "  exit code $rc"
fi
verdict aider "$ok" "$tmp/aider.answer" "$usage"

echo
if [[ " ${results[*]} " == *" fail "* ]]; then echo "RESULT: FAIL"; exit 1; fi
echo "RESULT: PASS (both tools)"
