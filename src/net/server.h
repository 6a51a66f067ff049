/* The server: listener, connections, timers, signals and graceful shutdown.
 * Owns the connections, per-address counts, the token verifier and the
 * transport's counters. One loop thread owns everything here; nothing is
 * locked. A connection starts as HTTP (http.c) and may become a WebSocket
 * (ws.c). Knows nothing above it: requests, messages and ends reach the
 * layers above through the conn_handlers main.c registers. */
#ifndef HUDDLE_NET_SERVER_H
#define HUDDLE_NET_SERVER_H

#include <http_parser.h>
#include <stdint.h>
#include <uv.h>

#include "auth/token.h"
#include "guard/errors.h"
#include "config.h"
#include "lib/buf.h"
#include "lib/jsonx.h"
#include "lib/map.h"
#include "lib/outbuf.h"
#include "net/ws.h"

struct ws;
struct conn;
struct participant;   /* the signaling layer's, behind conn->part: never dereferenced here */
struct waiter;

enum http_hdr {
  HDR_AUTHORIZATION, HDR_UPGRADE, HDR_CONNECTION, HDR_SEC_WS_KEY,
  HDR_SEC_WS_VERSION, HDR_CONTENT_TYPE,
  HDR_UPLOAD_OFFSET, HDR_UPLOAD_LENGTH, HDR_UPLOAD_CHECKSUM, HDR_UPLOAD_METADATA,
  HDR_TUS_RESUMABLE, HDR_RANGE, HDR_IF_NONE_MATCH, HDR_IF_MODIFIED_SINCE, HDR_X_FORWARDED_FOR,
  HDR_X_HUDDLE_FORWARDED, /* another instance sent this request (src/cluster: never forwarded again) */
  HDR__COUNT
};

struct http_stream;

/* What only HTTP needs: allocated with the connection, freed at the
 * WebSocket upgrade (http_conn_free), so an upgraded connection keeps none
 * of it (docs/internals/connection.md). */
struct http_req {
  http_parser parser;
  struct buf in;                   /* owned: unparsed input */
  char peer[48];                   /* the TCP peer's address (a proxy, or the client) */
  struct buf url;                  /* owned: request target as sent */
  struct buf hdr[HDR__COUNT];      /* owned: values of the headers we use */
  struct buf body;                 /* owned */
  int cur_hdr;                     /* header being read, or -1 if not kept */
  int last_was_value;              /* parser state: field/value alternation */
  int nheaders;
  int complete;                    /* on_message_complete seen */
  int too_large;                   /* body over the limit */
  int head_checked;                /* httpcheck passed for this request */
  /* Requests with a body: the head is shown to srv->handlers.head first. */
  int head_seen;                   /* headers parsed, hook not run yet */
  int head_hooked;                 /* hook ran for this request */
  int held;                        /* a handler answers later (http_request_done) */
  int drain_wanted;                /* conn_write_stream left output behind: on_drained is owed */
  int peer_done;                   /* the client half-closed: answer what it sent, then end */
  size_t body_cap;                 /* buffered body limit for this request */
  size_t accounted;                /* bytes counted in srv->body_buffered */
  const struct http_stream *stream; /* borrowed: streamed body or response, or NULL */
  void *stream_data;               /* the stream's owner */
};

enum conn_kind { CONN_HTTP, CONN_WS };

/* Why a WebSocket ended, for its user (ws_end below). */
enum conn_end {
  CONN_END_CLOSE,     /* the peer sent a close frame; code is its status (0: none) */
  CONN_END_CUT,       /* the connection broke: EOF, reset or a write error */
  CONN_END_TIMEOUT,   /* the peer stopped answering pings */
  CONN_END_PROTOCOL,  /* we failed it: a framing or UTF-8 violation */
  CONN_END_LOCAL,     /* we closed it: shutdown, a slow reader, ws_close() */
};

/* What the layers above register (libuv style: callbacks and a data slot
 * owned by their user); main.c wires them. The net layer calls nothing
 * above it by name. */
struct conn_handlers {
  void (*request)(struct conn *c);                           /* a whole HTTP request */
  /* The head of a request that has a body, before the body is read: may
   * reply (refuse), attach a stream (http_stream_set), or set req.body_cap.
   * NULL: bodies are buffered up to max_body_bytes. */
  void (*head)(struct conn *c);
  void (*ws_text)(struct conn *c, const char *data, size_t len); /* a whole text message */
  void (*ws_binary)(struct conn *c);                         /* a binary message (dropped) */
  /* The WebSocket ended, or is ending; called once per connection at most
   * for each why, and must be idempotent. */
  void (*ws_end)(struct conn *c, enum conn_end why, int code);
  void (*tick)(void *data);                                  /* every TICK_MS: timers above */
  void *data;                                                /* owned by the registrant */
};

#define SERVER_TICK_MS 250
#define SERVER_TIMER_LISTS 8       /* distinct conn_timer durations (4 are used) */

struct wq_slot {
  struct outbuf *b;                /* owned: one ref */
  uint32_t next;                   /* next slot of the same connection (index + 1), 0: last */
};

/* A connection that is not a socket of this process (issue "Horizontal
 * scaling": a client connected to another instance, src/cluster). Writes,
 * ends and WebSocket closes go to these instead of the socket. */
struct conn_proxy {
  void (*write)(struct conn *c, struct outbuf *b);     /* consumes the ref */
  void (*end)(struct conn *c);                         /* conn_end / conn_close */
  void (*ws_close)(struct conn *c, int code, const char *reason);
};

/* Called when a connection's timer expires (conn_timer). */
typedef void (*conn_timer_cb)(struct conn *c);

struct sendq;                      /* server.c: what the socket has not taken yet */

/* NOTE: one of these per connection, so its size is the idle cost of a
 * client: what only HTTP needs is behind req, what only a WebSocket needs
 * behind ws, there is no per-connection uv_timer_t (server.c keeps the
 * timers in one list per duration), and the socket is watched by a
 * uv_poll_t (160 bytes) while server.c reads and writes it itself, not a
 * uv_tcp_t (248, with a write queue an idle client never uses; ADR 0018).
 * Layout: docs/internals/connection.md. */

struct conn {
  uv_poll_t poll;                  /* first: the handle's data is the conn; polls fd */
  struct server *srv;              /* borrowed */
  struct conn *prev, *next;        /* server's list of live connections */
  struct conn *reap_next;          /* server's list of connections to close */
  struct conn *timer_prev, *timer_next; /* the server's timer list for timer_ms */
  uint64_t timer_due;              /* loop time (ms) the timer fires at; 0: not armed */
  conn_timer_cb timer_cb;          /* what runs then */
  struct http_req *req;            /* owned while HTTP; NULL after the upgrade */
  struct ws *ws;                   /* &ws_state once a WebSocket; NULL while HTTP */
  struct participant *part;        /* borrowed; set by the signaling layer */
  struct waiter *waiter;           /* borrowed; set while in a waiting room */
  const struct conn_proxy *proxy;  /* NULL: a socket of ours (src/cluster otherwise) */
  void *cluster;                   /* src/cluster's slot; NULL without --redis-url */
  struct sendq *sq;                /* owned: bytes the socket did not take, in order; NULL: none */
  uint32_t q_head, q_tail;         /* frames to flush: chain in srv->wq (index + 1; 0: none) */
  uint32_t q_bytes;                /* bytes in that chain */
  uint32_t pending_idx;            /* index + 1 in srv->pending; 0: not listed this turn */
  uint8_t timer_list;              /* index of the timer list it is on, when timer_due */
  uint8_t kind;                    /* enum conn_kind */
  unsigned closing : 1;            /* conn_close() called: no more reads or writes */
  unsigned ending : 1;             /* conn_end() called: flushing, then close */
  unsigned in_request : 1;         /* HTTP: bytes of a request have arrived */
  unsigned dropped_slow : 1;       /* cut off by the server as a slow reader */
  unsigned ip_counted : 1;         /* counted in srv->per_ip under ip */
  unsigned reading : 1;            /* reads wanted (conn_read_stop clears it) */
  unsigned poll_mask : 2;          /* UV_READABLE | UV_WRITABLE the poll watches now */
  unsigned lingering : 1;          /* written and half-closed: input is read and dropped until EOF */
  unsigned peer_eof : 1;           /* read the peer's EOF */
  int fd;                          /* owned: the socket (unused, 0, for a proxy) */
  /* Client address, for per-address limits (net/proxy.c) and logs: borrowed
   * from srv->per_ip's key while ip_counted (not a 48-byte copy: 19,900 idle
   * clients from one address share one string), else a literal. */
  const char *ip;
  struct ws ws_state;              /* what ws points at once a WebSocket (ws.h) */
};

/* Upper bounds (microseconds) of the read-to-flush histogram's buckets;
 * a last, unbounded bucket follows. */
#define SERVER_TURN_BOUNDS_US {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000}
#define SERVER_TURN_BUCKETS 11

struct server_stats {
  uint64_t connections_total, ws_total, messages_in, messages_out, bytes_in, bytes_out;
  uint64_t slow_consumers_dropped, http_requests;
  uint64_t http_by_status[6];           /* index status / 100 */
  /* Loop turns that read client data and then wrote: from the turn's first
   * read to the end of its flush, the longest any message read in that
   * turn waited inside huddle before the kernel had its output. */
  uint64_t turn_buckets[SERVER_TURN_BUCKETS]; /* not cumulative */
  uint64_t turn_count;
  uint64_t turn_sum_ns;
};

struct server {
  uv_loop_t *loop;                 /* borrowed */
  const struct config *cfg;        /* borrowed */
  uv_poll_t listener;              /* polls listen_fd (from server_listen on) */
  int listen_fd;                   /* owned: -1 until listening and after closing */
  uv_timer_t accept_pause;         /* out of descriptors: accepting resumes after a pause */
  uint64_t accept_warned_ms;       /* loop time of the last accept_failed line */
  uv_signal_t sig_term, sig_int;
  uv_timer_t lag_timer;
  uv_timer_t stop_timer;
  uv_check_t reaper;
  /* Batched writes: conn_write() queues, flusher writes every connection
   * with output once per loop turn, before the loop blocks (uv_prepare,
   * like Redis's beforeSleep): one writev per connection. */
  uv_prepare_t flusher;
  uv_check_t turn_end;             /* after the reads of a turn: forgets turn_t0 when nothing will be flushed */
  uint64_t turn_t0;                /* uv_hrtime() of this turn's first read; 0: none yet */
  struct wq_slot *wq;              /* owned: queued frames of this turn, chained per connection */
  uint32_t wq_len, wq_cap;
  struct conn **pending;           /* owned: connections with queued frames this turn (NULL: closed) */
  uint32_t npending, pending_cap;
  /* Connection timers: one list per duration, each in firing order, and one
   * uv timer for the earliest head (instead of a uv_timer_t per connection). */
  uv_timer_t conn_timer;
  uint64_t conn_timer_due;         /* when conn_timer fires; 0: stopped */
  struct conn_timer_list { uint64_t ms; struct conn *head, *tail; } timer_lists[SERVER_TIMER_LISTS];
  int ntimer_lists;
  uint64_t lag_due_ms;             /* when lag_timer should fire next */
  double lag_ms;                   /* last measured event-loop lag */
  struct conn *conns;              /* live connections */
  struct conn *reap;               /* connections to close after this loop turn */
  size_t nconns;
  struct map per_ip;               /* ip -> count, stored as (void *)(uintptr_t) */
  struct token_verifier tokens;
  unsigned char *jwt_secret;       /* owned when HMAC */
  size_t jwt_secret_len;
  struct jsonx_limits json_limits;
  uv_timer_t tick_timer;           /* drives handlers.tick */
  struct conn_handlers handlers;   /* the layers above (set before server_listen) */
  size_t body_buffered;            /* bytes of request bodies held across connections */
  int shutting_down;
  int exit_code;
  uint64_t started_ms;
  char bound[64];                  /* "host:port" actually bound */
  struct server_stats stats;
};

/* Sets up s on loop with cfg: handles, data dir, token verifier. Returns 0, or -1
 * with a reason in err. */
/* Moves c's per-address count to ip (a client named by a trusted proxy).
 * Returns 0, or -1 if ip is over --max-connections-per-ip. */
int server_conn_readdress(struct conn *c, const char *ip);

int server_init(struct server *s, uv_loop_t *loop, const struct config *cfg,
                char *err, size_t err_len);
/* Binds and listens on cfg->listen; installs signal handlers. */
int server_listen(struct server *s, char *err, size_t err_len);
/* Starts a graceful shutdown: stop accepting, close WebSockets with 1001,
 * flush, then stop the loop (at the latest after shutdown_timeout_ms). */
void server_shutdown(struct server *s);
/* Closes what server_init opened after a failed start, without the
 * shutdown log lines (nothing was served). */
void server_abort(struct server *s);
/* Releases everything after the loop has stopped. */
void server_free(struct server *s);

/* Current Unix time in milliseconds. */
uint64_t server_now_ms(void);

/* Queues b on c; it is written when the loop is about to block (one writev
 * with everything queued on c in this turn), or at once when c's queue
 * reaches max_send_queue. Consumes the caller's ref on every path. A
 * connection whose unwritten bytes exceed max_send_queue is dropped (the
 * close happens after the current loop turn). */
void conn_write(struct conn *c, struct outbuf *b);
/* Writes what is queued on c now. */
void conn_flush(struct conn *c);
/* For a response streamed by its handler (http_stream_set, e.g. a file
 * download): writes what is queued on c, then b (consumes the ref), outside
 * the slow-reader bound (the stream sends one buffer at a time). Returns 1
 * if the socket took everything, 0 if some waits for it, in which case the
 * stream's on_drained runs once it is written, or -1 if c is closing. */
int conn_write_stream(struct conn *c, struct outbuf *b);
/* Copies data into a new buffer and queues it. */
void conn_write_copy(struct conn *c, const void *data, size_t len);
/* Drops c without flushing; safe to call more than once and from any
 * callback: the close itself happens after the current loop turn. */
void conn_close(struct conn *c);
/* Stops reading, flushes queued writes, then closes. */
void conn_end(struct conn *c);
/* Stops / restarts reading from c (backpressure of streamed bodies). */
void conn_read_stop(struct conn *c);
void conn_read_start(struct conn *c);
/* (Re)arms c's one timer: cb runs ms from now (loop time) unless re-armed
 * or c is closed first. */
void conn_timer(struct conn *c, uint64_t ms, conn_timer_cb cb);



/* Reads <data_dir>/jwt.secret; with create, generates it first (mode 0600)
 * when absent. Sets *out (malloc'd, NUL-terminated) and *out_len. */
int server_secret_load(const char *data_dir, int create, unsigned char **out, size_t *out_len,
                       char *err, size_t err_len);
#endif
