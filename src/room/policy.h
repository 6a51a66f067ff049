/* Room policy: what a user may be in a room family (a main room and its
 * breakout rooms), whatever path it comes by (WebSocket join, reconnect,
 * REST, breakout move and return).
 *
 * - In-room changes stick: role and permission changes made in the room are
 *   recorded per user id at the family's main room and overlay the token's
 *   claims on every later join and REST call, for the room's life.
 * - Membership: the first admitted join records the user's base role and
 *   overrides (from its token); grants carry no role and use this record.
 * - Bans cover the family: removed from the main room means refused in its
 *   breakout rooms too.
 * - REST gate: waiting users and rejected users read nothing of the room. */
#ifndef HUDDLE_ROOM_POLICY_H
#define HUDDLE_ROOM_POLICY_H

#include <stdint.h>

#include "auth/token.h"
#include "guard/errors.h"
#include "lib/map.h"

struct hub;
struct room;

/* One per user admitted to a family, so part of an idle member's cost:
 * flags in bytes, and no string for an empty name (40 bytes, was 48 plus a
 * 1-byte strdup; docs/performance.md, memory per idle connection). */
struct policy_rec {
  char *name;                      /* owned; NULL until admitted or when empty (read as "") */
  enum room_role base_role;        /* the token's, at the first admitted join */
  uint32_t base_set, base_val;
  enum room_role role;
  uint32_t set, val;
  uint8_t admitted;                /* joined the family at least once */
  uint8_t has_role, has_perms;     /* changed in the room */
};

struct room_policy {
  struct map users;                /* user id -> struct policy_rec * (owned) */
  struct map rejected;             /* user id -> (void *)1 */
};

/* The family's main room of r (r itself for a main room), or NULL. */
/* Frees a record of room_policy.users (a map_each callback's value). */
void policy_rec_free(struct policy_rec *rec);

struct room *policy_root(struct hub *h, struct room *r);
/* The record of user in room_id's family, or NULL. */
const struct policy_rec *policy_find(struct hub *h, const char *room_id, const char *user);

/* An admitted join of claims into r: records membership (first time only). */
void policy_admitted(struct hub *h, struct room *r, const struct token_claims *c);
/* A role or permission change made in r. */
void policy_note_role(struct hub *h, struct room *r, const char *user, enum room_role role);
void policy_note_perms(struct hub *h, struct room *r, const char *user, uint32_t set, uint32_t val);
void policy_note_rejected(struct hub *h, struct room *r, const char *user, int rejected);

/* Overlays in-room changes onto token claims for room_id (admins unchanged). */
void policy_apply(struct hub *h, const char *room_id, struct token_claims *c);
/* Claims for a member moving inside its family (a grant): base + changes.
 * Returns 0, or -1 if user never was admitted to the family. */
int policy_member_claims(struct hub *h, const char *room_id, const char *user, struct token_claims *out);
/* 1 if user was removed from room_id or from its family's main room. */
int policy_banned(struct hub *h, const char *room_id, const char *user);
/* REST reads and writes on a live room: API_OK, or why not (banned,
 * waiting, rejected). member: the caller is in the room now. */
enum api_err policy_rest_gate(struct hub *h, struct room *r, const struct token_claims *c, int member,
                              const char **detail);

/* A join of room_id without a grant: breakout rooms are entered with a
 * grant from their main room (staff and admins excepted), so the main
 * room's lock and waiting room cannot be walked around. */
enum api_err policy_breakout_entry(struct hub *h, const char *room_id, const struct token_claims *c);

void policy_free(struct room *r);

#endif
