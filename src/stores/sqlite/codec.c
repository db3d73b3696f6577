/* SQLite rows <-> the shared column values (../common/codec.c does the
 * records). SQLite's columns have no fixed types: a value of the wrong type
 * is passed on as such, so the row is reported as broken, not misread. */
#include "sqlite_internal.h"

int apsched__sqlite_bind(sqlite3_stmt *st, const apsched_job_record *rec, const char *trigger_text) {
  store_value v[COL_COUNT];
  store_policies policies;
  apsched__pstore_encode(rec, trigger_text, &policies, v);
  int rc = SQLITE_OK;
  for (int col = 0; col < COL_COUNT && rc == SQLITE_OK; col++) {
    switch (v[col].kind) {
    case STORE_INT: rc = sqlite3_bind_int64(st, col + 1, v[col].i); break;
    case STORE_TEXT:
      /* policies is on this stack frame: copied. */
      rc = sqlite3_bind_text(st, col + 1, v[col].text, -1,
                             col == COL_POLICIES ? SQLITE_TRANSIENT : SQLITE_STATIC);
      break;
    case STORE_BYTES:
      rc = sqlite3_bind_blob64(st, col + 1, v[col].bytes, v[col].len, SQLITE_STATIC);
      break;
    default: rc = sqlite3_bind_null(st, col + 1); break;
    }
  }
  return rc;
}

static const char *type_name(int type) {
  switch (type) {
  case SQLITE_INTEGER: return "an integer";
  case SQLITE_FLOAT: return "a real number";
  case SQLITE_TEXT: return "text";
  case SQLITE_BLOB: return "a blob";
  default: return "NULL";
  }
}

int apsched__sqlite_decode(sqlite3_stmt *st, store_base *b, apsched_job_record **out) {
  store_value v[COL_COUNT];
  for (int col = 0; col < COL_COUNT; col++) {
    int type = sqlite3_column_type(st, col);
    if (type == SQLITE_NULL) {
      v[col] = (store_value){.kind = STORE_NULL};
    } else if (col <= COL_EXECUTOR || col == COL_DELIVERY || col == COL_POLICIES) {
      /* A text column: SQLite shows any value as text, as the sqlite3 shell does. */
      const char *text = (const char *)sqlite3_column_text(st, col);
      v[col] = text ? (store_value){.kind = STORE_TEXT, .text = text}
                    : (store_value){.kind = STORE_NULL};
    } else if (col == COL_ARG && (type == SQLITE_BLOB || type == SQLITE_TEXT)) {
      const void *bytes = sqlite3_column_blob(st, col);
      v[col] = (store_value){.kind = STORE_BYTES, .bytes = bytes,
                             .len = (size_t)sqlite3_column_bytes(st, col)};
    } else if (col != COL_ARG && type == SQLITE_INTEGER) {
      v[col] = (store_value){.kind = STORE_INT, .i = sqlite3_column_int64(st, col)};
    } else {
      v[col] = (store_value){.kind = STORE_OTHER, .other = type_name(type)};
    }
  }
  return apsched__pstore_decode_row(b, v, out);
}
