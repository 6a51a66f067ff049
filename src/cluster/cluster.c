/* Several instances through Redis: leases, room streams, forwarding to the
 * owner, takeover (see cluster.h and docs/adr/0006-several-instances.md).
 *
 * Redis keys (prefix huddle:):
 *   lease:{room}   "instance:fence", PX LEASE_MS, renewed by the owner
 *   fence:{room}   INCR'd for every new owner
 *   stream:{room}  the room's stream: id "seq-0" for a room-log entry (L),
 *                  "seq-k" (k > 0) for a frame to one session (S) or a
 *                  session close (C) after that seq; MAXLEN ~ room-log-max
 *   snap:{room}    JSON snapshot of the room's state (members, roles,
 *                  overrides, settings, hands, bans, seq)
 *   inbox:{inst}   what other instances send this one (opens, messages,
 *                  ends, REST calls and their responses); its reader trims
 *                  what it read before running messages and REST calls
 *   hb:{inst}      heartbeat, PX LEASE_MS
 *   grant:{jti}    a spent breakout grant, PX until the grant expires
 *   rooms          sorted set: rooms live on some instance, scored by when
 *                  their entry expires (renewed by the owner every tick)
 *   roomview       hash: room id -> the owner's JSON view (GET /webrtc/rooms)
 *   bcast          what every instance applies (a user's erase); each
 *                  instance reads it from where it started
 * Two connections: one for commands (pipelined, in call order) and one
 * reading (XREAD BLOCK over the inbox and the streams of rooms owned
 * elsewhere that have local members). */
#define LOG_MODULE "cluster"
#include "log.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/grant.h"
#include "cluster/cluster.h"
#include "lib/buf.h"
#include "lib/ids.h"
#include "lib/map.h"
#include "net/http.h"
#include "net/proxy.h"
#include "net/ws.h"
#include "room/command.h"
#include "room/durable.h"
#include "room/op.h"
#include "room/room.h"
#include "signal/signal.h"

#define LEASE_MS 3000            /* a dead owner's rooms are taken over after this */
#define TIMER_MS 500             /* heartbeat, renewals, takeover checks */
#define INBOX_MAX 100000
#define PENDING_MAX 200000       /* commands held while Redis is away */
#define LINK_QUEUE_MAX 256       /* client messages held before the owner is known */
#define LINK_MOVES_MAX 8         /* refused opens of one link before its client is told to reconnect */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define KEY_MAX 160
#define FWD_CHECK_MS 1000        /* a forwarded REST call unanswered this long: is its owner alive? */
#define BCAST_MAX 1000           /* entries kept in the broadcast stream */
#define RECOVER_SCAN "10000"     /* newest entries of a dead owner's inbox searched for a link's messages */
#define BCAST_KEY "huddle:bcast:"
#define ERASE_CLOSE_CODE 4007    /* an erased user's connection (as src/room/durable.c) */

/* ---- scripts ---- */

/* KEYS lease, stream; ARGV "inst:", id, maxlen, field, value, ... */
static const char LUA_APPEND[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v or string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end "
    "return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], ARGV[2], unpack(ARGV, 4))";
/* KEYS lease, snap; ARGV "inst:", json */
static const char LUA_SNAP[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v or string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end "
    "redis.call('SET', KEYS[2], ARGV[2]) return 1";
/* KEYS lease, fence, stream, hb of the last known owner; ARGV inst, ttl.
 * Returns {owned 0/1, lease value or '', last stream id or ''}. */
static const char LUA_ACQUIRE[] =
    "local v = redis.call('GET', KEYS[1]) "
    "local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1) "
    "local lid = '' if #last > 0 then lid = last[1][1] end "
    "if v then "
    "  if string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {1, v, lid} end "
    "  return {0, v, lid} end "
    "if redis.call('EXISTS', KEYS[4]) == 1 then return {0, '', lid} end "
    "local f = redis.call('INCR', KEYS[2]) "
    "v = ARGV[1] .. ':' .. f "
    "redis.call('SET', KEYS[1], v, 'PX', ARGV[2]) "
    "return {1, v, lid}";
/* KEYS lease; ARGV value, ttl */
static const char LUA_RENEW[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end return 0";
/* KEYS lease, snap, stream; ARGV value. A room that ended takes its
 * snapshot and stream with it: a later room of the same id starts empty
 * instead of being rebuilt with the old one's members. */
static const char LUA_RELEASE[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) return 1 end "
    "return 0";
/* KEYS snap, stream, bcast. Returns {snapshot or '', entries, live
 * instances of the snapshot, erases: {user, ms of the erase}...}. */
static const char LUA_REBUILD[] =
    "local s = redis.call('GET', KEYS[1]) "
    "local e = redis.call('XRANGE', KEYS[2], '-', '+') "
    "local alive = {} "
    "if s then local ok, snap = pcall(cjson.decode, s) "
    "  if ok and snap.members then for _, m in ipairs(snap.members) do "
    "    if m.inst and m.inst ~= '' and redis.call('EXISTS', 'huddle:hb:' .. m.inst) == 1 then alive[#alive + 1] = m.inst end "
    "  end end "
    "  if ok and type(snap.waiters) == 'table' then for _, m in ipairs(snap.waiters) do "
    "    if m.inst and m.inst ~= '' and redis.call('EXISTS', 'huddle:hb:' .. m.inst) == 1 then alive[#alive + 1] = m.inst end "
    "  end end end "
    "local er = {} "
    "for _, b in ipairs(redis.call('XRANGE', KEYS[3], '-', '+')) do "
    "  local f = b[2] "
    "  for i = 1, #f, 2 do if f[i] == 'k' and f[i + 1] == 'erase' then "
    "    for j = 1, #f, 2 do if f[j] == 'u' then er[#er + 1] = {f[j + 1], string.match(b[1], '^(%d+)')} end end "
    "  end end "
    "end "
    "return {s or '', e, alive, er}";

/* KEYS rooms, roomview; ARGV ttl, id, view, id, view, ... */
static const char LUA_ROOMS_PUT[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "for i = 2, #ARGV, 2 do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) "
    "  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end return 1";
/* KEYS rooms, roomview; ARGV "inst:". Forgets expired entries, returns the
 * views of rooms whose lease is held by another instance. */
static const char LUA_ROOMS_LIST[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now) "
    "for _, id in ipairs(gone) do redis.call('HDEL', KEYS[2], id) end "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "local out = {} "
    "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
    "  local v = redis.call('GET', 'huddle:lease:' .. id) "
    "  if v and string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then "
    "    local j = redis.call('HGET', KEYS[2], id) if j then out[#out + 1] = j end end "
    "end return out";

/* KEYS hb:{owner}, inbox:{owner}; ARGV the forwarded call's inbox entry id
 * ("" unknown). Returns {alive, removed}: with the owner's heartbeat gone,
 * removed is 1 when the entry was still in its inbox, i.e. the owner never
 * read it (an owner trims its inbox up to a REST call before running it:
 * inbox_mark_read); it is deleted, so that it never will be. Never from a
 * live owner: its XREAD reply may hold the entry already. */
static const char LUA_FWD_CHECK[] =
    "local alive = redis.call('EXISTS', KEYS[1]) "
    "if alive == 1 or ARGV[1] == '' then return {alive, 0} end "
    "return {0, redis.call('XDEL', KEYS[2], ARGV[1])}";

/* KEYS hb:{old owner}, inbox:{old owner}; ARGV instance, link. nil while the
 * old owner beats; else the messages of that link it never read (still in
 * its inbox: inbox_mark_read), in order, deleted so that they never will
 * be read there. Looks at the newest RECOVER_SCAN entries only. */
static const char LUA_RECOVER[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return false end "
    "local es = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3]) local out = {} "
    "for n = #es, 1, -1 do local e = es[n] local f = e[2] local k, i, id, d "
    "  for j = 1, #f, 2 do local v = f[j + 1] "
    "    if f[j] == 'k' then k = v elseif f[j] == 'i' then i = v elseif f[j] == 'id' then id = v "
    "    elseif f[j] == 'd' then d = v end end "
    "  if k == 'msg' and i == ARGV[1] and id == ARGV[2] and d then "
    "    out[#out + 1] = d redis.call('XDEL', KEYS[2], e[1]) end "
    "end return out";

/* ---- state ---- */

struct pending {            /* a command held while Redis is away */
  struct pending *next;
  int argc;
  char **argv;
  size_t *lens;
};

struct link;

struct croom {              /* what this instance knows of a room */
  char id[ID_MAX + 1];
  int owned;                /* this instance holds the lease */
  int acquiring;            /* an ACQUIRE is in flight */
  int rebuilding;
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
  char peek_user[ID_MAX + 1];
  /* Forwarded (http_forward): to whom, its entry in that inbox, when. */
  char owner[32];
  char entry[48];           /* the XADD's id ("" not known: held while Redis was away) */
  uint64_t first_ms, sent_ms;
  int checking;             /* a LUA_FWD_CHECK is in flight */
  int last_check;           /* ... the one after which the caller is answered 503 (FWD bound) */
  int unsent;               /* no owner ever read it (deleted from a dead owner's inbox) */
};

struct cluster {
  struct hub *h;
  struct server *srv;
  uv_loop_t *loop;
  char inst[32];
  char host[256];
  int port;
  char user[128], pass[256];
  int db;
  redisAsyncContext *cmd, *rd;
  int cmd_up, rd_up;
  uint64_t cmd_started, rd_started; /* connect attempts under way since */
  uint64_t read_issued;     /* when the reader's XREAD went out */
  uint64_t up_since;        /* when both connections came (back) up */
  int backoff_ms;
  uv_timer_t timer, retry;
  uv_check_t check;
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
  char verdict_user[ID_MAX + 1];
  int verdict_has[RATE__COUNT];
  struct ratelimit_result verdict[RATE__COUNT];
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
};

static struct cluster *the_cluster; /* set by cluster_start: the net callbacks find it here */

static void reader_issue(struct cluster *cl);
static void connect_ctx(struct cluster *cl, int reader);
static void room_resolve(struct cluster *cl, struct croom *cr);
static void links_join_local(struct cluster *cl, struct croom *cr);
static void link_send_open(struct cluster *cl, struct link *l);
static void link_unlink(struct cluster *cl, struct link *l);
static void reader_wake(struct cluster *cl);
static void link_retarget(struct cluster *cl, struct link *l, const char *owner);
static void gate_push(struct cluster *cl, struct conn *c, const char *data, size_t len);
static void gate_drop(struct cluster *cl, struct conn *c);
static void counted_verdict(struct cluster *cl, int on);

static void key_of(char *out, const char *kind, const char *id) {
  snprintf(out, KEY_MAX, "huddle:%s:%s", kind, id);
}

static uint64_t now_ms(struct cluster *cl) { return uv_now(cl->loop); }

/* ---- commands ---- */

static void pending_push(struct cluster *cl, int argc, const char **argv, const size_t *lens) {
  if (cl->npending >= PENDING_MAX) {
    log_warn("redis_queue_full dropped=1");
    return;
  }
  struct pending *p = calloc(1, sizeof(*p));
  if (p == NULL) return;
  p->argc = argc;
  p->argv = calloc((size_t)argc, sizeof(char *));
  p->lens = calloc((size_t)argc, sizeof(size_t));
  if (p->argv == NULL || p->lens == NULL) goto fail;
  for (int i = 0; i < argc; i++) {
    size_t n = lens ? lens[i] : strlen(argv[i]);
    if ((p->argv[i] = malloc(n + 1)) == NULL) goto fail;
    memcpy(p->argv[i], argv[i], n);
    p->argv[i][n] = '\0';
    p->lens[i] = n;
  }
  if (cl->pend_tail) cl->pend_tail->next = p;
  else cl->pend_head = p;
  cl->pend_tail = p;
  cl->npending++;
  if (cl->npending > cl->st.queued_max) cl->st.queued_max = cl->npending;
  return;
fail:
  if (p->argv)
    for (int i = 0; i < argc; i++) free(p->argv[i]);
  free(p->argv);
  free(p->lens);
  free(p);
}

static void pending_free(struct pending *p) {
  for (int i = 0; i < p->argc; i++) free(p->argv[i]);
  free(p->argv);
  free(p->lens);
  free(p);
}

/* Sends a command on the command connection. With hold, a command that
 * cannot be sent now is kept (in order) until Redis is back; otherwise fn
 * runs at once with a NULL reply. */
static void cmd(struct cluster *cl, redisCallbackFn *fn, void *priv, int hold, int argc, const char **argv,
                const size_t *lens) {
  if (cl->cmd_up && cl->pend_head == NULL &&
      redisAsyncCommandArgv(cl->cmd, fn, priv, argc, argv, lens) == REDIS_OK)
    return;
  if (hold) {
    pending_push(cl, argc, argv, lens);
    return;
  }
  if (fn) fn(NULL, NULL, priv);
}

static void pending_flush(struct cluster *cl) {
  while (cl->cmd_up && cl->pend_head) {
    struct pending *p = cl->pend_head;
    if (redisAsyncCommandArgv(cl->cmd, NULL, NULL, p->argc, (const char **)p->argv, p->lens) != REDIS_OK) break;
    cl->pend_head = p->next;
    if (cl->pend_head == NULL) cl->pend_tail = NULL;
    cl->npending--;
    pending_free(p);
  }
}

static const redisReply *arr_at(const redisReply *r, size_t i) {
  return r && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

static int reply_str(const redisReply *r, char *out, size_t n) {
  if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) {
    if (n) out[0] = '\0';
    return -1;
  }
  snprintf(out, n, "%.*s", (int)r->len, r->str);
  return 0;
}

/* Value of field name in a stream entry's field list, or NULL. */
static const redisReply *field(const redisReply *fields, const char *name) {
  if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) return NULL;
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const redisReply *k = fields->element[i];
    if (k->type == REDIS_REPLY_STRING && strlen(name) == k->len && memcmp(k->str, name, k->len) == 0)
      return fields->element[i + 1];
  }
  return NULL;
}

static int field_str(const redisReply *fields, const char *name, char *out, size_t n) {
  return reply_str(field(fields, name), out, n);
}

static long long field_int(const redisReply *fields, const char *name) {
  char b[32];
  if (field_str(fields, name, b, sizeof(b)) != 0) return 0;
  return strtoll(b, NULL, 10);
}

/* XADD to another instance's inbox (held while Redis is away; then fn is
 * not called: priv must not need freeing). */
static void inbox_send_cb(struct cluster *cl, const char *inst, redisCallbackFn *fn, void *priv, int nf,
                          const char **fv, const size_t *fl) {
  char key[KEY_MAX];
  key_of(key, "inbox", inst);
  const char *argv[32];
  size_t lens[32];
  int n = 0;
  argv[n] = "XADD", lens[n++] = 4;
  argv[n] = key, lens[n++] = strlen(key);
  argv[n] = "MAXLEN", lens[n++] = 6;
  argv[n] = "~", lens[n++] = 1;
  char mx[16];
  snprintf(mx, sizeof(mx), "%d", INBOX_MAX);
  argv[n] = mx, lens[n++] = strlen(mx);
  argv[n] = "*", lens[n++] = 1;
  for (int i = 0; i < nf && n < 32; i++) {
    argv[n] = fv[i];
    lens[n++] = fl ? fl[i] : strlen(fv[i]);
  }
  cmd(cl, fn, priv, 1, n, argv, lens);
}

static void inbox_send(struct cluster *cl, const char *inst, int nf, const char **fv, const size_t *fl) {
  inbox_send_cb(cl, inst, NULL, NULL, nf, fv, fl);
}

/* ---- rooms ---- */

static struct croom *croom_get(struct cluster *cl, const char *id, int create) {
  struct croom *cr = map_get(&cl->rooms, id);
  if (cr || !create) return cr;
  cr = calloc(1, sizeof(*cr));
  if (cr == NULL) return NULL;
  snprintf(cr->id, sizeof(cr->id), "%s", id);
  if (map_put(&cl->rooms, id, cr) != 0) {
    free(cr);
    return NULL;
  }
  return cr;
}

static void croom_drop(struct cluster *cl, struct croom *cr) {
  while (cr->deferred) {
    struct remote *rm = cr->deferred;
    cr->deferred = rm->defer_next;
    if (!rm->closed) map_del(&cl->remotes, rm->key);
    buf_free(&rm->q);
    buf_free(&rm->grant);
    free(rm->fake);
    free(rm);
  }
  map_del(&cl->rooms, cr->id);
  free(cr);
}

/* Appends to a room's stream, fenced: refused unless this instance holds
 * the room's lease. */
static void append_cb(redisAsyncContext *ac, void *reply, void *priv);

static void stream_append(struct cluster *cl, struct croom *cr, const char *id, int nf, const char **fv,
                          const size_t *fl) {
  char lease[KEY_MAX], stream[KEY_MAX], prefix[40], mx[16];
  key_of(lease, "lease", cr->id);
  key_of(stream, "stream", cr->id);
  snprintf(prefix, sizeof(prefix), "%s:", cl->inst);
  snprintf(mx, sizeof(mx), "%d", cl->h->cfg->room_log_max);
  const char *argv[40];
  size_t lens[40];
  int n = 0;
  argv[n] = "EVAL", lens[n++] = 4;
  argv[n] = LUA_APPEND, lens[n++] = sizeof(LUA_APPEND) - 1;
  argv[n] = "2", lens[n++] = 1;
  argv[n] = lease, lens[n++] = strlen(lease);
  argv[n] = stream, lens[n++] = strlen(stream);
  argv[n] = prefix, lens[n++] = strlen(prefix);
  argv[n] = id, lens[n++] = strlen(id);
  argv[n] = mx, lens[n++] = strlen(mx);
  for (int i = 0; i < nf && n < 40; i++) {
    argv[n] = fv[i];
    lens[n++] = fl ? fl[i] : strlen(fv[i]);
  }
  cl->st.stream_entries_out++;
  cmd(cl, append_cb, NULL, 1, n, argv, lens);
}

static void append_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (cl == NULL || r == NULL || r->type != REDIS_REPLY_ERROR) return;
  if (strstr(r->str, "FENCED")) {
    cl->st.fenced++;
    log_warn("stream_append_fenced reason=\"%s\"", r->str);
  } else {
    log_warn("stream_append_failed reason=\"%s\"", r->str);
  }
}

/* ---- the owner: publishing ---- */

static void deliver_local(struct hub *h, const struct bus_msg *m, struct participant *p, struct buf *rcpt) {
  if (p == NULL || p->session == NULL) return;
  if (m->only_perm && (p->perms & m->only_perm) != m->only_perm) return;
  if (m->type >= 0 && m->type < HUB_STATS_TYPES) h->stats.out_by_type[m->type]++;
  struct conn *c = p->session;
  if (c->proxy) {
    struct remote *rm = c->cluster;
    if (rcpt->len) buf_append(rcpt, ",", 1);
    buf_append(rcpt, rm->key, strlen(rm->key));
    return;
  }
  ws_send(c, outbuf_ref(m->frame));
}

/* Frames go to this instance's sockets at once; one stream entry carries the
 * frame once for every other instance, with the sessions it is for, and the
 * recipient filter (for a new owner's room log). */
static int redis_publish(struct bus *b, const struct bus_msg *m, bus_publish_cb cb, void *arg) {
  struct cluster *cl = b->arg;
  struct hub *h = cl->h;
  struct room *r = hub_room_find(h, m->room_id);
  struct buf rcpt = {0};
  if (r) {
    if (m->to) {
      deliver_local(h, m, room_participant_find(r, m->to), &rcpt);
      if (m->also && strcmp(m->also, m->to) != 0) deliver_local(h, m, room_participant_find(r, m->also), &rcpt);
    } else {
      for (struct participant *p = r->head; p; p = p->next) {
        if (m->except && strcmp(p->user_id, m->except) == 0) continue;
        deliver_local(h, m, p, &rcpt);
      }
    }
  }
  struct croom *cr = croom_get(cl, m->room_id, 0);
  if (cr && cr->owned) {
    char id[48], type[12], pm[12], ts[24];
    snprintf(id, sizeof(id), "%" PRIu64 "-0", m->seq);
    snprintf(type, sizeof(type), "%d", m->type);
    snprintf(pm, sizeof(pm), "%u", m->only_perm);
    snprintf(ts, sizeof(ts), "%" PRIu64, hub_now_ms());
    const char *fv[] = {"k", "L", "f", (const char *)m->frame->data, "r", rcpt.data ? rcpt.data : "",
                        "t", type, "to", m->to ? m->to : "", "ex", m->except ? m->except : "",
                        "al", m->also ? m->also : "", "pm", pm, "ms", ts, "o", cl->inst};
    size_t fl[20];
    for (int i = 0; i < 20; i++) fl[i] = i == 3 ? m->frame->len : i == 5 ? rcpt.len : strlen(fv[i]);
    stream_append(cl, cr, id, 20, fv, fl);
    cr->last_seq = m->seq;
    cr->sub = 0;
    /* Relayed and chat-like messages change no state a new owner needs. */
    switch (m->type) {
    case MSG_CHAT_MESSAGE: case MSG_REACTION: case MSG_OFFER: case MSG_ANSWER: case MSG_ICE_CANDIDATE:
    case MSG_E2EE_KEY_EXCHANGE: case MSG_E2EE_RATCHET_UPDATE: case MSG_FILE_SHARE_PROGRESS:
      break;
    default:
      cr->dirty = 1;
    }
  }
  buf_free(&rcpt);
  if (cb) cb(arg, 0);
  return 0;
}

static int redis_replay(struct bus *b, const char *room_id, uint64_t after_seq, bus_deliver_cb deliver,
                        void *arg) {
  return BUS_E_NOTSUP; /* the owner's room log is rebuilt from the stream at takeover */
}

static int redis_healthy(struct bus *b) { return 1; } /* degraded, not unavailable: see health */

static void redis_close(struct bus *b) {}

static const struct bus_ops bus_redis_ops = {"redis", redis_publish, redis_replay, redis_healthy, redis_close};

/* ---- the owner: sessions of clients connected elsewhere ---- */

static void remote_free_later(struct cluster *cl, struct remote *rm) {
  rm->free_next = cl->to_free;
  cl->to_free = rm;
}

/* An S or C entry for one remote session, ordered after the room's last L. */
static void session_entry(struct cluster *cl, struct remote *rm, int nf, const char **fv, const size_t *fl) {
  struct croom *cr = croom_get(cl, rm->room, 0);
  if (cr == NULL || !cr->owned) return;
  char id[48];
  snprintf(id, sizeof(id), "%" PRIu64 "-%" PRIu64, cr->last_seq, ++cr->sub);
  stream_append(cl, cr, id, nf, fv, fl);
  cr->dirty = 1;
}

static void http_answer(struct cluster *cl, struct remote *rm);

static void remote_write(struct conn *c, struct outbuf *b) {
  struct remote *rm = c->cluster;
  struct cluster *cl = the_cluster;
  if (rm->http) {
    buf_append(&rm->resp, b->data, b->len);
    /* A held call's answer (one write: http_reply) goes back now. The
     * handler's http_request_done then finds the conn closing and leaves
     * it alone (there is no socket, and no next request, here). */
    if (rm->held && !c->closing) {
      c->closing = 1;
      http_answer(cl, rm);
    }
  } else if (!rm->closed) {
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRIu64, hub_now_ms());
    const char *fv[] = {"k", "S", "f", (const char *)b->data, "r", rm->key, "ms", ts};
    size_t fl[] = {1, 1, 1, b->len, 1, strlen(rm->key), 2, strlen(ts)};
    session_entry(cl, rm, 8, fv, fl);
  }
  outbuf_unref(b);
}

static void remote_ws_close(struct conn *c, int code, const char *reason) {
  struct remote *rm = c->cluster;
  struct cluster *cl = the_cluster;
  if (rm->closed || rm->http) return;
  rm->closed = 1;
  cl->srv->handlers.ws_end(c, CONN_END_LOCAL, code);
  char cs[12];
  snprintf(cs, sizeof(cs), "%d", code);
  const char *fv[] = {"k", "C", "r", rm->key, "c", cs, "why", reason ? reason : ""};
  session_entry(cl, rm, 8, fv, NULL);
  map_del(&cl->remotes, rm->key);
  remote_free_later(cl, rm);
}

static void remote_end(struct conn *c) {
  struct remote *rm = c->cluster;
  if (!rm->http) remote_ws_close(c, 1000, "");
}

static const struct conn_proxy remote_proxy = {remote_write, remote_end, remote_ws_close};

static struct remote *remote_new(struct cluster *cl, const char *inst, const char *id, const char *room, int http) {
  struct remote *rm = calloc(1, sizeof(*rm));
  struct conn *c = calloc(1, sizeof(*c));
  if (c && http) c->req = calloc(1, sizeof(*c->req)); /* a forwarded request: no parser runs */
  if (rm == NULL || c == NULL || (http && c->req == NULL)) {
    free(rm);
    if (c) free(c->req);
    free(c);
    return NULL;
  }
  snprintf(rm->key, sizeof(rm->key), "%s/%s", inst, id);
  snprintf(rm->inst, sizeof(rm->inst), "%s", inst);
  snprintf(rm->room, sizeof(rm->room), "%s", room);
  rm->http = http;
  rm->fake = c;
  c->srv = cl->srv;
  c->kind = http ? CONN_HTTP : CONN_WS;
  c->proxy = &remote_proxy;
  c->cluster = rm;
  snprintf(rm->ip, sizeof(rm->ip), "instance:%s", inst);
  c->ip = rm->ip;
  if (!http && map_put(&cl->remotes, rm->key, rm) != 0) {
    free(rm);
    free(c);
    return NULL;
  }
  return rm;
}

/* Owner side: the answer to a forwarded REST call goes back to the instance
 * the client reached; the remote is freed after this loop turn. */
static void http_answer(struct cluster *cl, struct remote *rm) {
  struct conn *c = rm->fake;
  const char *id = strchr(rm->key, '/') + 1;
  const char *fv[] = {"k", "resp", "id", id, "d", rm->resp.data ? rm->resp.data : ""};
  size_t fl[] = {1, 4, 2, strlen(id), 1, rm->resp.len};
  inbox_send(cl, rm->inst, 6, fv, fl);
  buf_free(&c->req->url), buf_free(&c->req->hdr[HDR_AUTHORIZATION]);
  buf_free(&c->req->hdr[HDR_CONTENT_TYPE]), buf_free(&c->req->body);
  remote_free_later(cl, rm);
}

static void remotes_reap(struct cluster *cl) {
  while (cl->to_free) {
    struct remote *rm = cl->to_free;
    cl->to_free = rm->free_next;
    buf_free(&rm->resp);
    buf_free(&rm->q);
    free(rm->fake->req); /* its bufs were freed after the dispatch */
    buf_free(&rm->grant);
    free(rm->fake);
    free(rm);
  }
}

/* Admission and join of a connection on the owner (a local one whose room
 * was not owned yet, or a remote one). Refusals after the upgrade: the
 * error, then close 1008. */
static void owner_join(struct cluster *cl, struct conn *c, const char *room_id, const struct token_claims *claims,
                       int admitted, const char *rt, uint64_t last_seq, const char *grant) {
  struct hub *h = cl->h;
  int64_t retry = 0;
  struct token_claims gc;
  enum api_err e = API_OK;
  /* A breakout grant: the family lives here, so its checks (the rooms, the
   * assignment, the member's standing) and the claims are the owner's. Its
   * single use was already recorded in Redis by the instance it reached. */
  if (grant && grant[0]) {
    e = op_grant_check(h, grant, room_id, &gc, 1);
    claims = &gc;
    admitted = 1;
  }
  if (e == API_OK) e = hub_admission_check(h, room_id, claims, admitted, &retry);
  if (e != API_OK) {
    log_info("ws_refused room=%s user=%s code=%s", room_id, claims->sub, api_err_code(e));
    signal_error(c, e, NULL, NULL, retry);
    ws_close(c, 1008, api_err_code(e));
    return;
  }
  signal_join(c, room_id, claims, admitted, rt, last_seq);
}

static void claims_to_fields(const struct token_claims *tc, char *buf, size_t n) {
  snprintf(buf, n, "%d,%u,%u,%d", (int)tc->role, tc->perms_set, tc->perms_val, tc->admin);
}

/* The role, permission overrides and admin flag of claims_to_fields. */
static void claims_parse(const char *cs, struct token_claims *tc) {
  int role = 0, admin = 0;
  unsigned ps = 0, pv = 0;
  sscanf(cs, "%d,%u,%u,%d", &role, &ps, &pv, &admin);
  tc->role = (enum room_role)role;
  tc->perms_set = ps;
  tc->perms_val = pv;
  tc->admin = admin;
}

static void claims_from_fields(const redisReply *f, struct token_claims *tc) {
  memset(tc, 0, sizeof(*tc));
  field_str(f, "u", tc->sub, sizeof(tc->sub));
  field_str(f, "n", tc->name, sizeof(tc->name));
  field_str(f, "rm", tc->room, sizeof(tc->room));
  char cs[64];
  field_str(f, "cl", cs, sizeof(cs));
  claims_parse(cs, tc);
}

/* An open that came to an instance that does not own its room (any more):
 * the sender resolves the owner again and sends the open there itself, so
 * its client sees nothing of it. */
static void open_refused(struct cluster *cl, const char *inst, const char *id, const char *room) {
  const char *fv[] = {"k", "moved", "i", cl->inst, "id", id, "room", room};
  inbox_send(cl, inst, 8, fv, NULL);
}

/* The sender's side: the instance its link's open went to no longer owns
 * the room. That instance is alive, so its heartbeat is no reason to wait:
 * the room is resolved afresh (taken here, or found elsewhere) and the open
 * goes again with the client's messages since. */
static void link_moved(struct cluster *cl, const char *inst, const char *id) {
  struct link *l = map_get(&cl->links, id);
  if (l == NULL || l->room == NULL || !l->opened || l->confirmed || strcmp(l->sent_to, inst) != 0) return;
  struct croom *cr = l->room;
  if (++l->moves > LINK_MOVES_MAX) {
    struct conn *c = l->c;
    log_warn("open_refused room=%s owner=%s moves=%d", cr->id, inst, l->moves);
    link_unlink(cl, l);
    ws_close(c, 1012, "owner moved, reconnect");
    return;
  }
  l->opened = 0;
  cl->st.opens_moved++;
  if (strcmp(cr->owner, inst) == 0) {
    cr->owner[0] = '\0';
    cr->watching = 0;
  }
  if (cr->owned && !cr->rebuilding) links_join_local(cl, cr);
  else if (!cr->owned && cr->owner[0] && cr->watching) link_send_open(cl, l);
  else room_resolve(cl, cr);
}

/* 1 if an HTTP answer's head says "Connection: keep-alive" (http_reply's
 * own header: exact spelling). */
static int answer_keeps(const char *d, size_t n) {
  static const char ka[] = "\r\nConnection: keep-alive\r\n";
  for (size_t i = 0; i + sizeof(ka) - 1 <= n; i++) {
    if (d[i] == '\r' && i + 3 < n && memcmp(d + i, "\r\n\r\n", 4) == 0) return 0; /* end of the head */
    if (memcmp(d + i, ka, sizeof(ka) - 1) == 0) return 1;
  }
  return 0;
}

/* Owner side: an open forwarded by the instance its client reached (inst,
 * the link id there): joined now, kept until the lease reply or the rebuild
 * is done, or refused (not ours). */
static void owner_open(struct cluster *cl, const redisReply *f, const char *inst, const char *id, const char *room,
                       const char *key) {
  cl->st.forwarded_in++;
  struct croom *cr = croom_get(cl, room, 0);
  struct remote *old = map_get(&cl->remotes, key);
  if (old) return;
  int wait = cr && ((!cr->owned && cr->acquiring) || (cr->owned && cr->rebuilding));
  if (!wait && (cr == NULL || !cr->owned)) {
    open_refused(cl, inst, id, room); /* not ours (any more) */
    return;
  }
  struct remote *rm = remote_new(cl, inst, id, room, 0);
  if (rm == NULL) return;
  if (wait) {
    /* Our lease reply or the rebuild is still on its way: join it then. */
    claims_from_fields(f, &rm->tc);
    rm->has_rt = field_str(f, "rt", rm->rt, sizeof(rm->rt)) == 0 && rm->rt[0];
    char dls[24];
    rm->ls = UINT64_MAX;
    if (field_str(f, "ls", dls, sizeof(dls)) == 0 && dls[0]) rm->ls = strtoull(dls, NULL, 10);
    rm->adm = (int)field_int(f, "adm");
    const redisReply *gr = field(f, "g");
    if (gr && gr->type == REDIS_REPLY_STRING && gr->len) buf_append(&rm->grant, gr->str, gr->len);
    rm->deferred = 1;
    struct remote **pp = &cr->deferred;
    while (*pp) pp = &(*pp)->defer_next;
    *pp = rm;
    return;
  }
  struct token_claims tc;
  claims_from_fields(f, &tc);
  char rt[80];
  int has_rt = field_str(f, "rt", rt, sizeof(rt)) == 0 && rt[0];
  char ls[24];
  uint64_t last_seq = UINT64_MAX;
  if (field_str(f, "ls", ls, sizeof(ls)) == 0 && ls[0]) last_seq = strtoull(ls, NULL, 10);
  char g[GRANT_MAX + 1] = "";
  field_str(f, "g", g, sizeof(g));
  owner_join(cl, rm->fake, room, &tc, (int)field_int(f, "adm"), has_rt ? rt : NULL, last_seq, g);
}

/* Owner side: a remote session's message, behind its earlier ones. */
static void owner_msg(struct cluster *cl, const redisReply *f, const char *key) {
  cl->st.forwarded_in++;
  struct remote *rm = map_get(&cl->remotes, key);
  const redisReply *d = field(f, "d");
  if (rm && !rm->closed && rm->deferred && d && d->type == REDIS_REPLY_STRING) {
    uint32_t n = (uint32_t)d->len;
    buf_append(&rm->q, (const char *)&n, 4);
    buf_append(&rm->q, d->str, d->len);
    return;
  }
  if (rm && !rm->closed && d && d->type == REDIS_REPLY_STRING) gate_push(cl, rm->fake, d->str, d->len);
}

/* Owner side: a remote session ended on its instance. */
static void owner_end(struct cluster *cl, const redisReply *f, const char *key) {
  struct remote *rm = map_get(&cl->remotes, key);
  if (rm == NULL || rm->closed) return;
  rm->closed = 1;
  map_del(&cl->remotes, rm->key);
  if (rm->deferred) return; /* never joined: freed when the deferred opens run */
  gate_drop(cl, rm->fake);
  signal_on_end(rm->fake, (enum conn_end)field_int(f, "why"), (int)field_int(f, "c"));
  remote_free_later(cl, rm);
}

/* Owner side: a forwarded REST call, run against a socketless connection;
 * the answer goes back to inst (http_answer). */
static void owner_http(struct cluster *cl, const redisReply *f, const char *inst, const char *id, const char *room) {
  cl->st.forwarded_in++;
  struct remote *rm = remote_new(cl, inst, id, room, 1);
  if (rm == NULL) return;
  struct conn *c = rm->fake;
  const char *names[] = {"url", "auth", "ct", "body"};
  struct buf *dst[] = {&c->req->url, &c->req->hdr[HDR_AUTHORIZATION], &c->req->hdr[HDR_CONTENT_TYPE], &c->req->body};
  for (int i = 0; i < 4; i++) {
    const redisReply *v = field(f, names[i]);
    if (v && v->type == REDIS_REPLY_STRING && v->len) buf_append(dst[i], v->str, v->len);
  }
  c->req->parser.method = (unsigned)field_int(f, "m");
  /* The answer says keep-alive as the client's own request would have
   * made it (an HTTP/1.1 request without "Connection: close"); the
   * instance the client reached keeps or ends its connection by it. */
  c->req->complete = field_int(f, "ka") == 1;
  c->req->parser.http_major = 1;
  c->req->parser.http_minor = 1;
  if (field_int(f, "rc") == 1) counted_verdict(cl, 1); /* the sender counted api_call in Redis */
  api_dispatch(c);
  cl->api_verdict_on = 0;
  if (c->req->stream && !c->closing) {
    rm->held = 1; /* a store read: answered from remote_write */
    return;
  }
  http_answer(cl, rm);
}

/* A new owner rebuilt a session of ours (link id) from its room's
 * snapshot: a link gone answers with an end, a live one sends there now. */
static void link_probe(struct cluster *cl, const char *inst, const char *id, const char *room) {
  struct link *l = map_get(&cl->links, id);
  if (l == NULL) {
    char why[8];
    snprintf(why, sizeof(why), "%d", (int)CONN_END_CUT);
    const char *fv[] = {"k", "end", "i", cl->inst, "id", id, "why", why, "c", "1006"};
    inbox_send(cl, inst, 10, fv, NULL);
  } else if (l->opened && l->room && strcmp(l->room->id, room) == 0) {
    link_retarget(cl, l, inst);
  }
}

/* The owner's answer (fields f) to the forwarded REST call id: written to
 * the client, if it is still there. */
static void fw_answer(struct cluster *cl, const char *id, const redisReply *f) {
  struct fwd_http *fw = map_del(&cl->http_wait, id);
  const redisReply *d = field(f, "d");
  if (fw == NULL) return;
  /* The client may have gone while the owner answered. */
  struct conn *live = cl->srv->conns;
  while (live && live != fw->c) live = live->next;
  if (live == NULL || live->cluster != fw) fw->c = NULL;
  if (fw->c) {
    struct conn *c = fw->c;
    http_stream_set(c, NULL, NULL); /* the request is answered here, not aborted */
    c->cluster = NULL;
    if (d && d->type == REDIS_REPLY_STRING && d->len) conn_write_copy(c, d->str, d->len);
    /* Kept alive when the owner's answer says so (it was told what the
     * client asked for); the next pipelined request goes on after it. */
    if (d == NULL || d->type != REDIS_REPLY_STRING || !answer_keeps(d->str, d->len) || c->srv->shutting_down)
      conn_end(c);
    http_request_done(c);
  }
  buf_free(&fw->url), buf_free(&fw->auth), buf_free(&fw->ctype), buf_free(&fw->body);
  free(fw);
}

/* What another instance sent this one. */
static void inbox_entry(struct cluster *cl, const redisReply *f) {
  char k[16], inst[32], id[24], room[ID_MAX + 1], key[64];
  field_str(f, "k", k, sizeof(k));
  field_str(f, "i", inst, sizeof(inst));
  field_str(f, "id", id, sizeof(id));
  field_str(f, "room", room, sizeof(room));
  snprintf(key, sizeof(key), "%s/%s", inst, id);
  if (strcmp(k, "open") == 0) owner_open(cl, f, inst, id, room, key);
  else if (strcmp(k, "moved") == 0) link_moved(cl, inst, id);
  else if (strcmp(k, "probe") == 0) link_probe(cl, inst, id, room);
  else if (strcmp(k, "msg") == 0) owner_msg(cl, f, key);
  else if (strcmp(k, "end") == 0) owner_end(cl, f, key);
  else if (strcmp(k, "http") == 0) owner_http(cl, f, inst, id, room);
  else if (strcmp(k, "resp") == 0) fw_answer(cl, id, f);
}

/* ---- the shared rate limiter ----
 * The limiter seam (hub_limiter_ops) is synchronous; Redis is not. A
 * member's message is held (in order, per connection) until one Lua script
 * has checked and counted its classes (websocket_message and the type's own
 * class) atomically in Redis, by Redis's clock; the message is then handled
 * as on one instance, and the limiter answers the handler's calls with that
 * verdict. Without Redis (an outage) the local limiter answers. */

/* KEYS one TAT key per class; ARGV limit, window_ms per class. Returns
 * {1, 0, 0, remaining} or {0, refused class index (1-based), retry_after_ms, 0}. */
static const char LUA_GCRA[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local new = {} local rem = 0 "
    "for i = 1, #KEYS do "
    "  local L = tonumber(ARGV[2 * i - 1]) local T = tonumber(ARGV[2 * i]) "
    "  local iv = T / L local tau = T - iv "
    "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') "
    "  if tat < now then tat = now end "
    "  if tat - now > tau + 0.0001 then return {0, i, math.ceil(tat - tau - now), 0} end "
    "  new[i] = tat + iv rem = math.floor((T - (new[i] - now)) / iv + 0.0001) "
    "end "
    "for i = 1, #KEYS do redis.call('SET', KEYS[i], string.format('%.4f', new[i]), 'PX', math.ceil(new[i] - now) + 1000) end "
    "return {1, 0, 0, rem}";

/* KEYS the TAT key; ARGV limit, window_ms. The budget as LUA_GCRA would
 * find it now, counting nothing: {remaining, reset_ms}. */
static const char LUA_GCRA_PEEK[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local L = tonumber(ARGV[1]) local T = tonumber(ARGV[2]) local iv = T / L local tau = T - iv "
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if tat < now then tat = now end "
    "local d = tat - now "
    "if d > tau + 0.0001 then return {0, math.ceil(d - 0.0001)} end "
    "return {math.floor((T - d) / iv + 0.0001), math.ceil(d - 0.0001)}";

struct gmsg {
  struct gmsg *next;
  size_t len;
  char data[];
};

struct gate {
  struct conn *c;
  char key[32];
  char user[ID_MAX + 1];
  struct gmsg *head, *tail;
  int inflight;
  int cls[2];
  int ncls;
};

static void gate_key(const struct conn *c, char *out, size_t n) { snprintf(out, n, "%p", (const void *)c); }

static void redis_limiter_check(void *impl, const char *key, enum rate_class c, uint64_t now_ms,
                                struct ratelimit_result *out) {
  struct cluster *cl = impl;
  if (c == RATE_API_CALL && cl->api_verdict_on) {
    *out = cl->api_verdict;
    return;
  }
  if (cl->verdict_on && cl->verdict_has[c] && strcmp(key, cl->verdict_user) == 0) {
    *out = cl->verdict[c];
    return;
  }
  ratelimit_check(&cl->h->rl, key, c, now_ms, out);
}

static void redis_limiter_peek(void *impl, const char *key, enum rate_class c, uint64_t now_ms,
                               struct ratelimit_result *out) {
  struct cluster *cl = impl;
  if (cl->peek_on && (int)c == cl->peek_class && strcmp(key, cl->peek_user) == 0) {
    *out = cl->peek;
    return;
  }
  if (cl->verdict_on && cl->verdict_has[c] && strcmp(key, cl->verdict_user) == 0) {
    *out = cl->verdict[c];
    return;
  }
  ratelimit_peek(&cl->h->rl, key, c, now_ms, out);
}

static const struct hub_limiter_ops redis_limiter = {"redis", redis_limiter_check, redis_limiter_peek};

/* The rate classes a message spends: websocket_message and its type's. */
static int message_classes(struct cluster *cl, const char *data, size_t len, int cls[2]) {
  int n = 0;
  const struct ratelimit_rule *rules = cl->h->rl.rules;
  if (rules[RATE_WEBSOCKET_MESSAGE].limit) cls[n++] = RATE_WEBSOCKET_MESSAGE;
  json_t *j = json_loadb(data, len, JSON_DISABLE_EOF_CHECK, NULL);
  const char *type = json_string_value(json_object_get(j, "type"));
  const struct sig_type *t = type ? signal_type_find(type) : NULL;
  if (t) {
    int rc = command_get(t->cmd)->rate;
    if (rc != COMMAND_NO_RATE && rules[rc].limit && rc != RATE_WEBSOCKET_MESSAGE) cls[n++] = rc;
  }
  json_decref(j);
  return n;
}

static void gate_pump(struct cluster *cl, struct gate *g);

static void gate_deliver(struct cluster *cl, struct gate *g) {
  struct gmsg *m = g->head;
  g->head = m->next;
  if (g->head == NULL) g->tail = NULL;
  struct conn *c = g->c;
  signal_on_message(c, m->data, m->len);
  free(m);
}

static void gcra_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  char *key = priv;
  struct gate *g = cl ? map_get(&cl->gates, key) : NULL;
  free(key);
  if (g == NULL) return;
  g->inflight = 0;
  redisReply *r = reply;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4 && g->head) {
    int allowed = r->element[0]->integer == 1;
    int refused_i = (int)r->element[1]->integer - 1;
    memset(cl->verdict_has, 0, sizeof(cl->verdict_has));
    for (int i = 0; i < g->ncls; i++) {
      int c = g->cls[i];
      struct ratelimit_result *v = &cl->verdict[c];
      memset(v, 0, sizeof(*v));
      v->limit = cl->h->rl.rules[c].limit;
      /* A class checked before the refused one was not counted either: it answers allowed. */
      v->allowed = allowed || i != refused_i;
      if (!v->allowed) v->retry_after_ms = (uint64_t)r->element[2]->integer;
      if (allowed) v->remaining = (uint32_t)r->element[3]->integer;
      cl->verdict_has[c] = 1;
    }
    snprintf(cl->verdict_user, sizeof(cl->verdict_user), "%s", g->user);
    cl->verdict_on = 1;
    gate_deliver(cl, g);
    cl->verdict_on = 0;
  } else if (g->head) {
    gate_deliver(cl, g); /* Redis is away: the local limiter answers */
  }
  g = map_get(&cl->gates, g->key) == g ? g : NULL;
  if (g) gate_pump(cl, g);
}

static void gate_pump(struct cluster *cl, struct gate *g) {
  while (g->head && !g->inflight) {
    struct conn *c = g->c;
    struct gmsg *m = g->head;
    if (c->part == NULL) {
      gate_deliver(cl, g); /* a waiter, or closing: nothing to count */
      if (map_get(&cl->gates, g->key) != g) return;
      continue;
    }
    snprintf(g->user, sizeof(g->user), "%s", c->part->user_id);
    g->ncls = message_classes(cl, m->data, m->len, g->cls);
    if (g->ncls == 0 || !cl->cmd_up) {
      gate_deliver(cl, g);
      if (map_get(&cl->gates, g->key) != g) return;
      continue;
    }
    char k0[KEY_MAX], k1[KEY_MAX], l0[16], w0[24], l1[16], w1[24];
    char id0[ID_MAX + 16], id1[ID_MAX + 16];
    snprintf(id0, sizeof(id0), "%d:%s", g->cls[0], g->user);
    key_of(k0, "rl", id0);
    snprintf(l0, sizeof(l0), "%u", cl->h->rl.rules[g->cls[0]].limit);
    snprintf(w0, sizeof(w0), "%llu", (unsigned long long)cl->h->rl.rules[g->cls[0]].window_ms);
    const char *argv[10] = {"EVAL", LUA_GCRA, g->ncls == 2 ? "2" : "1", k0};
    int n = 4;
    if (g->ncls == 2) {
      snprintf(id1, sizeof(id1), "%d:%s", g->cls[1], g->user);
      key_of(k1, "rl", id1);
      snprintf(l1, sizeof(l1), "%u", cl->h->rl.rules[g->cls[1]].limit);
      snprintf(w1, sizeof(w1), "%llu", (unsigned long long)cl->h->rl.rules[g->cls[1]].window_ms);
      argv[n++] = k1;
    }
    argv[n++] = l0;
    argv[n++] = w0;
    if (g->ncls == 2) argv[n++] = l1, argv[n++] = w1;
    char *key = strdup(g->key);
    if (key == NULL) {
      gate_deliver(cl, g);
      return;
    }
    g->inflight = 1;
    cmd(cl, gcra_cb, key, 0, n, argv, NULL);
  }
}

/* A member's message, in order behind its connection's earlier ones. */
static void gate_push(struct cluster *cl, struct conn *c, const char *data, size_t len) {
  char key[32];
  gate_key(c, key, sizeof(key));
  struct gate *g = map_get(&cl->gates, key);
  if (g == NULL) {
    if ((g = calloc(1, sizeof(*g))) == NULL) return;
    g->c = c;
    snprintf(g->key, sizeof(g->key), "%s", key);
    if (map_put(&cl->gates, key, g) != 0) {
      free(g);
      return;
    }
  }
  struct gmsg *m = malloc(sizeof(*m) + len + 1);
  if (m == NULL) return;
  m->next = NULL;
  m->len = len;
  memcpy(m->data, data, len);
  m->data[len] = '\0';
  if (g->tail) g->tail->next = m;
  else g->head = m;
  g->tail = m;
  gate_pump(cl, g);
}

/* c ended: its held messages go with it. */
static void gate_drop(struct cluster *cl, struct conn *c) {
  char key[32];
  gate_key(c, key, sizeof(key));
  struct gate *g = map_del(&cl->gates, key);
  if (g == NULL) return;
  while (g->head) {
    struct gmsg *m = g->head;
    g->head = m->next;
    free(m);
  }
  free(g);
}

/* ---- instances without the room: links ---- */

/* Sends l's queued messages (u32 length + bytes each), in order, to the
 * inbox of instance to; the queue stays as it is. */
static void link_send_queue(struct cluster *cl, struct link *l, const char *to) {
  size_t off = 0;
  while (off + 4 <= l->queue.len) {
    uint32_t n;
    memcpy(&n, l->queue.data + off, 4);
    const char *mv[] = {"k", "msg", "i", cl->inst, "id", l->key, "d", l->queue.data + off + 4};
    size_t ml[] = {1, 3, 1, strlen(cl->inst), 2, strlen(l->key), 1, n};
    inbox_send(cl, to, 8, mv, ml);
    cl->st.forwarded_out++;
    off += 4 + n;
  }
}

static void link_send_open(struct cluster *cl, struct link *l) {
  struct croom *cr = l->room;
  char cs[64], ls[24] = "", adm[4];
  claims_to_fields(&l->claims, cs, sizeof(cs));
  if (l->last_seq != UINT64_MAX) snprintf(ls, sizeof(ls), "%" PRIu64, l->last_seq);
  snprintf(adm, sizeof(adm), "%d", l->admitted);
  const char *fv[] = {"k", "open", "i", cl->inst, "id", l->key, "room", cr->id, "u", l->claims.sub,
                      "n", l->claims.name, "rm", l->claims.room, "cl", cs, "adm", adm,
                      "rt", l->has_rt ? l->rt : "", "ls", ls, "g", l->grant.data ? l->grant.data : ""};
  inbox_send(cl, cr->owner, 24, fv, NULL);
  cl->st.forwarded_out++;
  l->opened = 1;
  snprintf(l->sent_to, sizeof(l->sent_to), "%s", cr->owner);
  /* Messages the client sent before the owner was known, in order. */
  link_send_queue(cl, l, cr->owner);
  /* Kept until the owner's first frame: an open refused by an instance
   * that gave the room up is sent again, with these, to the next owner. */
}

static void link_unlink(struct cluster *cl, struct link *l) {
  struct croom *cr = l->room;
  for (struct link **pp = cr ? &cr->links : NULL; pp && *pp; pp = &(*pp)->next)
    if (*pp == l) {
      *pp = l->next;
      break;
    }
  map_del(&cl->links, l->key);
  if (l->c) l->c->cluster = NULL;
  buf_free(&l->queue);
  buf_free(&l->grant);
  free(l);
}

static void link_queue(struct link *l, const char *data, size_t len) {
  uint32_t n = (uint32_t)len;
  buf_append(&l->queue, &n, 4);
  buf_append(&l->queue, data, len);
  l->nqueued++;
}

static void recover_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  struct link *l = cl ? map_get(&cl->links, (const char *)priv) : NULL;
  free(priv);
  if (l == NULL || !l->recovering) return;
  l->recovering = 0;
  redisReply *r = reply;
  struct buf got = {0};
  size_t ngot = 0;
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *d = r->element[i];
    if (d->type != REDIS_REPLY_STRING) continue;
    uint32_t n = (uint32_t)d->len;
    buf_append(&got, &n, 4);
    buf_append(&got, d->str, d->len);
    ngot++;
  }
  if (ngot) log_info("msgs_recovered link=%s n=%zu", l->key, ngot);
  cl->st.msgs_recovered += ngot;
  buf_append(&got, l->queue.data ? l->queue.data : "", l->queue.len); /* then those sent since, in order */
  buf_free(&l->queue);
  l->queue = got;
  l->nqueued += ngot;
  /* This instance is the new owner (rebuilding): the rebuild feeds the
   * queue to the connection once it is a member (snap_session). */
  if (l->room && l->room->owned) return;
  link_send_queue(cl, l, l->sent_to);
  buf_free(&l->queue);
  l->nqueued = 0;
}

/* l's messages the owner it sent them to (old) never read: taken back from
 * old's inbox if old is dead; l's next messages wait until they are. */
static void link_recover(struct cluster *cl, struct link *l, const char *old) {
  char hb[KEY_MAX], inbox[KEY_MAX];
  key_of(hb, "hb", old);
  key_of(inbox, "inbox", old);
  char *k = strdup(l->key);
  if (k == NULL) return;
  l->recovering = 1;
  const char *argv[] = {"EVAL", LUA_RECOVER, "2", hb, inbox, cl->inst, l->key, RECOVER_SCAN};
  cmd(cl, recover_cb, k, 0, 8, argv, NULL);
}

/* The room's owner is now owner: l sends there; what it sent the old one
 * and that was never read is recovered first. */
static void link_retarget(struct cluster *cl, struct link *l, const char *owner) {
  if (strcmp(l->sent_to, owner) == 0) return;
  if (l->opened && l->confirmed && l->sent_to[0] && !l->recovering && strcmp(l->sent_to, cl->inst) != 0)
    link_recover(cl, l, l->sent_to);
  snprintf(l->sent_to, sizeof(l->sent_to), "%s", owner);
}

void cluster_on_text(struct conn *c, const char *data, size_t len) {
  struct cluster *cl = the_cluster;
  struct link *l = cl && !c->proxy ? c->cluster : NULL;
  if (l == NULL) {
    if (cl) gate_push(cl, c, data, len);
    else signal_on_message(c, data, len);
    return;
  }
  if (!l->opened) {
    if (l->nqueued >= LINK_QUEUE_MAX) return; /* the client is far ahead of its room-state */
    uint32_t n = (uint32_t)len;
    buf_append(&l->queue, &n, 4);
    buf_append(&l->queue, data, len);
    l->nqueued++;
    return;
  }
  if (l->recovering || (l->room && l->room->owned)) {
    /* Behind messages being taken back from a dead owner, or the room is
     * being rebuilt here: held in order. */
    if (l->nqueued < LINK_QUEUE_MAX) link_queue(l, data, len);
    return;
  }
  if (!l->confirmed && l->nqueued < LINK_QUEUE_MAX) {
    uint32_t n = (uint32_t)len;
    buf_append(&l->queue, &n, 4);
    buf_append(&l->queue, data, len);
    l->nqueued++;
  }
  const char *fv[] = {"k", "msg", "i", cl->inst, "id", l->key, "d", data};
  size_t fl[] = {1, 3, 1, strlen(cl->inst), 2, strlen(l->key), 1, len};
  inbox_send(cl, l->sent_to, 8, fv, fl);
  cl->st.forwarded_out++;
}

void cluster_on_end(struct conn *c, enum conn_end why, int code) {
  struct cluster *cl = the_cluster;
  if (cl == NULL || c->proxy || c->cluster == NULL) {
    if (cl) gate_drop(cl, c);
    signal_on_end(c, why, code);
    return;
  }
  if (c->kind != CONN_WS) return;
  struct link *l = c->cluster;
  if (l->opened) {
    char w[8], cs[12];
    snprintf(w, sizeof(w), "%d", (int)why);
    snprintf(cs, sizeof(cs), "%d", code);
    const char *fv[] = {"k", "end", "i", cl->inst, "id", l->key, "why", w, "c", cs};
    inbox_send(cl, l->sent_to, 10, fv, NULL);
  }
  link_unlink(cl, l);
}

/* A stream entry of a room owned elsewhere: the frame to this instance's
 * sessions it names (copied once for all of them). */
static void stream_entry(struct cluster *cl, struct croom *cr, const redisReply *f) {
  char k[4], rcpt[8192], owner[32];
  field_str(f, "k", k, sizeof(k));
  /* Written by a new owner (a takeover): forward to it from now on. */
  if (field_str(f, "o", owner, sizeof(owner)) == 0 && owner[0] && strcmp(owner, cr->owner) != 0) {
    log_info("owner_changed room=%s owner=%s", cr->id, owner);
    snprintf(cr->owner, sizeof(cr->owner), "%s", owner);
    for (struct link *l = cr->links; l; l = l->next)
      if (l->opened) link_retarget(cl, l, owner);
  }
  const redisReply *r = field(f, "r");
  if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0) return;
  cl->st.stream_entries_in++;
  long long ms = field_int(f, "ms");
  if (ms > 0) {
    double lag = (double)((long long)hub_now_ms() - ms);
    if (lag < 0) lag = 0;
    cl->st.stream_lag_ms = lag;
    if (lag > cl->st.stream_lag_max_ms) cl->st.stream_lag_max_ms = lag;
  }
  struct outbuf *b = NULL;
  const redisReply *fr = field(f, "f");
  char why[128] = "";
  int code = (int)field_int(f, "c");
  field_str(f, "why", why, sizeof(why));
  size_t il = strlen(cl->inst);
  const char *p = r->str, *end = r->str + r->len;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *e = comma ? comma : end;
    size_t n = (size_t)(e - p);
    if (n > il + 1 && memcmp(p, cl->inst, il) == 0 && p[il] == '/' && n - il - 1 < sizeof(rcpt)) {
      memcpy(rcpt, p + il + 1, n - il - 1);
      rcpt[n - il - 1] = '\0';
      struct link *l = map_get(&cl->links, rcpt);
      if (l && l->c) {
        if (k[0] == 'C') {
          struct conn *c = l->c;
          link_unlink(cl, l); /* the owner already ended the session */
          ws_close(c, code, why);
        } else if (fr && fr->type == REDIS_REPLY_STRING) {
          if (!l->confirmed) {
            l->confirmed = 1;
            buf_free(&l->queue);
            l->nqueued = 0;
          }
          if (b == NULL && (b = outbuf_new(fr->len)) != NULL) {
            memcpy(b->data, fr->str, fr->len);
            b->len = fr->len;
          }
          if (b) ws_send(l->c, outbuf_ref(b));
        }
      }
    }
    p = e + 1;
  }
  outbuf_unref(b);
}

/* ---- the broadcast stream: what every instance applies ---- */

/* A user's erase (POST /webrtc/admin/users/{id}/erase) on the instance that
 * answered it: every other instance applies it to the rooms it owns (its
 * members and waiters of that user, wherever they are connected, close with
 * 4007 through the owner as on one instance) and, when the store committed
 * it, drops what its room logs still held naming the user. */
/* The user's links whose open no owner has seen yet: closed here (an owner
 * that has its session closes it itself, the others hearing why). */
static void erase_links(struct cluster *cl, const char *user) {
  struct link *gone[256];
  size_t n = 0;
  for (size_t i = 0; i < cl->links.nbuckets; i++)
    for (struct map_entry *e = cl->links.buckets[i]; e; e = e->next) {
      struct link *l = e->value;
      if (!l->opened && l->c && strcmp(l->claims.sub, user) == 0 && n < 256) gone[n++] = l;
    }
  for (size_t i = 0; i < n; i++) {
    struct conn *c = gone[i]->c;
    link_unlink(cl, gone[i]);
    ws_close(c, ERASE_CLOSE_CODE, "erased");
  }
}

void cluster_user_erase(struct cluster *cl, const char *user_id, int committed) {
  if (cl == NULL) return;
  if (!committed) erase_links(cl, user_id);
  char mx[16];
  snprintf(mx, sizeof(mx), "%d", BCAST_MAX);
  const char *argv[] = {"XADD", BCAST_KEY, "MAXLEN", "~", mx, "*", "k", committed ? "erased" : "erase",
                        "i", cl->inst, "u", user_id};
  cmd(cl, NULL, NULL, 1, 12, argv, NULL);
}

static void bcast_entry(struct cluster *cl, const redisReply *f) {
  char k[16], inst[32], user[ID_MAX + 1];
  field_str(f, "k", k, sizeof(k));
  field_str(f, "i", inst, sizeof(inst));
  if (field_str(f, "u", user, sizeof(user)) != 0 || !user[0] || strcmp(inst, cl->inst) == 0) return;
  if (strcmp(k, "erase") == 0) {
    durable_user_erase(cl->h, user);
    erase_links(cl, user);
  } else if (strcmp(k, "erased") == 0) {
    durable_user_erased(cl->h, user);
  }
}

/* The broadcast stream is read from its end when this instance started. */
static void bcast_end_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac, (void)priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (cl == NULL) return;
  cl->bcast_asked = 0;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) return; /* asked again when Redis is back */
  snprintf(cl->bcast_pos, sizeof(cl->bcast_pos), "0-0");
  if (r->elements > 0) reply_str(arr_at(r->element[0], 0), cl->bcast_pos, sizeof(cl->bcast_pos));
  reader_wake(cl);
}

/* ---- the reader ---- */

struct watch_list { const char **argv; size_t n, cap; char (*keys)[KEY_MAX]; };

static void collect_watch(const char *k, void *v, void *arg) {
  struct croom *cr = v;
  struct watch_list *wl = arg;
  if (!cr->watching || cr->owned || wl->n >= wl->cap) return;
  key_of(wl->keys[wl->n], "stream", cr->id);
  wl->argv[wl->n++] = (const char *)cr;
}

/* Before this instance runs REST calls forwarded to it, it trims its inbox
 * up to the last entry it read (XTRIM MINID one past it): what is still in
 * the inbox was never read. The trim goes on the command connection ahead
 * of everything running the calls sends, so a call whose entry is still
 * there had no effect in Redis either. Another instance whose call waits
 * on a dead owner can then tell (LUA_FWD_CHECK) whether sending it to the
 * new owner is safe. Only batches with a REST call pay the command. */
static void inbox_mark_read(struct cluster *cl, const redisReply *entries) {
  int calls = 0;
  char last[48] = "";
  for (size_t j = 0; entries && j < entries->elements; j++) {
    const redisReply *e = entries->element[j];
    char k[8] = "";
    reply_str(arr_at(e, 0), last, sizeof(last));
    field_str(arr_at(e, 1), "k", k, sizeof(k));
    if (strcmp(k, "http") == 0 || strcmp(k, "msg") == 0) calls = 1;
  }
  unsigned long long ms, sq;
  if (!calls || sscanf(last, "%llu-%llu", &ms, &sq) != 2) return;
  char key[KEY_MAX], minid[48];
  key_of(key, "inbox", cl->inst);
  snprintf(minid, sizeof(minid), "%llu-%llu", ms, sq + 1);
  const char *argv[] = {"XTRIM", key, "MINID", minid};
  cmd(cl, NULL, NULL, 1, 4, argv, NULL);
}

static void reader_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  if (cl == NULL) return;
  cl->reading = 0;
  redisReply *r = reply;
  if (r == NULL) return; /* disconnected: the reconnect restarts the reader */
  if (r->type == REDIS_REPLY_ERROR) {
    log_warn("xread_failed reason=\"%s\"", r->str);
  } else if (r->type == REDIS_REPLY_ARRAY) {
    char inbox[KEY_MAX];
    key_of(inbox, "inbox", cl->inst);
    for (size_t i = 0; i < r->elements; i++) {
      const redisReply *s = r->element[i];
      char name[KEY_MAX];
      reply_str(arr_at(s, 0), name, sizeof(name));
      const redisReply *entries = arr_at(s, 1);
      int is_inbox = strcmp(name, inbox) == 0;
      struct croom *cr = NULL;
      if (is_inbox) inbox_mark_read(cl, entries);
      if (strcmp(name, BCAST_KEY) == 0) {
        for (size_t j = 0; entries && j < entries->elements; j++) {
          const redisReply *e = entries->element[j];
          reply_str(arr_at(e, 0), cl->bcast_pos, sizeof(cl->bcast_pos));
          bcast_entry(cl, arr_at(e, 1));
        }
        continue;
      }
      if (!is_inbox && strncmp(name, "huddle:stream:", 14) == 0) cr = croom_get(cl, name + 14, 0);
      for (size_t j = 0; entries && j < entries->elements; j++) {
        const redisReply *e = entries->element[j];
        char id[48];
        reply_str(arr_at(e, 0), id, sizeof(id));
        if (is_inbox) {
          snprintf(cl->inbox_pos, sizeof(cl->inbox_pos), "%s", id);
          inbox_entry(cl, arr_at(e, 1));
        } else if (cr) {
          snprintf(cr->pos, sizeof(cr->pos), "%s", id);
          if (!cr->owned) stream_entry(cl, cr, arr_at(e, 1));
          cr = croom_get(cl, name + 14, 0); /* an entry may have ended the last link */
          if (cr == NULL) break;
        }
      }
    }
  }
  reader_issue(cl);
}

static void reader_issue(struct cluster *cl) {
  if (!cl->rd_up || cl->reading || cl->stopping) return;
  size_t cap = cl->rooms.count + 1;
  const char **rooms = calloc(cap, sizeof(char *));
  char (*keys)[KEY_MAX] = calloc(cap, KEY_MAX);
  struct watch_list wl = {rooms, 0, cap, keys};
  size_t argc = 0, nk;
  const char **argv = NULL;
  size_t *lens = NULL;
  if (rooms == NULL || keys == NULL) goto out;
  map_each(&cl->rooms, collect_watch, &wl);
  nk = wl.n + 1 + (cl->bcast_pos[0] != '\0');
  argv = calloc(6 + 2 * nk, sizeof(char *));
  lens = calloc(6 + 2 * nk, sizeof(size_t));
  if (argv == NULL || lens == NULL) goto out;
  char inbox[KEY_MAX];
  key_of(inbox, "inbox", cl->inst);
  argv[argc++] = "XREAD";
  argv[argc++] = "COUNT";
  argv[argc++] = "1000";
  argv[argc++] = "BLOCK";
  argv[argc++] = "2000";
  argv[argc++] = "STREAMS";
  argv[argc++] = inbox;
  if (cl->bcast_pos[0]) argv[argc++] = BCAST_KEY;
  for (size_t i = 0; i < wl.n; i++) argv[argc++] = keys[i];
  argv[argc++] = cl->inbox_pos;
  if (cl->bcast_pos[0]) argv[argc++] = cl->bcast_pos;
  for (size_t i = 0; i < wl.n; i++) argv[argc++] = ((const struct croom *)rooms[i])->pos;
  for (size_t i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  if (redisAsyncCommandArgv(cl->rd, reader_cb, NULL, (int)argc, argv, lens) == REDIS_OK) {
    cl->reading = 1;
    cl->read_issued = now_ms(cl);
  }
out:
  free(argv);
  free(lens);
  free(rooms);
  free(keys);
}

/* The reader blocks in XREAD: a wake entry in our own inbox makes it come
 * back and read the new set of streams. */
static void reader_wake(struct cluster *cl) {
  const char *fv[] = {"k", "wake"};
  inbox_send(cl, cl->inst, 2, fv, NULL);
}

/* ---- ownership ---- */

/* The family (a main room's breakout rooms and who is assigned where, or a
 * breakout room's main room), and the room's recordings and live streams
 * (their ids, who started and stopped them, when; a stream's target with
 * its key: Redis holds secrets of the room already, the resume tokens). */
static void family_to_snap(const struct room *r, json_t *snap) {
  json_t *brs = json_array(), *recs = json_array(), *strs = json_array();
  for (size_t i = 0; i < r->nbreakouts; i++) {
    const struct breakout *b = &r->breakouts[i];
    json_t *as = json_array();
    for (size_t j = 0; j < b->nassigned; j++) json_array_append_new(as, json_string(b->assigned[j]));
    json_array_append_new(brs, json_pack("{s:s,s:s,s:o}", "id", b->id, "name", b->name, "as", as));
  }
  const struct room_history *hi = r->hist;
  for (size_t i = 0; hi && i < hi->nrecordings; i++) {
    const struct recording *rc = &hi->recordings[i];
    json_array_append_new(recs, json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "id", rc->id, "by", rc->started_by, "sb",
                                          rc->stopped_by, "t0", (json_int_t)rc->started_ms, "t1",
                                          (json_int_t)rc->stopped_ms, "fmt", rc->format));
  }
  for (size_t i = 0; hi && i < hi->nstreams; i++) {
    const struct live_stream *st = &hi->streams[i];
    json_array_append_new(strs, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "id", st->id, "name", st->name,
                                          "tg", st->target ? st->target : "", "tr",
                                          st->target_redacted ? st->target_redacted : "", "by", st->started_by,
                                          "sb", st->stopped_by, "t0", (json_int_t)st->started_ms, "t1",
                                          (json_int_t)st->stopped_ms));
  }
  json_object_set_new(snap, "parent", json_string(r->parent));
  json_object_set_new(snap, "held", json_integer(r->held));
  json_object_set_new(snap, "breakouts", brs);
  json_object_set_new(snap, "recordings", recs);
  json_object_set_new(snap, "streams", strs);
}

/* A takeover: the family and the recordings of the snapshot. The new owner
 * of a main room claims its breakout rooms too (rebuilt from their own
 * snapshots), so grants and the breakouts' hold on the room keep working. */
static void family_from_snap(struct cluster *cl, struct room *room, json_t *snap) {
  size_t i, j;
  json_t *m, *u;
  const char *parent = json_string_value(json_object_get(snap, "parent"));
  if (parent && parent[0]) {
    snprintf(room->parent, sizeof(room->parent), "%s", parent);
    room->held = (int)json_integer_value(json_object_get(snap, "held"));
  }
  json_array_foreach(json_object_get(snap, "breakouts"), i, m) {
    const char *id = json_string_value(json_object_get(m, "id"));
    if (id == NULL || room_breakout_find(room, id)) continue;
    struct breakout *b = room_breakout_add(room, id, json_string_value(json_object_get(m, "name")) ?: "");
    if (b == NULL) continue;
    json_array_foreach(json_object_get(m, "as"), j, u)
      if (json_string_value(u)) room_breakout_assign(room, b, json_string_value(u));
    struct croom *bc = croom_get(cl, id, 1);
    if (bc == NULL) continue;
    snprintf(bc->parent, sizeof(bc->parent), "%s", room->id);
    if (!bc->owned && !bc->acquiring && !bc->rebuilding) room_resolve(cl, bc);
  }
  struct room_history *hi = room->hist;
  json_array_foreach(json_object_get(snap, "recordings"), i, m) {
    const char *id = json_string_value(json_object_get(m, "id"));
    if (hi == NULL || id == NULL || history_recording_find(hi, id)) continue;
    struct recording *rc = history_recording_start(hi, json_string_value(json_object_get(m, "by")) ?: "",
                                                   (uint64_t)json_integer_value(json_object_get(m, "t0")));
    if (rc == NULL) continue;
    snprintf(rc->id, sizeof(rc->id), "%s", id);
    snprintf(rc->stopped_by, sizeof(rc->stopped_by), "%s", json_string_value(json_object_get(m, "sb")) ?: "");
    snprintf(rc->format, sizeof(rc->format), "%s", json_string_value(json_object_get(m, "fmt")) ?: "webm");
    rc->stopped_ms = (uint64_t)json_integer_value(json_object_get(m, "t1"));
  }
  json_array_foreach(json_object_get(snap, "streams"), i, m) {
    const char *id = json_string_value(json_object_get(m, "id"));
    if (hi == NULL || id == NULL || history_stream_find(hi, id)) continue;
    struct live_stream *st = history_stream_start(
        hi, json_string_value(json_object_get(m, "name")) ?: "", json_string_value(json_object_get(m, "tg")) ?: "",
        json_string_value(json_object_get(m, "tr")) ?: "", json_string_value(json_object_get(m, "by")) ?: "",
        (uint64_t)json_integer_value(json_object_get(m, "t0")));
    if (st == NULL) continue;
    snprintf(st->id, sizeof(st->id), "%s", id);
    snprintf(st->stopped_by, sizeof(st->stopped_by), "%s", json_string_value(json_object_get(m, "sb")) ?: "");
    st->stopped_ms = (uint64_t)json_integer_value(json_object_get(m, "t1"));
  }
}

/* A breakout room claimed by its family's new owner with nothing to
 * rebuild (nobody ever joined it): it is opened again, held by its main room. */
static void family_room_ensure(struct cluster *cl, struct croom *cr) {
  if (!cr->parent[0] || hub_room_find(cl->h, cr->parent) == NULL || hub_room_find(cl->h, cr->id)) return;
  struct room *br = hub_room_create(cl->h, cr->id);
  if (br == NULL) return;
  snprintf(br->parent, sizeof(br->parent), "%s", cr->parent);
  br->held = 1;
  cr->dirty = 1;
}

static void room_resolve(struct cluster *cl, struct croom *cr);

/* Where a member's or waiter's session is connected: this instance (no
 * link: a local socket) or another one and its link there; "" for none. */
static void session_where(const struct cluster *cl, const struct conn *c, const char **inst, const char **link) {
  *inst = "", *link = "";
  if (c == NULL) return;
  if (c->proxy) {
    const struct remote *rm = c->cluster;
    *inst = rm->inst;
    *link = strchr(rm->key, '/') + 1;
  } else {
    *inst = cl->inst;
  }
}

/* The waiting room, in arrival order: claims (a waiter is admitted with
 * them), since when, and where each waiter is connected, so that a new
 * owner can admit a waiter of a dead owner's room without a reconnect. */
static json_t *waiters_to_snap(const struct cluster *cl, const struct room *r) {
  json_t *ws = json_array();
  for (const struct waiter *w = r->wait_head; w; w = w->next) {
    const char *inst, *link;
    char cs[64];
    session_where(cl, w->session, &inst, &link);
    claims_to_fields(&w->claims, cs, sizeof(cs));
    json_array_append_new(ws, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "u", w->claims.sub, "n",
                                        w->claims.name, "rm", w->claims.room, "cl", cs, "exp",
                                        (json_int_t)w->claims.exp, "since", (json_int_t)w->since_ms, "inst",
                                        inst, "link", link));
  }
  return ws;
}

static void snapshot_write(struct cluster *cl, struct croom *cr) {
  struct room *r = hub_room_find(cl->h, cr->id);
  if (r == NULL) return;
  json_t *members = json_array(), *hands = json_array(), *banned = json_array();
  for (struct participant *p = r->head; p; p = p->next) {
    const char *inst, *link;
    char sid[33], rt[65];
    session_where(cl, p->session, &inst, &link);
    json_array_append_new(
        members,
        json_pack("{s:s,s:s,s:i,s:I,s:I,s:i,s:I,s:I,s:s,s:s,s:I,s:i,s:i,s:i,s:s,s:s}", "u", p->user_id, "n",
                  p->name, "role", (int)p->role, "ps", (json_int_t)p->perms_set, "pv", (json_int_t)p->perms_val,
                  "orole", (int)p->origin_role, "os", (json_int_t)p->origin_set, "ov",
                  (json_int_t)p->origin_val, "sid", room_participant_session_id(p, sid), "rt", room_participant_resume_token(p, rt), "joined",
                  (json_int_t)p->joined_ms, "a", p->audio, "v", p->video, "s", p->screen, "inst", inst,
                  "link", link));
  }
  for (size_t i = 0; i < r->nhands; i++)
    json_array_append_new(hands, json_pack("{s:s,s:s,s:I}", "u", r->hands[i].user_id, "n", r->hands[i].name,
                                           "ms", (json_int_t)r->hands[i].raised_ms));
  struct map_entry *e;
  for (size_t i = 0; i < r->banned.nbuckets; i++)
    for (e = r->banned.buckets[i]; e; e = e->next) json_array_append_new(banned, json_string(e->key));
  const struct room_settings *s = &r->settings;
  json_t *snap = json_pack(
      "{s:I,s:I,s:o,s:o,s:o,s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i}}", "seq", (json_int_t)r->seq, "created",
      (json_int_t)r->created_ms, "members", members, "hands", hands, "banned", banned, "settings", "locked",
      s->locked, "waiting_room", s->waiting_room, "mute_on_join", s->mute_on_join, "max", s->max_participants,
      "chat", s->chat_enabled, "reactions", s->reactions_enabled, "ssmo", s->screen_share_moderators_only);
  if (snap) family_to_snap(r, snap);
  if (snap) json_object_set_new(snap, "waiters", waiters_to_snap(cl, r));
  char *txt = snap ? json_dumps(snap, JSON_COMPACT) : NULL;
  json_decref(snap);
  log_debug("snapshot room=%s seq=%" PRIu64 " ok=%d", cr->id, r->seq, txt != NULL);
  if (txt == NULL) return;
  char lease[KEY_MAX], key[KEY_MAX], prefix[40];
  key_of(lease, "lease", cr->id);
  key_of(key, "snap", cr->id);
  snprintf(prefix, sizeof(prefix), "%s:", cl->inst);
  const char *argv[] = {"EVAL", LUA_SNAP, "2", lease, key, prefix, txt};
  cmd(cl, append_cb, NULL, 1, 7, argv, NULL);
  free(txt);
  cr->dirty = 0;
  cr->snap_ms = now_ms(cl);
}

/* A connection of this instance whose room is owned here now joins as on
 * a single instance. */
/* The opens deferred while the room's lease reply or rebuild was pending,
 * in arrival order: joined now, or told to reconnect if the room is not
 * ours after all. */
static void deferred_run(struct cluster *cl, struct croom *cr) {
  struct remote *rm;
  while ((rm = cr->deferred) != NULL) {
    cr->deferred = rm->defer_next;
    rm->deferred = 0;
    if (rm->closed) {
      remote_free_later(cl, rm);
      continue;
    }
    if (!cr->owned || cr->rebuilding) {
      /* Not ours after all: the sender finds the owner (its messages it
       * kept, and sends again). */
      const char *slash = strchr(rm->key, '/');
      open_refused(cl, rm->inst, slash ? slash + 1 : "", cr->id);
      rm->closed = 1;
      map_del(&cl->remotes, rm->key);
      remote_free_later(cl, rm);
      continue;
    }
    owner_join(cl, rm->fake, cr->id, &rm->tc, rm->adm, rm->has_rt ? rm->rt : NULL, rm->ls, rm->grant.data);
    buf_free(&rm->grant);
    size_t off = 0;
    while (off + 4 <= rm->q.len && !rm->closed) {
      uint32_t n;
      memcpy(&n, rm->q.data + off, 4);
      gate_push(cl, rm->fake, rm->q.data + off + 4, n);
      off += 4 + n;
    }
    buf_free(&rm->q);
  }
}

static void links_join_local(struct cluster *cl, struct croom *cr) {
  deferred_run(cl, cr);
  while (cr->links) {
    struct link *l = cr->links;
    struct conn *c = l->c;
    struct token_claims tc = l->claims;
    int adm = l->admitted, has_rt = l->has_rt;
    char rt[80];
    uint64_t ls = l->last_seq;
    snprintf(rt, sizeof(rt), "%s", l->rt);
    struct buf q = l->queue, g = l->grant;
    memset(&l->queue, 0, sizeof(l->queue));
    memset(&l->grant, 0, sizeof(l->grant));
    link_unlink(cl, l);
    if (c == NULL) {
      buf_free(&q);
      buf_free(&g);
      continue;
    }
    owner_join(cl, c, cr->id, &tc, adm, has_rt ? rt : NULL, ls, g.data);
    buf_free(&g);
    size_t off = 0;
    while (off + 4 <= q.len && !c->closing) {
      uint32_t n;
      memcpy(&n, q.data + off, 4);
      signal_on_message(c, q.data + off + 4, n);
      off += 4 + n;
    }
    buf_free(&q);
  }
}

/* A session of the snapshot (a member's or a waiter's entry m) on the new
 * owner: the local connection of this instance's link, or a remote session
 * of a live instance's link (its frames go through the stream as before
 * the takeover: the link is still there, now sending to this owner).
 * NULL when its instance is gone. */
static struct conn *snap_session(struct cluster *cl, struct croom *cr, const redisReply *alive, json_t *m) {
  const char *inst = json_string_value(json_object_get(m, "inst"));
  const char *link = json_string_value(json_object_get(m, "link"));
  int live = 0;
  for (size_t j = 0; inst && inst[0] && j < alive->elements; j++)
    if (alive->element[j]->type == REDIS_REPLY_STRING && strcmp(alive->element[j]->str, inst) == 0) live = 1;
  if (live && strcmp(inst, cl->inst) == 0) {
    struct link *l = link && link[0] ? map_get(&cl->links, link) : NULL;
    if (l && l->c) {
      struct conn *c = l->c;
      if (l->queue.len && l->confirmed) {
        /* Held while the room was rebuilt here (and taken back from the
         * dead owner): run once c is a member again (feeds_run). */
        if (cl->nfeeds == cl->cap_feeds) {
          size_t cap = cl->cap_feeds ? 2 * cl->cap_feeds : 8;
          struct feed *nf = realloc(cl->feeds, cap * sizeof(*nf));
          if (nf) cl->feeds = nf, cl->cap_feeds = cap;
        }
        if (cl->nfeeds < cl->cap_feeds) {
          cl->feeds[cl->nfeeds].c = c;
          cl->feeds[cl->nfeeds++].q = l->queue;
          memset(&l->queue, 0, sizeof(l->queue));
        }
      }
      link_unlink(cl, l);
      return c;
    }
  } else if (live && link && link[0]) {
    struct remote *rm = remote_new(cl, inst, link, cr->id, 0);
    if (rm == NULL) return NULL;
    /* The session may have ended after the snapshot while its instance
     * still sent to the dead owner (its "end" was lost): that instance
     * answers this with an end for a link it no longer has, and sends to
     * this owner from now on. */
    const char *fv[] = {"k", "probe", "i", cl->inst, "id", link, "room", cr->id};
    inbox_send(cl, inst, 8, fv, NULL);
    return rm->fake;
  }
  return NULL;
}

/* The messages of links made members by the rebuild, in order, as
 * links_join_local does for the others. */
static void feeds_run(struct cluster *cl) {
  for (size_t i = 0; i < cl->nfeeds; i++) {
    struct conn *c = cl->feeds[i].c;
    struct buf *q = &cl->feeds[i].q;
    size_t off = 0;
    while (off + 4 <= q->len && !c->closing) {
      uint32_t n;
      memcpy(&n, q->data + off, 4);
      signal_on_message(c, q->data + off + 4, n);
      off += 4 + n;
    }
    buf_free(q);
  }
  cl->nfeeds = 0;
}

/* Members of the snapshot, their sessions where their instance lives, the
 * room log from the stream; then the room goes on from the stream's seq. */
static void rebuild_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  if (cl == NULL) return;
  struct croom *cr = croom_get(cl, (const char *)priv, 0);
  free(priv);
  if (cr == NULL) return;
  cr->rebuilding = 0;
  redisReply *r = reply;
  struct hub *h = cl->h;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || hub_room_find(h, cr->id)) {
    if (r && r->type == REDIS_REPLY_ERROR) log_warn("rebuild_failed room=%s reason=\"%s\"", cr->id, r->str);
    links_join_local(cl, cr);
    return;
  }
  const redisReply *snapr = r->element[0], *entries = r->element[1], *alive = r->element[2];
  const redisReply *erases = r->elements > 3 && r->element[3]->type == REDIS_REPLY_ARRAY ? r->element[3] : NULL;
  json_t *snap = snapr->type == REDIS_REPLY_STRING && snapr->len ? json_loadb(snapr->str, snapr->len, 0, NULL) : NULL;
  uint64_t top_seq = 0, top_sub = 0;
  if (entries->elements) {
    char id[48];
    reply_str(arr_at(entries->element[entries->elements - 1], 0), id, sizeof(id));
    sscanf(id, "%" SCNu64 "-%" SCNu64, &top_seq, &top_sub);
  }
  if (snap == NULL && entries->elements == 0) {
    family_room_ensure(cl, cr);
    links_join_local(cl, cr);
    return;
  }
  struct room *room = hub_room_create(h, cr->id);
  if (room == NULL) {
    json_decref(snap);
    links_join_local(cl, cr);
    return;
  }
  cl->st.takeovers++;
  uint64_t now = uv_now(h->loop);
  json_t *s = json_object_get(snap, "settings");
  if (s) {
    room->settings.locked = (int)json_integer_value(json_object_get(s, "locked"));
    room->settings.waiting_room = (int)json_integer_value(json_object_get(s, "waiting_room"));
    room->settings.mute_on_join = (int)json_integer_value(json_object_get(s, "mute_on_join"));
    room->settings.max_participants = (int)json_integer_value(json_object_get(s, "max"));
    room->settings.chat_enabled = (int)json_integer_value(json_object_get(s, "chat"));
    room->settings.reactions_enabled = (int)json_integer_value(json_object_get(s, "reactions"));
    room->settings.screen_share_moderators_only = (int)json_integer_value(json_object_get(s, "ssmo"));
  }
  uint64_t snap_seq = (uint64_t)json_integer_value(json_object_get(snap, "seq"));
  room->seq = top_seq > snap_seq ? top_seq : snap_seq;
  size_t i;
  json_t *m;
  struct participant *away[512];
  size_t naway = 0;
  json_array_foreach(json_object_get(snap, "members"), i, m) {
    struct token_claims tc;
    memset(&tc, 0, sizeof(tc));
    snprintf(tc.sub, sizeof(tc.sub), "%s", json_string_value(json_object_get(m, "u")));
    snprintf(tc.name, sizeof(tc.name), "%s", json_string_value(json_object_get(m, "n")) ?: "");
    tc.role = (enum room_role)json_integer_value(json_object_get(m, "role"));
    struct participant *p = room_participant_new(&tc, hub_now_ms());
    if (p == NULL) continue;
    p->role = (enum room_role)json_integer_value(json_object_get(m, "role"));
    p->perms_set = (uint32_t)json_integer_value(json_object_get(m, "ps"));
    p->perms_val = (uint32_t)json_integer_value(json_object_get(m, "pv"));
    p->origin_role = (enum room_role)json_integer_value(json_object_get(m, "orole"));
    p->origin_set = (uint32_t)json_integer_value(json_object_get(m, "os"));
    p->origin_val = (uint32_t)json_integer_value(json_object_get(m, "ov"));
    room_participant_ids_from_hex(p, json_string_value(json_object_get(m, "sid")),
                                  json_string_value(json_object_get(m, "rt")));
    p->joined_ms = (uint64_t)json_integer_value(json_object_get(m, "joined"));
    p->audio = (int)json_integer_value(json_object_get(m, "a"));
    p->video = (int)json_integer_value(json_object_get(m, "v"));
    p->screen = (int)json_integer_value(json_object_get(m, "s"));
    room_participant_perms_update(p);
    if (room_participant_add(room, p) != 0) {
      room_participant_free(p);
      continue;
    }
    struct conn *c = snap_session(cl, cr, alive, m);
    if (c) {
      p->session = c;
      c->part = p;
      continue;
    }
    p->away_ms = now;
    room->naway++;
    h->naway++;
    if (naway < 512) away[naway++] = p;
  }
  json_array_foreach(json_object_get(snap, "hands"), i, m)
    room_hand_raise(room, json_string_value(json_object_get(m, "u")) ?: "",
                    json_string_value(json_object_get(m, "n")) ?: "",
                    (uint64_t)json_integer_value(json_object_get(m, "ms")));
  json_array_foreach(json_object_get(snap, "banned"), i, m)
    if (json_string_value(m)) map_put(&room->banned, json_string_value(m), (void *)1);
  /* The waiting room: waiters still connected to a live instance wait on
   * (a host admits them here); those of the dead instance are gone. */
  json_array_foreach(json_object_get(snap, "waiters"), i, m) {
    const char *u = json_string_value(json_object_get(m, "u"));
    if (u == NULL || !id_valid(u, strlen(u)) || room_waiter_find(room, u) ||
        room_participant_find(room, u))
      continue;
    struct token_claims tc;
    memset(&tc, 0, sizeof(tc));
    snprintf(tc.sub, sizeof(tc.sub), "%s", u);
    snprintf(tc.name, sizeof(tc.name), "%s", json_string_value(json_object_get(m, "n")) ?: "");
    snprintf(tc.room, sizeof(tc.room), "%s", json_string_value(json_object_get(m, "rm")) ?: "");
    claims_parse(json_string_value(json_object_get(m, "cl")) ?: "", &tc);
    tc.exp = (int64_t)json_integer_value(json_object_get(m, "exp"));
    struct conn *c = snap_session(cl, cr, alive, m);
    if (c == NULL) continue;
    struct waiter *w = room_waiter_add(room, c, &tc, (uint64_t)json_integer_value(json_object_get(m, "since")));
    if (w == NULL) {
      ws_close(c, 1011, "internal error");
      continue;
    }
    c->waiter = w;
  }
  family_from_snap(cl, room, snap);
  /* The room log, for resumes across the takeover. */
  for (size_t j = 0; j < entries->elements; j++) {
    const redisReply *e = entries->element[j], *f = arr_at(e, 1);
    char k[4], id[48], to[ID_MAX + 1], ex[ID_MAX + 1], al[ID_MAX + 1];
    field_str(f, "k", k, sizeof(k));
    if (k[0] != 'L') continue;
    reply_str(arr_at(e, 0), id, sizeof(id));
    const redisReply *fr = field(f, "f");
    if (fr == NULL || fr->type != REDIS_REPLY_STRING) continue;
    struct outbuf *b = outbuf_new(fr->len);
    if (b == NULL) continue;
    memcpy(b->data, fr->str, fr->len);
    b->len = fr->len;
    /* Erases published after the entry was logged: the dead owner applied
     * them to its log, not to the stream, so they apply again here. */
    long long ms = field_int(f, "ms");
    int drop = 0;
    for (size_t x = 0; erases && x < erases->elements && !drop && b; x++) {
      char eu[ID_MAX + 1], ems[24];
      if (reply_str(arr_at(erases->element[x], 0), eu, sizeof(eu)) != 0 ||
          reply_str(arr_at(erases->element[x], 1), ems, sizeof(ems)) != 0 || ms > strtoll(ems, NULL, 10))
        continue;
      struct outbuf *nb = durable_erase_frame(eu, b, &drop);
      if (nb) {
        outbuf_unref(b);
        b = nb;
      }
    }
    if (drop || b == NULL) {
      outbuf_unref(b);
      continue;
    }
    field_str(f, "to", to, sizeof(to));
    field_str(f, "ex", ex, sizeof(ex));
    field_str(f, "al", al, sizeof(al));
    roomlog_append(&room->log, strtoull(id, NULL, 10), now, (int)field_int(f, "t"), b, to[0] ? to : NULL,
                   ex[0] ? ex : NULL, al[0] ? al : NULL, (uint32_t)field_int(f, "pm"));
    outbuf_unref(b);
  }
  /* A log that does not reach back to the snapshot cannot serve resumes from before it. */
  if (room->log.n == 0 || roomlog_at(&room->log, 0)->seq > snap_seq + 1)
    if (room->log.dropped_seq < snap_seq) room->log.dropped_seq = snap_seq;
  cr->last_seq = room->seq;
  cr->sub = top_seq == room->seq ? top_sub : 0;
  log_info("takeover room=%s seq=%" PRIu64 " members=%zu away=%zu log=%zu", cr->id, room->seq, room->count,
           naway, room->log.n);
  json_decref(snap);
  /* Members whose instance is gone: the grace period starts now. */
  for (size_t j = 0; j < naway; j++) {
    json_t *pl = json_pack("{s:s,s:s}", "user_id", away[j]->user_id, "status", "reconnecting");
    hub_publish(h, room, "participant-update", "server", NULL, away[j]->user_id, pl);
    json_decref(pl);
  }
  cr->dirty = 1;
  feeds_run(cl);
  links_join_local(cl, cr);
}

static void become_owner(struct cluster *cl, struct croom *cr) {
  cr->owned = 1;
  cr->watching = 0;
  snprintf(cr->owner, sizeof(cr->owner), "%s", cl->inst);
  if (hub_room_find(cl->h, cr->id)) {
    links_join_local(cl, cr);
    return;
  }
  /* Rebuild from the snapshot and the stream (a fresh room has neither). */
  char snap[KEY_MAX], stream[KEY_MAX];
  key_of(snap, "snap", cr->id);
  key_of(stream, "stream", cr->id);
  /* Messages our links sent the dead owner and it never read: taken back
   * first (their replies come before the rebuild's). */
  for (struct link *l = cr->links; l; l = l->next)
    if (l->opened && l->confirmed && l->sent_to[0] && strcmp(l->sent_to, cl->inst) != 0 && !l->recovering)
      link_recover(cl, l, l->sent_to);
  const char *argv[] = {"EVAL", LUA_REBUILD, "3", snap, stream, BCAST_KEY};
  cr->rebuilding = 1;
  cmd(cl, rebuild_cb, strdup(cr->id), 0, 6, argv, NULL);
}

/* Steps down: the lease is someone else's. Local members reconnect (1012)
 * and find the new owner. */
static void step_down(struct cluster *cl, struct croom *cr) {
  cr->owned = 0;
  struct room *r = hub_room_find(cl->h, cr->id);
  log_warn("lease_lost room=%s", cr->id);
  if (r) hub_room_evict(cl->h, r, 1012, "room moved to another instance");
}

static void acquire_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  if (cl == NULL) {
    free(priv);
    return;
  }
  struct croom *cr = croom_get(cl, (const char *)priv, 0);
  free(priv);
  if (cr == NULL) return;
  cr->acquiring = 0;
  redisReply *r = reply;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
    if (r && r->type == REDIS_REPLY_ERROR) log_warn("acquire_failed room=%s reason=\"%s\"", cr->id, r->str);
    return; /* Redis is away: tried again on the next tick */
  }
  int owned = r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1;
  char val[64], lid[48];
  reply_str(r->element[1], val, sizeof(val));
  reply_str(r->element[2], lid, sizeof(lid));
  if (owned) {
    int was = cr->owned;
    snprintf(cr->lease, sizeof(cr->lease), "%s", val);
    const char *colon = strrchr(val, ':');
    cr->fence = colon ? strtoull(colon + 1, NULL, 10) : 0;
    if (!was) {
      log_info("lease_acquired room=%s lease=%s", cr->id, val);
      become_owner(cl, cr);
    }
    return;
  }
  if (cr->owned) {
    step_down(cl, cr);
  }
  deferred_run(cl, cr); /* opens that came too early: reconnect to the owner */
  if (val[0] == '\0') return; /* no lease, but the last owner still beats: wait */
  char owner[32];
  snprintf(owner, sizeof(owner), "%.*s", (int)(strrchr(val, ':') ? strrchr(val, ':') - val : 0), val);
  int changed = strcmp(owner, cr->owner) != 0;
  snprintf(cr->owner, sizeof(cr->owner), "%s", owner);
  if (!cr->watching) {
    snprintf(cr->pos, sizeof(cr->pos), "%s", lid[0] ? lid : "0-0");
    cr->watching = 1;
    reader_wake(cl);
  }
  for (struct link *l = cr->links; l; l = l->next) {
    if (!l->opened) link_send_open(cl, l);
    else if (changed) link_retarget(cl, l, owner); /* rebuilt there from the snapshot */
  }
}

/* Runs ACQUIRE for cr (fn gets the reply: {owned, lease, last stream id}). */
static void croom_acquire(struct cluster *cl, struct croom *cr, redisCallbackFn *fn, void *priv) {
  char lease[KEY_MAX], fence[KEY_MAX], stream[KEY_MAX], hb[KEY_MAX], ttl[16];
  key_of(lease, "lease", cr->id);
  key_of(fence, "fence", cr->id);
  key_of(stream, "stream", cr->id);
  key_of(hb, "hb", cr->owner[0] && strcmp(cr->owner, cl->inst) != 0 ? cr->owner : "-");
  snprintf(ttl, sizeof(ttl), "%d", LEASE_MS);
  const char *argv[] = {"EVAL", LUA_ACQUIRE, "4", lease, fence, stream, hb, cl->inst, ttl};
  cr->acquiring = 1;
  cmd(cl, fn, priv, 0, 9, argv, NULL);
}

static void room_resolve(struct cluster *cl, struct croom *cr) {
  if (cr->acquiring || cr->rebuilding) return;
  char *id = strdup(cr->id);
  if (id == NULL) return;
  croom_acquire(cl, cr, acquire_cb, id);
}

/* A link joins its room's list (arrival order: the owner admits in the order
 * the opens come) and goes to the owner, or joins here. */
static void link_place(struct cluster *cl, struct link *l, struct croom *cr) {
  l->room = cr;
  struct link **pp = &cr->links;
  while (*pp) pp = &(*pp)->next;
  *pp = l;
  if (cr->owned && !cr->rebuilding) {
    links_join_local(cl, cr);
  } else if (!cr->owned && cr->owner[0] && cr->watching) {
    link_send_open(cl, l);
  } else {
    room_resolve(cl, cr);
  }
}

/* The reply to a grant's SET NX: the first use anywhere in the cluster goes
 * on to the owner; a grant spent before (through any instance) is refused.
 * With Redis away the owner's own spent set still refuses a second use
 * there. */
static void spend_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  char *key = priv;
  struct link *l = cl ? map_get(&cl->links, key) : NULL;
  free(key);
  if (l == NULL || !l->spending) return; /* the client went away meanwhile */
  redisReply *r = reply;
  l->spending = 0;
  if (r && r->type == REDIS_REPLY_NIL) {
    struct conn *c = l->c;
    log_info("ws_refused room=%s user=%s code=INVALID_TOKEN grant=spent", l->spend_room, l->claims.sub);
    link_unlink(cl, l);
    signal_error(c, API_ERR_INVALID_TOKEN, "this grant was used already", NULL, 0);
    ws_close(c, 1008, api_err_code(API_ERR_INVALID_TOKEN));
    return;
  }
  struct croom *cr = croom_get(cl, l->spend_room, 1);
  if (cr == NULL) {
    struct conn *c = l->c;
    link_unlink(cl, l);
    ws_close(c, 1011, "internal error");
    return;
  }
  link_place(cl, l, cr);
}

enum api_err cluster_grant_precheck(struct hub *h, const char *grant, const char *room_id,
                                    struct token_claims *claims) {
  struct grant_claims g;
  /* Without a key yet (public-key tokens, Redis never reached): per instance. */
  if (!h->grant_key_ready) return op_grant_check(h, grant, room_id, claims, 1);
  if (grant_verify(h->grant_key, grant, strlen(grant), (int64_t)(hub_now_ms() / 1000), &g) != API_OK)
    return API_ERR_INVALID_TOKEN;
  if (strcmp(g.room, room_id) != 0) return API_ERR_TOKEN_ROOM_MISMATCH;
  memset(claims, 0, sizeof(*claims));
  snprintf(claims->sub, sizeof(claims->sub), "%s", g.user);
  snprintf(claims->room, sizeof(claims->room), "%s", room_id);
  claims->exp = g.exp;
  return API_OK;
}

int cluster_ws_open(struct hub *h, struct conn *c, const char *room_id, const struct token_claims *claims,
                    int admitted, const char *resume_token, uint64_t last_seq, const char *grant) {
  struct cluster *cl = h->cluster;
  /* A grant (with the shared key) always takes this path: its claims are
   * the owner's to make (cluster_grant_precheck filled only the user). */
  int spend = grant && grant[0] && h->grant_key_ready;
  struct croom *cr = croom_get(cl, room_id, 1);
  if (cr == NULL && !spend) return 0;
  if (!spend && cr->owned && !cr->rebuilding && hub_room_find(h, room_id)) return 0;
  if (ws_accept(c) != 0) return 1;
  struct grant_claims g;
  if (spend && (cr == NULL ||
                grant_verify(h->grant_key, grant, strlen(grant), (int64_t)(hub_now_ms() / 1000), &g) != API_OK)) {
    signal_error(c, API_ERR_INVALID_TOKEN, "the grant expired", NULL, 0); /* between the precheck and now */
    ws_close(c, 1008, api_err_code(API_ERR_INVALID_TOKEN));
    return 1;
  }
  struct link *l = calloc(1, sizeof(*l));
  if (l == NULL || (grant && grant[0] && buf_append(&l->grant, grant, strlen(grant)) != 0)) {
    free(l);
    ws_close(c, 1011, "internal error");
    return 1;
  }
  l->cl = cl;
  l->c = c;
  l->id = ++cl->next_id;
  snprintf(l->key, sizeof(l->key), "%" PRIu64, l->id);
  l->claims = *claims;
  l->admitted = admitted;
  l->has_rt = resume_token != NULL;
  if (resume_token) snprintf(l->rt, sizeof(l->rt), "%s", resume_token);
  l->last_seq = last_seq;
  map_put(&cl->links, l->key, l);
  c->cluster = l;
  if (!spend) {
    link_place(cl, l, cr);
    return 1;
  }
  /* Single use across the cluster: the first SET NX of the jti wins, kept
   * until the grant would have expired anyway. */
  l->spending = 1;
  snprintf(l->spend_room, sizeof(l->spend_room), "%s", room_id);
  char key[KEY_MAX], px[24];
  key_of(key, "grant", g.jti);
  int64_t left_ms = g.exp * 1000 - (int64_t)hub_now_ms();
  snprintf(px, sizeof(px), "%" PRId64, (left_ms > 0 ? left_ms : 0) + 1000);
  const char *argv[] = {"SET", key, "1", "NX", "PX", px};
  char *k = strdup(l->key);
  if (k == NULL) {
    l->spending = 0;
    link_place(cl, l, cr);
    return 1;
  }
  cmd(cl, spend_cb, k, 0, 6, argv, NULL);
  return 1;
}

/* ---- REST on an instance that does not own the room ---- */

/* The forward still waiting under the call id priv carries, or NULL
 * (answered meanwhile). */
static struct fwd_http *fw_waiting(struct cluster *cl, void *priv) {
  char id[24];
  snprintf(id, sizeof(id), "%" PRIu64, (uint64_t)(uintptr_t)priv);
  return cl ? map_get(&cl->http_wait, id) : NULL;
}

/* The forward's inbox entry id (for LUA_FWD_CHECK). priv: the call's id. */
static void fwd_added_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  struct fwd_http *fw = fw_waiting(cl, priv);
  if (fw && r && r->type == REDIS_REPLY_STRING) reply_str(r, fw->entry, sizeof(fw->entry));
}

static void http_forward(struct cluster *cl, struct fwd_http *fw, const char *owner) {
  char m[8], id[24];
  snprintf(m, sizeof(m), "%d", fw->method);
  snprintf(id, sizeof(id), "%" PRIu64, fw->id);
  /* What the client asked for: keep-alive (HTTP/1.1 without "Connection:
   * close", or 1.0 with "keep-alive"), as http_reply would decide here. */
  int ka = fw->c && fw->c->req->complete && http_should_keep_alive(&fw->c->req->parser);
  const char *fv[] = {"k", "http", "i", cl->inst, "id", id, "room", fw->room, "m", m,
                      "url", fw->url.data ? fw->url.data : "", "auth", fw->auth.data ? fw->auth.data : "",
                      "ct", fw->ctype.data ? fw->ctype.data : "", "rc", fw->counted ? "1" : "0",
                      "ka", ka ? "1" : "0", "body", fw->body.data ? fw->body.data : ""};
  size_t fl[22];
  for (int i = 0; i < 22; i++) fl[i] = i == 21 ? fw->body.len : strlen(fv[i]);
  map_put(&cl->http_wait, id, fw);
  snprintf(fw->owner, sizeof(fw->owner), "%s", owner);
  fw->entry[0] = '\0';
  fw->sent_ms = now_ms(cl);
  fw->unsent = 0;
  /* The entry id is wanted only when the XADD goes out now (a held command
   * has no callback); the priv is the id itself, nothing to free. */
  if (cl->cmd_up && cl->pend_head == NULL)
    inbox_send_cb(cl, owner, fwd_added_cb, (void *)(uintptr_t)fw->id, 22, fv, fl);
  else
    inbox_send(cl, owner, 22, fv, fl);
  cl->st.forwarded_out++;
}

/* A call waiting for Redis holds its request (http_stream_set without a
 * body: the HTTP layer keeps the request and reads nothing more until
 * http_request_done), so it is answered in order and the connection stays
 * kept alive. The stream's on_abort tells that the client went away. */
static void fw_abort(void *data) {
  struct fwd_http *fw = data;
  fw->c = NULL;
}

static const struct http_stream fw_stream = {NULL, NULL, fw_abort};

static void fwd_free(struct fwd_http *fw) {
  if (fw->c && fw->c->req->stream_data == fw) http_stream_set(fw->c, NULL, NULL);
  if (fw->c && fw->c->cluster == fw) fw->c->cluster = NULL;
  buf_free(&fw->url), buf_free(&fw->auth), buf_free(&fw->ctype), buf_free(&fw->body);
  free(fw);
}

/* 1 while fw's connection still waits for its answer; otherwise frees fw
 * (the client went away) and returns 0. */
static int fw_keep(struct cluster *cl, struct fwd_http *fw) {
  if (cl != NULL && fw->c != NULL && !fw->c->closing && !fw->c->ending) return 1;
  fwd_free(fw);
  return 0;
}

/* Takes c's request back from fw (freed): the caller answers it now. */
static struct conn *fw_take(struct fwd_http *fw) {
  struct conn *c = fw->c;
  fwd_free(fw);
  return c;
}

/* The end of a call answered after the request handler returned: the next
 * request on the connection goes on, unless the answer is itself waiting
 * (a forward, a lookup) or streamed (a download). */
static void fw_done(struct conn *c) {
  if (c->req->stream == NULL) http_request_done(c);
}

/* The api_call verdict for calls counted already (allowed). */
static void counted_verdict(struct cluster *cl, int on) {
  cl->api_verdict_on = on;
  memset(&cl->api_verdict, 0, sizeof(cl->api_verdict));
  cl->api_verdict.allowed = 1;
  cl->api_verdict.limit = cl->h->rl.rules[RATE_API_CALL].limit;
}

/* Answers fw's call here, as a single instance would. Frees fw. */
static void fw_dispatch_here(struct cluster *cl, struct fwd_http *fw) {
  int counted = fw->counted;
  struct conn *c = fw_take(fw);
  if (counted) counted_verdict(cl, 1);
  api_dispatch(c);
  cl->api_verdict_on = 0;
  fw_done(c);
}

static void fw_park(struct cluster *cl, struct fwd_http *fw);

static void lookup_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  char val[64] = "";
  if (r && r->type == REDIS_REPLY_STRING) reply_str(r, val, sizeof(val));
  const char *colon = strrchr(val, ':');
  if (val[0] && colon && strncmp(val, cl->inst, (size_t)(colon - val)) != 0) {
    char owner[32];
    snprintf(owner, sizeof(owner), "%.*s", (int)(colon - val), val);
    /* A call taken back from a dead owner whose lease has not expired yet:
     * it waits for the takeover. */
    if (fw->owner[0] && strcmp(owner, fw->owner) == 0) fw_park(cl, fw);
    else http_forward(cl, fw, owner);
    return;
  }
  /* The lease is ours but the room is not rebuilt yet: wait for it. */
  struct croom *cr = val[0] && fw->room[0] ? croom_get(cl, fw->room, 0) : NULL;
  if (cr && (cr->acquiring || cr->rebuilding)) {
    fw_park(cl, fw);
    return;
  }
  /* Answer here, as a single instance would (the room is not live anywhere,
   * or this instance took it over). */
  fw_dispatch_here(cl, fw);
}

/* ---- forwarded calls whose owner died ----
 * A forwarded call is answered by the owner through our inbox. If the owner
 * dies first, nothing would answer it until the HTTP header timeout closed
 * the client's connection. Every tick, calls waiting FWD_CHECK_MS or more
 * are checked (LUA_FWD_CHECK): with the owner's heartbeat gone, a call is
 * sent again through a fresh lookup of the lease (a new id: a late answer
 * of the old owner is ignored) when that is safe: a GET or HEAD, or a call
 * the owner never read (its entry was still in the owner's inbox, now
 * deleted). Otherwise, or when no owner answered within the bound (a share
 * of the header timeout, so the client hears before the timeout closes its
 * connection), the client gets 503 SERVICE_UNAVAILABLE with a retry hint. */

/* A call taken back, waiting for the lease of its dead owner to expire or
 * for this instance's rebuild: checked again at the next tick. */
static void fw_park(struct cluster *cl, struct fwd_http *fw) {
  char id[24];
  snprintf(id, sizeof(id), "%" PRIu64, fw->id);
  fw->unsent = 1;
  fw->sent_ms = 0; /* checked at the next tick */
  map_put(&cl->http_wait, id, fw);
}

/* How long a forwarded call may wait for an answer: the header timeout
 * (which would close the client's connection) less a margin of two ticks,
 * so the 503 comes first. */
static uint64_t fw_bound_ms(const struct cluster *cl) {
  uint64_t t = (uint64_t)cl->srv->cfg->header_timeout_ms;
  return t > 4 * TIMER_MS ? t - 2 * TIMER_MS : t / 2;
}

static void fw_unavailable(struct cluster *cl, struct fwd_http *fw, const char *detail) {
  log_warn("forward_unanswered room=%s owner=%s", fw->room, fw->owner);
  cl->st.forwards_unanswered++;
  struct conn *c = fw_take(fw);
  http_reply_error(c, API_ERR_SERVICE_UNAVAILABLE, detail, LEASE_MS);
  fw_done(c);
}

static void fwd_check_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  struct fwd_http *fw = fw_waiting(cl, priv);
  if (fw == NULL) return; /* answered meanwhile */
  fw->checking = 0;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
      r->element[1]->type != REDIS_REPLY_INTEGER)
    return; /* Redis away: checked again */
  char id[24];
  snprintf(id, sizeof(id), "%" PRIu64, fw->id);
  map_del(&cl->http_wait, id);
  if (!fw_keep(cl, fw)) return;
  int alive = r->element[0]->integer == 1;
  if (r->element[1]->integer == 1) fw->unsent = 1;
  int safe = fw->unsent || fw->method == HTTP_GET || fw->method == HTTP_HEAD;
  if (fw->last_check) {
    fw_unavailable(cl, fw, fw->unsent ? "the room's instance did not take the call in time; it did not take effect"
                   : alive ? "the room's instance did not answer in time; the call may have taken effect"
                   : "the room's instance is gone; the call may have taken effect");
    return;
  }
  if (alive) {
    map_put(&cl->http_wait, id, fw); /* still working on it */
    return;
  }
  if (!safe) {
    fw_unavailable(cl, fw, "the room's instance is gone after it received the call; the call may have taken effect");
    return;
  }
  /* Resolve the owner again and send it there (a new id). */
  cl->st.forwards_retried++;
  fw->id = ++cl->next_id;
  char lease[KEY_MAX];
  key_of(lease, "lease", fw->room);
  const char *argv[] = {"GET", lease};
  cmd(cl, lookup_cb, fw, 0, 2, argv, NULL);
}

struct fw_scan { struct fwd_http *list[256]; size_t n; uint64_t now, bound; };

static void collect_fw(const char *k, void *v, void *arg) {
  struct fw_scan *fs = arg;
  struct fwd_http *fw = v;
  (void)k;
  if (!fw->checking && (fw->owner[0] || fw->unsent) && fs->n < 256 &&
      (fs->now - fw->sent_ms >= FWD_CHECK_MS || fs->now - fw->first_ms >= fs->bound))
    fs->list[fs->n++] = fw;
}

static void fwd_check(struct cluster *cl) {
  struct fw_scan fs;
  fs.n = 0;
  fs.now = now_ms(cl);
  fs.bound = fw_bound_ms(cl);
  map_each(&cl->http_wait, collect_fw, &fs);
  for (size_t i = 0; i < fs.n; i++) {
    struct fwd_http *fw = fs.list[i];
    char hb[KEY_MAX], inbox[KEY_MAX];
    key_of(hb, "hb", fw->owner);
    key_of(inbox, "inbox", fw->owner);
    fw->last_check = fs.now - fw->first_ms >= fs.bound;
    const char *argv[] = {"EVAL", LUA_FWD_CHECK, "2", hb, inbox, fw->unsent ? "" : fw->entry};
    fw->checking = 1;
    cmd(cl, fwd_check_cb, (void *)(uintptr_t)fw->id, 0, 6, argv, NULL);
  }
}

/* Rooms made here by POST /webrtc/rooms: this instance claims their lease,
 * so that joins and REST calls on other instances come to it. */
static void claim_local(const char *k, void *v, void *arg) {
  struct cluster *cl = arg;
  (void)v;
  struct croom *cr = croom_get(cl, k, 1);
  if (cr && !cr->owned && !cr->acquiring && !cr->watching) room_resolve(cl, cr);
}

/* POST /webrtc/rooms: the new room's lease is taken first (set if absent,
 * the ACQUIRE script), so two creations of one id through two instances
 * make one room; a room live elsewhere is ROOM_ALREADY_EXISTS. */
static void create_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  int taken = 0;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3)
    taken = !(r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1);
  if (cl) {
    /* The lease is ours (or someone else's) as after a join's ACQUIRE. */
    char *id = strdup(fw->room);
    struct croom *cr = croom_get(cl, fw->room, 0);
    if (id) acquire_cb(ac, reply, id);
    else if (cr) cr->acquiring = 0;
  }
  if (!fw_keep(cl, fw)) return;
  char room[ID_MAX + 1];
  snprintf(room, sizeof(room), "%s", fw->room);
  cl->taken = taken ? room : NULL;
  fw_dispatch_here(cl, fw);
  cl->taken = NULL;
  map_each(&cl->h->rooms, claim_local, cl);
}

/* GET /webrtc/rooms: the views the owners keep in Redis, then the list. */
static void list_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  json_t *views = json_array();
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *e = r->element[i];
    json_t *v = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
    if (json_is_object(v)) json_array_append(views, v);
    json_decref(v);
  }
  cl->listing = views;
  fw_dispatch_here(cl, fw);
  cl->listing = NULL;
  json_decref(views);
}

static struct fwd_http *fw_new(struct cluster *cl, struct conn *c, const char *room) {
  struct fwd_http *fw = calloc(1, sizeof(*fw));
  if (fw == NULL) return NULL;
  const char *url = c->req->url.data ? c->req->url.data : "";
  fw->cl = cl;
  fw->c = c;
  fw->id = ++cl->next_id;
  fw->first_ms = now_ms(cl);
  snprintf(fw->room, sizeof(fw->room), "%s", room);
  fw->method = c->req->parser.method;
  buf_append(&fw->url, url, c->req->url.len);
  if (c->req->hdr[HDR_AUTHORIZATION].len)
    buf_append(&fw->auth, c->req->hdr[HDR_AUTHORIZATION].data, c->req->hdr[HDR_AUTHORIZATION].len);
  if (c->req->hdr[HDR_CONTENT_TYPE].len)
    buf_append(&fw->ctype, c->req->hdr[HDR_CONTENT_TYPE].data, c->req->hdr[HDR_CONTENT_TYPE].len);
  if (c->req->body.len) buf_append(&fw->body, c->req->body.data, c->req->body.len);
  fw->counted = cl->api_verdict_on && cl->api_verdict.allowed;
  c->cluster = fw; /* an HTTP conn's slot: its pending call */
  http_stream_set(c, &fw_stream, fw);
  return fw;
}

/* Returns 1 when the call waits for Redis (POST or GET /webrtc/rooms), 0
 * when it is answered as before. */
static int rooms_call(struct cluster *cl, struct conn *c) {
  if (c->req->parser.method == HTTP_GET) {
    struct fwd_http *fw = fw_new(cl, c, "");
    if (fw == NULL) return 0;
    char rooms[KEY_MAX], views[KEY_MAX], prefix[40];
    key_of(rooms, "rooms", "");
    key_of(views, "roomview", "");
    snprintf(prefix, sizeof(prefix), "%s:", cl->inst);
    const char *argv[] = {"EVAL", LUA_ROOMS_LIST, "2", rooms, views, prefix};
    cmd(cl, list_cb, fw, 0, 6, argv, NULL);
    return 1;
  }
  /* The room id of the body; anything malformed is the API's to refuse. */
  json_t *body = c->req->body.len ? json_loadb(c->req->body.data, c->req->body.len, 0, NULL) : NULL;
  json_t *jid = json_object_get(body, "room_id");
  const char *id = json_string_value(jid);
  int ok = id && id_valid(id, json_string_length(jid)) && hub_room_find(cl->h, id) == NULL;
  struct croom *cr = ok ? croom_get(cl, id, 1) : NULL;
  struct fwd_http *fw = cr && !cr->acquiring && !cr->rebuilding ? fw_new(cl, c, id) : NULL;
  json_decref(body);
  if (fw == NULL) return 0;
  croom_acquire(cl, cr, create_cb, fw);
  return 1;
}

int cluster_room_taken(const struct cluster *cl, const char *room_id) {
  return cl && cl->taken && strcmp(cl->taken, room_id) == 0;
}

void cluster_rooms_list(const struct cluster *cl, json_t *rooms) {
  size_t i;
  json_t *v;
  if (cl == NULL || cl->listing == NULL) return;
  json_array_foreach(cl->listing, i, v) {
    const char *id = json_string_value(json_object_get(v, "room_id"));
    if (id && hub_room_find(cl->h, id) == NULL) json_array_append(rooms, v);
  }
}

static void route_request(struct conn *c);

/* The shared api_call verdict came: the call goes on (here or to its
 * room's owner) with it. */
static void api_gcra_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  struct conn *c = fw_take(fw);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
    counted_verdict(cl, 1);
    cl->api_verdict.allowed = r->element[0]->integer == 1;
    if (!cl->api_verdict.allowed) cl->api_verdict.retry_after_ms = (uint64_t)r->element[2]->integer;
    else cl->api_verdict.remaining = (uint32_t)r->element[3]->integer;
  }
  route_request(c); /* Redis away: the local limiter answers */
  cl->api_verdict_on = 0;
  fw_done(c);
}

/* Every REST call that counts against api_call is counted first by one GCRA
 * script in Redis (rl:{class}:{user}, as the WebSocket limits), so a user
 * has one budget on all instances. */
void cluster_on_request(struct conn *c) {
  struct cluster *cl = the_cluster;
  char key[ID_MAX + 8];       /* a subject (ID_MAX) or "ip:" and an address (47) */
  if (cl == NULL || !cl->cmd_up || cl->h->rl.rules[RATE_API_CALL].limit == 0 || c->proxy) {
    route_request(c);
    return;
  }
  if (proxy_resolve(c) != 0) return; /* behind a trusted proxy: its client's address (or refused) */
  if (api_call_key(c, key, sizeof(key)) != 0) {
    route_request(c);
    return;
  }
  struct fwd_http *fw = fw_new(cl, c, "");
  if (fw == NULL) {
    route_request(c);
    return;
  }
  char k0[KEY_MAX], id0[ID_MAX + 24], l0[16], w0[24];
  snprintf(id0, sizeof(id0), "%d:%s", (int)RATE_API_CALL, key);
  key_of(k0, "rl", id0);
  snprintf(l0, sizeof(l0), "%u", cl->h->rl.rules[RATE_API_CALL].limit);
  snprintf(w0, sizeof(w0), "%llu", (unsigned long long)cl->h->rl.rules[RATE_API_CALL].window_ms);
  const char *argv[] = {"EVAL", LUA_GCRA, "1", k0, l0, w0};
  cmd(cl, api_gcra_cb, fw, 0, 6, argv, NULL);
}

/* GET /webrtc/rate-limits/{class}/status: the caller's budget is the
 * shared one in Redis (the GCRA keys every instance counts in), read by one
 * script before the call is answered here as on one instance. */
static void peek_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  int on = 0;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
      r->element[1]->type == REDIS_REPLY_INTEGER) {
    on = 1;
    memset(&cl->peek, 0, sizeof(cl->peek));
    cl->peek.limit = cl->h->rl.rules[fw->peek_class].limit;
    cl->peek.remaining = (uint32_t)r->element[0]->integer;
    cl->peek.allowed = cl->peek.remaining > 0;
    cl->peek.reset_ms = (uint64_t)r->element[1]->integer;
    cl->peek_class = fw->peek_class;
    snprintf(cl->peek_user, sizeof(cl->peek_user), "%s", fw->peek_user);
  }
  cl->peek_on = on; /* Redis away: the local limiter answers */
  fw_dispatch_here(cl, fw);
  cl->peek_on = 0;
}

/* Returns 1 when c's call is a rate-limit status read that waits for Redis. */
static int status_call(struct cluster *cl, struct conn *c, const char *url) {
  static const char pre[] = "/webrtc/rate-limits/";
  const char *name = url + sizeof(pre) - 1;
  size_t n = strcspn(name, "/?");
  char cname[40], sub[ID_MAX + 1];
  enum rate_class rc;
  if (n == 0 || n >= sizeof(cname) || strncmp(name + n, "/status", 7) != 0 ||
      (name[n + 7] != '\0' && name[n + 7] != '?'))
    return 0;
  memcpy(cname, name, n);
  cname[n] = '\0';
  if (ratelimit_class_parse(cname, &rc) != 0 || cl->h->rl.rules[rc].limit == 0 ||
      cl->h->rl.rules[rc].window_ms == 0 || api_request_subject(c, sub, sizeof(sub)) != 0)
    return 0; /* unknown, unlimited or unauthenticated: answered here as before */
  struct fwd_http *fw = fw_new(cl, c, "");
  if (fw == NULL) return 0;
  fw->peek_class = (int)rc;
  snprintf(fw->peek_user, sizeof(fw->peek_user), "%s", sub);
  char k0[KEY_MAX], id0[ID_MAX + 24], l0[16], w0[24];
  snprintf(id0, sizeof(id0), "%d:%s", (int)rc, sub);
  key_of(k0, "rl", id0);
  snprintf(l0, sizeof(l0), "%u", cl->h->rl.rules[rc].limit);
  snprintf(w0, sizeof(w0), "%llu", (unsigned long long)cl->h->rl.rules[rc].window_ms);
  const char *argv[] = {"EVAL", LUA_GCRA_PEEK, "1", k0, l0, w0};
  cmd(cl, peek_cb, fw, 0, 6, argv, NULL);
  return 1;
}

static void route_request(struct conn *c) {
  struct cluster *cl = the_cluster;
  const char *url = c->req->url.data ? c->req->url.data : "";
  static const char pre[] = "/webrtc/rooms/";
  if (cl != NULL && cl->cmd_up && c->req->parser.method == HTTP_GET &&
      strncmp(url, "/webrtc/rate-limits/", 20) == 0 && status_call(cl, c, url))
    return;
  if (cl != NULL && strncmp(url, "/webrtc/rooms", 13) == 0 && (url[13] == '\0' || url[13] == '?') &&
      cl->cmd_up && (c->req->parser.method == HTTP_POST || c->req->parser.method == HTTP_GET) && rooms_call(cl, c))
    return;
  if (cl != NULL && c->req->parser.method == HTTP_POST && strncmp(url, "/webrtc/rooms", 13) == 0 &&
      (url[13] == '\0' || url[13] == '?')) {
    api_dispatch(c);
    map_each(&cl->h->rooms, claim_local, cl);
    return;
  }
  if (cl == NULL || strncmp(url, pre, sizeof(pre) - 1) != 0) {
    api_dispatch(c);
    return;
  }
  const char *id = url + sizeof(pre) - 1;
  size_t n = strcspn(id, "/?");
  char room[ID_MAX + 1];
  /* Shared files stay on the instance that holds them (streamed bodies and
   * responses are not forwarded; ADR 0006, "Limits"). */
  if (n == 0 || n > ID_MAX || strncmp(id + n, "/files", 6) == 0) {
    api_dispatch(c);
    return;
  }
  memcpy(room, id, n);
  room[n] = '\0';
  struct croom *cr = croom_get(cl, room, 0);
  int rebuilding = cr && cr->owned && cr->rebuilding && hub_room_find(cl->h, room) == NULL;
  if (!rebuilding && (hub_room_find(cl->h, room) || (cr && cr->owned))) {
    api_dispatch(c);
    return;
  }
  struct fwd_http *fw = fw_new(cl, c, room);
  if (fw == NULL) {
    api_dispatch(c);
    return;
  }
  if (rebuilding) {
    fw_park(cl, fw); /* taken over here a moment ago: answered once the room is rebuilt */
    return;
  }
  if (cr && cr->owner[0] && cr->watching) {
    http_forward(cl, fw, cr->owner);
    return;
  }
  char lease[KEY_MAX];
  key_of(lease, "lease", room);
  const char *argv[] = {"GET", lease};
  cmd(cl, lookup_cb, fw, 0, 2, argv, NULL);
}

/* ---- connections, timers ---- */

static void on_up(struct cluster *cl) {
  if (!cl->cmd_up || !cl->rd_up) return;
  cl->up_since = now_ms(cl);
  cl->backoff_ms = BACKOFF_MIN_MS;
  log_info("redis_up host=%s port=%d instance=%s", cl->host, cl->port, cl->inst);
  /* Owners claim their rooms again first (a restarted Redis has no leases),
   * then what was held while Redis was away goes out, in order. */
  struct croom *owned[1024];
  size_t n = 0;
  for (size_t i = 0; i < cl->rooms.nbuckets; i++)
    for (struct map_entry *e = cl->rooms.buckets[i]; e; e = e->next) {
      struct croom *cr = e->value;
      if (cr->owned && n < 1024) owned[n++] = cr;
    }
  struct pending *held = cl->pend_head, *held_tail = cl->pend_tail;
  cl->pend_head = cl->pend_tail = NULL; /* the claims go out before what was held */
  for (size_t i = 0; i < n; i++) {
    owned[i]->acquiring = 0;
    room_resolve(cl, owned[i]);
    owned[i]->dirty = 1;
  }
  if (cl->pend_head == NULL) cl->pend_head = held, cl->pend_tail = held_tail;
  else if (held) held_tail->next = cl->pend_head, cl->pend_head = held; /* cannot happen: Redis is up */
  pending_flush(cl);
  if (!cl->bcast_pos[0] && !cl->bcast_asked) {
    const char *argv[] = {"XREVRANGE", BCAST_KEY, "+", "-", "COUNT", "1"};
    cl->bcast_asked = 1;
    cmd(cl, bcast_end_cb, NULL, 0, 6, argv, NULL);
  }
  reader_issue(cl);
}

static void retry_cb(uv_timer_t *t) {
  struct cluster *cl = t->data;
  if (cl->cmd == NULL) connect_ctx(cl, 0);
  if (cl->rd == NULL) connect_ctx(cl, 1);
}

static void schedule_retry(struct cluster *cl) {
  if (cl->stopping || uv_is_active((uv_handle_t *)&cl->retry)) return;
  uv_timer_start(&cl->retry, retry_cb, (uint64_t)cl->backoff_ms, 0);
  cl->backoff_ms = cl->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cl->backoff_ms * 2;
}

static void auth_cb(redisAsyncContext *ac, void *reply, void *priv) {
  redisReply *r = reply;
  if (r && r->type == REDIS_REPLY_ERROR) log_error("redis_setup_failed step=%s reason=\"%s\"", (const char *)priv, r->str);
}

/* The PING after AUTH and SELECT: the connection is usable only now (a
 * wrong password fails the PING with NOAUTH: dropped and retried). */
static void ready_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (cl == NULL || ac == NULL || r == NULL) return;
  int reader = ac == cl->rd;
  if (r->type == REDIS_REPLY_ERROR) {
    log_error("redis_not_ready reader=%d reason=\"%s\"", reader, r->str);
    redisAsyncDisconnect(ac);
    return;
  }
  if (reader) cl->rd_up = 1;
  else cl->cmd_up = 1;
  cl->st.reconnects++;
  on_up(cl);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  struct cluster *cl = ac->data;
  int reader = ac == cl->rd;
  if (status != REDIS_OK) {
    log_warn("redis_connect_failed reader=%d reason=\"%s\"", reader, ac->errstr);
    if (reader) cl->rd = NULL;
    else cl->cmd = NULL;
    schedule_retry(cl);
    return;
  }
  (void)reader; /* up once ready_cb has its PONG */
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  struct cluster *cl = ac->data;
  int reader = ac == cl->rd;
  if (reader) cl->rd = NULL, cl->rd_up = 0, cl->reading = 0;
  else cl->cmd = NULL, cl->cmd_up = 0;
  if (cl->stopping) return;
  log_warn("redis_down reader=%d reason=\"%s\"", reader, ac->errstr);
  schedule_retry(cl);
}

/* The shared grant key as Redis holds it: from now on grants are minted
 * and checked with it on every instance. */
static void grantkey_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac, (void)priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  unsigned char k[GRANT_KEY_LEN];
  if (cl == NULL || r == NULL || r->type != REDIS_REPLY_STRING || r->len != 2 * GRANT_KEY_LEN) return;
  for (size_t i = 0; i < GRANT_KEY_LEN; i++) {
    unsigned v;
    if (sscanf(r->str + 2 * i, "%2x", &v) != 1) return;
    k[i] = (unsigned char)v;
  }
  if (!cl->grant_loaded || memcmp(k, cl->h->grant_key, GRANT_KEY_LEN) != 0)
    log_info("grant_key_shared instance=%s", cl->inst);
  memcpy(cl->h->grant_key, k, GRANT_KEY_LEN);
  cl->h->grant_key_ready = 1;
  cl->grant_loaded = 1;
}

/* Public-key tokens: the first instance to reach Redis stores a random
 * grant key (SET NX); every instance reads the one stored. After a Redis
 * restart that lost it, the first to come back stores the key all of them
 * had again. Sent before the PING, so the key is known when the command
 * connection counts as up. */
static void grantkey_load(struct cluster *cl, redisAsyncContext *ac) {
  unsigned char k[GRANT_KEY_LEN];
  char hex[2 * GRANT_KEY_LEN + 1], key[KEY_MAX];
  if (cl->grant_loaded) memcpy(k, cl->h->grant_key, GRANT_KEY_LEN);
  else if (RAND_bytes(k, GRANT_KEY_LEN) != 1) return;
  for (size_t i = 0; i < GRANT_KEY_LEN; i++) snprintf(hex + 2 * i, 3, "%02x", k[i]);
  OPENSSL_cleanse(k, sizeof(k));
  key_of(key, "grantkey", "shared");
  redisAsyncCommand(ac, auth_cb, "grantkey", "SET %s %s NX", key, hex);
  redisAsyncCommand(ac, grantkey_cb, NULL, "GET %s", key);
  OPENSSL_cleanse(hex, sizeof(hex));
}

static void connect_ctx(struct cluster *cl, int reader) {
  redisAsyncContext *ac = redisAsyncConnect(cl->host, cl->port);
  if (ac == NULL || ac->err) {
    if (ac) redisAsyncFree(ac);
    schedule_retry(cl);
    return;
  }
  ac->data = cl;
  if (redisLibuvAttach(ac, cl->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    schedule_retry(cl);
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  if (cl->pass[0]) {
    if (cl->user[0]) redisAsyncCommand(ac, auth_cb, "auth", "AUTH %s %s", cl->user, cl->pass);
    else redisAsyncCommand(ac, auth_cb, "auth", "AUTH %s", cl->pass);
  }
  if (cl->db) redisAsyncCommand(ac, auth_cb, "select", "SELECT %d", cl->db);
  if (!reader && cl->grant_shared) grantkey_load(cl, ac);
  redisAsyncCommand(ac, ready_cb, NULL, "PING");
  if (reader) cl->rd = ac, cl->rd_started = now_ms(cl);
  else cl->cmd = ac, cl->cmd_started = now_ms(cl);
}

/* hiredis 0.14's libuv adapter ignores a poll error, so a refused connect
 * never calls back: an attempt not up within a second is dropped and
 * retried. */
static void connect_watchdog(struct cluster *cl) {
  uint64_t now = now_ms(cl);
  if (cl->cmd && !cl->cmd_up && now - cl->cmd_started > 1000) {
    redisAsyncContext *ac = cl->cmd;
    cl->cmd = NULL;
    redisAsyncFree(ac);
    schedule_retry(cl);
  }
  /* The same adapter misses a reset of the reader's idle socket: an XREAD
   * (BLOCK 2000) without an answer for 5 s means the connection is gone. */
  if (cl->rd && cl->rd_up && cl->reading && now - cl->read_issued > 5000) {
    log_warn("redis_reader_stuck ms=%llu", (unsigned long long)(now - cl->read_issued));
    redisAsyncContext *ac = cl->rd;
    redisAsyncFree(ac); /* calls on_disconnect, which schedules the retry */
    if (cl->rd == ac) cl->rd = NULL, cl->rd_up = 0, cl->reading = 0, schedule_retry(cl);
    return;
  }
  if (cl->rd && !cl->rd_up && now - cl->rd_started > 1000) {
    redisAsyncContext *ac = cl->rd;
    cl->rd = NULL;
    redisAsyncFree(ac);
    schedule_retry(cl);
  }
}

/* A room owned here ended: its lease, snapshot, stream and list entry go
 * (LUA_RELEASE), and so does cr. */
static void croom_release(struct cluster *cl, struct croom *cr) {
  char lease[KEY_MAX], snap[KEY_MAX], stream[KEY_MAX], rooms[KEY_MAX], views[KEY_MAX];
  key_of(lease, "lease", cr->id);
  key_of(snap, "snap", cr->id);
  key_of(stream, "stream", cr->id);
  key_of(rooms, "rooms", "");
  key_of(views, "roomview", "");
  const char *rv[] = {"EVAL", LUA_RELEASE, "3", lease, snap, stream, cr->lease};
  cmd(cl, NULL, NULL, 0, 7, rv, NULL);
  const char *zv[] = {"ZREM", rooms, cr->id};
  cmd(cl, NULL, NULL, 0, 3, zv, NULL);
  const char *hv[] = {"HDEL", views, cr->id};
  cmd(cl, NULL, NULL, 0, 3, hv, NULL);
  croom_drop(cl, cr);
}

/* A renewal refused: the lease expired (and may be someone else's). Ask
 * again: ACQUIRE either gives it back or steps this instance down. */
static void renew_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  struct croom *cr = cl ? croom_get(cl, (const char *)priv, 0) : NULL;
  free(priv);
  if (cr && cr->owned && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
    log_warn("lease_renew_refused room=%s lease=%s", cr->id, cr->lease);
    room_resolve(cl, cr);
  }
}

static void renew_room(const char *k, void *v, void *arg) {
  struct cluster *cl = arg;
  struct croom *cr = v;
  (void)k;
  if (cr->owned && !cr->acquiring) {
    char lease[KEY_MAX], ttl[16];
    key_of(lease, "lease", cr->id);
    snprintf(ttl, sizeof(ttl), "%d", LEASE_MS);
    const char *argv[] = {"EVAL", LUA_RENEW, "1", lease, cr->lease, ttl};
    char *id = strdup(cr->id);
    if (id) cmd(cl, renew_cb, id, 0, 6, argv, NULL);
  }
}

struct sweep { struct croom *list[256]; size_t n; };

static void collect_sweep(const char *k, void *v, void *arg) {
  struct sweep *s = arg;
  if (s->n < 256) s->list[s->n++] = v;
}

/* Owner side: sessions of an instance whose heartbeat stopped are cut
 * connections (the grace period, then user-left). */
struct inst_scan { char insts[64][32]; size_t n; };

static void collect_insts(const char *k, void *v, void *arg) {
  struct remote *rm = v;
  struct inst_scan *is = arg;
  for (size_t i = 0; i < is->n; i++)
    if (strcmp(is->insts[i], rm->inst) == 0) return;
  if (is->n < 64) snprintf(is->insts[is->n++], 32, "%s", rm->inst);
}

struct dead_scan { const char *inst; struct remote *list[1024]; size_t n; };

static void collect_dead(const char *k, void *v, void *arg) {
  struct remote *rm = v;
  struct dead_scan *ds = arg;
  if (strcmp(rm->inst, ds->inst) == 0 && ds->n < 1024) ds->list[ds->n++] = rm;
}

static void hb_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  char *inst = priv;
  if (cl && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
    struct dead_scan *ds = calloc(1, sizeof(*ds));
    if (ds) {
      ds->inst = inst;
      map_each(&cl->remotes, collect_dead, ds);
      if (ds->n) log_warn("instance_gone instance=%s sessions=%zu", inst, ds->n);
      for (size_t i = 0; i < ds->n; i++) {
        struct remote *rm = ds->list[i];
        rm->closed = 1;
        map_del(&cl->remotes, rm->key);
        gate_drop(cl, rm->fake);
        signal_on_end(rm->fake, CONN_END_CUT, 0);
        remote_free_later(cl, rm);
      }
      free(ds);
    }
  }
  free(inst);
}

static void check_instances(struct cluster *cl) {
  struct inst_scan *is = calloc(1, sizeof(*is));
  if (is == NULL) return;
  map_each(&cl->remotes, collect_insts, is);
  for (size_t i = 0; i < is->n; i++) {
    char hb[KEY_MAX];
    key_of(hb, "hb", is->insts[i]);
    const char *argv[] = {"EXISTS", hb};
    char *inst = strdup(is->insts[i]);
    if (inst) cmd(cl, hb_cb, inst, 0, 2, argv, NULL);
  }
  free(is);
}

/* The views of the rooms owned here, for GET /webrtc/rooms on any instance
 * (one script per tick; each entry lives two lease periods unless renewed). */
static void rooms_publish(struct cluster *cl, const struct sweep *s) {
  const char *argv[6 + 2 * 256];
  char *texts[256];
  size_t n = 0, argc = 0;
  char rooms[KEY_MAX], views[KEY_MAX], ttl[16];
  key_of(rooms, "rooms", "");
  key_of(views, "roomview", "");
  snprintf(ttl, sizeof(ttl), "%d", 2 * LEASE_MS);
  const char *head[] = {"EVAL", LUA_ROOMS_PUT, "2", rooms, views, ttl};
  for (size_t i = 0; i < 6; i++) argv[argc++] = head[i];
  uint64_t now = hub_now_ms();
  for (size_t i = 0; i < s->n; i++) {
    struct croom *cr = s->list[i];
    struct room *r = cr->owned && !cr->rebuilding ? hub_room_find(cl->h, cr->id) : NULL;
    json_t *v = r ? api_room_view(r, now) : NULL;
    char *txt = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (txt == NULL) continue;
    texts[n++] = txt;
    argv[argc++] = cr->id;
    argv[argc++] = txt;
  }
  if (n) cmd(cl, NULL, NULL, 0, (int)argc, argv, NULL);
  for (size_t i = 0; i < n; i++) free(texts[i]);
}

static void on_timer(uv_timer_t *t) {
  struct cluster *cl = t->data;
  if (cl->srv->shutting_down && cl->srv->nconns == 0) {
    cluster_stop(cl); /* the loop ends once our handles are closed */
    return;
  }
  connect_watchdog(cl);
  if (!cl->cmd_up) return;
  char hb[KEY_MAX], ttl[16];
  key_of(hb, "hb", cl->inst);
  snprintf(ttl, sizeof(ttl), "%d", LEASE_MS);
  const char *argv[] = {"SET", hb, "1", "PX", ttl};
  cmd(cl, NULL, NULL, 0, 5, argv, NULL);
  map_each(&cl->rooms, renew_room, cl);
  if (now_ms(cl) - cl->up_since >= LEASE_MS) check_instances(cl);
  fwd_check(cl);
  struct sweep s = {{0}, 0};
  map_each(&cl->rooms, collect_sweep, &s);
  rooms_publish(cl, &s);
  for (size_t i = 0; i < s.n; i++) {
    struct croom *cr = s.list[i];
    if (cr->owned) {
      if (!cr->rebuilding && !cr->acquiring && hub_room_find(cl->h, cr->id) == NULL && cr->links == NULL)
        croom_release(cl, cr);
    } else if (cr->links == NULL && !cr->acquiring && !(cr->parent[0] && hub_room_find(cl->h, cr->parent))) {
      croom_drop(cl, cr); /* nobody of ours in it any more (nor a breakout room of a family owned here) */
    } else if (now_ms(cl) - cl->up_since >= LEASE_MS) {
      /* Is the owner still there? A lease that expired is taken here. */
      room_resolve(cl, cr);
    }
  }
}

/* After every loop turn: snapshots of rooms that changed, freed remotes. */
static void on_check(uv_check_t *t) {
  struct cluster *cl = t->data;
  remotes_reap(cl);
  /* Rooms made here by the room's own operations (breakout rooms) are
   * claimed like those of POST /webrtc/rooms: a grant used through another
   * instance must find the family's owner. */
  if (cl->cmd_up) {
    if (cl->h->rooms.count != cl->rooms_seen) map_each(&cl->h->rooms, claim_local, cl);
    cl->rooms_seen = cl->h->rooms.count;
  }
  struct sweep s = {{0}, 0};
  map_each(&cl->rooms, collect_sweep, &s);
  for (size_t i = 0; i < s.n; i++)
    if (s.list[i]->owned && s.list[i]->dirty && !s.list[i]->rebuilding)
      snapshot_write(cl, s.list[i]);
}

static int parse_url(struct cluster *cl, const char *url, char *err, size_t n) {
  const char *p = url;
  if (strncmp(p, "redis://", 8) != 0) return snprintf(err, n, "--redis-url must start with redis://"), -1;
  p += 8;
  const char *at = strrchr(p, '@');
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon) {
      snprintf(cl->user, sizeof(cl->user), "%.*s", (int)(colon - p), p);
      snprintf(cl->pass, sizeof(cl->pass), "%.*s", (int)(at - colon - 1), colon + 1);
    } else {
      snprintf(cl->pass, sizeof(cl->pass), "%.*s", (int)(at - p), p);
    }
    p = at + 1;
  }
  size_t hl = strcspn(p, ":/");
  if (hl == 0 || hl >= sizeof(cl->host)) return snprintf(err, n, "--redis-url: no host"), -1;
  snprintf(cl->host, sizeof(cl->host), "%.*s", (int)hl, p);
  p += hl;
  cl->port = 6379;
  if (*p == ':') {
    cl->port = (int)strtol(p + 1, (char **)&p, 10);
    if (cl->port <= 0 || cl->port > 65535) return snprintf(err, n, "--redis-url: bad port"), -1;
  }
  if (*p == '/') {
    char *e;
    long db = strtol(p + 1, &e, 10);
    if (e == p + 1 || *e || db < 0 || db > 1000000) return snprintf(err, n, "--redis-url: bad db index"), -1;
    cl->db = (int)db;
  } else if (*p) {
    return snprintf(err, n, "--redis-url: unexpected '%s'", p), -1;
  }
  return 0;
}

int cluster_start(struct hub *h, struct server *srv, const char *url, char *err, size_t err_len) {
  struct cluster *cl = calloc(1, sizeof(*cl));
  if (cl == NULL) return snprintf(err, err_len, "out of memory"), -1;
  if (parse_url(cl, url, err, err_len) != 0) {
    free(cl);
    return -1;
  }
  cl->h = h;
  cl->srv = srv;
  cl->loop = h->loop;
  cl->backoff_ms = BACKOFF_MIN_MS;
  if (id_random_hex(cl->inst, 6) != 0) {
    free(cl);
    return snprintf(err, err_len, "no randomness for the instance id"), -1;
  }
  snprintf(cl->inbox_pos, sizeof(cl->inbox_pos), "0-0");
  cl->bus.ops = &bus_redis_ops;
  cl->bus.deliver = signal_bus_deliver;
  cl->bus.arg = cl;
  uv_timer_init(cl->loop, &cl->timer);
  uv_timer_init(cl->loop, &cl->retry);
  uv_check_init(cl->loop, &cl->check);
  cl->timer.data = cl->retry.data = cl->check.data = cl;
  uv_timer_start(&cl->timer, on_timer, TIMER_MS, TIMER_MS);
  uv_check_start(&cl->check, on_check);
  the_cluster = cl;
  h->cluster = cl;
  h->limiter = &redis_limiter;
  h->limiter_impl = cl;
  if (h->bus) h->bus->ops->close(h->bus);
  h->bus = &cl->bus;
  cl->grant_shared = !h->grant_key_ready; /* no HMAC secret to derive it from (family_grant_key) */
  connect_ctx(cl, 0);
  connect_ctx(cl, 1);
  return 0;
}

static void close_cb(uv_handle_t *hd) {}

void cluster_stop(struct cluster *cl) {
  if (cl == NULL || cl->stopping) return;
  cl->stopping = 1;
  uv_timer_stop(&cl->timer);
  uv_timer_stop(&cl->retry);
  uv_check_stop(&cl->check);
  uv_close((uv_handle_t *)&cl->timer, close_cb);
  uv_close((uv_handle_t *)&cl->retry, close_cb);
  uv_close((uv_handle_t *)&cl->check, close_cb);
  free(cl->feeds);
  cl->feeds = NULL, cl->nfeeds = cl->cap_feeds = 0;
  if (cl->cmd) redisAsyncDisconnect(cl->cmd); /* sends what is queued first */
  if (cl->rd) {
    redisAsyncFree(cl->rd); /* blocked in XREAD: nothing to wait for */
    cl->rd = NULL, cl->rd_up = 0;
  }
}

/* ---- health and metrics ---- */

const char *cluster_instance_id(const struct cluster *cl) { return cl->inst; }
int cluster_redis_up(const struct cluster *cl) { return cl->cmd_up && cl->rd_up; }
const struct cluster_stats *cluster_stats_get(const struct cluster *cl) { return &cl->st; }

size_t cluster_owned_rooms(const struct cluster *cl) {
  size_t n = 0;
  for (size_t i = 0; i < cl->rooms.nbuckets; i++)
    for (struct map_entry *e = cl->rooms.buckets[i]; e; e = e->next) n += ((struct croom *)e->value)->owned;
  return n;
}

json_t *cluster_health_json(const struct cluster *cl) {
  json_t *owned = json_array();
  for (size_t i = 0; i < cl->rooms.nbuckets; i++)
    for (struct map_entry *e = cl->rooms.buckets[i]; e; e = e->next)
      if (((struct croom *)e->value)->owned) json_array_append_new(owned, json_string(e->key));
  return json_pack("{s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:f,s:f,s:I,s:I,s:I,s:I,s:I,s:I}", "instance_id", cl->inst, "redis",
                   cluster_redis_up(cl) ? "ok" : "unavailable", "owned_rooms", owned, "forwarded_out",
                   (json_int_t)cl->st.forwarded_out, "forwarded_in", (json_int_t)cl->st.forwarded_in,
                   "stream_entries_in", (json_int_t)cl->st.stream_entries_in, "queued",
                   (json_int_t)cl->npending, "stream_lag_ms", cl->st.stream_lag_ms, "stream_lag_max_ms",
                   cl->st.stream_lag_max_ms, "takeovers", (json_int_t)cl->st.takeovers, "fenced",
                   (json_int_t)cl->st.fenced, "opens_moved", (json_int_t)cl->st.opens_moved, "forwards_retried",
                   (json_int_t)cl->st.forwards_retried, "forwards_unanswered", (json_int_t)cl->st.forwards_unanswered,
                   "msgs_recovered", (json_int_t)cl->st.msgs_recovered);
}

void cluster_metrics(const struct cluster *cl, struct buf *b) {
  char t[4096];
  int n = snprintf(
      t, sizeof(t),
      "# HELP huddle_cluster_info This instance's id in the cluster.\n# TYPE huddle_cluster_info gauge\n"
      "huddle_cluster_info{instance_id=\"%s\"} 1\n"
      "# HELP huddle_cluster_redis_up 1 while both Redis connections are up.\n# TYPE huddle_cluster_redis_up gauge\n"
      "huddle_cluster_redis_up %d\n"
      "# HELP huddle_cluster_owned_rooms Rooms whose lease this instance holds.\n# TYPE huddle_cluster_owned_rooms gauge\n"
      "huddle_cluster_owned_rooms %zu\n"
      "# HELP huddle_cluster_forwarded_out_total Client messages and REST calls sent to another instance.\n"
      "# TYPE huddle_cluster_forwarded_out_total counter\nhuddle_cluster_forwarded_out_total %llu\n"
      "# HELP huddle_cluster_forwarded_in_total Messages and calls from other instances run here.\n"
      "# TYPE huddle_cluster_forwarded_in_total counter\nhuddle_cluster_forwarded_in_total %llu\n"
      "# HELP huddle_cluster_stream_entries_in_total Room stream entries read for local sessions.\n"
      "# TYPE huddle_cluster_stream_entries_in_total counter\nhuddle_cluster_stream_entries_in_total %llu\n"
      "# HELP huddle_cluster_stream_lag_seconds Last delay from the owner's append to local delivery.\n"
      "# TYPE huddle_cluster_stream_lag_seconds gauge\nhuddle_cluster_stream_lag_seconds %.3f\n"
      "# HELP huddle_cluster_queued_commands Redis commands held while Redis is away.\n"
      "# TYPE huddle_cluster_queued_commands gauge\nhuddle_cluster_queued_commands %zu\n"
      "# HELP huddle_cluster_takeovers_total Rooms taken over from a dead owner.\n"
      "# TYPE huddle_cluster_takeovers_total counter\nhuddle_cluster_takeovers_total %llu\n"
      "# HELP huddle_cluster_opens_moved_total Joins sent again because the instance named as owner had given the room up.\n"
      "# TYPE huddle_cluster_opens_moved_total counter\nhuddle_cluster_opens_moved_total %llu\n"
      "# HELP huddle_cluster_forwards_retried_total REST calls taken back from a dead owner and sent again.\n"
      "# TYPE huddle_cluster_forwards_retried_total counter\nhuddle_cluster_forwards_retried_total %llu\n"
      "# HELP huddle_cluster_forwards_unanswered_total REST calls answered 503: their owner died after reading them, or did not answer in time.\n"
      "# TYPE huddle_cluster_forwards_unanswered_total counter\nhuddle_cluster_forwards_unanswered_total %llu\n"
      "# HELP huddle_cluster_msgs_recovered_total Client messages taken back from a dead owner's inbox and sent to the new owner.\n"
      "# TYPE huddle_cluster_msgs_recovered_total counter\nhuddle_cluster_msgs_recovered_total %llu\n",
      cl->inst, cluster_redis_up(cl), cluster_owned_rooms(cl), (unsigned long long)cl->st.forwarded_out,
      (unsigned long long)cl->st.forwarded_in, (unsigned long long)cl->st.stream_entries_in,
      cl->st.stream_lag_ms / 1000.0, cl->npending, (unsigned long long)cl->st.takeovers,
      (unsigned long long)cl->st.opens_moved, (unsigned long long)cl->st.forwards_retried,
      (unsigned long long)cl->st.forwards_unanswered, (unsigned long long)cl->st.msgs_recovered);
  if (n > 0) buf_append(b, t, (size_t)n < sizeof(t) ? (size_t)n : sizeof(t) - 1);
}
