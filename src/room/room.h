/* The room model: members (participants) in join order, lookup by user id,
 * the per-room sequence number, settings, waiting room, hand queue, breakout
 * rooms, transfers and the room log. Owns all of these. Pure data, no I/O:
 * the operations (op.h) and the hub (hub.h) decide who hears about a change.
 * A member is the room-level participant and survives its session: while
 * its connection is away, session is NULL and away_ms says since when. */
#ifndef HUDDLE_ROOM_ROOM_H
#define HUDDLE_ROOM_ROOM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/perm.h"
#include "auth/token.h"
#include "lib/ids.h"
#include "lib/map.h"
#include "room/roomlog.h"

struct room;
struct room_policy;
struct chat_vis;

/* What few members have (enhanced info, network stats, a virtual
 * background): allocated at the first of them (room_participant_extra). */
struct participant_extra {
  json_t *info;                       /* owned; enhanced info (endpoint 5) or NULL */
  uint64_t info_ms;                   /* when info was last updated, 0: never */
  json_t *net_stats;                  /* owned; last network-stats sample or NULL */
  json_t *background;                 /* owned; last virtual-background-update or NULL */
  char quality[8];                    /* last quality-update level, "" if none */
};

/* NOTE: one per member, so its size is part of an idle member's cost: the
 * fields are ordered by size (no padding), the strings live in the same
 * allocation sized to fit, and what few members have is behind extra
 * (docs/performance.md, memory per idle connection). */
struct participant {
  struct room *room;                  /* borrowed: the room outlives its participants */
  void *session;                      /* borrowed: the adapter's session while connected; NULL while away.
                                         Opaque to the room, never serialized. */
  struct participant *prev, *next;    /* the room's list, in join order */
  struct participant *hnext;          /* the room's member index: next in this bucket */
  const char *user_id;                /* in tail[]: at most ID_MAX bytes, fixed for life */
  const char *name;                   /* in tail[]: at most TOKEN_NAME_MAX bytes; == user_id without a name */
  struct participant_extra *extra;    /* owned; NULL until info, stats or a background arrive */
  uint64_t away_ms;                   /* 0 while connected; else when its connection dropped */
  uint64_t joined_ms;
  uint32_t perms;                     /* effective PERM_* bits: role defaults + overrides */
  uint32_t perms_set, perms_val;      /* per-user overrides (token, then moderators) */
  uint32_t origin_set, origin_val;    /* overrides it joined with (token or grant) */
  uint8_t role;                       /* enum room_role (a byte: issue 16) */
  uint8_t origin_role;                /* enum room_role it joined with */
  uint8_t audio, video, screen;       /* media state: 1 = publishing */
  /* Raw bytes (issue 16: 48 bytes, not 98 as hex strings); the protocol's
   * hex forms are rendered on demand (room_participant_session_id/_resume_token). */
  uint8_t session_id[16];             /* fresh per join; kept across resumes */
  uint8_t resume_token[32];           /* secret to this participant; single use, renewed per room-state */
  char tail[];                        /* user_id, NUL, then name, NUL unless name is user_id */
};

#define ROOM_CHAT_RECENT 256          /* chat message ids a reply may reference */
#define ROOM_MAX_TRANSFERS 100

enum transfer_state { XFER_OFFERED = 0, XFER_ACCEPTED, XFER_REJECTED, XFER_COMPLETE };

struct transfer_party {
  char user_id[ID_MAX + 1];
  enum transfer_state state;
  uint64_t bytes;                     /* last progress reported */
};

struct transfer {
  char id[33];
  char sender[ID_MAX + 1];
  char to[ID_MAX + 1];                /* "" for an offer to the whole room */
  char name[256];
  char mime[128];
  char sha256[65];
  uint64_t size;
  uint64_t created_ms;
  struct transfer_party *parties;     /* owned: receivers that answered */
  size_t nparties;
};

/* Someone in the waiting room: upgraded, not admitted. */
struct waiter {
  struct room *room;                  /* borrowed: the room outlives its waiters */
  void *session;                      /* borrowed: the adapter's session (opaque) */
  struct waiter *prev, *next;
  struct token_claims claims;
  uint64_t since_ms;
};

/* A raised hand. The queue is the room's, in raise order. */
struct hand {
  char user_id[ID_MAX + 1];
  char name[TOKEN_NAME_MAX + 1];
  uint64_t raised_ms;
  uint64_t away_ms;                   /* 0 while present; else when its owner left */
};

#define ROOM_MAX_BREAKOUTS 20

struct breakout {
  char id[ID_MAX + 1];                /* a room id of its own */
  char name[65];
  char (*assigned)[ID_MAX + 1];       /* owned: user ids assigned to it */
  size_t nassigned;
};

struct room_settings {
  int locked;
  int waiting_room;
  int mute_on_join;
  int max_participants;
  int chat_enabled;
  int reactions_enabled;
  int screen_share_moderators_only;   /* 1: only can_moderate holders share screens */
};

struct room {
  char id[ID_MAX + 1];
  uint64_t seq;                       /* last sequence number assigned */
  uint64_t created_ms;
  struct participant *head, *tail;    /* owned */
  size_t count;
  size_t peak;                        /* most participants at once */
  /* The member index by user id, chained through participant.hnext (no
   * map entry and no copy of the key a member: docs/performance.md). */
  struct participant **mbuckets;      /* owned; nmbuckets (a power of two, or 0) chains */
  size_t nmbuckets;
  struct room_settings settings;
  struct room_history *hist;          /* borrowed from the server's registry */
  uint64_t *chat_recent;          /* owned, ROOM_CHAT_RECENT slots from the first chat (ring): seq
                                     of recent chat messages; NULL in a room that never chatted */
  size_t chat_head;
  struct map transfers;               /* transfer id -> struct transfer * (owned) */
  struct waiter *wait_head, *wait_tail; /* owned, in arrival order */
  size_t nwaiting;
  struct map banned;                  /* user id -> (void *)1: removed, may not rejoin */
  struct hand *hands;                 /* owned; the hand-raise queue */
  size_t nhands, cap_hands;
  struct breakout *breakouts;         /* owned; open breakout rooms of this room */
  size_t nbreakouts;
  char parent[ID_MAX + 1];            /* for a breakout room: its main room, else "" */
  int held;                           /* a breakout room its parent keeps open */
  uint64_t linger_until_ms;           /* kept open until then, empty (people returning) */
  struct roomlog log;                 /* owned: recent messages, for resume */
  size_t naway;                       /* participants whose connection dropped (grace period) */
  struct chat_vis *chat_vis;          /* owned; who saw which private message (room/chatvis.c) */
  struct room_policy *policy;         /* owned; in-room changes, bans of the family (room/policy.c) */
};

/* Returns a new empty room or NULL. */
struct room *room_new(const char *id, int max_participants, uint64_t now_ms);
/* Frees r and every participant still in it. */
void room_free(struct room *r);

/* Builds a participant for claims (not yet in a room). Returns NULL on
 * allocation or randomness failure. */
struct participant *room_participant_new(const struct token_claims *claims, uint64_t now_ms);
struct participant *room_participant_find(struct room *r, const char *user_id);
/* Appends p. Returns 0, or -1 if p's user is already present or on
 * allocation failure. */
int room_participant_add(struct room *r, struct participant *p);
/* Unlinks p (not freed). */
void room_participant_remove(struct room *r, struct participant *p);
void room_participant_free(struct participant *p);
/* p's extra fields, allocated (zeroed) at the first call; NULL on failure. */
struct participant_extra *room_participant_extra(struct participant *p);

/* Assigns and returns the next sequence number. */
static inline uint64_t room_seq_next(struct room *r) { return ++r->seq; }

/* Gives p a new resume token (the old one is spent). Returns 0 or -1. */
int room_participant_resume_token_renew(struct participant *p);
/* A fresh session id (a new join, not a resume). 0, or -1 if randomness failed. */
int room_participant_session_id_renew(struct participant *p);
/* The session id as 32 and the resume token as 64 lowercase hex digits, in out. */
const char *room_participant_session_id(const struct participant *p, char out[33]);
const char *room_participant_resume_token(const struct participant *p, char out[65]);
/* 1 if token is p's resume token in hex (compared in constant time), else 0. */
int room_participant_resume_token_is(const struct participant *p, const char *token);
/* Sets both from their hex forms (a member moved from another instance); a
 * form that is not exactly that many hex digits gets fresh random bytes
 * instead (nothing can resume with it). 0, or -1 if randomness failed. */
int room_participant_ids_from_hex(struct participant *p, const char *session_id, const char *resume_token);

/* Recomputes p->perms from its role and overrides. */
void room_participant_perms_update(struct participant *p);
/* The first participant holding role, in join order, or NULL. */
struct participant *room_first_with_role(struct room *r, enum room_role role);
/* 1 if nothing keeps r alive at now_ms: no participants, waiters, open
 * breakouts, holds or lingering. */
int room_idle(const struct room *r, uint64_t now_ms);

/* Waiting room. */
struct waiter *room_waiter_add(struct room *r, void *session, const struct token_claims *claims,
                               uint64_t now_ms);
struct waiter *room_waiter_find(struct room *r, const char *user_id);
/* Unlinks and frees w. */
void room_waiter_remove(struct room *r, struct waiter *w);

/* Hand-raise queue. Returns the index of user_id's hand or -1. */
int room_hand_find(const struct room *r, const char *user_id);
/* Appends a hand (no duplicates: returns 1 if already raised, 0 if added,
 * -1 on allocation failure). */
int room_hand_raise(struct room *r, const char *user_id, const char *name, uint64_t now_ms);
/* Removes user_id's hand; returns 1 if there was one. */
int room_hand_lower(struct room *r, const char *user_id);
/* Drops hands whose owners have been away longer than grace_ms. */
void room_hands_expire(struct room *r, uint64_t now_ms, uint64_t grace_ms);
/* The queue of present hands with 1-based positions. New reference. */
json_t *room_hands_json(const struct room *r);

/* Breakout rooms listed by a main room. */
struct breakout *room_breakout_find(struct room *r, const char *id);
struct breakout *room_breakout_add(struct room *r, const char *id, const char *name);
void room_breakout_remove(struct room *r, struct breakout *b);
/* Assigns user_id to b (and out of any other breakout of r). 0 or -1. */
int room_breakout_assign(struct room *r, struct breakout *b, const char *user_id);
/* The breakout user_id is assigned to, or NULL. */
struct breakout *room_breakout_of(struct room *r, const char *user_id);

/* Remembers a chat message's seq; returns 1 if seq is a recent chat message. */
void room_chat_remember(struct room *r, uint64_t seq);
int room_chat_known(const struct room *r, uint64_t seq);

/* File transfers of the room. */
struct transfer *room_transfer_new(struct room *r, const char *sender, const char *to,
                                   uint64_t now_ms);
struct transfer *room_transfer_find(struct room *r, const char *id);
void room_transfer_remove(struct room *r, struct transfer *t);
/* Removes every transfer offered by user_id (they left). */
void room_transfers_drop_user(struct room *r, const char *user_id);
/* Finds or adds receiver user_id's entry; NULL on allocation failure. */
struct transfer_party *room_transfer_party(struct transfer *t, const char *user_id, int create);

/* Public view of p: user_id, name, role, joined_at, media. New reference. */
json_t *room_participant_json(const struct participant *p);
/* Effective permissions of p as {"can_chat": true, ...}. New reference. */
json_t *room_perms_json(uint32_t perms);
json_t *room_settings_json(const struct room *r);

#endif
