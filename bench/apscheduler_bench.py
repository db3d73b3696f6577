#!/usr/bin/python3
"""The scenarios of bench_scheduler.c on Python's APScheduler 3.9.1, for a
side-by-side comparison. One JSON object per line, "impl": "apscheduler-3.9.1".
Every figure is measured --reps times (default 5, --quick 2), each repetition
on a fresh scheduler, and printed as its median with _min and _max next to it,
plus "loadavg" (os.getloadavg() when the figure was finished):

  ops       seconds per scheduler.add_job (interval trigger, generated ids) on
            a started, paused BackgroundScheduler with its MemoryJobStore, per
            reschedule_job and remove_job (random order), and bytes per job
            (tracemalloc, in a separate untimed round);
  dispatch  runs per second of 10^4 jobs through DebugExecutor ("inline") and
            ThreadPoolExecutor(10), in bench_scheduler.c's scenarios: jobs
            due at once or over the 10 s before the drain in random order;
            interval, date or mixed (interval, cron, date) jobs; "hosted" (a
            scheduler without a loop thread whose _process_jobs the benchmark
            calls until nothing is due: APScheduler has no public hosted mode,
            this is the work BlockingScheduler's loop does per wake-up) or
            "thread" (a BackgroundScheduler started paused, the jobs added,
            resume(): its own loop thread dispatches); with or without a
            listener counting every event (add_listener, EVENT_ALL; the
            clock then stops when it has seen the last run's EXECUTED event);
  memory    tracemalloc bytes per job (10^4 jobs) for an interval job, a cron job
            (second=0, minute=*/5, hour=9-17, day_of_week=mon-fri, a trigger
            of its own per job) and a named interval job with a 16-byte
            argument (args=(bytes,));
  lateness  actual start minus scheduled time of date jobs spread over 3 s
            with 10^5 more jobs stored, on a normally started scheduler.

  apscheduler_bench.py [--quick] [--reps=N] [--only=ops,dispatch,memory,lateness]
                       [--sizes=1e3,1e4,1e5] [--dispatch-jobs=N] [--memory-jobs=N]
                       [--lateness-jobs=N] [--stored=N] [--spread-ms=N]
                       [--timerslack-ns=N] [--executor=inline|threadpool]
                       [--trigger=interval|date|mixed] [--due=at_once|spread]
                       [--mode=hosted|thread]

--timerslack-ns sets this thread's timer slack (prctl), which the
scheduler's threads inherit, as in bench_scheduler.c. Sizes default to
10^3..10^5: at 10^6 APScheduler's list-based store takes minutes (every remove
shifts the whole list). Each line says its "jobs".
"""
import gc
import itertools
import json
import os
import random
import sys
import threading
import time
import tracemalloc
from datetime import datetime, timedelta

import apscheduler
from apscheduler.events import EVENT_ALL, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.executors.debug import DebugExecutor
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pytz import utc

IMPL = "apscheduler-" + apscheduler.__version__
TRIGGER_POOL = 64
SPREAD_US = 10000000  # due times of the spread scenario: within the last 10 s
WARM_JOBS = 1000  # run before each timed dispatch
rng = random.Random(0x9E3779B97F4A7C15)


def cron_trigger():
    """bench_scheduler.c's "0 */5 9-17 * * mon-fri" in UTC."""
    return CronTrigger(second=0, minute="*/5", hour="9-17", day_of_week="mon-fri", timezone=utc)


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def emit(**fields):
    print(json.dumps(dict(impl=IMPL, **fields, loadavg=loadavg())), flush=True)


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def spread(name, values, digits=1):
    """name, name_min, name_max: the median and range over the repetitions."""
    return {name: round(median(values), digits), name + "_min": round(min(values), digits),
            name + "_max": round(max(values), digits)}


def percentile(sorted_values, p):
    """Nearest-rank percentile, as bench_scheduler.c computes it."""
    n = len(sorted_values)
    rank = min(max(int(p * n + 0.999999999), 1), n)
    return sorted_values[rank - 1]


def nop():
    pass


def nop_arg(payload):
    pass


class HostedScheduler(BaseScheduler):
    """A scheduler without a loop thread: the benchmark calls _process_jobs."""

    def shutdown(self, wait=True):
        super().shutdown(wait)

    def wakeup(self):
        pass


class Tally:
    """Counts runs and misses; the one reaching the target wakes the waiter."""

    def __init__(self, target):
        self.target = target
        self.lock = threading.Lock()
        self.ran = 0
        self.missed = 0
        self.done_at = None
        self.done = threading.Event()

    def _count(self, runs, misses):
        with self.lock:
            self.ran += runs
            self.missed += misses
            if self.ran + self.missed >= self.target and self.done_at is None:
                self.done_at = time.perf_counter()
                self.done.set()

    def run(self):
        self._count(1, 0)

    def miss(self, event):
        self._count(0, 1)


# ------------------------------------------------------------------ ops


def interval_pool():
    return [IntervalTrigger(seconds=60 + rng.randrange(86400), timezone=utc)
            for _ in range(TRIGGER_POOL)]


def paused_scheduler():
    s = BackgroundScheduler(timezone=utc, jobstores={"default": MemoryJobStore()},
                            executors={"default": DebugExecutor()})
    s.start(paused=True)
    return s


def ops_round(n, adds, reschedules):
    s = paused_scheduler()
    ids = [None] * n
    t0 = time.perf_counter()
    for i in range(n):
        ids[i] = s.add_job(nop, trigger=adds[i % TRIGGER_POOL]).id
    t1 = time.perf_counter()
    add = (t1 - t0) / n

    order = list(range(n))
    rng.shuffle(order)
    t0 = time.perf_counter()
    for k, i in enumerate(order):
        s.reschedule_job(ids[i], trigger=reschedules[k % TRIGGER_POOL])
    t1 = time.perf_counter()
    resched = (t1 - t0) / n

    rng.shuffle(order)
    t0 = time.perf_counter()
    for i in order:
        s.remove_job(ids[i])
    t1 = time.perf_counter()
    remove = (t1 - t0) / n
    if s.get_jobs():
        sys.exit("apscheduler_bench: jobs left after removing every job")
    s.shutdown(wait=False)
    return add, resched, remove


def job_bytes(n, shape):
    """Traced bytes per added job of one shape (interval, cron, named_arg),
    each job with its own trigger (as a C record owns its copy of the
    trigger) and a generated id."""
    s = paused_scheduler()
    seconds = [60 + rng.randrange(86400) for _ in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        if shape == "cron":
            s.add_job(nop, trigger=cron_trigger())
        elif shape == "named_arg":
            s.add_job(nop_arg, trigger=IntervalTrigger(seconds=seconds[i], timezone=utc),
                      name="report-%07d" % i, args=(i.to_bytes(16, "little"),))
        else:
            s.add_job(nop, trigger=IntervalTrigger(seconds=seconds[i], timezone=utc))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    s.shutdown(wait=False)
    return (after - before) / n


def bench_ops(n, reps):
    adds, reschedules = interval_pool(), interval_pool()
    rounds = max(reps, 1, min(20, 20000 // n))
    results = [ops_round(n, adds, reschedules) for _ in range(rounds)]
    for k, name in enumerate(("add", "reschedule", "remove")):
        emit(bench=name, jobs=n, rounds=rounds,
             **spread("ns_per_op", [r[k] * 1e9 for r in results]))
    emit(bench="bytes_per_job", jobs=n, bytes_per_job=round(job_bytes(n, "interval"), 1),
         method="tracemalloc")


def bench_memory(n, reps, shape):
    emit(bench="memory", job=shape, jobs=n, reps=reps, method="tracemalloc",
         **spread("bytes_per_job", [job_bytes(n, shape) for _ in range(reps)]))


# ------------------------------------------------------------- dispatch

# (executor is the thread pool, jobs, due over 10 s, loop thread, listener):
# bench_scheduler.c's `scenarios`, in the same order.
SCENARIOS = [
    (False, "interval", False, False, False),
    (True, "interval", False, False, False),
    (False, "date", False, False, False),
    (True, "date", False, False, False),
    (False, "interval", True, False, False),
    (True, "interval", True, False, False),
] + [(pool, "mixed", True, thread, listener)
     for thread in (False, True) for listener in (False, True) for pool in (False, True)]


def add_due(s, count, kind, spread_due, cron, func):
    """Adds count jobs due now or (spread_due) at random moments of the last
    10 s: interval jobs every hour from their due time, cron jobs by
    cron_trigger() after it (next_run_time=due), date jobs at it; mixed:
    interval, cron, date for i % 3 = 0, 1, 2. No misfire grace limit."""
    now = datetime.now(utc)
    for i in range(count):
        due = now - timedelta(microseconds=1 + rng.randrange(SPREAD_US)) if spread_due else now
        shape = i % 3 if kind == "mixed" else 2 if kind == "date" else 0
        if shape == 0:
            s.add_job(func, trigger=IntervalTrigger(hours=1, start_date=due, timezone=utc),
                      next_run_time=due, misfire_grace_time=None)
        elif shape == 1:
            s.add_job(func, trigger=cron, next_run_time=due, misfire_grace_time=None)
        else:
            # next_run_time=None would add the job paused: not passed here.
            s.add_job(func, trigger=DateTrigger(run_date=due, timezone=utc),
                      misfire_grace_time=None)


def bench_dispatch(n, reps, pool, kind, spread_due, thread, listener):
    cron = cron_trigger()
    rates, ns, evs = [], [], []
    for _ in range(reps):
        executor = ThreadPoolExecutor(10) if pool else DebugExecutor()
        cls = BackgroundScheduler if thread else HostedScheduler
        s = cls(timezone=utc, jobstores={"default": MemoryJobStore()},
                executors={"default": executor})
        events = [itertools.count()]  # next() is atomic under the GIL
        current = [None]  # the Tally of the drain under way

        def count_event(event):
            # As in bench_scheduler.c: runs are counted by their EXECUTED
            # event (the jobs count nothing then), so the clock stops when
            # the listener has seen the last run, not before its events.
            next(events[0])
            if event.code == EVENT_JOB_EXECUTED:
                current[0].run()

        if listener:
            s.add_listener(count_event, EVENT_ALL)
        # Thread mode starts paused: the jobs go in before the loop sees them.
        s.start(paused=True) if thread else s.start()

        def drain(count):
            tally = current[0] = Tally(count)
            add_due(s, count, kind, spread_due, cron, nop if listener else tally.run)
            events[0] = itertools.count()
            t0 = time.perf_counter()
            if thread:
                s.resume()
            else:
                while True:
                    wait = s._process_jobs()
                    if wait is None or wait > 0:
                        break
            if not tally.done.wait(600):
                sys.exit("apscheduler_bench: dispatch: only %d of %d runs"
                         % (tally.ran, tally.target))
            seen = next(events[0])
            if tally.ran != tally.target:
                sys.exit("apscheduler_bench: dispatch: wrong number of runs")
            if thread:
                s.pause()
            return tally.done_at - t0, seen

        drain(min(n, WARM_JOBS))  # warm-up: worker threads, code paths
        elapsed, seen = drain(n)
        ns.append(elapsed / n * 1e9)
        rates.append(n / elapsed)
        evs.append(seen / n)
        s.shutdown(wait=True)
    extra = {"events_per_run": round(median(evs), 2)} if listener else {}
    emit(bench="dispatch", executor="threadpool" if pool else "inline", trigger=kind,
         due="spread_10s" if spread_due else "at_once", mode="thread" if thread else "hosted",
         listener=listener, jobs=n, reps=reps, **spread("runs_per_sec", rates, 0),
         **spread("ns_per_run", ns), **extra)


# ------------------------------------------------------------- lateness


def lateness_round(m, stored, spread_ms, lead_s, pool):
    executor = ThreadPoolExecutor(10) if pool else DebugExecutor()
    s = BackgroundScheduler(timezone=utc, jobstores={"default": MemoryJobStore()},
                            executors={"default": executor})
    tally = Tally(m)
    s.add_listener(tally.miss, EVENT_JOB_MISSED)
    lateness = [0.0] * m
    slot = itertools.count()

    def job(scheduled):
        now = time.time()
        lateness[next(slot)] = now - scheduled
        tally.run()

    # Started paused while the jobs go in; the first job is due lead_s after
    # the adds end (APScheduler's adds are slow: leave time for them).
    s.start(paused=True)
    far = IntervalTrigger(weeks=1, timezone=utc)
    t0 = time.perf_counter()
    for _ in range(stored):
        s.add_job(nop, trigger=far)
    per_add = (time.perf_counter() - t0) / max(stored, 1)
    base = time.time() + lead_s + 2 * per_add * m
    for _ in range(m):
        run_date = datetime.fromtimestamp(base + rng.random() * spread_ms / 1000, utc)
        s.add_job(job, trigger=DateTrigger(run_date=run_date, timezone=utc),
                  args=(run_date.timestamp(),))
    first_due_ms = (base - time.time()) * 1e3
    s.resume()
    if not tally.done.wait(spread_ms / 1000 + 600):
        sys.exit("apscheduler_bench: lateness: only %d runs and %d misses of %d"
                 % (tally.ran, tally.missed, m))
    s.shutdown(wait=True)
    ran = min(tally.ran, m)
    return sorted(lateness[:ran]), tally.missed, first_due_ms


def bench_lateness(m, stored, spread_ms, lead_s, reps, pool):
    rounds = [lateness_round(m, stored, spread_ms, lead_s, pool) for _ in range(reps)]
    fields = {}
    for name, p in (("p50_us", 0.5), ("p99_us", 0.99), ("p999_us", 0.999)):
        fields.update(spread(name, [percentile(v, p) * 1e6 for v, _, _ in rounds]))
    # ran and missed: totals over the repetitions; min_us and max_us: over all runs.
    emit(bench="lateness", executor="threadpool" if pool else "inline", jobs=m, stored=stored,
         spread_ms=spread_ms, reps=reps, ran=sum(len(v) for v, _, _ in rounds),
         missed=sum(missed for _, missed, _ in rounds), **fields,
         min_us=round(min(v[0] for v, _, _ in rounds) * 1e6, 1),
         max_us=round(max(v[-1] for v, _, _ in rounds) * 1e6, 1),
         first_due_after_ms=round(rounds[-1][2], 1))


# ----------------------------------------------------------------- main


def set_timerslack(ns):
    import ctypes
    PR_SET_TIMERSLACK = 29
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) != 0:
        sys.exit("apscheduler_bench: prctl(PR_SET_TIMERSLACK) failed")


def count(text):
    v = float(text)
    if not 1 <= v <= 1e9:
        raise ValueError(text)
    return int(v)


def choice(value, names):
    if value not in names:
        raise ValueError(value)
    return value


def main(argv):
    sizes = [1000, 10000, 100000]
    # Memory at 10^4 jobs: tracemalloc makes adds slow, and APScheduler's bytes
    # per job do not depend on the count (768.9 at 10^4, 780 at 10^5).
    # Dispatch at 10^4 jobs: 14 scenarios x 5 repetitions at 10^5 take about
    # an hour on a loaded 2-core machine. The smaller store favours
    # APScheduler (its list store shifts the list on every update).
    dispatch_jobs, memory_jobs, lateness_jobs, stored, spread_ms = 10000, 10000, 10000, 100000, 3000
    reps, lead_s = 5, 0.5
    only = {"ops", "dispatch", "memory", "lateness"}
    want = {}  # scenario filters: executor, trigger, due, mode
    try:
        for a in argv:
            key, _, value = a.partition("=")
            if a == "--quick":
                sizes, dispatch_jobs, memory_jobs, lateness_jobs, stored, spread_ms = (
                    [1000, 10000], 5000, 10000, 1000, 10000, 100)
                reps, lead_s = 2, 0.2
            elif key == "--only":
                only = set(value.split(","))
                if not only <= {"ops", "dispatch", "memory", "lateness"}:
                    raise ValueError(value)
            elif key == "--sizes":
                sizes = [count(x) for x in value.split(",")]
            elif key == "--reps":
                reps = count(value)
            elif key == "--dispatch-jobs":
                dispatch_jobs = count(value)
            elif key == "--memory-jobs":
                memory_jobs = count(value)
            elif key == "--lateness-jobs":
                lateness_jobs = count(value)
            elif key == "--stored":
                stored = count(value)
            elif key == "--spread-ms":
                spread_ms = count(value)
            elif key == "--timerslack-ns":
                set_timerslack(count(value))
            elif key == "--executor":
                want["executor"] = choice(value, ("inline", "threadpool")) == "threadpool"
            elif key == "--trigger":
                want["trigger"] = choice(value, ("interval", "date", "mixed"))
            elif key == "--due":
                want["due"] = choice(value, ("at_once", "spread")) == "spread"
            elif key == "--mode":
                want["mode"] = choice(value, ("hosted", "thread")) == "thread"
            else:
                raise ValueError(a)
    except ValueError:
        sys.exit("usage:\n" + next(p for p in __doc__.split("\n\n") if "--quick" in p))

    if "ops" in only:
        for n in sizes:
            bench_ops(n, reps)
    if "dispatch" in only:
        for pool, kind, spread_due, thread, listener in SCENARIOS:
            if all(want.get(k, v) == v for k, v in (("executor", pool), ("trigger", kind),
                                                     ("due", spread_due), ("mode", thread))):
                bench_dispatch(dispatch_jobs, reps, pool, kind, spread_due, thread, listener)
    if "memory" in only:
        for shape in ("interval", "cron", "named_arg"):
            bench_memory(memory_jobs, reps, shape)
    if "lateness" in only:
        if want.get("executor", True):
            bench_lateness(lateness_jobs, stored, spread_ms, lead_s, reps, True)
        if not want.get("executor", False):
            bench_lateness(lateness_jobs, stored, spread_ms, lead_s, reps, False)


if __name__ == "__main__":
    main(sys.argv[1:])
