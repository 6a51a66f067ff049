/* The hub: what the room domain runs on, under both transports. It owns the
 * live rooms, the history of closed ones, the rate limiter, breakout grants,
 * the store and the bus; it assigns seq and publishes every room message
 * through the room log and the bus. No sockets: a member's or waiter's
 * session is an opaque pointer of the adapter above, reached only through
 * the session callbacks that adapter registers (libuv style). */
#ifndef HUDDLE_ROOM_HUB_H
#define HUDDLE_ROOM_HUB_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "auth/grant.h"
#include "auth/token.h"
#include "bus/bus.h"
#include "config.h"
#include "guard/errors.h"
#include "guard/ratelimit.h"
#include "lib/map.h"
#include "lib/outbuf.h"
#include "room/history.h"
#include "room/msgtype.h"
#include "room/room.h"

struct store;
struct files;

#define HUB_STATS_TYPES 64   /* >= MSG__COUNT */

/* Message-level counters (the net layer counts bytes and connections). */
struct hub_stats {
  uint64_t in_by_type[HUB_STATS_TYPES];   /* client messages received, by stable type id */
  uint64_t out_by_type[HUB_STATS_TYPES];  /* messages delivered to clients, by stable type id */
  uint64_t errors_by_code[API_ERR__COUNT];
  uint64_t ratelimit_hits[RATE__COUNT];
};

/* What the adapter above does with its sessions when the room decides. */
struct hub_session_ops {
  /* Writes frame to session only (not a room message: no seq, not logged).
   * Consumes the caller's ref. */
  void (*send)(void *data, void *session, struct outbuf *frame);
  /* session now delivers member p's messages (a waiter was admitted). */
  void (*attach)(void *data, void *session, struct participant *p);
  /* Ends session with a close code, quietly: the room already told whom it
   * had to. */
  void (*close)(void *data, void *session, int code, const char *reason);
  void *data;
};

/* The rate limiter seam: the in-process GCRA (guard/ratelimit.h) by
 * default; a shared back end (Redis) implements the same two calls. */
struct hub_limiter_ops {
  const char *name;
  void (*check)(void *impl, const char *key, enum rate_class c, uint64_t now_ms, struct ratelimit_result *out);
  void (*peek)(void *impl, const char *key, enum rate_class c, uint64_t now_ms, struct ratelimit_result *out);
};

struct hub {
  uv_loop_t *loop;                 /* borrowed: the monotonic clock */
  const struct config *cfg;        /* borrowed */
  struct map rooms;                /* room id -> struct room * (owned) */
  struct history_registry history; /* room id -> what outlives the room */
  struct ratelimit rl;             /* per user and class: the rules, and the local limiter's state */
  const struct hub_limiter_ops *limiter; /* local by default */
  void *limiter_impl;              /* the limiter's state (&rl when local) */
  struct grant_spent grants;       /* spent breakout grants (auth/grant.h), owned by room/family.c */
  unsigned char grant_key[GRANT_KEY_LEN]; /* signs breakout grants (room/family.c) */
  int grant_key_ready;
  struct map expired;              /* "room/user/token" -> expiry: ended sessions, for RESUME_EXPIRED */
  struct store *store;             /* owned */
  struct bus *bus;                 /* owned */
  struct files *files;             /* borrowed: shared files (src/files), set by main.c; never used here */
  struct cluster *cluster;         /* NULL unless --redis-url (src/cluster) */
  struct hub_session_ops sessions; /* set by the adapter */
  struct hub_stats stats;
  size_t naway;                    /* members away in all rooms */
  uint64_t last_prune_ms;          /* hub_tick's last minute sweep */
  struct map store_gates;          /* room id -> messages waiting behind a chat being stored (durable.c) */
  struct map erase_cuts;           /* user id -> each room's last seq when its erase began (durable.c) */
  uint64_t retention_due_ms;       /* next run of the retention job (durable.c), loop time */
};

/* Sets up h: rate rules from cfg, history bounds. The store and bus are
 * attached by the caller. Returns 0, or -1 with err. */
int hub_init(struct hub *h, uv_loop_t *loop, const struct config *cfg, char *err, size_t err_len);
/* Frees every room, then what the hub owns. */
void hub_free(struct hub *h);
/* Timers of the domain, run every few hundred ms: grace expiry; once a
 * minute, grant, room, resume-token and rate-limit sweeps. data: the hub. */
void hub_tick(void *data);
/* Wall-clock Unix milliseconds (message ts, audit). */
uint64_t hub_now_ms(void);

/* ---- rate limits: the seam a shared (Redis) limiter implements later ---- */

/* Counts one call of key in class c if allowed (refused: nothing counted). */
void hub_rate_check(struct hub *h, const char *key, enum rate_class c, struct ratelimit_result *out);
/* The same answer without counting. */
void hub_rate_peek(struct hub *h, const char *key, enum rate_class c, struct ratelimit_result *out);

/* ---- rooms ---- */
struct room *hub_room_find(struct hub *h, const char *room_id);
/* Creates a room (with its history); NULL on failure. */
struct room *hub_room_create(struct hub *h, const char *room_id);
/* Destroys r if nothing keeps it alive (what outlives it stays in history). */
void hub_room_release(struct hub *h, struct room *r);
/* Releases rooms whose lingering has ended. */
void hub_rooms_sweep(struct hub *h);
/* Closes every member's session with code, telling nobody (the room is
 * going away), then releases r if nothing else keeps it. */
void hub_room_evict(struct hub *h, struct room *r, int code, const char *reason);

/* ---- publishing ---- */

/* A room message: one log entry, delivered by the bus. */
struct room_event {
  const char *type;
  const char *from;        /* a user id or "server" */
  const char *to;          /* NULL: the room */
  const char *except;      /* NULL, or a user left out of a broadcast */
  const char *also;        /* NULL, or an extra recipient of a directed message */
  uint32_t only_perm;      /* 0, or only members holding these PERM_* bits */
  json_t *payload;         /* borrowed */
  const char *ref;         /* NULL, or the sender's message id (echoes) */
  const char *raw_payload; /* NULL, or payload as JSON text, used instead of payload */
  size_t raw_len;
};

/* Assigns seq and ts, encodes e once, appends it to r's log and publishes
 * it through the bus. Returns 0 or -1. */
int hub_send(struct hub *h, struct room *r, const struct room_event *e);
/* Shorthand: from, to, except and a payload. */
int hub_publish(struct hub *h, struct room *r, const char *type, const char *from, const char *to,
                const char *except, json_t *payload);
/* Like hub_send, but delivered (and replayed) to member deliver_to only,
 * whatever e->to says in the envelope: a sender's own copy that carries
 * more than the others' (file-share-offer's upload_url). */
int hub_send_only(struct hub *h, struct room *r, const struct room_event *e, const char *deliver_to);
/* Appends an encoded room message to the log of room_id (if the room is
 * still open) and publishes it through the bus: hub_send's second half,
 * run later for messages that waited behind a chat being stored (durable.c). */
int hub_publish_frame(struct hub *h, const char *room_id, uint64_t seq, int type, struct outbuf *frame,
                      const char *to, const char *except, const char *also, uint32_t only_perm);
/* A message to one session that is not a room message (waiters, errors). */
void hub_send_session(struct hub *h, void *session, struct room *r, const char *type, json_t *payload,
                      const char *ref);

/* ---- admission and members (members.c) ---- */

/* The frame of log entry e of r as it was published: a new ref, or NULL on
 * allocation failure. A compact entry (a user-joined) is rendered again
 * from its data, byte for byte what was sent (members.c checks that when
 * it compacts). */
struct outbuf *hub_log_frame(const struct room *r, const struct roomlog_entry *e);

/* Refusals that must happen before the upgrade (binding, ban, lock,
 * capacity, room_create budget). *retry_after_ms (may be NULL) is set on a
 * rate limit. */
enum api_err hub_admission_check(struct hub *h, const char *room_id, const struct token_claims *claims,
                                 int admitted, int64_t *retry_after_ms);
/* hub_admission_check without side effects: spends no room_create budget
 * (only looks whether it would be allowed). For GET .../validate. */
enum api_err hub_admission_peek(struct hub *h, const char *room_id, const struct token_claims *claims,
                                int admitted, int64_t *retry_after_ms);
/* Makes claims' user a member of r delivering to session: user-joined to
 * the others. Returns the member, or NULL (session closed with 1011). */
struct participant *hub_member_join(struct hub *h, struct room *r, const struct token_claims *claims,
                                    void *session);
/* The member's session dropped: away for the grace period. */
void hub_member_away(struct hub *h, struct participant *p);
/* The member has a session again; with resumed, the others see it connected,
 * else it left ("replaced") and joined again. */
void hub_member_back(struct hub *h, struct participant *p, void *session, int resumed);
/* Takes member p out of its room for good (user-left with reason), and
 * releases the room if it emptied. p is freed. */
void hub_member_leave(struct hub *h, struct participant *p, const char *reason);
/* Members away past the grace period leave ("timeout"). */
void hub_members_expire(struct hub *h);
/* Puts claims' user in r's waiting room, delivering to session. */
struct waiter *hub_waiter_enter(struct hub *h, struct room *r, const struct token_claims *claims,
                                void *session);
/* A waiter's session ended (or was replaced). */
void hub_waiter_leave(struct hub *h, struct waiter *w, const char *reason);
/* room-state for member self: a snapshot at the room's current seq.
 * The caller adds what is not the room's (ice_servers). New reference. */
json_t *hub_room_state(struct hub *h, struct room *r, struct participant *self, int resumed);

/* ---- resume bookkeeping ---- */
void hub_expired_add(struct hub *h, struct room *r, const struct participant *p);
int hub_expired_has(struct hub *h, const char *room_id, const char *user_id, const char *token);
void hub_expired_prune(struct hub *h);

#endif
