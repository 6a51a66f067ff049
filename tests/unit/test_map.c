/* Unit tests for lib/map.c: the string-keyed hash map (keys copied, values
 * borrowed). Leaks and double frees are caught by running under ASan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/map.h"

#define MANY 10000

/* Distinct non-NULL values: addresses inside this array. */
static char values[MANY];

static void key_of(int i, char *buf, size_t len) { snprintf(buf, len, "user-%d", i); }

/* ---- Empty map ---- */

static void zeroed_map_is_empty(void **state) {
  struct map m = {0};
  (void)state;
  assert_null(map_get(&m, "a"));
  assert_null(map_del(&m, "a"));
  assert_int_equal(m.count, 0);
  map_free(&m);
}

/* ---- put, get, del ---- */

static void put_then_get_returns_value(void **state) {
  struct map m = {0};
  (void)state;
  assert_int_equal(map_put(&m, "alice", &values[1]), 0);
  assert_ptr_equal(map_get(&m, "alice"), &values[1]);
  assert_int_equal(m.count, 1);
  map_free(&m);
}

static void get_misses_absent_key(void **state) {
  struct map m = {0};
  (void)state;
  map_put(&m, "alice", &values[1]);
  assert_null(map_get(&m, "bob"));
  assert_null(map_get(&m, "Alice"));
  assert_null(map_get(&m, "alic"));
  assert_null(map_get(&m, "alice2"));
  assert_null(map_get(&m, ""));
  map_free(&m);
}

static void put_copies_key(void **state) {
  struct map m = {0};
  char key[16] = "alice";
  (void)state;
  map_put(&m, key, &values[1]);
  strcpy(key, "zzzzz");
  assert_ptr_equal(map_get(&m, "alice"), &values[1]);
  assert_null(map_get(&m, "zzzzz"));
  map_free(&m);
}

static void empty_string_is_a_valid_key(void **state) {
  struct map m = {0};
  (void)state;
  assert_int_equal(map_put(&m, "", &values[2]), 0);
  assert_ptr_equal(map_get(&m, ""), &values[2]);
  assert_ptr_equal(map_del(&m, ""), &values[2]);
  assert_int_equal(m.count, 0);
  map_free(&m);
}

static void put_stores_null_value(void **state) {
  struct map m = {0};
  (void)state;
  assert_int_equal(map_put(&m, "k", NULL), 0);
  assert_int_equal(m.count, 1);
  assert_null(map_get(&m, "k"));
  map_free(&m);
}

static void put_existing_key_replaces_value(void **state) {
  struct map m = {0};
  (void)state;
  map_put(&m, "alice", &values[1]);
  assert_int_equal(map_put(&m, "alice", &values[2]), 0);
  assert_ptr_equal(map_get(&m, "alice"), &values[2]);
  assert_int_equal(m.count, 1);
  map_free(&m);
}

static void del_returns_value_and_removes_key(void **state) {
  struct map m = {0};
  (void)state;
  map_put(&m, "alice", &values[1]);
  map_put(&m, "bob", &values[2]);
  assert_ptr_equal(map_del(&m, "alice"), &values[1]);
  assert_null(map_get(&m, "alice"));
  assert_ptr_equal(map_get(&m, "bob"), &values[2]);
  assert_int_equal(m.count, 1);
  map_free(&m);
}

static void del_absent_key_returns_null(void **state) {
  struct map m = {0};
  (void)state;
  map_put(&m, "alice", &values[1]);
  assert_null(map_del(&m, "bob"));
  assert_int_equal(m.count, 1);
  assert_ptr_equal(map_del(&m, "alice"), &values[1]);
  assert_null(map_del(&m, "alice"));
  assert_int_equal(m.count, 0);
  map_free(&m);
}

static void put_after_del_adds_again(void **state) {
  struct map m = {0};
  (void)state;
  map_put(&m, "alice", &values[1]);
  map_del(&m, "alice");
  assert_int_equal(map_put(&m, "alice", &values[3]), 0);
  assert_ptr_equal(map_get(&m, "alice"), &values[3]);
  assert_int_equal(m.count, 1);
  map_free(&m);
}

/* ---- Growth ---- */

static void many_keys_survive_growth(void **state) {
  struct map m = {0};
  char key[32];
  (void)state;
  for (int i = 0; i < MANY; i++) {
    key_of(i, key, sizeof(key));
    assert_int_equal(map_put(&m, key, &values[i]), 0);
  }
  assert_int_equal(m.count, MANY);
  assert_true(m.nbuckets >= m.count); /* grown: load factor at most 1 (map.c) */
  assert_int_equal(m.nbuckets & (m.nbuckets - 1), 0); /* power of two */
  for (int i = 0; i < MANY; i++) {
    key_of(i, key, sizeof(key));
    assert_ptr_equal(map_get(&m, key), &values[i]);
  }
  assert_null(map_get(&m, "user-10000"));
  map_free(&m);
}

static void many_keys_can_all_be_deleted(void **state) {
  struct map m = {0};
  char key[32];
  (void)state;
  for (int i = 0; i < MANY; i++) {
    key_of(i, key, sizeof(key));
    map_put(&m, key, &values[i]);
  }
  /* Odd keys first, checking the even ones stay. */
  for (int i = 1; i < MANY; i += 2) {
    key_of(i, key, sizeof(key));
    assert_ptr_equal(map_del(&m, key), &values[i]);
  }
  assert_int_equal(m.count, MANY / 2);
  for (int i = 0; i < MANY; i++) {
    key_of(i, key, sizeof(key));
    if (i % 2) assert_null(map_get(&m, key));
    else assert_ptr_equal(map_get(&m, key), &values[i]);
  }
  for (int i = 0; i < MANY; i += 2) {
    key_of(i, key, sizeof(key));
    assert_ptr_equal(map_del(&m, key), &values[i]);
  }
  assert_int_equal(m.count, 0);
  map_free(&m);
}

static void replace_does_not_grow_count(void **state) {
  struct map m = {0};
  (void)state;
  for (int i = 0; i < 100; i++) map_put(&m, "same", &values[i]);
  assert_int_equal(m.count, 1);
  assert_ptr_equal(map_get(&m, "same"), &values[99]);
  map_free(&m);
}

/* ---- map_each ---- */

struct visit {
  int seen[MANY];
  int calls;
  void *arg_seen;
};

static void record_visit(const char *key, void *value, void *arg) {
  struct visit *v = arg;
  int i = (int)((char *)value - values);
  char want[32];
  assert_true(i >= 0 && i < MANY);
  key_of(i, want, sizeof(want));
  assert_string_equal(key, want);
  v->seen[i]++;
  v->calls++;
  v->arg_seen = arg;
}

static void each_visits_every_entry_once(void **state) {
  struct map m = {0};
  static struct visit v;
  char key[32];
  (void)state;
  memset(&v, 0, sizeof(v));
  for (int i = 0; i < MANY; i++) {
    key_of(i, key, sizeof(key));
    map_put(&m, key, &values[i]);
  }
  map_each(&m, record_visit, &v);
  assert_int_equal(v.calls, MANY);
  assert_ptr_equal(v.arg_seen, &v);
  for (int i = 0; i < MANY; i++)
    if (v.seen[i] != 1) fail_msg("entry %d visited %d times", i, v.seen[i]);
  map_free(&m);
}

static void each_skips_deleted_entries(void **state) {
  struct map m = {0};
  static struct visit v;
  char key[32];
  (void)state;
  memset(&v, 0, sizeof(v));
  for (int i = 0; i < 10; i++) {
    key_of(i, key, sizeof(key));
    map_put(&m, key, &values[i]);
  }
  map_del(&m, "user-3");
  map_del(&m, "user-7");
  map_each(&m, record_visit, &v);
  assert_int_equal(v.calls, 8);
  assert_int_equal(v.seen[3], 0);
  assert_int_equal(v.seen[7], 0);
  assert_int_equal(v.seen[0], 1);
  map_free(&m);
}

static void count_visit(const char *key, void *value, void *arg) {
  (void)key;
  (void)value;
  (*(int *)arg)++;
}

static void each_on_empty_map_calls_nothing(void **state) {
  struct map m = {0};
  int calls = 0;
  (void)state;
  map_each(&m, count_visit, &calls);
  assert_int_equal(calls, 0);
  map_put(&m, "a", &values[0]);
  map_del(&m, "a");
  map_each(&m, count_visit, &calls);
  assert_int_equal(calls, 0);
  map_free(&m);
}

/* ---- map_free ---- */

static void free_resets_map_for_reuse(void **state) {
  struct map m = {0};
  (void)state;
  map_put(&m, "a", &values[0]);
  map_put(&m, "b", &values[1]);
  map_free(&m);
  assert_null(m.buckets);
  assert_int_equal(m.nbuckets, 0);
  assert_int_equal(m.count, 0);
  assert_null(map_get(&m, "a"));
  assert_int_equal(map_put(&m, "c", &values[2]), 0);
  assert_ptr_equal(map_get(&m, "c"), &values[2]);
  map_free(&m);
  map_free(&m); /* idempotent */
}

static void free_leaves_values_alone(void **state) {
  /* Values are borrowed: freeing the map must not free them. */
  struct map m = {0};
  char *owned = malloc(8);
  (void)state;
  assert_non_null(owned);
  strcpy(owned, "mine");
  map_put(&m, "k", owned);
  map_free(&m);
  assert_string_equal(owned, "mine");
  free(owned);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(zeroed_map_is_empty),
    cmocka_unit_test(put_then_get_returns_value),
    cmocka_unit_test(get_misses_absent_key),
    cmocka_unit_test(put_copies_key),
    cmocka_unit_test(empty_string_is_a_valid_key),
    cmocka_unit_test(put_stores_null_value),
    cmocka_unit_test(put_existing_key_replaces_value),
    cmocka_unit_test(del_returns_value_and_removes_key),
    cmocka_unit_test(del_absent_key_returns_null),
    cmocka_unit_test(put_after_del_adds_again),
    cmocka_unit_test(many_keys_survive_growth),
    cmocka_unit_test(many_keys_can_all_be_deleted),
    cmocka_unit_test(replace_does_not_grow_count),
    cmocka_unit_test(each_visits_every_entry_once),
    cmocka_unit_test(each_skips_deleted_entries),
    cmocka_unit_test(each_on_empty_map_calls_nothing),
    cmocka_unit_test(free_resets_map_for_reuse),
    cmocka_unit_test(free_leaves_values_alone),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
