#!/usr/bin/env bash
# Runs COMMAND with a private Redis server of its own, the way the tests do
# it (tests/redis_server.h): redis-server started in a temporary directory,
# listening only on the unix socket DIR/redis.sock (no TCP), without
# persistence, stopped and removed afterwards. COMMAND finds the server's
# URL in APSCHED_REDIS_URL (unix:///DIR/redis.sock).
#
#   tools/redis_tmp_server.sh COMMAND [ARG...]
#
# Needs Debian's redis-server package (and redis-cli, from redis-tools).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi
server=${APSCHED_REDIS_SERVER:-$(command -v redis-server || true)}
cli=$(command -v redis-cli || true)
if [ -z "$server" ] || [ ! -x "$server" ] || [ -z "$cli" ]; then
  echo "$0: no redis-server / redis-cli (apt-get install redis-server)" >&2
  exit 2
fi
dir=$(mktemp -d)
pid=
stop() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop EXIT
"$server" --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --dir "$dir" \
  --daemonize no --logfile "$dir/server.log" --save "" --appendonly no </dev/null &
pid=$!
# Up when it answers PING (within 30 s, as the tests wait).
for _ in $(seq 300); do
  if [ "$("$cli" -s "$dir/redis.sock" ping 2>/dev/null)" = PONG ]; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$0: redis-server exited:" >&2
    cat "$dir/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ "$("$cli" -s "$dir/redis.sock" ping 2>/dev/null)" != PONG ]; then
  echo "$0: redis-server did not answer PING within 30 s:" >&2
  cat "$dir/server.log" >&2
  exit 1
fi
export APSCHED_REDIS_URL="unix://$dir/redis.sock"
rc=0
"$@" || rc=$?
exit $rc
