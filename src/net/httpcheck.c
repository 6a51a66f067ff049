/* Strict request-head checks (see httpcheck.h). */
#include <string.h>

#include "net/httpcheck.h"

static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

size_t httpcheck_head_end(const char *s, size_t len, size_t from) {
  /* The head ends at the first empty line, whatever its line endings: a
   * bare LF must reach httpcheck_head() to be refused, not stall the read.
   * A terminator starts at the line break before the empty line (its CR if
   * it has one) and must start at or after from. */
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '\n') continue;
    size_t start = (i > 0 && s[i - 1] == '\r') ? i - 1 : i;
    if (start < from) continue;
    if (i + 1 < len && s[i + 1] == '\n') return i + 2;
    if (i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return 0;
}

static enum httpcheck_result request_line(const unsigned char *p, size_t len) {
  size_t i = 0;
  while (i < len && is_tchar(p[i])) i++;
  if (i == 0 || i >= len || p[i] != ' ') return HTTPCHECK_BAD;
  size_t t = ++i;
  while (i < len && p[i] > 0x20 && p[i] < 0x7f) i++;
  if (i == t || i >= len || p[i] != ' ') return HTTPCHECK_BAD;
  i++;
  if (len - i != 8 || memcmp(p + i, "HTTP/", 5) != 0) return HTTPCHECK_BAD;
  unsigned char maj = p[i + 5], dot = p[i + 6], min = p[i + 7];
  if (maj < '0' || maj > '9' || dot != '.' || min < '0' || min > '9') return HTTPCHECK_BAD;
  if (maj != '1' || (min != '0' && min != '1')) return HTTPCHECK_VERSION;
  return HTTPCHECK_OK;
}

static enum httpcheck_result header_line(const unsigned char *p, size_t len) {
  size_t i = 0;
  while (i < len && is_tchar(p[i])) i++;
  if (i == 0 || i >= len || p[i] != ':') return HTTPCHECK_BAD;
  for (i++; i < len; i++) {
    unsigned char c = p[i];
    if (c < 0x20 ? c != '\t' : c == 0x7f) return HTTPCHECK_BAD;
  }
  return HTTPCHECK_OK;
}

enum httpcheck_result httpcheck_head(const char *head, size_t len) {
  const unsigned char *p = (const unsigned char *)head;
  size_t start = 0;
  int first = 1;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '\r') {
      if (i + 1 >= len || p[i + 1] != '\n') return HTTPCHECK_BAD;  /* bare CR */
    } else if (p[i] == '\n') {
      if (i == 0 || p[i - 1] != '\r') return HTTPCHECK_BAD;        /* bare LF */
      size_t line_len = i - 1 - start;
      if (line_len == 0) return first ? HTTPCHECK_BAD : (i + 1 == len ? HTTPCHECK_OK : HTTPCHECK_BAD);
      enum httpcheck_result r = first ? request_line(p + start, line_len)
                                      : header_line(p + start, line_len);
      if (r != HTTPCHECK_OK) return r;
      first = 0;
      start = i + 1;
    }
  }
  return HTTPCHECK_BAD; /* no blank line */
}
