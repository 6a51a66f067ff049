/* Hand-written JSON text (see jwrite.h). */
#include <string.h>

#include "lib/jwrite.h"

/* 1 for a byte jansson escapes: '"', '\\' and the C0 controls. */
static inline int needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

char *jwrite_string(char *out, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  *out++ = '"';
  while (p < end) {
    /* Runs without anything to escape go 8 bytes at a time: a byte below
     * 0x20, a '"' or a '\\' in the word stops the run (the byte loop below
     * finds which; a borrow can only flag bytes after a real hit). */
    const unsigned char *run = p;
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
      uint64_t x;
      memcpy(&x, p, 8);
      uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
      if ((((x - ones * 0x20) | (q - ones) | (b - ones)) & ~x & highs) != 0) {
        /* ~x masks out bytes >= 0x80, which never need escaping; q and b
         * are tested against ~x as well, which is exact for them: a byte
         * equal to '"' or '\\' has its high bit clear. */
        break;
      }
      p += 8;
    }
    while (p < end && !needs_escape(*p)) p++;
    memcpy(out, run, (size_t)(p - run));
    out += p - run;
    if (p == end) break;
    unsigned char c = *p++;
    *out++ = '\\';
    switch (c) {
    case '"': *out++ = '"'; break;
    case '\\': *out++ = '\\'; break;
    case '\b': *out++ = 'b'; break;
    case '\f': *out++ = 'f'; break;
    case '\n': *out++ = 'n'; break;
    case '\r': *out++ = 'r'; break;
    case '\t': *out++ = 't'; break;
    default:
      memcpy(out, "u00", 3);
      out[3] = hex[c >> 4];
      out[4] = hex[c & 0xf];
      out += 5;
      break;
    }
  }
  *out++ = '"';
  return out;
}

char *jwrite_u64(char *out, uint64_t v) {
  char d[JWRITE_U64_MAX];
  size_t n = 0;
  do {
    d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  memcpy(out, d + sizeof(d) - n, n);
  return out + n;
}
