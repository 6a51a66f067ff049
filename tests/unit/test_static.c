/* Unit tests for net/static.c: the request path checks that keep static
 * files inside the web root, and the web root's resolution. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/static.h"

static int clean(const char *path, char *out, size_t out_len) {
  return static_path_clean(path, strlen(path), out, out_len);
}

static void static_path_maps_root_and_directories_to_index(void **state) {
  char out[256];
  (void)state;
  assert_int_equal(clean("/", out, sizeof(out)), 0);
  assert_string_equal(out, "index.html");
  assert_int_equal(clean("/sdk/", out, sizeof(out)), 0);
  assert_string_equal(out, "sdk/index.html");
}

static void static_path_keeps_plain_names(void **state) {
  char out[256];
  (void)state;
  assert_int_equal(clean("/app.js", out, sizeof(out)), 0);
  assert_string_equal(out, "app.js");
  assert_int_equal(clean("/sdk/src/index.js", out, sizeof(out)), 0);
  assert_string_equal(out, "sdk/src/index.js");
  assert_int_equal(clean("/a%2Db_c.d", out, sizeof(out)), 0); /* %2D is '-' */
  assert_string_equal(out, "a-b_c.d");
}

static void static_path_refuses_dot_segments_in_any_spelling(void **state) {
  char out[256];
  const char *bad[] = {"/..", "/../x.js", "/sdk/../x.js", "/%2e%2e/x.js", "/%2E./x.js", "/.%2e/x.js",
                       "/./x.js", "/sdk/.", "/.git/config", "/sdk/.hidden.js", "/%2e"};
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_int_equal(clean(bad[i], out, sizeof(out)), -1);
}

static void static_path_refuses_encoded_separators_nul_and_odd_bytes(void **state) {
  char out[256];
  const char *bad[] = {"/a%2fb.js", "/a%2Fb.js", "/a%5cb.js", "/a%00.js", "/a%0a.js", "/a b.js", "/a\\b.js",
                       "/%c3%a9.js", "/a%", "/a%2", "/a%zz.js", "//x.js", "/a//b.js", "x.js", "/a?b.js",
                       "/a:b.js", "/~root.js"};
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_int_equal(clean(bad[i], out, sizeof(out)), -1);
  /* A NUL inside the length is refused too. */
  assert_int_equal(static_path_clean("/a\0b.js", 7, out, sizeof(out)), -1);
}

static void static_path_respects_the_output_size(void **state) {
  char out[16];
  (void)state;
  assert_int_equal(clean("/abcdefghijklmnop.js", out, sizeof(out)), -1);
  assert_int_equal(clean("/abcdefgh.js", out, sizeof(out)), 0);
  assert_int_equal(clean("/abcdefg/", out, sizeof(out)), -1); /* "abcdefg/index.html" does not fit */
}

static void static_root_prefers_the_configured_directory(void **state) {
  char out[PATH_MAX];
  (void)state;
  assert_int_equal(static_root("/srv/www", out, sizeof(out)), 0);
  assert_string_equal(out, "/srv/www");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(static_path_maps_root_and_directories_to_index),
    cmocka_unit_test(static_path_keeps_plain_names),
    cmocka_unit_test(static_path_refuses_dot_segments_in_any_spelling),
    cmocka_unit_test(static_path_refuses_encoded_separators_nul_and_odd_bytes),
    cmocka_unit_test(static_path_respects_the_output_size),
    cmocka_unit_test(static_root_prefers_the_configured_directory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
