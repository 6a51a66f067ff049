/* libFuzzer target: the WebSocket frame parser (net/ws.c) with random read
 * splits. The same bytes are fed once in one read and once cut at places
 * taken from the input; both runs must deliver the same messages and end in
 * the same state (failed or not). The connection's I/O is replaced with
 * recorders through the linker (--wrap) and the layers above with recording
 * handlers (struct conn_handlers); the parser itself is the real one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "net/server.h"
#include "net/ws.h"
#include "log.h"

/* Quiet: the server logs refusals at info. */
__attribute__((constructor)) static void quiet(void) { log_threshold = LOG_ERROR; }

struct record {
  unsigned char log[1 << 16];   /* delivered messages and events, serialized */
  size_t len;
  int closed, ended;
};

static struct record *cur;

static void note(char tag, const void *p, size_t n) {
  if (cur->len + 1 + 8 + n > sizeof(cur->log)) return;
  cur->log[cur->len++] = (unsigned char)tag;
  memcpy(cur->log + cur->len, &n, 8);
  cur->len += 8;
  memcpy(cur->log + cur->len, p, n);
  cur->len += n;
}

void __wrap_conn_write(struct conn *c, struct outbuf *b) {
  note('w', b->data, b->len);
  outbuf_unref(b);
}
void __wrap_conn_write_copy(struct conn *c, const void *data, size_t len) { (void)c; (void)data; (void)len; }
void __wrap_conn_close(struct conn *c) {
  c->closing = 1;
  cur->closed = 1;
}
void __wrap_conn_end(struct conn *c) {
  c->ending = 1;
  cur->ended = 1;
}
void __wrap_conn_timer(struct conn *c, uint64_t ms, uv_timer_cb cb) { (void)c; (void)ms; (void)cb; }
static void on_text(struct conn *c, const char *data, size_t len) { note('m', data, len); }
static void on_binary(struct conn *c) { note('b', "", 0); }
static void on_end(struct conn *c, enum conn_end why, int code) {
  note('d', &why, sizeof(why));
  note('c', &code, sizeof(code));
}

static struct server srv;
static struct config cfg;

static void run(const uint8_t *data, size_t size, const uint8_t *cuts, size_t ncuts, struct record *rec) {
  memset(rec, 0, sizeof(*rec));
  cur = rec;
  struct conn c;
  memset(&c, 0, sizeof(c));
  struct http_req req; /* the request state of the upgrade (net/http.h) */
  memset(&req, 0, sizeof(req));
  c.req = &req;
  c.srv = &srv;
  c.ip = "fuzz";
  buf_append(&req.hdr[HDR_SEC_WS_KEY], "dGhlIHNhbXBsZSBub25jZQ==", 24);
  if (ws_accept(&c) != 0) abort();
  /* The parser unmasks in place: each run gets its own copy. */
  uint8_t *copy = malloc(size ? size : 1);
  memcpy(copy, data, size);
  size_t off = 0;
  for (size_t i = 0; i <= ncuts && off < size; i++) {
    size_t n = i < ncuts ? (size_t)cuts[i] % 64 + 1 : size - off;
    if (n > size - off) n = size - off;
    ws_on_data(&c, (char *)copy + off, n);
    off += n;
  }
  free(copy);
  ws_free(&c);
  buf_free(&req.hdr[HDR_SEC_WS_KEY]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    cfg.max_ws_message = 4096;
    cfg.max_ws_fragments = 8;
    cfg.ping_interval_ms = 20000;
    srv.cfg = &cfg;
    srv.loop = uv_default_loop();
    srv.handlers.ws_text = on_text;
    srv.handlers.ws_binary = on_binary;
    srv.handlers.ws_end = on_end;
    init = 1;
  }
  /* First byte: how many cut lengths follow; the rest is the stream. */
  if (size < 1) return 0;
  size_t ncuts = data[0] % 32;
  if (size < 1 + ncuts) return 0;
  const uint8_t *cuts = data + 1, *stream = data + 1 + ncuts;
  size_t n = size - 1 - ncuts;
  static struct record whole, split;
  run(stream, n, NULL, 0, &whole);
  run(stream, n, cuts, ncuts, &split);
  if (whole.len != split.len || memcmp(whole.log, split.log, whole.len) != 0 || whole.closed != split.closed ||
      whole.ended != split.ended) {
    fprintf(stderr, "split changed the outcome: %zu vs %zu bytes of events\n", whole.len, split.len);
    abort();
  }
  return 0;
}
