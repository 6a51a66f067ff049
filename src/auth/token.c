/* Token verification and minting over libjwt 1.10 (see token.h).
 * libjwt checks only the signature, with whatever algorithm the token's
 * header names, so this module checks the token's shape and header itself,
 * pins the configured algorithm, and parses and type-checks every claim from
 * the signed payload bytes. It knows nothing of rooms: callers compare
 * claims.room with the room being joined. */
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth/token.h"
#include "lib/b64.h"

#define TOKEN_LEN_MAX 8192     /* bytes of compact JWS we accept */
#define TOKEN_HMAC_KEY_MIN 32  /* bytes; RFC 7518 3.2 asks for >= the hash size */

enum key_kind { KEY_HMAC, KEY_RSA, KEY_EC };

struct alg_entry {
  const char *name;             /* the JOSE "alg" value */
  jwt_alg_t alg;
  enum key_kind kind;
  const EVP_MD *(*md)(void);    /* digest, for our own HMAC check; NULL if not HMAC */
};

static const struct alg_entry algs[] = {
  {"HS256", JWT_ALG_HS256, KEY_HMAC, EVP_sha256},
  {"HS384", JWT_ALG_HS384, KEY_HMAC, EVP_sha384},
  {"HS512", JWT_ALG_HS512, KEY_HMAC, EVP_sha512},
  {"RS256", JWT_ALG_RS256, KEY_RSA, NULL},
  {"RS384", JWT_ALG_RS384, KEY_RSA, NULL},
  {"RS512", JWT_ALG_RS512, KEY_RSA, NULL},
  {"ES256", JWT_ALG_ES256, KEY_EC, NULL},
  {"ES384", JWT_ALG_ES384, KEY_EC, NULL},
  {"ES512", JWT_ALG_ES512, KEY_EC, NULL},
};
#define ALG_COUNT (sizeof(algs) / sizeof(algs[0]))

/* The three dot-separated segments of a compact JWS, pointing into the token. */
struct jws_parts {
  const char *head, *body, *sig;
  size_t head_len, body_len, sig_len;
};

static const struct alg_entry *alg_by_name(const char *name) {
  for (size_t i = 0; i < ALG_COUNT; i++)
    if (strcmp(name, algs[i].name) == 0) return &algs[i];
  return NULL;
}

static const struct alg_entry *alg_by_id(int alg) {
  for (size_t i = 0; i < ALG_COUNT; i++)
    if ((int)algs[i].alg == alg) return &algs[i];
  return NULL;
}

static void set_err(char *err, size_t err_len, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || err_len == 0) return;
  va_start(ap, fmt);
  vsnprintf(err, err_len, fmt, ap);
  va_end(ap);
}

/* Returns 1 if key is a PEM public key of the kind libjwt will verify with. */
static int pem_key_matches(const unsigned char *key, size_t len, enum key_kind kind) {
  BIO *bio = BIO_new_mem_buf(key, (int)len);
  EVP_PKEY *pkey = NULL;
  int ok = 0;

  if (bio == NULL) return 0;
  pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  if (pkey != NULL)
    ok = EVP_PKEY_id(pkey) == (kind == KEY_RSA ? EVP_PKEY_RSA : EVP_PKEY_EC);
  EVP_PKEY_free(pkey);
  BIO_free(bio);
  return ok;
}

int token_verifier_init(struct token_verifier *v, const char *alg,
                        const unsigned char *key, size_t key_len,
                        char *err, size_t err_len) {
  const struct alg_entry *a = alg != NULL ? alg_by_name(alg) : NULL;

  memset(v, 0, sizeof(*v));
  if (a == NULL) {
    set_err(err, err_len, "unsupported token algorithm '%.16s' (use HS256/384/512, "
            "RS256/384/512 or ES256/384/512)", alg != NULL ? alg : "");
    return -1;
  }
  if (key == NULL || key_len == 0 || key_len > INT_MAX) {
    set_err(err, err_len, "token key is empty or too large");
    return -1;
  }
  if (a->kind == KEY_HMAC && key_len < TOKEN_HMAC_KEY_MIN) {
    set_err(err, err_len, "%s token secret must be at least %d bytes", a->name,
            TOKEN_HMAC_KEY_MIN);
    return -1;
  }
  if (a->kind != KEY_HMAC && !pem_key_matches(key, key_len, a->kind)) {
    set_err(err, err_len, "%s token key must be a PEM %s public key", a->name,
            a->kind == KEY_RSA ? "RSA" : "EC");
    return -1;
  }
  v->key = malloc(key_len);
  if (v->key == NULL) {
    set_err(err, err_len, "out of memory");
    return -1;
  }
  memcpy(v->key, key, key_len);
  v->key_len = key_len;
  v->alg = (int)a->alg;
  return 0;
}

void token_verifier_close(struct token_verifier *v) {
  if (v == NULL) return;
  if (v->key != NULL) {
    OPENSSL_cleanse(v->key, v->key_len);
    free(v->key);
  }
  memset(v, 0, sizeof(*v));
}

/* ---- Shape and encoding ---- */

/* Decodes unpadded base64url src[0..len) into a malloc'd buffer the caller
 * frees, and sets *out_len. Rejects padding, other alphabets and non-zero
 * trailing bits, so each byte string has exactly one encoding. Returns NULL
 * on bad input or when out of memory. */
static unsigned char *b64url_decode_new(const char *src, size_t len, size_t *out_len) {
  size_t cap = len / 4 * 3 + 3;
  unsigned char *out = malloc(cap);
  if (out == NULL) return NULL;
  int n = b64url_decode(src, len, out, cap);
  if (n < 0) {
    free(out);
    return NULL;
  }
  *out_len = (size_t)n;
  return out;
}

/* Splits jwt into exactly three non-empty base64url segments. Returns 0 or -1. */
static int jws_split(const char *jwt, struct jws_parts *p) {
  size_t len = strnlen(jwt, TOKEN_LEN_MAX + 1);
  const char *dot1, *dot2;

  if (len == 0 || len > TOKEN_LEN_MAX) return -1;
  for (size_t i = 0; i < len; i++)
    if (jwt[i] != '.' && b64url_value(jwt[i]) < 0) return -1;
  dot1 = memchr(jwt, '.', len);
  if (dot1 == NULL) return -1;
  dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - jwt));
  if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - jwt)) != NULL)
    return -1;
  p->head = jwt;
  p->head_len = (size_t)(dot1 - jwt);
  p->body = dot1 + 1;
  p->body_len = (size_t)(dot2 - p->body);
  p->sig = dot2 + 1;
  p->sig_len = len - (size_t)(p->sig - jwt);
  if (p->head_len == 0 || p->body_len == 0 || p->sig_len == 0) return -1;
  return 0;
}

/* Decodes one segment as a JSON object, refusing duplicate keys. Returns a
 * new reference, or NULL. */
static json_t *segment_json(const char *seg, size_t len) {
  size_t raw_len = 0;
  unsigned char *raw = b64url_decode_new(seg, len, &raw_len);
  json_t *j;

  if (raw == NULL) return NULL;
  j = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
  free(raw);
  if (j != NULL && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

/* Returns 1 if the header is a JSON object whose "alg" is exactly a->name.
 * libjwt would otherwise pick the algorithm from the header (HS/RS confusion). */
static int header_ok(const struct jws_parts *p, const struct alg_entry *a) {
  json_t *head = segment_json(p->head, p->head_len);
  json_t *alg = json_object_get(head, "alg");
  int ok = json_is_string(alg) && strcmp(json_string_value(alg), a->name) == 0;

  json_decref(head);
  return ok;
}

/* Returns 1 if the HMAC signature is right, comparing in constant time.
 * NOTE: libjwt 1.10 compares HMACs with strcmp(); checking first means
 * libjwt only ever compares signatures that match. */
static int hmac_ok(const struct token_verifier *v, const struct alg_entry *a,
                   const struct jws_parts *p) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  size_t sig_len = 0;
  unsigned char *sig = b64url_decode_new(p->sig, p->sig_len, &sig_len);
  int ok = 0;

  if (sig == NULL) return 0;
  if (HMAC(a->md(), v->key, (int)v->key_len, (const unsigned char *)p->head,
           p->head_len + 1 + p->body_len, mac, &mac_len) != NULL &&
      sig_len == mac_len && CRYPTO_memcmp(sig, mac, mac_len) == 0)
    ok = 1;
  free(sig);
  return ok;
}

/* ---- Claims ---- */

/* Returns 1 if s[0..len) is a display name: short, without control characters. */
static int name_ok(const char *s, size_t len) {
  if (len > TOKEN_NAME_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) return 0;
  }
  return 1;
}

/* Copies the id claim key into out (ID_MAX + 1 bytes). Returns 0, or -1 if
 * it is missing while required, not a string, or not a valid id. */
static int claim_id(json_t *claims, const char *key, int required, char *out) {
  json_t *j = json_object_get(claims, key);
  size_t len;

  if (j == NULL) return required ? -1 : 0;
  if (!json_is_string(j)) return -1;
  len = json_string_length(j);
  if (!id_valid(json_string_value(j), len)) return -1;
  memcpy(out, json_string_value(j), len);
  out[len] = '\0';
  return 0;
}

/* Reads an integer claim; reals, strings and booleans are refused. */
static int claim_int(json_t *claims, const char *key, int required, int64_t *out) {
  json_t *j = json_object_get(claims, key);

  if (j == NULL) return required ? -1 : 0;
  if (!json_is_integer(j)) return -1;
  *out = (int64_t)json_integer_value(j);
  return 0;
}

static int claim_name(json_t *claims, char *out) {
  json_t *j = json_object_get(claims, "name");
  size_t len;

  if (j == NULL) return 0;
  if (!json_is_string(j)) return -1;
  len = json_string_length(j);
  if (!name_ok(json_string_value(j), len)) return -1;
  memcpy(out, json_string_value(j), len);
  out[len] = '\0';
  return 0;
}

static int claim_role(json_t *claims, enum room_role *out) {
  json_t *j = json_object_get(claims, "role");

  *out = ROOM_ROLE_PARTICIPANT;
  if (j == NULL) return 0;
  if (!json_is_string(j)) return -1;
  return perm_role_parse(json_string_value(j), out);
}

/* Reads "perms": an object of known permission names to booleans. */
static int claim_perms(json_t *claims, uint32_t *set, uint32_t *val) {
  json_t *j = json_object_get(claims, "perms");
  const char *key;
  json_t *v;

  if (j == NULL) return 0;
  if (!json_is_object(j)) return -1;
  json_object_foreach(j, key, v) {
    uint32_t bit = perm_parse(key);
    if (bit == 0 || !json_is_boolean(v)) return -1;
    *set |= bit;
    if (json_is_true(v)) *val |= bit;
  }
  return 0;
}

static int claim_admin(json_t *claims, int *out) {
  json_t *j = json_object_get(claims, "admin");

  if (j == NULL) return 0;
  if (!json_is_boolean(j)) return -1;
  *out = json_is_true(j);
  return 0;
}

/* Fills c from the payload object. Returns 0, or -1 on a missing or mistyped
 * claim. Claims we do not know (aud, iss, jti...) are ignored. */
static int claims_parse(json_t *claims, struct token_claims *c) {
  if (claim_id(claims, "sub", 1, c->sub) < 0 || token_sub_reserved(c->sub)) return -1;
  if (claim_int(claims, "exp", 1, &c->exp) < 0 ||
      claim_int(claims, "nbf", 0, &c->nbf) < 0 ||
      claim_int(claims, "iat", 0, &c->iat) < 0)
    return -1;
  if (claim_name(claims, c->name) < 0 || claim_id(claims, "room", 0, c->room) < 0 ||
      claim_role(claims, &c->role) < 0 ||
      claim_perms(claims, &c->perms_set, &c->perms_val) < 0 ||
      claim_admin(claims, &c->admin) < 0)
    return -1;
  return 0;
}

/* ---- Verify ---- */

/* Runs libjwt over the token with the pinned key and checks the algorithm it
 * settled on. */
static enum api_err libjwt_check(const struct token_verifier *v, const char *token) {
  jwt_t *jwt = NULL;
  int rc = jwt_decode(&jwt, token, v->key, (int)v->key_len);
  enum api_err e = API_OK;

  if (rc != 0) return rc == ENOMEM ? API_ERR_INTERNAL_ERROR : API_ERR_INVALID_TOKEN;
  if ((int)jwt_get_alg(jwt) != v->alg) e = API_ERR_INVALID_TOKEN;
  jwt_free(jwt);
  return e;
}

/* Sets why (when given) to a static sentence naming the check that failed.
 * It never quotes the token, the secret or the expected signature. */
#define WHY(text) do { if (why) *why = (text); } while (0)

enum api_err token_verify(const struct token_verifier *v, const char *jwt,
                          int64_t now, struct token_claims *out) {
  return token_verify_why(v, jwt, now, out, NULL);
}

enum api_err token_verify_why(const struct token_verifier *v, const char *jwt,
                              int64_t now, struct token_claims *out, const char **why) {
  const struct alg_entry *a = v != NULL ? alg_by_id(v->alg) : NULL;
  struct token_claims c;
  struct jws_parts p;
  json_t *claims = NULL;
  enum api_err e;

  memset(out, 0, sizeof(*out));
  memset(&c, 0, sizeof(c));
  WHY(NULL);
  if (a == NULL || v->key == NULL) return API_ERR_INTERNAL_ERROR;
  if (jwt == NULL || jws_split(jwt, &p) < 0) {
    WHY("format: not a JWT (three non-empty base64url parts joined by dots, at most 8192 bytes)");
    return API_ERR_INVALID_TOKEN;
  }
  if (!header_ok(&p, a)) {
    WHY("header: not JSON, or its alg is not the algorithm this server pins (--jwt-alg)");
    return API_ERR_INVALID_TOKEN;
  }
  if (a->kind == KEY_HMAC && !hmac_ok(v, a, &p)) {
    WHY("signature: does not match (signed with another secret than the server's?)");
    return API_ERR_INVALID_TOKEN;
  }
  e = libjwt_check(v, jwt);
  if (e != API_OK) {
    if (e == API_ERR_INVALID_TOKEN) WHY("signature: does not verify with the server's key");
    return e;
  }

  /* NOTE: claims come from the signed bytes, not jwt_get_grants_json():
   * libjwt parses without JSON_REJECT_DUPLICATES and re-serializes, so a
   * repeated "sub" would already have collapsed to its last value there. */
  claims = segment_json(p.body, p.body_len);
  if (claims == NULL || claims_parse(claims, &c) < 0) {
    WHY("claims: sub and exp are required, and each claim must have its documented type");
    e = API_ERR_INVALID_TOKEN;
    goto fail;
  }
  if (c.exp <= now) {
    WHY("expired: exp is in the past");
    e = API_ERR_TOKEN_EXPIRED;
    goto fail;
  }
  if (c.nbf > now) {
    WHY("not yet valid: nbf is in the future");
    e = API_ERR_TOKEN_NOT_YET_VALID;
    goto fail;
  }
  json_decref(claims);
  *out = c;
  return API_OK;

fail:
  json_decref(claims);
  return e;
}

int token_sub_reserved(const char *sub) {
  return strcmp(sub, "server") == 0 || strcmp(sub, "anonymous") == 0; /* STORE_ANONYMOUS */
}

/* ---- Mint ---- */

/* Builds the payload object for c. Returns a new reference, or NULL if c
 * holds something token_verify would refuse. */
static json_t *payload_build(const struct token_claims *c, int64_t iat) {
  size_t name_len = strnlen(c->name, sizeof(c->name));
  size_t room_len = strnlen(c->room, sizeof(c->room));
  json_t *p = NULL, *perms = NULL;
  int rc = 0;

  if (!id_valid(c->sub, strnlen(c->sub, sizeof(c->sub))) ||
      token_sub_reserved(c->sub) || c->exp <= 0 ||
      !name_ok(c->name, name_len) || (room_len > 0 && !id_valid(c->room, room_len)) ||
      (int)c->role < 0 || c->role >= ROOM_ROLE__COUNT ||
      (c->perms_set >> PERM__COUNT) != 0)
    return NULL;

  p = json_pack("{s:s, s:I, s:I, s:s}", "sub", c->sub, "exp", (json_int_t)c->exp,
                "iat", (json_int_t)iat, "role", perm_role_name(c->role));
  if (p == NULL) return NULL;
  if (c->nbf != 0) rc |= json_object_set_new(p, "nbf", json_integer(c->nbf));
  if (name_len > 0) rc |= json_object_set_new(p, "name", json_string(c->name));
  if (room_len > 0) rc |= json_object_set_new(p, "room", json_string(c->room));
  if (c->admin) rc |= json_object_set_new(p, "admin", json_true());
  if (c->perms_set != 0) {
    perms = json_object();
    for (int i = 0; perms != NULL && i < PERM__COUNT; i++) {
      if (c->perms_set & (1u << i))
        rc |= json_object_set_new(perms, perm_name(i),
                                  json_boolean(c->perms_val & (1u << i)));
    }
    rc |= json_object_set_new(p, "perms", perms); /* steals perms, even NULL */
  }
  if (rc != 0) {
    json_decref(p);
    return NULL;
  }
  return p;
}

char *token_mint(const unsigned char *secret, size_t secret_len,
                 const struct token_claims *c) {
  return token_mint_alg(secret, secret_len, c, "HS256");
}

char *token_mint_alg(const unsigned char *secret, size_t secret_len,
                     const struct token_claims *c, const char *alg) {
  const struct alg_entry *a = alg ? alg_by_name(alg) : NULL;
  json_t *payload = NULL;
  char *json = NULL, *tok = NULL;
  jwt_t *jwt = NULL;

  if (c == NULL || secret == NULL || secret_len < TOKEN_HMAC_KEY_MIN ||
      secret_len > INT_MAX || a == NULL || a->kind != KEY_HMAC)
    return NULL;
  payload = payload_build(c, c->iat != 0 ? c->iat : (int64_t)time(NULL));
  if (payload == NULL) goto fail;
  json = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
  if (json == NULL || jwt_new(&jwt) != 0) goto fail;
  if (jwt_add_grants_json(jwt, json) != 0 ||
      jwt_set_alg(jwt, a->alg, secret, (int)secret_len) != 0)
    goto fail;
  /* NOTE: libjwt 1.10 allocates with malloc() (it has no jwt_set_alloc), so
   * the caller's free() matches. */
  tok = jwt_encode_str(jwt);

fail:
  jwt_free(jwt);
  free(json);
  json_decref(payload);
  return tok;
}
