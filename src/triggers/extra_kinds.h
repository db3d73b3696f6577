/* Internal interface of the calendar-interval trigger and the and/or
 * combinations: their canonical-text parsers (for trigger.c's table of
 * kinds) and the jitter text they share. */
#ifndef APSCHED_TRIGGERS_EXTRA_KINDS_H
#define APSCHED_TRIGGERS_EXTRA_KINDS_H

#include "builtin.h"

/* Parsers for the text between the brackets of "calendar[...]", "and[...]"
 * and "or[...]". */
APSCHED_INTERNAL int apsched__calendar_parse_params(const char *params, apsched_trigger **out,
                                                    char *errbuf, size_t errlen);
APSCHED_INTERNAL int apsched__and_parse_params(const char *params, apsched_trigger **out,
                                               char *errbuf, size_t errlen);
APSCHED_INTERNAL int apsched__or_parse_params(const char *params, apsched_trigger **out,
                                              char *errbuf, size_t errlen);

/* Appends "<sep>jitter=<seconds>" ("jitter=2.5"): seconds with up to six
 * decimals, trailing zeros trimmed, as the other kinds write it. */
APSCHED_INTERNAL void apsched__append_jitter(char *buf, size_t len, size_t *pos, const char *sep,
                                             int64_t usec);
/* Reads a parameter written that way back into microseconds. */
APSCHED_INTERNAL int apsched__param_seconds(const apsched__param *p, int64_t *out, char *errbuf,
                                            size_t errlen);

#endif
