#!/usr/bin/env bash
# Runs every example program built in a build directory; fails if any of them
# is missing, exits non-zero, or takes longer than 30 s.
#
#   tools/run_examples.sh BUILD_DIR [NAME...]
#
# NAME...: run only these examples (default: one per examples/*.c).
# APSCHED_EXAMPLE_WRAPPER: a command put in front of each program, e.g.
#   APSCHED_EXAMPLE_WRAPPER="valgrind --leak-check=full --error-exitcode=1"
# APSCHED_EXAMPLE_TIMEOUT: seconds per example (default 30).
set -uo pipefail

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILD_DIR [NAME...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
shift
src=$(cd "$(dirname "$0")/.." && pwd)/examples
limit=${APSCHED_EXAMPLE_TIMEOUT:-30}
read -r -a wrapper <<<"${APSCHED_EXAMPLE_WRAPPER:-}"

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$src"/*.c; do
    [ -e "$f" ] || continue
    names+=("$(basename "$f" .c)")
  done
fi
if [ ${#names[@]} -eq 0 ]; then
  echo "run_examples: no examples in $src" >&2
  exit 1
fi

# Examples that keep their jobs in a file: each runs twice in a fresh
# directory, and the second run must continue the jobs the first one stored
# (it says "continuing N stored job(s)").
persistent=(sqlite_store)

is_persistent() {
  local p
  for p in "${persistent[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}

# Examples that share a PostgreSQL database: each gets a private server
# (tools/pg_tmp_server.sh; its URL in APSCHED_PG_URL).
is_pg() { [[ $1 == pg_* ]]; }

# Examples that use Redis: each gets a private server
# (tools/redis_tmp_server.sh; its URL in APSCHED_REDIS_URL).
is_redis() { [[ $1 == redis_* ]]; }

# Runs one example (twice for a persistent one); returns its exit status.
run_one() { # name exe
  local name=$1 exe=$2
  if is_pg "$name"; then
    "$(dirname "$src")/tools/pg_tmp_server.sh" timeout --kill-after=5 "$limit" "${wrapper[@]}" "$exe"
    return
  fi
  if is_redis "$name"; then
    "$(dirname "$src")/tools/redis_tmp_server.sh" timeout --kill-after=5 "$limit" "${wrapper[@]}" "$exe"
    return
  fi
  if ! is_persistent "$name"; then
    timeout --kill-after=5 "$limit" "${wrapper[@]}" "$exe"
    return
  fi
  local dir rc out
  dir=$(mktemp -d)
  (cd "$dir" && timeout --kill-after=5 "$limit" "${wrapper[@]}" "$exe" "$dir/jobs.sqlite")
  rc=$?
  if [ $rc -eq 0 ]; then
    echo "-- $name: second run, same file"
    out=$(cd "$dir" && timeout --kill-after=5 "$limit" "${wrapper[@]}" "$exe" "$dir/jobs.sqlite")
    rc=$?
    printf '%s\n' "$out"
    if [ $rc -eq 0 ] && ! grep -q "continuing [1-9][0-9]* stored job" <<<"$out"; then
      echo "-- $name: the second run did not continue the stored jobs"
      rc=1
    fi
  fi
  rm -rf "$dir"
  return $rc
}

failed=()
for name in "${names[@]}"; do
  exe=$build/$name
  echo "== $name"
  if [ ! -x "$exe" ]; then
    if [[ $name == *sqlite* ]] && grep -q "^APSCHED_HAVE_SQLITE:INTERNAL=OFF" "$build/CMakeCache.txt" 2>/dev/null; then
      echo "-- $name: skipped (built without libapsched-sqlite: install libsqlite3-dev)"
      continue
    fi
    if is_pg "$name" && grep -q "^APSCHED_HAVE_PG:INTERNAL=OFF" "$build/CMakeCache.txt" 2>/dev/null; then
      echo "-- $name: skipped (built without libapsched-pg: install libpq-dev)"
      continue
    fi
    if is_redis "$name" && grep -q "^APSCHED_HAVE_REDIS:INTERNAL=OFF" "$build/CMakeCache.txt" 2>/dev/null; then
      echo "-- $name: skipped (built without libapsched-redis: install libhiredis-dev)"
      continue
    fi
    if [ "$name" = redis_store ] && grep -q "^APSCHED_HAVE_SQLITE:INTERNAL=OFF" "$build/CMakeCache.txt" 2>/dev/null; then
      echo "-- $name: skipped (built without libapsched-sqlite, its other store: install libsqlite3-dev)"
      continue
    fi
    if [[ $name =~ ^(libuv|libevent|glib)_ ]]; then
      loop=${BASH_REMATCH[1]}
      if grep -q "^APSCHED_HAVE_${loop^^}:INTERNAL=OFF" "$build/CMakeCache.txt" 2>/dev/null; then
        echo "-- $name: skipped (pkg-config did not find $loop when configuring)"
        continue
      fi
    fi
    echo "-- $name: not built ($exe missing; configure with -DAPSCHED_BUILD_EXAMPLES=ON)"
    failed+=("$name")
    continue
  fi
  start=$SECONDS
  run_one "$name" "$exe"
  rc=$?
  took=$((SECONDS - start))
  if [ $rc -eq 0 ]; then
    echo "-- $name: ok (${took} s)"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "-- $name: TIMED OUT after ${limit} s"
    failed+=("$name")
  else
    echo "-- $name: FAILED with exit status $rc (${took} s)"
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "run_examples: ${#failed[@]} of ${#names[@]} failed: ${failed[*]}" >&2
  exit 1
fi
echo "run_examples: all ${#names[@]} examples passed"
