#!/usr/bin/env bash
# The embedded default: SQLite, no Redis, a background worker with its own
# scheduler, and the demo models, login and key printed before the server starts.
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-8000}
py=.venv/bin/python
base="http://$host:$port"
export PUREBRIDGE_API_BASE_URL=${PUREBRIDGE_API_BASE_URL:-$base}

$py manage.py migrate --no-input -v 0
$py manage.py setupdemo --base-url "$base"

mkdir -p var
.venv/bin/celery -A purebridge worker --beat --concurrency 1 --loglevel WARNING \
  --schedule var/celerybeat-schedule >var/worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
echo "  Background worker: pid $worker (log: var/worker.log)"
echo

.venv/bin/uvicorn purebridge.asgi:application --host "$host" --port "$port" \
  --lifespan on --no-access-log --log-level warning --no-proxy-headers &
server=$!
trap 'kill $server $worker 2>/dev/null || true' EXIT
# Ctrl-C (or a TERM) stops both and is the normal way out: exit 0, not 130/143.
trap 'kill $server $worker 2>/dev/null || true; wait $server $worker 2>/dev/null; exit 0' INT TERM
for _ in $(seq 100); do
  $py -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
echo "PureBridge is up on $base  (Ctrl-C stops it)"
wait $server || true
