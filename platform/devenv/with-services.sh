#!/usr/bin/env bash
# with-services.sh: run a command with the PostgreSQL (and Redis) it needs.
#
#   bash platform/devenv/with-services.sh --postgres URL [--redis URL] -- CMD...
#
# For each URL that points at this machine (localhost, 127.x, ::1, a Unix
# socket) where nothing answers, a private server is started from the
# binaries installed here, on that port, and stopped when CMD ends:
#   PostgreSQL: initdb (once) into .local/pg-<port>/data, trust auth, the
#     URL's user (default root) as superuser; the folder is kept, so the
#     data survives between runs (delete the folder to start afresh).
#   Redis: redis-server on that port, no persistence, in .local/redis-<port>.
# A server that answers is never touched, and a remote URL is left alone.
# Without binaries it prints one line saying how to get them and fails.
#
# CMD runs in its own process group; SIGINT/SIGTERM/SIGHUP to this script
# (Ctrl-C, or a signal to go-task's process group) go to that whole group
# (`go run` and the program it built), and the servers are stopped only
# after the group is gone.
#
# Env: EOT_PG_BINDIR forces the directory holding initdb/pg_ctl/postgres.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pg_url="" redis_url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres) pg_url="$2"; shift 2 ;;
    --redis) redis_url="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "with-services.sh: unknown argument $1 (usage: --postgres URL [--redis URL] -- CMD...)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "with-services.sh: no command after --" >&2; exit 2; }

say() { echo "with-services: $*" >&2; }

# urldecode turns %2F into / (socket directories in a URL's host).
urldecode() { local s="${1//+/ }"; printf '%b' "${s//%/\\x}"; }

# parse_url URL DEFAULT_PORT sets u_user, u_host, u_port and u_socket (the
# socket directory when the URL names one, else empty).
parse_url() {
  local url="$1" rest auth hostport query
  u_user="" u_host="" u_port="$2" u_socket=""
  rest="${url#*://}"
  query=""
  case "$rest" in *\?*) query="${rest#*\?}"; rest="${rest%%\?*}" ;; esac
  rest="${rest%%/*}"
  case "$rest" in *@*) auth="${rest%@*}"; hostport="${rest##*@}"; u_user="$(urldecode "${auth%%:*}")" ;; *) hostport="$rest" ;; esac
  case "$hostport" in
    \[*\]:*) u_host="${hostport%%]*}"; u_host="${u_host#[}"; u_port="${hostport##*]:}" ;;
    \[*\]) u_host="${hostport#[}"; u_host="${u_host%]}" ;;
    *:*) u_host="${hostport%%:*}"; u_port="${hostport##*:}" ;;
    *) u_host="$hostport" ;;
  esac
  u_host="$(urldecode "$u_host")"
  # libpq-style query parameters override the authority.
  local kv IFS='&'
  for kv in $query; do
    case "$kv" in
      host=*) u_host="$(urldecode "${kv#host=}")" ;;
      port=*) u_port="${kv#port=}" ;;
      user=*) u_user="$(urldecode "${kv#user=}")" ;;
    esac
  done
  case "$u_host" in /*) u_socket="$u_host" ;; esac
}

is_local() {
  [ -n "$u_socket" ] && return 0
  case "$u_host" in ""|localhost|127.*|::1) return 0 ;; esac
  return 1
}

# tcp_answers HOST PORT: something accepts connections there.
tcp_answers() {
  local h="$1"
  [ -z "$h" ] && h=localhost
  (exec 3<>"/dev/tcp/$h/$2") 2>/dev/null
}

pg_answers() {
  if [ -n "$u_socket" ]; then
    if [ -n "$pg_bin" ] && [ -x "$pg_bin/pg_isready" ]; then
      "$pg_bin/pg_isready" -q -h "$u_socket" -p "$u_port"; [ $? -le 1 ]; return
    fi
    [ -S "$u_socket/.s.PGSQL.$u_port" ]
    return
  fi
  tcp_answers "$u_host" "$u_port"
}

find_pg_bin() {
  local d
  if [ -n "${EOT_PG_BINDIR:-}" ]; then
    [ -x "$EOT_PG_BINDIR/initdb" ] && [ -x "$EOT_PG_BINDIR/pg_ctl" ] && echo "$EOT_PG_BINDIR"
    return
  fi
  if d="$(command -v initdb 2>/dev/null)" && [ -x "$(dirname "$d")/pg_ctl" ]; then dirname "$d"; return; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin /opt/homebrew/opt/postgresql@*/bin /usr/local/opt/postgresql@*/bin /usr/pgsql-*/bin 2>/dev/null | sort -rV); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
}

# as_pg runs a PostgreSQL binary: as the postgres user when we are root
# (initdb and pg_ctl refuse root), else as ourselves.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_dir="" pg_tmp="" redis_pid="" redis_dir=""
stop_services() {
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null
    wait "$redis_pid" 2>/dev/null
    say "stopped the private Redis (port $redis_port)"
    redis_pid=""
  fi
  if [ -n "$pg_dir" ]; then
    as_pg "$pg_bin/pg_ctl" stop -D "$pg_dir/data" -m fast -w -t 60 >/dev/null 2>&1 ||
      say "pg_ctl stop failed; see $pg_dir/postgres.log"
    say "stopped the private PostgreSQL (port $pg_port; data kept in $pg_dir)"
    pg_dir=""
    [ -n "$pg_tmp" ] && rm -rf "$pg_tmp"
  fi
}

pg_bin=""
start_postgres() {
  parse_url "$1" 5432
  is_local || return 0
  pg_bin="$(find_pg_bin)"
  pg_answers && return 0
  local where="${u_socket:-${u_host:-localhost}}:$u_port"
  if [ -z "$pg_bin" ]; then
    say "no PostgreSQL answers at $where and no PostgreSQL server binaries were found; get them with: sudo apt-get install postgresql (Debian/Ubuntu) | brew install postgresql@15 (macOS) | docker run -d -p $u_port:5432 -e POSTGRES_USER=root -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15 (Docker)"
    exit 1
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    say "no PostgreSQL answers at $where; running as root needs a 'postgres' user to run initdb/pg_ctl as (it comes with the postgresql package)"
    exit 1
  fi
  pg_port="$u_port"
  local dir="$root/.local/pg-$pg_port" user="${u_user:-root}" listen="localhost" sockdir
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  # The postgres user must reach the folder; a checkout under /root is not
  # reachable, so such a cluster lives in the temp folder instead.
  if ! as_pg test -w "$dir"; then
    rmdir "$dir" 2>/dev/null
    dir="${TMPDIR:-/tmp}/eot-pg-$pg_port"
    mkdir -p "$dir"; chown postgres: "$dir"
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    say "no PostgreSQL answers at $where: creating a private cluster in $dir ($("$pg_bin/postgres" --version))"
    as_pg "$pg_bin/initdb" -D "$dir/data" -U "$user" --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
      { say "initdb failed; see $dir/initdb.log"; tail -5 "$dir/initdb.log" >&2; exit 1; }
    echo "$user" >"$dir/superuser"
  elif [ "$(cat "$dir/superuser" 2>/dev/null)" != "$user" ]; then
    say "note: $dir was created with superuser '$(cat "$dir/superuser" 2>/dev/null)', the URL uses '$user'; delete the folder to recreate it"
  fi
  # Sockets in the cluster's own folder (short enough, or the temp folder),
  # unless the URL names a socket directory.
  sockdir="$dir"
  if [ ${#sockdir} -gt 90 ]; then
    sockdir="$(mktemp -d)"; pg_tmp="$sockdir"
    [ "$(id -u)" = 0 ] && chown postgres: "$sockdir"
  fi
  if [ -n "$u_socket" ]; then listen=""; sockdir="$u_socket"
  else case "$u_host" in 127.*|::1) listen="$u_host" ;; esac; fi
  pg_dir="$dir"
  if ! as_pg "$pg_bin/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c port=$pg_port -c listen_addresses='$listen' -c unix_socket_directories='$sockdir' -c max_connections=200" >/dev/null 2>&1; then
    say "pg_ctl start failed; see $dir/postgres.log"; tail -5 "$dir/postgres.log" >&2
    pg_dir=""; exit 1
  fi
  say "private PostgreSQL on $where (superuser $user, trust), stopped when the command ends"
}

start_redis() {
  parse_url "$1" 6379
  is_local || return 0
  [ -n "$u_socket" ] && return 0
  tcp_answers "$u_host" "$u_port" && return 0
  local where="${u_host:-localhost}:$u_port" bind="127.0.0.1"
  if ! command -v redis-server >/dev/null 2>&1; then
    say "no Redis answers at $where and redis-server is not installed; get it with: sudo apt-get install redis-server (Debian/Ubuntu) | brew install redis (macOS) | docker run -d -p $u_port:6379 redis:7 (Docker)"
    exit 1
  fi
  case "$u_host" in 127.*|::1) bind="$u_host" ;; localhost|"") bind="127.0.0.1 ::1" ;; esac
  redis_port="$u_port"
  redis_dir="$root/.local/redis-$redis_port"
  mkdir -p "$redis_dir"
  # Its own process group (set -m), so Ctrl-C stops the command, not Redis.
  set -m
  # shellcheck disable=SC2086
  redis-server --port "$redis_port" --bind $bind --save "" --appendonly no --dir "$redis_dir" \
    --logfile "$redis_dir/redis.log" --daemonize no &
  redis_pid=$!
  set +m
  for _ in $(seq 1 50); do tcp_answers "$u_host" "$redis_port" && break; sleep 0.1; done
  tcp_answers "$u_host" "$redis_port" || { say "redis-server did not start; see $redis_dir/redis.log"; exit 1; }
  say "private Redis on $where, stopped when the command ends"
}

trap stop_services EXIT
[ -n "$pg_url" ] && start_postgres "$pg_url"
[ -n "$redis_url" ] && start_redis "$redis_url"

# Nothing started: run the command as is.
if [ -z "$pg_dir" ] && [ -z "$redis_pid" ]; then
  trap - EXIT
  exec "$@"
fi

# CMD in its own process group, so a signal reaches `go run`'s child too.
set -m
"$@" &
child=$!
set +m
forward() { kill -"$1" -- "-$child" 2>/dev/null; }
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward HUP' HUP
status=0
while :; do
  wait "$child"; status=$?
  # wait returns early (>128) when a trapped signal arrives; go on waiting.
  kill -0 "$child" 2>/dev/null || break
done
# `go run` may exit before the program it started: wait for the group.
for _ in $(seq 1 300); do kill -0 -- "-$child" 2>/dev/null || break; sleep 0.1; done
exit "$status"
