/* libFuzzer target: the validating scanner (lib/jscan.c) against the
 * decoder it stands in for. Differential, three ways:
 * - jscan_scan's verdict against jsonx_parse's (jansson) under two sets of
 *   limits: the scanner may never accept what jsonx_parse refuses, nor
 *   refuse what it accepts (JSCAN_UNSURE aside);
 * - every member the scanner locates against the tree's value (kind,
 *   unescaped string, integer; containers' spans parse to the same JSON);
 * - envelope_decode_spans against envelope_decode: the same code, ref and
 *   detail, and when decoded without a tree, the same type, id, to,
 *   payload bytes and members. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/envelope.h"
#include "lib/jscan.h"
#include "lib/jsonx.h"
#include "log.h"

__attribute__((constructor)) static void quiet(void) { log_threshold = LOG_ERROR; }

#define CHECK(cond, what)                                                                                    \
  do {                                                                                                       \
    if (!(cond)) {                                                                                           \
      fprintf(stderr, "fuzz_jscan: %s\n", what);                                                            \
      abort();                                                                                               \
    }                                                                                                        \
  } while (0)

/* v (from the scanner) holds the same value as j (from jansson). */
static void same_value(const struct jscan_value *v, json_t *j) {
  if (j == NULL) {
    CHECK(v->kind == JSCAN_ABSENT, "a member the tree lacks was located");
    return;
  }
  switch (json_typeof(j)) {
  case JSON_STRING: {
    CHECK(v->kind == JSCAN_STRING, "string kind");
    char *buf = malloc(v->len + 1);
    size_t n = jscan_unescape(v, buf);
    CHECK(n == json_string_length(j) && memcmp(buf, json_string_value(j), n) == 0, "string value");
    CHECK(jscan_string_len(v) == n, "string length");
    char head[8];
    size_t h = jscan_prefix(v, head, sizeof(head));
    CHECK(h == (n < sizeof(head) ? n : sizeof(head)) && memcmp(head, buf, h) == 0, "string prefix");
    free(buf);
    break;
  }
  case JSON_INTEGER:
    CHECK(v->kind == JSCAN_INTEGER && v->integer == (int64_t)json_integer_value(j), "integer value");
    break;
  case JSON_REAL: CHECK(v->kind == JSCAN_REAL, "real kind"); break;
  case JSON_TRUE: CHECK(v->kind == JSCAN_TRUE, "true kind"); break;
  case JSON_FALSE: CHECK(v->kind == JSCAN_FALSE, "false kind"); break;
  case JSON_NULL: CHECK(v->kind == JSCAN_NULL, "null kind"); break;
  case JSON_ARRAY:
  case JSON_OBJECT: {
    CHECK(v->kind == (json_is_object(j) ? JSCAN_OBJECT : JSCAN_ARRAY), "container kind");
    if (v->p == NULL) break; /* read from a tree (envelope_decode_spans' fallback): no span */
    json_error_t je;
    json_t *again = json_loadb(v->p, v->len, 0, &je);
    CHECK(again != NULL && json_equal(again, j), "container span");
    json_decref(again);
    break;
  }
  }
}

static void verdicts(const uint8_t *data, size_t size, int depth, size_t values) {
  struct jscan_value type, id, payload, sdp, idx;
  const struct jscan_key top[] = {{"type", &type}, {"id", &id}, {"payload", &payload}};
  const struct jscan_key sub[] = {{"sdp", &sdp}, {"sdpMLineIndex", &idx}};
  const struct jscan_query q = {top, 3, 2, sub, 2};
  enum jscan_result r = jscan_scan((const char *)data, size, depth, values, &q);
  struct jsonx_limits lim = {depth, values};
  enum api_err e;
  json_t *j = jsonx_parse((const char *)data, size, &lim, &e, NULL, 0);
  if (r == JSCAN_OK) CHECK(j != NULL, "the scanner accepted what jsonx_parse refuses");
  if (r != JSCAN_OK && r != JSCAN_UNSURE) CHECK(j == NULL, "the scanner refused what jsonx_parse accepts");
  if (r == JSCAN_DUPLICATE_KEY) CHECK(e == API_ERR_DUPLICATE_KEY || e == API_ERR_JSON_TOO_DEEP, "duplicate key");
  if (r == JSCAN_OK && json_is_object(j)) {
    same_value(&type, json_object_get(j, "type"));
    same_value(&id, json_object_get(j, "id"));
    same_value(&payload, json_object_get(j, "payload"));
    json_t *p = json_object_get(j, "payload");
    if (json_is_object(p)) {
      same_value(&sdp, json_object_get(p, "sdp"));
      same_value(&idx, json_object_get(p, "sdpMLineIndex"));
    } else {
      CHECK(sdp.kind == JSCAN_ABSENT && idx.kind == JSCAN_ABSENT, "members of a payload that is no object");
    }
  }
  json_decref(j);
}

/* The SIG_SPANS types and the members signal.c asks for. */
static int relay_type(const char *t) {
  return strcmp(t, "offer") == 0 || strcmp(t, "answer") == 0 || strcmp(t, "ice-candidate") == 0 ||
         strcmp(t, "chat-message") == 0;
}
#define NMEMBERS 7
static const char *const members[NMEMBERS] = {"sdp", "type", "candidate", "sdpMid", "sdpMLineIndex", "text", "reply_to"};
static const struct envelope_spans spans = {relay_type, members, NMEMBERS};

static void envelopes(const uint8_t *data, size_t size) {
  struct jsonx_limits lim = {16, 4096};
  struct envelope_in a, b;
  char da[256], db[256], ra[ENVELOPE_ID_MAX + 1], rb[ENVELOPE_ID_MAX + 1];
  enum api_err ea = envelope_decode_spans((const char *)data, size, &lim, &spans, &a, da, sizeof(da), ra, sizeof(ra));
  enum api_err eb = envelope_decode((const char *)data, size, &lim, &b, db, sizeof(db), rb, sizeof(rb));
  CHECK(ea == eb, "envelope verdicts differ");
  CHECK(strcmp(ra, rb) == 0, "refs differ");
  if (ea != API_OK) {
    CHECK(strcmp(da, db) == 0, "details differ");
    return;
  }
  CHECK(strcmp(a.type, b.type) == 0, "type");
  CHECK((a.id == NULL) == (b.id == NULL) && (a.id == NULL || strcmp(a.id, b.id) == 0), "id");
  CHECK((a.to == NULL) == (b.to == NULL) && (a.to == NULL || strcmp(a.to, b.to) == 0), "to");
  if (relay_type(b.type)) {
    for (size_t i = 0; i < NMEMBERS; i++) same_value(&a.member[i], json_object_get(b.payload, members[i]));
    if (a.root == NULL) {
      json_error_t je;
      json_t *p = json_loadb(a.raw_payload, a.raw_payload_len, 0, &je);
      CHECK(p != NULL && json_equal(p, b.payload), "raw payload");
      json_decref(p);
    }
  } else {
    CHECK(a.root != NULL, "a type not asked for was decoded without a tree");
  }
  envelope_in_free(&a);
  envelope_in_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  verdicts(data, size, 16, 4096);
  verdicts(data, size, 3, 24);
  envelopes(data, size);
  return 0;
}
