/* The validating JSON scanner (see jscan.h and docs/internals/jscan.md).
 * One pass, no allocation: an explicit stack of open containers, and the
 * keys of the open objects kept as spans for the duplicate check. The
 * per-byte work is in strings, where runs of plain bytes are skipped 16 at a
 * time with SSE2 (8 with word arithmetic elsewhere). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "lib/jscan.h"
#include "lib/utf8.h"

#define DEPTH_MAX 1024       /* containers open at once (config allows up to 1000) */
#define KEYS_MAX 256         /* keys of the open objects, for the duplicate check */
#define ARRAY_MARK 0xffff    /* stack entry of an array (objects hold their first key's index) */
#define REAL_MAX 64          /* a real longer than this is left to jansson (UNSURE) */

typedef const unsigned char *ptr;

/* 1 for a byte that needs no attention inside a string: not '"', '\\', a
 * control character or the start of a UTF-8 sequence. */
static inline int plain(unsigned c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

#ifdef __SSE2__
/* The bytes of s[0..16) the fast scan passes, as a vector of 0xff: bytes
 * from 0x20 to 0x7f but '"' (signed compare: bytes >= 0x80 are negative
 * and fail "> 0x1f" with the control characters), and a backslash only
 * when the escape is \n or \r (an SDP has a pair on every line; s[16] is
 * read to see the byte after the last one). *bs receives the backslashes. */
static inline __m128i pass16(ptr s, __m128i *bs) {
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1f);
  const __m128i lf = _mm_set1_epi8('n'), cr = _mm_set1_epi8('r');
  __m128i x = _mm_loadu_si128((const __m128i *)s), next = _mm_loadu_si128((const __m128i *)(s + 1));
  __m128i b = _mm_cmpeq_epi8(x, bslash);
  __m128i simple = _mm_or_si128(_mm_cmpeq_epi8(next, lf), _mm_cmpeq_epi8(next, cr));
  __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpgt_epi8(x, ctl));
  *bs = b;
  return _mm_andnot_si128(_mm_andnot_si128(simple, b), ok);
}
#endif

/* The first byte in [p, end) that is not plain, or end. With SSE2, \n and
 * \r escapes are skipped too, 32 bytes at a time, and *escaped is set when
 * one was. */
static inline ptr skip_plain(ptr p, ptr end, int *escaped) {
#ifdef __SSE2__
  __m128i seen = _mm_setzero_si128();
  while (end - p > 32) {
    __m128i ba, bb;
    __m128i a = pass16(p, &ba), b = pass16(p + 16, &bb);
    if (_mm_movemask_epi8(_mm_and_si128(a, b)) == 0xffff) {
      seen = _mm_or_si128(seen, _mm_or_si128(ba, bb));
      p += 32;
      continue;
    }
    unsigned m = ~((unsigned)_mm_movemask_epi8(a) | (unsigned)_mm_movemask_epi8(b) << 16);
    unsigned at = (unsigned)__builtin_ctz(m);
    unsigned before = ((unsigned)_mm_movemask_epi8(ba) | (unsigned)_mm_movemask_epi8(bb) << 16) & ((1u << at) - 1);
    if (before || _mm_movemask_epi8(seen)) *escaped |= JSCAN_ESC;
    return p + at;
  }
  if (_mm_movemask_epi8(seen)) *escaped |= JSCAN_ESC;
#else
  (void)escaped;
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  while (end - p >= 8) {
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x;
    if (hit & highs) break; /* somewhere in these 8: the byte loop finds it */
    p += 8;
  }
#endif
  while (p < end && plain(*p)) p++;
  return p;
}

static inline ptr skip_ws(ptr p, ptr end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p;
}

static int hex4(ptr p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (int)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (int)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (int)(c - 'A' + 10);
    else return -1;
  }
  return v;
}

/* Length of the valid escape at p (p[0] == '\\'), or 0. \u0000 and lone
 * surrogates are refused as jansson refuses them. */
static size_t escape_len(ptr p, ptr end) {
  if (end - p < 2) return 0;
  switch (p[1]) {
  case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
    return 2;
  case 'u':
    break;
  default:
    return 0;
  }
  if (end - p < 6) return 0;
  int cp = hex4(p + 2);
  if (cp <= 0) return 0; /* bad hex, or \u0000 */
  if (cp >= 0xdc00 && cp <= 0xdfff) return 0;
  if (cp < 0xd800 || cp > 0xdbff) return 6;
  if (end - p < 12 || p[6] != '\\' || p[7] != 'u') return 0;
  int lo = hex4(p + 8);
  return lo >= 0xdc00 && lo <= 0xdfff ? 12 : 0;
}

/* Scans the string whose opening quote is at p. Returns the closing quote,
 * or NULL if the string is not valid; sets *escaped (JSCAN_ESC flags). */
static ptr scan_string(ptr p, ptr end, int *escaped) {
  *escaped = 0;
  p++;
  for (;;) {
    p = skip_plain(p, end, escaped);
    if (p >= end) return NULL;
    unsigned c = *p;
    if (c == '"') return p;
    if (c == '\\') {
      /* Escapes come in runs ("\r\n" in an SDP): take them without going
       * back to the block loop. */
      do {
        size_t n = escape_len(p, end);
        if (n == 0) return NULL;
        if (p[1] != 'n' && p[1] != 'r') *escaped |= JSCAN_ESC_OTHER;
        p += n;
      } while (p < end && *p == '\\');
      *escaped |= JSCAN_ESC;
      continue;
    }
    if (c < 0x20) return NULL;
    size_t n = utf8_seq(p, (size_t)(end - p));
    if (n == 0) return NULL;
    p += n;
  }
}

/* Scans the number at p. Returns the byte after it, or NULL; fills v. */
static ptr scan_number(ptr p, ptr end, struct jscan_value *v, enum jscan_result *why) {
  ptr start = p;
  int neg = 0, real = 0;
  uint64_t mag = 0;
  size_t digits = 0;
  *why = JSCAN_INVALID;
  if (*p == '-') neg = 1, p++;
  if (p >= end) return NULL;
  if (*p == '0') {
    p++, digits = 1;
    if (p < end && *p >= '0' && *p <= '9') return NULL; /* a leading zero */
  } else if (*p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9') {
      if (digits < 20) mag = mag * 10 + (uint64_t)(*p - '0');
      digits++, p++;
    }
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    p++, real = 1;
    if (p >= end || *p < '0' || *p > '9') return NULL;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++, real = 1;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') return NULL;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (v) {
    v->p = (const char *)start;
    v->len = (size_t)(p - start);
  }
  if (!real) {
    /* jansson reads integers with strtoll and refuses what overflows. At
     * most 19 digits fit uint64 without wrapping. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (digits > 19 || mag > limit) return NULL;
    if (v) {
      v->kind = JSCAN_INTEGER;
      v->integer = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    return p;
  }
  /* A real: jansson refuses one that overflows a double (strtod's HUGE_VAL
   * with ERANGE; underflow is fine). Asked of strtod itself, in the C
   * locale's syntax that JSON numbers already have. */
  size_t n = (size_t)(p - start);
  if (n >= REAL_MAX) {
    *why = JSCAN_UNSURE;
    return NULL;
  }
  char buf[REAL_MAX];
  memcpy(buf, start, n);
  buf[n] = '\0';
  errno = 0;
  double d = strtod(buf, NULL);
  if (errno == ERANGE && isinf(d)) return NULL;
  if (v) v->kind = JSCAN_REAL;
  return p;
}

/* The out of the key in set[0..n) spelled k[0..klen), or NULL. */
static struct jscan_value *match(const struct jscan_key *set, size_t n, ptr k, size_t klen) {
  for (size_t i = 0; i < n; i++) {
    /* k holds no NUL (a raw control byte is refused), so the compare stops
     * at name's end at the latest. */
    const char *name = set[i].name;
    size_t j = 0;
    while (j < klen && name[j] == (char)k[j]) j++;
    if (j == klen && name[j] == '\0') return set[i].out;
  }
  return NULL;
}

struct key {
  ptr p;
  size_t len;
};

enum jscan_result jscan_scan(const char *s, size_t len, int max_depth, size_t max_values,
                             const struct jscan_query *q) {
  ptr p = (ptr)s, end = p + len;
  uint16_t stack[DEPTH_MAX];              /* per open container: first key index, or ARRAY_MARK */
  struct jscan_value *open[4] = {NULL};   /* the outs of containers open at depth 1 to 3 */
  struct key keys[KEYS_MAX];
  size_t nkeys = 0, values = 0;
  int depth = 0, inner_open = 0;
  struct jscan_value *slot = NULL, *inner_out = NULL;
  enum jscan_result why;
  if (q) {
    for (size_t i = 0; i < q->ntop; i++)
      if (q->top[i].out) memset(q->top[i].out, 0, sizeof(*q->top[i].out));
    for (size_t i = 0; i < q->nsub; i++)
      if (q->sub[i].out) memset(q->sub[i].out, 0, sizeof(*q->sub[i].out));
    if (q->inner < q->ntop) inner_out = q->top[q->inner].out;
  }

value:
  p = skip_ws(p, end);
  if (p >= end) return JSCAN_INVALID;
  if (++values > max_values) return JSCAN_TOO_LARGE;
  switch (*p) {
  case '{':
  case '[': {
    int obj = *p == '{';
    if (depth >= max_depth) return JSCAN_TOO_DEEP;
    if (depth >= DEPTH_MAX) return JSCAN_UNSURE;
    stack[depth++] = obj ? (uint16_t)nkeys : ARRAY_MARK;
    if (depth <= 3) {
      open[depth] = slot;
      if (slot) {
        slot->kind = obj ? JSCAN_OBJECT : JSCAN_ARRAY;
        slot->p = (const char *)p;
      }
      if (depth == 2 && obj && slot && slot == inner_out) inner_open = 1;
    }
    slot = NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == (obj ? '}' : ']')) goto close;
    if (obj) goto key;
    goto value;
  }
  case '"': {
    int esc;
    ptr e = scan_string(p, end, &esc);
    if (e == NULL) return JSCAN_INVALID;
    if (slot) {
      slot->kind = JSCAN_STRING;
      slot->p = (const char *)p + 1;
      slot->len = (size_t)(e - p - 1);
      slot->escaped = esc;
    }
    p = e + 1;
    goto after;
  }
  case 't':
    if (end - p < 4 || memcmp(p, "true", 4) != 0) return JSCAN_INVALID;
    if (slot) slot->kind = JSCAN_TRUE, slot->p = (const char *)p, slot->len = 4;
    p += 4;
    goto after;
  case 'f':
    if (end - p < 5 || memcmp(p, "false", 5) != 0) return JSCAN_INVALID;
    if (slot) slot->kind = JSCAN_FALSE, slot->p = (const char *)p, slot->len = 5;
    p += 5;
    goto after;
  case 'n':
    if (end - p < 4 || memcmp(p, "null", 4) != 0) return JSCAN_INVALID;
    if (slot) slot->kind = JSCAN_NULL, slot->p = (const char *)p, slot->len = 4;
    p += 4;
    goto after;
  default:
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
      p = scan_number(p, end, slot, &why);
      if (p == NULL) return why;
      goto after;
    }
    return JSCAN_INVALID;
  }

key:
  /* p: after whitespace, where a key must start. */
  if (p >= end || *p != '"') return JSCAN_INVALID;
  {
    int esc;
    ptr e = scan_string(p, end, &esc);
    if (e == NULL) return JSCAN_INVALID;
    ptr k = p + 1;
    size_t klen = (size_t)(e - k);
    /* Keys compare unescaped ("a" and "\u0061" are the same key): keys
     * written with escapes are left to jansson. */
    if (esc) return JSCAN_UNSURE;
    for (size_t i = stack[depth - 1]; i < nkeys; i++)
      if (keys[i].len == klen && memcmp(keys[i].p, k, klen) == 0) return JSCAN_DUPLICATE_KEY;
    if (nkeys == KEYS_MAX) return JSCAN_UNSURE;
    keys[nkeys].p = k;
    keys[nkeys++].len = klen;
    slot = NULL;
    if (q) {
      if (depth == 1) slot = match(q->top, q->ntop, k, klen);
      else if (depth == 2 && inner_open) slot = match(q->sub, q->nsub, k, klen);
    }
    p = skip_ws(e + 1, end);
    if (p >= end || *p != ':') return JSCAN_INVALID;
    p++;
    goto value;
  }

after:
  slot = NULL;
  p = skip_ws(p, end);
  /* NOTE: jansson skips one NUL byte that directly follows a number or
   * literal (its reader puts the byte back into a buffer it terminates
   * with NUL), so "[1\0]" parses there. We do not accept NUL bytes; we
   * leave that case to jansson rather than claim a refusal it would not
   * make. */
  if (p < end && *p == '\0') return JSCAN_UNSURE;
  if (depth == 0) return p == end ? JSCAN_OK : JSCAN_INVALID;
  if (p >= end) return JSCAN_INVALID;
  if (*p == ',') {
    p = skip_ws(p + 1, end);
    if (stack[depth - 1] != ARRAY_MARK) goto key;
    goto value;
  }
  if (*p != (stack[depth - 1] == ARRAY_MARK ? ']' : '}')) return JSCAN_INVALID;

close:
  /* p: at the closing bracket of the container open at depth. */
  if (depth <= 3 && open[depth]) open[depth]->len = (size_t)(p + 1 - (ptr)open[depth]->p);
  if (depth == 2) inner_open = 0;
  if (stack[depth - 1] != ARRAY_MARK) nkeys = stack[depth - 1];
  depth--;
  p++;
  goto after;
}

/* Decodes one escape at p into out; returns the bytes written and advances *pp. */
static size_t unescape_one(ptr *pp, char *out) {
  ptr p = *pp;
  unsigned c = p[1];
  static const char simple[128] = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
                                   ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'};
  if (c != 'u') {
    *out = simple[c & 0x7f];
    *pp = p + 2;
    return 1;
  }
  uint32_t cp = (uint32_t)hex4(p + 2);
  *pp = p + 6;
  if (cp >= 0xd800 && cp <= 0xdbff) {
    cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)hex4(p + 8) - 0xdc00);
    *pp = p + 12;
  }
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xc0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xe0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (unsigned char)(0xf0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

size_t jscan_unescape(const struct jscan_value *v, char *out) {
  ptr p = (ptr)v->p, end = p + v->len;
  size_t n = 0;
  if (!v->escaped) {
    memcpy(out, p, v->len);
    return v->len;
  }
  while (p < end) {
    ptr b = memchr(p, '\\', (size_t)(end - p));
    if (b == NULL) b = end;
    memcpy(out + n, p, (size_t)(b - p));
    n += (size_t)(b - p);
    p = b;
    while (p < end && *p == '\\') n += unescape_one(&p, out + n);
  }
  return n;
}

size_t jscan_prefix(const struct jscan_value *v, char *out, size_t n) {
  ptr p = (ptr)v->p, end = p + v->len;
  size_t k = 0;
  char tmp[4];
  if (!v->escaped) {
    k = v->len < n ? v->len : n;
    memcpy(out, p, k);
    return k;
  }
  while (k < n && p < end) {
    if (*p != '\\') {
      out[k++] = (char)*p++;
      continue;
    }
    size_t m = unescape_one(&p, tmp);
    for (size_t i = 0; i < m && k < n; i++) out[k++] = tmp[i];
  }
  return k;
}

size_t jscan_string_len(const struct jscan_value *v) {
  if (!v->escaped) return v->len;
  ptr p = (ptr)v->p, end = p + v->len;
  size_t n = 0;
  char tmp[4];
  while (p < end) {
    ptr b = memchr(p, '\\', (size_t)(end - p));
    if (b == NULL) return n + (size_t)(end - p);
    n += (size_t)(b - p);
    p = b;
    n += unescape_one(&p, tmp);
  }
  return n;
}
