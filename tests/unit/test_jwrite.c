/* Unit tests for lib/jwrite.c and the frames built with it: the JSON text
 * written by hand must be byte for byte what jansson's json_dumpb writes
 * for the same values (the chat-message payload, and whole envelopes with
 * envelope_encode_raw against envelope_encode), for strings with quotes,
 * backslashes, every control character, and UTF-8 of every length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/envelope.h"
#include "lib/jwrite.h"
#include "signal/signal.h"

static uint32_t rng_state = 88172645u;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* A random valid UTF-8 string of about n pieces into s (cap >= 4 * n + 1),
 * NUL-terminated (no NUL inside); returns its length. Pieces: plain ASCII
 * runs (long enough for the 8-byte loop), '"', '\\', '/', every control,
 * DEL, and 2-, 3- and 4-byte sequences (U+2028 among them). */
static size_t random_utf8(char *s, size_t n) {
  static const char *const multi[] = {"\xc3\xa9", "\xc2\x80", "\xdf\xbf", "\xe2\x80\xa8", "\xe2\x80\xae",
                                      "\xef\xbf\xbf", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
  size_t len = 0;
  for (size_t k = 0; k < n; k++) {
    uint32_t r = rng();
    switch (r % 6) {
    case 0: s[len++] = (char)(1 + (r >> 8) % 0x1f); break; /* a control, never NUL */
    case 1: s[len++] = "\"\\/\x7f"[(r >> 8) % 4]; break;
    case 2: {
      const char *m = multi[(r >> 8) % 8];
      memcpy(s + len, m, strlen(m));
      len += strlen(m);
      break;
    }
    default:
      s[len++] = (char)(' ' + (r >> 8) % 95);
      if (s[len - 1] == '"' || s[len - 1] == '\\') s[len - 1] = 'q';
      break;
    }
  }
  s[len] = '\0';
  return len;
}

static char *dump(json_t *j) {
  char *t = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
  assert_non_null(t);
  return t;
}

static void assert_string_as_jansson(const char *s, size_t n) {
  char *out = malloc(JWRITE_STRING_MAX(n));
  assert_non_null(out);
  size_t w = (size_t)(jwrite_string(out, s, n) - out);
  assert_true(w <= JWRITE_STRING_MAX(n));
  json_t *j = json_stringn(s, n);
  assert_non_null(j);
  char *want = dump(j);
  if (w != strlen(want) || memcmp(out, want, w) != 0) fail_msg("jwrite: %.*s\njansson: %s", (int)w, out, want);
  free(want);
  json_decref(j);
  free(out);
}

static void strings_are_escaped_as_jansson_escapes_them(void **state) {
  (void)state;
  assert_string_as_jansson("", 0);
  assert_string_as_jansson("plain text, long enough for words", 33);
  char all[0x20 + 4];
  for (int c = 1; c < 0x20; c++) all[c - 1] = (char)c;
  memcpy(all + 0x1f, "\"\\/\x7f", 4);
  assert_string_as_jansson(all, sizeof(all) - 1);
  char s[4 * 200 + 1];
  for (int round = 0; round < 5000; round++) {
    size_t len = random_utf8(s, rng() % 200);
    assert_string_as_jansson(s, len);
  }
}

static void numbers_are_written_as_jansson_writes_them(void **state) {
  (void)state;
  const uint64_t v[] = {0, 1, 9, 10, 99, 100, 12345678901234ull, (uint64_t)INT64_MAX};
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    char out[JWRITE_U64_MAX + 1];
    *jwrite_u64(out, v[i]) = '\0';
    json_t *j = json_integer((json_int_t)v[i]);
    char *want = dump(j);
    assert_string_equal(out, want);
    free(want);
    json_decref(j);
  }
}

/* What sig_chat_message built before: json_pack, reply_to added after. */
static char *chat_payload_by_tree(const char *id, const char *text, size_t text_len, const char *name, int private,
                                  const char *reply) {
  json_t *p = json_pack("{s:s,s:s%,s:s,s:b}", "message_id", id, "text", text, text_len, "sender_name", name,
                        "private", private);
  assert_non_null(p);
  if (reply) json_object_set_new(p, "reply_to", json_string(reply));
  char *t = dump(p);
  json_decref(p);
  return t;
}

static void chat_payload_is_the_tree_built_payload(void **state) {
  (void)state;
  struct buf out = {0};
  char text[4 * 300 + 1], name[4 * 20 + 1];
  for (int round = 0; round < 3000; round++) {
    size_t tl = random_utf8(text, rng() % 300);
    random_utf8(name, rng() % 20);
    char id[24];
    snprintf(id, sizeof(id), "m%u", rng());
    int private = (int)(rng() % 2);
    const char *reply = rng() % 2 ? "m42" : NULL;
    assert_int_equal(sig_chat_payload(&out, id, text, tl, name, private, reply), 0);
    char *want = chat_payload_by_tree(id, text, tl, name, private, reply);
    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
      fail_msg("hand: %s\ntree: %s", out.data, want);
    /* The whole frame too: raw payload against the tree's. */
    json_error_t je;
    json_t *tree = json_loads(want, 0, &je);
    assert_non_null(tree);
    const char *to = private ? "bob" : NULL, *ref = rng() % 2 ? text : NULL; /* a ref with anything in it */
    struct outbuf *a = envelope_encode_raw("chat-message", "room-1", "alice", to, 7, 1700000000000ull, out.data,
                                           out.len, ref);
    struct outbuf *b = envelope_encode("chat-message", "room-1", "alice", to, 7, 1700000000000ull, tree, ref);
    assert_non_null(a);
    assert_non_null(b);
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
      fail_msg("frames differ:\n%.*s\n%.*s", (int)a->len, (const char *)a->data, (int)b->len, (const char *)b->data);
    outbuf_unref(a);
    outbuf_unref(b);
    json_decref(tree);
    free(want);
  }
  buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(strings_are_escaped_as_jansson_escapes_them),
    cmocka_unit_test(numbers_are_written_as_jansson_writes_them),
    cmocka_unit_test(chat_payload_is_the_tree_built_payload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
