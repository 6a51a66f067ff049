/* Token verification and minting: a strict wrapper around libjwt.
 * libjwt 1.10 trusts the token's header for the algorithm and checks no
 * claims, so this module always passes a key, pins the configured algorithm,
 * and type-checks every claim itself (protocol.md "Authentication"). */
#ifndef HUDDLE_AUTH_TOKEN_H
#define HUDDLE_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "auth/perm.h"
#include "guard/errors.h"
#include "lib/ids.h"

#define TOKEN_NAME_MAX 128 /* bytes of UTF-8 in the display name */

struct token_claims {
  char sub[ID_MAX + 1];             /* user id; always valid per id_valid() */
  char name[TOKEN_NAME_MAX + 1];    /* display name; "" when absent */
  char room[ID_MAX + 1];            /* "" when the token is not bound to a room */
  enum room_role role;              /* ROOM_ROLE_PARTICIPANT when absent */
  uint32_t perms_set;               /* PERM_* bits the token overrides */
  uint32_t perms_val;               /* their values (subset of perms_set) */
  int admin;                        /* 1 for a service token */
  int64_t exp, nbf, iat;            /* seconds since the epoch; nbf/iat 0 when absent */
};

struct token_verifier {
  int alg;                   /* libjwt jwt_alg_t, pinned */
  unsigned char *key;        /* owned: HMAC secret or PEM public key */
  size_t key_len;
};

/* Sets up v for alg ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
 * "ES256", "ES384", "ES512") and key (copied). HMAC keys must be at least
 * 32 bytes. Returns 0, or -1 with a reason in err. */
int token_verifier_init(struct token_verifier *v, const char *alg,
                        const unsigned char *key, size_t key_len,
                        char *err, size_t err_len);
void token_verifier_close(struct token_verifier *v);

/* 1 if user id sub is reserved: "server" (the sender of server messages)
 * and "anonymous" (what erase leaves where a user's id was: an erased
 * user's chat and events read as anonymous's; ADR 0020). No token names
 * them; neither do dev tokens or `huddle token`. */
int token_sub_reserved(const char *sub);

/* Verifies jwt at time now (Unix seconds) and fills *out. Returns API_OK,
 * API_ERR_INVALID_TOKEN (bad shape, signature, algorithm or claim types),
 * API_ERR_TOKEN_EXPIRED or API_ERR_TOKEN_NOT_YET_VALID. */
enum api_err token_verify(const struct token_verifier *v, const char *jwt,
                          int64_t now, struct token_claims *out);

/* token_verify, and on refusal *why (may be NULL) names the check that
 * failed in a static sentence safe to show the caller (no secret, no token
 * bytes): format, header, signature, claims, expired or not yet valid. */
enum api_err token_verify_why(const struct token_verifier *v, const char *jwt,
                              int64_t now, struct token_claims *out, const char **why);

/* Mints an HS256 token for c (c->exp must be set) with secret. Returns a
 * malloc'd string the caller frees, or NULL on failure. */
char *token_mint(const unsigned char *secret, size_t secret_len,
                 const struct token_claims *c);
/* token_mint with an HMAC algorithm named alg ("HS256", "HS384", "HS512");
 * NULL for any other algorithm. */
char *token_mint_alg(const unsigned char *secret, size_t secret_len,
                     const struct token_claims *c, const char *alg);

#endif
