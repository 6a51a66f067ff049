/* Unit tests for lib/jsonx.c: strict JSON parsing of untrusted input
 * (duplicate keys, nesting depth and value count limits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/jsonx.h"

static const struct jsonx_limits roomy = {16, 4096};

/* Parses a NUL-terminated s; on success returns the value, else NULL. */
static json_t *parse(const char *s, const struct jsonx_limits *lim, enum api_err *err,
                     char *detail, size_t detail_len) {
  return jsonx_parse(s, strlen(s), lim, err, detail, detail_len);
}

/* Asserts that s is refused with want, and that nothing leaks. */
static void assert_refused(const char *s, const struct jsonx_limits *lim, enum api_err want) {
  enum api_err err = API_OK;
  char detail[256] = "unset";
  json_t *j = parse(s, lim, &err, detail, sizeof(detail));
  if (j != NULL) {
    json_decref(j);
    fail_msg("accepted: %s", s);
  }
  assert_int_equal(err, want);
  assert_true(detail[0] != '\0');
}

static void assert_accepted(const char *s, const struct jsonx_limits *lim) {
  enum api_err err = API_ERR_INTERNAL_ERROR;
  json_t *j = parse(s, lim, &err, NULL, 0);
  if (j == NULL) fail_msg("refused (%d): %s", (int)err, s);
  assert_int_equal(err, API_OK);
  json_decref(j);
}

/* s nested n deep: n '[' then n ']'. malloc'd. */
static char *nested_arrays(int n) {
  char *s = malloc((size_t)n * 2 + 1);
  assert_non_null(s);
  for (int i = 0; i < n; i++) {
    s[i] = '[';
    s[n + i] = ']';
  }
  s[2 * n] = '\0';
  return s;
}

/* ---- Accepting ---- */

static void parse_accepts_valid_object_and_sets_ok(void **state) {
  enum api_err err = API_ERR_INVALID_JSON;
  char detail[128] = "unset";
  json_t *j;
  (void)state;

  j = parse("{\"type\":\"offer\",\"to\":\"bob\",\"payload\":{\"sdp\":\"v=0\",\"n\":[1,2.5,true,null]}}",
            &roomy, &err, detail, sizeof(detail));
  assert_non_null(j);
  assert_int_equal(err, API_OK);
  assert_string_equal(detail, "");
  assert_true(json_is_object(j));
  assert_string_equal(json_string_value(json_object_get(j, "type")), "offer");
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "payload"), "sdp")),
                      "v=0");
  assert_int_equal(json_array_size(json_object_get(json_object_get(j, "payload"), "n")), 4);
  json_decref(j);
}

static void parse_accepts_null_detail(void **state) {
  enum api_err err = API_OK;
  (void)state;
  assert_null(jsonx_parse("{", 1, &roomy, &err, NULL, 0));
  assert_int_equal(err, API_ERR_INVALID_JSON);
}

static void parse_uses_len_not_nul(void **state) {
  const char s[] = "{\"a\":1}garbage";
  enum api_err err;
  json_t *j;
  (void)state;
  j = jsonx_parse(s, 7, &roomy, &err, NULL, 0);
  assert_non_null(j);
  assert_int_equal(err, API_OK);
  json_decref(j);
}

/* ---- Duplicate keys ---- */

static void parse_refuses_duplicate_key(void **state) {
  (void)state;
  assert_refused("{\"type\":\"offer\",\"type\":\"answer\"}", &roomy, API_ERR_DUPLICATE_KEY);
}

static void parse_refuses_duplicate_key_in_nested_object(void **state) {
  (void)state;
  assert_refused("{\"payload\":{\"a\":1,\"b\":2,\"a\":3}}", &roomy, API_ERR_DUPLICATE_KEY);
  assert_refused("[{},{\"x\":1,\"x\":1}]", &roomy, API_ERR_DUPLICATE_KEY);
}

static void parse_accepts_same_key_in_sibling_objects(void **state) {
  (void)state;
  assert_accepted("[{\"a\":1},{\"a\":2}]", &roomy);
}

/* ---- Depth ---- */

static void parse_accepts_depth_equal_to_max(void **state) {
  const struct jsonx_limits lim = {5, 4096};
  char *s = nested_arrays(5);
  (void)state;
  assert_accepted(s, &lim);
  assert_accepted("{\"a\":{\"b\":[{\"c\":[1]}]}}", &lim);
  free(s);
}

static void parse_refuses_depth_one_over_max(void **state) {
  const struct jsonx_limits lim = {5, 4096};
  char *s = nested_arrays(6);
  (void)state;
  assert_refused(s, &lim, API_ERR_JSON_TOO_DEEP);
  assert_refused("{\"a\":{\"b\":[{\"c\":[[1]]}]}}", &lim, API_ERR_JSON_TOO_DEEP);
  free(s);
}

static void parse_refuses_deep_nesting_below_jansson_limit(void **state) {
  /* jansson alone allows 2048 levels; the default limit is far lower. */
  char *s = nested_arrays(1000);
  (void)state;
  assert_refused(s, &roomy, API_ERR_JSON_TOO_DEEP);
  free(s);
}

static void parse_depth_counts_siblings_once(void **state) {
  const struct jsonx_limits lim = {2, 4096};
  (void)state;
  assert_accepted("[[1],[2],{\"a\":3},[4]]", &lim);
}

static void depth_ignores_brackets_inside_strings(void **state) {
  const char *s = "{\"a\":\"[[[[{{{{\",\"b\":\"]]]]}}}}\"}";
  const struct jsonx_limits lim = {1, 4096};
  (void)state;
  assert_int_equal(jsonx_depth(s, strlen(s)), 1);
  assert_accepted(s, &lim);
}

static void depth_ignores_brackets_after_escaped_quote(void **state) {
  const char *s = "{\"a\":\"x\\\"[[[[[\\\"{{{\"}";
  const struct jsonx_limits lim = {1, 4096};
  (void)state;
  assert_int_equal(jsonx_depth(s, strlen(s)), 1);
  assert_accepted(s, &lim);
}

static void depth_counts_brackets_after_escaped_backslash(void **state) {
  /* "\\" ends the string: the brackets after it count. */
  const char *s = "[\"\\\\\",[[1]]]";
  const struct jsonx_limits lim = {2, 4096};
  (void)state;
  assert_int_equal(jsonx_depth(s, strlen(s)), 3);
  assert_refused(s, &lim, API_ERR_JSON_TOO_DEEP);
}

static void depth_counts_brackets_in_keys_as_string(void **state) {
  const char *s = "{\"[[[\":{\"]]]\":1}}";
  (void)state;
  assert_int_equal(jsonx_depth(s, strlen(s)), 2);
}

static void depth_of_scalar_is_zero(void **state) {
  (void)state;
  assert_int_equal(jsonx_depth("42", 2), 0);
  assert_int_equal(jsonx_depth("\"[\"", 3), 0);
  assert_int_equal(jsonx_depth("", 0), 0);
}

/* ---- Value count ---- */

static void parse_accepts_value_count_equal_to_max(void **state) {
  /* The array and its three numbers: 4 values. */
  const struct jsonx_limits lim = {16, 4};
  (void)state;
  assert_accepted("[1,2,3]", &lim);
  /* Object, 1, array, 2: 4 values; keys are not values. */
  assert_accepted("{\"a\":1,\"b\":[2]}", &lim);
}

static void parse_refuses_value_count_one_over_max(void **state) {
  const struct jsonx_limits lim = {16, 4};
  (void)state;
  assert_refused("[1,2,3,4]", &lim, API_ERR_JSON_TOO_LARGE);
  assert_refused("{\"a\":1,\"b\":[2,3]}", &lim, API_ERR_JSON_TOO_LARGE);
}

static void parse_counts_empty_containers_as_values(void **state) {
  const struct jsonx_limits lim = {16, 3};
  (void)state;
  assert_accepted("[[],{}]", &lim);
  assert_refused("[[],{},[]]", &lim, API_ERR_JSON_TOO_LARGE);
}

static void parse_refuses_many_values_in_nested_arrays(void **state) {
  const struct jsonx_limits lim = {16, 100};
  char s[1024];
  size_t n = 0;
  (void)state;
  /* 1 + 10 * (1 + 10) = 111 values. */
  s[n++] = '[';
  for (int i = 0; i < 10; i++) {
    n += (size_t)snprintf(s + n, sizeof(s) - n, "%s[0,0,0,0,0,0,0,0,0,0]", i ? "," : "");
  }
  s[n++] = ']';
  s[n] = '\0';
  assert_refused(s, &lim, API_ERR_JSON_TOO_LARGE);
}

/* ---- Invalid JSON ---- */

static void parse_refuses_invalid_json_with_line_in_detail(void **state) {
  enum api_err err = API_OK;
  char detail[256] = "";
  json_t *j;
  (void)state;
  j = parse("{\"a\":1,\n\"b\":}", &roomy, &err, detail, sizeof(detail));
  assert_null(j);
  assert_int_equal(err, API_ERR_INVALID_JSON);
  assert_non_null(strstr(detail, "line"));
  assert_non_null(strstr(detail, "line 2"));
}

static void parse_refuses_truncated_and_trailing_input(void **state) {
  (void)state;
  assert_refused("{\"a\":1", &roomy, API_ERR_INVALID_JSON);
  assert_refused("{\"a\":1}}", &roomy, API_ERR_INVALID_JSON);
  assert_refused("{\"a\":1} {}", &roomy, API_ERR_INVALID_JSON);
  assert_refused("", &roomy, API_ERR_INVALID_JSON);
}

static void parse_refuses_non_json_syntax(void **state) {
  (void)state;
  assert_refused("{'a':1}", &roomy, API_ERR_INVALID_JSON);
  assert_refused("{\"a\":1,}", &roomy, API_ERR_INVALID_JSON);
  assert_refused("{\"a\":NaN}", &roomy, API_ERR_INVALID_JSON);
  assert_refused("{a:1}", &roomy, API_ERR_INVALID_JSON);
}

static void parse_refuses_invalid_utf8(void **state) {
  (void)state;
  assert_refused("{\"a\":\"\xff\"}", &roomy, API_ERR_INVALID_JSON);
  assert_refused("{\"a\":\"\xc0\xaf\"}", &roomy, API_ERR_INVALID_JSON);
}

static void parse_refuses_escaped_nul_in_string(void **state) {
  (void)state;
  assert_refused("{\"a\":\"x\\u0000y\"}", &roomy, API_ERR_INVALID_JSON);
  assert_refused("{\"a\\u0000\":1}", &roomy, API_ERR_INVALID_JSON);
}

static void parse_refuses_raw_nul_byte(void **state) {
  const char s[] = "{\"a\":\"x\0y\"}";
  enum api_err err = API_OK;
  json_t *j;
  (void)state;
  j = jsonx_parse(s, sizeof(s) - 1, &roomy, &err, NULL, 0);
  assert_null(j);
  assert_int_equal(err, API_ERR_INVALID_JSON);
}

static void member_span_finds_top_level_value_only(void **state) {
  const char s[] = "{ \"a\": {\"payload\": 1}, \"p\\\"x\": [1, \"}\"], \"payload\" : {\"sdp\": \"v=0\\r\\n}\"} , \"z\": 2}";
  size_t off, len;
  (void)state;
  assert_int_equal(jsonx_member_span(s, sizeof(s) - 1, "payload", &off, &len), 0);
  assert_int_equal(len, strlen("{\"sdp\": \"v=0\\r\\n}\"}"));
  assert_memory_equal(s + off, "{\"sdp\": \"v=0\\r\\n}\"}", len);
  assert_int_equal(jsonx_member_span(s, sizeof(s) - 1, "z", &off, &len), 0);
  assert_memory_equal(s + off, "2", len);
  assert_int_equal(jsonx_member_span(s, sizeof(s) - 1, "missing", &off, &len), -1);
  assert_int_equal(jsonx_member_span("[1,2]", 5, "payload", &off, &len), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(parse_accepts_valid_object_and_sets_ok),
    cmocka_unit_test(parse_accepts_null_detail),
    cmocka_unit_test(parse_uses_len_not_nul),
    cmocka_unit_test(parse_refuses_duplicate_key),
    cmocka_unit_test(parse_refuses_duplicate_key_in_nested_object),
    cmocka_unit_test(parse_accepts_same_key_in_sibling_objects),
    cmocka_unit_test(parse_accepts_depth_equal_to_max),
    cmocka_unit_test(parse_refuses_depth_one_over_max),
    cmocka_unit_test(parse_refuses_deep_nesting_below_jansson_limit),
    cmocka_unit_test(parse_depth_counts_siblings_once),
    cmocka_unit_test(depth_ignores_brackets_inside_strings),
    cmocka_unit_test(depth_ignores_brackets_after_escaped_quote),
    cmocka_unit_test(depth_counts_brackets_after_escaped_backslash),
    cmocka_unit_test(depth_counts_brackets_in_keys_as_string),
    cmocka_unit_test(depth_of_scalar_is_zero),
    cmocka_unit_test(parse_accepts_value_count_equal_to_max),
    cmocka_unit_test(parse_refuses_value_count_one_over_max),
    cmocka_unit_test(parse_counts_empty_containers_as_values),
    cmocka_unit_test(parse_refuses_many_values_in_nested_arrays),
    cmocka_unit_test(parse_refuses_invalid_json_with_line_in_detail),
    cmocka_unit_test(parse_refuses_truncated_and_trailing_input),
    cmocka_unit_test(parse_refuses_non_json_syntax),
    cmocka_unit_test(parse_refuses_invalid_utf8),
    cmocka_unit_test(parse_refuses_escaped_nul_in_string),
    cmocka_unit_test(parse_refuses_raw_nul_byte),
    cmocka_unit_test(member_span_finds_top_level_value_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
