/* Breakout grants: short-lived, single-use, signed credentials that move a
 * member between a main room and its breakout rooms without a new token.
 *
 * A grant is base64url(payload || HMAC-SHA256(key, payload)) where payload
 * is "g1" and the fields room, parent, breakout, user, exp and jti joined
 * by '\n'. It names WHO may enter WHICH room of WHICH family until WHEN; it
 * carries no role (the member's current role in the family applies when it
 * is used). Single use is enforced by a set of spent jti values, each kept
 * until its grant would have expired anyway. Pure code: no I/O, no clock. */
#ifndef HUDDLE_AUTH_GRANT_H
#define HUDDLE_AUTH_GRANT_H

#include <stddef.h>
#include <stdint.h>

#include "guard/errors.h"
#include "lib/ids.h"
#include "lib/map.h"

#define GRANT_KEY_LEN 32
#define GRANT_JTI_LEN 32          /* hex characters */
#define GRANT_MAX 1024            /* bytes of an encoded grant */

struct grant_claims {
  char room[ID_MAX + 1];          /* the room the grant opens */
  char parent[ID_MAX + 1];        /* the family's main room */
  char breakout[ID_MAX + 1];      /* the breakout room the move is about */
  char user[ID_MAX + 1];
  int64_t exp;                    /* Unix seconds */
  char jti[GRANT_JTI_LEN + 1];
};

/* Writes a grant for c (c->jti is filled with a fresh random value) into
 * out. Returns its length, or -1 (bad field, buffer too small, no
 * randomness). */
int grant_mint(const unsigned char key[GRANT_KEY_LEN], struct grant_claims *c, char *out, size_t out_len);

/* Checks the signature, the fields and expiry (exp > now_s) of grant text
 * g (len bytes). API_OK fills *out; API_ERR_INVALID_TOKEN otherwise. Does
 * not look at the spent set. */
enum api_err grant_verify(const unsigned char key[GRANT_KEY_LEN], const char *g, size_t len, int64_t now_s,
                          struct grant_claims *out);

/* Spent jti values. */
struct grant_spent {
  struct map used;                /* jti -> exp (Unix seconds) as (void *)(intptr_t) */
};

/* Marks jti spent until exp. Returns 0, or -1 if it was already spent (or
 * on allocation failure: a grant that cannot be recorded is not honoured). */
int grant_spend(struct grant_spent *s, const char *jti, int64_t exp);
/* 1 if jti was spent. */
int grant_spent_has(const struct grant_spent *s, const char *jti);
/* Forgets spent values whose grants have expired at now_s. */
void grant_spent_prune(struct grant_spent *s, int64_t now_s);
void grant_spent_free(struct grant_spent *s);

#endif
