/* Room families (see family.h). */
#define LOG_MODULE "family"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/grant.h"
#include "room/hub.h"
#include "room/family.h"
#include "room/policy.h"
#include "room/room.h"

/* The grant key: derived from the server's HMAC secret (a domain of its
 * own, set by family_grant_key at start), or random per process when
 * tokens are verified with a public key. */
void family_grant_key(struct hub *h, const unsigned char *secret, size_t len) {
  static const char label[] = "huddle breakout grant v1";
  unsigned int n = GRANT_KEY_LEN;
  if (secret == NULL || len == 0) return;
  HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)label, sizeof(label) - 1, h->grant_key, &n);
  h->grant_key_ready = 1;
}

static const unsigned char *key_of(struct hub *h) {
  if (h->grant_key_ready) return h->grant_key;
  if (RAND_bytes(h->grant_key, GRANT_KEY_LEN) != 1) return NULL;
  h->grant_key_ready = 1;
  return h->grant_key;
}

const char *family_grant_issue(struct hub *h, const char *user, const char *room, const char *parent,
                               const char *breakout) {
  static char out[GRANT_MAX + 1];
  const unsigned char *k = key_of(h);
  if (k == NULL) return NULL;
  struct grant_claims g;
  memset(&g, 0, sizeof(g));
  snprintf(g.room, sizeof(g.room), "%s", room);
  snprintf(g.parent, sizeof(g.parent), "%s", parent);
  snprintf(g.breakout, sizeof(g.breakout), "%s", breakout);
  snprintf(g.user, sizeof(g.user), "%s", user);
  g.exp = (int64_t)(hub_now_ms() / 1000) + FAMILY_GRANT_TTL_S;
  return grant_mint(k, &g, out, sizeof(out)) > 0 ? out : NULL;
}

enum api_err family_grant_use(struct hub *h, const char *grant, const char *room_id,
                              struct token_claims *claims, int spend) {
  const unsigned char *k = key_of(h);
  struct grant_claims g;
  if (k == NULL || grant_verify(k, grant, strlen(grant), (int64_t)(hub_now_ms() / 1000), &g) != API_OK)
    return API_ERR_INVALID_TOKEN;
  if (strcmp(g.room, room_id) != 0) return API_ERR_TOKEN_ROOM_MISMATCH;
  /* The family must still be there: a grant dies with its rooms and never
   * re-creates one. */
  struct room *main = hub_room_find(h, g.parent);
  if (main == NULL || main->parent[0]) return API_ERR_INVALID_TOKEN;
  if (strcmp(room_id, g.parent) != 0) {
    struct breakout *b = room_breakout_find(main, g.breakout);
    if (b == NULL || strcmp(g.breakout, room_id) != 0 || hub_room_find(h, room_id) == NULL)
      return API_ERR_INVALID_TOKEN;                 /* closed */
    if (room_breakout_of(main, g.user) != b) return API_ERR_INVALID_TOKEN; /* assigned elsewhere since */
  }
  if (policy_member_claims(h, room_id, g.user, claims) != 0) return API_ERR_INVALID_TOKEN;
  if (spend ? grant_spend(&h->grants, g.jti, g.exp) != 0 : grant_spent_has(&h->grants, g.jti))
    return API_ERR_INVALID_TOKEN;
  claims->exp = g.exp;
  return API_OK;
}

void family_grants_prune(struct hub *h) {
  grant_spent_prune(&h->grants, (int64_t)(hub_now_ms() / 1000));
}

void family_grants_free(struct hub *h) { grant_spent_free(&h->grants); }

enum api_err family_charge_rooms(struct hub *h, const char *user, size_t n, char *detail, size_t dl) {
  if (h->rl.rules[RATE_ROOM_CREATE].limit == 0 || n == 0) return API_OK;
  struct ratelimit_result rr;
  hub_rate_peek(h, user, RATE_ROOM_CREATE, &rr);
  /* A peek's remaining is what may be spent now, this one included. */
  if (!rr.allowed || (size_t)rr.remaining < n) {
    h->stats.ratelimit_hits[RATE_ROOM_CREATE]++;
    snprintf(detail, dl, "limit room_create: %u per %llu ms; breakout rooms are rooms",
             h->rl.rules[RATE_ROOM_CREATE].limit, (unsigned long long)h->rl.rules[RATE_ROOM_CREATE].window_ms);
    return API_ERR_RATE_LIMIT_EXCEEDED;
  }
  for (size_t i = 0; i < n; i++) hub_rate_check(h, user, RATE_ROOM_CREATE, &rr);
  return API_OK;
}

static int family_empty(struct hub *h, struct room *root, uint64_t now) {
  if (root->count || root->nwaiting || root->held || now < root->linger_until_ms) return 0;
  for (size_t i = 0; i < root->nbreakouts; i++) {
    struct room *br = hub_room_find(h, root->breakouts[i].id);
    if (br && (br->count || br->nwaiting)) return 0;
  }
  return 1;
}

static int busy;

int family_collapse(struct hub *h, struct room *r) {
  if (busy || r->parent[0] || r->nbreakouts == 0 || !family_empty(h, r, hub_now_ms())) return 0;
  busy = 1;
  log_info("family_closed room=%s breakouts=%zu", r->id, r->nbreakouts);
  while (r->nbreakouts) {
    char id[ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", r->breakouts[r->nbreakouts - 1].id);
    room_breakout_remove(r, &r->breakouts[r->nbreakouts - 1]);
    struct room *br = hub_room_find(h, id);
    if (br) {
      br->held = 0;
      hub_room_release(h, br);
    }
  }
  busy = 0;
  hub_room_release(h, r);
  return 1;
}

struct roots { char (*ids)[ID_MAX + 1]; size_t n, cap; };

static void collect_root(const char *k, void *v, void *arg) {
  struct roots *rs = arg;
  struct room *r = v;
  if (r->parent[0] || r->nbreakouts == 0 || rs->n == rs->cap) return;
  snprintf(rs->ids[rs->n++], ID_MAX + 1, "%s", k);
}

void family_sweep(struct hub *h) {
  char ids[64][ID_MAX + 1];
  struct roots rs = {ids, 0, 64};
  map_each(&h->rooms, collect_root, &rs);
  for (size_t i = 0; i < rs.n; i++) {
    struct room *r = hub_room_find(h, ids[i]);
    if (r) family_collapse(h, r);
  }
}
