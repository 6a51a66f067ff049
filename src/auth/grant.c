/* Breakout grants (see grant.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/grant.h"
#include "lib/b64.h"

#define MAC_LEN 32
#define PAYLOAD_MAX 512

static void mac(const unsigned char key[GRANT_KEY_LEN], const unsigned char *p, size_t n,
                unsigned char out[MAC_LEN]) {
  unsigned int len = MAC_LEN;
  HMAC(EVP_sha256(), key, GRANT_KEY_LEN, p, n, out, &len);
}

static int random_jti(char *out) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[GRANT_JTI_LEN / 2];
  if (RAND_bytes(raw, (int)sizeof(raw)) != 1) return -1;
  for (size_t i = 0; i < sizeof(raw); i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[GRANT_JTI_LEN] = '\0';
  return 0;
}

int grant_mint(const unsigned char key[GRANT_KEY_LEN], struct grant_claims *c, char *out, size_t out_len) {
  if (!id_valid(c->room, strlen(c->room)) || !id_valid(c->parent, strlen(c->parent)) ||
      !id_valid(c->breakout, strlen(c->breakout)) || !id_valid(c->user, strlen(c->user)) || c->exp <= 0)
    return -1;
  if (random_jti(c->jti) != 0) return -1;
  unsigned char buf[PAYLOAD_MAX + MAC_LEN];
  int n = snprintf((char *)buf, PAYLOAD_MAX, "g1\n%s\n%s\n%s\n%s\n%" PRId64 "\n%s", c->room, c->parent,
                   c->breakout, c->user, c->exp, c->jti);
  if (n <= 0 || n >= PAYLOAD_MAX) return -1;
  mac(key, buf, (size_t)n, buf + n);
  return b64url_encode(buf, (size_t)n + MAC_LEN, out, out_len);
}

/* Copies the next '\n'-terminated field (or the rest) into out if it is a
 * valid id. Advances *p. */
static int field_id(const char **p, const char *end, char *out) {
  const char *nl = memchr(*p, '\n', (size_t)(end - *p));
  if (nl == NULL) return -1;
  size_t n = (size_t)(nl - *p);
  if (!id_valid(*p, n)) return -1;
  memcpy(out, *p, n);
  out[n] = '\0';
  *p = nl + 1;
  return 0;
}

enum api_err grant_verify(const unsigned char key[GRANT_KEY_LEN], const char *g, size_t len, int64_t now_s,
                          struct grant_claims *out) {
  unsigned char buf[PAYLOAD_MAX + MAC_LEN], want[MAC_LEN];
  memset(out, 0, sizeof(*out));
  if (len == 0 || len > GRANT_MAX) return API_ERR_INVALID_TOKEN;
  int n = b64url_decode(g, len, buf, sizeof(buf));
  if (n <= MAC_LEN + 3) return API_ERR_INVALID_TOKEN;
  size_t plen = (size_t)n - MAC_LEN;
  mac(key, buf, plen, want);
  if (CRYPTO_memcmp(want, buf + plen, MAC_LEN) != 0) return API_ERR_INVALID_TOKEN;
  const char *p = (const char *)buf, *end = p + plen;
  if (plen < 3 || memcmp(p, "g1\n", 3) != 0) return API_ERR_INVALID_TOKEN;
  p += 3;
  if (field_id(&p, end, out->room) || field_id(&p, end, out->parent) || field_id(&p, end, out->breakout) ||
      field_id(&p, end, out->user))
    return API_ERR_INVALID_TOKEN;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (nl == NULL || nl == p || nl - p > 19) return API_ERR_INVALID_TOKEN;
  int64_t exp = 0;
  for (const char *q = p; q < nl; q++) {
    if (*q < '0' || *q > '9') return API_ERR_INVALID_TOKEN;
    exp = exp * 10 + (*q - '0');
  }
  p = nl + 1;
  if (end - p != GRANT_JTI_LEN) return API_ERR_INVALID_TOKEN;
  for (const char *q = p; q < end; q++)
    if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'))) return API_ERR_INVALID_TOKEN;
  memcpy(out->jti, p, GRANT_JTI_LEN);
  out->jti[GRANT_JTI_LEN] = '\0';
  out->exp = exp;
  if (exp <= now_s) return API_ERR_INVALID_TOKEN;
  return API_OK;
}

int grant_spend(struct grant_spent *s, const char *jti, int64_t exp) {
  if (map_get(&s->used, jti) != NULL) return -1;
  return map_put(&s->used, jti, (void *)(intptr_t)(exp > 0 ? exp : 1));
}

int grant_spent_has(const struct grant_spent *s, const char *jti) { return map_get(&s->used, jti) != NULL; }

struct prune { char (*keys)[GRANT_JTI_LEN + 1]; size_t n, cap; int64_t now; };

static void collect(const char *k, void *v, void *arg) {
  struct prune *pr = arg;
  if ((int64_t)(intptr_t)v > pr->now) return;
  if (pr->n == pr->cap) {
    size_t cap = pr->cap ? pr->cap * 2 : 16;
    char (*nk)[GRANT_JTI_LEN + 1] = realloc(pr->keys, cap * sizeof(*nk));
    if (nk == NULL) return;
    pr->keys = nk;
    pr->cap = cap;
  }
  snprintf(pr->keys[pr->n++], GRANT_JTI_LEN + 1, "%s", k);
}

void grant_spent_prune(struct grant_spent *s, int64_t now_s) {
  struct prune pr = {NULL, 0, 0, now_s};
  map_each(&s->used, collect, &pr);
  for (size_t i = 0; i < pr.n; i++) map_del(&s->used, pr.keys[i]);
  free(pr.keys);
}

void grant_spent_free(struct grant_spent *s) { map_free(&s->used); }
