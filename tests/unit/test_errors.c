/* Unit tests for guard/errors.c: the error taxonomy table. Every code must be
 * complete (wire code, HTTP status, message, recovery) and unique, and each
 * wire code must spell its enum name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guard/errors.h"

/* ---- Helpers ---- */

/* 1 if s is SCREAMING_SNAKE_CASE: upper-case words of [A-Z0-9] joined by
 * single underscores, starting with a letter. */
static int is_screaming_snake(const char *s) {
  if (s == NULL || !(s[0] >= 'A' && s[0] <= 'Z')) return 0;
  for (size_t i = 1; s[i] != '\0'; i++) {
    char c = s[i];
    if (c == '_') {
      if (s[i - 1] == '_' || s[i + 1] == '\0') return 0;
    } else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      return 0;
    }
  }
  return 1;
}

/* ---- Completeness ---- */

static void every_code_is_screaming_snake_case(void **state) {
  (void)state;
  for (int e = 1; e < API_ERR__COUNT; e++) {
    const char *code = api_err_info((enum api_err)e)->code;
    if (!is_screaming_snake(code)) fail_msg("error %d has code '%s'", e, code ? code : "(null)");
  }
}

static void every_status_is_4xx_or_5xx(void **state) {
  (void)state;
  for (int e = 1; e < API_ERR__COUNT; e++) {
    const struct api_err_info *i = api_err_info((enum api_err)e);
    if (i->status < 400 || i->status > 599) fail_msg("%s has status %d", i->code, i->status);
  }
}

static void every_code_has_message(void **state) {
  (void)state;
  for (int e = 1; e < API_ERR__COUNT; e++) {
    const struct api_err_info *i = api_err_info((enum api_err)e);
    if (i->message == NULL || i->message[0] == '\0') fail_msg("%s has no message", i->code);
  }
}

static void every_code_has_recovery(void **state) {
  (void)state;
  for (int e = 1; e < API_ERR__COUNT; e++) {
    const struct api_err_info *i = api_err_info((enum api_err)e);
    if (i->recovery == NULL || i->recovery[0] == '\0') fail_msg("%s has no recovery", i->code);
  }
}

static void every_code_has_its_own_row(void **state) {
  /* A missing row would fall back to INTERNAL_ERROR. */
  (void)state;
  for (int e = 1; e < API_ERR__COUNT; e++) {
    if (e == API_ERR_INTERNAL_ERROR) continue;
    if (api_err_info((enum api_err)e) == api_err_info(API_ERR_INTERNAL_ERROR))
      fail_msg("error %d has no row of its own", e);
  }
}

static void codes_are_unique(void **state) {
  (void)state;
  for (int a = 0; a < API_ERR__COUNT; a++)
    for (int b = a + 1; b < API_ERR__COUNT; b++)
      if (strcmp(api_err_code((enum api_err)a), api_err_code((enum api_err)b)) == 0)
        fail_msg("errors %d and %d share code %s", a, b, api_err_code((enum api_err)a));
}

static void there_are_at_least_40_codes(void **state) {
  (void)state;
  assert_true(API_ERR__COUNT - 1 >= 40);
}

/* ---- Lookups ---- */

static void code_and_status_agree_with_info(void **state) {
  (void)state;
  for (int e = 0; e < API_ERR__COUNT; e++) {
    assert_ptr_equal(api_err_code((enum api_err)e), api_err_info((enum api_err)e)->code);
    assert_int_equal(api_err_status((enum api_err)e), api_err_info((enum api_err)e)->status);
  }
}

static void ok_is_code_ok_with_status_200(void **state) {
  (void)state;
  assert_string_equal(api_err_code(API_OK), "OK");
  assert_int_equal(api_err_status(API_OK), 200);
}

static void out_of_range_returns_internal_error(void **state) {
  const struct api_err_info *internal = api_err_info(API_ERR_INTERNAL_ERROR);
  (void)state;
  assert_string_equal(internal->code, "INTERNAL_ERROR");
  assert_int_equal(internal->status, 500);
  assert_ptr_equal(api_err_info(API_ERR__COUNT), internal);
  assert_ptr_equal(api_err_info((enum api_err)(API_ERR__COUNT + 100)), internal);
  assert_ptr_equal(api_err_info((enum api_err)-1), internal);
  assert_string_equal(api_err_code((enum api_err)-7), "INTERNAL_ERROR");
  assert_int_equal(api_err_status(API_ERR__COUNT), 500);
}

/* ---- Wire codes and statuses ---- */

/* Each wire code is its enum name without "API_ERR_". */
#define NAMED(e, status) {e, &(#e)[sizeof("API_ERR_") - 1], status}

static const struct {
  enum api_err e;
  const char *code;
  int status;
} named[] = {
  NAMED(API_ERR_UNAUTHORIZED, 401),
  NAMED(API_ERR_INVALID_TOKEN, 401),
  NAMED(API_ERR_TOKEN_EXPIRED, 401),
  NAMED(API_ERR_TOKEN_NOT_YET_VALID, 401),
  NAMED(API_ERR_TOKEN_ROOM_MISMATCH, 403),
  NAMED(API_ERR_FORBIDDEN, 403),
  NAMED(API_ERR_PERMISSION_DENIED, 403),
  NAMED(API_ERR_RATE_LIMIT_EXCEEDED, 429),
  NAMED(API_ERR_TOO_MANY_MESSAGES, 429),
  NAMED(API_ERR_TOO_MANY_CONNECTIONS, 429),
  NAMED(API_ERR_ROOM_FULL, 409),
  NAMED(API_ERR_MAX_PARTICIPANTS_REACHED, 409),
  NAMED(API_ERR_SERVER_FULL, 503),
  NAMED(API_ERR_ROOM_NOT_FOUND, 404),
  NAMED(API_ERR_ROOM_LOCKED, 403),
  NAMED(API_ERR_ROOM_CLOSED, 410),
  NAMED(API_ERR_INVALID_ROOM_ID, 400),
  NAMED(API_ERR_USER_NOT_IN_ROOM, 404),
  NAMED(API_ERR_USER_BANNED, 403),
  NAMED(API_ERR_INVALID_USER_ID, 400),
  NAMED(API_ERR_TARGET_NOT_FOUND, 404),
  NAMED(API_ERR_SESSION_REPLACED, 409),
  NAMED(API_ERR_INVALID_SDP, 400),
  NAMED(API_ERR_ICE_CANDIDATE_FAILED, 400),
  NAMED(API_ERR_INVALID_ICE_CANDIDATE, 400),
  NAMED(API_ERR_INVALID_JSON, 400),
  NAMED(API_ERR_DUPLICATE_KEY, 400),
  NAMED(API_ERR_JSON_TOO_DEEP, 400),
  NAMED(API_ERR_JSON_TOO_LARGE, 400),
  NAMED(API_ERR_INVALID_MESSAGE, 400),
  NAMED(API_ERR_UNKNOWN_MESSAGE_TYPE, 400),
  NAMED(API_ERR_SERVER_ONLY_MESSAGE, 400),
  NAMED(API_ERR_MESSAGE_TOO_LARGE, 413),
  NAMED(API_ERR_NOT_IMPLEMENTED, 501),
  NAMED(API_ERR_BAD_REQUEST, 400),
  NAMED(API_ERR_NOT_FOUND, 404),
  NAMED(API_ERR_METHOD_NOT_ALLOWED, 405),
  NAMED(API_ERR_PAYLOAD_TOO_LARGE, 413),
  NAMED(API_ERR_HEADERS_TOO_LARGE, 431),
  NAMED(API_ERR_REQUEST_TIMEOUT, 408),
  NAMED(API_ERR_UNSUPPORTED_MEDIA_TYPE, 415),
  NAMED(API_ERR_UPGRADE_REQUIRED, 426),
  NAMED(API_ERR_CHAT_DISABLED, 403),
  NAMED(API_ERR_MESSAGE_TOO_LONG, 400),
  NAMED(API_ERR_FILE_TOO_LARGE, 413),
  NAMED(API_ERR_FILE_TYPE_NOT_ALLOWED, 415),
  NAMED(API_ERR_RECORDING_ALREADY_ACTIVE, 409),
  NAMED(API_ERR_RECORDING_NOT_FOUND, 404),
  NAMED(API_ERR_STREAM_NOT_FOUND, 404),
  NAMED(API_ERR_INVALID_STREAM_TARGET, 400),
  NAMED(API_ERR_INTERNAL_ERROR, 500),
  NAMED(API_ERR_SERVICE_UNAVAILABLE, 503),
  NAMED(API_ERR_SHUTTING_DOWN, 503),
};

static void wire_code_spells_enum_name(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
    assert_string_equal(api_err_code(named[i].e), named[i].code);
}

static void status_matches_meaning(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
    if (api_err_status(named[i].e) != named[i].status)
      fail_msg("%s: status %d, want %d", named[i].code, api_err_status(named[i].e),
               named[i].status);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_code_is_screaming_snake_case),
    cmocka_unit_test(every_status_is_4xx_or_5xx),
    cmocka_unit_test(every_code_has_message),
    cmocka_unit_test(every_code_has_recovery),
    cmocka_unit_test(every_code_has_its_own_row),
    cmocka_unit_test(codes_are_unique),
    cmocka_unit_test(there_are_at_least_40_codes),
    cmocka_unit_test(code_and_status_agree_with_info),
    cmocka_unit_test(ok_is_code_ok_with_status_200),
    cmocka_unit_test(out_of_range_returns_internal_error),
    cmocka_unit_test(wire_code_spells_enum_name),
    cmocka_unit_test(status_matches_meaning),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
