/* Unit tests for guard/ratelimit.c: class names, rule parsing and the GCRA
 * decisions (bursts, refill, retry_after_ms, peek, prune). Pure logic: time
 * is passed in, so no loop and no sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard/ratelimit.h"

/* A Unix time in ms, so the scaled arithmetic sees realistic magnitudes. */
#define T0 1700000000000ull
#define MINUTE 60000ull
#define HOUR 3600000ull

static int setup(void **state) {
  struct ratelimit *rl = malloc(sizeof(*rl));
  if (rl == NULL) return -1;
  ratelimit_init(rl);
  *state = rl;
  return 0;
}

static int teardown(void **state) {
  ratelimit_free(*state);
  free(*state);
  return 0;
}

static void set_rule(struct ratelimit *rl, enum rate_class c, uint32_t limit, uint64_t window_ms) {
  rl->rules[c].limit = limit;
  rl->rules[c].window_ms = window_ms;
}

/* Checks and returns only whether the request was allowed. */
static int allowed(struct ratelimit *rl, const char *user, enum rate_class c, uint64_t now) {
  struct ratelimit_result r;
  ratelimit_check(rl, user, c, now, &r);
  return r.allowed;
}

/* Uses up the whole budget of user in c at now; asserts each one is allowed. */
static void burst(struct ratelimit *rl, const char *user, enum rate_class c, uint64_t now) {
  for (uint32_t i = 0; i < rl->rules[c].limit; i++)
    if (!allowed(rl, user, c, now)) fail_msg("request %u of the burst refused", i + 1);
}

static void assert_rule_parses(const char *s, uint32_t limit, uint64_t window_ms) {
  struct ratelimit_rule r = {77, 77};
  if (ratelimit_rule_parse(s, &r) != 0) fail_msg("refused: \"%s\"", s);
  assert_int_equal(r.limit, limit);
  assert_int_equal(r.window_ms, window_ms);
}

/* Asserts s is refused and the output is left untouched. */
static void assert_rule_refused(const char *s) {
  struct ratelimit_rule r = {77, 77};
  if (ratelimit_rule_parse(s, &r) == 0) fail_msg("accepted: \"%s\"", s);
  assert_int_equal(r.limit, 77);
  assert_int_equal(r.window_ms, 77);
}

/* ---- Classes and rules ---- */

static void default_rules_match_seed_table(void **state) {
  static const struct {
    enum rate_class c;
    const char *name;
    uint32_t limit;
    uint64_t window_ms;
  } seed[] = {
    {RATE_WEBSOCKET_MESSAGE, "websocket_message", 100, MINUTE},
    {RATE_CHAT_MESSAGE, "chat_message", 60, MINUTE},
    {RATE_HAND_RAISE, "hand_raise", 5, MINUTE},
    {RATE_REACTION, "reaction", 20, MINUTE},
    {RATE_FILE_SHARE, "file_share", 10, HOUR},
    {RATE_ROOM_CREATE, "room_create", 10, HOUR},
    {RATE_SETTINGS_UPDATE, "settings_update", 30, MINUTE},
    {RATE_API_CALL, "api_call", 300, MINUTE},
  };
  struct ratelimit *rl = *state;
  assert_int_equal(sizeof(seed) / sizeof(seed[0]), RATE__COUNT);
  for (size_t i = 0; i < RATE__COUNT; i++) {
    struct ratelimit_rule r = ratelimit_default_rule(seed[i].c);
    assert_string_equal(ratelimit_class_name(seed[i].c), seed[i].name);
    assert_int_equal(r.limit, seed[i].limit);
    assert_int_equal(r.window_ms, seed[i].window_ms);
    assert_int_equal(rl->rules[seed[i].c].limit, seed[i].limit);       /* init applies them */
    assert_int_equal(rl->rules[seed[i].c].window_ms, seed[i].window_ms);
  }
}

static void class_name_round_trips_through_parse(void **state) {
  (void)state;
  for (int i = 0; i < RATE__COUNT; i++) {
    enum rate_class c = RATE__COUNT;
    assert_int_equal(ratelimit_class_parse(ratelimit_class_name((enum rate_class)i), &c), 0);
    assert_int_equal(c, i);
  }
}

static void class_parse_refuses_unknown_name(void **state) {
  (void)state;
  enum rate_class c = RATE_API_CALL;
  assert_int_equal(ratelimit_class_parse("chat", &c), -1);
  assert_int_equal(ratelimit_class_parse("Chat_Message", &c), -1);
  assert_int_equal(ratelimit_class_parse("chat_message ", &c), -1);
  assert_int_equal(ratelimit_class_parse("", &c), -1);
  assert_int_equal(c, RATE_API_CALL);
}

static void class_name_is_null_out_of_range(void **state) {
  (void)state;
  assert_null(ratelimit_class_name(RATE__COUNT));
  assert_null(ratelimit_class_name((enum rate_class)-1));
}

static void rule_parse_accepts_every_unit(void **state) {
  (void)state;
  assert_rule_parses("5/500ms", 5, 500);
  assert_rule_parses("3/2s", 3, 2000);
  assert_rule_parses("60/1m", 60, MINUTE);
  assert_rule_parses("10/1h", 10, HOUR);
}

static void rule_parse_accepts_bounds(void **state) {
  (void)state;
  assert_rule_parses("0/1m", 0, MINUTE);            /* disables the class */
  assert_rule_parses("1000000/1ms", 1000000, 1);
  assert_rule_parses("1/168h", 1, 7 * 24 * HOUR);   /* 7 days */
  assert_rule_parses("1/10080m", 1, 7 * 24 * HOUR);
  assert_rule_parses("1/604800000ms", 1, 7 * 24 * HOUR);
}

static void rule_parse_refuses_spaces(void **state) {
  (void)state;
  assert_rule_refused(" 60/1m");
  assert_rule_refused("60 /1m");
  assert_rule_refused("60/ 1m");
  assert_rule_refused("60/1 m");
  assert_rule_refused("60/1m ");
}

static void rule_parse_refuses_missing_parts(void **state) {
  (void)state;
  assert_rule_refused("");
  assert_rule_refused("60");
  assert_rule_refused("60/");
  assert_rule_refused("/1m");
  assert_rule_refused("60/1");    /* no unit */
  assert_rule_refused("60/m");    /* no count */
  assert_rule_refused("60/min");  /* the seed's prose form is not a rule */
}

static void rule_parse_refuses_signs(void **state) {
  (void)state;
  assert_rule_refused("-1/1m");
  assert_rule_refused("+1/1m");
  assert_rule_refused("1/-1m");
  assert_rule_refused("1/+1m");
}

static void rule_parse_refuses_unknown_unit(void **state) {
  (void)state;
  assert_rule_refused("1/1d");
  assert_rule_refused("1/1M");
  assert_rule_refused("1/1us");
  assert_rule_refused("1/1.5s");
}

static void rule_parse_refuses_trailing_junk(void **state) {
  (void)state;
  assert_rule_refused("60/1mm");
  assert_rule_refused("60/1ms5");
  assert_rule_refused("60/1h/2");
  assert_rule_refused("60/1m\n");
}

static void rule_parse_refuses_out_of_range(void **state) {
  (void)state;
  assert_rule_refused("1000001/1m");                  /* limit above 1,000,000 */
  assert_rule_refused("99999999999999999999999/1m");  /* would wrap 64 bits */
  assert_rule_refused("1/0ms");                       /* window below 1 ms */
  assert_rule_refused("1/0h");
  assert_rule_refused("1/169h");                      /* window above 7 days */
  assert_rule_refused("1/604800001ms");
  assert_rule_refused("1/18446744073709551617s");
}

/* ---- Decisions ---- */

static void fresh_key_allows_exactly_limit_at_one_instant(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  for (uint32_t i = 1; i <= 5; i++) {
    ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0, &r);
    assert_true(r.allowed);
    assert_int_equal(r.limit, 5);
    assert_int_equal(r.remaining, 5 - i);
  }
  ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0, &r);
  assert_false(r.allowed);
  assert_int_equal(r.remaining, 0);
}

static void refusal_does_not_consume(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  burst(rl, "alice", RATE_HAND_RAISE, T0);
  for (int i = 0; i < 10; i++) {  /* hammering while throttled changes nothing */
    ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0 + (uint64_t)i, &r);
    assert_false(r.allowed);
  }
  ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0, &r);
  assert_false(r.allowed);
  assert_int_equal(r.retry_after_ms, 12000);
  assert_true(allowed(rl, "alice", RATE_HAND_RAISE, T0 + r.retry_after_ms));
}

static void retry_after_equals_emission_interval_after_burst(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  burst(rl, "alice", RATE_CHAT_MESSAGE, T0);  /* 60/min: one per second */
  ratelimit_check(rl, "alice", RATE_CHAT_MESSAGE, T0, &r);
  assert_false(r.allowed);
  assert_int_equal(r.retry_after_ms, 1000);
  ratelimit_check(rl, "alice", RATE_CHAT_MESSAGE, T0 + 400, &r);
  assert_false(r.allowed);
  assert_int_equal(r.retry_after_ms, 600);
}

static void retry_after_rounds_up_to_an_allowed_time(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  set_rule(rl, RATE_REACTION, 7, 1000);  /* interval 142.857... ms */
  burst(rl, "alice", RATE_REACTION, T0);
  ratelimit_check(rl, "alice", RATE_REACTION, T0, &r);
  assert_false(r.allowed);
  assert_int_equal(r.retry_after_ms, 143);
  assert_false(allowed(rl, "alice", RATE_REACTION, T0 + 142));
  assert_true(allowed(rl, "alice", RATE_REACTION, T0 + 143));
}

static void budget_recovers_fully_after_one_window(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  burst(rl, "alice", RATE_FILE_SHARE, T0);
  ratelimit_peek(rl, "alice", RATE_FILE_SHARE, T0 + HOUR - 1, &r);
  assert_int_equal(r.remaining, 9);  /* not quite full yet */
  assert_int_equal(r.reset_ms, 1);
  ratelimit_peek(rl, "alice", RATE_FILE_SHARE, T0 + HOUR, &r);
  assert_int_equal(r.remaining, 10);
  assert_int_equal(r.reset_ms, 0);
  burst(rl, "alice", RATE_FILE_SHARE, T0 + HOUR);
  assert_false(allowed(rl, "alice", RATE_FILE_SHARE, T0 + HOUR));
}

static void budget_never_exceeds_limit_after_long_idle(void **state) {
  struct ratelimit *rl = *state;
  assert_true(allowed(rl, "alice", RATE_HAND_RAISE, T0));
  burst(rl, "alice", RATE_HAND_RAISE, T0 + 100 * HOUR);
  assert_false(allowed(rl, "alice", RATE_HAND_RAISE, T0 + 100 * HOUR));
}

static void steady_rate_at_limit_is_never_refused(void **state) {
  struct ratelimit *rl = *state;
  set_rule(rl, RATE_REACTION, 7, 1000);  /* a non-integer interval */
  /* Request i at the first whole ms at or after i * 1000 / 7: 100 windows. */
  for (uint64_t i = 0; i < 700; i++) {
    uint64_t now = T0 + (i * 1000 + 6) / 7;
    if (!allowed(rl, "alice", RATE_REACTION, now)) fail_msg("request %llu refused", (unsigned long long)i);
  }
  for (uint64_t i = 0; i < 6000; i++) {  /* 60/min, one a second, 100 windows */
    if (!allowed(rl, "bob", RATE_CHAT_MESSAGE, T0 + i * 1000))
      fail_msg("chat %llu refused", (unsigned long long)i);
  }
}

static void double_rate_is_refused_within_one_window(void **state) {
  struct ratelimit *rl = *state;
  uint64_t i = 0;
  /* 120/min against 60/min: the burst of 60 plus 59.5 s of refill. */
  while (i < 200 && allowed(rl, "alice", RATE_CHAT_MESSAGE, T0 + i * 500)) i++;
  assert_int_equal(i, 119);
  assert_true(i * 500 < MINUTE);
}

static void users_are_independent(void **state) {
  struct ratelimit *rl = *state;
  burst(rl, "alice", RATE_HAND_RAISE, T0);
  assert_false(allowed(rl, "alice", RATE_HAND_RAISE, T0));
  burst(rl, "bob", RATE_HAND_RAISE, T0);
  assert_false(allowed(rl, "alice", RATE_HAND_RAISE, T0));
}

static void classes_are_independent(void **state) {
  struct ratelimit *rl = *state;
  burst(rl, "alice", RATE_HAND_RAISE, T0);
  assert_false(allowed(rl, "alice", RATE_HAND_RAISE, T0));
  burst(rl, "alice", RATE_REACTION, T0);
  assert_false(allowed(rl, "alice", RATE_REACTION, T0));
  assert_true(allowed(rl, "alice", RATE_CHAT_MESSAGE, T0));
}

static void user_names_with_separator_do_not_collide(void **state) {
  struct ratelimit *rl = *state;
  /* "2:x" for class 0 must not be the key of "x" in class 2 (hand_raise). */
  burst(rl, "x", RATE_HAND_RAISE, T0);
  assert_true(allowed(rl, "2:x", RATE_WEBSOCKET_MESSAGE, T0));
  assert_false(allowed(rl, "x", RATE_HAND_RAISE, T0));
}

static void long_user_name_is_tracked(void **state) {
  struct ratelimit *rl = *state;
  char user[1000];
  memset(user, 'u', sizeof(user) - 1);
  user[sizeof(user) - 1] = '\0';
  burst(rl, user, RATE_HAND_RAISE, T0);
  assert_false(allowed(rl, user, RATE_HAND_RAISE, T0));
  user[500] = '\0';
  assert_true(allowed(rl, user, RATE_HAND_RAISE, T0));
}

static void peek_does_not_consume(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  for (int i = 0; i < 20; i++) ratelimit_peek(rl, "alice", RATE_HAND_RAISE, T0, &r);
  assert_true(r.allowed);
  assert_int_equal(r.remaining, 5);
  assert_int_equal(rl->keys.count, 0);
  burst(rl, "alice", RATE_HAND_RAISE, T0);
}

static void peek_matches_check(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result p, c;
  for (int i = 0; i < 7; i++) {
    ratelimit_peek(rl, "alice", RATE_HAND_RAISE, T0 + 1000, &p);
    ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0 + 1000, &c);
    assert_int_equal(p.allowed, c.allowed);
    assert_int_equal(p.limit, c.limit);
    if (c.allowed) {
      assert_int_equal(p.remaining, c.remaining + 1);  /* peek counts the one check took */
    } else {
      assert_int_equal(p.remaining, 0);
      assert_int_equal(p.retry_after_ms, c.retry_after_ms);
      assert_int_equal(p.reset_ms, c.reset_ms);
    }
  }
}

static void remaining_and_reset_follow_requests_made(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  for (uint32_t k = 1; k <= 5; k++) {  /* 5/min: interval 12 s */
    ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0, &r);
    assert_int_equal(r.remaining, 5 - k);
    assert_int_equal(r.reset_ms, k * 12000);
    assert_int_equal(r.retry_after_ms, 0);
  }
  ratelimit_peek(rl, "alice", RATE_HAND_RAISE, T0 + 30000, &r);  /* 2.5 intervals later */
  assert_int_equal(r.remaining, 2);
  assert_int_equal(r.reset_ms, 30000);
}

static void limit_zero_disables_class(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  set_rule(rl, RATE_HAND_RAISE, 0, MINUTE);
  for (int i = 0; i < 1000; i++) {
    ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0, &r);
    assert_true(r.allowed);
    assert_int_equal(r.limit, 0);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_after_ms, 0);
  }
  ratelimit_peek(rl, "alice", RATE_HAND_RAISE, T0, &r);
  assert_true(r.allowed);
  assert_int_equal(r.limit, 0);
  assert_int_equal(rl->keys.count, 0);  /* nothing is remembered */
}

static void lowered_limit_applies_to_existing_keys(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  for (int i = 0; i < 3; i++) assert_true(allowed(rl, "alice", RATE_HAND_RAISE, T0));
  set_rule(rl, RATE_HAND_RAISE, 2, MINUTE);  /* 3 used, now 2 per minute */
  ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0, &r);
  assert_false(r.allowed);
  assert_int_equal(r.limit, 2);
  /* 36 s of TAT ahead, the new tolerance is 30 s: 6 s to wait. */
  assert_int_equal(r.retry_after_ms, 6000);
}

/* ---- Pruning ---- */

static void prune_removes_only_full_keys(void **state) {
  struct ratelimit *rl = *state;
  assert_true(allowed(rl, "alice", RATE_HAND_RAISE, T0));  /* full at T0 + 12 s */
  burst(rl, "bob", RATE_HAND_RAISE, T0);                   /* full at T0 + 60 s */
  ratelimit_prune(rl, T0 + 11999);
  assert_int_equal(rl->keys.count, 2);
  ratelimit_prune(rl, T0 + 12000);
  assert_int_equal(rl->keys.count, 1);
  ratelimit_prune(rl, T0 + MINUTE);
  assert_int_equal(rl->keys.count, 0);
}

static void prune_keeps_throttled_user_throttled(void **state) {
  struct ratelimit *rl = *state;
  struct ratelimit_result r;
  burst(rl, "alice", RATE_HAND_RAISE, T0);
  assert_true(allowed(rl, "bob", RATE_HAND_RAISE, T0));
  ratelimit_prune(rl, T0 + MINUTE - 1);
  ratelimit_check(rl, "alice", RATE_HAND_RAISE, T0 + 1000, &r);
  assert_false(r.allowed);
  assert_int_equal(r.retry_after_ms, 11000);
}

static void prune_frees_many_users(void **state) {
  struct ratelimit *rl = *state;
  char user[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(user, sizeof(user), "user-%d", i);
    assert_true(allowed(rl, user, (enum rate_class)(i % RATE__COUNT), T0 + (uint64_t)i));
  }
  assert_int_equal(rl->keys.count, 10000);
  ratelimit_prune(rl, T0 + 5000);  /* the slow classes' keys are not full yet */
  assert_true(rl->keys.count > 0 && rl->keys.count < 10000);
  ratelimit_prune(rl, T0 + HOUR);
  assert_int_equal(rl->keys.count, 0);
}

static void prune_on_empty_limiter_is_harmless(void **state) {
  struct ratelimit *rl = *state;
  ratelimit_prune(rl, T0);
  assert_int_equal(rl->keys.count, 0);
  assert_true(allowed(rl, "alice", RATE_HAND_RAISE, T0));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
    T(default_rules_match_seed_table),
    T(class_name_round_trips_through_parse),
    T(class_parse_refuses_unknown_name),
    T(class_name_is_null_out_of_range),
    T(rule_parse_accepts_every_unit),
    T(rule_parse_accepts_bounds),
    T(rule_parse_refuses_spaces),
    T(rule_parse_refuses_missing_parts),
    T(rule_parse_refuses_signs),
    T(rule_parse_refuses_unknown_unit),
    T(rule_parse_refuses_trailing_junk),
    T(rule_parse_refuses_out_of_range),
    T(fresh_key_allows_exactly_limit_at_one_instant),
    T(refusal_does_not_consume),
    T(retry_after_equals_emission_interval_after_burst),
    T(retry_after_rounds_up_to_an_allowed_time),
    T(budget_recovers_fully_after_one_window),
    T(budget_never_exceeds_limit_after_long_idle),
    T(steady_rate_at_limit_is_never_refused),
    T(double_rate_is_refused_within_one_window),
    T(users_are_independent),
    T(classes_are_independent),
    T(user_names_with_separator_do_not_collide),
    T(long_user_name_is_tracked),
    T(peek_does_not_consume),
    T(peek_matches_check),
    T(remaining_and_reset_follow_requests_made),
    T(limit_zero_disables_class),
    T(lowered_limit_applies_to_existing_keys),
    T(prune_removes_only_full_keys),
    T(prune_keeps_throttled_user_throttled),
    T(prune_frees_many_users),
    T(prune_on_empty_limiter_is_harmless),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
