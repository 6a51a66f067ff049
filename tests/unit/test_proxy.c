/* Unit tests for net/proxy.c: which address X-Forwarded-For names, given
 * the trusted proxies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/proxy.h"

static const char *client(const char *list, const char *xff) {
  static char out[64];
  return proxy_client_from_xff(list, xff, strlen(xff), out, sizeof(out)) == 0 ? out : NULL;
}

static void trusted_list(void **state) {
  (void)state;
  assert_true(proxy_trusted("127.0.0.1", "127.0.0.1"));
  assert_true(proxy_trusted(" 10.0.0.1 , 127.0.0.2", "127.0.0.2"));
  assert_false(proxy_trusted("127.0.0.1", "127.0.0.10"));
  assert_false(proxy_trusted("127.0.0.10", "127.0.0.1"));
  assert_false(proxy_trusted("", "127.0.0.1"));
  assert_false(proxy_trusted(NULL, "127.0.0.1"));
  assert_true(proxy_trusted("::1", "::1"));
}

static void rightmost_untrusted_wins(void **state) {
  (void)state;
  assert_string_equal(client("127.0.0.2", "203.0.113.7"), "203.0.113.7");
  /* What the client wrote itself is on the left: ignored. */
  assert_string_equal(client("127.0.0.2", "10.9.9.9, 203.0.113.7"), "203.0.113.7");
  /* A chain of our own proxies is skipped. */
  assert_string_equal(client("127.0.0.2,10.0.0.5", "198.51.100.1, 10.0.0.5"), "198.51.100.1");
  assert_string_equal(client("127.0.0.2", "2001:db8::1"), "2001:db8::1");
}

static void garbage_refused(void **state) {
  (void)state;
  assert_null(client("127.0.0.2", ""));
  assert_null(client("127.0.0.2", "unknown"));
  assert_null(client("127.0.0.2", "1.2.3.4, "));
  assert_null(client("127.0.0.2", "1.2.3.4,,"));
  assert_null(client("127.0.0.2", "1.2.3.4:80"));
  assert_null(client("127.0.0.2", "999.1.1.1"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(trusted_list),
    cmocka_unit_test(rightmost_untrusted_wins),
    cmocka_unit_test(garbage_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
