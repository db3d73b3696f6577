#!/usr/bin/env bash
# Instructions per operation, counted by valgrind's callgrind: a figure that
# does not move with the machine's load (timings on a shared 2-core VM move
# by +-50 %, these by well under 1 %), for comparing a change before and
# after. Runs bench_instr (bench/bench_instr.c) once per operation under
#   valgrind --tool=callgrind --toggle-collect=measure_<op>
# and divides the instructions counted inside that function by the number of
# operations. One JSON object per line:
#   {"bench":"instructions","op":"add","base":20000,"count":20000,
#    "instructions":..., "per_op":...}
#   bench/instr_counts.sh [--quick] [BUILD_DIR]
# BUILD_DIR holds a Release bench_instr (default build-bench, built here when
# missing). --quick counts 2,000 operations on 2,000 jobs (CI smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."

base=20000
count=20000
build=""
for a in "$@"; do
  case $a in
    --quick) base=2000 count=2000 ;;
    -*) echo "usage: bench/instr_counts.sh [--quick] [BUILD_DIR]" >&2; exit 2 ;;
    *) build=$a ;;
  esac
done
build=${build:-${APSCHED_BENCH_BUILD_DIR:-build-bench}}

if ! command -v valgrind >/dev/null; then
  echo "bench/instr_counts.sh: valgrind is not installed (apt-get install valgrind)" >&2
  exit 1
fi
if [ ! -x "$build/bench_instr" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DAPSCHED_BUILD_TESTS=OFF \
    -DAPSCHED_WERROR=OFF >/dev/null
  cmake --build "$build" --target bench_instr -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for op in add remove dispatch cron_next; do
  valgrind --tool=callgrind --toggle-collect="measure_$op" --callgrind-out-file="$out/$op.cg" \
    "$build/bench_instr" "$op" --base="$base" --count="$count" >"$out/$op.json" 2>"$out/$op.log" || {
    echo "bench/instr_counts.sh: bench_instr $op failed under callgrind:" >&2
    cat "$out/$op.log" >&2
    exit 1
  }
  # The "totals:" line of a callgrind file holds the instructions (Ir)
  # counted while collection was on: inside measure_<op> only.
  ir=$(awk '/^totals:/ {print $2}' "$out/$op.cg")
  if [ -z "$ir" ] || [ "$ir" -eq 0 ]; then
    echo "bench/instr_counts.sh: callgrind counted nothing inside measure_$op" >&2
    exit 1
  fi
  awk -v op="$op" -v b="$base" -v c="$count" -v ir="$ir" 'BEGIN {
    printf "{\"bench\":\"instructions\",\"op\":\"%s\",\"base\":%d,\"count\":%d,\"instructions\":%d,\"per_op\":%.0f}\n",
      op, b, c, ir, ir / c }'
done
