/* WebSocket connections (see ws.h): our own RFC 6455 frame parser (see
 * docs/adr/0004), server side only. Input is unmasked in place in the read
 * buffer; a message that arrives whole in one read is dispatched from there,
 * others are assembled in a buffer that lives only while they do. An idle
 * connection holds no parser buffers at all. */
#define LOG_MODULE "ws"
#include "log.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "lib/b64.h"
#include "lib/utf8.h"
#include "net/http.h"
#include "net/server.h"
#include "net/ws.h"

#define CLOSE_WAIT_MS 2000

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xa };

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
  struct http_req *r = c->req;
  if (c->req->parser.method != HTTP_GET || !has_token(r->hdr[HDR_UPGRADE].data, "websocket"))
    return API_ERR_UPGRADE_REQUIRED;
  if (!has_token(r->hdr[HDR_CONNECTION].data, "upgrade")) return API_ERR_UPGRADE_REQUIRED;
  if (c->req->parser.http_major != 1 || c->req->parser.http_minor != 1) return API_ERR_BAD_REQUEST;
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

/* ---- frames out ---- */

static void send_frame(struct conn *c, int opcode, const void *payload, size_t len) {
  struct outbuf *b = outbuf_ws_frame(opcode, payload, len);
  if (b == NULL) {
    conn_close(c);
    return;
  }
  conn_write(c, b);
}

static void send_close(struct conn *c, int code, const char *reason) {
  struct ws *w = c->ws;
  unsigned char p[125];
  size_t n = 0;
  if (w->close_started) return;
  w->close_started = 1;
  if (code) {
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 123) rl = 123;
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    if (rl) memcpy(p + 2, reason, rl);
    n = 2 + rl;
  }
  send_frame(c, OP_CLOSE, p, n);
}

/* Fails the connection: a close frame with code. Input is then read and
 * dropped until the peer closes or CLOSE_WAIT_MS pass: closing a socket with
 * unread input would send a reset that can overtake the close frame. */
static void on_timer(struct conn *c);

/* Drops the message being assembled, if any. */
static void msg_free(struct ws *w) {
  if (w->msg == NULL) return;
  buf_free(w->msg);
  free(w->msg);
  w->msg = NULL;
}

static size_t msg_len(const struct ws *w) { return w->msg ? w->msg->len : 0; }

static void fail(struct conn *c, int code, const char *why) {
  char tag[64];
  size_t i = 0;
  for (; why[i] && i < sizeof(tag) - 1; i++) tag[i] = why[i] == ' ' ? '_' : why[i];
  tag[i] = '\0';
  log_info("ws_failed ip=%s code=%d reason=%s", c->ip, code, tag);
  send_close(c, code, why);
  c->ws->failed = 1;
  c->srv->handlers.ws_end(c, CONN_END_PROTOCOL, code);
  msg_free(c->ws);
  conn_timer(c, CLOSE_WAIT_MS, on_timer);
}

/* ---- frames in ---- */

/* high: 0 when every byte of data is known to be ASCII (nothing to check). */
static void on_message(struct conn *c, int opcode, uint8_t *data, size_t len, unsigned high) {
  if (opcode == OP_TEXT && high && !utf8_valid(data, len)) {
    fail(c, 1007, "invalid UTF-8");
    return;
  }
  c->srv->stats.messages_in++;
  if (opcode == OP_TEXT) c->srv->handlers.ws_text(c, (const char *)data, len);
  else c->srv->handlers.ws_binary(c);
}

static void on_control(struct conn *c, int opcode, const uint8_t *p, size_t len) {
  struct ws *w = c->ws;
  if (opcode == OP_PING) {
    if (!w->close_started) send_frame(c, OP_PONG, p, len);
    return;
  }
  if (opcode == OP_PONG) return; /* last_seen is enough */
  /* Close: a status code (valid to send) and UTF-8 reason, or nothing. */
  int code = 0;
  if (len == 1) {
    fail(c, 1002, "bad close frame");
    return;
  }
  if (len >= 2) {
    code = (p[0] << 8) | p[1];
    int ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
    if (!ok || !utf8_valid(p + 2, len - 2)) {
      fail(c, 1002, "bad close frame");
      return;
    }
  }
  w->close_received = 1;
  c->srv->handlers.ws_end(c, CONN_END_CLOSE, code);
  send_close(c, code, NULL); /* echo the code, unless we closed first */
  msg_free(w);
  conn_end(c);
}

/* Checks a complete header and sets up the frame. Returns 0, or -1 after failing c. */
static int frame_begin(struct conn *c, const uint8_t *h, size_t hlen) {
  struct ws *w = c->ws;
  const struct config *cfg = c->srv->cfg;
  uint8_t op = h[0] & 0x0f;
  uint64_t len = h[1] & 0x7f;
  if (h[0] & 0x70) return fail(c, 1002, "reserved bits set"), -1;
  if (!(h[1] & 0x80)) return fail(c, 1002, "unmasked client frame"), -1;
  if (len == 126) len = ((uint64_t)h[2] << 8) | h[3];
  else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; i++) len = (len << 8) | h[2 + i];
    if (len >> 63) return fail(c, 1002, "bad length"), -1;
  }
  memcpy(w->mask, h + hlen - 4, 4);
  w->fin = h[0] >> 7;
  w->opcode = op;
  w->remaining = (uint32_t)len; /* checked below: a longer frame fails c and is never read */
  w->offset = 0;
  w->in_frame = 1;
  if (op & 0x8) {
    if (op != OP_CLOSE && op != OP_PING && op != OP_PONG) return fail(c, 1002, "unknown opcode"), -1;
    if (!w->fin || len > 125) return fail(c, 1002, "bad control frame"), -1;
    w->ctrl_len = 0;
    if (len && (w->ctrl = malloc((size_t)len)) == NULL) return conn_close(c), -1;
    return 0;
  }
  if (op != OP_CONT && op != OP_TEXT && op != OP_BINARY) return fail(c, 1002, "unknown opcode"), -1;
  if (op == OP_CONT && !w->msg_opcode) return fail(c, 1002, "continuation without a message"), -1;
  if (op != OP_CONT && w->msg_opcode) return fail(c, 1002, "new message inside a fragmented one"), -1;
  if (op != OP_CONT) {
    w->msg_opcode = op;
    w->frames = 0;
  }
  /* Bound what one message may hold, in frames and in bytes. */
  if (++w->frames > (unsigned)cfg->max_ws_fragments) return fail(c, 1009, "too many fragments"), -1;
  if (msg_len(w) + len > (uint64_t)cfg->max_ws_message) return fail(c, 1009, "message too big"), -1;
  return 0;
}

/* XORs the frame's mask into p[0..n), 64 bytes at a time with SSE2 and 8
 * with plain words elsewhere; the mask is rotated once to the frame offset.
 * Returns non-zero if some unmasked byte is >= 0x80 (0: all ASCII, which
 * is valid UTF-8 without a second pass). */
static unsigned unmask(struct ws *w, uint8_t *p, size_t n) {
  uint8_t m[4];
  for (int k = 0; k < 4; k++) m[k] = w->mask[(w->offset + (uint32_t)k) & 3];
  uint32_t m32;
  memcpy(&m32, m, 4);
  size_t i = 0;
  uint64_t high = 0;
#ifdef __SSE2__
  const __m128i mv = _mm_set1_epi32((int)m32);
  __m128i acc = _mm_setzero_si128();
  for (; i + 64 <= n; i += 64) {
    __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + i)), mv);
    __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + i + 16)), mv);
    __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + i + 32)), mv);
    __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + i + 48)), mv);
    _mm_storeu_si128((__m128i *)(p + i), a);
    _mm_storeu_si128((__m128i *)(p + i + 16), b);
    _mm_storeu_si128((__m128i *)(p + i + 32), c);
    _mm_storeu_si128((__m128i *)(p + i + 48), d);
    acc = _mm_or_si128(acc, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)));
  }
  for (; i + 16 <= n; i += 16) {
    __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + i)), mv);
    _mm_storeu_si128((__m128i *)(p + i), a);
    acc = _mm_or_si128(acc, a);
  }
  high = (uint64_t)_mm_movemask_epi8(acc);
#endif
  const uint64_t m64 = (uint64_t)m32 << 32 | m32;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    x ^= m64;
    memcpy(p + i, &x, 8);
    high |= x & 0x8080808080808080ull;
  }
  for (; i < n; i++) {
    p[i] ^= m[i & 3];
    high |= p[i] & 0x80;
  }
  w->offset += (uint32_t)n;
  return high != 0;
}

/* The frame's payload has all arrived. */
static void frame_end(struct conn *c) {
  struct ws *w = c->ws;
  w->in_frame = 0;
  if (w->opcode & 0x8) {
    uint8_t *ctrl = w->ctrl;
    w->ctrl = NULL;
    on_control(c, w->opcode, ctrl, w->ctrl_len);
    free(ctrl);
    return;
  }
  if (!w->fin) return;
  int op = w->msg_opcode;
  w->msg_opcode = 0;
  struct buf *m = w->msg;
  w->msg = NULL;
  if (!w->close_started) on_message(c, op, (uint8_t *)(m && m->data ? m->data : ""), m ? m->len : 0, 1);
  if (m) {
    buf_free(m);
    free(m);
  }
}

/* Length of the header starting at h (avail bytes), or 0 if incomplete. */
static size_t header_len(const uint8_t *h, size_t avail) {
  if (avail < 2) return 0;
  size_t n = 2 + ((h[1] & 0x7f) == 126 ? 2 : (h[1] & 0x7f) == 127 ? 8 : 0) + 4;
  return avail >= n ? n : 0;
}

void ws_on_data(struct conn *c, char *data, size_t len) {
  struct ws *w = c->ws;
  uint8_t *p = (uint8_t *)data, *end = p + len;
  if (w == NULL || c->closing || c->ending || w->failed) return;
  w->last_seen_ms = uv_now(c->srv->loop);
  while (!c->closing && !c->ending && !w->failed) {
    /* Stop when the input is used up, unless a frame with nothing left
     * to read (an empty payload) still has to be finished. */
    if (p == end && !(w->in_frame && w->remaining == 0)) break;
    if (!w->in_frame) {
      size_t hl;
      if (w->hdr_len) {
        /* Complete a header split across reads. */
        size_t take = (size_t)(end - p) < sizeof(w->hdr) - w->hdr_len ? (size_t)(end - p) : sizeof(w->hdr) - w->hdr_len;
        memcpy(w->hdr + w->hdr_len, p, take);
        hl = header_len(w->hdr, w->hdr_len + take);
        if (hl == 0) {
          w->hdr_len += (uint8_t)take;
          return;
        }
        p += hl - w->hdr_len;
        w->hdr_len = 0;
        if (frame_begin(c, w->hdr, hl) != 0) return;
      } else {
        hl = header_len(p, (size_t)(end - p));
        if (hl == 0) {
          memcpy(w->hdr, p, (size_t)(end - p));
          w->hdr_len = (uint8_t)(end - p);
          return;
        }
        if (frame_begin(c, p, hl) != 0) return;
        p += hl;
      }
    }
    size_t n = (uint64_t)(end - p) < w->remaining ? (size_t)(end - p) : (size_t)w->remaining;
    unsigned high = unmask(w, p, n);
    if (w->opcode & 0x8) {
      if (n) memcpy(w->ctrl + w->ctrl_len, p, n);
      w->ctrl_len = (uint8_t)(w->ctrl_len + n);
    } else if (w->fin && msg_len(w) == 0 && n == w->remaining && w->offset == n) {
      /* A whole single-frame message in this read: dispatch in place. */
      w->remaining = 0;
      w->in_frame = 0;
      int op = w->msg_opcode;
      w->msg_opcode = 0;
      p += n;
      if (!w->close_started) on_message(c, op, p - n, n, high);
      continue;
    } else if ((w->msg == NULL && (w->msg = calloc(1, sizeof(*w->msg))) == NULL) || buf_append(w->msg, p, n) != 0) {
      conn_close(c);
      return;
    }
    p += n;
    w->remaining -= (uint32_t)n;
    if (w->remaining == 0) frame_end(c);
  }
}

/* ---- timers ---- */

static void on_timer(struct conn *c) {
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
    c->srv->handlers.ws_end(c, CONN_END_TIMEOUT, 0);
    conn_close(c);
    return;
  }
  if (idle + 10 >= interval) send_frame(c, OP_PING, "hb", 2);
  conn_timer(c, interval, on_timer);
}

/* ---- lifecycle ---- */

int ws_accept(struct conn *c) {
  char accept[32];
  ws_accept_key(c->req->hdr[HDR_SEC_WS_KEY].data, c->req->hdr[HDR_SEC_WS_KEY].len, accept);
  struct ws *w = &c->ws_state;
  memset(w, 0, sizeof(*w));
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

void ws_on_eof(struct conn *c) { c->srv->handlers.ws_end(c, CONN_END_CUT, 0); }

void ws_send(struct conn *c, struct outbuf *frame) {
  if (c->proxy) { c->proxy->write(c, frame); return; }
  if (c->ws == NULL || c->ws->close_started) {
    outbuf_unref(frame);
    return;
  }
  c->srv->stats.messages_out++;
  conn_write(c, frame);
}

void ws_close(struct conn *c, int code, const char *reason) {
  if (c->proxy) { c->proxy->ws_close(c, code, reason); return; }
  struct ws *w = c->ws;
  if (w == NULL) {
    conn_end(c);
    return;
  }
  if (w->close_started || c->closing) return;
  send_close(c, code, reason);
  c->srv->handlers.ws_end(c, CONN_END_LOCAL, code);
  conn_timer(c, CLOSE_WAIT_MS, on_timer);
}

void ws_free(struct conn *c) {
  if (c->ws == NULL) return;
  msg_free(c->ws);
  free(c->ws->ctrl);
  memset(c->ws, 0, sizeof(*c->ws));
  c->ws = NULL;
}
