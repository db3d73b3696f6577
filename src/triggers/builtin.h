/* Internal interface between the generic trigger code and the built-in kinds. */
#ifndef APSCHED_TRIGGERS_BUILTIN_H
#define APSCHED_TRIGGERS_BUILTIN_H

#include "../internal.h"

/* Parsers for the text between the brackets of each kind's canonical form. */
APSCHED_INTERNAL int apsched__date_parse_params(const char *params, apsched_trigger **out,
                                                char *errbuf, size_t errlen);
APSCHED_INTERNAL int apsched__interval_parse_params(const char *params, apsched_trigger **out,
                                                    char *errbuf, size_t errlen);

/* sizeof the kind's struct when t is of that kind, else 0 (see
 * apsched__trigger_flat_size). */
APSCHED_INTERNAL size_t apsched__interval_flat_size(const apsched_trigger *t);
APSCHED_INTERNAL size_t apsched__date_flat_size(const apsched_trigger *t);

/* Appends "<sep>key='value'", doubling quotes inside value. */
APSCHED_INTERNAL void apsched__append_quoted(char *buf, size_t len, size_t *pos, const char *sep,
                                             const char *key, const char *value);
/* A parameter holding an RFC 3339 time. */
APSCHED_INTERNAL int apsched__param_time(const apsched__param *p, apsched_time_t *out,
                                         char *errbuf, size_t errlen);
/* A parameter holding a whole number in [min, max]. */
APSCHED_INTERNAL int apsched__param_int(const apsched__param *p, int64_t min, int64_t max,
                                        int64_t *out, char *errbuf, size_t errlen);
/* Appends "<sep>key='<RFC 3339 UTC time>'". */
APSCHED_INTERNAL void apsched__append_time(char *buf, size_t len, size_t *pos, const char *sep,
                                           const char *key, apsched_time_t t);

/* Appends "<sep>jitter=<seconds>" ("jitter=2.5"): seconds with up to six
 * decimals, trailing zeros trimmed, as the other kinds write it. */
APSCHED_INTERNAL void apsched__append_jitter(char *buf, size_t len, size_t *pos, const char *sep,
                                             int64_t usec);
/* Reads a parameter written that way back into microseconds. */
APSCHED_INTERNAL int apsched__param_seconds(const apsched__param *p, int64_t *out, char *errbuf,
                                            size_t errlen);

#endif
