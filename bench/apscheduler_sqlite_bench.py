#!/usr/bin/python3
"""The scenarios of bench_sqlite.c on Python's APScheduler 3.9.1 with its
SQLAlchemyJobStore on a SQLite file (url sqlite:///path), for a side-by-side
comparison. One JSON object per line, "impl": "apscheduler-3.9.1", each for
durability FULL and NORMAL: the file in WAL mode with synchronous=FULL or
NORMAL (set on every connection the store's engine opens), as
libapsched-sqlite runs it. The engine is the store's own: SQLAlchemy 1.4 gives
a SQLite file a NullPool, so every statement opens and closes a connection.

  sqlite_add            adds/s, one scheduler.add_job per call (interval
                        trigger, function by reference, a 16-byte argument,
                        generated id) into a fresh file on a started scheduler
                        without a loop thread, for --seconds per repetition;
  sqlite_dispatch       runs/s when N jobs are due at once (next_run_time in
                        the past), through DebugExecutor ("inline"), driving
                        _process_jobs directly like apscheduler_bench.py. N is
                        chosen from a short probe run so the dispatch takes
                        about --seconds; each line says its "jobs";
  sqlite_bytes_per_job  file bytes (database + WAL after a checkpoint) per job
                        at --bytes-jobs jobs; to fill the file in seconds, those
                        add_job calls share one transaction (the rows are what
                        add_job writes; only the commits are fewer).

APScheduler has no batch add: bench/run.sh compares libapsched's batched adds
with APScheduler's sqlite_add.

  apscheduler_sqlite_bench.py [--quick] [--only=add,dispatch,bytes]
                              [--durability=full|normal|stock] [--seconds=S]
                              [--reps=N] [--bytes-jobs=N] [--dir=DIR]

--durability=stock runs the store as the url alone leaves it (SQLite's
defaults: rollback journal, synchronous FULL), for reference. Throughputs are
the median of --reps repetitions (default 3) with min and max, each on a fresh
file in a temporary directory under --dir (default $TMPDIR or /tmp).
"""
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta

import apscheduler
from apscheduler.executors.debug import DebugExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from pytz import utc
from sqlalchemy import event

IMPL = "apscheduler-" + apscheduler.__version__
TRIGGER_POOL = 64
ARG = b"bench-arg-16byte"
SYNCHRONOUS = {"FULL": "FULL", "NORMAL": "NORMAL", "STOCK": None}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def emit(**fields):
    print(json.dumps(dict(impl=IMPL, **fields, loadavg=loadavg())), flush=True)


def emit_rate(bench, durability, unit, jobs, rates, **extra):
    emit(bench=bench, durability=durability, jobs=jobs, reps=len(rates), unit=unit,
         per_sec=round(statistics.median(rates)), per_sec_min=round(min(rates)),
         per_sec_max=round(max(rates)), **extra)


def nop(arg):
    pass


class Tally:
    """Counts runs; the one reaching the target wakes the waiter."""

    def __init__(self, target):
        self.target = target
        self.lock = threading.Lock()
        self.ran = 0
        self.done_at = None
        self.done = threading.Event()

    def run(self):
        with self.lock:
            self.ran += 1
            if self.ran >= self.target and self.done_at is None:
                self.done_at = time.perf_counter()
                self.done.set()


tally = Tally(0)


def count(arg):
    """The dispatched job: stored by reference (__main__:count), like any job
    of a persistent store."""
    tally.run()


class HostedScheduler(BaseScheduler):
    """A scheduler without a loop thread: the benchmark calls _process_jobs."""

    def shutdown(self, wait=True):
        super().shutdown(wait)

    def wakeup(self):
        pass


class Files:
    """One database file at a time in a temporary directory."""

    def __init__(self, parent):
        self.dir = tempfile.mkdtemp(prefix="apscheduler_sqlite_bench.", dir=parent)
        self.path = os.path.join(self.dir, "jobs.db")

    def fresh(self, durability):
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass
        if SYNCHRONOUS[durability]:
            db = sqlite3.connect(self.path)
            db.execute("PRAGMA journal_mode=WAL")  # kept by the file
            db.close()
        return self.path

    def size(self, suffix=""):
        try:
            return os.stat(self.path + suffix).st_size
        except FileNotFoundError:
            return 0

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def scheduler(files, durability):
    """A started scheduler (no loop thread) on a fresh file: a SQLAlchemyJobStore
    from the url, synchronous set on each of its engine's connections."""
    store = SQLAlchemyJobStore(url="sqlite:///" + files.fresh(durability))
    sync = SYNCHRONOUS[durability]
    if sync:
        @event.listens_for(store.engine, "connect")
        def set_synchronous(dbapi_conn, record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=" + sync)
            cur.close()
    s = HostedScheduler(timezone=utc, jobstores={"default": store},
                        executors={"default": DebugExecutor()})
    s.start()
    return s, store


def interval_pool(rng):
    return [IntervalTrigger(seconds=60 + rng.randrange(86400), timezone=utc)
            for _ in range(TRIGGER_POOL)]


# ------------------------------------------------------------------ add


def add_rep(files, durability, triggers, max_jobs, seconds):
    s, _ = scheduler(files, durability)
    n = 0
    t0 = t1 = time.perf_counter()
    while n < max_jobs and t1 - t0 < seconds:
        s.add_job(nop, trigger=triggers[n % TRIGGER_POOL], args=(ARG,))
        n += 1
        t1 = time.perf_counter()
    s.shutdown(wait=False)
    return n, n / (t1 - t0)


def bench_add(files, durability, triggers, max_jobs, seconds, reps):
    results = [add_rep(files, durability, triggers, max_jobs, seconds) for _ in range(reps)]
    emit_rate("sqlite_add", durability, "adds", sum(r[0] for r in results) // reps,
              [r[1] for r in results], seconds=seconds)


# ---------------------------------------------------------------- bytes


def bench_bytes(files, durability, triggers, n):
    s, store = scheduler(files, durability)
    engine = store.engine
    # Untimed fill: the store's statements go to one connection in one
    # transaction instead of one connection and commit each.
    with engine.begin() as conn:
        store.engine = conn
        for i in range(n):
            s.add_job(nop, trigger=triggers[i % TRIGGER_POOL], args=(ARG,))
    store.engine = engine
    s.shutdown(wait=False)  # disposes of the engine
    db = sqlite3.connect(files.path)
    if SYNCHRONOUS[durability]:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = db.execute("SELECT count(*) FROM apscheduler_jobs").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    page_count = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    if rows != n:
        sys.exit("apscheduler_sqlite_bench: %d rows for %d jobs" % (rows, n))
    db_bytes, wal_bytes = files.size(), files.size("-wal")
    emit(bench="sqlite_bytes_per_job", durability=durability, jobs=n,
         bytes_per_job=round((db_bytes + wal_bytes) / n, 1), db_bytes=db_bytes,
         wal_bytes=wal_bytes, page_size=page_size, page_count=page_count)


# ------------------------------------------------------------- dispatch


def dispatch_rep(files, durability, n):
    """Adds n due jobs (untimed), then runs them all; returns runs/s."""
    global tally
    s, _ = scheduler(files, durability)
    due = datetime.now(utc) - timedelta(seconds=1)
    trigger = IntervalTrigger(hours=1, start_date=due, timezone=utc)
    for _ in range(n):
        s.add_job(count, trigger=trigger, args=(ARG,), next_run_time=due,
                  misfire_grace_time=None)
    tally = Tally(n)
    t0 = time.perf_counter()
    while True:
        wait = s._process_jobs()
        if wait is None or wait > 0:
            break
    if not tally.done.wait(600):
        sys.exit("apscheduler_sqlite_bench: dispatch: only %d of %d runs" % (tally.ran, n))
    if tally.ran != n:
        sys.exit("apscheduler_sqlite_bench: dispatch: wrong number of runs")
    elapsed = tally.done_at - t0
    s.shutdown(wait=True)
    return n / elapsed


def round2(x):
    """x to two significant digits."""
    e = 10 ** max(len(str(int(x))) - 2, 0)
    return int(round(x / e) * e)


def bench_dispatch(files, durability, probe_jobs, seconds, reps, max_jobs):
    probe = dispatch_rep(files, durability, probe_jobs)
    n = min(max(round2(probe * seconds), probe_jobs), max_jobs)
    rates = [dispatch_rep(files, durability, n) for _ in range(reps)]
    emit_rate("sqlite_dispatch", durability, "runs", n, rates, executor="inline",
              probe_jobs=probe_jobs, probe_per_sec=round(probe))


# ----------------------------------------------------------------- main


def positive(text, kind=int):
    v = kind(float(text)) if kind is int else kind(text)
    if not 0 < v <= 1e9:
        raise ValueError(text)
    return v


def main(argv):
    import random
    seconds, reps, bytes_jobs, probe_jobs = 1.5, 3, 10000, 200
    max_adds, max_dispatch = 10 ** 9, 100000
    only = {"add", "dispatch", "bytes"}
    durabilities = ["FULL", "NORMAL"]
    parent = None
    try:
        for a in argv:
            key, _, value = a.partition("=")
            if a == "--quick":
                seconds, reps, bytes_jobs, probe_jobs = 0.2, 1, 200, 50
                max_adds, max_dispatch = 200, 200
            elif key == "--only":
                only = set(value.split(","))
                if not only or not only <= {"add", "dispatch", "bytes"}:
                    raise ValueError(value)
            elif key == "--durability" and value.upper() in SYNCHRONOUS:
                durabilities = [value.upper()]
            elif key == "--seconds":
                seconds = positive(value, float)
            elif key == "--reps":
                reps = positive(value)
            elif key == "--bytes-jobs":
                bytes_jobs = positive(value)
            elif key == "--dir" and value:
                parent = value
            else:
                raise ValueError(a)
    except ValueError:
        sys.exit("usage:\n" + next(p for p in __doc__.split("\n\n") if "--quick" in p))

    rng = random.Random(0x9E3779B97F4A7C15)
    triggers = interval_pool(rng)
    files = Files(parent)
    try:
        for d in durabilities:
            if "add" in only:
                bench_add(files, d, triggers, max_adds, seconds, reps)
            if "bytes" in only:
                bench_bytes(files, d, triggers, bytes_jobs)
            if "dispatch" in only:
                bench_dispatch(files, d, probe_jobs, seconds, reps, max_dispatch)
    finally:
        files.cleanup()


if __name__ == "__main__":
    main(sys.argv[1:])
