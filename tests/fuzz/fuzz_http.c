/* libFuzzer target: the HTTP head checks (net/httpcheck.c). The head end
 * ends at a line break and does not move when more bytes follow; a head the
 * checks accept ends in CRLF CRLF and is parsed by http-parser without a
 * different reading of where the head ends. */
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/httpcheck.h"
#include "log.h"

/* Quiet: the server logs refusals at info. */
__attribute__((constructor)) static void quiet(void) { log_threshold = LOG_ERROR; }

static int headers_done;
static int on_any(http_parser *p) { (void)p; return 0; }
static int on_headers(http_parser *p) { (void)p; headers_done = 1; return 0; }
static int on_data(http_parser *p, const char *at, size_t len) { (void)p; (void)at; (void)len; return 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  size_t end = httpcheck_head_end(s, size, 0);
  if (end == 0) return 0;
  if (end < 2 || end > size || s[end - 1] != '\n') abort();
  /* More bytes after the head do not move its end. */
  if (httpcheck_head_end(s, end, 0) != end) abort();
  if (httpcheck_head(s, end) != HTTPCHECK_OK) return 0;
  if (end < 4 || memcmp(s + end - 4, "\r\n\r\n", 4) != 0) abort(); /* only CRLF heads pass */
  http_parser_settings st;
  memset(&st, 0, sizeof(st));
  st.on_message_begin = on_any;
  st.on_headers_complete = on_headers;
  headers_done = 0;
  st.on_message_complete = on_any;
  st.on_url = on_data;
  st.on_header_field = on_data;
  st.on_header_value = on_data;
  http_parser p;
  http_parser_init(&p, HTTP_REQUEST);
  size_t n = http_parser_execute(&p, &st, s, end);
  enum http_errno e = HTTP_PARSER_ERRNO(&p);
  /* http-parser may still refuse (an unknown method: the server answers
   * 400). When it accepts, it must see the head end where the checks did. */
  if (e != HPE_OK) return 0;
  if (n != end || !headers_done) {
    fprintf(stderr, "http-parser read the head differently: %zu of %zu bytes, headers %d\n", n, end, headers_done);
    abort();
  }
  return 0;
}
