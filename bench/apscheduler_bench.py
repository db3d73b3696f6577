#!/usr/bin/python3
"""The scenarios of bench_scheduler.c on Python's APScheduler 3.9.1, for a
side-by-side comparison. One JSON object per line, "impl": "apscheduler-3.9.1":

  ops       seconds per scheduler.add_job (interval trigger, generated ids) on
            a started, paused BackgroundScheduler with its MemoryJobStore, per
            reschedule_job and remove_job (random order), and bytes per job
            (tracemalloc, in a separate untimed round);
  dispatch  runs per second when N jobs are due at once, through DebugExecutor
            ("inline") and ThreadPoolExecutor(10), driving _process_jobs
            directly (a scheduler without a loop thread, like hosted mode);
  lateness  actual start minus scheduled time of date jobs spread over 3 s
            with 10^5 more jobs stored, on a normally started scheduler.

  apscheduler_bench.py [--quick] [--only=ops,dispatch,lateness]
                       [--sizes=1e3,1e4,1e5] [--dispatch-jobs=N]
                       [--lateness-jobs=N] [--stored=N] [--spread-ms=N]
                       [--timerslack-ns=N]

--timerslack-ns sets this thread's timer slack (prctl), which the
scheduler's threads inherit, as in bench_scheduler.c. Sizes default to 10^3..10^5: at 10^6 APScheduler's list-based store takes
minutes (every remove shifts the whole list). Each line says its "jobs".
"""
import gc
import itertools
import json
import random
import sys
import threading
import time
import tracemalloc
from datetime import datetime

import apscheduler
from apscheduler.executors.debug import DebugExecutor
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pytz import utc

IMPL = "apscheduler-" + apscheduler.__version__
TRIGGER_POOL = 64
rng = random.Random(0x9E3779B97F4A7C15)


def emit(**fields):
    print(json.dumps(dict(impl=IMPL, **fields)), flush=True)


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def percentile(sorted_values, p):
    """Nearest-rank percentile, as bench_scheduler.c computes it."""
    n = len(sorted_values)
    rank = min(max(int(p * n + 0.999999999), 1), n)
    return sorted_values[rank - 1]


def nop():
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


def bytes_per_job(n):
    """Traced bytes per added job, each job with its own trigger (as a C
    record owns its copy of the trigger)."""
    s = paused_scheduler()
    seconds = [60 + rng.randrange(86400) for _ in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        s.add_job(nop, trigger=IntervalTrigger(seconds=seconds[i], timezone=utc))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    s.shutdown(wait=False)
    return (after - before) / n


def bench_ops(n):
    adds, reschedules = interval_pool(), interval_pool()
    rounds = max(1, min(20, 20000 // n))
    results = [ops_round(n, adds, reschedules) for _ in range(rounds)]
    for k, name in enumerate(("add", "reschedule", "remove")):
        emit(bench=name, jobs=n, rounds=rounds,
             ns_per_op=round(median([r[k] for r in results]) * 1e9, 1))
    emit(bench="bytes_per_job", jobs=n, bytes_per_job=round(bytes_per_job(n), 1),
         method="tracemalloc")


# ------------------------------------------------------------- dispatch


def bench_dispatch(n, pool, date):
    executor = ThreadPoolExecutor(10) if pool else DebugExecutor()
    s = HostedScheduler(timezone=utc, jobstores={"default": MemoryJobStore()},
                        executors={"default": executor})
    s.start()

    def add_due(count):
        due = datetime.now(utc)
        trigger = (DateTrigger(run_date=due, timezone=utc) if date else
                   IntervalTrigger(hours=1, start_date=due, timezone=utc))
        tally = Tally(count)
        # next_run_time=None would add the job paused: pass it only when set.
        extra = {} if date else {"next_run_time": due}
        for _ in range(count):
            s.add_job(tally.run, trigger=trigger, misfire_grace_time=None, **extra)
        return tally

    def drain(tally):
        t0 = time.perf_counter()
        while True:
            wait = s._process_jobs()
            if wait is None or wait > 0:
                break
        if not tally.done.wait(600):
            sys.exit("apscheduler_bench: dispatch: only %d of %d runs" % (tally.ran, tally.target))
        if tally.ran != tally.target:
            sys.exit("apscheduler_bench: dispatch: wrong number of runs")
        return tally.done_at - t0

    drain(add_due(min(n, 1000)))  # warm-up: worker threads, code paths
    elapsed = drain(add_due(n))
    emit(bench="dispatch", executor="threadpool" if pool else "inline",
         trigger="date" if date else "interval", jobs=n, runs_per_sec=round(n / elapsed),
         ns_per_run=round(elapsed / n * 1e9, 1))
    s.shutdown(wait=True)


# ------------------------------------------------------------- lateness


def bench_lateness(m, stored, spread_ms, pool):
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

    # Started paused while the jobs go in; the first job is due 0.5 s after
    # the adds end (APScheduler's adds are slow: leave time for them).
    s.start(paused=True)
    far = IntervalTrigger(weeks=1, timezone=utc)
    t0 = time.perf_counter()
    for _ in range(stored):
        s.add_job(nop, trigger=far)
    per_add = (time.perf_counter() - t0) / max(stored, 1)
    base = time.time() + 0.5 + 2 * per_add * m
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
    v = sorted(lateness[:ran])
    emit(bench="lateness", executor="threadpool" if pool else "inline", jobs=m, stored=stored,
         spread_ms=spread_ms, ran=ran, missed=tally.missed,
         p50_us=round(percentile(v, 0.5) * 1e6, 1), p99_us=round(percentile(v, 0.99) * 1e6, 1),
         p999_us=round(percentile(v, 0.999) * 1e6, 1), min_us=round(v[0] * 1e6, 1),
         max_us=round(v[-1] * 1e6, 1), first_due_after_ms=round(first_due_ms, 1))


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


def main(argv):
    sizes = [1000, 10000, 100000]
    dispatch_jobs, lateness_jobs, stored, spread_ms = 100000, 10000, 100000, 3000
    only = {"ops", "dispatch", "lateness"}
    try:
        for a in argv:
            key, _, value = a.partition("=")
            if a == "--quick":
                sizes, dispatch_jobs, lateness_jobs, stored, spread_ms = (
                    [1000, 10000], 10000, 1000, 10000, 1000)
            elif key == "--only":
                only = set(value.split(","))
                if not only <= {"ops", "dispatch", "lateness"}:
                    raise ValueError(value)
            elif key == "--sizes":
                sizes = [count(x) for x in value.split(",")]
            elif key == "--dispatch-jobs":
                dispatch_jobs = count(value)
            elif key == "--lateness-jobs":
                lateness_jobs = count(value)
            elif key == "--stored":
                stored = count(value)
            elif key == "--spread-ms":
                spread_ms = count(value)
            elif key == "--timerslack-ns":
                set_timerslack(count(value))
            else:
                raise ValueError(a)
    except ValueError:
        sys.exit("usage:\n" + next(p for p in __doc__.split("\n\n") if "--quick" in p))

    if "ops" in only:
        for n in sizes:
            bench_ops(n)
    if "dispatch" in only:
        for pool, date in ((False, False), (True, False), (False, True), (True, True)):
            bench_dispatch(dispatch_jobs, pool, date)
    if "lateness" in only:
        bench_lateness(lateness_jobs, stored, spread_ms, True)
        bench_lateness(lateness_jobs, stored, spread_ms, False)


if __name__ == "__main__":
    main(sys.argv[1:])
