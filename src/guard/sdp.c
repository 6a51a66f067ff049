/* The publish check's SDP reading (see sdp.h). */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "guard/sdp.h"

enum kind { K_NONE, K_AUDIO, K_VIDEO, K_OTHER };

struct section {
  enum kind kind;
  int live_port;     /* port is not 0 (or not a number: assumed live) */
  int bundle_only;
  int sends;         /* direction: 1 sendrecv/sendonly, 0 recvonly/inactive */
};

static void close_section(const struct section *sec, struct sdp_sending *out) {
  if (sec->kind != K_AUDIO && sec->kind != K_VIDEO) return;
  int live = sec->live_port || sec->bundle_only;
  if (!live || !sec->sends) return;
  if (sec->kind == K_AUDIO) out->audio = 1;
  else out->video = 1;
}

static int is(const char *line, size_t len, const char *lit) {
  size_t n = strlen(lit);
  return len == n && memcmp(line, lit, n) == 0;
}

/* "m=<media> <port>[/<count>] ..." */
static void open_section(const char *line, size_t len, struct section *sec) {
  memset(sec, 0, sizeof(*sec));
  sec->sends = 1;
  const char *p = line + 2, *end = line + len;
  const char *sp = memchr(p, ' ', (size_t)(end - p));
  size_t mlen = sp ? (size_t)(sp - p) : (size_t)(end - p);
  sec->kind = is(p, mlen, "audio") ? K_AUDIO : is(p, mlen, "video") ? K_VIDEO : K_OTHER;
  sec->live_port = 1;
  if (sp == NULL) return;
  const char *q = sp + 1;
  size_t digits = 0;
  unsigned long port = 0;
  while (q + digits < end && q[digits] >= '0' && q[digits] <= '9' && digits < 6) {
    port = port * 10 + (unsigned long)(q[digits] - '0');
    digits++;
  }
  int delim = q + digits == end || q[digits] == ' ' || q[digits] == '/';
  if (digits > 0 && delim && port == 0) sec->live_port = 0;
}

/* One line (its CR already dropped) of the reading. */
static inline void take_line(const char *line, size_t n, struct section *sec, struct sdp_sending *out) {
  if (n < 2 || line[1] != '=') return;
  if (line[0] == 'm') {
    close_section(sec, out);
    open_section(line, n, sec);
    return;
  }
  /* Session level: directions do not count. Only a= lines of these
   * lengths can be a direction. */
  if (sec->kind == K_NONE || line[0] != 'a' || (n != 10 && n != 13)) return;
  if (is(line, n, "a=sendrecv") || is(line, n, "a=sendonly")) sec->sends = 1;
  else if (is(line, n, "a=recvonly") || is(line, n, "a=inactive")) sec->sends = 0;
  else if (is(line, n, "a=bundle-only")) sec->bundle_only = 1;
}

void sdp_sending(const char *sdp, size_t len, struct sdp_sending *out) {
  struct section sec = {K_NONE, 0, 0, 1};
  out->audio = out->video = 0;
  size_t i = 0;
  while (i < len) {
    const char *line = sdp + i;
    const char *lf = memchr(line, '\n', len - i);
    size_t n = lf ? (size_t)(lf - line) : len - i;
    i += n + (lf ? 1 : 0);
    if (n > 0 && line[n - 1] == '\r') n--;
    take_line(line, n, &sec, out);
  }
  close_section(&sec, out);
}

/* A line of the JSON form, ending before its "\n"; drops a trailing "\r". */
static inline void take_json_line(const char *line, size_t n, struct section *sec, struct sdp_sending *out) {
  /* Most lines are none of m=, a direction or a=bundle-only: only an m=
   * line, or one of 10 or 13 bytes (12 or 15 with its "\r"), can matter. */
  if (line[0] != 'm' && n != 10 && n != 12 && n != 13 && n != 15) return;
  if (n >= 2 && line[n - 2] == '\\' && line[n - 1] == 'r') n -= 2;
  take_line(line, n, sec, out);
}

void sdp_sending_json(const char *s, size_t len, struct sdp_sending *out) {
  struct section sec = {K_NONE, 0, 0, 1};
  const char *line = s, *p = s, *end = s + len;
  out->audio = out->video = 0;
#ifdef __SSE2__
  /* Every line end in 16 bytes at once: a backslash followed by an n (the
   * only other escape is \r, so a backslash never escapes a backslash). */
  const __m128i bs = _mm_set1_epi8('\\'), n = _mm_set1_epi8('n');
  for (; end - p >= 17; p += 16) {
    __m128i a = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), bs);
    __m128i b = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 1)), n);
    for (unsigned m = (unsigned)_mm_movemask_epi8(_mm_and_si128(a, b)); m; m &= m - 1) {
      const char *lf = p + __builtin_ctz(m);
      take_json_line(line, (size_t)(lf - line), &sec, out);
      line = lf + 2;
    }
  }
  if (p < line) p = line;
#endif
  for (; end - p >= 2; p++) {
    if (p[0] == '\\' && p[1] == 'n') {
      take_json_line(line, (size_t)(p - line), &sec, out);
      line = p + 2;
      p++;
    }
  }
  if (line < end) take_json_line(line, (size_t)(end - line), &sec, out);
  close_section(&sec, out);
}
