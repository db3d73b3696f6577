/* PostgreSQL rows <-> the shared column values (../common/codec.c does the
 * records). Rows come back in binary, so integers and bytes need no parsing;
 * a column whose type was changed by hand (ALTER TABLE) is passed on as "a
 * value of type ...", so its rows are reported as broken, never misread.
 * Parameters go as text, but the argument as binary bytes. */
#include "pg_internal.h"

#include <stdio.h>
#include <string.h>

/* Type OIDs of the catalog (pg_type.h is not among libpq's headers). */
enum {
  OID_BOOL = 16,
  OID_BYTEA = 17,
  OID_NAME = 19,
  OID_INT8 = 20,
  OID_INT2 = 21,
  OID_INT4 = 23,
  OID_TEXT = 25,
  OID_FLOAT4 = 700,
  OID_FLOAT8 = 701,
  OID_BPCHAR = 1042,
  OID_VARCHAR = 1043,
  OID_NUMERIC = 1700
};

void apsched__pg_params(pg_params *p, const apsched_job_record *rec, const char *trigger_text) {
  store_value v[COL_COUNT];
  apsched__pstore_encode(rec, trigger_text, &p->policies, v);
  for (int col = 0; col < COL_COUNT; col++) {
    p->lengths[col] = 0;
    p->formats[col] = 0;
    switch (v[col].kind) {
    case STORE_INT:
      snprintf(p->ints[col], sizeof p->ints[col], "%lld", (long long)v[col].i);
      p->values[col] = p->ints[col];
      break;
    case STORE_TEXT: p->values[col] = v[col].text; break;
    case STORE_BYTES:
      p->values[col] = v[col].bytes;
      p->lengths[col] = (int)v[col].len;
      p->formats[col] = 1;
      break;
    default: p->values[col] = NULL; break;
    }
  }
}

/* A big-endian integer of len bytes (2, 4 or 8), sign-extended. */
static int64_t be_int(const unsigned char *b, int len) {
  uint64_t u = 0;
  for (int i = 0; i < len; i++) u = u << 8 | b[i];
  if (len < 8 && (u >> (len * 8 - 1)) & 1) u |= ~UINT64_C(0) << (len * 8);
  return (int64_t)u;
}

int64_t apsched__pg_int8(const PGresult *res, int row, int col) {
  if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8) return 0;
  return be_int((const unsigned char *)PQgetvalue(res, row, col), 8);
}

int64_t apsched__pg_int(const PGresult *res, int row, int col) {
  int len = PQgetlength(res, row, col);
  if (PQgetisnull(res, row, col) || (len != 2 && len != 4 && len != 8)) return 0;
  return be_int((const unsigned char *)PQgetvalue(res, row, col), len);
}

static store_value column(const PGresult *res, int row, int col) {
  if (PQgetisnull(res, row, col)) return (store_value){.kind = STORE_NULL};
  const char *bytes = PQgetvalue(res, row, col);
  int len = PQgetlength(res, row, col);
  switch (PQftype(res, col)) {
  case OID_TEXT:
  case OID_VARCHAR:
  case OID_BPCHAR:
  case OID_NAME:
    /* libpq ends every value with a NUL, and text cannot hold one. */
    return (store_value){.kind = STORE_TEXT, .text = bytes};
  case OID_BYTEA: return (store_value){.kind = STORE_BYTES, .bytes = bytes, .len = (size_t)len};
  case OID_BOOL:
    if (len == 1) return (store_value){.kind = STORE_INT, .i = bytes[0] != 0};
    break;
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
    if (len == 2 || len == 4 || len == 8)
      return (store_value){.kind = STORE_INT, .i = be_int((const unsigned char *)bytes, len)};
    break;
  case OID_FLOAT4:
  case OID_FLOAT8: return (store_value){.kind = STORE_OTHER, .other = "a real number"};
  case OID_NUMERIC: return (store_value){.kind = STORE_OTHER, .other = "a numeric"};
  default: break;
  }
  return (store_value){.kind = STORE_OTHER, .other = "a value of another type"};
}

int apsched__pg_decode(const PGresult *res, int row, store_base *b, apsched_job_record **out) {
  store_value v[COL_COUNT];
  for (int col = 0; col < COL_COUNT; col++) v[col] = column(res, row, col);
  return apsched__pstore_decode_row(b, v, out);
}

char *apsched__pg_array_text(char *p, const char *v) {
  *p++ = '"';
  for (; *v; v++) {
    if (*v == '"' || *v == '\\') *p++ = '\\';
    *p++ = *v;
  }
  *p++ = '"';
  return p;
}
