/* libFuzzer target: the SDP publish check (guard/sdp.c), differential
 * against a second, independent reading written the way libwebrtc's parser
 * is structured: split the text into lines on LF, drop one trailing CR,
 * split into sections at m= lines, then decide per section. Also checks
 * the check's reading of the same SDP written as a JSON string's body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/sdp.h"
#include "log.h"

/* Quiet: the server logs refusals at info. */
__attribute__((constructor)) static void quiet(void) { log_threshold = LOG_ERROR; }

struct line { const char *p; size_t n; };

static int eq(struct line l, const char *lit) { return l.n == strlen(lit) && memcmp(l.p, lit, l.n) == 0; }

/* The second reading. */
static void other(const char *s, size_t len, int *audio, int *video) {
  struct line *lines = malloc((len + 1) * sizeof(*lines));
  size_t nl = 0, start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || s[i] == '\n') {
      if (i == len && start == len) break;
      struct line l = {s + start, i - start};
      if (l.n && l.p[l.n - 1] == '\r') l.n--;
      lines[nl++] = l;
      start = i + 1;
    }
  }
  *audio = *video = 0;
  size_t i = 0;
  while (i < nl && !(lines[i].n >= 2 && lines[i].p[0] == 'm' && lines[i].p[1] == '=')) i++;
  while (i < nl) {
    struct line m = lines[i++];
    size_t j = i;
    while (j < nl && !(lines[j].n >= 2 && lines[j].p[0] == 'm' && lines[j].p[1] == '=')) j++;
    /* media and port fields of the m= line */
    size_t k = 2;
    while (k < m.n && m.p[k] != ' ') k++;
    struct line media = {m.p + 2, k - 2};
    /* the port: the field after the media, up to a space or '/' */
    size_t ps = k < m.n ? k + 1 : k, pe = ps;
    while (pe < m.n && m.p[pe] != ' ' && m.p[pe] != '/') pe++;
    int zero = k < m.n && pe > ps && pe - ps <= 6;
    for (size_t q = ps; zero && q < pe; q++) zero = m.p[q] == '0';
    int sends = 1, bundle_only = 0;
    for (size_t q = i; q < j; q++) {
      if (eq(lines[q], "a=sendrecv") || eq(lines[q], "a=sendonly")) sends = 1;
      if (eq(lines[q], "a=recvonly") || eq(lines[q], "a=inactive")) sends = 0;
      if (eq(lines[q], "a=bundle-only")) bundle_only = 1;
    }
    int live = !zero || bundle_only;
    if (live && sends && eq(media, "audio")) *audio = 1;
    if (live && sends && eq(media, "video")) *video = 1;
    i = j;
  }
  free(lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sdp_sending a;
  sdp_sending((const char *)data, size, &a);
  int au, vi;
  other((const char *)data, size, &au, &vi);
  if (a.audio != au || a.video != vi) {
    fprintf(stderr, "readings differ: check audio=%d video=%d, second audio=%d video=%d\n", a.audio, a.video, au, vi);
    abort();
  }
  /* The relay path reads an SDP in its JSON form (\r and \n escaped)
   * without unescaping it: the same answer. */
  if (memchr(data, '\\', size) == NULL) {
    char *j = malloc(2 * size + 1);
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
      if (data[i] == '\r' || data[i] == '\n') {
        j[n++] = '\\';
        j[n++] = data[i] == '\r' ? 'r' : 'n';
      } else {
        j[n++] = (char)data[i];
      }
    }
    struct sdp_sending b;
    sdp_sending_json(j, n, &b);
    free(j);
    if (a.audio != b.audio || a.video != b.video) {
      fprintf(stderr, "the JSON-form reading differs: audio=%d video=%d\n", b.audio, b.video);
      abort();
    }
  }
  return 0;
}
