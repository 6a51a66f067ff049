/* WebSocket connections (see ws.h). */
#define LOG_MODULE "ws"
#include "log.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "lib/b64.h"
#include "net/http.h"
#include "net/server.h"
#include "net/ws.h"
#include "signal/signal.h"

#define CLOSE_WAIT_MS 2000

struct ws {
  wslay_event_context_ptr ctx;  /* owned */
  const uint8_t *rbuf;          /* borrowed: input being fed to wslay */
  size_t rlen;
  unsigned frames;              /* data frames in the message being received */
  uint64_t last_seen_ms;        /* loop time of the last byte received */
  int close_started;            /* we queued a close frame */
};

/* ---- handshake ---- */

void ws_accept_key(const char *key, size_t key_len, char *out) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
      EVP_DigestUpdate(ctx, key, key_len) != 1 ||
      EVP_DigestUpdate(ctx, guid, sizeof(guid) - 1) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
    mdlen = 0;
  EVP_MD_CTX_free(ctx);
  b64_encode(md, mdlen, out, 29);
}

/* Returns 1 if the comma-separated list v contains token (case-insensitive). */
static int has_token(const char *v, const char *token) {
  size_t tl = strlen(token);
  while (v && *v) {
    while (*v == ' ' || *v == '\t' || *v == ',') v++;
    const char *e = v;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > v && (t[-1] == ' ' || t[-1] == '\t')) t--;
    if ((size_t)(t - v) == tl && strncasecmp(v, token, tl) == 0) return 1;
    v = e;
  }
  return 0;
}

enum api_err ws_handshake_check(struct conn *c) {
  struct http_req *r = &c->req;
  if (c->parser.method != HTTP_GET || !has_token(r->hdr[HDR_UPGRADE].data, "websocket"))
    return API_ERR_UPGRADE_REQUIRED;
  if (!has_token(r->hdr[HDR_CONNECTION].data, "upgrade")) return API_ERR_UPGRADE_REQUIRED;
  if (c->parser.http_major != 1 || c->parser.http_minor != 1) return API_ERR_BAD_REQUEST;
  if (r->hdr[HDR_SEC_WS_VERSION].len != 2 || strcmp(r->hdr[HDR_SEC_WS_VERSION].data, "13") != 0)
    return API_ERR_UPGRADE_REQUIRED;
  /* The key is base64 of 16 bytes: 22 characters and "==". */
  const char *k = r->hdr[HDR_SEC_WS_KEY].data;
  if (r->hdr[HDR_SEC_WS_KEY].len != 24 || k[22] != '=' || k[23] != '=') return API_ERR_BAD_REQUEST;
  for (int i = 0; i < 22; i++) {
    char ch = k[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '+' || ch == '/'))
      return API_ERR_BAD_REQUEST;
  }
  return API_OK;
}

/* ---- wslay callbacks ---- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user) {
  struct conn *c = user;
  struct ws *w = c->ws;
  if (w->rlen == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < w->rlen ? len : w->rlen;
  memcpy(buf, w->rbuf, n);
  w->rbuf += n;
  w->rlen -= n;
  return (ssize_t)n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user) {
  /* Control frames only: never partial, so our own data frames can never
   * land in the middle of one. */
  conn_write_copy(user, data, len);
  return (ssize_t)len;
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user) {
  struct conn *c = user;
  struct ws *w = c->ws;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1 && !w->close_started) {
    /* A close payload is empty or a 2-byte code: one byte is a protocol error. */
    w->close_started = 1;
    wslay_event_queue_close(ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
    wslay_event_shutdown_read(ctx);
    return;
  }
  if (arg->opcode & 0x8) return; /* control frames may interleave */
  if (arg->opcode != WSLAY_CONTINUATION_FRAME) w->frames = 0;
  /* wslay keeps every fragment in its own allocation: cap their number. */
  if (++w->frames > (unsigned)c->srv->cfg->max_ws_fragments && !w->close_started) {
    log_info("too_many_fragments ip=%s", c->ip);
    w->close_started = 1;
    wslay_event_queue_close(ctx, WSLAY_CODE_MESSAGE_TOO_BIG, (const uint8_t *)"too many fragments", 18);
    wslay_event_shutdown_read(ctx);
  }
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user) {
  struct conn *c = user;
  if (c->closing || c->ws->close_started) return;
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME:
    c->srv->stats.messages_in++;
    signal_on_message(c, (const char *)arg->msg, arg->msg_length);
    break;
  case WSLAY_BINARY_FRAME:
    c->srv->stats.messages_in++;
    signal_on_binary(c);
    break;
  case WSLAY_CONNECTION_CLOSE:
    /* wslay answers the close frame itself; the peer is leaving. */
    signal_detach(c, "left");
    break;
  default:
    break; /* ping (answered by wslay) and pong: last_seen is enough */
  }
}

static const struct wslay_event_callbacks callbacks = {
  .recv_callback = on_recv,
  .send_callback = on_send,
  .on_frame_recv_start_callback = on_frame_start,
  .on_msg_recv_callback = on_msg,
};

/* ---- timers ---- */

static void on_timer(uv_timer_t *t) {
  struct conn *c = t->data;
  struct ws *w = c->ws;
  if (w == NULL) return;
  if (w->close_started) {
    conn_close(c); /* the peer never answered our close frame */
    return;
  }
  uint64_t interval = (uint64_t)c->srv->cfg->ping_interval_ms;
  uint64_t idle = uv_now(c->srv->loop) - w->last_seen_ms;
  if (idle >= 2 * interval) {
    log_info("dead_peer ip=%s idle_ms=%llu", c->ip, (unsigned long long)idle);
    signal_detach(c, "timeout");
    conn_close(c);
    return;
  }
  if (idle + 10 >= interval) {
    struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"hb", 2};
    wslay_event_queue_msg(w->ctx, &ping);
    wslay_event_send(w->ctx);
  }
  conn_timer(c, interval, on_timer);
}

/* ---- lifecycle ---- */

int ws_accept(struct conn *c) {
  char accept[32];
  ws_accept_key(c->req.hdr[HDR_SEC_WS_KEY].data, c->req.hdr[HDR_SEC_WS_KEY].len, accept);
  struct ws *w = calloc(1, sizeof(*w));
  if (w == NULL || wslay_event_context_server_init(&w->ctx, &callbacks, c) != 0) {
    free(w);
    http_reply_error(c, API_ERR_INTERNAL_ERROR, NULL, 0);
    return -1;
  }
  wslay_event_config_set_max_recv_msg_length(w->ctx, (uint64_t)c->srv->cfg->max_ws_message);
  w->last_seen_ms = uv_now(c->srv->loop);
  c->ws = w;
  c->kind = CONN_WS;
  c->in_request = 0;
  c->srv->stats.ws_total++;
  char resp[256];
  int n = snprintf(resp, sizeof(resp),
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
  conn_write_copy(c, resp, (size_t)n);
  conn_timer(c, (uint64_t)c->srv->cfg->ping_interval_ms, on_timer);
  return 0;
}

static void after_io(struct conn *c) {
  struct ws *w = c->ws;
  if (c->closing) return;
  if (wslay_event_want_write(w->ctx)) wslay_event_send(w->ctx);
  if (wslay_event_get_close_sent(w->ctx) && wslay_event_get_close_received(w->ctx)) {
    signal_detach(c, NULL);
    conn_end(c);
  } else if (wslay_event_get_close_sent(w->ctx) && !w->close_started) {
    /* wslay closed on its own (too big, bad UTF-8, protocol error). */
    w->close_started = 1;
    log_info("ws_closed_by_protocol ip=%s code=%d", c->ip, wslay_event_get_status_code_sent(w->ctx));
    signal_detach(c, "left");
    conn_timer(c, CLOSE_WAIT_MS, on_timer);
  }
}

void ws_on_data(struct conn *c, const char *data, size_t len) {
  struct ws *w = c->ws;
  if (w == NULL || c->closing) return;
  w->last_seen_ms = uv_now(c->srv->loop);
  w->rbuf = (const uint8_t *)data;
  w->rlen = len;
  int r = wslay_event_recv(w->ctx);
  w->rbuf = NULL;
  w->rlen = 0;
  if (r != 0) {
    /* A framing error wslay did not answer itself: close with 1002. */
    log_info("ws_recv_failed ip=%s err=%d", c->ip, r);
    if (!wslay_event_get_close_sent(w->ctx)) {
      static const unsigned char code[2] = {0x03, 0xea}; /* 1002 */
      w->close_started = 1;
      struct outbuf *b = outbuf_ws_frame(WSLAY_CONNECTION_CLOSE, code, sizeof(code));
      if (b) conn_write(c, b);
    }
    signal_detach(c, "left");
    conn_end(c);
    return;
  }
  after_io(c);
}

void ws_on_eof(struct conn *c) { signal_detach(c, "left"); }

void ws_send(struct conn *c, struct outbuf *frame) {
  if (c->ws == NULL || c->ws->close_started || wslay_event_get_close_sent(c->ws->ctx)) {
    outbuf_unref(frame);
    return;
  }
  c->srv->stats.messages_out++;
  conn_write(c, frame);
}

void ws_close(struct conn *c, int code, const char *reason) {
  struct ws *w = c->ws;
  if (w == NULL) {
    conn_end(c);
    return;
  }
  if (w->close_started || c->closing) return;
  w->close_started = 1;
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > 120) rl = 120;
  wslay_event_queue_close(w->ctx, (uint16_t)code, (const uint8_t *)reason, rl);
  wslay_event_send(w->ctx);
  signal_detach(c, NULL);
  conn_timer(c, CLOSE_WAIT_MS, on_timer);
}

void ws_free(struct conn *c) {
  if (c->ws == NULL) return;
  wslay_event_context_free(c->ws->ctx);
  free(c->ws);
  c->ws = NULL;
}
