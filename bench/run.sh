#!/usr/bin/env bash
# Scheduler benchmarks, libapsched next to Python's APScheduler 3.9.1:
#   1. builds bench_scheduler (Release) into build-bench/,
#   2. runs it and bench/apscheduler_bench.py (/usr/bin/python3) with the same
#      arguments (--quick for a CI smoke run; see either program's usage),
#   3. prints both JSON outputs and a side-by-side table with the targets of
#      issue 2.
# Results stay in build-bench/results/*.jsonl. Both programs time real work on
# this machine: anything else running (builds, tests) shows up in the figures,
# so the load average is printed before and after.
#   bench/run.sh [--quick] [--only=ops,dispatch,lateness] [--sizes=1e3,1e6] ...
set -euo pipefail
cd "$(dirname "$0")/.."

build=${APSCHED_BENCH_BUILD_DIR:-build-bench}
python=${APSCHED_BENCH_PYTHON:-/usr/bin/python3}
results=$build/results

echo "== building bench_scheduler (Release) in $build" >&2
# Warnings are the test suite's business (tools/test.sh): a new -O3-only
# warning somewhere must not stop a measurement.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DAPSCHED_BUILD_TESTS=OFF \
  -DAPSCHED_WERROR=OFF >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target bench_scheduler >/dev/null
mkdir -p "$results"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== libapsched" >&2
"$build/bench_scheduler" "$@" | tee "$results/libapsched.jsonl"
if ! command -v "$python" >/dev/null; then
  echo "bench/run.sh: no $python: APScheduler comparison and table skipped" >&2
  exit 0
fi
echo "== APScheduler ($python)" >&2
# Without APScheduler (Debian: python3-apscheduler) the table has one column.
if ! "$python" -c "import apscheduler" 2>/dev/null; then
  echo "bench/run.sh: APScheduler is not installed for $python: skipping it" >&2
  : >"$results/apscheduler.jsonl"
else
  "$python" bench/apscheduler_bench.py "$@" | tee "$results/apscheduler.jsonl"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$python" - "$results/libapsched.jsonl" "$results/apscheduler.jsonl" \
  "$(nproc 2>/dev/null || echo '?')" "$load_before" "$load_after" <<'EOF'
import json
import sys

c_file, py_file, ncpu, load_before, load_after = sys.argv[1:6]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


c_rows, py_rows = load(c_file), load(py_file)
ops = ("add", "reschedule", "remove", "bytes_per_job")


def key(r):
    if r["bench"] in ops:
        return (r["bench"], r["jobs"])
    return (r["bench"], r.get("executor"), r.get("trigger"))


def find(rows, k):
    return next((r for r in rows if key(r) == k), None)


def sizes(rows):
    return sorted({r["jobs"] for r in rows if r["bench"] in ops})


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def human(n):
    e = len(str(n)) - 1
    return f"10^{e}" if n == 10 ** e else str(n)


# (row label, key, field, target text, check on the libapsched value)
lines = []
all_sizes = sorted(set(sizes(c_rows)) | set(sizes(py_rows)))
for bench, unit in (("add", "ns/op"), ("reschedule", "ns/op"), ("remove", "ns/op"),
                    ("bytes_per_job", "bytes")):
    field = "bytes_per_job" if bench == "bytes_per_job" else "ns_per_op"
    for n in all_sizes:
        target, check = "", None
        if n == 1000000 and bench == "add":
            target, check = "<= 500", lambda v: v <= 500
        if n == 1000000 and bench == "bytes_per_job":
            target, check = "<= 200", lambda v: v <= 200
        label = f"{bench.replace('_per_job', '/job')} @{human(n)} ({unit})"
        lines.append((label, (bench, n), field, target, check))
for ex, goal in (("inline", 2000000), ("threadpool", 500000)):
    for trig in ("interval", "date"):
        lines.append((f"dispatch {ex}, {trig} (runs/s)", ("dispatch", ex, trig), "runs_per_sec",
                      f">= {goal:,}", lambda v, g=goal: v >= g))
for ex in ("threadpool", "inline"):
    for field, name, target, check in (
            ("p50_us", "p50", "<= 30", lambda v: v <= 30),
            ("p99_us", "p99", "<= 100", lambda v: v <= 100),
            ("p999_us", "p99.9", "", None)):
        lines.append((f"lateness {ex} {name} (us)", ("lateness", ex, None), field, target, check))

table = [("scenario", "libapsched", "APScheduler 3.9.1", "target", "verdict")]
for label, k, field, target, check in lines:
    c, p = find(c_rows, k), find(py_rows, k)
    if c is None and p is None:
        continue
    cv = c.get(field) if c else None
    pv = p.get(field) if p else None
    ptext = fmt(pv)
    if c and p and "jobs" in c and p.get("jobs") != c["jobs"] and k[0] not in ops:
        ptext += f" (N={human(p['jobs'])})"
    verdict = ""
    # The targets are for the issue's sizes; a --quick run only smoke-tests.
    full_size = c is not None and (
        k[0] in ops or (k[0] == "dispatch" and c.get("jobs") == 100000) or
        (k[0] == "lateness" and c.get("jobs") == 10000 and c.get("stored") == 100000))
    if check and cv is not None:
        verdict = ("ok" if check(cv) else "MISSED") if full_size else "(size)"
    table.append((label, fmt(cv), ptext, target, verdict))

widths = [max(len(row[i]) for row in table) for i in range(5)]
print()
print(f"machine: {ncpu} CPUs, load average {load_before} before, {load_after} after")
for i, row in enumerate(table):
    print("  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) if j < 3 else cell.ljust(w)
                    for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))
lat = [r for r in c_rows if r["bench"] == "lateness"]
dis = [r for r in c_rows if r["bench"] == "dispatch"]
if dis:
    print(f"dispatch: {human(dis[0]['jobs'])} jobs due at once")
if lat:
    print(f"lateness: {human(lat[0]['jobs'])} date jobs over {lat[0]['spread_ms']} ms, "
          f"{human(lat[0]['stored'])} more stored")
EOF
