#!/usr/bin/env bash
# Runs COMMAND with a private PostgreSQL server of its own, the way the
# tests do it (tests/pg_server.h): initdb in a temporary directory, the
# server listening only on a unix socket in that directory, stopped and
# removed afterwards. COMMAND finds the server's URL in APSCHED_PG_URL.
#
#   tools/pg_tmp_server.sh COMMAND [ARG...]
#
# As root the server runs as the 'postgres' user (initdb refuses root).
# Needs Debian's postgresql package (PostgreSQL 15: /usr/lib/postgresql/15).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi
bin=${APSCHED_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "$0: no PostgreSQL server binaries (apt-get install postgresql)" >&2
  exit 2
fi
dir=$(mktemp -d)
as=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$dir"
  as=(runuser -u postgres --)
fi
stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -U apsched -A trust >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses= -k $dir -p 5432" start >/dev/null ||
  { cat "$dir/server.log" >&2; exit 1; }
export APSCHED_PG_URL="postgresql://apsched@/postgres?host=$dir&port=5432"
rc=0
"$@" || rc=$?
exit $rc
