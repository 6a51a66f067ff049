/* Room families: a main room and its breakout rooms, as one unit for
 * grants (moves between them), limits (breakout rooms are rooms and count
 * against room_create) and lifetime (an empty family closes). */
#ifndef HUDDLE_ROOM_FAMILY_H
#define HUDDLE_ROOM_FAMILY_H

#include <stddef.h>

#include "auth/token.h"
#include "guard/errors.h"

struct hub;
struct room;

#define FAMILY_GRANT_TTL_S 300

/* A signed single-use grant for user to enter room, a room of parent's
 * family, about breakout room breakout. Returns a static buffer (valid
 * until the next call) or NULL. */
const char *family_grant_issue(struct hub *h, const char *user, const char *room, const char *parent,
                               const char *breakout);
/* Checks grant for room_id and, with spend, spends it (without: a peek
 * that fails on a spent grant but leaves an unspent one usable); fills
 * claims from the member's current standing in the family (grants carry
 * no role). */
enum api_err family_grant_use(struct hub *h, const char *grant, const char *room_id,
                              struct token_claims *claims, int spend);
/* Derives the grant key from the server's HMAC secret (else a random key
 * is made at first use). */
void family_grant_key(struct hub *h, const unsigned char *secret, size_t len);
void family_grants_prune(struct hub *h);
void family_grants_free(struct hub *h);

/* Charges n rooms to user's room_create budget, all or nothing. */
enum api_err family_charge_rooms(struct hub *h, const char *user, size_t n, char *detail, size_t dl);

/* If r's family is empty (nobody in the main room or any breakout room,
 * nobody waiting, nothing holding it, not lingering), closes the breakout
 * rooms and releases the main room. Returns 1 if it did (r may be gone).
 * Only acts when r is a main room. */
int family_collapse(struct hub *h, struct room *r);
/* The same for every family (from the periodic sweep). */
void family_sweep(struct hub *h);

#endif
