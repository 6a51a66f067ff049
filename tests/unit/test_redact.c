/* Unit tests for guard/redact.c: stream targets are masked by structure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guard/redact.h"

static const char *red(const char *url) {
  static char out[2048];
  return redact_stream_target(url, strlen(url), out, sizeof(out)) == 0 ? out : NULL;
}

static void keeps_application_path(void **state) {
  (void)state;
  assert_string_equal(red("rtmp://live.example.com/app/KEY"), "rtmp://live.example.com/app/****");
  assert_string_equal(red("rtmp://b.example.com/app/sub/KEY"), "rtmp://b.example.com/app/sub/****");
  assert_string_equal(red("rtmps://a.example.com:443/live2/KEY?x=SECRET"), "rtmps://a.example.com:443/live2/****?****");
  assert_string_equal(red("rtmp://h/app/KEY/"), "rtmp://h/app/****");
}

/* Defect 14: a key after '#' (or hidden in a fragment) is masked. */
static void fragment_masked(void **state) {
  (void)state;
  assert_string_equal(red("rtmp://h/app/KEY#/x"), "rtmp://h/app/****#****");
  assert_string_equal(red("rtmp://h/app/x#KEY"), "rtmp://h/app/****#****");
  assert_string_equal(red("rtmp://h/app/x?a#KEY"), "rtmp://h/app/****?****#****");
  assert_string_equal(red("rtmp://h/app/x#a?KEY"), "rtmp://h/app/****#****");
}

static void userinfo_masked(void **state) {
  (void)state;
  assert_string_equal(red("rtmp://user:PASS@h/app/KEY"), "rtmp://****@h/app/****");
}

static void shapes_refused(void **state) {
  (void)state;
  assert_null(red("http://h/app/KEY"));
  assert_null(red("rtmp://h/app"));
  assert_null(red("rtmp://h/"));
  assert_null(red("rtmp:///app/KEY"));
  assert_null(red("rtmp://h#/app/KEY"));
  assert_null(red("rtmp://h//KEY"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(keeps_application_path),
    cmocka_unit_test(fragment_masked),
    cmocka_unit_test(userinfo_masked),
    cmocka_unit_test(shapes_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
