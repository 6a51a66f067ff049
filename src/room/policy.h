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
 * flags and roles in bytes, no string for an empty name, and the user id and
 * the index's chain in the same allocation (issue 16: 40 bytes plus a map
 * entry with its own copy of the id and a malloc header each, before; now
 * 37 bytes plus the id; docs/performance.md, memory per idle connection). */
struct policy_rec {
  struct policy_rec *next;         /* room_policy's index: next in this bucket */
  char *name;                      /* owned; NULL until admitted or when empty (read as "") */
  uint32_t base_set, base_val;     /* the token's, at the first admitted join */
  uint32_t set, val;
  uint8_t base_role;               /* enum room_role: the token's, at the first admitted join */
  uint8_t role;                    /* enum room_role, when has_role */
  uint8_t admitted;                /* joined the family at least once */
  uint8_t has_role, has_perms;     /* changed in the room */
  char user[];                     /* the user id, NUL-terminated */
};

struct room_policy {
  struct policy_rec **buckets;     /* owned: the records by user id, chained through next */
  uint32_t nbuckets;               /* a power of two, or 0 */
  uint32_t count;                  /* records */
  struct map rejected;             /* user id -> (void *)1 */
};

/* The record of user in p, or NULL. */
struct policy_rec *policy_rec_get(const struct room_policy *p, const char *user);
/* A new, zeroed record for user in p (replacing and freeing any it had), or NULL. */
struct policy_rec *policy_rec_add(struct room_policy *p, const char *user);
/* Removes and frees user's record in p, if any. */
void policy_rec_del(struct room_policy *p, const char *user);
/* Calls fn(user, record, arg) for each record; fn must not add or remove any. */
void policy_each(const struct room_policy *p, void (*fn)(const char *user, void *rec, void *arg), void *arg);
/* Frees every record and the index (p itself stays, empty). */
void policy_users_free(struct room_policy *p);

/* The family's main room of r (r itself for a main room), or NULL. */

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
