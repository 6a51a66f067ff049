/* Room families (see family.h). */
#define LOG_MODULE "family"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/grant.h"
#include "net/server.h"
#include "room/family.h"
#include "room/policy.h"
#include "room/room.h"
#include "signal/signal.h"

/* The grant key: derived from the server's HMAC secret (a domain of its
 * own), or random per process when tokens are verified with a public key. */
static unsigned char grant_key[GRANT_KEY_LEN];
static int grant_key_ready;

static const unsigned char *key_of(struct server *s) {
  if (grant_key_ready) return grant_key;
  static const char label[] = "huddle breakout grant v1";
  unsigned int len = GRANT_KEY_LEN;
  if (s->jwt_secret && s->jwt_secret_len) {
    HMAC(EVP_sha256(), s->jwt_secret, (int)s->jwt_secret_len, (const unsigned char *)label, sizeof(label) - 1,
         grant_key, &len);
  } else if (RAND_bytes(grant_key, GRANT_KEY_LEN) != 1) {
    return NULL;
  }
  grant_key_ready = 1;
  return grant_key;
}

const char *family_grant_issue(struct server *s, const char *user, const char *room, const char *parent,
                               const char *breakout) {
  static char out[GRANT_MAX + 1];
  const unsigned char *k = key_of(s);
  if (k == NULL) return NULL;
  struct grant_claims g;
  memset(&g, 0, sizeof(g));
  snprintf(g.room, sizeof(g.room), "%s", room);
  snprintf(g.parent, sizeof(g.parent), "%s", parent);
  snprintf(g.breakout, sizeof(g.breakout), "%s", breakout);
  snprintf(g.user, sizeof(g.user), "%s", user);
  g.exp = (int64_t)(server_now_ms() / 1000) + FAMILY_GRANT_TTL_S;
  return grant_mint(k, &g, out, sizeof(out)) > 0 ? out : NULL;
}

enum api_err family_grant_use(struct server *s, const char *grant, const char *room_id,
                              struct token_claims *claims) {
  const unsigned char *k = key_of(s);
  struct grant_claims g;
  if (k == NULL || grant_verify(k, grant, strlen(grant), (int64_t)(server_now_ms() / 1000), &g) != API_OK)
    return API_ERR_INVALID_TOKEN;
  if (strcmp(g.room, room_id) != 0) return API_ERR_TOKEN_ROOM_MISMATCH;
  /* The family must still be there: a grant dies with its rooms and never
   * re-creates one. */
  struct room *main = signal_room_find(s, g.parent);
  if (main == NULL || main->parent[0]) return API_ERR_INVALID_TOKEN;
  if (strcmp(room_id, g.parent) != 0) {
    struct breakout *b = room_breakout_find(main, g.breakout);
    if (b == NULL || strcmp(g.breakout, room_id) != 0 || signal_room_find(s, room_id) == NULL)
      return API_ERR_INVALID_TOKEN;                 /* closed */
    if (room_breakout_of(main, g.user) != b) return API_ERR_INVALID_TOKEN; /* assigned elsewhere since */
  }
  if (policy_member_claims(s, room_id, g.user, claims) != 0) return API_ERR_INVALID_TOKEN;
  if (grant_spend((struct grant_spent *)&s->grants, g.jti, g.exp) != 0) return API_ERR_INVALID_TOKEN;
  claims->exp = g.exp;
  return API_OK;
}

void family_grants_prune(struct server *s) {
  grant_spent_prune((struct grant_spent *)&s->grants, (int64_t)(server_now_ms() / 1000));
}

void family_grants_free(struct server *s) { grant_spent_free((struct grant_spent *)&s->grants); }

enum api_err family_charge_rooms(struct server *s, const char *user, size_t n, char *detail, size_t dl) {
  if (s->rl.rules[RATE_ROOM_CREATE].limit == 0 || n == 0) return API_OK;
  struct ratelimit_result rr;
  uint64_t now = uv_now(s->loop);
  ratelimit_peek(&s->rl, user, RATE_ROOM_CREATE, now, &rr);
  if (!rr.allowed || (size_t)rr.remaining + 1 < n) {
    s->stats.ratelimit_hits[RATE_ROOM_CREATE]++;
    snprintf(detail, dl, "limit room_create: %u per %llu ms; breakout rooms are rooms",
             s->rl.rules[RATE_ROOM_CREATE].limit, (unsigned long long)s->rl.rules[RATE_ROOM_CREATE].window_ms);
    return API_ERR_RATE_LIMIT_EXCEEDED;
  }
  for (size_t i = 0; i < n; i++) ratelimit_check(&s->rl, user, RATE_ROOM_CREATE, now, &rr);
  return API_OK;
}

static int family_empty(struct server *s, struct room *root, uint64_t now) {
  if (root->count || root->nwaiting || root->held || now < root->linger_until_ms) return 0;
  for (size_t i = 0; i < root->nbreakouts; i++) {
    struct room *br = signal_room_find(s, root->breakouts[i].id);
    if (br && (br->count || br->nwaiting)) return 0;
  }
  return 1;
}

static int busy;

int family_collapse(struct server *s, struct room *r) {
  if (busy || r->parent[0] || r->nbreakouts == 0 || !family_empty(s, r, server_now_ms())) return 0;
  busy = 1;
  log_info("family_closed room=%s breakouts=%zu", r->id, r->nbreakouts);
  while (r->nbreakouts) {
    char id[ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", r->breakouts[r->nbreakouts - 1].id);
    room_breakout_remove(r, &r->breakouts[r->nbreakouts - 1]);
    struct room *br = signal_room_find(s, id);
    if (br) {
      br->held = 0;
      signal_room_release(s, br);
    }
  }
  busy = 0;
  signal_room_release(s, r);
  return 1;
}

struct roots { char (*ids)[ID_MAX + 1]; size_t n, cap; };

static void collect_root(const char *k, void *v, void *arg) {
  struct roots *rs = arg;
  struct room *r = v;
  if (r->parent[0] || r->nbreakouts == 0 || rs->n == rs->cap) return;
  snprintf(rs->ids[rs->n++], ID_MAX + 1, "%s", k);
}

void family_sweep(struct server *s) {
  char ids[64][ID_MAX + 1];
  struct roots rs = {ids, 0, 64};
  map_each(&s->rooms, collect_root, &rs);
  for (size_t i = 0; i < rs.n; i++) {
    struct room *r = signal_room_find(s, ids[i]);
    if (r) family_collapse(s, r);
  }
}
