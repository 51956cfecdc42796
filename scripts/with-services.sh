#!/usr/bin/env bash
# Start a throwaway PostgreSQL and Redis on loopback, run the given command with
# DATABASE_URL and REDIS_URL pointing at them, then stop both and delete their data.
set -euo pipefail

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pg_bin/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d /tmp/purebridge-services.XXXXXX)
chmod 755 "$work"
pg_port=$(free_port)
redis_port=$(free_port)
redis_pid=""

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/pg" "$work/redis"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_pg "$pg_bin/initdb" -D "$work/pg" -U purebridge --auth=trust -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work/redis" --daemonize no >"$work/redis/log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

export DATABASE_URL="postgres://purebridge@127.0.0.1:$pg_port/purebridge"
export REDIS_URL="redis://127.0.0.1:$redis_port/0"
export SECRET_KEY="${SECRET_KEY:-throwaway-test-secret-$(date +%s%N)}"
export PUREBRIDGE_TEST_REDIS_PORT="$redis_port"
export PUREBRIDGE_TEST_SERVICES_DIR="$work"
as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U purebridge purebridge

"$@"
