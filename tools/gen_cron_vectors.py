#!/usr/bin/python3
"""Turns the cron cases of APScheduler's own test suite into a C table.

Reads /work/shared/vectors/apscheduler_trigger_cases.json (or the path given
as the first argument) and writes tests/cron_vectors.inc (or the second
argument), which tests/test_cron_vectors.c includes. Only cases verified
against some APScheduler release are used.

Where a case is about a DST gap or fold, about crontab-style weekday numbers
in the field API (APScheduler 4), about APScheduler's prev/now rule, or has an
end_date before its start_date, our semantics (DESIGN.md section 3, the
comment at the top of src/triggers/cron.c)
deliberately differ: OVERRIDES below gives our expected result and the reason,
which the test prints with the case. Everything else must match exactly.

Usage: tools/gen_cron_vectors.py [cases.json] [out.inc]
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = sys.argv[1] if len(sys.argv) > 1 else '/work/shared/vectors/apscheduler_trigger_cases.json'
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, '..', 'tests', 'cron_vectors.inc')

FIELDS = ('year', 'month', 'day', 'week', 'day_of_week', 'hour', 'minute', 'second')

FOLD_FIXED = ('01:30 is a fixed time (hour and minute without *): in the fall-back fold it '
              'fires once, at its first occurrence (EDT), which is already past; APScheduler '
              'fires the second occurrence (EST) too')
OVERRIDES = {
    # source: (our expected value or sequence, 'ok' / 'error' for a case whose
    # trigger we accept / reject against APScheduler, why we differ)
    '3.x:tests/triggers/test_cron.py:test_previous_fire_time_2': (
        '2015-11-24T00:00:00+01:00',
        'next(prev, now) is strictly after prev whatever now is; 3.x starts from '
        'min(now, prev + 1us), which goes back before prev'),
    '3.x:tests/triggers/test_cron.py:test_dst_change[absolute_autumn_from_repeated_into_'
    'repeated_interval](None,start)': ('2013-11-04T01:30:00-05:00', FOLD_FIXED),
    '3.x:tests/triggers/test_cron.py:test_dst_change[absolute_autumn_from_repeated_into_'
    'repeated_interval](start,start)': ('2013-11-04T01:30:00-05:00', FOLD_FIXED),
    '3.x:tests/triggers/test_cron.py:test_dst_change[absolute_autumn_from_repeated_into_'
    'repeated_interval](start,expected)': ('2013-11-04T01:30:00-05:00', FOLD_FIXED),
    '4.x:tests/triggers/test_cron.py:test_dst_change[spring_skip_hour]': (
        ['2013-03-10T03:00:00-04:00'],
        '02:00 is a fixed time inside the spring-forward gap: it fires once at the first '
        'instant after the gap; 4.x skips the day, 3.9.1 fires at a nonexistent 02:00 EST'),
    '4.x:tests/triggers/test_cron.py:test_weekday_overlap[numeric]': (
        ['2009-01-08T00:00:00+01:00'],
        'the field API numbers weekdays 0 = Monday as APScheduler 3.x (3-5 = thu-sat); '
        '4.x reads numbers crontab-style'),
    '4.x:tests/triggers/test_cron.py:test_weekday_nomatch[numeric]': (
        ['2009-01-06T00:00:00+01:00'],
        'the field API numbers weekdays 0 = Monday as APScheduler 3.x (1,0 = tue,mon); '
        '4.x reads numbers crontab-style'),
    '4.x:tests/triggers/test_cron.py:test_week_2[numeric]': (
        ['2009-04-09T00:00:00+02:00', None],
        'the field API numbers weekdays 0 = Monday as APScheduler 3.x (3 = thu); '
        '4.x reads numbers crontab-style'),
    '4.x:tests/triggers/test_cron.py:test_non_existing_naive_start_time': (
        'ok',
        'a wall-clock start_date inside a gap means the first instant after the gap (as '
        'apsched_time_parse does everywhere), not an error'),
    '4.x:tests/triggers/test_cron.py:test_non_existing_naive_end_time': (
        'ok',
        'a wall-clock end_date inside a gap means the first instant after the gap (as '
        'apsched_time_parse does everywhere), not an error'),
    '4.x:tests/triggers/test_cron.py:test_aware_end_time_timezone_conversion': (
        'error',
        'end_date (11:00 EDT = 10:00 CDT) is before start_date (10:16 CDT): an error, as for '
        'the interval and calendar triggers; APScheduler accepts it and never fires'),
}
# Expected field texts that the overrides above make moot.
SKIP_FIELDS = {
    '4.x:tests/triggers/test_cron.py:test_weekday_overlap[numeric]',
    '4.x:tests/triggers/test_cron.py:test_weekday_nomatch[numeric]',
    '4.x:tests/triggers/test_cron.py:test_week_2[numeric]',
}


def c_str(s):
    if s is None:
        return 'NULL'
    return '"' + str(s).replace('\\', '\\\\').replace('"', '\\"') + '"'


def quote(v):
    return "'" + str(v).replace("'", "''") + "'"


def trigger_text(case):
    """The canonical-text form of the case's trigger (field API)."""
    params = case['params']
    parts = []
    for k in FIELDS:
        if k in params:
            parts.append('%s=%s' % (k, quote(params[k])))
    for k in params:
        if k not in FIELDS and k not in ('start_date', 'end_date', 'jitter', 'crontab'):
            parts.append('%s=%s' % (k, quote(params[k])))  # unknown names: must be rejected
    parts.append('timezone=%s' % quote(case.get('timezone') or 'local'))
    for k in ('start_date', 'end_date'):
        if case.get(k):
            parts.append('%s=%s' % (k, quote(case[k])))
    if params.get('jitter'):
        parts.append('jitter=%s' % params['jitter'])
    return 'cron[' + ', '.join(parts) + ']'


def main():
    cases = json.load(open(SRC))
    rows = []
    for case in cases:
        if case['trigger'] not in ('cron', 'cron_field'):
            continue
        if not (case.get('verified_3.9.1') or case.get('verified_3.x_branch')
                or case.get('verified_4.x_master')):
            continue
        src = case['source']
        check = case['check']
        override = OVERRIDES.get(src)
        row = {'source': src, 'note': override[1] if override else None}
        row['timezone'] = case.get('timezone') or 'local'
        row['compare_text'] = case.get('compare') == 'str'
        params = case['params']
        if case['trigger'] == 'cron_field':
            row['field'] = params['field']
            row['expr'] = str(params['expr'])
            row['now'] = case.get('now')
            if check == 'error':
                row['kind'] = 'V_ERROR'
            else:
                row['kind'] = 'V_FIELD_NEXT'
                v = case['expected_value']
                row['value'] = -1 if v is None else v
            rows.append(row)
            continue
        if 'crontab' in params:
            row['crontab'] = params['crontab']
        else:
            row['text'] = trigger_text(case)
        api4 = case['api'].startswith('4.x')
        if check == 'error':
            row['kind'] = 'V_OK' if override else 'V_ERROR'
        elif check == 'fields':
            row['kind'] = 'V_FIELDS'
            row['fields'] = case['expected_fields']
        elif check == 'next_fire_time_range':
            row['kind'] = 'V_RANGE'
            row['now'] = case['now']
            row['min'] = case.get('expected_min')
            row['max'] = case.get('expected_max')
            row['jitter'] = params.get('jitter', 0)
        elif check == 'next_fire_time':
            row['kind'] = 'V_SEQUENCE'
            row['prev'] = case.get('previous_fire_time')
            row['now'] = case['now']
            row['sequence'] = [override[0] if override else case['expected']]
        elif check == 'sequence':
            assert api4
            row['kind'] = 'V_SEQUENCE'
            row['now'] = case['start_date']
            row['sequence'] = override[0] if override else case['expected_sequence']
        else:
            raise SystemExit('unknown check %r in %s' % (check, src))
        if override and override[0] == 'error':
            row['kind'] = 'V_ERROR'
            row.pop('sequence', None)
            row.pop('now', None)
        if case.get('expected_fields') and src not in SKIP_FIELDS and check != 'fields':
            row['fields'] = case['expected_fields']
        rows.append(row)

    out = ['/* Generated by tools/gen_cron_vectors.py from APScheduler\'s test cases; do not edit. */']
    for r in rows:
        seq = r.get('sequence', [])
        fields = r.get('fields') or {}
        out.append('{')
        out.append('  .source = %s,' % c_str(r['source']))
        out.append('  .kind = %s,' % r['kind'])
        if r.get('text'):
            out.append('  .text = %s,' % c_str(r['text']))
        if r.get('crontab'):
            out.append('  .crontab = %s,' % c_str(r['crontab']))
        out.append('  .timezone = %s,' % c_str(r['timezone']))
        for k in ('prev', 'now', 'min', 'max', 'field', 'expr'):
            if r.get(k) is not None:
                out.append('  .%s = %s,' % (k, c_str(r[k])))
        if r['kind'] == 'V_FIELD_NEXT':
            out.append('  .value = %d,' % r['value'])
        if r.get('jitter'):
            out.append('  .jitter = %d,' % int(r['jitter'] * 1000000))
        if seq:
            out.append('  .nseq = %d,' % len(seq))
            out.append('  .sequence = {%s},' % ', '.join(c_str(s) for s in seq))
        if fields:
            out.append('  .fields = {%s},' % ', '.join(c_str(fields.get(f)) for f in FIELDS))
        if r['compare_text']:
            out.append('  .compare_text = true,')
        if r['note']:
            out.append('  .note = %s,' % c_str(r['note']))
        out.append('},')
    with open(OUT, 'w') as f:
        f.write('\n'.join(out) + '\n')
    print('%s: %d cases' % (OUT, len(rows)))


if __name__ == '__main__':
    main()
