#!/usr/bin/env bash
# The whole test suite, as the README's quick start and CI run it:
#   1. installs what the tests need from Debian's packages (when run as root
#      and something is missing),
#   2. builds and runs every test with gcc, warnings as errors,
#   3. again under AddressSanitizer + UndefinedBehaviorSanitizer,
#   4. again under ThreadSanitizer.
# Build trees go to build-test/ (override with APSCHED_TEST_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libcmocka-dev pkg-config tzdata python3-apscheduler libsqlite3-dev sqlite3 libjansson-dev
  postgresql libpq-dev redis-server redis-tools libhiredis-dev valgrind libuv1-dev libevent-dev libglib2.0-dev
  python3-redis)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tools/test.sh: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

root=${APSCHED_TEST_BUILD_DIR:-build-test}
jobs=$(nproc 2>/dev/null || echo 2)

run_suite() { # name, extra cmake args...
  local name=$1
  shift
  echo "== $name"
  cmake -S . -B "$root/$name" -DAPSCHED_BUILD_TESTS=ON "$@" >/dev/null
  cmake --build "$root/$name" -j "$jobs" >/dev/null
  (cd "$root/$name" && ctest --output-on-failure -j "$jobs")
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

run_suite release -DCMAKE_BUILD_TYPE=Release
# The event-loop libraries are installed above: their adapter tests must
# have been built (and run), never left out quietly.
for t in test_loop_libuv test_loop_libevent test_loop_glib; do
  [ -x "$root/release/$t" ] || { echo "tools/test.sh: $t was not built" >&2; exit 1; }
done

echo "== install + find_package / pkg-config consumer"
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$root/release" --prefix "$prefix" >/dev/null
cmake -S tests/consumer -B "$root/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$root/consumer" >/dev/null
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_shared"
"$root/consumer/consumer_static"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" cc tests/consumer/main.c -o "$root/consumer/consumer_pc" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs apsched)
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_pc"
# libapsched-sqlite (SQLite is installed above, so it must have been built).
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_sqlite_shared"
"$root/consumer/consumer_sqlite_static"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" cc tests/consumer/sqlite_main.c \
  -o "$root/consumer/consumer_sqlite_pc" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs apsched-sqlite)
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_sqlite_pc"
# libapsched-pg (libpq is installed above, so it must have been built); each
# program starts a private PostgreSQL server of its own.
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_pg_shared"
"$root/consumer/consumer_pg_static"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" cc tests/consumer/pg_main.c \
  -o "$root/consumer/consumer_pg_pc" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs apsched-pg libpq)
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_pg_pc"
# libapsched-redis (hiredis is installed above, so it must have been built);
# each program starts a private redis-server of its own.
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_redis_shared"
"$root/consumer/consumer_redis_static"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" cc tests/consumer/redis_main.c \
  -o "$root/consumer/consumer_redis_pc" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs apsched-redis hiredis)
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_redis_pc"
# The adapters are installed header-only: the libraries link no event loop,
# the user's program does (all three headers compile, a job runs in libuv).
if readelf -d "$prefix/lib/libapsched.so" | grep -Eq 'NEEDED.*(libuv|libevent|libglib)'; then
  echo "tools/test.sh: libapsched links an event loop" >&2
  exit 1
fi
cc -Wall -Wextra -Werror tests/consumer/loop_main.c -o "$root/consumer/consumer_loops" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs apsched libuv libevent glib-2.0)
LD_LIBRARY_PATH="$prefix/lib" "$root/consumer/consumer_loops"
echo "== benchmark smoke runs (quick sizes; the figures come from bench/run.sh)"
"$root/release/bench_scheduler" --quick >/dev/null
"$root/release/bench_store" 1000 >/dev/null
"$root/release/bench_cron" --quick --no-python >/dev/null
"$root/release/bench_process_pool" --quick >/dev/null
"$root/release/bench_sqlite" --quick >/dev/null # SQLite is installed above: it was built
bench/instr_counts.sh --quick "$root/release" >/dev/null # callgrind: instructions per op
# libpq is installed above, so bench_pg was built; it starts its own server.
"$root/release/bench_pg" --quick >/dev/null
# hiredis is installed above, so bench_redis was built; it starts its own
# redis-server and runs redis-benchmark (redis-tools) against it.
"$root/release/bench_redis" --quick >/dev/null
# The Redis store's scripts replayed under callgrind (python3-redis is installed above).
replay_dir=$(mktemp -d)
"$root/release/redis_scripts_dump" "$replay_dir"
/usr/bin/python3 bench/redis_scripts_replay.py "$replay_dir" --jobs=2560 --reps=1 --claimers=3 --callgrind >/dev/null
rm -rf "$replay_dir"
if [ -x tools/run_examples.sh ]; then
  echo "== examples"
  tools/run_examples.sh "$root/release"
fi
run_suite asan-ubsan -DCMAKE_BUILD_TYPE=Debug -DAPSCHED_SANITIZE=address,undefined \
  -DAPSCHED_BUILD_BENCH=OFF -DAPSCHED_BUILD_EXAMPLES=OFF
run_suite tsan -DCMAKE_BUILD_TYPE=Debug -DAPSCHED_SANITIZE=thread \
  -DAPSCHED_BUILD_BENCH=OFF -DAPSCHED_BUILD_EXAMPLES=OFF
echo "== all suites passed"
