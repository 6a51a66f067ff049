/* Per-user rate limits, one rule per class (the seed's table), with GCRA:
 * one "theoretical arrival time" per (user, class), so memory is O(active
 * keys) and the arithmetic is exact. Equivalent to a token bucket holding
 * `limit` tokens that refills `limit` tokens per `window_ms`. */
#ifndef HUDDLE_GUARD_RATELIMIT_H
#define HUDDLE_GUARD_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/map.h"

enum rate_class {
  RATE_WEBSOCKET_MESSAGE = 0,  /* websocket_message 100/min */
  RATE_CHAT_MESSAGE,           /* chat_message 60/min */
  RATE_HAND_RAISE,             /* hand_raise 5/min */
  RATE_REACTION,               /* reaction 20/min */
  RATE_FILE_SHARE,             /* file_share 10/hour */
  RATE_ROOM_CREATE,            /* room_create 10/hour */
  RATE_SETTINGS_UPDATE,        /* settings_update 30/min */
  RATE_API_CALL,               /* api_call 300/min */
  RATE__COUNT
};

struct ratelimit_rule {
  uint32_t limit;      /* requests allowed per window; 0 disables the class */
  uint64_t window_ms;
};

struct ratelimit {
  struct ratelimit_rule rules[RATE__COUNT];
  struct map keys;     /* "class:user" -> struct ratelimit_key * (owned) */
};

struct ratelimit_result {
  int allowed;               /* 1: counted; 0: refused, nothing counted */
  uint32_t limit;
  uint32_t remaining;        /* requests still allowed right now (after this one) */
  uint64_t reset_ms;         /* until the full budget is back */
  uint64_t retry_after_ms;   /* when refused: until one request is allowed again */
};

/* Wire name of a class ("chat_message"), or NULL. */
const char *ratelimit_class_name(enum rate_class c);
/* Parses a wire name; returns 0 or -1. */
int ratelimit_class_parse(const char *name, enum rate_class *out);
/* The seed's default rule for c. */
struct ratelimit_rule ratelimit_default_rule(enum rate_class c);
/* Parses "N/window" where window is a number with a unit: ms, s, m or h
 * ("60/1m", "10/1h", "5/500ms"); "0/1m" disables. Returns 0 or -1. */
int ratelimit_rule_parse(const char *s, struct ratelimit_rule *out);

/* Starts with every class at its default rule. */
void ratelimit_init(struct ratelimit *rl);
/* Counts one request of user in class c at now_ms if allowed. */
void ratelimit_check(struct ratelimit *rl, const char *user, enum rate_class c, uint64_t now_ms,
                     struct ratelimit_result *out);
/* Like ratelimit_check without counting anything (for the status endpoint). */
void ratelimit_peek(struct ratelimit *rl, const char *user, enum rate_class c, uint64_t now_ms,
                    struct ratelimit_result *out);
/* Forgets keys whose budget is full again at now_ms (they equal new keys). */
void ratelimit_prune(struct ratelimit *rl, uint64_t now_ms);
void ratelimit_free(struct ratelimit *rl);

#endif
