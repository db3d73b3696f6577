#!/usr/bin/python3
"""Python's APScheduler 3.9.1 with its RedisJobStore (python3-redis) on the
redis-server of bench_redis (unix socket, appendonly yes, appendfsync
everysec), next to bench_redis.c's figures. One JSON object per line,
"impl": "apscheduler-3.9.1":

  redis_dispatch    runs/s of one scheduler when N jobs are due at once
                    (hourly interval jobs, next_run_time a second ago, any
                    lateness), through DebugExecutor ("inline"), driving
                    _process_jobs directly like apscheduler_pg_bench.py. N
                    is chosen from a short probe run so the dispatch takes
                    about --seconds; the line says its "jobs";
  redis_duplicates  two scheduler processes (BackgroundScheduler, default
                    thread pool) share one store (the same jobs and run
                    times keys), which RedisJobStore does not guard against:
                    --due date jobs due at once, each run appends "job pid"
                    to a file (O_APPEND); once the jobs hash is empty, the
                    lines per job are counted: "executions", "distinct",
                    "duplicates" (executions beyond the first of each run)
                    and "missing"; "loop_threads_died": schedulers whose
                    loop thread ended on an exception.

  apscheduler_redis_bench.py [--quick] [--only=dispatch,duplicates]
                             [--seconds=S] [--reps=N] [--due=N] [--socket=PATH]

The server: --socket, else $APSCHED_REDIS_SOCKET (bench_redis -- COMMAND
sets it). Each scenario uses keys of its own (apscheduler_bench.*), deleted
afterwards. Throughputs are the median of --reps repetitions (default 3)
with min and max.
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import apscheduler
from apscheduler.executors.debug import DebugExecutor
from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pytz import utc
from redis import Redis

IMPL = "apscheduler-" + apscheduler.__version__
ARG = b"bench-arg-16byte"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def emit(**fields):
    print(json.dumps(dict(impl=IMPL, **fields, loadavg=loadavg())), flush=True)


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
    """The dispatched job, stored by reference (__main__:count)."""
    tally.run()


RECORD_FD = None


def record(job_id):
    """The shared job: one line per execution (a date job has one scheduled
    time: its id names the run)."""
    os.write(RECORD_FD, ("%s %d\n" % (job_id, os.getpid())).encode())


class HostedScheduler(BaseScheduler):
    """A scheduler without a loop thread: the benchmark calls _process_jobs."""

    def shutdown(self, wait=True):
        super().shutdown(wait)

    def wakeup(self):
        pass


def store_on(sock, name):
    """A RedisJobStore on keys of its own."""
    return RedisJobStore(jobs_key="apscheduler_bench.%s.jobs" % name,
                         run_times_key="apscheduler_bench.%s.run_times" % name,
                         unix_socket_path=sock)


def drop_keys(sock, name):
    r = Redis(unix_socket_path=sock)
    r.delete("apscheduler_bench.%s.jobs" % name, "apscheduler_bench.%s.run_times" % name)
    r.close()


# ------------------------------------------------------------- dispatch


def dispatch_rep(sock, n, rep):
    """Adds n due jobs (untimed) under fresh keys, then runs them all;
    returns runs/s."""
    global tally
    keys = "dispatch_%d" % rep
    drop_keys(sock, keys)
    store = store_on(sock, keys)
    s = HostedScheduler(timezone=utc, jobstores={"default": store},
                        executors={"default": DebugExecutor()})
    s.start(paused=True)
    due = datetime.now(utc) - timedelta(seconds=1)
    trigger = IntervalTrigger(hours=1, start_date=due, timezone=utc)
    for _ in range(n):
        s.add_job(count, trigger=trigger, args=(ARG,), next_run_time=due,
                  misfire_grace_time=None)
    s.resume()
    tally = Tally(n)
    t0 = time.perf_counter()
    while True:
        wait = s._process_jobs()
        if wait is None or wait > 0:
            break
    if not tally.done.wait(600):
        sys.exit("apscheduler_redis_bench: dispatch: only %d of %d runs" % (tally.ran, n))
    if tally.ran != n:
        sys.exit("apscheduler_redis_bench: dispatch: %d runs for %d jobs" % (tally.ran, n))
    elapsed = tally.done_at - t0
    s.shutdown(wait=True)
    drop_keys(sock, keys)
    return n / elapsed


def round2(x):
    """x to two significant digits."""
    e = 10 ** max(len(str(int(x))) - 2, 0)
    return int(round(x / e) * e)


def bench_dispatch(sock, probe_jobs, seconds, reps, max_jobs):
    probe = dispatch_rep(sock, probe_jobs, 0)
    n = min(max(round2(probe * seconds), probe_jobs), max_jobs)
    rates = [dispatch_rep(sock, n, r + 1) for r in range(reps)]
    emit(bench="redis_dispatch", procs=1, jobs=n, reps=reps, unit="runs",
         per_sec=round(statistics.median(rates)), per_sec_min=round(min(rates)),
         per_sec_max=round(max(rates)), executor="inline", probe_jobs=probe_jobs,
         probe_per_sec=round(probe))


# ----------------------------------------------------------- duplicates


def jobs_left(r, keys):
    return r.hlen("apscheduler_bench.%s.jobs" % keys)


def duplicates_child(sock, keys, path, start_at):
    """One of the two schedulers: starts at start_at (time.time(), so both
    start together whatever their interpreters' start-up took), runs until
    the jobs hash is empty (and a second more for the runs in flight), then
    stops."""
    global RECORD_FD
    RECORD_FD = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def died(args):
        # The other scheduler removed a job under this one (JobLookupError
        # in _process_jobs): APScheduler's loop thread ends; noted, not printed.
        os.write(RECORD_FD, ("! %s %d\n" % (args.exc_type.__name__, os.getpid())).encode())

    threading.excepthook = died
    store = store_on(sock, keys)
    s = BackgroundScheduler(timezone=utc, jobstores={"default": store})
    time.sleep(max(0.0, float(start_at) - time.time()))
    s.start()
    r = Redis(unix_socket_path=sock)
    deadline = time.monotonic() + 300
    while jobs_left(r, keys) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    s.shutdown(wait=True)
    r.close()


def bench_duplicates(sock, due_runs):
    keys = "shared"
    drop_keys(sock, keys)
    path = "/tmp/apscheduler_redis_bench.%d.runs" % os.getpid()
    if os.path.exists(path):
        os.unlink(path)
    # The jobs go in first, through a scheduler without a loop thread (one
    # would run them as it shuts down), due a second ago.
    store = store_on(sock, keys)
    adder = HostedScheduler(timezone=utc, jobstores={"default": store})
    adder.start(paused=True)
    due = datetime.now(utc) - timedelta(seconds=1)
    for i in range(due_runs):
        job_id = "job%05d" % i
        adder.add_job(record, trigger=DateTrigger(run_date=due, timezone=utc), args=(job_id,),
                      id=job_id, misfire_grace_time=None)
    adder.shutdown(wait=False)
    start_at = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child",
                               sock, keys, path, repr(start_at)]) for _ in range(2)]
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    for p in procs:
        if p.wait() != 0:
            sys.exit("apscheduler_redis_bench: a scheduler process exited with %d" % p.returncode)
    elapsed = time.perf_counter() - t0
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    died = [line[1] for line in lines if line[0] == "!"]
    lines = [line for line in lines if line[0] != "!"]
    os.unlink(path)
    drop_keys(sock, keys)
    per_run = Counter(job for job, _pid in lines)
    per_pid = Counter(pid for _job, pid in lines)
    executions, distinct = len(lines), len(per_run)
    emit(bench="redis_duplicates", schedulers=2, due_runs=due_runs, executions=executions,
         distinct=distinct, duplicates=executions - distinct, missing=due_runs - distinct,
         duplicate_share=round((executions - distinct) / due_runs, 3),
         per_process=sorted(per_pid.values()), loop_threads_died=len(died),
         died_of=sorted(set(died)), seconds=round(elapsed, 1),
         executor="threadpool")


# ----------------------------------------------------------------- main


def positive(text, kind=int):
    v = kind(float(text)) if kind is int else kind(text)
    if not 0 < v <= 1e9:
        raise ValueError(text)
    return v


def main(argv):
    if len(argv) == 5 and argv[0] == "--child":
        duplicates_child(*argv[1:])
        return
    seconds, reps, probe_jobs, max_jobs, due_runs = 5.0, 3, 200, 100000, 1000
    only = {"dispatch", "duplicates"}
    sock = os.environ.get("APSCHED_REDIS_SOCKET")
    try:
        for a in argv:
            key, _, value = a.partition("=")
            if a == "--quick":
                seconds, reps, probe_jobs, max_jobs, due_runs = 0.5, 1, 50, 200, 100
            elif key == "--only":
                only = set(value.split(","))
                if not only or not only <= {"dispatch", "duplicates"}:
                    raise ValueError(value)
            elif key == "--seconds":
                seconds = positive(value, float)
            elif key == "--reps":
                reps = positive(value)
            elif key == "--due":
                due_runs = positive(value)
            elif key == "--socket" and value:
                sock = value
            else:
                raise ValueError(a)
        if not sock:
            raise ValueError("no server: --socket or APSCHED_REDIS_SOCKET")
    except ValueError as e:
        sys.exit("apscheduler_redis_bench: %s\nusage:\n%s" % (
            e, next(p for p in __doc__.split("\n\n") if "--quick" in p)))
    if "dispatch" in only:
        bench_dispatch(sock, probe_jobs, seconds, reps, max_jobs)
    if "duplicates" in only:
        bench_duplicates(sock, due_runs)


if __name__ == "__main__":
    main(sys.argv[1:])
