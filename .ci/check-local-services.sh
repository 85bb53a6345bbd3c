#!/usr/bin/env bash
# CI check of platform/devenv/with-services.sh: `go tool task run` pointed at
# a free local port where nothing listens must start a private PostgreSQL,
# reach /readyz, and leave no server behind when the task is stopped the way
# a terminal stops it (a signal to the task's process group). Twice: SIGINT
# with a new cluster (initdb), SIGTERM reusing the kept folder. Then the test
# wrapper with a private PostgreSQL and Redis around one test package, and
# the one-line hint when no binaries exist.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-local-services: FAIL: $*" >&2; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the kernel's ephemeral range: a port in it can be the local end of
# any outgoing connection (go, PostgreSQL clients), which nothing listens
# on but which makes a server's bind fail (redis-server did, 2026-12-07).
ephemeral_low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
[ "$ephemeral_low" -gt 11000 ] 2>/dev/null || ephemeral_low=32768
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    listening "$p" || { echo "$p"; return; }
  done
}

pg_port="$(free_port)"
http_port="$(free_port)"
[ "$pg_port" != "$http_port" ] || http_port="$(free_port)"
# The wrapper's folder: .local/pg-<port> in the checkout, or the temp
# folder when the postgres user cannot reach the checkout (e.g. under /root).
dir="$PWD/.local/pg-$pg_port"
rm -rf "$dir" "${TMPDIR:-/tmp}/eot-pg-$pg_port"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# run_once SIGNAL: start the task, wait for /readyz, stop it, check cleanup.
run_once() {
  local sig="$1" pgid code="" i
  echo "-- go tool task run on 127.0.0.1:$http_port, DATABASE_URL on 127.0.0.1:$pg_port (nothing listening), stop with SIG$sig"
  listening "$pg_port" && fail "port $pg_port is taken"
  set -m
  DATABASE_URL="postgres://root@127.0.0.1:$pg_port/eot?sslmode=disable" HTTP_ADDR="127.0.0.1:$http_port" \
    REDIS_URL="" LOG_LEVEL=warn go tool task run >"$log" 2>&1 &
  pgid=$!
  set +m
  for i in $(seq 1 600); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz" || true)"
    [ "$code" = 200 ] && break
    kill -0 "$pgid" 2>/dev/null || { cat "$log"; fail "the task exited before /readyz answered"; }
    sleep 0.5
  done
  [ "$code" = 200 ] || { cat "$log"; kill -KILL -- "-$pgid"; fail "/readyz never answered 200 (last $code)"; }
  echo "   /readyz 200 after ~$((i / 2)) s"
  d="$(sed -n 's/.*creating a private cluster in \([^ ]*\) .*/\1/p' "$log" | head -1)"
  [ -n "$d" ] && dir="$d"
  [ -f "$dir/data/postmaster.pid" ] || { cat "$log"; fail "no private cluster in $dir while the task runs"; }
  grep -q 'private PostgreSQL on 127.0.0.1' "$log" || { cat "$log"; fail "the wrapper did not say it started a private PostgreSQL"; }

  kill -"$sig" -- "-$pgid"
  for i in $(seq 1 600); do kill -0 "$pgid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pgid" 2>/dev/null && { cat "$log"; kill -KILL -- "-$pgid"; fail "the task did not end within 120 s of SIG$sig"; }
  wait "$pgid" 2>/dev/null || true

  listening "$pg_port" && fail "something still listens on $pg_port after the task ended"
  listening "$http_port" && fail "the service still listens on $http_port after the task ended"
  pgrep -f -- "$dir/data" >/dev/null && fail "a postgres process for $dir is still running: $(pgrep -af -- "$dir/data")"
  kill -0 -- "-$pgid" 2>/dev/null && fail "processes of the task's group are left: $(pgrep -g "$pgid" -a)"
  [ -f "$dir/data/postmaster.pid" ] && fail "$dir/data/postmaster.pid left behind (not a clean stop)"
  [ -f "$dir/data/PG_VERSION" ] || fail "$dir/data was not kept for the next run"
  grep -q 'stopped the private PostgreSQL' "$log" || { cat "$log"; fail "the wrapper did not report stopping PostgreSQL"; }
  echo "   stopped: port $pg_port and $http_port free, no postgres process, no postmaster.pid, $dir kept"
}

run_once INT
run_once TERM
grep -q 'creating a private cluster' "$log" && fail "the second run ran initdb again instead of reusing $dir"

# The test task's wrapper: a private PostgreSQL and Redis around one package.
redis_port="$(free_port)"
echo "-- the test wrapper: TEST_DATABASE_URL on :$pg_port and TEST_REDIS_URL on :$redis_port (nothing listening)"
TEST_DATABASE_URL="postgres://root@127.0.0.1:$pg_port/postgres?sslmode=disable" TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0" \
  bash platform/devenv/with-services.sh --postgres "postgres://root@127.0.0.1:$pg_port/postgres?sslmode=disable" \
  --redis "redis://127.0.0.1:$redis_port/0" -- go test -count=1 ./platform/pgtest/ 2>&1 | tee "$log"
grep -q 'private Redis on 127.0.0.1' "$log" || fail "no private Redis was started"
listening "$pg_port" && fail "PostgreSQL still listens on $pg_port"
listening "$redis_port" && fail "Redis still listens on $redis_port"

# No binaries: one line saying how to get them, and a failure.
echo "-- no PostgreSQL binaries"
if EOT_PG_BINDIR=/nonexistent bash platform/devenv/with-services.sh --postgres "postgres://root@127.0.0.1:$pg_port/x" -- true 2>"$log"; then
  fail "the wrapper succeeded without binaries"
fi
[ "$(wc -l <"$log")" -eq 1 ] && grep -q 'apt-get install postgresql' "$log" && grep -q 'brew install' "$log" && grep -q 'docker run' "$log" ||
  { cat "$log"; fail "expected one line naming apt-get, brew and docker"; }
cat "$log"

rm -rf "$dir" ".local/redis-$redis_port"
echo "check-local-services: ok"
