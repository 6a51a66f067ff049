/* The server: listener, connections, timers, signals and graceful shutdown.
 * One loop thread owns everything here; nothing is locked. A connection
 * starts as HTTP (http.c) and may become a WebSocket (ws.c). */
#ifndef HUDDLE_NET_SERVER_H
#define HUDDLE_NET_SERVER_H

#include <http_parser.h>
#include <stdint.h>
#include <uv.h>

#include "auth/grant.h"
#include "auth/token.h"
#include "guard/errors.h"
#include "guard/ratelimit.h"
#include "config.h"
#include "lib/buf.h"
#include "lib/jsonx.h"
#include "lib/map.h"
#include "net/outbuf.h"
#include "room/history.h"

struct ws;
struct store;
struct bus;
struct participant;
struct waiter;

enum http_hdr {
  HDR_AUTHORIZATION, HDR_UPGRADE, HDR_CONNECTION, HDR_SEC_WS_KEY,
  HDR_SEC_WS_VERSION, HDR_CONTENT_TYPE, HDR_X_FORWARDED_FOR, HDR__COUNT
};

struct http_req {
  struct buf url;                  /* owned: request target as sent */
  struct buf hdr[HDR__COUNT];      /* owned: values of the headers we use */
  struct buf body;                 /* owned */
  int cur_hdr;                     /* header being read, or -1 if not kept */
  int last_was_value;              /* parser state: field/value alternation */
  int nheaders;
  int complete;                    /* on_message_complete seen */
  int too_large;                   /* body over the limit */
  int head_checked;                /* httpcheck passed for this request */
};

enum conn_kind { CONN_HTTP, CONN_WS };

struct conn {
  uv_tcp_t tcp;                    /* first: the handle's data is the conn */
  uv_timer_t timer;                /* HTTP: header/idle timeout; WS: ping, close wait */
  struct server *srv;              /* borrowed */
  struct conn *prev, *next;        /* server's list of live connections */
  struct conn *reap_next;          /* server's list of connections to close */
  enum conn_kind kind;
  unsigned closing : 1;            /* conn_close() called: no more reads or writes */
  unsigned ending : 1;             /* conn_end() called: flushing, then close */
  unsigned in_request : 1;         /* HTTP: bytes of a request have arrived */
  int handles;                     /* open uv handles; freed at zero */
  char ip[48];                     /* client address, for per-address limits (net/proxy.c) */
  char peer[48];                   /* the TCP peer's address (a proxy, or the client) */
  struct buf in;                   /* owned: unparsed input */
  http_parser parser;
  struct http_req req;
  struct ws *ws;                   /* owned; NULL while HTTP */
  struct participant *part;        /* borrowed; set by the signaling layer */
  struct waiter *waiter;           /* borrowed; set while in a waiting room */
};

#define STATS_TYPES 64   /* >= the number of message types */

struct server_stats {
  uint64_t connections_total, ws_total, messages_in, messages_out, bytes_in, bytes_out;
  uint64_t slow_consumers_dropped, http_requests;
  uint64_t in_by_type[STATS_TYPES];     /* client messages received, by type index */
  uint64_t out_by_type[STATS_TYPES];    /* messages delivered to clients, by type index */
  uint64_t errors_by_code[API_ERR__COUNT];
  uint64_t ratelimit_hits[RATE__COUNT];
  uint64_t http_by_status[6];           /* index status / 100 */
};

struct server {
  uv_loop_t *loop;                 /* borrowed */
  const struct config *cfg;        /* borrowed */
  uv_tcp_t listener;
  uv_signal_t sig_term, sig_int;
  uv_timer_t lag_timer;
  uv_timer_t stop_timer;
  uv_check_t reaper;
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
  struct map rooms;                /* room id -> struct room *, owned by room.c */
  struct history_registry history; /* room id -> what outlives the room */
  struct ratelimit rl;
  struct grant_spent grants;       /* spent breakout grants (auth/grant.h), owned by room/family.c */
  uv_timer_t prune_timer;          /* forgets idle rate-limit keys */
  struct store *store;             /* owned */
  struct bus *bus;                 /* owned */
  int shutting_down;
  int exit_code;
  uint64_t started_ms;
  char bound[64];                  /* "host:port" actually bound */
  struct server_stats stats;
};

/* Sets up s on loop with cfg: token verifier, store, bus. Returns 0, or -1
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
/* Releases everything after the loop has stopped. */
void server_free(struct server *s);

/* Current Unix time in milliseconds. */
uint64_t server_now_ms(void);

/* Queues b on c. Consumes the caller's ref on every path. A connection whose
 * queue exceeds max_send_queue is dropped (after this call returns). */
void conn_write(struct conn *c, struct outbuf *b);
/* Copies data into a new buffer and queues it. */
void conn_write_copy(struct conn *c, const void *data, size_t len);
/* Drops c without flushing; safe to call more than once and from any
 * callback: the close itself happens after the current loop turn. */
void conn_close(struct conn *c);
/* Stops reading, flushes queued writes, then closes. */
void conn_end(struct conn *c);
/* (Re)arms c's timer. */
void conn_timer(struct conn *c, uint64_t ms, uv_timer_cb cb);



/* Reads <data_dir>/jwt.secret; with create, generates it first (mode 0600)
 * when absent. Sets *out (malloc'd, NUL-terminated) and *out_len. */
int server_secret_load(const char *data_dir, int create, unsigned char **out, size_t *out_len,
                       char *err, size_t err_len);
#endif
