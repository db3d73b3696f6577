/* Base64 (RFC 4648, standard alphabet, '=' padding) for job byte arguments. */
#include "cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cli_base64_encode(const void *data, size_t len) {
  const unsigned char *in = data;
  if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
  char *out = malloc((len + 2) / 3 * 4 + 1);
  if (!out) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len) v |= in[i + 2];
    out[k++] = alphabet[(v >> 18) & 63];
    out[k++] = alphabet[(v >> 12) & 63];
    out[k++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
    out[k++] = i + 2 < len ? alphabet[v & 63] : '=';
  }
  out[k] = '\0';
  return out;
}

static int sextet(char c) {
  const char *p = c ? strchr(alphabet, c) : NULL;
  return p ? (int)(p - alphabet) : -1;
}

int cli_base64_decode(const char *text, unsigned char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  size_t n = strlen(text);
  if (n % 4 != 0) return APSCHED_EINVAL;
  unsigned char *buf = malloc(n / 4 * 3 + 1);
  if (!buf) return APSCHED_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i += 4) {
    bool last = i + 4 == n;
    int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    int s[4];
    for (int j = 0; j < 4; j++) s[j] = j >= 4 - pad ? 0 : sextet(text[i + j]);
    if (s[0] < 0 || s[1] < 0 || s[2] < 0 || s[3] < 0) {
      free(buf);
      return APSCHED_EINVAL;
    }
    uint32_t v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
    /* Canonical only: the bits under the padding are zero. */
    if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))) {
      free(buf);
      return APSCHED_EINVAL;
    }
    buf[k++] = (unsigned char)(v >> 16);
    if (pad < 2) buf[k++] = (unsigned char)(v >> 8);
    if (pad < 1) buf[k++] = (unsigned char)v;
  }
  *out = buf;
  *len = k;
  return APSCHED_OK;
}
