/* What the files of src/cluster share (private: the rest of huddle uses
 * cluster.h only). The state of one instance in the cluster (struct
 * cluster) and of the rooms, links, remote sessions and forwarded calls it
 * knows, and the functions one part calls in another:
 *   cluster.c   start, stop, the tick and the after-turn check, health
 *   redis.c     the two connections, commands, reply helpers, inbox XADD
 *   lease.c     rooms' leases and fences, renewals, heartbeats
 *   owner.c     the bus, remote sessions, forwarded opens, messages, calls
 *   link.c      the member side: links to rooms owned elsewhere
 *   reader.c    XREAD over inbox, broadcast and streams; inbox dispatch
 *   snapshot.c  the owner's snapshot of a room
 *   takeover.c  becoming owner: the rebuild from snapshot and stream
 *   rest.c      REST forwarding, the room list and creation
 *   limiter.c   the shared GCRA rate limits
 *   bcast.c     the broadcast stream (a user's erase)
 *   wire.c      pure helpers of the wire formats (unit tested)
 * Docs: docs/internals/cluster.md. */
#ifndef HUDDLE_CLUSTER_CLUSTER_INT_H
#define HUDDLE_CLUSTER_CLUSTER_INT_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>

#include "cluster/cluster.h"
#include "lib/buf.h"
#include "lib/ids.h"
#include "lib/map.h"

#define LEASE_MS 3000            /* a dead owner's rooms are taken over after this */
#define TIMER_MS 500             /* heartbeat, renewals, takeover checks */
#define INBOX_MAX 100000
#define PENDING_MAX 200000       /* commands held while Redis is away */
/* Bytes of a link's client messages held (before the owner is known, while
 * they are taken back from a dead owner, during a rebuild here); a message
 * past it is refused TOO_MANY_MESSAGES with its ref, never dropped unsaid. */
#define LINK_QUEUE_BYTES (1u << 20)
/* A binary frame in a member's message order (no text frame is this: not
 * UTF-8): forwarded and gated as a message, answered as signal_on_binary. */
#define BINARY_MARK "\xff"
#define LINK_MOVES_MAX 8         /* refused opens of one link before its client is told to reconnect */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define KEY_MAX 160
#define FWD_CHECK_MS 1000        /* a forwarded REST call unanswered this long: is its owner alive? */
#define BCAST_MAX 1000           /* entries kept in the broadcast stream */
#define RECOVER_SCAN "10000"     /* newest entries of a dead owner's inbox searched for a link's messages */
#define BCAST_KEY "huddle:bcast:"
#define ERASE_CLOSE_CODE 4007    /* an erased user's connection (as src/room/durable.c) */

/* A growable list of pointers: what a pass over a map collects before it
 * acts (map_each's fn must not change the map, and acting on a room, a
 * session or a call may), so that a pass covers every entry, however many. */
struct ptrvec {
  void **v;
  size_t n, cap;
  size_t missed;            /* entries not collected: out of memory (the pass logs it) */
};

struct pending {            /* a command held while Redis is away */
  struct pending *next;
  int argc;
  char **argv;
  size_t *lens;
};

struct redis_url {          /* redis://[[user]:password@]host[:port][/db] */
  char host[256];
  int port;
  char user[128], pass[256];
  int db;
};

/* The per-user classes a message, join or REST call spends, counted in
 * Redis (limiter.c) before it runs: the limiter seam's checks and peeks for
 * that user and class are answered from it while it runs; what it counted
 * and the run did not spend (refused first for a permission, invalid, the
 * room there after all) is given back after the run (charge_settle). */
#define CHARGE_MAX 3
struct charge {
  char user[ID_MAX + 1];
  int n;
  int cls[CHARGE_MAX];
  unsigned units[CHARGE_MAX];   /* asked: the cost, or 0 for a peek */
  unsigned counted[CHARGE_MAX]; /* counted in Redis */
  unsigned used[CHARGE_MAX];    /* answered to the run's checks so far */
  int refused[CHARGE_MAX];      /* over the budget: nothing counted */
  uint32_t remaining[CHARGE_MAX]; /* left after the count (a peek: before) */
  uint64_t retry_ms[CHARGE_MAX];
};

struct croom {              /* what this instance knows of a room */
  char id[ID_MAX + 1];
  int owned;                /* this instance holds the lease */
  int acquiring;            /* an ACQUIRE is in flight */
  int rebuilding;
  int gated_joins;          /* joins held here for their room_create count (limiter.c): the room is not released */
  char lease[64];           /* "inst:fence" while owned */
  char owner[32];           /* the owner's instance id when known ("" unknown) */
  char pos[48];             /* reader position in the room's stream (rooms owned elsewhere) */
  int watching;
  uint64_t last_seq, sub;   /* last L entry appended (owner): S ids are last_seq-(++sub) */
  int dirty;                /* the snapshot must be written again */
  uint64_t snap_ms;
  struct link *links;       /* local connections of this room (owned elsewhere, or waiting) */
  uint64_t fence;
  struct remote *deferred;  /* opens that came while the lease reply or the rebuild was pending */
  char parent[ID_MAX + 1];  /* a breakout room claimed by its family's new owner: its main room */
  /* The room's analytics as last written for a next owner (snapshot.c): */
  uint64_t ana_sum;         /* the sum of its counters (they only rise) */
  uint64_t ana_ev, ana_au;  /* ring totals: entries from these on are not written yet */
  uint64_t ana_ms;          /* when */
  int ana_full;             /* an erase changed held entries: the lists are written again whole */
};

struct link {               /* a client of this instance in a room owned elsewhere */
  struct link *next;        /* croom's list */
  struct cluster *cl;
  struct conn *c;
  uint64_t id;
  char key[24];
  struct croom *room;
  struct token_claims claims;
  int admitted;
  char rt[80];
  int has_rt;
  uint64_t last_seq;
  int opened;               /* the owner was sent the open */
  int confirmed;            /* the owner's first frame for it came: the open took */
  int moves;                /* opens refused by an instance that no longer owned the room */
  char sent_to[32];         /* the owner it was sent to */
  struct buf queue;         /* messages before the open was confirmed: u32 length + bytes */
  size_t nqueued;
  struct buf grant;         /* a breakout grant (the owner checks it); spent in Redis first */
  int spending;             /* the grant's SET NX is in flight: not in room->links yet */
  char spend_room[ID_MAX + 1];
  /* The owner changed while this link was sending to the old one: its
   * messages the old owner never read are taken back (LUA_RECOVER) and sent
   * to the new one ahead of those since, which wait in queue meanwhile. */
  int recovering;
};

struct feed {               /* a link of this instance made a local member by a rebuild: its held messages */
  struct conn *c;
  struct buf q;
};

struct remote {             /* owner side: a client connected to another instance */
  struct remote *free_next;
  char key[64];             /* "inst/id" */
  char inst[32];
  char ip[48];              /* "instance:<inst>": fake->ip points here */
  char room[ID_MAX + 1];
  struct conn *fake;
  int closed;
  int http;
  struct buf resp;          /* http: the response bytes */
  int held;                 /* http: the handler answers later (a store read): sent on its write */
  /* An open that came before this instance knew it owned the room (the
   * other instance read the lease before our reply arrived): joined later,
   * its messages kept in order meanwhile (u32 length + bytes). */
  int deferred;
  struct remote *defer_next;
  struct token_claims tc;
  int adm, has_rt;
  char rt[80];
  uint64_t ls;
  struct buf q;
  struct buf grant;         /* the open's breakout grant, if any */
};

struct fwd_http {           /* a REST call waiting for its room's owner */
  struct cluster *cl;
  struct conn *c;
  uint64_t id;
  char room[ID_MAX + 1];
  int method;
  struct buf url, auth, ctype, body;      /* copies for the forward to the owner */
  int counted;              /* api_call was counted in Redis (allowed) before it was forwarded */
  int peek_class;           /* a rate-limit status call: the class and user read in Redis */
  int api_asked;            /* its count in Redis includes api_call */
  int has_charge;           /* a class was counted in Redis: in force where the call runs */
  struct charge charge;
  char peek_user[ID_MAX + 1];
  /* Forwarded (http_forward): to whom, its entry in that inbox, when. */
  char owner[32];
  char entry[48];           /* the XADD's id ("" not known: held while Redis was away) */
  uint64_t first_ms, sent_ms;
  int checking;             /* a LUA_FWD_CHECK is in flight */
  int last_check;           /* ... the one after which the caller is answered 503 (FWD bound) */
  int unsent;               /* no owner ever read it (deleted from a dead owner's inbox) */
  int moves;                /* answered "not mine" by an instance that had given the room up */
  const char *refuse;       /* refuse_counted: the 503's detail once api_call is counted (a static string) */
};

struct cluster {
  struct hub *h;
  uint64_t ana_erases;      /* h->history.erases when the analytics were last written */
  struct server *srv;
  uv_loop_t *loop;
  char inst[32];
  struct redis_url url;
  redisAsyncContext *cmd, *rd;
  int cmd_up, rd_up;
  uint64_t cmd_started, rd_started; /* connect attempts under way since */
  uint64_t read_issued;     /* when the reader's XREAD went out */
  uint64_t hb_unanswered;   /* when the oldest heartbeat SET not answered yet went out (0: none) */
  uint64_t up_since;        /* when both connections came (back) up */
  int backoff_ms;
  uv_timer_t timer, retry;
  uv_timer_t ana_wake;       /* a turn after an analytics write was held back (snapshot.c) */
  uv_check_t check;
  uv_timer_t stop_bound;     /* at cluster_stop: the command connection's goodbye waits this long at most */
  uint64_t shutdown_seen;    /* when the cluster's timer first saw the server shutting down */
  uint64_t stop_deadline;    /* when stop_bound frees the command connection */
  int reading;
  char inbox_pos[48];
  char bcast_pos[48];       /* "" until the broadcast stream's end was read at start */
  int bcast_asked;
  struct map rooms;         /* id -> croom */
  struct map links;         /* link id -> link */
  struct map remotes;       /* "inst/id" -> remote */
  struct map http_wait;     /* id -> fwd_http waiting for a response */
  struct pending *pend_head, *pend_tail;
  size_t npending;
  struct remote *to_free;
  uint64_t next_id;
  int stopping;
  struct cluster_stats st;
  size_t rooms_seen;        /* the hub's room count at the last claim_local sweep */
  const char *taken;        /* during a POST /webrtc/rooms dispatch: its room is live elsewhere */
  json_t *listing;          /* during a GET /webrtc/rooms dispatch: views of rooms owned elsewhere */
  /* The shared api_call verdict for the REST call being answered (counted
   * in Redis by the instance the client reached). */
  int api_verdict_on;
  struct ratelimit_result api_verdict;
  struct bus bus;
  struct map gates;         /* "%p" of a conn -> struct gate: messages waiting for the shared limiter */
  /* The shared limiter's answer for the message being handled (see gate_*). */
  int verdict_on;
  struct charge verdict;
  int joining;              /* owner_join called by the join gate: it joins now */
  /* The shared budget read for the rate-limit status call being answered. */
  int peek_on;
  int peek_class;
  char peek_user[ID_MAX + 1];
  struct ratelimit_result peek;
  /* Public-key tokens: no secret to derive the breakout grant key from, so
   * the instances share one random key kept in Redis (grantkey). */
  int grant_shared;
  int grant_loaded;         /* h->grant_key is the one read from Redis */
  struct feed *feeds;       /* during a rebuild (snap_session) */
  size_t nfeeds, cap_feeds;
  struct ptrvec sweep;      /* on_timer's rooms, kept between ticks (its capacity) */
  /* Shared files on any instance (files_fwd.c): the address the other
   * instances reach this one at, published as the heartbeat's value ("-":
   * none), and the files requests forwarded to their rooms' owners. */
  char addr[80];
  int addr_done;            /* addr was worked out (at the first tick, once listening) */
  struct ffwd *ffwds;       /* owned: forwards under way (a list) */
};

extern struct cluster *the_cluster; /* set by cluster_start: the net callbacks find it here */

static inline void key_of(char *out, const char *kind, const char *id) {
  snprintf(out, KEY_MAX, "huddle:%s:%s", kind, id);
}

static inline uint64_t now_ms(struct cluster *cl) { return uv_now(cl->loop); }

/* cluster.c */
/* SETs this instance's heartbeat (its value: cl->addr, "-" for none). */
void heartbeat_send(struct cluster *cl);

/* redis.c */
void redis_cmd(struct cluster *cl, redisCallbackFn *fn, void *priv, int hold, int argc, const char **argv,
               const size_t *lens);
const redisReply *reply_at(const redisReply *r, size_t i);
int reply_str(const redisReply *r, char *out, size_t n);
const redisReply *reply_field(const redisReply *fields, const char *name);
int reply_field_str(const redisReply *fields, const char *name, char *out, size_t n);
long long reply_field_int(const redisReply *fields, const char *name);
void inbox_send_cb(struct cluster *cl, const char *inst, redisCallbackFn *fn, void *priv, int nf,
                   const char **fv, const size_t *fl);
void inbox_send(struct cluster *cl, const char *inst, int nf, const char **fv, const size_t *fl);
void redis_connect(struct cluster *cl, int reader);
void redis_watchdog(struct cluster *cl);
/* The heartbeat SET's reply: the command connection answers. */
void redis_hb_cb(redisAsyncContext *ac, void *reply, void *priv);

/* lease.c */
struct croom *croom_get(struct cluster *cl, const char *id, int create);
void croom_drop(struct cluster *cl, struct croom *cr);
void acquire_cb(redisAsyncContext *ac, void *reply, void *priv);
void croom_acquire(struct cluster *cl, struct croom *cr, redisCallbackFn *fn, void *priv);
void croom_resolve(struct cluster *cl, struct croom *cr);
void croom_release(struct cluster *cl, struct croom *cr);
void renew_room(const char *k, void *v, void *arg);
void check_instances(struct cluster *cl);

/* owner.c */
void append_cb(redisAsyncContext *ac, void *reply, void *priv);
extern const struct bus_ops bus_redis_ops;
void remote_free_later(struct cluster *cl, struct remote *rm);
struct remote *remote_new(struct cluster *cl, const char *inst, const char *id, const char *room, int http);
void remotes_reap(struct cluster *cl);
void claims_from_fields(const redisReply *f, struct token_claims *tc);
void owner_join(struct cluster *cl, struct conn *c, const char *room_id, const struct token_claims *claims,
                int admitted, const char *rt, uint64_t last_seq, const char *grant);
void owner_open(struct cluster *cl, const redisReply *f, const char *inst, const char *id, const char *room,
                const char *key);
void owner_msg(struct cluster *cl, const redisReply *f, const char *key);
void owner_end(struct cluster *cl, const redisReply *f, const char *key);
void owner_http(struct cluster *cl, const redisReply *f, const char *inst, const char *id, const char *room);
void deferred_run(struct cluster *cl, struct croom *cr);

/* link.c */
void link_moved(struct cluster *cl, const char *inst, const char *id);
void link_probe(struct cluster *cl, const char *inst, const char *id, const char *room);
void link_send_open(struct cluster *cl, struct link *l);
void link_unlink(struct cluster *cl, struct link *l);
void link_recover(struct cluster *cl, struct link *l, const char *old);
void link_retarget(struct cluster *cl, struct link *l, const char *owner);
void stream_entry(struct cluster *cl, struct croom *cr, const redisReply *f);
void links_join_local(struct cluster *cl, struct croom *cr);

/* reader.c */
void reader_issue(struct cluster *cl);
void reader_wake(struct cluster *cl);

/* bcast.c */
void bcast_entry(struct cluster *cl, const redisReply *f);
void bcast_end_cb(redisAsyncContext *ac, void *reply, void *priv);

/* limiter.c */
extern const struct hub_limiter_ops redis_limiter;
void gate_push(struct cluster *cl, struct conn *c, const char *data, size_t len);
void gate_drop(struct cluster *cl, struct conn *c);
void counted_verdict(struct cluster *cl, int on);
/* Runs with ch in force (the limiter answers from it), then gives back what
 * it counted and the run did not spend. */
void charge_begin(struct cluster *cl, const struct charge *ch);
void charge_end(struct cluster *cl);
/* ch as an http entry's field and back (1 if s held one). */
void charge_format(const struct charge *ch, char *out, size_t n);
int charge_parse(struct charge *ch, const char *s);
/* A join that would create its room waits, behind nothing, for room_create
 * counted in Redis: 1 if it was held (owner_join runs again then). */
int join_gate(struct cluster *cl, struct conn *c, const char *room_id, const struct token_claims *claims,
              int admitted, const char *rt, uint64_t last_seq, const char *grant);
int status_call(struct cluster *cl, struct conn *c, const char *url);
/* cluster_on_request after the files check: counts the call (shared
 * api_call), then routes it. */
void request_here(struct conn *c);
/* A files call answered 503 here (not forwarded: files_fwd.c), counted
 * against api_call first like any REST call: 429 when over the budget. */
void refuse_counted(struct conn *c, const char *detail);

/* rest.c */
void fw_answer(struct cluster *cl, const char *id, const redisReply *f);
int fw_keep(struct cluster *cl, struct fwd_http *fw);
struct conn *fw_take(struct fwd_http *fw);
void fw_done(struct conn *c);
void fw_dispatch_here(struct cluster *cl, struct fwd_http *fw);
void fwd_check(struct cluster *cl);
void claim_local(const char *k, void *v, void *arg);
struct fwd_http *fw_new(struct cluster *cl, struct conn *c, const char *room);
void route_request(struct conn *c);
/* Publishes the views of the rooms of s (struct croom *) owned here. */
void rooms_publish(struct cluster *cl, const struct ptrvec *s);
/* Publishes the view of room (owned and live here) now: a room made by
 * POST /webrtc/rooms is listed through every instance once its creation is
 * answered, not from the next tick. */
void room_publish_now(struct cluster *cl, const char *room);

/* files_fwd.c */
/* A files request for a room owned elsewhere (sync checks, then a lease
 * lookup): 1 when it was taken (forwarded, refused, or waiting for the
 * lookup), 0 when it is answered here as before. at_head: from the head
 * hook of a request with a body. */
int ffwd_try(struct cluster *cl, struct conn *c, int at_head);
/* Works out cl->addr (once): --advertise-addr, or the bound address. */
void ffwd_addr(struct cluster *cl);
/* Cuts every forward (shutdown). */
void ffwd_close_all(struct cluster *cl);

/* snapshot.c */
struct participant;
struct waiter;
struct room;
/* Where a member's or waiter's session is connected: its instance and its
 * link there ("" and "" for none). */
typedef void (*snap_where_cb)(const void *arg, const void *session, const char **inst, const char **link);
/* What snap_apply does with sessions (a rebuild: conns). */
struct snap_sessions {
  /* The session of a member's or waiter's entry m, or NULL (its instance
   * is gone). */
  void *(*session)(void *arg, json_t *m);
  /* Member p was given session (p->session is set). */
  void (*member)(void *arg, void *session, struct participant *p);
  /* The waiter made for session, or NULL (out of memory: session is to be
   * closed). */
  void (*waiter)(void *arg, void *session, struct waiter *w);
  void *arg;
};
/* The snapshot of r (new reference; NULL if out of memory). */
json_t *snap_encode(const struct room *r, snap_where_cb where, const void *arg);
void snapshot_write(struct cluster *cl, struct croom *cr);
/* Writes the room's analytics for a next owner if they changed (at most
 * every ANA_MS): the aggregates, and the events and audit entries recorded
 * since the last write appended to capped lists. */
void analytics_write(struct cluster *cl, struct croom *cr);
/* Applies what analytics_write wrote (the rebuild's reply elements). */
void analytics_restore(struct room *room, const redisReply *agg, const redisReply *ev, const redisReply *au);
/* A snapshot's text as JSON: an object (new reference), or NULL. */
json_t *snap_parse(const char *txt, size_t len);
/* The snapshot's seq (0 without). */
uint64_t snap_seq_of(const json_t *snap);
/* Applies snap to room (new, empty): its creation time, settings, members
 * (each with the session ss gives it, or away since now), hands, bans,
 * waiters (those with a session). Not the family, the seq or the log (takeover.c).
 * Lists at most max of the members put away in away (*nlisted of them);
 * returns how many were put away. */
size_t snap_apply(struct room *room, json_t *snap, uint64_t now, const struct snap_sessions *ss,
                  struct participant **away, size_t max, size_t *nlisted);

/* takeover.c */
struct outbuf;
/* An L entry's frame b (logged at ms, the owner's clock) after the erases
 * published since (erases: LUA_REBUILD's {user, ms of the erase} pairs;
 * NULL for none): b, a new frame (the user's chat as a tombstone), or NULL
 * when an erase drops it. Consumes b. */
struct outbuf *erases_apply(struct outbuf *b, long long ms, const redisReply *erases);
void become_owner(struct cluster *cl, struct croom *cr);

/* wire.c: pure, unit tested */
/* "seq-sub" into out: a room stream entry's id (sub 0: the room-log entry
 * of seq; sub k > 0: the k-th session entry after it). */
void stream_id_format(char *out, size_t n, uint64_t seq, uint64_t sub);
/* A stream entry id "a-b" (two decimal numbers that fit in 64 bits).
 * Returns 0, or -1 (a and b untouched). */
int stream_id_parse(const char *id, uint64_t *a, uint64_t *b);
/* A lease value "instance:fence": the instance into owner (n bytes; "" and
 * fence 0 without a ':'). Returns 0, or -1 without a ':'. fence may be NULL. */
int lease_parse(const char *val, char *owner, size_t n, uint64_t *fence);
/* 1 if the lease value val names inst (the test the fenced scripts make:
 * val starts with "inst:"), else 0. */
int lease_held_by(const char *val, const char *inst);
/* The role, permission overrides and admin flag of claims as an open's
 * "cl" field, and back (claims_parse leaves the other claims alone).
 * claims_parse returns 0, or -1 when cs is not four numbers or names no
 * role (the role is then viewer). */
void claims_to_fields(const struct token_claims *tc, char *buf, size_t n);
int claims_parse(const char *cs, struct token_claims *tc);
/* A message queue (a link's messages before its owner took them, a
 * deferred open's, a rebuild's feed): u32 length + bytes each, in order.
 * msgq_push returns 0 or -1 (allocation). msgq_next gives the message at
 * *off and moves *off past it: 1, or 0 at the end (a truncated tail is the
 * end). */
int msgq_push(struct buf *q, const char *data, size_t len);
int msgq_next(const struct buf *q, size_t *off, const char **data, uint32_t *len);
/* 1 if an HTTP answer's head says "Connection: keep-alive" (http_reply's
 * own header: exact spelling). */
int answer_keeps(const char *d, size_t n);
/* 1 if url[0..len) is a files URL (/webrtc/rooms/{id}/files, /files/...,
 * /files?...) with a valid room id, copied into room (n bytes); else 0. */
int files_url_room(const char *url, size_t len, char *room, size_t n);
/* "ip:port" or "[ip6]:port" into sa. Returns 0, or -1. */
struct sockaddr_storage;
int addr_parse(const char *s, struct sockaddr_storage *sa);
/* The address to advertise into out (n bytes): adv when set, else bound
 * unless its IP is a wildcard (out ""). Returns 0, or -1 when adv is set
 * and not an ip:port. */
int addr_advertised(const char *adv, const char *bound, char *out, size_t n);
/* A header of a forwarded files request. */
struct fwd_hdr { const char *name; const char *value; size_t len; };
enum { FWD_BODY_NONE, FWD_BODY_LENGTH, FWD_BODY_CHUNKED };
/* The head of a files request forwarded to its room's owner, appended to
 * out: the method and target as sent, "Connection: close", the headers h
 * (those with a value), X-Huddle-Forwarded: inst, X-Forwarded-For:
 * client_ip, and the body's framing. Returns 0, or -1 (a value with CR or
 * LF, or out of memory). */
int fwd_head_build(struct buf *out, const char *method, const char *url, size_t url_len,
                   const struct fwd_hdr *h, size_t nh, const char *inst, const char *client_ip, int framing,
                   uint64_t content_length);
/* Parses url into u. Returns 0, or -1 with err. */
int redis_url_parse(struct redis_url *u, const char *url, char *err, size_t n);
/* The reconnect delay after one of ms: doubled, at most BACKOFF_MAX_MS. */
int backoff_next(int ms);
/* map_each's fn: appends v to arg (a struct ptrvec, zeroed at first); an
 * allocation failure counts in missed instead. ptrvec_free frees the list
 * and zeroes it. */
void ptrvec_push(const char *k, void *v, void *arg);
void ptrvec_free(struct ptrvec *pv);

#endif
