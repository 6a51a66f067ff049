/* Unit tests for what issue 15 added to auth/token.c: token_mint_alg (the
 * HMAC algorithm the server pins, for `huddle token`) and token_verify_why
 * (which check refused a token, without anything secret in the sentence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "auth/token.h"

#define SECRET "0123456789abcdef0123456789abcdef-unit-secret"

static struct token_claims claims(int64_t now, int64_t ttl) {
  struct token_claims c;
  memset(&c, 0, sizeof(c));
  strcpy(c.sub, "alice");
  c.role = ROOM_ROLE_HOST;
  c.iat = now;
  c.exp = now + ttl;
  return c;
}

static void mint_alg_is_verified_by_that_alg_only(void **state) {
  (void)state;
  const char *algs[] = {"HS256", "HS384", "HS512"};
  int64_t now = (int64_t)time(NULL);
  for (int i = 0; i < 3; i++) {
    struct token_claims c = claims(now, 60), out;
    char *jwt = token_mint_alg((const unsigned char *)SECRET, strlen(SECRET), &c, algs[i]);
    assert_non_null(jwt);
    for (int k = 0; k < 3; k++) {
      struct token_verifier v;
      char err[128];
      assert_int_equal(token_verifier_init(&v, algs[k], (const unsigned char *)SECRET, strlen(SECRET), err, sizeof(err)), 0);
      const char *why = NULL;
      enum api_err e = token_verify_why(&v, jwt, now, &out, &why);
      if (k == i) {
        assert_int_equal(e, API_OK);
        assert_string_equal(out.sub, "alice");
        assert_null(why);
      } else {
        assert_int_equal(e, API_ERR_INVALID_TOKEN);
        assert_non_null(strstr(why, "header"));
      }
      token_verifier_close(&v);
    }
    free(jwt);
  }
}

static void mint_alg_refuses_non_hmac(void **state) {
  (void)state;
  struct token_claims c = claims((int64_t)time(NULL), 60);
  assert_null(token_mint_alg((const unsigned char *)SECRET, strlen(SECRET), &c, "RS256"));
  assert_null(token_mint_alg((const unsigned char *)SECRET, strlen(SECRET), &c, "none"));
}

static void why_names_the_failed_check(void **state) {
  (void)state;
  struct token_verifier v;
  char err[128];
  assert_int_equal(token_verifier_init(&v, "HS256", (const unsigned char *)SECRET, strlen(SECRET), err, sizeof(err)), 0);
  int64_t now = (int64_t)time(NULL);
  struct token_claims out, c = claims(now, 60);
  const char *why = NULL;

  assert_int_equal(token_verify_why(&v, "not-a-jwt", now, &out, &why), API_ERR_INVALID_TOKEN);
  assert_non_null(strstr(why, "format"));

  const char *other = "another-secret-another-secret-another-secret";
  char *jwt = token_mint_alg((const unsigned char *)other, strlen(other), &c, "HS256");
  assert_int_equal(token_verify_why(&v, jwt, now, &out, &why), API_ERR_INVALID_TOKEN);
  assert_non_null(strstr(why, "signature"));
  assert_null(strstr(why, SECRET));
  free(jwt);

  jwt = token_mint_alg((const unsigned char *)SECRET, strlen(SECRET), &c, "HS256");
  assert_int_equal(token_verify_why(&v, jwt, now + 61, &out, &why), API_ERR_TOKEN_EXPIRED);
  assert_non_null(strstr(why, "expired"));
  free(jwt);

  c.nbf = now + 30;
  jwt = token_mint_alg((const unsigned char *)SECRET, strlen(SECRET), &c, "HS256");
  assert_int_equal(token_verify_why(&v, jwt, now, &out, &why), API_ERR_TOKEN_NOT_YET_VALID);
  assert_non_null(strstr(why, "not yet valid"));
  free(jwt);

  /* token_verify is token_verify_why without the sentence. */
  c.nbf = 0;
  jwt = token_mint_alg((const unsigned char *)SECRET, strlen(SECRET), &c, "HS256");
  assert_int_equal(token_verify(&v, jwt, now, &out), API_OK);
  free(jwt);
  token_verifier_close(&v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(mint_alg_is_verified_by_that_alg_only),
    cmocka_unit_test(mint_alg_refuses_non_hmac),
    cmocka_unit_test(why_names_the_failed_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
