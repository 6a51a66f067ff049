/* Identifier validation and random ids (see ids.h). */
#include <openssl/rand.h>
#include <string.h>

#include "lib/ids.h"

int id_valid(const char *s, size_t len) {
  if (s == NULL || len == 0 || len > ID_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

int id_random_hex(char *out, size_t n) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[64];
  if (n > sizeof(raw) || RAND_bytes(raw, (int)n) != 1) return -1;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[2 * n] = '\0';
  return 0;
}

int id_random_bytes(unsigned char *out, size_t n) {
  return n > 0x7fffffff || RAND_bytes(out, (int)n) != 1 ? -1 : 0;
}

char *id_hex(const unsigned char *in, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * n] = '\0';
  return out;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int id_unhex(const char *s, unsigned char *out, size_t n) {
  if (s == NULL || strlen(s) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return 0;
}
