/* Per-user rate limits with GCRA (see ratelimit.h): one theoretical arrival
 * time (TAT) per "class:user" key, kept in a lib/map. This module decides and
 * reports; it does not reply, log or read the clock: callers pass now_ms and
 * turn a refusal into RATE_LIMIT_EXCEEDED or TOO_MANY_MESSAGES. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/ratelimit.h"

/* Times inside this file are "scaled": milliseconds multiplied by the rule's
 * limit L. In those units the emission interval T = window_ms / L is exactly
 * window_ms, the burst tolerance tau = window_ms * (L - 1), and no division
 * happens until a result is turned back into milliseconds (rounded up, so a
 * client that waits the reported time is then allowed).
 *
 * NOTE: now_ms * L + window_ms * L must fit in 64 bits. With the parser's
 * bounds (L <= 1,000,000, window <= 7 days) that holds for any now_ms below
 * about 1.8e13, i.e. a monotonic clock or Unix time in ms until ~2500. */

#define RULE_LIMIT_MAX 1000000u
#define RULE_WINDOW_MAX_MS (7ull * 24 * 3600 * 1000)

struct ratelimit_key {
  uint64_t tat;    /* scaled by limit; the key's budget is full once now reaches it */
  uint32_t limit;  /* the L that tat is scaled by (rules may change at run time) */
};

struct class_info {
  const char *name;             /* wire name */
  struct ratelimit_rule rule;   /* the seed's default */
};

static const struct class_info classes[RATE__COUNT] = {
  [RATE_WEBSOCKET_MESSAGE] = {"websocket_message", {100, 60000}},
  [RATE_CHAT_MESSAGE] = {"chat_message", {60, 60000}},
  [RATE_HAND_RAISE] = {"hand_raise", {5, 60000}},
  [RATE_REACTION] = {"reaction", {20, 60000}},
  [RATE_FILE_SHARE] = {"file_share", {10, 3600000}},
  [RATE_ROOM_CREATE] = {"room_create", {10, 3600000}},
  [RATE_SETTINGS_UPDATE] = {"settings_update", {30, 60000}},
  [RATE_API_CALL] = {"api_call", {300, 60000}},
};

/* Window units; "ms" comes before "m" so the longer suffix wins. */
static const struct {
  const char *suffix;
  uint64_t ms;
} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

const char *ratelimit_class_name(enum rate_class c) {
  if ((unsigned)c >= RATE__COUNT) return NULL;
  return classes[c].name;
}

int ratelimit_class_parse(const char *name, enum rate_class *out) {
  for (unsigned i = 0; i < RATE__COUNT; i++) {
    if (strcmp(classes[i].name, name) == 0) {
      *out = (enum rate_class)i;
      return 0;
    }
  }
  return -1;
}

struct ratelimit_rule ratelimit_default_rule(enum rate_class c) {
  struct ratelimit_rule none = {0, 0};
  if ((unsigned)c >= RATE__COUNT) return none;
  return classes[c].rule;
}

/* Reads decimal digits at *s into *out, advancing *s. Returns 0, or -1 when
 * there are no digits or the value exceeds max. */
static int parse_digits(const char **s, uint64_t max, uint64_t *out) {
  const char *p = *s;
  uint64_t v = 0;
  if (*p < '0' || *p > '9') return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    v = v * 10 + (uint64_t)(*p - '0');
    if (v > max) return -1;  /* checked per digit, so v * 10 never wraps */
  }
  *s = p;
  *out = v;
  return 0;
}

int ratelimit_rule_parse(const char *s, struct ratelimit_rule *out) {
  uint64_t limit, count;
  if (parse_digits(&s, RULE_LIMIT_MAX, &limit) != 0 || *s++ != '/') return -1;
  if (parse_digits(&s, RULE_WINDOW_MAX_MS, &count) != 0) return -1;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    size_t n = strlen(units[i].suffix);
    if (strncmp(s, units[i].suffix, n) != 0 || s[n] != '\0') continue;
    if (count == 0 || count > RULE_WINDOW_MAX_MS / units[i].ms) return -1;
    out->limit = (uint32_t)limit;
    out->window_ms = count * units[i].ms;
    return 0;
  }
  return -1;
}

void ratelimit_init(struct ratelimit *rl) {
  for (unsigned i = 0; i < RATE__COUNT; i++) rl->rules[i] = classes[i].rule;
  memset(&rl->keys, 0, sizeof(rl->keys));
}

/* Scaled time to milliseconds, rounded up. */
static uint64_t to_ms(uint64_t scaled, uint32_t limit) {
  return scaled / limit + (scaled % limit != 0);
}

/* k's TAT scaled by limit. When the rule's limit changed since k was stored,
 * rescales through milliseconds, rounding up (never grants extra budget). */
static uint64_t key_tat(const struct ratelimit_key *k, uint32_t limit) {
  if (k->limit == limit) return k->tat;
  return to_ms(k->tat, k->limit) * limit;
}

/* Fills out from a key's TAT (scaled; pass the scaled now for a fresh key)
 * before any request at now. When take is set and the request is allowed,
 * advances *tat by one emission interval and reports the state after it. */
static void gcra(const struct ratelimit_rule *r, uint64_t *tat, uint64_t now_ms, int take,
                 struct ratelimit_result *out) {
  uint64_t L = r->limit, T = r->window_ms;
  uint64_t now = now_ms * L, tau = T * (L - 1);
  uint64_t t = *tat > now ? *tat : now;

  memset(out, 0, sizeof(*out));
  out->limit = r->limit;
  if (t - now > tau) {
    out->retry_after_ms = to_ms(t - tau - now, r->limit);
    out->reset_ms = to_ms(t - now, r->limit);
    return;
  }
  out->allowed = 1;
  if (take) t += T;
  /* t - now <= tau + T = T * L, so this is the whole intervals left. */
  out->remaining = (uint32_t)((T * L - (t - now)) / T);
  out->reset_ms = to_ms(t - now, r->limit);
  if (take) *tat = t;
}

/* Writes "<class index>:<user>" into buf if it fits, else into a malloc'd
 * string. Returns the key (buf or owned by the caller), or NULL on ENOMEM. */
static char *key_format(char *buf, size_t len, enum rate_class c, const char *user) {
  int n = snprintf(buf, len, "%u:%s", (unsigned)c, user);
  if (n < 0) return NULL;
  if ((size_t)n < len) return buf;
  char *heap = malloc((size_t)n + 1);
  if (heap != NULL) snprintf(heap, (size_t)n + 1, "%u:%s", (unsigned)c, user);
  return heap;
}

/* A rule with limit 0 (or, set by hand, window 0) limits nothing. */
static int rule_disabled(const struct ratelimit_rule *r) {
  return r->limit == 0 || r->window_ms == 0;
}

static void disabled_result(const struct ratelimit_rule *r, struct ratelimit_result *out) {
  memset(out, 0, sizeof(*out));
  out->allowed = 1;
  out->limit = r->limit;
}

/* Stores a new key at tat (scaled by limit). Returns it, or NULL on ENOMEM. */
static struct ratelimit_key *key_add(struct map *m, const char *key, uint64_t tat,
                                     uint32_t limit) {
  struct ratelimit_key *k = malloc(sizeof(*k));
  if (k == NULL) return NULL;
  k->tat = tat;
  k->limit = limit;
  if (map_put(m, key, k) != 0) {  /* the map copies key and borrows k */
    free(k);
    return NULL;
  }
  return k;
}

void ratelimit_check(struct ratelimit *rl, const char *user, enum rate_class c, uint64_t now_ms,
                     struct ratelimit_result *out) {
  assert((unsigned)c < RATE__COUNT);
  const struct ratelimit_rule *r = &rl->rules[c];
  char buf[128];
  char *key;
  struct ratelimit_key *k;
  uint64_t fresh = now_ms * r->limit;

  if (rule_disabled(r)) {
    disabled_result(r, out);
    return;
  }
  key = key_format(buf, sizeof(buf), c, user);
  k = key ? map_get(&rl->keys, key) : NULL;
  if (k == NULL && key != NULL) k = key_add(&rl->keys, key, fresh, r->limit);
  if (k != NULL) {
    k->tat = key_tat(k, r->limit);
    k->limit = r->limit;
    gcra(r, &k->tat, now_ms, 1, out);
  } else {
    /* NOTE: out of memory, the request is allowed but not remembered (fail
     * open): refusing would blame the user for our own fault. */
    gcra(r, &fresh, now_ms, 1, out);
  }
  if (key != buf) free(key);
}

void ratelimit_peek(struct ratelimit *rl, const char *user, enum rate_class c, uint64_t now_ms,
                    struct ratelimit_result *out) {
  assert((unsigned)c < RATE__COUNT);
  const struct ratelimit_rule *r = &rl->rules[c];
  char buf[128];
  char *key;
  struct ratelimit_key *k;
  uint64_t tat = now_ms * r->limit;

  if (rule_disabled(r)) {
    disabled_result(r, out);
    return;
  }
  key = key_format(buf, sizeof(buf), c, user);
  k = key ? map_get(&rl->keys, key) : NULL;
  if (k != NULL) tat = key_tat(k, r->limit);
  gcra(r, &tat, now_ms, 0, out);
  if (key != buf) free(key);
}

struct prune_ctx {
  uint64_t now_ms;
  const char **full;   /* borrowed map keys of the entries to delete */
  size_t n;
};

static void collect_full(const char *key, void *value, void *arg) {
  struct prune_ctx *ctx = arg;
  const struct ratelimit_key *k = value;
  if (k->tat <= ctx->now_ms * k->limit) ctx->full[ctx->n++] = key;
}

void ratelimit_prune(struct ratelimit *rl, uint64_t now_ms) {
  struct prune_ctx ctx = {now_ms, NULL, 0};
  if (rl->keys.count == 0) return;
  /* map_each forbids changes, so collect first and delete after. Without
   * memory for the list, prune does nothing; the keys stay correct. */
  ctx.full = malloc(rl->keys.count * sizeof(*ctx.full));
  if (ctx.full == NULL) return;
  map_each(&rl->keys, collect_full, &ctx);
  /* NOTE: each collected key lives in its own map entry, which stays valid
   * until that same key is deleted; map_del reads it only before freeing. */
  for (size_t i = 0; i < ctx.n; i++) free(map_del(&rl->keys, ctx.full[i]));
  free(ctx.full);
}

static void free_value(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  free(value);
}

/* Frees every key; rl may be initialised again afterwards. */
void ratelimit_free(struct ratelimit *rl) {
  map_each(&rl->keys, free_value, NULL);
  map_free(&rl->keys);
}
