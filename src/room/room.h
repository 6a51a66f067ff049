/* The room model: participants in join order, lookup by user id, the
 * per-room sequence number and settings. Pure data, no I/O: the signaling
 * layer decides who hears about a change. */
#ifndef HUDDLE_ROOM_ROOM_H
#define HUDDLE_ROOM_ROOM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/perm.h"
#include "auth/token.h"
#include "lib/ids.h"
#include "lib/map.h"

struct conn;
struct room;

struct participant {
  struct room *room;                  /* borrowed: the room outlives its participants */
  struct conn *conn;                  /* borrowed; NULL once detached */
  struct participant *prev, *next;    /* the room's list, in join order */
  char user_id[ID_MAX + 1];
  char name[TOKEN_NAME_MAX + 1];
  enum room_role role;
  uint32_t perms;                     /* effective PERM_* bits */
  char session_id[33];                /* fresh per connection */
  char resume_token[65];              /* secret to this participant */
  uint64_t joined_ms;
  int audio, video, screen;           /* media state: 1 = publishing */
  json_t *net_stats;                  /* owned; last network-stats sample or NULL */
  char quality[16];                   /* last quality-update level, "" if none */
  json_t *background;                 /* owned; last virtual-background-update or NULL */
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

struct room_settings {
  int locked;
  int waiting_room;
  int mute_on_join;
  int max_participants;
  int chat_enabled;
  int reactions_enabled;
};

struct room {
  char id[ID_MAX + 1];
  uint64_t seq;                       /* last sequence number assigned */
  uint64_t created_ms;
  struct participant *head, *tail;    /* owned */
  size_t count;
  size_t peak;                        /* most participants at once */
  struct map members;                 /* user id -> participant (borrowed) */
  struct room_settings settings;
  struct room_history *hist;          /* borrowed from the server's registry */
  uint64_t chat_recent[ROOM_CHAT_RECENT]; /* seq of recent chat messages (ring) */
  size_t chat_head;
  struct map transfers;               /* transfer id -> struct transfer * (owned) */
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

/* Assigns and returns the next sequence number. */
static inline uint64_t room_seq_next(struct room *r) { return ++r->seq; }

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
