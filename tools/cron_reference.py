#!/usr/bin/python3
"""Reference fire times from APScheduler 3.x, for tests/test_cron_differential.c.

Reads queries from stdin, one per line:
    zone <TAB> JSON object of CronTrigger fields <TAB> now (epoch microseconds) <TAB> count
and answers each with one line of space-separated items, one per fire time:
    <epoch microseconds>   the next fire time
    none                   no further fire time (stop)
    overflow               APScheduler overflowed searching towards year 9999 (stop)
    dst                    a UTC offset change lies between the previous step and this
                           fire time: APScheduler's DST handling differs from ours on
                           purpose there, so the comparison stops (stop)
    error:<message>        CronTrigger refused the fields (whole line)
Each step asks get_next_fire_time(previous, now) the way a scheduler does:
previous = the last fire time, now = one microsecond after it.
"""
import bisect
import datetime
import json
import sys

import pytz
from apscheduler.triggers.cron import CronTrigger

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=pytz.utc)
US = datetime.timedelta(microseconds=1)
_transitions = {}


def to_us(dt):
    d = dt - EPOCH
    return (d.days * 86400 + d.seconds) * 1000000 + d.microseconds


def from_us(us):
    return EPOCH + datetime.timedelta(microseconds=us)


def transitions(zone):
    """UTC instants (us) where the zone's offset changes."""
    if zone not in _transitions:
        tz = pytz.timezone(zone)
        times = getattr(tz, '_utc_transition_times', [])[1:]
        _transitions[zone] = [to_us(pytz.utc.localize(t)) for t in times]
    return _transitions[zone]


def answer(zone, fields, now, count):
    try:
        trigger = CronTrigger(timezone=zone, **fields)
    except Exception as e:  # the C side reports it
        return 'error:' + str(e).replace('\n', ' ')
    trans = transitions(zone)
    out = []
    prev = None
    step_start = now
    current = from_us(now)
    for _ in range(count):
        try:
            nxt = trigger.get_next_fire_time(prev, current)
        except OverflowError:
            # 3.9.1 overflows datetime near year 9999 while searching an
            # (almost) impossible expression: no answer to compare with.
            out.append('overflow')
            break
        if nxt is None:
            out.append('none')
            break
        us = to_us(nxt)
        i = bisect.bisect_right(trans, step_start)
        if i < len(trans) and trans[i] <= us:
            out.append('dst')
            break
        out.append(str(us))
        prev = nxt
        current = nxt + US
        step_start = us
    return ' '.join(out)


def main():
    for line in sys.stdin:
        line = line.rstrip('\n')
        if not line:
            continue
        zone, fields, now, count = line.split('\t')
        print(answer(zone, json.loads(fields), int(now), int(count)))
        sys.stdout.flush()


if __name__ == '__main__':
    main()
