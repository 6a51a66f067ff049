/* One benchmark client connection: TCP connect from a chosen 127.0.0.x,
 * the HTTP upgrade, and WebSocket framing. Outgoing control frames (ping,
 * pong, close, PeerJS heartbeats) go through wslay in client mode, masked
 * with OpenSSL RAND_bytes; outgoing data frames are premasked templates
 * (lg_msg.c) written straight to the socket. Incoming frames are parsed in
 * place from the read buffer (server frames are unmasked and unfragmented),
 * or with wslay_event_recv under --wslay-recv, which copies each message
 * three times and validates UTF-8 byte by byte. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, getopt_long */
#endif
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "loadgen.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define READ_BUF (256 * 1024)
#define MAX_PARTIAL (4 * 1024 * 1024)
#define MAX_SRC_ADDRS 250

static char read_buf[READ_BUF]; /* one loop: each read is consumed before the next */

struct wreq {
  uv_write_t req;
  struct conn *c;
  uint8_t data[];
};

static void on_tcp_closed(uv_handle_t *h);

/* ---- ids ---- */

void conn_user_id(const struct lg *g, uint32_t idx, char *out, size_t cap) {
  snprintf(out, cap, "%su%u", g->prefix, idx);
}

void conn_room_id(const struct lg *g, uint32_t group, char *out, size_t cap) {
  snprintf(out, cap, "%sr%u", g->prefix, group);
}

/* ---- writes ---- */

static void on_written(uv_write_t *req, int status) {
  struct wreq *w = (struct wreq *)req;
  if (status < 0 && status != UV_ECANCELED) {
    w->c->g->err_write++;
    conn_close(w->c);
  }
  free(w);
}

int conn_write(struct conn *c, const void *data, size_t len) {
  if (c->closing) return UV_ECANCELED;
  uv_stream_t *st = (uv_stream_t *)&c->tcp;
  size_t off = 0;
  if (uv_stream_get_write_queue_size(st) == 0) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(st, &b, 1);
    if (n == (int)len) return 0;
    if (n < 0 && n != UV_EAGAIN) {
      c->g->err_write++;
      conn_close(c);
      return n;
    }
    if (n > 0) off = (size_t)n;
  }
  struct wreq *w = malloc(sizeof(*w) + len - off);
  if (w == NULL) abort();
  w->c = c;
  memcpy(w->data, (const uint8_t *)data + off, len - off);
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)(len - off));
  int rc = uv_write(&w->req, st, &b, 1, on_written);
  if (rc != 0) {
    free(w);
    c->g->err_write++;
    conn_close(c);
  }
  return rc;
}

/* ---- wslay glue ---- */

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user) {
  struct conn *c = user;
  (void)flags;
  if (conn_write(c, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user) {
  struct conn *c = user;
  (void)flags;
  if (c->rn == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < c->rn ? len : c->rn;
  memcpy(buf, c->rp, n);
  c->rp += n;
  c->rn -= n;
  return (ssize_t)n;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user) {
  (void)ctx;
  (void)user;
  return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user) {
  struct conn *c = user;
  (void)ctx;
  if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
    lg_on_message(c, arg->msg, arg->msg_length);
  } else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    lg_on_closed(c);
  }
}

static const struct wslay_event_callbacks ws_callbacks = {
  ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL, ws_msg_cb,
};

static void ws_flush(struct conn *c) {
  if (c->ws && !c->closing && wslay_event_want_write(c->ws)) wslay_event_send(c->ws);
}

void conn_keepalive(struct conn *c) {
  if (c->state != CS_READY || c->closing) return;
  struct wslay_event_msg m = {WSLAY_PING, NULL, 0};
  static const char hb[] = "{\"type\":\"HEARTBEAT\"}";
  if (c->g->o.proto == PROTO_PEERJS) {
    m.opcode = WSLAY_TEXT_FRAME;
    m.msg = (const uint8_t *)hb;
    m.msg_length = sizeof(hb) - 1;
  }
  if (wslay_event_queue_msg(c->ws, &m) == 0) ws_flush(c);
}

/* ---- incoming frames, parsed in place ---- */

/* Handles one whole frame. Returns -1 when the connection is done. */
static int on_frame(struct conn *c, uint8_t b0, const uint8_t *p, size_t len) {
  int op = b0 & 0x0f;
  c->g->rx_frames++;
  if (!(b0 & 0x80) || op == 0) {
    lg_note_code(c->g, "fragmented_frame");
    return 0;
  }
  switch (op) {
  case WSLAY_TEXT_FRAME:
  case WSLAY_BINARY_FRAME:
    lg_on_message(c, p, len);
    return c->closing ? -1 : 0;
  case WSLAY_PING: {
    struct wslay_event_msg m = {WSLAY_PONG, p, len};
    if (wslay_event_queue_msg(c->ws, &m) == 0) ws_flush(c);
    return 0;
  }
  case WSLAY_PONG:
    return 0;
  case WSLAY_CONNECTION_CLOSE: {
    uint16_t code = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 1005;
    char why[40];
    snprintf(why, sizeof(why), "close_%u", code);
    lg_note_code(c->g, why);
    lg_on_closed(c);
    wslay_event_queue_close(c->ws, code == 1005 ? 1000 : code, NULL, 0);
    ws_flush(c);
    conn_close(c);
    return -1;
  }
  default:
    lg_note_code(c->g, "bad_opcode");
    return 0;
  }
}

/* Parses the whole frames at p; returns the bytes consumed, or SIZE_MAX when
 * the connection is done. */
static size_t parse_frames(struct conn *c, const uint8_t *p, size_t n) {
  size_t used = 0;
  while (n - used >= 2) {
    const uint8_t *f = p + used;
    size_t avail = n - used, hl = 2;
    uint64_t len = f[1] & 0x7f;
    if (f[1] & 0x80) {
      lg_note_code(c->g, "masked_server_frame");
      lg_on_closed(c);
      conn_close(c);
      return SIZE_MAX;
    }
    if (len == 126) {
      if (avail < 4) break;
      len = (uint64_t)f[2] << 8 | f[3];
      hl = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 2; i < 10; i++) len = len << 8 | f[i];
      hl = 10;
    }
    if (len > MAX_PARTIAL) {
      lg_note_code(c->g, "frame_too_large");
      lg_on_closed(c);
      conn_close(c);
      return SIZE_MAX;
    }
    if (avail - hl < len) break;
    if (on_frame(c, f[0], f + hl, (size_t)len) != 0) return SIZE_MAX;
    used += hl + (size_t)len;
  }
  return used;
}

static void buf_append(struct conn *c, const void *p, size_t n) {
  if (c->in_len + n > c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap : 4096;
    while (cap < c->in_len + n) cap *= 2;
    char *q = realloc(c->in, cap);
    if (q == NULL) abort();
    c->in = q;
    c->in_cap = cap;
  }
  memcpy(c->in + c->in_len, p, n);
  c->in_len += n;
}

static void feed_ws(struct conn *c, const uint8_t *p, size_t n) {
  if (c->g->o.wslay_recv) {
    c->rp = p;
    c->rn = n;
    if (wslay_event_recv(c->ws) != 0) {
      lg_note_code(c->g, "wslay_recv_error");
      lg_on_closed(c);
      conn_close(c);
      return;
    }
    ws_flush(c);
    if (wslay_event_get_close_received(c->ws)) conn_close(c);
    return;
  }
  if (c->in_len == 0) {
    size_t used = parse_frames(c, p, n);
    if (used == SIZE_MAX) return;
    if (used < n) buf_append(c, p + used, n - used);
    return;
  }
  buf_append(c, p, n);
  size_t used = parse_frames(c, (const uint8_t *)c->in, c->in_len);
  if (used == SIZE_MAX) return;
  memmove(c->in, c->in + used, c->in_len - used);
  c->in_len -= used;
  if (c->in_cap > 65536 && c->in_len < 4096) {
    /* Give back the room a large frame needed. */
    char *q = realloc(c->in, 4096);
    if (q) {
      c->in = q;
      c->in_cap = 4096;
    }
  }
}

/* ---- the upgrade ---- */

static void expect_accept(struct conn *c, const char *key) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  char buf[64];
  unsigned char md[SHA_DIGEST_LENGTH];
  int n = snprintf(buf, sizeof(buf), "%s%s", key, guid);
  SHA1((const unsigned char *)buf, (size_t)n, md);
  EVP_EncodeBlock((unsigned char *)c->accept, md, SHA_DIGEST_LENGTH);
}

static void send_upgrade(struct conn *c) {
  struct lg *g = c->g;
  char uid[48], room[48], path[1024], req[1400];
  unsigned char raw[16];
  char key[32];
  RAND_bytes(raw, sizeof(raw));
  EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
  expect_accept(c, key);
  conn_user_id(g, c->idx, uid, sizeof(uid));
  conn_room_id(g, c->group, room, sizeof(room));
  if (g->o.proto == PROTO_NCHAN) {
    snprintf(path, sizeof(path), "/sub/%s", room);
  } else if (g->o.proto == PROTO_PEERJS) {
    snprintf(path, sizeof(path), "/peerjs?key=peerjs&id=%s&token=%02x%02x%02x%02x%02x%02x", uid,
             raw[0], raw[1], raw[2], raw[3], raw[4], raw[5]);
  } else {
    char jwt[512];
    if (jwt_mint(jwt, sizeof(jwt), g->o.secret, uid, room, (int64_t)time(NULL) + 7200) == 0) {
      lg_on_failed(c, "token");
      conn_close(c);
      return;
    }
    if (g->o.proto == PROTO_HUDDLE)
      snprintf(path, sizeof(path), "/webrtc/ws/%s?token=%s", room, jwt);
    else
      snprintf(path, sizeof(path), "/?room=%s&user=%s&token=%s", room, uid, jwt);
  }
  int n = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   path, g->o.host, g->o.port, key);
  c->state = CS_HANDSHAKE;
  conn_write(c, req, (size_t)n);
}

/* Consumes handshake bytes; on 101 switches to WebSocket framing. */
static void on_handshake_data(struct conn *c, const uint8_t *p, size_t n) {
  buf_append(c, p, n);
  char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (end == NULL) {
    if (c->in_len > 16384) {
      lg_on_failed(c, "handshake_too_long");
      conn_close(c);
    }
    return;
  }
  size_t hlen = (size_t)(end - c->in) + 4;
  int status = 0;
  if (c->in_len < 12 || sscanf(c->in, "HTTP/1.%*d %d", &status) != 1 || status != 101) {
    char why[32];
    snprintf(why, sizeof(why), "http_%d", status);
    lg_on_failed(c, why);
    conn_close(c);
    return;
  }
  if (memmem(c->in, hlen, c->accept, strlen(c->accept)) == NULL) {
    lg_on_failed(c, "bad_accept");
    conn_close(c);
    return;
  }
  if (wslay_event_context_client_init(&c->ws, &ws_callbacks, c) != 0) abort();
  c->state = CS_JOINING;
  /* nchan says nothing after the upgrade: the subscription is live now. */
  if (c->g->o.proto == PROTO_NCHAN) lg_on_ready(c);
  size_t rest = c->in_len - hlen;
  char *tmp = NULL;
  if (rest) {
    tmp = malloc(rest);
    if (tmp == NULL) abort();
    memcpy(tmp, c->in + hlen, rest);
  }
  c->in_len = 0;
  if (rest) feed_ws(c, (const uint8_t *)tmp, rest);
  free(tmp);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  struct conn *c = st->data;
  if (n == 0 || c->closing) return;
  if (n < 0) {
    if (c->state < CS_JOINING) {
      lg_on_failed(c, n == UV_EOF ? "eof_in_handshake" : uv_err_name((int)n));
    } else if (c->state == CS_JOINING) {
      lg_on_failed(c, "closed_before_ready");
    } else {
      lg_note_code(c->g, n == UV_EOF ? "eof" : uv_err_name((int)n));
      lg_on_closed(c);
    }
    conn_close(c);
    return;
  }
  if (c->state == CS_HANDSHAKE) on_handshake_data(c, (const uint8_t *)buf->base, (size_t)n);
  else feed_ws(c, (const uint8_t *)buf->base, (size_t)n);
}

/* ---- connect ---- */

static void on_closed_retry(uv_handle_t *h) {
  struct conn *c = h->data;
  c->closing = 0;
  c->state = CS_IDLE;
  conn_start(c);
}

static void on_connect(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  struct lg *g = c->g;
  if (c->closing) return;
  if ((status == UV_EADDRNOTAVAIL || status == UV_EADDRINUSE) && c->retries < 16 &&
      c->src + 1 < MAX_SRC_ADDRS) {
    /* This source address ran out of ephemeral ports: move everyone on. */
    c->retries++;
    c->src++;
    if (g->src_next < c->src) g->src_next = c->src;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_closed_retry);
    return;
  }
  if (status < 0) {
    lg_on_failed(c, uv_err_name(status));
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  send_upgrade(c);
}

void conn_start(struct conn *c) {
  struct lg *g = c->g;
  uint32_t want = g->o.per_addr > 0 ? c->idx / (uint32_t)g->o.per_addr : 0;
  if (c->src < want) c->src = (uint8_t)(want < MAX_SRC_ADDRS ? want : MAX_SRC_ADDRS - 1);
  if (c->src < g->src_next) c->src = g->src_next;
  c->state = CS_CONNECTING;
  c->closing = 0;
  if (uv_tcp_init_ex(g->loop, &c->tcp, AF_INET) != 0) abort();
  c->tcp.data = c;
  c->creq.data = c;
  uv_os_fd_t fd;
  int one = 1;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  struct sockaddr_in src;
  memset(&src, 0, sizeof(src));
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7f000001u + c->src);
  int rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
  struct sockaddr_in dst = g->dst;
  if (g->o.nports) dst.sin_port = htons((uint16_t)g->o.ports[c->idx % (uint32_t)g->o.nports]);
  if (rc == 0)
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&dst, on_connect);
  if (rc != 0) {
    lg_on_failed(c, uv_err_name(rc));
    conn_close(c);
  }
}

/* ---- close ---- */

static void on_tcp_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  if (c->ws) wslay_event_context_free(c->ws);
  c->ws = NULL;
  for (int i = 0; i < 3; i++) tmpl_free(&c->tm[i]);
  free(c->in);
  c->in = NULL;
  c->in_len = c->in_cap = 0;
  c->state = CS_CLOSED;
}

void conn_close(struct conn *c) {
  if (c->closing || c->state == CS_IDLE || c->state == CS_CLOSED) return;
  c->closing = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}
