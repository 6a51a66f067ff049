/* Unit tests for lib/jscan.c (the validating scanner) and lib/utf8.c, and
 * for envelope_decode_spans: every verdict is checked against jsonx_parse,
 * the decoder it stands in for, so the scanner can never accept what the
 * tree path refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/envelope.h"
#include "lib/jscan.h"
#include "lib/jsonx.h"
#include "lib/utf8.h"

static const struct jsonx_limits lim = {16, 4096};

/* Scans s (len bytes) and checks the verdict agrees with jsonx_parse. */
static enum jscan_result scan_n(const char *s, size_t len, int depth, size_t values) {
  enum jscan_result r = jscan_scan(s, len, depth, values, NULL);
  struct jsonx_limits l = {depth, values};
  enum api_err e;
  json_t *j = jsonx_parse(s, len, &l, &e, NULL, 0);
  if (r == JSCAN_OK && j == NULL) fail_msg("scanner accepts what jsonx_parse refuses (%d): %.*s", (int)e, (int)len, s);
  if (r != JSCAN_OK && r != JSCAN_UNSURE && j != NULL) fail_msg("scanner refuses (%d) what jsonx_parse accepts: %.*s", (int)r, (int)len, s);
  json_decref(j);
  return r;
}

static enum jscan_result scan(const char *s) { return scan_n(s, strlen(s), 16, 4096); }

static void accepts_valid_json(void **state) {
  (void)state;
  const char *ok[] = {
    "{}", "[]", " {\"a\" : 1 } \r\n\t", "null", "true", "false", "0", "-0", "12.5e-3", "1E+2", "\"\"",
    "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}", "[[[]]]", "{\"\":0}", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
    "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"", "9223372036854775807",
    "-9223372036854775808", "1e-400", "{\"a\":{\"a\":{\"a\":1}}}", "[\"\x7f\"]",
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    if (scan(ok[i]) != JSCAN_OK) fail_msg("refused: %s", ok[i]);
}

static void refuses_each_malformed_class(void **state) {
  (void)state;
  const char *bad[] = {
    "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{,}", "{\"a\"}", "{\"a\" 1}", "{a:1}", "[1 2]", "{} {}", "01",
    "-", "1.", ".5", "1e", "1e+", "+1", "tru", "truex", "nul", "NaN", "Infinity", "'a'", "\"abc", "\"a\nb\"",
    "\"a\tb\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\u0000\"", "{\"a\\u0000\":1}", "\"\\uD800\"",
    "\"\\uDC00\"", "\"\\uD800\\u0041\"", "\"\\uD800x\"", "9223372036854775808", "-9223372036854775809",
    "123456789012345678901", "1e400", "-1e400", "[1]x", "\xef\xbb\xbf{}", "\"\xc3\"", "\"\xc0\xaf\"",
    "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe0\x80\xaf\"", "\xc3\xa9", "[\"a\"]]", "[}", "{]",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    enum jscan_result r = scan(bad[i]);
    if (r == JSCAN_OK || r == JSCAN_UNSURE) fail_msg("accepted (%d): %s", (int)r, bad[i]);
  }
  /* A NUL byte, in a string and outside one. */
  assert_int_equal(scan_n("\"a\0b\"", 5, 16, 4096), JSCAN_INVALID);
  assert_int_equal(scan_n("{\0}", 3, 16, 4096), JSCAN_INVALID);
  /* jansson skips one NUL right after a number or literal: left to it. */
  assert_int_equal(scan_n("[1\0]", 4, 16, 4096), JSCAN_UNSURE);
}

static void refuses_duplicate_keys_at_any_depth(void **state) {
  (void)state;
  assert_int_equal(scan("{\"a\":1,\"a\":2}"), JSCAN_DUPLICATE_KEY);
  assert_int_equal(scan("{\"p\":{\"x\":1,\"y\":{},\"x\":3}}"), JSCAN_DUPLICATE_KEY);
  assert_int_equal(scan("[{\"a\":1},{\"a\":1}]"), JSCAN_OK); /* different objects */
  assert_int_equal(scan("{\"a\":{\"a\":1},\"b\":{\"a\":1}}"), JSCAN_OK);
  /* Escaped keys compare unescaped: left to jansson. */
  assert_int_equal(scan("{\"a\":1,\"\\u0061\":2}"), JSCAN_UNSURE);
}

static void enforces_depth_and_value_limits(void **state) {
  (void)state;
  assert_int_equal(scan_n("[[[1]]]", 7, 3, 100), JSCAN_OK);
  assert_int_equal(scan_n("[[[[1]]]]", 9, 3, 100), JSCAN_TOO_DEEP);
  assert_int_equal(scan_n("{\"a\":{\"b\":{\"c\":{}}}}", 20, 3, 100), JSCAN_TOO_DEEP);
  assert_int_equal(scan_n("[1,2,3]", 7, 3, 4), JSCAN_OK);
  assert_int_equal(scan_n("[1,2,3,4]", 9, 3, 4), JSCAN_TOO_LARGE);
  /* Brackets inside strings are not nesting. */
  assert_int_equal(scan_n("[\"[[[[\"]", 8, 1, 10), JSCAN_OK);
  /* Deeper than the scanner's own stack: 1,100 arrays. */
  size_t n = 2200;
  char *deep = malloc(n);
  memset(deep, '[', n / 2);
  memset(deep + n / 2, ']', n / 2);
  assert_int_equal(jscan_scan(deep, n, 2000, 100000, NULL), JSCAN_UNSURE);
  assert_int_equal(scan_n(deep, n, 1000, 100000), JSCAN_TOO_DEEP);
  free(deep);
}

static void locates_members_and_payload_span(void **state) {
  (void)state;
  const char *s = "{ \"id\":\"m1\", \"type\":\"offer\",\"to\":\"bob\",\"x\":[{\"sdp\":1}],"
                  "\"payload\": {\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\",\"n\":{\"sdp\":2},\"i\":-7} }";
  struct jscan_value type, id, to, payload, sdp, ptype, i, absent;
  const struct jscan_key top[] = {{"type", &type}, {"id", &id}, {"to", &to}, {"payload", &payload}};
  const struct jscan_key sub[] = {{"sdp", &sdp}, {"type", &ptype}, {"i", &i}, {"none", &absent}};
  const struct jscan_query q = {top, 4, 3, sub, 4};
  assert_int_equal(jscan_scan(s, strlen(s), 16, 4096, &q), JSCAN_OK);
  assert_int_equal(type.kind, JSCAN_STRING);
  assert_int_equal(type.len, 5);
  assert_memory_equal(type.p, "offer", 5);
  assert_false(type.escaped);
  assert_int_equal(id.len, 2);
  assert_memory_equal(to.p, "bob", 3);
  assert_int_equal(payload.kind, JSCAN_OBJECT);
  assert_int_equal(payload.p[0], '{');
  assert_int_equal(payload.p[payload.len - 1], '}');
  assert_ptr_equal(payload.p, strstr(s, "{\"type\""));
  assert_int_equal(payload.len, strlen(payload.p) - 2); /* " }" follows */
  assert_int_equal(sdp.kind, JSCAN_STRING); /* the payload's own, not x[0].sdp or n.sdp */
  assert_true(sdp.escaped);
  char buf[16];
  size_t n = jscan_unescape(&sdp, buf);
  assert_int_equal(n, 5);
  assert_memory_equal(buf, "v=0\r\n", 5);
  assert_int_equal(jscan_string_len(&sdp), 5);
  assert_int_equal(i.kind, JSCAN_INTEGER);
  assert_int_equal(i.integer, -7);
  assert_int_equal(absent.kind, JSCAN_ABSENT);
  assert_int_equal(ptype.kind, JSCAN_STRING);
}

static void unescapes_escapes_and_surrogates(void **state) {
  (void)state;
  const char *s = "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00z\"";
  struct jscan_value v, *vp = &v;
  const struct jscan_key top[] = {{"k", vp}};
  char doc[128];
  snprintf(doc, sizeof(doc), "{\"k\":%s}", s);
  const struct jscan_query q = {top, 1, 1, NULL, 0};
  assert_int_equal(jscan_scan(doc, strlen(doc), 16, 4096, &q), JSCAN_OK);
  char out[128];
  size_t n = jscan_unescape(&v, out);
  const char want[] = "a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
  assert_int_equal(n, sizeof(want) - 1);
  assert_memory_equal(out, want, n);
  assert_int_equal(jscan_string_len(&v), n);
  char head[4];
  assert_int_equal(jscan_prefix(&v, head, 4), 4);
  assert_memory_equal(head, "a\"b\\", 4);
}

static void long_strings_cross_block_boundaries(void **state) {
  (void)state;
  /* Specials at every offset of a 16-byte block, and a control character
   * late in a long run. */
  for (size_t at = 0; at < 40; at++) {
    char doc[128], *p = doc;
    *p++ = '"';
    for (size_t k = 0; k < at; k++) *p++ = 'x';
    memcpy(p, "\\n\xc3\xa9", 4);
    p += 4;
    for (size_t k = 0; k < 40; k++) *p++ = 'y';
    *p++ = '"';
    assert_int_equal(scan_n(doc, (size_t)(p - doc), 16, 10), JSCAN_OK);
    doc[1 + at] = '\x01';
    assert_int_equal(scan_n(doc, (size_t)(p - doc), 16, 10), JSCAN_INVALID);
    doc[1 + at] = '"'; /* the string ends early: what follows is garbage */
    assert_int_equal(scan_n(doc, (size_t)(p - doc), 16, 10), JSCAN_INVALID);
  }
}

static void utf8_validator_matches_rfc3629(void **state) {
  (void)state;
  assert_true(utf8_valid("", 0));
  assert_true(utf8_valid("plain ascii text that is longer than sixty-four bytes, to use blocks..", 70));
  assert_true(utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 13));
  const char *bad[] = {"\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                       "\xf5\x80\x80\x80", "\xff", "\xc3", "\xe2\x82"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_false(utf8_valid(bad[i], strlen(bad[i])));
  /* A bad byte late in a long ASCII run. */
  char buf[200];
  memset(buf, 'a', sizeof(buf));
  for (size_t at = 0; at < sizeof(buf); at += 7) {
    buf[at] = (char)0xc3;
    assert_false(utf8_valid(buf, sizeof(buf))); /* a lead byte without its continuation */
    buf[at] = (char)0x80;
    assert_false(utf8_valid(buf, sizeof(buf)));
    buf[at] = 'a';
  }
  assert_true(utf8_valid(buf, sizeof(buf)));
}

/* ---- envelope_decode_spans ---- */

static int relay_type(const char *t) { return strcmp(t, "offer") == 0 || strcmp(t, "ice-candidate") == 0; }
static const char *const members[] = {"sdp", "type", "candidate", "sdpMLineIndex"};
static const struct envelope_spans spans = {relay_type, members, 4};

static void spans_decode_relay_types_without_a_tree(void **state) {
  (void)state;
  const char *s = "{\"type\":\"offer\",\"id\":\"o1\",\"to\":\"bob\",\"payload\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"}}";
  struct envelope_in in;
  char detail[256], ref[ENVELOPE_ID_MAX + 1];
  assert_int_equal(envelope_decode_spans(s, strlen(s), &lim, &spans, &in, detail, sizeof(detail), ref, sizeof(ref)),
                   API_OK);
  assert_null(in.root);
  assert_null(in.payload);
  assert_string_equal(in.type, "offer");
  assert_string_equal(in.id, "o1");
  assert_string_equal(in.to, "bob");
  assert_string_equal(ref, "o1");
  assert_int_equal(in.raw_payload_len, strlen("{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"}"));
  assert_int_equal(in.member[0].kind, JSCAN_STRING);
  assert_int_equal(in.member[2].kind, JSCAN_ABSENT);
  envelope_in_free(&in);
}

static void spans_decode_other_types_and_refusals_as_before(void **state) {
  (void)state;
  struct {
    const char *msg;
    enum api_err want;
    const char *ref;
    int tree;
  } cases[] = {
    {"{\"type\":\"chat-message\",\"payload\":{\"text\":\"hi\"}}", API_OK, "", 1},
    {"{\"type\":\"ice-candidate\",\"to\":\"bob\",\"payload\":{}}", API_OK, "", 1},          /* empty payload */
    {"{\"type\":\"ice-candidate\",\"to\":\"b\\u006fb\",\"payload\":{\"candidate\":\"\"}}", API_OK, "", 1},
    {"{\"type\":\"offer\",\"id\":\"x1\",\"to\":\"bob!\",\"payload\":{\"sdp\":\"v=0\"}}", API_ERR_INVALID_USER_ID, "x1", 0},
    {"{\"type\":\"offer\",\"id\":\"x2\",\"to\":\"bob\",\"payload\":[1]}", API_ERR_INVALID_MESSAGE, "x2", 0},
    {"{\"type\":\"offer\",\"id\":\"\",\"payload\":{\"sdp\":\"v=0\"}}", API_ERR_INVALID_MESSAGE, "", 0},
    {"{\"type\":\"offer\",\"id\":\"x3\",\"payload\":{\"sdp\":\"v=0\",\"sdp\":1}}", API_ERR_DUPLICATE_KEY, "", 0},
    {"{\"type\":\"offer\",\"payload\":{\"sdp\":\"v=0\\u0000\"}}", API_ERR_INVALID_JSON, "", 0},
    {"{\"type\":\"offer\",\"payload\":{\"a\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}", API_ERR_JSON_TOO_DEEP, "", 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct envelope_in a, b;
    char da[256], db[256], ra[ENVELOPE_ID_MAX + 1], rb[ENVELOPE_ID_MAX + 1];
    const char *m = cases[i].msg;
    enum api_err ea = envelope_decode_spans(m, strlen(m), &lim, &spans, &a, da, sizeof(da), ra, sizeof(ra));
    enum api_err eb = envelope_decode(m, strlen(m), &lim, &b, db, sizeof(db), rb, sizeof(rb));
    if (ea != cases[i].want) fail_msg("case %zu: %d, want %d", i, (int)ea, (int)cases[i].want);
    assert_int_equal(ea, eb);
    assert_string_equal(ra, rb);
    assert_string_equal(ra, cases[i].ref);
    if (ea != API_OK) assert_string_equal(da, db);
    else assert_int_equal(a.root != NULL, cases[i].tree);
    if (ea == API_OK) envelope_in_free(&a);
    if (eb == API_OK) envelope_in_free(&b);
  }
}

/* chat-message as signal.c decodes it: text and reply_to located, and
 * the same verdict, ref, detail and member values as the tree gives. */
static int chat_type(const char *t) { return strcmp(t, "chat-message") == 0; }
static const char *const chat_members[] = {"text", "reply_to"};
static const struct envelope_spans chat_spans = {chat_type, chat_members, 2};

static void spans_decode_chat_messages_as_the_tree_does(void **state) {
  (void)state;
  struct {
    const char *msg;
    enum api_err want;
    int tree;
  } cases[] = {
    {"{\"type\":\"chat-message\",\"id\":\"c1\",\"payload\":{\"text\":\"hello\"}}", API_OK, 0},
    {"{\"type\":\"chat-message\",\"id\":\"c2\",\"payload\":{\"text\":\"a \\\"q\\\" \\\\ \\/ \\n\\t\\u00e9\\ud83d\\ude00\","
     "\"reply_to\":\"m12\"}}", API_OK, 0},
    {"{\"type\":\"chat-message\",\"to\":\"bob\",\"payload\":{\"text\":\"hi\",\"reply_to\":null,\"extra\":[1,{}]}}", API_OK, 0},
    {"{\"type\":\"chat-message\",\"payload\":{\"text\":7,\"reply_to\":\"\\u006d1\"}}", API_OK, 0},
    {"{\"type\":\"chat-message\",\"payload\":{\"reply_to\":5}}", API_OK, 0},
    {"{\"type\":\"chat-message\",\"payload\":{}}", API_OK, 1},
    {"{\"type\":\"chat-message\"}", API_OK, 1},
    {"{\"type\":\"chat-message\",\"payload\":{\"t\\u0065xt\":\"escaped key\"}}", API_OK, 1},
    {"{\"type\":\"chat-message\",\"payload\":{\"text\":\"a\",\"text\":\"b\"}}", API_ERR_DUPLICATE_KEY, 0},
    {"{\"type\":\"chat-message\",\"payload\":{\"text\":\"\\u0000\"}}", API_ERR_INVALID_JSON, 0},
    {"{\"type\":\"chat-message\",\"payload\":{\"text\":\"\xc3\"}}", API_ERR_INVALID_JSON, 0},
    {"{\"type\":\"chat-message\",\"id\":7,\"payload\":{\"text\":\"x\"}}", API_ERR_INVALID_MESSAGE, 0},
    {"{\"type\":\"chat-message\",\"to\":\"b b\",\"payload\":{\"text\":\"x\"}}", API_ERR_INVALID_USER_ID, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct envelope_in a, b;
    char da[256], db[256], ra[ENVELOPE_ID_MAX + 1], rb[ENVELOPE_ID_MAX + 1];
    const char *m = cases[i].msg;
    enum api_err ea = envelope_decode_spans(m, strlen(m), &lim, &chat_spans, &a, da, sizeof(da), ra, sizeof(ra));
    enum api_err eb = envelope_decode(m, strlen(m), &lim, &b, db, sizeof(db), rb, sizeof(rb));
    if (ea != cases[i].want) fail_msg("case %zu: %d, want %d", i, (int)ea, (int)cases[i].want);
    assert_int_equal(ea, eb);
    assert_string_equal(ra, rb);
    if (ea != API_OK) {
      assert_string_equal(da, db);
      continue;
    }
    assert_int_equal(a.root != NULL, cases[i].tree);
    for (size_t k = 0; k < 2; k++) {
      const struct jscan_value *v = &a.member[k];
      json_t *j = json_object_get(b.payload, chat_members[k]);
      if (j == NULL) {
        assert_int_equal(v->kind, JSCAN_ABSENT);
      } else if (json_is_string(j)) {
        char buf[256];
        assert_int_equal(v->kind, JSCAN_STRING);
        size_t n = jscan_unescape(v, buf);
        assert_int_equal(n, json_string_length(j));
        assert_memory_equal(buf, json_string_value(j), n);
      } else if (json_is_null(j)) {
        assert_int_equal(v->kind, JSCAN_NULL);
      } else if (json_is_integer(j)) {
        assert_int_equal(v->kind, JSCAN_INTEGER);
      }
    }
    envelope_in_free(&a);
    envelope_in_free(&b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(accepts_valid_json),
    cmocka_unit_test(refuses_each_malformed_class),
    cmocka_unit_test(refuses_duplicate_keys_at_any_depth),
    cmocka_unit_test(enforces_depth_and_value_limits),
    cmocka_unit_test(locates_members_and_payload_span),
    cmocka_unit_test(unescapes_escapes_and_surrogates),
    cmocka_unit_test(long_strings_cross_block_boundaries),
    cmocka_unit_test(utf8_validator_matches_rfc3629),
    cmocka_unit_test(spans_decode_relay_types_without_a_tree),
    cmocka_unit_test(spans_decode_other_types_and_refusals_as_before),
    cmocka_unit_test(spans_decode_chat_messages_as_the_tree_does),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
