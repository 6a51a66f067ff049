/* UTF-8 validation (see utf8.h). */
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "lib/utf8.h"

size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[k] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* Index of the first byte >= 0x80 in s[i..n), or n; checks whole blocks
 * first, then finds the byte within the block that has one. */
static size_t ascii_run(const unsigned char *s, size_t i, size_t n) {
#ifdef __SSE2__
  for (; i + 64 <= n; i += 64) {
    __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
    __m128i d = _mm_loadu_si128((const __m128i *)(s + i + 48));
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)))) break;
  }
  for (; i + 16 <= n; i += 16) {
    int m = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + i)));
    if (m) return i + (size_t)__builtin_ctz((unsigned)m);
  }
#else
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    if (w & 0x8080808080808080ull) break;
  }
#endif
  while (i < n && s[i] < 0x80) i++;
  return i;
}

int utf8_valid(const void *p, size_t n) {
  const unsigned char *s = p;
  size_t i = 0;
  for (;;) {
    i = ascii_run(s, i, n);
    if (i == n) return 1;
    size_t len = utf8_seq(s + i, n - i);
    if (len == 0) return 0;
    i += len;
  }
}
