/* Strict checks on an HTTP request head, run before http-parser sees it.
 * http-parser 2.9.4 accepts bare-LF line endings, obs-fold continuation
 * lines, whitespace before the colon, HTTP/0.9 request lines and versions
 * like HTTP/9.9; a server must refuse all of them (RFC 9112). */
#ifndef HUDDLE_NET_HTTPCHECK_H
#define HUDDLE_NET_HTTPCHECK_H

#include <stddef.h>

enum httpcheck_result {
  HTTPCHECK_OK = 0,
  HTTPCHECK_BAD,       /* malformed: answer 400 and close */
  HTTPCHECK_VERSION,   /* not HTTP/1.0 or HTTP/1.1: answer 505 and close */
};

/* Checks head[0..len), which ends with the blank line's CRLF CRLF. */
enum httpcheck_result httpcheck_head(const char *head, size_t len);

/* Returns the offset just past "\r\n\r\n" in s[0..len), searching from from,
 * or 0 if the head is not complete. */
size_t httpcheck_head_end(const char *s, size_t len, size_t from);

#endif
