/* Shared files on any instance (ADR 0019). A room's files live on its
 * owner (the offer and the tus creation run there). A files request that
 * reaches another instance is forwarded to the owner over a direct HTTP
 * connection, not through Redis: the owner's address is the value of its
 * heartbeat key (--advertise-addr), found with the lease in one script.
 * The request head goes as it came (with Authorization: the owner does the
 * whole check itself), the body streams through on_chunk with backpressure
 * both ways, and the owner's answer is relayed byte for byte; the client's
 * connection then ends (the owner is asked for "Connection: close").
 * Not here: the files themselves (src/files), the HTTP layer (src/net). */
#define LOG_MODULE "cluster"
#include "log.h"

#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "cluster/cluster_int.h"
#include "net/http.h"
#include "net/proxy.h"
#include "room/room.h"

/* Upload bytes written to the owner and not yet taken by its socket:
 * at FWD_HIGH the client is not read any more, below FWD_LOW again. */
#define FWD_HIGH (256 * 1024)
#define FWD_LOW (64 * 1024)
#define FWD_READ 65536

/* KEYS lease:{room}. Returns {lease value or "", the owner's heartbeat
 * value (its address, "-" for none) or ""}. */
static const char LUA_FILES_OWNER[] =
    "local v = redis.call('GET', KEYS[1]) if not v then return {'', ''} end "
    "local o = string.match(v, '^(.-):') "
    "local a = o and redis.call('GET', 'huddle:hb:' .. o) "
    "return {v, a or ''}";

enum ffwd_state { FF_LOOKUP, FF_CONNECT, FF_RELAY };

struct ffwd {
  struct ffwd *prev, *next;  /* cl->ffwds */
  struct cluster *cl;
  struct conn *c;            /* borrowed; NULL once the client went away or was answered */
  int at_head;               /* from the head hook: the body streams through on_chunk */
  int state;                 /* enum ffwd_state */
  int framing;               /* FWD_BODY_*: the client's body, passed on the same way */
  uint64_t clen;             /* its Content-Length (FWD_BODY_LENGTH) */
  int method;
  char room[ID_MAX + 1];
  char owner[32];
  char addr[80];
  uv_tcp_t tcp;              /* to the owner (once connecting) */
  uv_connect_t creq;
  uv_timer_t timer;          /* no progress either way for fw_bound: the owner is given up */
  int handles;               /* handles open; freed when 0 and no lookup is in flight */
  int tcp_on;                /* tcp was initialised */
  int lookup;                /* the lease lookup is in flight (its callback holds f) */
  int closed;                /* closing: no more callbacks act */
  int in_try, sync;          /* the lookup's callback ran inside ffwd_try (Redis refused the command) */
  http_parser rp;            /* the owner's answer (its end, its status) */
  int started;               /* bytes of the answer went to the client */
  int done;                  /* the owner's answer is complete */
  int wfail;                 /* a write to the owner failed: the rest is dropped */
  size_t inflight;           /* bytes written to the owner, not taken yet */
  int client_paused;         /* on_chunk returned 1 */
  int owner_paused;          /* reads from the owner stopped: the client's socket is full */
  uint64_t up_bytes, down_bytes;
  char rbuf[FWD_READ];
};

struct wreq {
  uv_write_t w;
  struct ffwd *f;
  size_t len;                /* payload bytes (for inflight) */
  char data[];
};

static void on_abort(void *data);
static int on_chunk(void *data, const char *at, size_t len);
static void on_end(void *data);
static void on_drained(void *data);

/* While the lease is looked up: only the client's going away matters. */
static const struct http_stream hold_stream = {NULL, NULL, on_abort, NULL};
/* A bodyless request relayed: the answer streams back. */
static const struct http_stream relay_stream = {NULL, NULL, on_abort, on_drained};
/* A request with a body relayed from its head. */
static const struct http_stream relay_body_stream = {on_chunk, on_end, on_abort, on_drained};

static uint64_t fwd_bound_ms(const struct cluster *cl) {
  uint64_t t = (uint64_t)cl->srv->cfg->header_timeout_ms;
  return t > 4 * TIMER_MS ? t - 2 * TIMER_MS : t / 2;
}

void ffwd_addr(struct cluster *cl) {
  if (cl->addr_done || cl->srv->bound[0] == '\0') return;
  cl->addr_done = 1;
  const char *adv = cl->srv->cfg->advertise_addr;
  if (addr_advertised(adv, cl->srv->bound, cl->addr, sizeof(cl->addr)) != 0 || cl->addr[0] == '\0') {
    cl->addr[0] = '\0';
    log_warn("advertise_addr_none listen=%s reason=\"%s\" files of rooms owned here are answered only here; "
             "other instances answer them 503",
             cl->srv->bound, adv && *adv ? "not an ip:port" : "the listen address is a wildcard: set --advertise-addr");
    return;
  }
  log_info("advertise_addr addr=%s", cl->addr);
}

/* ---- the end of a forward ---- */

static void ffwd_free_maybe(struct ffwd *f) {
  if (f->handles > 0 || f->lookup) return;
  free(f);
}

static void on_handle_closed(uv_handle_t *h) {
  struct ffwd *f = h->data;
  f->handles--;
  ffwd_free_maybe(f);
}

/* Unlists f and closes its handles; reset: the owner sees a reset (an
 * upload cut), not a clean end. f is freed once they are closed. */
static void ffwd_close(struct ffwd *f, int reset) {
  if (f->closed) return;
  f->closed = 1;
  struct cluster *cl = f->cl;
  if (f->prev) f->prev->next = f->next;
  else if (cl->ffwds == f) cl->ffwds = f->next;
  if (f->next) f->next->prev = f->prev;
  f->prev = f->next = NULL;
  uv_close((uv_handle_t *)&f->timer, on_handle_closed);
  if (f->tcp_on) {
    if (!reset || f->state != FF_RELAY || uv_tcp_close_reset(&f->tcp, on_handle_closed) != 0)
      uv_close((uv_handle_t *)&f->tcp, on_handle_closed);
  }
  ffwd_free_maybe(f);
}

/* Gives the client's request back (nothing more comes from f). */
static struct conn *ffwd_detach(struct ffwd *f) {
  struct conn *c = f->c;
  f->c = NULL;
  if (c && c->req && c->req->stream_data == f) http_stream_set(c, NULL, NULL);
  return c;
}

/* The owner could not answer: 503 with a retry hint while nothing of the
 * answer was sent, a cut connection otherwise (a truncated body is never
 * presented as complete). A request the owner never got is counted here
 * against api_call (429 over the budget), as any REST call. Closes f. */
static void ffwd_fail(struct ffwd *f, const char *why, const char *detail) {
  struct cluster *cl = f->cl;
  log_warn("files_forward_failed room=%s owner=%s addr=%s reason=\"%s\" sent=%d up=%" PRIu64 " down=%" PRIu64,
           f->room, f->owner, f->addr, why, f->started, f->up_bytes, f->down_bytes);
  cl->st.files_forward_failed++;
  int started = f->started, sent = f->state == FF_RELAY;
  struct conn *c = ffwd_detach(f);
  ffwd_close(f, 1);
  if (c == NULL) return;
  if (started) {
    conn_close(c);
    return;
  }
  if (!sent) {
    refuse_counted(c, detail);
    fw_done(c);
    return;
  }
  http_reply_error(c, API_ERR_SERVICE_UNAVAILABLE, detail, LEASE_MS);
  http_request_done(c);
}

/* The owner's answer is complete and written (or queued): the client's
 * connection ends after it, as the owner's "Connection: close" says. */
static void ffwd_finish(struct ffwd *f) {
  struct conn *c = ffwd_detach(f);
  log_debug("files_forward_done room=%s owner=%s status=%u up=%" PRIu64 " down=%" PRIu64, f->room, f->owner,
            f->rp.status_code, f->up_bytes, f->down_bytes);
  ffwd_close(f, 0);
  if (c) {
    conn_end(c);
    http_request_done(c);
  }
}

static void on_timer(uv_timer_t *t) {
  struct ffwd *f = t->data;
  if (f->closed) return;
  struct conn *c = f->c;
  int client_sends = c && c->req && f->at_head && f->state == FF_RELAY && !c->req->complete && !f->client_paused &&
                     f->inflight == 0 && !f->started;
  if (f->owner_paused || client_sends) {
    /* Waiting for the client (to read the answer, or to send the rest of
     * its body: the owner took all it got): its own timer governs, and a
     * stalled body is its 408, as at the owner. */
    uv_timer_start(&f->timer, on_timer, fwd_bound_ms(f->cl), 0);
    return;
  }
  ffwd_fail(f, "no progress", "the room's instance did not answer in time");
}

static void progress(struct ffwd *f) {
  if (!f->closed) uv_timer_start(&f->timer, on_timer, fwd_bound_ms(f->cl), 0);
}

/* ---- the answer: owner -> client ---- */

static int on_resp_headers(http_parser *p) {
  struct ffwd *f = p->data;
  struct conn *c = f->c;
  if (c) {
    c->srv->stats.http_requests++;
    if (p->status_code >= 100 && p->status_code < 600) c->srv->stats.http_by_status[p->status_code / 100]++;
  }
  return f->method == HTTP_HEAD ? 1 : 0; /* a HEAD answer has no body */
}

static int on_resp_complete(http_parser *p) {
  struct ffwd *f = p->data;
  f->done = 1;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings resp_settings = {
  .on_headers_complete = on_resp_headers,
  .on_message_complete = on_resp_complete,
};

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  struct ffwd *f = h->data;
  b->base = f->rbuf;
  b->len = sizeof(f->rbuf);
}

static void on_owner_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  struct ffwd *f = s->data;
  if (f->closed || nread == 0) return;
  if (nread < 0) {
    ffwd_fail(f, nread == UV_EOF ? "the owner closed before its answer ended" : uv_err_name((int)nread),
              "the room's instance went away before it answered");
    return;
  }
  if (f->c == NULL) {
    ffwd_close(f, 1);
    return;
  }
  progress(f);
  size_t n = http_parser_execute(&f->rp, &resp_settings, b->base, (size_t)nread);
  enum http_errno he = HTTP_PARSER_ERRNO(&f->rp);
  if (he != HPE_OK && he != HPE_PAUSED) {
    ffwd_fail(f, http_errno_name(he), "the room's instance answered something unreadable");
    return;
  }
  if (n > 0) {
    struct outbuf *ob = outbuf_new(n);
    if (ob == NULL) {
      ffwd_fail(f, "out of memory", "out of memory");
      return;
    }
    memcpy(ob->data, b->base, n);
    ob->len = n;
    f->started = 1;
    f->down_bytes += n;
    int w = conn_write_stream(f->c, ob);
    if (w < 0) { /* the client is closing (the close itself comes later: detached first) */
      ffwd_detach(f);
      ffwd_close(f, 1);
      return;
    }
    if (w == 0 && !f->done) {
      f->owner_paused = 1;
      uv_read_stop(s);
    } else if (w > 0 && !f->done && !f->client_paused) {
      http_stream_resume(f->c); /* the answer moves: the client's inactivity timer restarts (as files.c's downloads) */
    }
  }
  if (f->done) ffwd_finish(f);
}

static void on_drained(void *data) {
  struct ffwd *f = data;
  if (f->closed || f->c == NULL) return;
  if (!f->client_paused) http_stream_resume(f->c); /* restarts the client's inactivity timer */
  if (f->owner_paused) {
    f->owner_paused = 0;
    progress(f);
    uv_read_start((uv_stream_t *)&f->tcp, alloc_cb, on_owner_read);
  }
}

/* ---- the request: client -> owner ---- */

static void on_written(uv_write_t *w, int status) {
  struct wreq *wr = (struct wreq *)w;
  struct ffwd *f = wr->f;
  f->inflight -= wr->len;
  free(wr);
  if (f->closed) return;
  if (status < 0) {
    f->wfail = 1; /* the owner stopped reading: its answer (or its end) tells the client */
    return;
  }
  progress(f);
  if (f->client_paused && f->inflight <= FWD_LOW && f->c && !f->done) {
    f->client_paused = 0;
    http_stream_resume(f->c);
  }
}

/* Writes pre, data, post to the owner as one write. Returns 0 or -1. */
static int owner_write(struct ffwd *f, const char *pre, size_t pl, const char *data, size_t len, const char *post,
                       size_t tl) {
  struct wreq *wr = malloc(sizeof(*wr) + pl + len + tl);
  if (wr == NULL) return -1;
  wr->f = f;
  wr->len = pl + len + tl;
  if (pl) memcpy(wr->data, pre, pl);
  if (len) memcpy(wr->data + pl, data, len);
  if (tl) memcpy(wr->data + pl + len, post, tl);
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
  if (uv_write(&wr->w, (uv_stream_t *)&f->tcp, &b, 1, on_written) != 0) {
    free(wr);
    return -1;
  }
  f->inflight += wr->len;
  return 0;
}

static int on_chunk(void *data, const char *at, size_t len) {
  struct ffwd *f = data;
  if (f->closed || f->done || f->wfail || len == 0) return 0; /* answered already: the rest is dropped */
  char pre[24];
  size_t pl = 0;
  if (f->framing == FWD_BODY_CHUNKED) pl = (size_t)snprintf(pre, sizeof(pre), "%zx\r\n", len);
  if (owner_write(f, pre, pl, at, len, "\r\n", f->framing == FWD_BODY_CHUNKED ? 2 : 0) != 0) {
    /* Not answered from inside the client's parser: the owner's end (or
     * the timer) answers. */
    f->wfail = 1;
    return 0;
  }
  f->up_bytes += len;
  if (f->inflight >= FWD_HIGH) {
    f->client_paused = 1;
    return 1;
  }
  return 0;
}

static void on_end(void *data) {
  struct ffwd *f = data;
  if (f->closed || f->done || f->wfail || f->framing != FWD_BODY_CHUNKED) return;
  if (owner_write(f, "0\r\n\r\n", 5, NULL, 0, NULL, 0) != 0) f->wfail = 1; /* the timer answers */
}

static void on_abort(void *data) {
  struct ffwd *f = data;
  f->c = NULL;
  if (f->state != FF_LOOKUP) ffwd_close(f, 1); /* a lookup's callback closes it */
}

/* The headers the files handlers read, passed on as they came. */
static size_t fwd_headers(const struct conn *c, struct fwd_hdr *h) {
  static const struct { int i; const char *name; } keep[] = {
    {HDR_AUTHORIZATION, "Authorization"},     {HDR_CONTENT_TYPE, "Content-Type"},
    {HDR_UPLOAD_OFFSET, "Upload-Offset"},     {HDR_UPLOAD_LENGTH, "Upload-Length"},
    {HDR_UPLOAD_CHECKSUM, "Upload-Checksum"}, {HDR_UPLOAD_METADATA, "Upload-Metadata"},
    {HDR_TUS_RESUMABLE, "Tus-Resumable"},     {HDR_RANGE, "Range"},
    {HDR_IF_NONE_MATCH, "If-None-Match"},     {HDR_IF_MODIFIED_SINCE, "If-Modified-Since"},
  };
  size_t n = 0;
  for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
    const struct buf *b = &c->req->hdr[keep[i].i];
    h[n].name = keep[i].name;
    h[n].value = b->data ? b->data : "";
    h[n].len = b->len;
    n++;
  }
  return n;
}

static void on_connect(uv_connect_t *req, int status) {
  struct ffwd *f = req->data;
  if (f->closed) return;
  if (f->c == NULL) {
    ffwd_close(f, 1);
    return;
  }
  if (status < 0) {
    ffwd_fail(f, uv_err_name(status), "the room's instance cannot be reached; retry");
    return;
  }
  struct conn *c = f->c;
  struct fwd_hdr h[16];
  size_t nh = fwd_headers(c, h);
  struct buf head = {0};
  const char *url = c->req->url.data ? c->req->url.data : "";
  if (fwd_head_build(&head, http_method_str((enum http_method)f->method), url, c->req->url.len, h, nh,
                     f->cl->inst, c->ip ? c->ip : "", f->framing, f->clen) != 0 ||
      owner_write(f, head.data, head.len, NULL, 0, NULL, 0) != 0) {
    buf_free(&head);
    ffwd_fail(f, "request head", "the request could not be passed on");
    return;
  }
  buf_free(&head);
  f->state = FF_RELAY;
  progress(f);
  http_parser_init(&f->rp, HTTP_RESPONSE);
  f->rp.data = f;
  if (uv_read_start((uv_stream_t *)&f->tcp, alloc_cb, on_owner_read) != 0) {
    ffwd_fail(f, "read start", "the room's instance cannot be read");
    return;
  }
  f->cl->st.files_forwarded++;
  if (f->at_head) {
    http_stream_set(c, &relay_body_stream, f);
    http_head_continue(c); /* the body now flows to on_chunk */
  } else {
    http_stream_set(c, &relay_stream, f);
  }
}

static void ffwd_connect(struct ffwd *f, const char *addr) {
  struct sockaddr_storage sa;
  snprintf(f->addr, sizeof(f->addr), "%s", addr);
  if (addr_parse(addr, &sa) != 0) {
    ffwd_fail(f, "no address", "the room's instance advertises no address other instances can reach (--advertise-addr)");
    return;
  }
  if (uv_tcp_init(f->cl->loop, &f->tcp) != 0) {
    ffwd_fail(f, "tcp init", "out of sockets");
    return;
  }
  f->tcp.data = f;
  f->tcp_on = 1;
  f->handles++;
  uv_tcp_nodelay(&f->tcp, 1);
  f->creq.data = f;
  f->state = FF_CONNECT;
  int r = uv_tcp_connect(&f->creq, &f->tcp, (const struct sockaddr *)&sa, on_connect);
  if (r != 0) {
    ffwd_fail(f, uv_err_name(r), "the room's instance cannot be reached; retry");
    return;
  }
  progress(f);
}

/* ---- the decision ---- */

/* Answers here what the lookup says is not another instance's: as if the
 * cluster had never looked (the head hook's work, or the request's). */
static void ffwd_here(struct ffwd *f) {
  int at_head = f->at_head;
  struct conn *c = ffwd_detach(f);
  ffwd_close(f, 0);
  if (c == NULL) return;
  if (at_head) {
    api_http_head(c);
    http_head_continue(c);
  } else {
    request_here(c);
    fw_done(c);
  }
}

static void lookup_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct ffwd *f = priv;
  redisReply *r = reply;
  f->lookup = 0;
  if (f->in_try) {
    f->sync = 1; /* answered at once (the command could not be sent): ffwd_try gives the request back */
    return;
  }
  if (f->closed) {
    ffwd_free_maybe(f);
    return;
  }
  if (f->c == NULL) {
    ffwd_close(f, 0);
    return;
  }
  char val[64] = "", addr[80] = "";
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
    ffwd_here(f); /* Redis away: answered here, as before */
    return;
  }
  reply_str(r->element[0], val, sizeof(val));
  reply_str(r->element[1], addr, sizeof(addr));
  struct cluster *cl = f->cl;
  if (lease_parse(val, f->owner, sizeof(f->owner), NULL) != 0 || lease_held_by(val, cl->inst) ||
      hub_room_find(cl->h, f->room)) {
    ffwd_here(f); /* live nowhere, or here */
    return;
  }
  if (f->c->req->hdr[HDR_X_HUDDLE_FORWARDED].len) {
    /* Sent here by an instance that took this one for the owner: never
     * forwarded again (the room moved in between). A client that sets the
     * header itself gets the same, counted like any call. */
    struct conn *c = ffwd_detach(f);
    ffwd_close(f, 0);
    refuse_counted(c, "the room's instance changed while the request was passed on; retry");
    fw_done(c);
    return;
  }
  if (addr[0] == '\0') {
    ffwd_fail(f, "owner heartbeat gone", "the room's instance is gone; the room moves to another instance, retry");
    return;
  }
  ffwd_connect(f, addr);
}

int ffwd_try(struct cluster *cl, struct conn *c, int at_head) {
  char room[ID_MAX + 1];
  if (cl == NULL || c->proxy || cl->stopping || c->req == NULL) return 0;
  const char *url = c->req->url.data ? c->req->url.data : "";
  if (!files_url_room(url, c->req->url.len, room, sizeof(room))) return 0;
  struct croom *cr = croom_get(cl, room, 0);
  if (hub_room_find(cl->h, room) || (cr && cr->owned)) return 0; /* ours: answered here */
  if (!cl->cmd_up) return 0; /* Redis away: answered here, as before */
  /* Behind a trusted proxy: the client's address (X-Forwarded-For to the
   * owner), or refused 429 as api_dispatch would. */
  if (proxy_resolve(c) != 0) return 1;
  struct ffwd *f = calloc(1, sizeof(*f));
  if (f == NULL) return 0;
  f->cl = cl;
  f->c = c;
  f->at_head = at_head;
  f->method = c->req->parser.method;
  snprintf(f->room, sizeof(f->room), "%s", room);
  if (at_head && (c->req->parser.flags & F_CHUNKED)) {
    f->framing = FWD_BODY_CHUNKED;
  } else if (c->req->parser.flags & F_CONTENTLENGTH) {
    f->framing = FWD_BODY_LENGTH; /* from the head: the declared length is still whole */
    f->clen = at_head ? c->req->parser.content_length : 0;
  }
  uv_timer_init(cl->loop, &f->timer);
  f->timer.data = f;
  f->handles = 1;
  f->next = cl->ffwds;
  if (f->next) f->next->prev = f;
  cl->ffwds = f;
  http_stream_set(c, &hold_stream, f);
  char lease[KEY_MAX];
  key_of(lease, "lease", room);
  const char *argv[] = {"EVAL", LUA_FILES_OWNER, "1", lease};
  f->lookup = 1;
  f->in_try = 1;
  redis_cmd(cl, lookup_cb, f, 0, 4, argv, NULL);
  f->in_try = 0;
  if (f->sync) {
    ffwd_detach(f);
    ffwd_close(f, 0);
    return 0;
  }
  if (at_head) http_head_hold(c);
  return 1;
}

void cluster_on_head(struct conn *c) {
  if (ffwd_try(the_cluster, c, 1)) return;
  api_http_head(c);
}

void ffwd_close_all(struct cluster *cl) {
  while (cl->ffwds) {
    struct ffwd *f = cl->ffwds;
    struct conn *c = ffwd_detach(f);
    ffwd_close(f, 1);
    if (c) conn_close(c);
  }
}
