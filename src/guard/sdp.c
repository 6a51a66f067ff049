/* The publish check's SDP reading (see sdp.h). */
#include <string.h>

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
    if (n >= 2 && line[0] == 'm' && line[1] == '=') {
      close_section(&sec, out);
      open_section(line, n, &sec);
      continue;
    }
    if (sec.kind == K_NONE) continue; /* session level: directions do not count */
    if (is(line, n, "a=sendrecv") || is(line, n, "a=sendonly")) sec.sends = 1;
    else if (is(line, n, "a=recvonly") || is(line, n, "a=inactive")) sec.sends = 0;
    else if (is(line, n, "a=bundle-only")) sec.bundle_only = 1;
  }
  close_section(&sec, out);
}
