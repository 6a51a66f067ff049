/* Room history: what a room leaves behind and what outlives its sessions:
 * analytics (aggregates and a ring of recent events), recordings and live
 * streams. Keyed by room id in a registry that keeps closed rooms for a
 * while (bounded), so summaries and lists still answer after everyone left.
 * In memory only; the persistence issue moves it into the store. */
#ifndef HUDDLE_ROOM_HISTORY_H
#define HUDDLE_ROOM_HISTORY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/ids.h"
#include "lib/map.h"

#define HISTORY_EVENTS 1000        /* analytics events kept per room (ring) */
#define HISTORY_RECORDINGS 100
#define HISTORY_STREAMS 100
#define HISTORY_MAX_ACTIVE_STREAMS 3

enum quality_bucket { QUALITY_GOOD, QUALITY_FAIR, QUALITY_POOR, QUALITY__COUNT };

/* One event as its readers (the ring's JSON, the store's sink) see it: a
 * view into the ring's compact record, valid until the ring overwrites it. */
struct analytics_event {
  uint64_t ts;                     /* Unix ms */
  const char *type;                /* join, leave, chat, reaction, quality, custom, ...: at most 23 bytes */
  const char *user_id;             /* "" if none */
  const char *name;                /* custom event name, quality bucket, ... ("" if none) */
  int64_t value;                   /* leave: session ms; quality: rtt ms; else 0 */
  const char *data;                /* custom event properties or details as compact JSON text, or NULL */
  size_t data_len;
};

struct event_rec;                  /* history.c: one allocation per event, its strings sized to fit */

/* A ring of recent events, growing to HISTORY_EVENTS then overwriting.
 * NOTE: a slot is one pointer and a record holds its strings inline,
 * because every join adds one (docs/performance.md, memory per idle
 * connection): 176-byte, then 80-byte slots plus a string allocation
 * were a tenth of an idle member's cost. */
struct event_ring {
  struct event_rec **ev;           /* owned, each record owned */
  size_t cap, head, count;         /* allocated; next slot; held */
  uint64_t total;                  /* ever recorded */
};

struct recording {
  char id[33];
  char started_by[ID_MAX + 1];
  char stopped_by[ID_MAX + 1];     /* "" while recording; "server" when the room closed */
  uint64_t started_ms, stopped_ms; /* stopped_ms 0 while recording */
  char format[16];                 /* "webm" (metadata only until real recording) */
};

struct live_stream {
  char id[33];
  char name[65];
  char *target;                    /* owned; the full URL with its key: never sent or logged */
  char *target_redacted;           /* owned; the URL with its key masked */
  char started_by[ID_MAX + 1];
  char stopped_by[ID_MAX + 1];
  uint64_t started_ms, stopped_ms;
};

#define HISTORY_MSG_TYPES 64        /* >= MSG__COUNT */

struct room_history {
  char room_id[ID_MAX + 1];
  uint64_t created_ms;
  uint64_t closed_ms;              /* 0 while the room is open */
  /* analytics aggregates */
  uint64_t sessions;               /* joins counted */
  uint64_t closed_session_ms;      /* total length of finished sessions */
  uint64_t peak;
  uint64_t *messages_by_type;      /* owned; HISTORY_MSG_TYPES counts indexed by stable type id
                                      (msgtype.h), NULL until the first counted message (issue 16:
                                      512 bytes a room that idle rooms do not need) */
  uint64_t quality[QUALITY__COUNT];
  uint64_t custom_events;
  struct event_ring events;        /* recent analytics events */
  struct event_ring audit;         /* moderation audit log */
  /* recordings and streams, oldest first */
  struct recording *recordings;    /* owned; at most HISTORY_RECORDINGS */
  size_t nrecordings, cap_recordings;
  struct live_stream *streams;     /* owned; at most HISTORY_STREAMS */
  size_t nstreams, cap_streams;
  /* bounds (issue 13): who made the room, its family, its session */
  char creator[ID_MAX + 1];        /* user whose join or breakout-room-create made it ("" unknown) */
  char family[ID_MAX + 1];         /* the main room of its family (itself for a main room) */
  unsigned session;                /* 1 for the first session of this room id */
  struct room_history *prev;       /* owned; earlier sessions of this room id (admins only) */
  size_t closed_bytes;             /* bytes counted against the registry while closed */
};

struct history_registry {
  struct map rooms;                /* room id -> struct room_history * (owned) */
  size_t max_rooms;                /* closed histories beyond this are evicted, oldest first */
  size_t max_bytes;                /* and beyond this many bytes (0: no byte bound) */
  size_t closed_bytes;             /* bytes of closed histories */
  /* Called with a room id whose history is evicted (its files go too), or NULL. */
  void (*on_evict)(void *arg, const char *room_id);
  void *evict_arg;
  uint64_t erases;                 /* history_erase_user calls: copies elsewhere are stale */
};

#define HISTORY_PER_FAMILY 64        /* closed histories kept per room family */
#define HISTORY_PER_CREATOR 256      /* closed histories kept per creating user */
#define HISTORY_CREATOR_SHARE 16     /* and at most max_bytes / this many bytes per creator, */
#define HISTORY_CREATOR_MIN_BYTES (8u << 20) /* but never less than this (a few full rooms) */
#define HISTORY_SESSIONS_KEPT 4      /* past sessions of one room id kept for admins */

/* Returns the history of room_id, creating it (open, created now) if absent
 * or closed (a new session: the closed one becomes an earlier session, out
 * of sight for everyone but admins); NULL on allocation failure. */
struct room_history *history_get_or_create(struct history_registry *reg, const char *room_id,
                                           uint64_t now_ms);
struct room_history *history_find(struct history_registry *reg, const char *room_id);
/* Marks h closed; evicts the oldest closed histories beyond the bounds:
 * first the same creator's (count and bytes), then the same family's, then
 * anyone's (max_rooms, max_bytes). One room's activity never evicts another
 * creator's records before the global bounds are reached. */
void history_close(struct history_registry *reg, struct room_history *h, uint64_t now_ms);
void history_registry_free(struct history_registry *reg);
/* Who made h and its family's main room (set once, at creation). */
void history_origin(struct room_history *h, const char *creator, const char *family);
/* Bytes h holds (its earlier sessions included). */
size_t history_bytes(const struct room_history *h);
/* The aggregates (sessions, durations, peak, message counts, quality,
 * custom events, recording and stream counts) of h and its earlier
 * sessions, summed into *out (other fields zero): the admin's view.
 * out->messages_by_type is the caller's to free (NULL when none). */
void history_totals(const struct room_history *h, struct room_history *out);
/* Counts one accepted message of type (a msgtype.h id) in h. */
void history_count_message(struct room_history *h, int type);
/* Messages of type counted in h (a history_totals *out included). */
uint64_t history_messages(const struct room_history *h, int type);
/* Session n of h's room id (h itself when n is 0 or h->session), or NULL. */
struct room_history *history_session(struct room_history *h, unsigned n);

/* Appends an event (data is consumed: stored or freed). */
void history_event(struct room_history *h, uint64_t now_ms, const char *type, const char *user_id,
                   const char *name, int64_t value, json_t *data);
/* Appends a moderation record: who (actor) did what (action) to whom
 * (target, "" if none), with optional details (consumed). */
void history_audit(struct room_history *h, uint64_t now_ms, const char *actor, const char *action,
                   const char *target, json_t *details);
/* A listener told of every event (audit 0) and audit entry (audit 1) just
 * recorded, e.g. the store. One per process; NULL to stop. */
typedef void (*history_sink_cb)(void *arg, struct room_history *h, int audit,
                                const struct analytics_event *e);
void history_sink_set(history_sink_cb cb, void *arg);
/* Ring entries oldest first, at most limit (the newest), with ts >= since_ms.
 * New reference. For audit rings the fields are named actor/action/target. */
json_t *history_ring_json(const struct event_ring *ring, uint64_t since_ms, size_t limit, int audit);
/* Erase of one user, in every history (earlier sessions too): its events
 * and audit entries name "anonymous" instead (its events lose their data;
 * an audit entry whose details name it loses them; other users' events keep
 * their data), and so do recordings and
 * streams it started or stopped. What the store does to its rows. */
#define HISTORY_ANONYMOUS "anonymous"
void history_erase_user(struct history_registry *reg, const char *user_id);

/* Handing a live room's analytics to the instance that takes it over
 * (several instances, ADR 0006): the aggregates as JSON (counts, peak,
 * quality, ring totals), applied back to a new owner's history (counts
 * are set; peak and ring totals only rise); the entries of a ring recorded
 * from ordinal `from` on (ring->total counts every entry ever) that it
 * still holds, oldest first, as [ts, type, user, name, value, data|null]
 * arrays; and one such entry's JSON text appended to h's ring without
 * telling the sink (-1 if it is not one). */
json_t *history_agg_json(const struct room_history *h);
void history_agg_apply(struct room_history *h, const json_t *agg);
json_t *history_ring_tail(const struct event_ring *ring, uint64_t from);
int history_ring_restore(struct room_history *h, int audit, const char *txt, size_t len);

/* The active recording, or NULL. */
struct recording *history_recording_active(struct room_history *h);
struct recording *history_recording_find(struct room_history *h, const char *id);
/* Starts a recording (the caller checked none is active). When the list is
 * full the oldest finished entry is dropped. NULL on allocation failure. */
struct recording *history_recording_start(struct room_history *h, const char *by, uint64_t now_ms);
json_t *history_recording_json(const struct recording *r, uint64_t now_ms);

size_t history_streams_active(const struct room_history *h);
struct live_stream *history_stream_find(struct room_history *h, const char *id);
/* Starts a stream; takes copies of target and redacted. NULL on failure. */
struct live_stream *history_stream_start(struct room_history *h, const char *name,
                                         const char *target, const char *redacted, const char *by,
                                         uint64_t now_ms);
json_t *history_stream_json(const struct live_stream *s, uint64_t now_ms);

#endif
