#!/usr/bin/env bash
# Scheduler benchmarks, libapsched next to Python's APScheduler 3.9.1:
#   1. builds bench_scheduler, and bench_sqlite when the SQLite store library
#      (apsched_sqlite) is part of the build (Release), into build-bench/,
#   2. runs bench_scheduler and bench/apscheduler_bench.py (/usr/bin/python3)
#      with the same arguments (--quick for a smoke run; see either program's
#      usage): ops, dispatch in user scenarios (due at once or spread over
#      10 s; interval, date or mixed jobs; hosted or background thread; with
#      or without a listener on every event), memory per job shape and
#      lateness, each figure as min / median / max over its repetitions
#      with the load average; prints both JSON outputs and a side-by-side
#      table with the ratio of medians and the targets of issue 2,
#   3. runs bench_sqlite and bench/apscheduler_sqlite_bench.py (job stores in
#      a SQLite file: adds, batched adds, dispatch, bytes per job, and a raw
#      SQLite insert probe, each for durability FULL and NORMAL) and prints a
#      second table with the targets of issue 8,
#   4. runs bench_pg when libapsched-pg is built (libpq found): a private
#      PostgreSQL server with fsync on, 1-3 scheduler processes on one schema,
#      the raw claim probe, commits and statements per claimed batch, failover
#      and wake-up; then bench/apscheduler_pg_bench.py on the same server
#      (bench_pg -- COMMAND), and a third table with the targets of issue 9,
#   5. runs bench_redis when libapsched-redis is built (hiredis found): a
#      private redis-server (appendonly yes, appendfsync everysec), 1 and 3
#      scheduler processes on one prefix, adds, round trips per claimed run,
#      cross-process wake-up, redis-benchmark on the same socket; then bench/apscheduler_redis_bench.py
#      on the same server (bench_redis -- COMMAND), and a fourth table with
#      the targets of issue 10.
# --only= picks parts: ops, dispatch, memory, lateness (bench_scheduler),
# sqlite, pg and redis; --quick goes to every program, the other options to the
# scheduler part. Results stay in build-bench/results/*.jsonl. The programs
# time real work on this machine: anything else running (builds, tests) shows
# up in the figures, so the load average is printed before and after, and
# with each figure.
#   bench/run.sh [--quick] [--reps=N] [--only=ops,dispatch,memory,lateness,sqlite,pg,redis] ...
set -euo pipefail
cd "$(dirname "$0")/.."

build=${APSCHED_BENCH_BUILD_DIR:-build-bench}
python=${APSCHED_BENCH_PYTHON:-/usr/bin/python3}
results=$build/results
ncpu=$(nproc 2>/dev/null || echo 2)

run_sched=true
run_sqlite=true
run_pg=true
run_redis=true
quick=()
sched_args=()
for a in "$@"; do
  case $a in
    --only=*)
      IFS=, read -ra parts <<<"${a#--only=}"
      run_sqlite=false
      run_pg=false
      run_redis=false
      keep=()
      for p in "${parts[@]}"; do
        case $p in
          sqlite) run_sqlite=true ;;
          pg) run_pg=true ;;
          redis) run_redis=true ;;
          *) keep+=("$p") ;;
        esac
      done
      if [ ${#keep[@]} -gt 0 ]; then
        sched_args+=("--only=$(IFS=,; echo "${keep[*]}")")
      elif $run_sqlite || $run_pg || $run_redis; then
        run_sched=false
      else
        sched_args+=("$a") # nothing selected: bench_scheduler prints its usage
      fi
      ;;
    --quick)
      quick=(--quick)
      sched_args+=("$a")
      ;;
    *) sched_args+=("$a") ;;
  esac
done

echo "== building benchmarks (Release) in $build" >&2
# Warnings are the test suite's business (tools/test.sh): a new -O3-only
# warning somewhere must not stop a measurement.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DAPSCHED_BUILD_TESTS=OFF \
  -DAPSCHED_WERROR=OFF >/dev/null
targets=()
if $run_sched; then targets+=(bench_scheduler); fi
have_sqlite=false
if $run_sqlite; then
  if grep -qs '/bench_sqlite\.dir$' "$build/CMakeFiles/TargetDirectories.txt"; then
    targets+=(bench_sqlite)
    have_sqlite=true
  else
    echo "bench/run.sh: this build has no bench_sqlite (the apsched_sqlite library is" \
      "not built): SQLite part skipped" >&2
  fi
fi
have_pg=false
if $run_pg; then
  if grep -qs '/bench_pg\.dir$' "$build/CMakeFiles/TargetDirectories.txt"; then
    targets+=(bench_pg)
    have_pg=true
  else
    echo "bench/run.sh: this build has no bench_pg (libapsched-pg is not built: no" \
      "libpq): PostgreSQL part skipped" >&2
  fi
fi
have_redis=false
if $run_redis; then
  if grep -qs '/bench_redis\.dir$' "$build/CMakeFiles/TargetDirectories.txt"; then
    targets+=(bench_redis)
    have_redis=true
  else
    echo "bench/run.sh: this build has no bench_redis (libapsched-redis is not built: no" \
      "hiredis): Redis part skipped" >&2
  fi
fi
if [ ${#targets[@]} -gt 0 ]; then
  cmake --build "$build" -j "$ncpu" --target "${targets[@]}" >/dev/null
fi
mkdir -p "$results"
have_python=true
if ! command -v "$python" >/dev/null; then
  echo "bench/run.sh: no $python: APScheduler comparisons and tables skipped" >&2
  have_python=false
fi

# ------------------------------------------------------------ scheduler part
if $run_sched; then
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== libapsched" >&2
"$build/bench_scheduler" "${sched_args[@]}" | tee "$results/libapsched.jsonl"
if $have_python; then
echo "== APScheduler ($python)" >&2
# Without APScheduler (Debian: python3-apscheduler) the table has one column.
if ! "$python" -c "import apscheduler" 2>/dev/null; then
  echo "bench/run.sh: APScheduler is not installed for $python: skipping it" >&2
  : >"$results/apscheduler.jsonl"
else
  "$python" bench/apscheduler_bench.py "${sched_args[@]}" | tee "$results/apscheduler.jsonl"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$python" - "$results/libapsched.jsonl" "$results/apscheduler.jsonl" \
  "$(nproc 2>/dev/null || echo '?')" "$load_before" "$load_after" <<'EOF'
import json
import sys
import textwrap

c_file, py_file, ncpu, load_before, load_after = sys.argv[1:6]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


c_rows, py_rows = load(c_file), load(py_file)
ops = ("add", "reschedule", "remove", "bytes_per_job")


def key(r):
    b = r["bench"]
    if b in ops:
        return (b, r["jobs"])
    if b == "memory":
        return (b, r["job"])
    if b == "dispatch":
        return (b, r["executor"], r["trigger"], r.get("due", "at_once"), r.get("mode", "hosted"),
                bool(r.get("listener")))
    return (b, r.get("executor"))


def find(rows, k):
    return next((r for r in rows if key(r) == k), None)


def num(v):
    """Short form: 1.23M, 456k, 12.3k, 789, 12.3."""
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e5:
        return f"{v / 1e3:.0f}k"
    if a >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:,.0f}" if a >= 100 else f"{v:.1f}"


def human(n):
    e = len(str(n)) - 1
    return f"10^{e}" if n == 10 ** e else f"{n:,}"


def three(r, field):
    """min / median / max of a figure, or its one value."""
    if r is None or r.get(field) is None:
        return "-"
    if field + "_min" not in r:
        return num(r[field])
    return f"{num(r[field + '_min'])} / {num(r[field])} / {num(r[field + '_max'])}"


def load1(r):
    la = r.get("loadavg") if r else None
    return f"{la[0]:.1f}" if la else "-"


# Rows: (label, key, field, higher is better, target text, check on the libapsched median).
lines = []
all_sizes = sorted({r["jobs"] for r in c_rows + py_rows if r["bench"] in ops})
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
        lines.append((label, (bench, n), field, False, target, check))
goals = {"inline": 2000000, "threadpool": 500000}
for r in c_rows + py_rows:
    if r["bench"] != "dispatch":
        continue
    k = key(r)
    if any(line[1] == k for line in lines):
        continue
    _, ex, trig, due, mode, listener = k
    label = (f"dispatch {ex}, {trig}, {due.replace('_', ' ')}, {mode}"
             f"{', listener' if listener else ''} (runs/s)")
    target, check = "", None
    if due == "at_once" and mode == "hosted" and not listener and trig != "mixed":
        g = goals[ex]
        target, check = f">= {g:,}", (lambda v, g=g: v >= g)
    lines.append((label, k, "runs_per_sec", True, target, check))
for shape, what in (("interval", "interval job"), ("cron", "cron job"),
                    ("named_arg", "named job, 16-byte arg")):
    lines.append((f"memory/job, {what} (bytes)", ("memory", shape), "bytes_per_job", False, "",
                  None))
for ex in ("threadpool", "inline"):
    for field, name, target, check in (
            ("p50_us", "p50", "<= 30", lambda v: v <= 30),
            ("p99_us", "p99", "<= 100", lambda v: v <= 100),
            ("p999_us", "p99.9", "", None)):
        lines.append((f"lateness {ex} {name} (us)", ("lateness", ex), field, False, target, check))

table = [("scenario", "libapsched min / median / max", "APScheduler 3.9.1 min / median / max",
          "ratio", "load", "target", "verdict")]
for label, k, field, higher, target, check in lines:
    c, p = find(c_rows, k), find(py_rows, k)
    if c is None and p is None:
        continue
    cv = c.get(field) if c else None
    pv = p.get(field) if p else None
    ptext = three(p, field)
    if c and p and p.get("jobs") != c.get("jobs") and k[0] not in ops:
        ptext += f" (N={human(p['jobs'])})"
    ratio = "-"
    if cv and pv:
        ratio = f"{(cv / pv if higher else pv / cv):,.1f}x"
    verdict = ""
    # The targets are for the issue's sizes; a --quick run only smoke-tests.
    full_size = c is not None and (
        k[0] in ops or (k[0] == "dispatch" and c.get("jobs") == 100000) or
        (k[0] == "lateness" and c.get("jobs") == 10000 and c.get("stored") == 100000))
    if check and cv is not None:
        verdict = ("ok" if check(cv) else "MISSED") if full_size else "(size)"
    table.append((label, three(c, field), ptext, ratio, f"{load1(c)}/{load1(p)}", target,
                  verdict))

widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
print()
print(f"machine: {ncpu} CPUs, load average {load_before} before, {load_after} after")
for i, row in enumerate(table):
    print("  ".join(cell.ljust(w) if j == 0 or j >= 5 else cell.rjust(w)
                    for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))


def reps(rows, bench):
    return "/".join(str(v) for v in sorted({r.get("reps") for r in rows if r["bench"] == bench}))


print("min / median / max over each figure's repetitions (ops: rounds; the others: reps, each on\n"
      "a fresh scheduler); ratio: how many times libapsched's median is better than APScheduler's\n"
      "(faster, more runs/s, fewer bytes); load: the 1-minute load average when each side\n"
      "finished the figure (libapsched/APScheduler).")
dis = [r for r in c_rows if r["bench"] == "dispatch"]
if dis:
    py_dis = [r for r in py_rows if r["bench"] == "dispatch"]
    py_n = f"; APScheduler {human(py_dis[0]['jobs'])}" if py_dis else ""
    print(textwrap.fill(
        f"dispatch: {human(dis[0]['jobs'])} jobs{py_n} (at 10^5 its 14 scenarios x 5 reps take"
        " an hour here; its list store is faster when smaller), "
        f"{reps(c_rows, 'dispatch')} reps. at once: all due at the same moment, added in due"
        " order; spread 10s: due at random moments of the 10 s before the drain starts, added"
        " in random order (all already due: this measures dispatch, not waiting); mixed: a"
        " third each interval, cron (0 */5 9-17 * * mon-fri) and date jobs; hosted:"
        " apsched_process (APScheduler: _process_jobs) called until nothing is due; thread:"
        " jobs added while paused, then resume and the scheduler's own loop thread"
        " (apsched_start / BackgroundScheduler); listener: a listener on every event"
        " (EVENT_ALL) counting them. The clock stops when the last run has ended.",
        width=92, subsequent_indent="  "))
mem = [r for r in c_rows if r["bench"] == "memory"]
if mem:
    py_mem = [r for r in py_rows if r["bench"] == "memory"]
    py_n = f" at {human(py_mem[0]['jobs'])}" if py_mem else ""
    print(f"memory: heap bytes per job at {human(mem[0]['jobs'])} jobs (mallinfo2; APScheduler:"
          f" tracemalloc{py_n}),\n  each job from a trigger of its own, generated 32-char id")
lat = [r for r in c_rows if r["bench"] == "lateness"]
if lat:
    print(f"lateness: {human(lat[0]['jobs'])} date jobs over {lat[0]['spread_ms']} ms, "
          f"{human(lat[0]['stored'])} more stored")
EOF
fi
fi

# --------------------------------------------------------------- SQLite part
if $have_sqlite; then
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== libapsched-sqlite" >&2
"$build/bench_sqlite" "${quick[@]}" | tee "$results/libapsched_sqlite.jsonl"
if $have_python; then
echo "== APScheduler's SQLAlchemyJobStore on SQLite ($python)" >&2
if ! "$python" -c "import apscheduler, sqlalchemy" 2>/dev/null; then
  echo "bench/run.sh: APScheduler or SQLAlchemy is not installed for $python" \
    "(Debian: python3-apscheduler python3-sqlalchemy): skipping it" >&2
  : >"$results/apscheduler_sqlite.jsonl"
else
  "$python" bench/apscheduler_sqlite_bench.py "${quick[@]}" |
    tee "$results/apscheduler_sqlite.jsonl"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$python" - "$results/libapsched_sqlite.jsonl" "$results/apscheduler_sqlite.jsonl" \
  "$ncpu" "$load_before" "$load_after" <<'EOF'
import json
import sys

c_file, py_file, ncpu, load_before, load_after = sys.argv[1:6]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


rows = load(c_file) + load(py_file)


def find(impl, bench, durability):
    return next((r for r in rows if r["impl"].startswith(impl) and r["bench"] == bench
                 and r.get("durability") == durability), None)


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}" if abs(v) >= 1 else f"{v:.2f}"


def human(n):
    e = len(str(n)) - 1
    return f"10^{e}" if n == 10 ** e else f"{n:,}"


def rate(r):
    return r.get("per_sec") if r else None


def spread(r):
    if not r or r.get("reps", 1) < 2:
        return ""
    return f"{fmt(r['per_sec_min'])}..{fmt(r['per_sec_max'])}"


def ratio(a, b):
    return a / b if a is not None and b else None


def tag(r, text):
    return f" ({text})" if r else ""


table = [("scenario", "libapsched", "min..max", "APScheduler 3.9.1", "raw SQLite", "target",
          "verdict")]


def line(label, lib, lib_spread="", aps="", raw="", target="", check=None, full_size=True):
    verdict = ""
    if check and lib is not None:
        verdict = ("ok" if check(lib) else "MISSED") if full_size else "(size)"
    table.append((label, fmt(lib), lib_spread, aps, raw, target, verdict))


notes = []
for d in ("FULL", "NORMAL"):
    c_add, p_add = find("libapsched", "sqlite_add", d), find("apscheduler", "sqlite_add", d)
    r_add = find("sqlite", "sqlite_raw_insert", d)
    c_bat, r_bat = find("libapsched", "sqlite_add_batch", d), find("sqlite", "sqlite_raw_insert_batch", d)
    c_dis, p_dis = find("libapsched", "sqlite_dispatch", d), find("apscheduler", "sqlite_dispatch", d)
    c_byt = find("libapsched", "sqlite_bytes_per_job", d)
    p_byt = find("apscheduler", "sqlite_bytes_per_job", d)
    if not any((c_add, p_add, r_add, c_bat, r_bat, c_dis, p_dis, c_byt, p_byt)):
        continue
    # The issue's targets are for durability FULL at its sizes (10^5 jobs); a
    # --quick run only smoke-tests.
    full = d == "FULL"
    full_size = all(r is None or r["jobs"] >= 100000 for r in (c_bat, c_dis))

    def goal(text, check):
        return (text, check) if full else ("", None)

    line(f"{d}: add, 1 per call (adds/s)", rate(c_add), spread(c_add), fmt(rate(p_add)),
         fmt(rate(r_add)) + tag(r_add, "1/commit"))
    t, c = goal(">= 0.8", lambda v: v >= 0.8)
    line(f"{d}:   add / raw insert", ratio(rate(c_add), rate(r_add)), target=t, check=c,
         full_size=full_size)
    t, c = goal(">= 100", lambda v: v >= 100)
    line(f"{d}:   add / APScheduler add", ratio(rate(c_add), rate(p_add)), target=t, check=c,
         full_size=full_size)
    t, c = goal(">= 100,000", lambda v: v >= 100000)
    line(f"{d}: batched add, 1000/call (jobs/s)", rate(c_bat), spread(c_bat),
         fmt(rate(p_add)) + tag(p_add, "1/call"), fmt(rate(r_bat)) + tag(r_bat, "1000/commit"),
         t, c, full_size)
    line(f"{d}:   batched add / raw batch", ratio(rate(c_bat), rate(r_bat)))
    t, c = goal(">= 100", lambda v: v >= 100)
    line(f"{d}:   batched add / APScheduler add", ratio(rate(c_bat), rate(p_add)), target=t,
         check=c, full_size=full_size)
    p_text = fmt(rate(p_dis))
    if p_dis and c_dis and p_dis["jobs"] != c_dis["jobs"]:
        p_text += f" (N={human(p_dis['jobs'])})"
    t, c = goal(">= 50,000", lambda v: v >= 50000)
    line(f"{d}: dispatch, inline (runs/s)", rate(c_dis), spread(c_dis), p_text, "", t, c,
         full_size)
    t, c = goal(">= 100", lambda v: v >= 100)
    line(f"{d}:   dispatch / APScheduler", ratio(rate(c_dis), rate(p_dis)), target=t, check=c,
         full_size=full_size)
    for bench, label in (("sqlite_dispatch_alo", "at-least-once jobs"),
                         ("sqlite_dispatch_history", "with a run history")):
        c_var = find("libapsched", bench, d)
        if c_var:
            line(f"{d}: dispatch, {label} (runs/s)", rate(c_var), spread(c_var))
            line(f"{d}:   / plain dispatch", ratio(rate(c_var), rate(c_dis)))
    p_text = fmt(p_byt and p_byt["bytes_per_job"])
    if p_byt and c_byt and p_byt["jobs"] != c_byt["jobs"]:
        p_text += f" (N={human(p_byt['jobs'])})"
    line(f"{d}: file bytes/job", c_byt and c_byt["bytes_per_job"], "", p_text)

widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
print()
print(f"machine: {ncpu} CPUs, load average {load_before} before, {load_after} after")
for i, row in enumerate(table):
    print("  ".join(cell.ljust(w) if j == 0 or j >= 5 else cell.rjust(w)
                    for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))
for r in rows:
    if r["bench"] in ("sqlite_add", "sqlite_raw_insert") and r["durability"] == "FULL":
        notes.append(f"{r['bench']} ({r['impl']}): {r['jobs']:,} {r['unit']} per repetition "
                     f"(at most {r['seconds']} s)")
    if r["bench"] in ("sqlite_add_batch", "sqlite_dispatch") and r["durability"] == "FULL" \
            and r["impl"] == "libapsched":
        notes.append(f"{r['bench']} (libapsched): {human(r['jobs'])} jobs")
print("libapsched and raw SQLite: median of repetitions, each on a fresh file (min..max);")
print("APScheduler: SQLAlchemyJobStore, url sqlite:///file, WAL + synchronous as the row says")
for n in notes:
    print(n)
EOF
fi
fi

# ----------------------------------------------------------- PostgreSQL part
if $have_pg; then
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== libapsched-pg (bench_pg: a private PostgreSQL server, fsync on)" >&2
command=()
if $have_python && "$python" -c "import apscheduler, sqlalchemy, psycopg2" 2>/dev/null; then
  echo "   then APScheduler's SQLAlchemyJobStore on the same server ($python)" >&2
  command=(-- "$python" bench/apscheduler_pg_bench.py "${quick[@]}")
elif $have_python; then
  echo "bench/run.sh: APScheduler, SQLAlchemy or psycopg2 is not installed for $python" \
    "(Debian: python3-apscheduler python3-sqlalchemy python3-psycopg2): skipping it" >&2
fi
"$build/bench_pg" "${quick[@]}" "${command[@]}" | tee "$results/pg_all.jsonl"
grep -v '"impl": *"apscheduler' "$results/pg_all.jsonl" >"$results/libapsched_pg.jsonl" || true
grep '"impl": *"apscheduler' "$results/pg_all.jsonl" >"$results/apscheduler_pg.jsonl" || true
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

if $have_python; then
"$python" - "$results/libapsched_pg.jsonl" "$results/apscheduler_pg.jsonl" \
  "$ncpu" "$load_before" "$load_after" <<'EOF'
import json
import sys

c_file, py_file, ncpu, load_before, load_after = sys.argv[1:6]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


rows = load(c_file) + load(py_file)


def find(impl, bench, **match):
    return next((r for r in rows if r["impl"].startswith(impl) and r["bench"] == bench
                 and all(r.get(k) == v for k, v in match.items())), None)


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}" if abs(v) >= 1 else f"{v:.2f}"


def spread(r, lo="per_sec_min", hi="per_sec_max"):
    if not r or r.get("reps", 1) < 2:
        return ""
    return f"{fmt(r[lo])}..{fmt(r[hi])}"


def rate(r):
    return r.get("per_sec") if r else None


def ratio(a, b):
    return a / b if a is not None and b else None


table = [("scenario", "libapsched", "min..max", "APScheduler 3.9.1", "raw PostgreSQL", "target",
          "verdict")]
disp = [r for r in rows if r["impl"] == "libapsched" and r["bench"] == "pg_dispatch"]
# The issue's targets are for 10^5 due jobs; a --quick run only smoke-tests.
full_size = bool(disp) and all(r["jobs"] >= 100000 for r in disp)


def line(label, lib, lib_spread="", aps="", raw="", target="", check=None):
    verdict = ""
    if check and lib is not None:
        verdict = ("ok" if check(lib) else "MISSED") if full_size else "(size)"
    table.append((label, fmt(lib), lib_spread, aps, raw, target, verdict))


procs = sorted({r["procs"] for r in disp})
one, most = find("libapsched", "pg_dispatch", procs=1), None
p_dis = find("apscheduler", "pg_dispatch")
for k in procs:
    c, raw = find("libapsched", "pg_dispatch", procs=k), find("postgresql", "pg_raw_claim", procs=k)
    most = c
    aps = ""
    if k == 1 and p_dis:
        aps = f"{fmt(rate(p_dis))} (N={p_dis['jobs']:,})"
    t, chk = (">= 20,000", lambda v: v >= 20000) if k == 3 else ("", None)
    line(f"dispatch, {k} scheduler process{'es' if k > 1 else ''} (runs/s)", rate(c), spread(c),
         aps, fmt(rate(raw)), t, chk)
    line(f"  store / raw claim probe, {k} process{'es' if k > 1 else ''}", ratio(rate(c), rate(raw)),
         target=">= 0.9", check=lambda v: v >= 0.9)
if one and most and most is not one:
    line(f"  {most['procs']} processes / 1 process", ratio(rate(most), rate(one)),
         target=">= 1.5", check=lambda v: v >= 1.5)
if one and p_dis:
    line("  1 process / APScheduler", ratio(rate(one), rate(p_dis)))
# The raw probe's accounting (the same run, impl "postgresql") goes in its column.
for r in (r for r in rows if r["bench"] == "pg_batch_accounting" and r["impl"] == "libapsched"):
    k = r["procs"]
    p = find("postgresql", "pg_batch_accounting", procs=k) or {}
    line(f"commits per claimed batch, {k} process{'es' if k > 1 else ''}", r["commits_per_batch"],
         raw=fmt(p.get("commits_per_batch")), target="<= 1.05", check=lambda v: v <= 1.05)
    line("  WAL flushes per claimed batch", r["wal_syncs_per_batch"], raw=fmt(p.get("wal_syncs_per_batch")))
    line("  statements per claimed batch", r["statements_per_batch"], raw=fmt(p.get("statements_per_batch")))
f = find("libapsched", "pg_failover")
if f:
    line("failover after SIGKILL, first run (ms)", f["first_ms"],
         spread(f, "first_ms_min", "first_ms_max") if f["reps"] > 1 else "", target="<= 2,000",
         check=lambda v: v <= 2000)
    line("  all claimed runs started (ms)", f["all_ms"],
         spread(f, "all_ms_min", "all_ms_max") if f["reps"] > 1 else "")
w = find("libapsched", "pg_wakeup")
if w:
    line("wake-up across processes, p50 (ms)", w["p50_us"] / 1000)
    line("wake-up across processes, p99 (ms)", w["p99_us"] / 1000, target="<= 20",
         check=lambda v: v <= 20)
for bench, label in (("pg_wait_handoff", "waiting run starts after the slot frees"),
                     ("pg_cancel_reach", "cancel_other reaches the other scheduler's run")):
    r = find("libapsched", bench)
    if r:
        line(f"{label}, p50 (ms)", r["p50_us"] / 1000, f"p99 {r['p99_us'] / 1000:.1f}")
d = find("apscheduler", "pg_duplicates")
if d:
    table.append(("2 schedulers sharing the store: executions", "= due runs", "",
                  f"{d['executions']:,} for {d['due_runs']:,}", "", "", ""))
    table.append(("  duplicates / missing", "0 / 0", "",
                  f"{d['duplicates']:,} / {d['missing']:,}", "", "", ""))

widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
print()
print(f"machine: {ncpu} CPUs, load average {load_before} before, {load_after} after")
for i, row in enumerate(table):
    print("  ".join(cell.ljust(w) if j == 0 or j >= 5 else cell.rjust(w)
                    for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))
srv = find("postgresql", "pg_server")
if srv:
    print(f"PostgreSQL {srv['version']}, fsync={srv['fsync']}, synchronous_commit="
          f"{srv['synchronous_commit']}, wal_sync_method={srv['wal_sync_method']}, "
          f"shared_buffers={srv['shared_buffers']}, unix socket")
if disp:
    print(f"dispatch: {disp[0]['jobs']:,} due jobs, claimed {disp[0]['batch']} at a time, inline "
          "executor; median of repetitions, each on a fresh schema (min..max)")
print("raw claim probe (STORES.md's): the store's claim statement, then one statement advancing the batch"
      " and inserting its run rows, both prepared, one commit per batch")
print("libapsched: every dispatch repetition checked each job ran exactly once")
if d:
    print(f"APScheduler duplicates: 2 processes, default thread pool, {d['due_runs']:,} date jobs "
          f"due at once; {d['loop_threads_died']} loop thread(s) died ({', '.join(d['died_of'])})")
EOF
fi
fi

# ---------------------------------------------------------------- Redis part
if $have_redis; then
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== libapsched-redis (bench_redis: a private redis-server, AOF everysec)" >&2
command=()
if $have_python && "$python" -c "import apscheduler, redis" 2>/dev/null; then
  echo "   then APScheduler's RedisJobStore on the same server ($python)" >&2
  command=(-- "$python" bench/apscheduler_redis_bench.py "${quick[@]}")
elif $have_python; then
  echo "bench/run.sh: APScheduler or redis-py is not installed for $python" \
    "(Debian: python3-apscheduler python3-redis): skipping it" >&2
fi
"$build/bench_redis" "${quick[@]}" "${command[@]}" | tee "$results/redis_all.jsonl"
grep -v '"impl": *"apscheduler' "$results/redis_all.jsonl" >"$results/libapsched_redis.jsonl" || true
grep '"impl": *"apscheduler' "$results/redis_all.jsonl" >"$results/apscheduler_redis.jsonl" || true
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

if $have_python; then
"$python" - "$results/libapsched_redis.jsonl" "$results/apscheduler_redis.jsonl" \
  "$ncpu" "$load_before" "$load_after" <<'EOF'
import json
import sys

c_file, py_file, ncpu, load_before, load_after = sys.argv[1:6]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


rows = load(c_file) + load(py_file)


def find(impl, bench, **match):
    return next((r for r in rows if r["impl"].startswith(impl) and r["bench"] == bench
                 and all(r.get(k) == v for k, v in match.items())), None)


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}" if abs(v) >= 1 else f"{v:.2f}"


def spread(r):
    if not r or r.get("reps", 1) < 2:
        return ""
    return f"{fmt(r['per_sec_min'])}..{fmt(r['per_sec_max'])}"


def rate(r):
    return r.get("per_sec") if r else None


def ratio(a, b):
    return a / b if a is not None and b else None


table = [("scenario", "libapsched", "min..max", "APScheduler 3.9.1", "redis-benchmark", "target",
          "verdict")]
disp = [r for r in rows if r["impl"] == "libapsched" and r["bench"] == "redis_dispatch"]
# The issue's targets are for 10^5 due jobs; a --quick run only smoke-tests.
full_size = bool(disp) and all(r["jobs"] >= 100000 for r in disp)


def line(label, lib, lib_spread="", aps="", raw="", target="", check=None, digits=None):
    verdict = ""
    if check and lib is not None:
        verdict = ("ok" if check(lib) else "MISSED") if full_size else "(size)"
    text = f"{lib:.{digits}f}" if digits is not None and lib is not None else fmt(lib)
    table.append((label, text, lib_spread, aps, raw, target, verdict))


def raw_probe(test, clients):
    r = find("redis-benchmark", "redis_raw", test=test, clients=clients)
    return f"{fmt(rate(r))} {test}" if r else ""


p_dis = find("apscheduler", "redis_dispatch")
one = find("libapsched", "redis_dispatch", procs=1)
most = None
for c in sorted(disp, key=lambda r: r["procs"]):
    k = c["procs"]
    most = c
    aps = f"{fmt(rate(p_dis))} (N={p_dis['jobs']:,})" if p_dis and k == 1 else ""
    t, chk = (">= 50,000", lambda v: v >= 50000) if k == 3 else ("", None)
    line(f"dispatch, {k} scheduler process{'es' if k > 1 else ''} (runs/s)", rate(c), spread(c),
         aps, raw_probe("EVAL (HSET + ZADD)", k), t, chk)
    if p_dis:
        line(f"  {k} process{'es' if k > 1 else ''} / APScheduler (1 process)",
             ratio(rate(c), rate(p_dis)), target=">= 10", check=lambda v: v >= 10)
if one and most and most is not one:
    line(f"  {most['procs']} processes / 1 process", ratio(rate(most), rate(one)))
for mode in ("batch", "single"):
    a = find("libapsched", "redis_adds", mode=mode)
    if a:
        label = "apsched_add_jobs, 1,000 a call" if mode == "batch" else "apsched_add_job"
        line(f"adds, {label} (jobs/s, N={a['jobs']:,})", rate(a), spread(a), "",
             raw_probe("HSET", 1))
for r in (r for r in rows if r["bench"] == "redis_accounting"):
    k = r["procs"]
    by = ", ".join(f"{n} {v:.3f}" for n, v in r["round_trips_by_command_per_run"].items())
    line(f"round trips per claimed run, {k} process{'es' if k > 1 else ''}",
         r["round_trips_per_run"], raw=by, digits=3)
    line("  server commands per run (scripts' included)", r["server_commands_per_run"])
    usec = r.get("script_usec_per_run")
    if usec:
        line("  server time in the store's scripts per run (us)", usec,
             raw=f"bound: {fmt(1e6 / usec)} runs/s")
w = find("libapsched", "redis_wakeup")
if w:
    line("wake-up across processes, p50 (ms)", w["p50_us"] / 1000, digits=1)
    line("wake-up across processes, p99 (ms)", w["p99_us"] / 1000, target="<= 20",
         check=lambda v: v <= 20, digits=1)
for bench, label in (("redis_wait_handoff", "waiting run starts after the slot frees"),
                     ("redis_cancel_reach", "cancel_other reaches the other scheduler's run")):
    r = find("libapsched", bench)
    if r:
        line(f"{label}, p50 (ms)", r["p50_us"] / 1000, f"p99 {r['p99_us'] / 1000:.1f}", digits=2)
d = find("apscheduler", "redis_duplicates")
if d:
    table.append(("2 schedulers sharing the store: executions", "= due runs", "",
                  f"{d['executions']:,} for {d['due_runs']:,}", "", "", ""))
    table.append(("  duplicates / missing", "0 / 0", "",
                  f"{d['duplicates']:,} / {d['missing']:,}", "", "", ""))

widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
print()
print(f"machine: {ncpu} CPUs, load average {load_before} before, {load_after} after")
for i, row in enumerate(table):
    print("  ".join(cell.ljust(w) if j == 0 or j >= 4 else cell.rjust(w)
                    for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))
srv = find("redis", "redis_server")
if srv:
    print(f"Redis {srv['version']}, appendonly={srv['appendonly']}, appendfsync="
          f"{srv['appendfsync']}, save='{srv['save']}', unix socket")
if disp:
    print(f"dispatch: {disp[0]['jobs']:,} due jobs, inline executor; median of repetitions, each "
          "under a fresh prefix (min..max); every repetition checked each job ran exactly once")
print("redis-benchmark: as many clients as scheduler processes, no pipelining, same socket;"
      " 'EVAL (HSET + ZADD)' is one script call writing a hash field and a sorted set member,"
      " what one script call per run would cost (the store's scripts each serve a batch or a"
      " start group of up to 256 runs, see the round trips)")
if d:
    print(f"APScheduler duplicates: 2 processes, default thread pool, {d['due_runs']:,} date jobs "
          f"due at once; {d['loop_threads_died']} loop thread(s) died ({', '.join(d['died_of'])})")
EOF
fi
fi
