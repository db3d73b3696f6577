#!/usr/bin/env python3
"""Replays a dispatch with the Redis store's own scripts and prints what the
server spent per run, as one JSON line.

    redis_scripts_replay.py DIR [--jobs=N] [--reps=N] [--claimers=N] [--callgrind]

DIR holds the scripts as redis_scripts_dump writes them. A private
redis-server (AOF everysec, a unix socket in a temporary directory) gets
--jobs (25,600) due interval jobs as the store writes them; then claim,
commit and close run in batches of 256, with the arguments the store sends
for at-most-once runs without a history, until every job ran once
(--reps times, each under a fresh prefix). With --claimers=N (1), N
schedulers claim a batch each before the first of them commits, as
schedulers sharing a store do: each claim passes over the jobs the others
hold. The scheduler's own part (the
claimed jobs' HGETALL, the triggers) is not replayed: this is the scripts'
cost alone.

Printed: the server's time in each script per run (INFO commandstats,
median of the repetitions; it moves with the machine's load), and with
--callgrind the server's instructions per run over the replay (valgrind
--tool=callgrind, counting only while the batches run): the figure that
does not move with the load, to compare two versions of the scripts."""
import json, os, shutil, subprocess, sys, tempfile, time

import redis

T0 = 1767225600000000
BATCH = 256
OWNER = "replay"
TAIL = ',"func":"bench_tick"}'  # (members at their default are left out: run_json.c)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "1") for a in sys.argv[1:] if a.startswith("--"))
    if len(args) != 1:
        sys.exit(__doc__)
    jobs, reps, cg = int(opts.get("jobs", 25600)), int(opts.get("reps", 3)), "callgrind" in opts
    claimers = int(opts.get("claimers", 1))
    tmp = tempfile.mkdtemp(prefix="apsched-replay-")
    sock = os.path.join(tmp, "redis.sock")
    cg_out = os.path.join(tmp, "callgrind.out")
    pre = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + cg_out] if cg else []
    server = subprocess.Popen(pre + ["redis-server", "--port", "0", "--unixsocket", sock, "--dir", tmp,
                                     "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(unix_socket_path=sock)
        for _ in range(600):
            try:
                r.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        scripts = {n: r.register_script(open(os.path.join(args[0], n + ".lua")).read())
                   for n in ("claim", "commit", "close")}
        per_run = {"claim": [], "commit": [], "close": []}
        runs_total = 0
        for rep in range(reps):
            root = "{replay%d}" % rep
            fill(r, root, jobs)
            if cg:
                subprocess.run(["callgrind_control", "-i", "on", str(server.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            spent, runs = replay(r, root, jobs, scripts, claimers)
            if cg:
                subprocess.run(["callgrind_control", "-i", "off", str(server.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for k in spent:
                per_run[k].append(spent[k] / runs)
            runs_total += runs
            r.flushall()
    finally:
        server.terminate()
        server.wait()
        if not cg:
            shutil.rmtree(tmp, ignore_errors=True)
    out = {"bench": "redis_scripts_replay", "jobs": jobs, "reps": reps, "batch": BATCH,
           "claimers": claimers,
           "usec_per_run": {k: round(sorted(v)[len(v) // 2], 2) for k, v in per_run.items()},
           "loadavg": [round(x, 2) for x in os.getloadavg()]}
    if cg:
        ann = subprocess.run(["callgrind_annotate", cg_out], capture_output=True, text=True).stdout
        total = next(l for l in ann.splitlines() if "PROGRAM TOTALS" in l).split()[0].replace(",", "")
        out["instructions_per_run"] = round(int(total) / runs_total)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out))


def fill(r, root, jobs):
    """The jobs as the store's put writes them: due, next run time in the score only."""
    pipe = r.pipeline(transaction=False)
    for i in range(jobs):
        jid = "%032x" % (i + 1)
        pipe.hset(root + ":job:" + jid, mapping={
            "func": "bench_tick", "trigger": "interval[hours=1, start_date='2026-01-01T00:00:00Z']",
            "executor": "default", "coalesce": "1", "max_instances": "1", "max_runtime_ms": "0",
            "delivery": "at_most_once", "failures": "0"})
        pipe.zadd(root + ":jobs", {jid: 0})
        pipe.zadd(root + ":next", {jid: T0 + i})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def evalsha_usec(r):
    return r.info("commandstats").get("cmdstat_evalsha", {"usec": 0})["usec"]


def replay(r, root, jobs, scripts, claimers):
    """Claims, commits and closes every job once; the server's usec in each script."""
    spent = {"claim": 0, "commit": 0, "close": 0}
    runs = 0
    while True:
        batches = []
        for c in range(claimers):
            owner = OWNER + str(c)
            u = evalsha_usec(r)
            reply = scripts["claim"](keys=[root], args=[str(T0 + jobs), BATCH, owner, 5000])
            spent["claim"] += evalsha_usec(r) - u
            if len(reply) > 1:
                batches.append((owner, str(reply[0]), reply[1:]))
        if not batches:
            return spent, runs
        for owner, token, items in batches:
            n = len(items) // 3  # id, open runs, score
            commit = [owner, n, 5000]
            close = [owner, 0, n]
            for k in range(0, len(items), 3):
                jid, t = items[k].decode(), items[k + 2].decode()
                nxt = str(int(t) + 3600000000)
                commit += [jid, token, t, nxt, "1", TAIL, t]
                close += [jid, t, token]
            u = evalsha_usec(r)
            scripts["commit"](keys=[root], args=commit)
            spent["commit"] += evalsha_usec(r) - u
            u = evalsha_usec(r)
            closed = scripts["close"](keys=[root], args=close)
            spent["close"] += evalsha_usec(r) - u
            if any(c != 1 for c in closed):
                sys.exit("replay: a run did not close: %r" % closed)
            runs += n


if __name__ == "__main__":
    main()
