/* SQL templates: '@' stands for the table prefix (SQLite) or the quoted
 * schema name (PostgreSQL), so each statement is written once, readably. */
#include "store_common.h"

#include <stdlib.h>
#include <string.h>

char *apsched__pstore_expand(const char *sql, const char *subst) {
  size_t slen = strlen(subst), n = 0;
  for (const char *p = sql; *p; p++) n += *p == '@' ? slen : 1;
  char *out = malloc(n + 1), *o = out;
  if (!out) return NULL;
  for (const char *p = sql; *p; p++) {
    if (*p == '@') {
      memcpy(o, subst, slen);
      o += slen;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}
