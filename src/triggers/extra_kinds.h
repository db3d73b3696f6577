/* Internal interface of the calendar-interval trigger and the and/or
 * combinations: their canonical-text parsers (for trigger.c's table of
 * kinds). */
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

#endif
