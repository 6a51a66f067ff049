/* Listener, connection lifecycle, writes with a per-connection cap, the
 * loop-lag probe, signals and graceful shutdown (see server.h). */
#define LOG_MODULE "server"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/http.h"
#include "net/proxy.h"
#include "net/server.h"
#include "net/ws.h"

#define LAG_PROBE_MS 250
#define READ_BUF_SIZE 65536
#define READS_PER_EVENT 32          /* full buffers read in a row before others get a turn (libuv's) */
#define ACCEPTS_PER_EVENT 64
#define ACCEPT_PAUSE_MS 100         /* out of descriptors: wait before accepting again */
#define END_STALL_MS 2000           /* conn_end: a peer that takes nothing for this long is cut */

static char read_buf[READ_BUF_SIZE]; /* loop thread only; readers copy out */

uint64_t server_now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- per-address counts ---- */

static size_t ip_count(struct server *s, const char *ip) {
  return (size_t)(uintptr_t)map_get(&s->per_ip, ip);
}

static int ip_add(struct server *s, const char *ip, int delta) {
  size_t n = ip_count(s, ip) + (size_t)delta;
  if (n == 0) {
    map_del(&s->per_ip, ip);
    return 0;
  }
  return map_put(&s->per_ip, ip, (void *)(uintptr_t)n);
}

/* Counts c at ip and points c->ip at the per-address map's copy of it, which
 * lives as long as a connection counts there (or at "unknown", uncounted,
 * when the map cannot grow). */
static void conn_address(struct conn *c, const char *ip) {
  const char *key = ip_add(c->srv, ip, +1) == 0 ? map_key(&c->srv->per_ip, ip) : NULL;
  c->ip = key ? key : "unknown";
  c->ip_counted = key != NULL;
}

static void conn_unaddress(struct conn *c) {
  if (c->ip_counted) ip_add(c->srv, c->ip, -1); /* may free the string c->ip points at */
  c->ip = "unknown";
  c->ip_counted = 0;
}

int server_conn_readdress(struct conn *c, const char *ip) {
  if (strcmp(c->ip, ip) == 0) return 0;
  conn_unaddress(c);
  conn_address(c, ip);
  return ip_count(c->srv, c->ip) > (size_t)c->srv->cfg->max_connections_per_ip ? -1 : 0;
}

/* ---- connection timers ----
 * One timer per connection, kept in the server's lists, one list per
 * duration: a timer armed for ms always lands at the tail of the ms list, so
 * each list stays in firing order at O(1) a (re)arm, and one uv timer waits
 * for the earliest head. Four durations are used (header and idle timeouts,
 * the ping interval, the close wait), so at most four heads are compared. */

static void conn_timers_arm(struct server *s);

static void timer_unlink(struct conn *c) {
  if (c->timer_due == 0) return;
  struct conn_timer_list *l = &c->srv->timer_lists[c->timer_list];
  if (c->timer_prev) c->timer_prev->timer_next = c->timer_next;
  else l->head = c->timer_next;
  if (c->timer_next) c->timer_next->timer_prev = c->timer_prev;
  else l->tail = c->timer_prev;
  c->timer_prev = c->timer_next = NULL;
  c->timer_due = 0;
}

static struct conn_timer_list *timer_list_for(struct server *s, uint64_t ms) {
  for (int i = 0; i < s->ntimer_lists; i++)
    if (s->timer_lists[i].ms == ms) return &s->timer_lists[i];
  if (s->ntimer_lists < SERVER_TIMER_LISTS) {
    struct conn_timer_list *l = &s->timer_lists[s->ntimer_lists++];
    l->ms = ms;
    return l;
  }
  /* More durations than lists: share the last one (insertion walks back
   * from its tail, so it stays sorted, only slower). */
  return &s->timer_lists[SERVER_TIMER_LISTS - 1];
}

void conn_timer(struct conn *c, uint64_t ms, conn_timer_cb cb) {
  if (c->closing) return;
  struct server *s = c->srv;
  timer_unlink(c);
  if (ms == 0) ms = 1; /* fires in a later turn, never in the one that arms it */
  struct conn_timer_list *l = timer_list_for(s, ms);
  c->timer_due = uv_now(s->loop) + ms;
  c->timer_cb = cb;
  c->timer_list = (uint8_t)(l - s->timer_lists);
  struct conn *after = l->tail;
  while (after && after->timer_due > c->timer_due) after = after->timer_prev;
  c->timer_prev = after;
  c->timer_next = after ? after->timer_next : l->head;
  if (c->timer_next) c->timer_next->timer_prev = c;
  else l->tail = c;
  if (after) after->timer_next = c;
  else l->head = c;
  if (s->conn_timer_due == 0 || c->timer_due < s->conn_timer_due) conn_timers_arm(s);
}

static void on_conn_timers(uv_timer_t *t) {
  struct server *s = t->data;
  uint64_t now = uv_now(s->loop);
  s->conn_timer_due = 0;
  for (int i = 0; i < s->ntimer_lists; i++) {
    struct conn_timer_list *l = &s->timer_lists[i];
    /* A callback re-arms at now + ms or later: this ends. */
    while (l->head && l->head->timer_due <= now) {
      struct conn *c = l->head;
      conn_timer_cb cb = c->timer_cb;
      timer_unlink(c);
      cb(c);
    }
  }
  conn_timers_arm(s);
}

/* Points the uv timer at the earliest head, or stops it. */
static void conn_timers_arm(struct server *s) {
  uint64_t due = 0;
  for (int i = 0; i < s->ntimer_lists; i++) {
    struct conn *h = s->timer_lists[i].head;
    if (h && (due == 0 || h->timer_due < due)) due = h->timer_due;
  }
  s->conn_timer_due = due;
  if (due == 0) {
    uv_timer_stop(&s->conn_timer);
    return;
  }
  uint64_t now = uv_now(s->loop);
  uv_timer_start(&s->conn_timer, on_conn_timers, due > now ? due - now : 0, 0);
}

/* ---- connection lifecycle ---- */

static void finish_shutdown(struct server *s);
static void queue_drop(struct conn *c);
static void sendq_free(struct conn *c);

static void on_handle_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  struct server *s = c->srv;
  if (c->pending_idx) s->pending[c->pending_idx - 1] = NULL;
  http_conn_free(c);
  ws_free(c);
  free(c);
  if (s->shutting_down && s->nconns == 0) finish_shutdown(s);
}

/* ---- the socket: one uv_poll_t, reads and writes of our own ----
 * libuv's uv_tcp_t would cost 88 bytes more per connection for a write
 * queue and callbacks an idle client never uses (ADR 0018). The poll
 * watches what is wanted: reads unless stopped, writability only while the
 * socket holds back output (c->sq). */

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_update(struct conn *c) {
  if (c->proxy) return; /* no socket here (src/cluster's connections) */
  unsigned mask = 0;
  if (!c->closing) {
    if (c->reading) mask |= UV_READABLE;
    if (c->sq) mask |= UV_WRITABLE;
  }
  if (mask == c->poll_mask) return;
  c->poll_mask = mask & 3;
  if (mask) uv_poll_start(&c->poll, (int)mask, on_poll);
  else uv_poll_stop(&c->poll);
}

/* Closes the handle, then the descriptor (the handle no longer watches it). */
static void conn_handle_close(struct conn *c) {
  uv_close((uv_handle_t *)&c->poll, on_handle_closed);
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

static void reap_one(struct conn *c) {
  struct server *s = c->srv;
  if (c->kind == CONN_WS) s->handlers.ws_end(c, c->dropped_slow ? CONN_END_LOCAL : CONN_END_CUT, 0);
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  conn_unaddress(c);
  queue_drop(c); /* ws_end may have queued more (it must not, but a frame is not worth a leak) */
  sendq_free(c);
  timer_unlink(c);
  conn_handle_close(c);
}

static void on_reap(uv_check_t *h) {
  struct server *s = h->data;
  /* Detaching a participant broadcasts, which may doom more connections;
   * they join the list and are handled in the same turn. */
  while (s->reap) {
    struct conn *c = s->reap;
    s->reap = c->reap_next;
    reap_one(c);
  }
  uv_check_stop(h);
}

void conn_close(struct conn *c) {
  if (c->proxy) { c->proxy->end(c); return; }
  if (c->closing) return;
  c->closing = 1;
  c->reading = 0;
  poll_update(c);
  timer_unlink(c);
  queue_drop(c);
  c->reap_next = c->srv->reap;
  c->srv->reap = c;
  uv_check_start(&c->srv->reaper, on_reap);
}

static void on_end_timeout(struct conn *c) { conn_close(c); }

/* Everything written: half-close, so the peer reads to EOF, then wait for
 * its EOF before closing, dropping what it still sends (a lingering close,
 * as nginx does): closing with unread input would send a reset, which can
 * destroy the last answer before the peer has read it (a request pipelined
 * behind "Connection: close"). A peer that sends on or never closes is cut
 * after END_STALL_MS. */
static void conn_finish(struct conn *c) {
  if (c->peer_eof || shutdown(c->fd, SHUT_WR) != 0) {
    conn_close(c);
    return;
  }
  c->lingering = 1;
  c->reading = 1;
  poll_update(c);
  uv_update_time(c->srv->loop);
  conn_timer(c, END_STALL_MS, on_end_timeout);
}

void conn_end(struct conn *c) {
  if (c->proxy) { c->proxy->end(c); return; }
  if (c->closing || c->ending) return;
  c->ending = 1;
  c->reading = 0;
  conn_flush(c); /* the shutdown goes after everything queued */
  if (c->closing) return;
  if (c->sq == NULL) {
    conn_finish(c);
    return;
  }
  poll_update(c); /* on_poll finishes once the socket took the rest */
  /* A peer that never reads would hold the flush forever; one that reads
   * slowly re-arms this at every write that makes progress (on_poll). The
   * loop's clock is read afresh: this turn may have run long (a pipeline of
   * requests answered in one go), and a deadline from the turn's start
   * could pass before the peer had one chance to read. */
  uv_update_time(c->srv->loop);
  conn_timer(c, END_STALL_MS, on_end_timeout);
}

/* ---- writes ----
 * conn_write() appends a ref to the connection's chain in srv->wq (one
 * array for every connection, reset after each flush) and lists the
 * connection in srv->pending once per turn. Before the loop blocks,
 * on_flush() gives each listed connection one writev with all of its
 * frames; what the socket does not take waits in the connection's sendq
 * (holding the refs), written when the poll says the socket is writable,
 * and later turns queue behind it. docs/internals/connection.md. */

#define FLUSH_IOV 64                /* buffers per writev (IOV_MAX is 1024) */

struct sendq {
  uint32_t head, n, cap;            /* entries b[head .. n) wait, in order */
  uint32_t off;                     /* bytes of b[head] already written */
  size_t bytes;                     /* unwritten bytes in all */
  struct outbuf *b[];               /* owned: one ref each */
};

static void sendq_free(struct conn *c) {
  struct sendq *q = c->sq;
  if (q == NULL) return;
  for (uint32_t i = q->head; i < q->n; i++) outbuf_unref(q->b[i]);
  free(q);
  c->sq = NULL;
}

/* Appends b (its ref), of which off bytes were written already. */
static int sendq_push(struct conn *c, struct outbuf *b, size_t off) {
  if (off >= b->len) { /* nothing left of it: an empty buffer would read as a full socket */
    outbuf_unref(b);
    return 0;
  }
  struct sendq *q = c->sq;
  if (q && q->head > 0 && q->n == q->cap) { /* reuse the written front */
    memmove(q->b, q->b + q->head, (q->n - q->head) * sizeof(q->b[0]));
    q->n -= q->head;
    q->head = 0;
  }
  if (q == NULL || q->n == q->cap) {
    uint32_t cap = q ? q->cap * 2 : 8;
    struct sendq *nq = realloc(q, sizeof(*q) + cap * sizeof(q->b[0]));
    if (nq == NULL) return -1;
    if (q == NULL) nq->head = nq->n = nq->off = 0, nq->bytes = 0;
    nq->cap = cap;
    c->sq = q = nq;
  }
  if (q->head == q->n) q->off = (uint32_t)off;
  q->b[q->n++] = b;
  q->bytes += b->len - off;
  return 0;
}

/* writev that retries an interrupted call; returns bytes, or 0 if the socket
 * takes nothing now, or -1 on an error (the connection is broken). */
static ssize_t sock_writev(int fd, const struct iovec *iov, unsigned n) {
  for (;;) {
    ssize_t r = writev(fd, iov, (int)n);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }
}

/* Writes c's sendq while the socket takes it. Returns 0, or -1 on an error. */
static int sendq_drain(struct conn *c) {
  struct sendq *q = c->sq;
  while (q->head < q->n) {
    struct iovec iov[FLUSH_IOV];
    unsigned k = 0;
    for (uint32_t i = q->head; i < q->n && k < FLUSH_IOV; i++, k++) {
      size_t off = i == q->head ? q->off : 0;
      iov[k].iov_base = q->b[i]->data + off;
      iov[k].iov_len = q->b[i]->len - off;
    }
    ssize_t r = sock_writev(c->fd, iov, k);
    if (r < 0) return -1;
    if (r == 0) return 0;
    q->bytes -= (size_t)r;
    size_t left = (size_t)r;
    while (left > 0) {
      size_t avail = q->b[q->head]->len - q->off;
      if (left < avail) {
        q->off += (uint32_t)left;
        break;
      }
      left -= avail;
      outbuf_unref(q->b[q->head++]);
      q->off = 0;
    }
  }
  free(q);
  c->sq = NULL;
  return 0;
}

/* Unrefs everything queued on c (a close drops unwritten output). */
static void queue_drop(struct conn *c) {
  struct wq_slot *wq = c->srv->wq;
  for (uint32_t i = c->q_head; i; i = wq[i - 1].next) outbuf_unref(wq[i - 1].b);
  c->q_head = c->q_tail = c->q_bytes = 0;
}

static void slow_check(struct conn *c) {
  size_t held = c->sq ? c->sq->bytes : 0;
  if (held <= (size_t)c->srv->cfg->max_send_queue) return;
  c->srv->stats.slow_consumers_dropped++;
  c->dropped_slow = 1;
  log_warn("slow_consumer_dropped ip=%s queued=%zu limit=%d", c->ip, held,
           c->srv->cfg->max_send_queue);
  conn_close(c);
}

/* Writes n buffers of c (their refs in ob): what the socket takes now,
 * the rest into c's sendq (all of it behind what waits there already).
 * Consumes the n refs on every path. */
static void write_bufs(struct conn *c, struct outbuf **ob, struct iovec *iov, unsigned n, int bounded) {
  unsigned done = 0;
  size_t left = 0;
  if (c->sq == NULL) {
    ssize_t r = sock_writev(c->fd, iov, n);
    if (r < 0) {
      for (unsigned i = 0; i < n; i++) outbuf_unref(ob[i]);
      conn_close(c);
      return;
    }
    left = (size_t)r;
    while (done < n && iov[done].iov_len <= left) {
      left -= iov[done].iov_len;
      outbuf_unref(ob[done++]);
    }
    if (done == n) return;
  }
  for (unsigned i = done; i < n; i++) {
    if (sendq_push(c, ob[i], i == done ? left : 0) != 0) {
      for (; i < n; i++) outbuf_unref(ob[i]);
      conn_close(c);
      return;
    }
  }
  poll_update(c);
  if (bounded) slow_check(c);
}

/* conn_flush, with or without the slow-reader bound. */
static void flush(struct conn *c, int bounded) {
  struct wq_slot *wq = c->srv->wq;
  while (c->q_head && !c->closing) {
    struct outbuf *ob[FLUSH_IOV];
    struct iovec iov[FLUSH_IOV];
    unsigned n = 0;
    uint32_t i = c->q_head;
    for (; i && n < FLUSH_IOV; i = wq[i - 1].next, n++) {
      ob[n] = wq[i - 1].b;
      iov[n].iov_base = ob[n]->data;
      iov[n].iov_len = ob[n]->len;
      c->q_bytes -= (uint32_t)ob[n]->len;
    }
    c->q_head = i;
    if (i == 0) c->q_tail = 0;
    write_bufs(c, ob, iov, n, bounded);
  }
}

void conn_flush(struct conn *c) { flush(c, 1); }

int conn_write_stream(struct conn *c, struct outbuf *b) {
  if (c->closing || c->proxy) {
    outbuf_unref(b);
    return -1;
  }
  c->srv->stats.bytes_out += b->len;
  flush(c, 0);
  if (c->closing) {
    outbuf_unref(b);
    return -1;
  }
  struct iovec iov = {b->data, b->len};
  write_bufs(c, &b, &iov, 1, 0);
  if (c->closing) return -1;
  if (c->sq == NULL) return 1;
  if (c->req) c->req->drain_wanted = 1;
  return 0;
}

static void on_flush(uv_prepare_t *h) {
  struct server *s = h->data;
  for (uint32_t i = 0; i < s->npending; i++) {
    struct conn *c = s->pending[i];
    if (c == NULL) continue; /* freed this turn */
    c->pending_idx = 0;
    conn_flush(c);
  }
  /* Every chain is empty now: the slots are free for the next turn. */
  s->npending = 0;
  s->wq_len = 0;
  uv_prepare_stop(h);
  if (s->turn_t0) {
    static const uint64_t bounds[] = SERVER_TURN_BOUNDS_US;
    uint64_t ns = uv_hrtime() - s->turn_t0;
    size_t i = 0;
    while (i < SERVER_TURN_BUCKETS - 1 && ns > bounds[i] * 1000) i++;
    s->stats.turn_buckets[i]++;
    s->stats.turn_count++;
    s->stats.turn_sum_ns += ns;
    s->turn_t0 = 0;
  }
}

/* After the reads of a turn (libuv runs check handles after the poll): a
 * turn that queued nothing will not flush, so its first read no longer
 * counts; one that did is measured when the flush ends (on_flush, before
 * the next poll). */
static void on_turn_end(uv_check_t *h) {
  struct server *s = h->data;
  if (s->npending == 0) s->turn_t0 = 0;
}

static int grow(void **p, uint32_t *cap, size_t size) {
  uint32_t n = *cap ? *cap * 2 : 256;
  void *q = n > *cap ? realloc(*p, (size_t)n * size) : NULL;
  if (q == NULL) return -1;
  *p = q;
  *cap = n;
  return 0;
}

void conn_write(struct conn *c, struct outbuf *b) {
  if (c->proxy) { c->proxy->write(c, b); return; }
  struct server *s = c->srv;
  if (c->closing || c->ending) {
    outbuf_unref(b);
    return;
  }
  if ((s->wq_len == s->wq_cap && grow((void **)&s->wq, &s->wq_cap, sizeof(*s->wq)) != 0) ||
      (c->pending_idx == 0 && s->npending == s->pending_cap &&
       grow((void **)&s->pending, &s->pending_cap, sizeof(*s->pending)) != 0)) {
    outbuf_unref(b);
    conn_close(c);
    return;
  }
  s->stats.bytes_out += b->len;
  uint32_t slot = ++s->wq_len;
  s->wq[slot - 1] = (struct wq_slot){b, 0};
  if (c->q_tail) s->wq[c->q_tail - 1].next = slot;
  else c->q_head = slot;
  c->q_tail = slot;
  c->q_bytes += (uint32_t)b->len;
  if (c->pending_idx == 0) {
    s->pending[s->npending++] = c;
    c->pending_idx = s->npending;
    if (s->npending == 1) uv_prepare_start(&s->flusher, on_flush);
  }
  /* Bound what waits for the flush as well as what the socket did not take. */
  if ((size_t)c->q_bytes + (c->sq ? c->sq->bytes : 0) > (size_t)s->cfg->max_send_queue)
    conn_flush(c);
}

void conn_write_copy(struct conn *c, const void *data, size_t len) {
  struct outbuf *b = outbuf_new(len);
  if (b == NULL) {
    conn_close(c);
    return;
  }
  memcpy(b->data, data, len);
  b->len = len;
  conn_write(c, b);
}

/* ---- reads and writability ---- */

/* The connection broke or the peer closed: a WebSocket learns it was cut. */
static void conn_broken(struct conn *c) {
  if (c->kind == CONN_WS) ws_on_eof(c);
  conn_close(c);
}

static void conn_read(struct conn *c) {
  for (int k = 0; k < READS_PER_EVENT && c->reading && !c->closing; k++) {
    ssize_t n = read(c->fd, read_buf, sizeof(read_buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      conn_broken(c);
      return;
    }
    if (c->lingering) { /* conn_finish: only the EOF matters now */
      if (n == 0) conn_close(c);
      continue;
    }
    if (n == 0) {
      c->peer_eof = 1;
      /* A half-close of HTTP: answer what was sent, then end (http.c). */
      if (c->kind == CONN_HTTP && c->req) http_on_eof(c);
      else conn_broken(c);
      return;
    }
    if (c->srv->turn_t0 == 0) c->srv->turn_t0 = uv_hrtime();
    c->srv->stats.bytes_in += (uint64_t)n;
    if (c->kind == CONN_HTTP) http_on_data(c, read_buf, (size_t)n);
    else ws_on_data(c, read_buf, (size_t)n);
    if ((size_t)n < sizeof(read_buf)) return;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct conn *c = h->data;
  if (c->closing) return;
  if (status < 0) {
    conn_broken(c);
    return;
  }
  if ((events & UV_WRITABLE) && c->sq) {
    size_t before = c->sq->bytes;
    if (sendq_drain(c) != 0) {
      conn_close(c);
      return;
    }
    if (c->ending && c->sq && c->sq->bytes < before) conn_timer(c, END_STALL_MS, on_end_timeout);
    if (c->sq == NULL) {
      if (c->ending) {
        conn_finish(c);
        return;
      }
      /* Only a stream that conn_write_stream told to wait hears of it: one
       * with a read in flight must not be started again. */
      struct http_req *r = c->req;
      if (r && r->drain_wanted) {
        r->drain_wanted = 0;
        if (r->stream && r->stream->on_drained) r->stream->on_drained(r->stream_data);
        if (c->closing) return;
      }
    }
    poll_update(c);
  }
  if (events & UV_READABLE) conn_read(c);
}

void conn_read_stop(struct conn *c) {
  if (c->closing) return;
  c->reading = 0;
  poll_update(c);
}

void conn_read_start(struct conn *c) {
  if (c->closing || c->ending) return;
  c->reading = 1;
  poll_update(c);
}

/* ---- accept ---- */

static void conn_accept(struct server *s, int fd, const struct sockaddr_storage *ss) {
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL || uv_poll_init(s->loop, &c->poll, fd) != 0) {
    free(c);
    close(fd);
    return;
  }
  c->srv = s;
  c->fd = fd;
  c->ip = "unknown";
  c->poll.data = c;
  if (http_conn_init(c) != 0) {
    conn_handle_close(c);
    return;
  }
  char ip[48] = "unknown";
  if (ss->ss_family == AF_INET) uv_ip4_name((const struct sockaddr_in *)ss, ip, sizeof(ip));
  else if (ss->ss_family == AF_INET6) uv_ip6_name((const struct sockaddr_in6 *)ss, ip, sizeof(ip));
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  s->stats.connections_total++;
  conn_address(c, ip);
  snprintf(c->req->peer, sizeof(c->req->peer), "%s", c->ip);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  /* Over a limit: answer once in plain HTTP and close; no request is read. */
  enum api_err e = API_OK;
  if (s->nconns > (size_t)s->cfg->max_connections) e = API_ERR_SERVER_FULL;
  else if (!proxy_trusted(s->cfg->trusted_proxies, c->ip) && /* a proxy's clients are counted per request */
           ip_count(s, c->ip) > (size_t)s->cfg->max_connections_per_ip) e = API_ERR_TOO_MANY_CONNECTIONS;
  if (e != API_OK) {
    log_warn("connection_refused ip=%s code=%s", c->ip, api_err_code(e));
    http_reply_error(c, e, NULL, 0);
    conn_end(c);
    return;
  }
  conn_read_start(c);
}

static void on_listener(uv_poll_t *h, int status, int events);

static void on_accept_pause(uv_timer_t *t) {
  struct server *s = t->data;
  if (s->listen_fd >= 0) uv_poll_start(&s->listener, UV_READABLE, on_listener);
}

static void on_listener(uv_poll_t *h, int status, int events) {
  struct server *s = h->data;
  if (status < 0) {
    log_warn("accept_failed err=%s", uv_err_name(status));
    return;
  }
  for (int k = 0; k < ACCEPTS_PER_EVENT && s->listen_fd >= 0; k++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      conn_accept(s, fd, &ss);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    int e = errno;
    uint64_t now = uv_now(s->loop);
    if (now - s->accept_warned_ms >= 5000) { /* at most one line per 5 s while it lasts */
      s->accept_warned_ms = now;
      log_warn("accept_failed err=%s", strerror(e));
    }
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
      /* The pending connection stays in the backlog: polling on would spin. */
      uv_poll_stop(&s->listener);
      uv_timer_start(&s->accept_pause, on_accept_pause, ACCEPT_PAUSE_MS, 0);
    }
    return;
  }
}

/* ---- lag probe, signals, shutdown ---- */

static void on_tick(uv_timer_t *t) {
  struct server *s = t->data;
  if (s->handlers.tick) s->handlers.tick(s->handlers.data);
}

static void on_lag(uv_timer_t *t) {
  struct server *s = t->data;
  uint64_t now = uv_now(s->loop);
  s->lag_ms = now > s->lag_due_ms ? (double)(now - s->lag_due_ms) : 0;
  s->lag_due_ms = now + LAG_PROBE_MS;
}

static void close_quiet(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void listener_close(struct server *s) {
  if (s->listen_fd < 0) return;
  uv_close((uv_handle_t *)&s->listener, NULL);
  close(s->listen_fd);
  s->listen_fd = -1;
}

static void finish_shutdown(struct server *s) {
  close_quiet((uv_handle_t *)&s->accept_pause);
  close_quiet((uv_handle_t *)&s->lag_timer);
  close_quiet((uv_handle_t *)&s->stop_timer);
  close_quiet((uv_handle_t *)&s->reaper);
  close_quiet((uv_handle_t *)&s->turn_end);
  close_quiet((uv_handle_t *)&s->flusher);
  close_quiet((uv_handle_t *)&s->conn_timer);
  close_quiet((uv_handle_t *)&s->tick_timer);
  close_quiet((uv_handle_t *)&s->sig_term);
  close_quiet((uv_handle_t *)&s->sig_int);
}

static void on_stop_timeout(uv_timer_t *t) {
  struct server *s = t->data;
  log_warn("shutdown_timeout open_connections=%zu", s->nconns);
  for (struct conn *c = s->conns; c; c = c->next) conn_close(c);
  if (s->nconns == 0) finish_shutdown(s);
}

void server_abort(struct server *s) {
  /* Startup failed: nothing was served, so there is nothing to announce or drain. */
  s->shutting_down = 1;
  listener_close(s);
  finish_shutdown(s);
}

void server_shutdown(struct server *s) {
  if (s->shutting_down) return;
  s->shutting_down = 1;
  log_info("shutdown_begin connections=%zu", s->nconns);
  listener_close(s);
  for (struct conn *c = s->conns; c; c = c->next) {
    if (c->kind == CONN_WS) ws_close(c, 1001, "server shutting down");
    else if (!c->in_request) conn_close(c);
  }
  if (s->nconns == 0) {
    finish_shutdown(s);
    return;
  }
  uv_timer_start(&s->stop_timer, on_stop_timeout, (uint64_t)s->cfg->shutdown_timeout_ms, 0);
}

static void on_signal(uv_signal_t *h, int signum) {
  log_info("signal_received signal=%d", signum);
  server_shutdown(h->data);
}

/* ---- set-up ---- */

static int load_secret(struct server *s, char *err, size_t err_len) {
  const struct config *cfg = s->cfg;
  if (strncmp(cfg->jwt_alg, "HS", 2) != 0) {
    if (cfg->jwt_public_key == NULL) {
      snprintf(err, err_len, "--jwt-alg %s needs --jwt-public-key", cfg->jwt_alg);
      return -1;
    }
    FILE *f = fopen(cfg->jwt_public_key, "rb");
    if (f == NULL) {
      snprintf(err, err_len, "%s: %s", cfg->jwt_public_key, strerror(errno));
      return -1;
    }
    unsigned char pem[16384];
    size_t n = fread(pem, 1, sizeof(pem), f);
    fclose(f);
    return token_verifier_init(&s->tokens, cfg->jwt_alg, pem, n, err, err_len);
  }
  if (cfg->jwt_secret) {
    s->jwt_secret_len = strlen(cfg->jwt_secret);
    s->jwt_secret = (unsigned char *)strdup(cfg->jwt_secret);
  } else if (server_secret_load(cfg->data_dir, 1, &s->jwt_secret, &s->jwt_secret_len, err, err_len) != 0) {
    return -1;
  }
  if (s->jwt_secret == NULL) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  return token_verifier_init(&s->tokens, cfg->jwt_alg, s->jwt_secret, s->jwt_secret_len, err, err_len);
}

int server_init(struct server *s, uv_loop_t *loop, const struct config *cfg,
                char *err, size_t err_len) {
  memset(s, 0, sizeof(*s));
  s->loop = loop;
  s->cfg = cfg;
  s->started_ms = server_now_ms();
  s->json_limits.max_depth = cfg->json_max_depth;
  s->json_limits.max_values = (size_t)cfg->json_max_values;
  /* Handles first: server_shutdown() and server_free() work after any failure below. */
  s->listen_fd = -1; /* the listener's poll is set up by server_listen */
  uv_timer_init(loop, &s->accept_pause);
  s->accept_pause.data = s;
  uv_signal_init(loop, &s->sig_term);
  uv_signal_init(loop, &s->sig_int);
  uv_timer_init(loop, &s->lag_timer);
  uv_timer_init(loop, &s->stop_timer);
  uv_check_init(loop, &s->reaper);
  uv_check_init(loop, &s->turn_end);
  s->turn_end.data = s;
  uv_check_start(&s->turn_end, on_turn_end);
  uv_unref((uv_handle_t *)&s->turn_end); /* never what keeps the loop running */
  uv_prepare_init(loop, &s->flusher);
  uv_timer_init(loop, &s->conn_timer);
  s->flusher.data = s->conn_timer.data = s;
  uv_timer_init(loop, &s->tick_timer);
  s->tick_timer.data = s;
  s->sig_term.data = s->sig_int.data = s;
  s->lag_timer.data = s->stop_timer.data = s->reaper.data = s;
  if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, err_len, "data dir %s: %s", cfg->data_dir, strerror(errno));
    return -1;
  }
  if (load_secret(s, err, err_len) != 0) return -1;
  return 0;
}

/* Descriptors: one a connection plus a reserve (the store, Redis, files,
 * clamd, the listener). A soft limit below that (1,024 is common) would
 * cap the clients long before --max-connections; the hard limit is the
 * administrator's, so it is only reported. */
#define FD_RESERVE 256

static void raise_nofile(const struct config *cfg) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t want = (rlim_t)cfg->max_connections + FD_RESERVE;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    rlim_t soft = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    struct rlimit nl = {soft, rl.rlim_max};
    if (soft > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &nl) == 0) rl.rlim_cur = soft;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
    log_info("open_files_limit limit=%llu max_connections=%d hint=\"raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-connections: clients past it wait in the backlog\"",
             (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

int server_listen(struct server *s, char *err, size_t err_len) {
  raise_nofile(s->cfg);
  char host[64];
  const char *colon = strrchr(s->cfg->listen, ':');
  if (colon == NULL || (size_t)(colon - s->cfg->listen) >= sizeof(host)) {
    snprintf(err, err_len, "--listen: expected host:port, got '%s'", s->cfg->listen);
    return -1;
  }
  memcpy(host, s->cfg->listen, (size_t)(colon - s->cfg->listen));
  host[colon - s->cfg->listen] = '\0';
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = '\0';
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535) {
    snprintf(err, err_len, "--listen: bad port in '%s'", s->cfg->listen);
    return -1;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  int r = strchr(host, ':') ? uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss)
                            : uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss);
  int fd = -1;
  if (r == 0) {
    socklen_t alen = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int one = 1;
    int zero = 0;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        /* [::] takes IPv4 clients too, whatever net.ipv6.bindv6only says (as libuv did) */
        (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) ||
        bind(fd, (struct sockaddr *)&ss, alen) != 0 || listen(fd, 1024) != 0)
      r = uv_translate_sys_error(errno);
  }
  if (r == 0) r = uv_poll_init(s->loop, &s->listener, fd);
  if (r == 0) {
    s->listen_fd = fd;
    s->listener.data = s;
    r = uv_poll_start(&s->listener, UV_READABLE, on_listener);
  } else if (fd >= 0) {
    close(fd);
  }
  if (r != 0) {
    snprintf(err, err_len, "listen on %s: %s%s", s->cfg->listen, uv_strerror(r),
             r == UV_EADDRINUSE ? " (another process holds that port: stop it or choose another --listen)" : "");
    return -1;
  }
  socklen_t len = sizeof(ss);
  getsockname(s->listen_fd, (struct sockaddr *)&ss, &len);
  char name[48] = "?";
  int bound_port = 0;
  if (ss.ss_family == AF_INET) {
    uv_ip4_name((struct sockaddr_in *)&ss, name, sizeof(name));
    bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  } else {
    uv_ip6_name((struct sockaddr_in6 *)&ss, name, sizeof(name));
    bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  snprintf(s->bound, sizeof(s->bound), "%s:%d", name, bound_port);
  uv_signal_start(&s->sig_term, on_signal, SIGTERM);
  uv_signal_start(&s->sig_int, on_signal, SIGINT);
  s->lag_due_ms = uv_now(s->loop) + LAG_PROBE_MS;
  uv_timer_start(&s->lag_timer, on_lag, LAG_PROBE_MS, LAG_PROBE_MS);
  uv_timer_start(&s->tick_timer, on_tick, SERVER_TICK_MS, SERVER_TICK_MS);
  return 0;
}

void server_free(struct server *s) {
  free(s->wq);
  free(s->pending);
  s->wq = NULL;
  s->pending = NULL;
  map_free(&s->per_ip);
  token_verifier_close(&s->tokens);
  free(s->jwt_secret);
  s->jwt_secret = NULL;
}

/* ---- the generated secret ---- */

int server_secret_load(const char *data_dir, int create, unsigned char **out, size_t *out_len,
                       char *err, size_t err_len) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof(path), "%s/jwt.secret", data_dir);
  FILE *f = fopen(path, "r");
  if (f) {
    char line[512];
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
    if (n < 32) {
      snprintf(err, err_len, "%s: secret shorter than 32 bytes", path);
      return -1;
    }
    *out = (unsigned char *)strdup(line);
    *out_len = n;
    return *out ? 0 : -1;
  }
  if (!create) {
    snprintf(err, err_len, "no secret in %s: start the server once, or set HUDDLE_JWT_SECRET", path);
    return -1;
  }
  if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, err_len, "data dir %s: %s", data_dir, strerror(errno));
    return -1;
  }
  char hex[65];
  if (id_random_hex(hex, 32) != 0) {
    snprintf(err, err_len, "no randomness for the secret");
    return -1;
  }
  /* Write a temporary file with mode 0600, then rename: the secret file is
   * either absent or whole, never half-written or briefly world-readable. */
  snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
    return -1;
  }
  char line[70];
  int n = snprintf(line, sizeof(line), "%s\n", hex);
  if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
    snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return -1;
  }
  close(fd);
  /* Another process may have raced us: keep whichever landed first. */
  if (link(tmp, path) != 0 && errno != EEXIST) {
    snprintf(err, err_len, "%s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  unlink(tmp);
  log_info("jwt_secret_generated path=%s", path);
  return server_secret_load(data_dir, 0, out, out_len, err, err_len);
}
