/* Unit tests for net/router.c: path patterns with "{name}" segments. Paths
 * are passed with an explicit length, as the HTTP layer does once it has cut
 * off the query string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/router.h"

/* router_match on a NUL-terminated path. */
static int match(const char *pattern, const char *path, struct router_param *params,
                 int max_params) {
  return router_match(pattern, path, strlen(path), params, max_params);
}

static void assert_param(const struct router_param *p, const char *name, const char *value) {
  assert_int_equal(p->name_len, strlen(name));
  assert_memory_equal(p->name, name, p->name_len);
  assert_int_equal(p->value_len, strlen(value));
  assert_memory_equal(p->value, value, p->value_len);
}

/* ---- Literal patterns ---- */

static void router_matches_exact_literal_path(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/health", "/webrtc/health", params, ROUTER_MAX_PARAMS), 0);
}

static void router_rejects_different_literal_segment(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/health", "/webrtc/healthz", params, ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/webrtc/health", "/webrtc/healt", params, ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/webrtc/health", "/webrtc/Health", params, ROUTER_MAX_PARAMS), -1);
}

static void router_matches_root(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/", "/", params, ROUTER_MAX_PARAMS), 0);
}

static void router_root_rejects_other_paths(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/", "/x", params, ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/", "//", params, ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/", "", params, ROUTER_MAX_PARAMS), -1);
}

static void router_rejects_path_without_leading_slash(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/health", "webrtc/health", params, ROUTER_MAX_PARAMS), -1);
}

static void router_uses_path_length_not_nul(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  const char *raw = "/webrtc/health?verbose=1";
  (void)state;
  assert_int_equal(router_match("/webrtc/health", raw, 14, params, ROUTER_MAX_PARAMS), 0);
  assert_int_equal(router_match("/webrtc/health", raw, 13, params, ROUTER_MAX_PARAMS), -1);
}

/* ---- Parameters ---- */

static void router_extracts_param_name_and_value(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/rooms/{room_id}", "/webrtc/rooms/standup.daily", params,
                         ROUTER_MAX_PARAMS), 1);
  assert_param(&params[0], "room_id", "standup.daily");
}

static void router_param_points_into_pattern_and_path(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  const char *pattern = "/webrtc/rooms/{room_id}/participants";
  const char *path = "/webrtc/rooms/r1/participants";
  (void)state;
  assert_int_equal(match(pattern, path, params, ROUTER_MAX_PARAMS), 1);
  assert_ptr_equal(params[0].name, pattern + strlen("/webrtc/rooms/{"));
  assert_ptr_equal(params[0].value, path + strlen("/webrtc/rooms/"));
  assert_param(&params[0], "room_id", "r1");
}

static void router_extracts_multiple_params_in_order(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/rooms/{room_id}/participants/{user_id}/kick",
                         "/webrtc/rooms/room-9/participants/alice_01/kick", params,
                         ROUTER_MAX_PARAMS), 2);
  assert_param(&params[0], "room_id", "room-9");
  assert_param(&params[1], "user_id", "alice_01");
}

static void router_extracts_adjacent_params(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/{a}/{b}/{c}/{d}", "/1/22/333/4444", params, ROUTER_MAX_PARAMS), 4);
  assert_param(&params[0], "a", "1");
  assert_param(&params[1], "b", "22");
  assert_param(&params[2], "c", "333");
  assert_param(&params[3], "d", "4444");
}

static void router_param_value_stops_at_path_length(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  const char *raw = "/webrtc/rooms/abc?x=1";
  (void)state;
  assert_int_equal(router_match("/webrtc/rooms/{room_id}", raw, 17, params, ROUTER_MAX_PARAMS),
                   1);
  assert_param(&params[0], "room_id", "abc");
}

static void router_param_does_not_match_empty_segment(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/rooms/{room_id}", "/webrtc/rooms/", params,
                         ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/webrtc/rooms/{room_id}/participants", "/webrtc/rooms//participants",
                         params, ROUTER_MAX_PARAMS), -1);
}

static void router_param_does_not_span_segments(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/rooms/{room_id}", "/webrtc/rooms/a/b", params,
                         ROUTER_MAX_PARAMS), -1);
}

/* ---- Shape mismatches ---- */

static void router_rejects_trailing_slash_on_path(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/health", "/webrtc/health/", params, ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/webrtc/rooms/{room_id}", "/webrtc/rooms/r1/", params,
                         ROUTER_MAX_PARAMS), -1);
}

static void router_rejects_missing_trailing_slash_of_pattern(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/health/", "/webrtc/health", params, ROUTER_MAX_PARAMS), -1);
}

static void router_rejects_extra_segments(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/rooms", "/webrtc/rooms/r1", params, ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/webrtc/rooms/{room_id}/participants",
                         "/webrtc/rooms/r1/participants/alice", params, ROUTER_MAX_PARAMS), -1);
}

static void router_rejects_path_that_is_prefix_of_pattern(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/webrtc/rooms/{room_id}/participants", "/webrtc/rooms/r1", params,
                         ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/webrtc/rooms/{room_id}", "/webrtc/rooms", params,
                         ROUTER_MAX_PARAMS), -1);
  assert_int_equal(match("/webrtc/rooms/{room_id}", "/webrtc", params, ROUTER_MAX_PARAMS), -1);
}

/* ---- Parameter limit ---- */

static void router_rejects_more_params_than_max(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS + 1];
  (void)state;
  memset(params, 0, sizeof(params));
  assert_int_equal(match("/{a}/{b}/{c}/{d}/{e}", "/1/2/3/4/5", params, ROUTER_MAX_PARAMS), -1);
  /* Nothing is written past max_params. */
  assert_null(params[ROUTER_MAX_PARAMS].name);
}

static void router_honours_smaller_max_params(void **state) {
  struct router_param params[ROUTER_MAX_PARAMS];
  (void)state;
  assert_int_equal(match("/rooms/{room_id}/users/{user_id}", "/rooms/r/users/u", params, 1),
                   -1);
  assert_int_equal(match("/rooms/{room_id}", "/rooms/r", params, 0), -1);
  assert_int_equal(match("/rooms/{room_id}/users/{user_id}", "/rooms/r/users/u", params, 2), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(router_matches_exact_literal_path),
    cmocka_unit_test(router_rejects_different_literal_segment),
    cmocka_unit_test(router_matches_root),
    cmocka_unit_test(router_root_rejects_other_paths),
    cmocka_unit_test(router_rejects_path_without_leading_slash),
    cmocka_unit_test(router_uses_path_length_not_nul),
    cmocka_unit_test(router_extracts_param_name_and_value),
    cmocka_unit_test(router_param_points_into_pattern_and_path),
    cmocka_unit_test(router_extracts_multiple_params_in_order),
    cmocka_unit_test(router_extracts_adjacent_params),
    cmocka_unit_test(router_param_value_stops_at_path_length),
    cmocka_unit_test(router_param_does_not_match_empty_segment),
    cmocka_unit_test(router_param_does_not_span_segments),
    cmocka_unit_test(router_rejects_trailing_slash_on_path),
    cmocka_unit_test(router_rejects_missing_trailing_slash_of_pattern),
    cmocka_unit_test(router_rejects_extra_segments),
    cmocka_unit_test(router_rejects_path_that_is_prefix_of_pattern),
    cmocka_unit_test(router_rejects_more_params_than_max),
    cmocka_unit_test(router_honours_smaller_max_params),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
