/* Unit tests for auth/grant.c: breakout grants are signed, expire, are
 * bound to their fields, single-use through the spent set, and refuse any
 * altered or malformed text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/grant.h"

static const unsigned char KEY[GRANT_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const unsigned char OTHER[GRANT_KEY_LEN] = "fedcba9876543210fedcba987654321";

static struct grant_claims claims(void) {
  struct grant_claims c;
  memset(&c, 0, sizeof(c));
  strcpy(c.room, "br-0123456789ab");
  strcpy(c.parent, "main");
  strcpy(c.breakout, "br-0123456789ab");
  strcpy(c.user, "pat");
  c.exp = 1000;
  return c;
}

static void round_trip(void **state) {
  (void)state;
  struct grant_claims c = claims(), out;
  char g[GRANT_MAX + 1];
  int n = grant_mint(KEY, &c, g, sizeof(g));
  assert_true(n > 16);
  assert_int_equal(strspn(g, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), (size_t)n);
  assert_int_equal(grant_verify(KEY, g, (size_t)n, 999, &out), API_OK);
  assert_string_equal(out.room, c.room);
  assert_string_equal(out.parent, "main");
  assert_string_equal(out.breakout, c.breakout);
  assert_string_equal(out.user, "pat");
  assert_int_equal(out.exp, 1000);
  assert_string_equal(out.jti, c.jti);
  assert_int_equal(strlen(out.jti), GRANT_JTI_LEN);
}

static void fresh_jti_each_time(void **state) {
  (void)state;
  struct grant_claims a = claims(), b = claims();
  char ga[GRANT_MAX + 1], gb[GRANT_MAX + 1];
  assert_true(grant_mint(KEY, &a, ga, sizeof(ga)) > 0);
  assert_true(grant_mint(KEY, &b, gb, sizeof(gb)) > 0);
  assert_string_not_equal(a.jti, b.jti);
  assert_string_not_equal(ga, gb);
}

static void expired_refused(void **state) {
  (void)state;
  struct grant_claims c = claims(), out;
  char g[GRANT_MAX + 1];
  int n = grant_mint(KEY, &c, g, sizeof(g));
  assert_int_equal(grant_verify(KEY, g, (size_t)n, 1000, &out), API_ERR_INVALID_TOKEN);
  assert_int_equal(grant_verify(KEY, g, (size_t)n, 5000, &out), API_ERR_INVALID_TOKEN);
}

static void other_key_refused(void **state) {
  (void)state;
  struct grant_claims c = claims(), out;
  char g[GRANT_MAX + 1];
  int n = grant_mint(KEY, &c, g, sizeof(g));
  assert_int_equal(grant_verify(OTHER, g, (size_t)n, 1, &out), API_ERR_INVALID_TOKEN);
}

static void every_altered_character_refused(void **state) {
  (void)state;
  struct grant_claims c = claims(), out;
  char g[GRANT_MAX + 1];
  int n = grant_mint(KEY, &c, g, sizeof(g));
  for (int i = 0; i < n; i++) {
    char saved = g[i];
    g[i] = saved == 'A' ? 'B' : 'A';
    assert_int_equal(grant_verify(KEY, g, (size_t)n, 1, &out), API_ERR_INVALID_TOKEN);
    g[i] = saved;
  }
  /* Truncated and extended. */
  for (int k = 0; k < n; k++) assert_int_equal(grant_verify(KEY, g, (size_t)k, 1, &out), API_ERR_INVALID_TOKEN);
  g[n] = 'A';
  g[n + 1] = '\0';
  assert_int_equal(grant_verify(KEY, g, (size_t)n + 1, 1, &out), API_ERR_INVALID_TOKEN);
}

static void junk_refused(void **state) {
  (void)state;
  struct grant_claims out;
  const char *junk[] = {"", "0000000000000000000000000000000000000000000000000000000000000000",
                        "expired-or-made-up", "====", "g1", "Zz", "!!!!!!!!"};
  for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
    assert_int_equal(grant_verify(KEY, junk[i], strlen(junk[i]), 1, &out), API_ERR_INVALID_TOKEN);
}

static void bad_fields_not_minted(void **state) {
  (void)state;
  char g[GRANT_MAX + 1];
  struct grant_claims c = claims();
  strcpy(c.user, "pat\nroom");
  assert_int_equal(grant_mint(KEY, &c, g, sizeof(g)), -1);
  c = claims();
  c.room[0] = '\0';
  assert_int_equal(grant_mint(KEY, &c, g, sizeof(g)), -1);
  c = claims();
  assert_int_equal(grant_mint(KEY, &c, g, 10), -1);
}

static void spent_once(void **state) {
  (void)state;
  struct grant_spent s;
  memset(&s, 0, sizeof(s));
  assert_int_equal(grant_spend(&s, "aa", 100), 0);
  assert_int_equal(grant_spend(&s, "aa", 100), -1);
  assert_int_equal(grant_spend(&s, "bb", 200), 0);
  grant_spent_prune(&s, 150); /* aa's grant has expired: it can no longer be presented */
  assert_int_equal(s.used.count, 1);
  assert_int_equal(grant_spend(&s, "bb", 200), -1);
  grant_spent_prune(&s, 200);
  assert_int_equal(s.used.count, 0);
  grant_spent_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(round_trip),
    cmocka_unit_test(fresh_jti_each_time),
    cmocka_unit_test(expired_refused),
    cmocka_unit_test(other_key_refused),
    cmocka_unit_test(every_altered_character_refused),
    cmocka_unit_test(junk_refused),
    cmocka_unit_test(bad_fields_not_minted),
    cmocka_unit_test(spent_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
