/* Unit tests for auth/turn.c: TURN REST credentials against vectors computed
 * outside this code base with the openssl command line (and cross-checked
 * with Python's hmac module). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/turn.h"

/* printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac 'turnsecret' -binary | base64 */
static void turn_matches_openssl_vector_alice(void **state) {
  char user[TURN_USERNAME_MAX], cred[TURN_CREDENTIAL_MAX];
  (void)state;
  assert_int_equal(turn_credentials("turnsecret", "alice", 1700000000, user, sizeof(user),
                                    cred, sizeof(cred)), 0);
  assert_string_equal(user, "1700000000:alice");
  assert_string_equal(cred, "ARlMvw97H5MyLP+gkXbH4g2zIwo=");
}

/* printf '%s' '4102444800:bob.smith-01' | openssl dgst -sha1 -hmac 's3cr3t-with-more-bytes' -binary | base64 */
static void turn_matches_openssl_vector_bob(void **state) {
  char user[TURN_USERNAME_MAX], cred[TURN_CREDENTIAL_MAX];
  (void)state;
  assert_int_equal(turn_credentials("s3cr3t-with-more-bytes", "bob.smith-01", 4102444800LL,
                                    user, sizeof(user), cred, sizeof(cred)), 0);
  assert_string_equal(user, "4102444800:bob.smith-01");
  assert_string_equal(cred, "Del7u76cY19jq5Rg+pPFEE0V6PU=");
}

/* printf '%s' '-1:neg' | openssl dgst -sha1 -hmac 'turnsecret' -binary | base64 */
static void turn_prints_negative_expiry_in_decimal(void **state) {
  char user[TURN_USERNAME_MAX], cred[TURN_CREDENTIAL_MAX];
  (void)state;
  assert_int_equal(turn_credentials("turnsecret", "neg", -1, user, sizeof(user),
                                    cred, sizeof(cred)), 0);
  assert_string_equal(user, "-1:neg");
  assert_string_equal(cred, "jqOicqYreKKZ+P4dj+qEKoQHzEw=");
}

static void turn_rejects_too_small_username_buffer(void **state) {
  char user[16], cred[TURN_CREDENTIAL_MAX];
  (void)state;
  /* "1700000000:alice" needs 17 bytes with its NUL. */
  assert_int_equal(turn_credentials("turnsecret", "alice", 1700000000, user, sizeof(user),
                                    cred, sizeof(cred)), -1);
  assert_string_equal(user, "");
  assert_string_equal(cred, "");
}

static void turn_rejects_too_small_credential_buffer(void **state) {
  char user[TURN_USERNAME_MAX], cred[28];
  (void)state;
  /* 28 base64 characters need 29 bytes with the NUL. */
  assert_int_equal(turn_credentials("turnsecret", "alice", 1700000000, user, sizeof(user),
                                    cred, sizeof(cred)), -1);
  assert_string_equal(user, "");
  assert_string_equal(cred, "");
}

static void turn_rejects_null_secret(void **state) {
  char user[TURN_USERNAME_MAX], cred[TURN_CREDENTIAL_MAX];
  (void)state;
  assert_int_equal(turn_credentials(NULL, "alice", 1700000000, user, sizeof(user),
                                    cred, sizeof(cred)), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(turn_matches_openssl_vector_alice),
    cmocka_unit_test(turn_matches_openssl_vector_bob),
    cmocka_unit_test(turn_prints_negative_expiry_in_decimal),
    cmocka_unit_test(turn_rejects_too_small_username_buffer),
    cmocka_unit_test(turn_rejects_too_small_credential_buffer),
    cmocka_unit_test(turn_rejects_null_secret),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
