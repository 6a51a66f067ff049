/* Unit tests for signal/envelope.c (decoding client messages, encoding
 * server messages as WebSocket frames) and for the message table in
 * signal/signal.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/envelope.h"
#include "signal/signal.h"

static const struct jsonx_limits lim = {16, 4096};

/* The seed's message types, in the order its documentation lists them. */
static const char *const seed_types[] = {
  "offer", "answer", "ice-candidate", "user-joined", "user-left", "error", "room-state",
  "media-control", "screen-share-control", "chat-message", "role-updated",
  "permission-updated", "recording-control", "recording-status", "file-share-offer",
  "file-share-accept", "file-share-reject", "file-share-progress", "file-share-complete",
  "network-stats", "quality-update", "analytics-event", "participant-update",
  "room-settings-update", "hand-raise", "hand-raise-queue", "waiting-room-join",
  "waiting-room-admit", "waiting-room-reject", "reaction", "breakout-room-create",
  "breakout-room-assign", "breakout-room-close", "virtual-background-update",
  "live-stream-start", "live-stream-stop", "e2ee-key-exchange", "e2ee-ratchet-update",
};
#define NSEED (sizeof(seed_types) / sizeof(seed_types[0]))

/* ---- Helpers ---- */

static enum api_err decode(const char *s, struct envelope_in *in, char *ref, size_t ref_len) {
  char detail[256];
  return envelope_decode(s, strlen(s), &lim, in, detail, sizeof(detail), ref, ref_len);
}

/* Asserts that a refused decode left nothing behind to free or read. */
static void assert_decode_refused(const char *s, enum api_err want) {
  struct envelope_in in;
  char detail[256] = "";
  enum api_err e = envelope_decode(s, strlen(s), &lim, &in, detail, sizeof(detail), NULL, 0);
  assert_int_equal(e, want);
  assert_true(detail[0] != '\0');
  assert_null(in.root);
  assert_null(in.payload);
}

/* A string of n copies of c, malloc'd. */
static char *repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* Header length of a server frame, checking its first bytes. */
static size_t frame_header_len(const struct outbuf *b) {
  assert_true(b->len >= 2);
  assert_int_equal(b->data[0], 0x81);            /* FIN, text */
  assert_int_equal(b->data[1] & 0x80, 0);        /* unmasked */
  switch (b->data[1]) {
  case 126: return 4;
  case 127: return 10;
  default: return 2;
  }
}

/* The payload length the frame header announces. */
static uint64_t frame_payload_len(const struct outbuf *b) {
  uint64_t n = 0;
  if (b->data[1] < 126) return b->data[1];
  if (b->data[1] == 126) return ((uint64_t)b->data[2] << 8) | b->data[3];
  for (int i = 0; i < 8; i++) n = (n << 8) | b->data[2 + i];
  return n;
}

/* Checks b is one complete frame and parses its JSON. New reference. */
static json_t *frame_json(const struct outbuf *b) {
  size_t h = frame_header_len(b);
  json_error_t je;
  json_t *j;
  assert_int_equal(frame_payload_len(b), b->len - h);
  j = json_loadb((const char *)b->data + h, b->len - h, JSON_REJECT_DUPLICATES, &je);
  if (j == NULL) fail_msg("frame is not JSON: %s", je.text);
  return j;
}

/* Encodes a message whose payload is {"p":"xx..."} with pad bytes of x. */
static struct outbuf *encode_padded(size_t pad) {
  char *s = repeat('x', pad);
  json_t *payload = json_pack("{s:s}", "p", s);
  struct outbuf *b = envelope_encode("chat-message", "room-1", "alice", NULL, 7,
                                     1700000000123ULL, payload, NULL);
  assert_non_null(b);
  json_decref(payload);
  free(s);
  return b;
}

/* Encodes a message whose frame payload (the JSON) is exactly json_len bytes. */
static struct outbuf *encode_json_of_len(size_t json_len) {
  struct outbuf *b = encode_padded(0);
  size_t base = b->len - frame_header_len(b);
  outbuf_unref(b);
  assert_true(json_len >= base);
  b = encode_padded(json_len - base);
  assert_int_equal(b->len - frame_header_len(b), json_len);
  return b;
}

/* ---- Decode: accepting ---- */

static void decode_accepts_full_message(void **state) {
  struct envelope_in in;
  char ref[ENVELOPE_ID_MAX + 1];
  (void)state;
  assert_int_equal(decode("{\"type\":\"offer\",\"id\":\"m-1\",\"to\":\"bob_2\","
                          "\"payload\":{\"sdp\":\"v=0\"}}", &in, ref, sizeof(ref)), API_OK);
  assert_non_null(in.root);
  assert_string_equal(in.type, "offer");
  assert_string_equal(in.id, "m-1");
  assert_string_equal(in.to, "bob_2");
  assert_true(json_is_object(in.payload));
  assert_string_equal(json_string_value(json_object_get(in.payload, "sdp")), "v=0");
  assert_string_equal(ref, "m-1");
  envelope_in_free(&in);
  assert_null(in.root);
}

static void decode_leaves_optional_fields_null(void **state) {
  struct envelope_in in;
  char ref[ENVELOPE_ID_MAX + 1] = "stale";
  (void)state;
  assert_int_equal(decode("{\"type\":\"media-control\",\"payload\":{}}", &in, ref, sizeof(ref)),
                   API_OK);
  assert_string_equal(in.type, "media-control");
  assert_null(in.id);
  assert_null(in.to);
  assert_string_equal(ref, "");
  envelope_in_free(&in);
}

static void decode_treats_null_to_as_absent(void **state) {
  struct envelope_in in;
  (void)state;
  assert_int_equal(decode("{\"type\":\"reaction\",\"to\":null}", &in, NULL, 0), API_OK);
  assert_null(in.to);
  envelope_in_free(&in);
}

static void decode_gives_empty_object_when_payload_absent(void **state) {
  struct envelope_in in;
  (void)state;
  assert_int_equal(decode("{\"type\":\"hand-raise\"}", &in, NULL, 0), API_OK);
  assert_non_null(in.payload);
  assert_true(json_is_object(in.payload));
  assert_int_equal(json_object_size(in.payload), 0);
  envelope_in_free(&in);
}

static void decode_gives_empty_object_when_payload_null(void **state) {
  struct envelope_in in;
  (void)state;
  assert_int_equal(decode("{\"type\":\"hand-raise\",\"payload\":null}", &in, NULL, 0), API_OK);
  assert_true(json_is_object(in.payload));
  assert_int_equal(json_object_size(in.payload), 0);
  envelope_in_free(&in);
}

static void decode_accepts_id_of_64_bytes(void **state) {
  struct envelope_in in;
  char ref[ENVELOPE_ID_MAX + 1], msg[256];
  char *id = repeat('a', ENVELOPE_ID_MAX);
  (void)state;
  snprintf(msg, sizeof(msg), "{\"type\":\"offer\",\"id\":\"%s\"}", id);
  assert_int_equal(decode(msg, &in, ref, sizeof(ref)), API_OK);
  assert_string_equal(in.id, id);
  assert_string_equal(ref, id);
  envelope_in_free(&in);
  free(id);
}

static void decode_accepts_type_of_32_bytes(void **state) {
  struct envelope_in in;
  char msg[128];
  char *type = repeat('t', ENVELOPE_TYPE_MAX);
  (void)state;
  snprintf(msg, sizeof(msg), "{\"type\":\"%s\"}", type);
  assert_int_equal(decode(msg, &in, NULL, 0), API_OK);
  envelope_in_free(&in);
  free(type);
}

/* ---- Decode: refusing ---- */

static void decode_refuses_missing_type(void **state) {
  (void)state;
  assert_decode_refused("{\"id\":\"m1\",\"payload\":{}}", API_ERR_INVALID_MESSAGE);
}

static void decode_refuses_type_not_string(void **state) {
  (void)state;
  assert_decode_refused("{\"type\":42}", API_ERR_INVALID_MESSAGE);
  assert_decode_refused("{\"type\":null}", API_ERR_INVALID_MESSAGE);
  assert_decode_refused("{\"type\":[\"offer\"]}", API_ERR_INVALID_MESSAGE);
}

static void decode_refuses_empty_type(void **state) {
  (void)state;
  assert_decode_refused("{\"type\":\"\"}", API_ERR_INVALID_MESSAGE);
}

static void decode_refuses_type_of_33_bytes(void **state) {
  char msg[128];
  char *type = repeat('t', ENVELOPE_TYPE_MAX + 1);
  (void)state;
  snprintf(msg, sizeof(msg), "{\"type\":\"%s\"}", type);
  assert_decode_refused(msg, API_ERR_INVALID_MESSAGE);
  free(type);
}

static void decode_refuses_id_of_65_bytes(void **state) {
  struct envelope_in in;
  char ref[128] = "stale", msg[256];
  char *id = repeat('a', ENVELOPE_ID_MAX + 1);
  (void)state;
  snprintf(msg, sizeof(msg), "{\"type\":\"offer\",\"id\":\"%s\"}", id);
  assert_decode_refused(msg, API_ERR_INVALID_MESSAGE);
  /* An id that is not valid is not echoed back as ref. */
  assert_int_equal(decode(msg, &in, ref, sizeof(ref)), API_ERR_INVALID_MESSAGE);
  assert_string_equal(ref, "");
  free(id);
}

static void decode_refuses_id_not_string_or_empty(void **state) {
  (void)state;
  assert_decode_refused("{\"type\":\"offer\",\"id\":7}", API_ERR_INVALID_MESSAGE);
  assert_decode_refused("{\"type\":\"offer\",\"id\":\"\"}", API_ERR_INVALID_MESSAGE);
}

static void decode_refuses_to_with_invalid_characters(void **state) {
  (void)state;
  assert_decode_refused("{\"type\":\"offer\",\"to\":\"bob smith\"}", API_ERR_INVALID_USER_ID);
  assert_decode_refused("{\"type\":\"offer\",\"to\":\"../bob\"}", API_ERR_INVALID_USER_ID);
  assert_decode_refused("{\"type\":\"offer\",\"to\":\"\"}", API_ERR_INVALID_USER_ID);
}

static void decode_refuses_to_not_string(void **state) {
  (void)state;
  assert_decode_refused("{\"type\":\"offer\",\"to\":5}", API_ERR_INVALID_USER_ID);
}

static void decode_refuses_to_of_65_bytes(void **state) {
  char msg[256];
  char *to = repeat('b', ID_MAX + 1);
  (void)state;
  snprintf(msg, sizeof(msg), "{\"type\":\"offer\",\"to\":\"%s\"}", to);
  assert_decode_refused(msg, API_ERR_INVALID_USER_ID);
  free(to);
}

static void decode_refuses_payload_not_object(void **state) {
  (void)state;
  assert_decode_refused("{\"type\":\"offer\",\"payload\":[]}", API_ERR_INVALID_MESSAGE);
  assert_decode_refused("{\"type\":\"offer\",\"payload\":\"sdp\"}", API_ERR_INVALID_MESSAGE);
  assert_decode_refused("{\"type\":\"offer\",\"payload\":1}", API_ERR_INVALID_MESSAGE);
  assert_decode_refused("{\"type\":\"offer\",\"payload\":false}", API_ERR_INVALID_MESSAGE);
}

static void decode_refuses_message_not_object(void **state) {
  (void)state;
  assert_decode_refused("[{\"type\":\"offer\"}]", API_ERR_INVALID_MESSAGE);
}

static void decode_passes_json_errors_through(void **state) {
  const struct jsonx_limits shallow = {2, 4096};
  struct envelope_in in;
  char detail[128];
  const char *deep = "{\"type\":\"offer\",\"payload\":{\"a\":{\"b\":1}}}";
  (void)state;
  assert_decode_refused("{\"type\":", API_ERR_INVALID_JSON);
  assert_decode_refused("{\"type\":\"offer\",\"type\":\"answer\"}", API_ERR_DUPLICATE_KEY);
  assert_int_equal(envelope_decode(deep, strlen(deep), &shallow, &in, detail, sizeof(detail),
                                   NULL, 0), API_ERR_JSON_TOO_DEEP);
  assert_null(in.root);
}

/* Every refusal frees root, so type, id and to must not point into it. */
static void assert_no_borrowed_pointers_after(const char *s) {
  struct envelope_in in;
  assert_int_not_equal(decode(s, &in, NULL, 0), API_OK);
  assert_null(in.root);
  assert_null(in.type);
  assert_null(in.id);
  assert_null(in.to);
  assert_null(in.payload);
}

static void decode_invalid_payload_leaves_no_borrowed_pointers(void **state) {
  (void)state;
  assert_no_borrowed_pointers_after("{\"type\":\"offer\",\"id\":\"m1\",\"payload\":[]}");
}

static void decode_invalid_to_leaves_no_borrowed_pointers(void **state) {
  (void)state;
  assert_no_borrowed_pointers_after("{\"type\":\"offer\",\"id\":\"m1\",\"to\":\"bad id\"}");
}

/* ---- Decode: ref ---- */

static void decode_copies_id_to_ref_when_payload_invalid(void **state) {
  struct envelope_in in;
  char ref[ENVELOPE_ID_MAX + 1] = "";
  (void)state;
  assert_int_equal(decode("{\"type\":\"offer\",\"id\":\"req-42\",\"payload\":[1]}", &in, ref,
                          sizeof(ref)), API_ERR_INVALID_MESSAGE);
  assert_string_equal(ref, "req-42");
}

static void decode_copies_id_to_ref_when_type_missing(void **state) {
  struct envelope_in in;
  char ref[ENVELOPE_ID_MAX + 1] = "";
  (void)state;
  assert_int_equal(decode("{\"id\":\"req-43\"}", &in, ref, sizeof(ref)), API_ERR_INVALID_MESSAGE);
  assert_string_equal(ref, "req-43");
}

static void decode_copies_id_to_ref_when_to_invalid(void **state) {
  struct envelope_in in;
  char ref[ENVELOPE_ID_MAX + 1] = "";
  (void)state;
  assert_int_equal(decode("{\"type\":\"offer\",\"id\":\"req-44\",\"to\":\"a b\"}", &in, ref,
                          sizeof(ref)), API_ERR_INVALID_USER_ID);
  assert_string_equal(ref, "req-44");
}

static void decode_clears_ref_when_json_invalid(void **state) {
  struct envelope_in in;
  char ref[ENVELOPE_ID_MAX + 1] = "stale";
  (void)state;
  assert_int_equal(decode("{\"id\":\"req-45\",", &in, ref, sizeof(ref)), API_ERR_INVALID_JSON);
  assert_string_equal(ref, "");
}

static void decode_does_not_overflow_small_ref_buf(void **state) {
  struct envelope_in in;
  char ref[8];
  (void)state;
  memset(ref, 'Z', sizeof(ref));
  assert_int_equal(decode("{\"type\":\"offer\",\"id\":\"a-longer-id\",\"payload\":1}", &in, ref,
                          4), API_ERR_INVALID_MESSAGE);
  assert_string_equal(ref, "");
  assert_int_equal(ref[4], 'Z');
}

/* ---- Encode ---- */

static void encode_produces_text_frame_with_all_fields(void **state) {
  json_t *payload = json_pack("{s:s}", "sdp", "v=0");
  struct outbuf *b = envelope_encode("offer", "room-1", "alice", "bob", 42, 1700000000123ULL,
                                     payload, "m-1");
  json_t *j;
  (void)state;
  assert_non_null(b);
  assert_int_equal(b->refs, 1);
  assert_int_equal(frame_header_len(b), 2);
  j = frame_json(b);
  assert_string_equal(json_string_value(json_object_get(j, "type")), "offer");
  assert_string_equal(json_string_value(json_object_get(j, "room")), "room-1");
  assert_string_equal(json_string_value(json_object_get(j, "from")), "alice");
  assert_string_equal(json_string_value(json_object_get(j, "to")), "bob");
  assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
  assert_int_equal(json_integer_value(json_object_get(j, "ts")), 1700000000123LL);
  assert_true(json_equal(json_object_get(j, "payload"), payload));
  assert_string_equal(json_string_value(json_object_get(j, "ref")), "m-1");
  assert_int_equal(json_object_size(j), 8);
  json_decref(j);
  outbuf_unref(b);
  json_decref(payload);
}

static void encode_omits_to_and_ref_when_null(void **state) {
  json_t *payload = json_object();
  struct outbuf *b = envelope_encode("user-joined", "room-1", "server", NULL, 1, 2, payload,
                                     NULL);
  json_t *j;
  (void)state;
  assert_non_null(b);
  j = frame_json(b);
  assert_null(json_object_get(j, "to"));
  assert_null(json_object_get(j, "ref"));
  assert_non_null(json_object_get(j, "type"));
  assert_non_null(json_object_get(j, "room"));
  assert_non_null(json_object_get(j, "from"));
  assert_non_null(json_object_get(j, "seq"));
  assert_non_null(json_object_get(j, "ts"));
  assert_true(json_is_object(json_object_get(j, "payload")));
  assert_int_equal(json_object_size(j), 6);
  json_decref(j);
  outbuf_unref(b);
  json_decref(payload);
}

static void encode_writes_empty_payload_when_null(void **state) {
  struct outbuf *b = envelope_encode("user-left", "room-1", "server", NULL, 3, 4, NULL, NULL);
  json_t *j;
  (void)state;
  assert_non_null(b);
  j = frame_json(b);
  assert_true(json_is_object(json_object_get(j, "payload")));
  assert_int_equal(json_object_size(json_object_get(j, "payload")), 0);
  json_decref(j);
  outbuf_unref(b);
}

static void encode_borrows_payload(void **state) {
  json_t *payload = json_pack("{s:i}", "n", 1);
  size_t before = payload->refcount;
  struct outbuf *b = envelope_encode("reaction", "r", "alice", NULL, 1, 1, payload, NULL);
  (void)state;
  assert_non_null(b);
  assert_int_equal(payload->refcount, before);
  outbuf_unref(b);
  json_decref(payload);
}

static void encode_is_compact_json(void **state) {
  json_t *payload = json_pack("{s:[i,i]}", "a", 1, 2);
  struct outbuf *b = envelope_encode("quality-update", "r", "a", NULL, 1, 1, payload, NULL);
  size_t h;
  (void)state;
  assert_non_null(b);
  h = frame_header_len(b);
  assert_null(memchr(b->data + h, '\n', b->len - h));
  assert_null(memchr(b->data + h, ' ', b->len - h));
  outbuf_unref(b);
  json_decref(payload);
}

static void encode_uses_7bit_length_up_to_125(void **state) {
  struct outbuf *b = encode_json_of_len(125);
  json_t *j;
  (void)state;
  assert_int_equal(b->data[0], 0x81);
  assert_int_equal(b->data[1], 125);
  assert_int_equal(b->len, 2 + 125);
  j = frame_json(b);
  json_decref(j);
  outbuf_unref(b);
}

static void encode_uses_16bit_length_from_126(void **state) {
  struct outbuf *b = encode_json_of_len(126);
  json_t *j;
  (void)state;
  assert_int_equal(b->data[0], 0x81);
  assert_int_equal(b->data[1], 126);
  assert_int_equal(b->data[2], 0x00);
  assert_int_equal(b->data[3], 126);
  assert_int_equal(b->len, 4 + 126);
  j = frame_json(b);
  json_decref(j);
  outbuf_unref(b);
}

static void encode_uses_16bit_length_up_to_65535(void **state) {
  struct outbuf *b = encode_json_of_len(65535);
  json_t *j;
  (void)state;
  assert_int_equal(b->data[0], 0x81);
  assert_int_equal(b->data[1], 126);
  assert_int_equal(b->data[2], 0xff);
  assert_int_equal(b->data[3], 0xff);
  assert_int_equal(b->len, 4 + 65535);
  j = frame_json(b);
  json_decref(j);
  outbuf_unref(b);
}

static void encode_uses_64bit_length_from_65536(void **state) {
  struct outbuf *b = encode_json_of_len(65536);
  static const unsigned char want[10] = {0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
  json_t *j;
  (void)state;
  assert_memory_equal(b->data, want, sizeof(want));
  assert_int_equal(b->len, 10 + 65536);
  j = frame_json(b);
  json_decref(j);
  outbuf_unref(b);
}

static void encode_handles_large_payload(void **state) {
  struct outbuf *b = encode_padded(300000);
  json_t *j;
  (void)state;
  assert_int_equal(b->data[1], 127);
  j = frame_json(b);
  assert_int_equal(json_string_length(json_object_get(json_object_get(j, "payload"), "p")),
                   300000);
  json_decref(j);
  outbuf_unref(b);
}

static void encode_after_large_message_still_frames_small_one(void **state) {
  /* The serializer reuses a grown scratch buffer. */
  struct outbuf *big = encode_padded(100000), *small;
  (void)state;
  small = envelope_encode("user-left", "r", "server", NULL, 9, 9, NULL, NULL);
  assert_non_null(small);
  assert_true(small->data[1] < 126);
  assert_int_equal(small->len, 2u + small->data[1]);
  json_decref(frame_json(small));
  assert_int_equal(big->data[1], 127); /* unaffected */
  json_decref(frame_json(big));
  outbuf_unref(small);
  outbuf_unref(big);
}

/* ---- Message table ---- */

static void table_has_38_rows(void **state) {
  (void)state;
  assert_int_equal(NSEED, 38);
  assert_int_equal(signal_type_count(), 38);
  assert_null(signal_type_at(signal_type_count()));
}

static void table_is_sorted_strictly_by_strcmp(void **state) {
  (void)state;
  for (size_t i = 1; i < signal_type_count(); i++) {
    const char *a = signal_type_at(i - 1)->name, *b = signal_type_at(i)->name;
    if (strcmp(a, b) >= 0) fail_msg("rows %zu and %zu out of order: '%s' '%s'", i - 1, i, a, b);
  }
}

static void table_contains_every_seed_type(void **state) {
  (void)state;
  for (size_t i = 0; i < NSEED; i++) {
    size_t j;
    for (j = 0; j < signal_type_count(); j++)
      if (strcmp(signal_type_at(j)->name, seed_types[i]) == 0) break;
    if (j == signal_type_count()) fail_msg("missing from table: %s", seed_types[i]);
  }
}

static void table_has_no_type_outside_seed(void **state) {
  (void)state;
  for (size_t j = 0; j < signal_type_count(); j++) {
    size_t i;
    for (i = 0; i < NSEED; i++)
      if (strcmp(signal_type_at(j)->name, seed_types[i]) == 0) break;
    if (i == NSEED) fail_msg("not a seed type: %s", signal_type_at(j)->name);
  }
}

static void find_returns_row_for_each_seed_type(void **state) {
  (void)state;
  for (size_t i = 0; i < NSEED; i++) {
    const struct sig_type *t = signal_type_find(seed_types[i]);
    if (t == NULL) fail_msg("signal_type_find(\"%s\") is NULL", seed_types[i]);
    assert_string_equal(t->name, seed_types[i]);
  }
}

static void find_returns_null_for_unknown_type(void **state) {
  (void)state;
  assert_null(signal_type_find(""));
  assert_null(signal_type_find("unknown"));
  assert_null(signal_type_find("Offer"));
  assert_null(signal_type_find("offer "));
  assert_null(signal_type_find("offe"));
  assert_null(signal_type_find("aaa"));
  assert_null(signal_type_find("zzz"));
  assert_null(signal_type_find("ice_candidate"));
}

static void encode_raw_matches_encode_for_the_same_payload(void **state) {
  (void)state;
  json_t *pl = json_pack("{s:s,s:s}", "type", "offer", "sdp", "v=0\r\n\"q\"");
  char *text = json_dumps(pl, JSON_COMPACT | JSON_PRESERVE_ORDER);
  struct outbuf *a = envelope_encode("offer", "r1", "alice", "bob", 7, 99, pl, "c\"1");
  struct outbuf *b = envelope_encode_raw("offer", "r1", "alice", "bob", 7, 99, text, strlen(text), "c\"1");
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(a->len, b->len);
  assert_memory_equal(a->data, b->data, a->len);
  /* A payload large enough for a 4-byte frame header. */
  char *big = malloc(70000);
  memset(big, 'x', 70000);
  big[0] = '"';
  big[69999] = '"';
  struct outbuf *c = envelope_encode_raw("offer", "r1", "alice", NULL, 1, 2, big, 70000, NULL);
  assert_non_null(c);
  assert_int_equal(c->data[0], 0x81);
  assert_int_equal(c->data[1], 127);
  json_error_t je;
  json_t *back = json_loadb((const char *)c->data + 10, c->len - 10, 0, &je);
  assert_non_null(back);
  assert_int_equal(json_string_length(json_object_get(back, "payload")), 69998);
  json_decref(back);
  free(big);
  outbuf_unref(a);
  outbuf_unref(b);
  outbuf_unref(c);
  free(text);
  json_decref(pl);
}

static void decode_keeps_the_raw_payload_span(void **state) {
  (void)state;
  const char m[] = "{\"type\":\"offer\",\"to\":\"bob\",\"payload\": {\"sdp\":\"v=0\"} }";
  struct envelope_in in;
  char detail[100], ref[70];
  assert_int_equal(envelope_decode(m, sizeof(m) - 1, &lim, &in, detail, sizeof(detail), ref, sizeof(ref)), API_OK);
  assert_non_null(in.raw_payload);
  assert_int_equal(in.raw_payload_len, strlen("{\"sdp\":\"v=0\"}"));
  assert_memory_equal(in.raw_payload, "{\"sdp\":\"v=0\"}", in.raw_payload_len);
  envelope_in_free(&in);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(decode_accepts_full_message),
    cmocka_unit_test(decode_leaves_optional_fields_null),
    cmocka_unit_test(decode_treats_null_to_as_absent),
    cmocka_unit_test(decode_gives_empty_object_when_payload_absent),
    cmocka_unit_test(decode_gives_empty_object_when_payload_null),
    cmocka_unit_test(decode_accepts_id_of_64_bytes),
    cmocka_unit_test(decode_accepts_type_of_32_bytes),
    cmocka_unit_test(decode_refuses_missing_type),
    cmocka_unit_test(decode_refuses_type_not_string),
    cmocka_unit_test(decode_refuses_empty_type),
    cmocka_unit_test(decode_refuses_type_of_33_bytes),
    cmocka_unit_test(decode_refuses_id_of_65_bytes),
    cmocka_unit_test(decode_refuses_id_not_string_or_empty),
    cmocka_unit_test(decode_refuses_to_with_invalid_characters),
    cmocka_unit_test(decode_refuses_to_not_string),
    cmocka_unit_test(decode_refuses_to_of_65_bytes),
    cmocka_unit_test(decode_refuses_payload_not_object),
    cmocka_unit_test(decode_refuses_message_not_object),
    cmocka_unit_test(decode_passes_json_errors_through),
    cmocka_unit_test(decode_invalid_payload_leaves_no_borrowed_pointers),
    cmocka_unit_test(decode_invalid_to_leaves_no_borrowed_pointers),
    cmocka_unit_test(decode_copies_id_to_ref_when_payload_invalid),
    cmocka_unit_test(decode_copies_id_to_ref_when_type_missing),
    cmocka_unit_test(decode_copies_id_to_ref_when_to_invalid),
    cmocka_unit_test(decode_clears_ref_when_json_invalid),
    cmocka_unit_test(decode_does_not_overflow_small_ref_buf),
    cmocka_unit_test(encode_produces_text_frame_with_all_fields),
    cmocka_unit_test(encode_omits_to_and_ref_when_null),
    cmocka_unit_test(encode_writes_empty_payload_when_null),
    cmocka_unit_test(encode_borrows_payload),
    cmocka_unit_test(encode_is_compact_json),
    cmocka_unit_test(encode_uses_7bit_length_up_to_125),
    cmocka_unit_test(encode_uses_16bit_length_from_126),
    cmocka_unit_test(encode_uses_16bit_length_up_to_65535),
    cmocka_unit_test(encode_uses_64bit_length_from_65536),
    cmocka_unit_test(encode_handles_large_payload),
    cmocka_unit_test(encode_after_large_message_still_frames_small_one),
    cmocka_unit_test(table_has_38_rows),
    cmocka_unit_test(table_is_sorted_strictly_by_strcmp),
    cmocka_unit_test(table_contains_every_seed_type),
    cmocka_unit_test(table_has_no_type_outside_seed),
    cmocka_unit_test(find_returns_row_for_each_seed_type),
    cmocka_unit_test(find_returns_null_for_unknown_type),
    cmocka_unit_test(encode_raw_matches_encode_for_the_same_payload),
    cmocka_unit_test(decode_keeps_the_raw_payload_span),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
