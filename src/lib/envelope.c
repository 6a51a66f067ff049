/* Envelope decode and encode (see envelope.h). */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "lib/ids.h"
#include "lib/envelope.h"
#include "lib/jwrite.h"

void envelope_in_free(struct envelope_in *in) {
  json_decref(in->root);
  memset(in, 0, sizeof(*in));
}

enum api_err envelope_decode(const char *data, size_t len, const struct jsonx_limits *lim,
                             struct envelope_in *out, char *detail, size_t detail_len,
                             char *ref_buf, size_t ref_len) {
  enum api_err e;
  memset(out, 0, sizeof(*out));
  if (ref_buf && ref_len) ref_buf[0] = '\0';
  json_t *root = jsonx_parse(data, len, lim, &e, detail, detail_len);
  if (root == NULL) return e;
  if (!json_is_object(root)) {
    snprintf(detail, detail_len, "a message is a JSON object");
    goto invalid;
  }
  json_t *id = json_object_get(root, "id");
  if (id) {
    if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > ENVELOPE_ID_MAX) {
      snprintf(detail, detail_len, "'id' must be a string of 1 to %d bytes", ENVELOPE_ID_MAX);
      goto invalid;
    }
    out->id = json_string_value(id);
    if (ref_buf && ref_len > json_string_length(id)) strcpy(ref_buf, out->id);
  }
  json_t *type = json_object_get(root, "type");
  if (!json_is_string(type) || json_string_length(type) == 0 ||
      json_string_length(type) > ENVELOPE_TYPE_MAX) {
    snprintf(detail, detail_len, "'type' must be a message type name");
    goto invalid;
  }
  out->type = json_string_value(type);
  json_t *to = json_object_get(root, "to");
  if (to && !json_is_null(to)) {
    if (!json_is_string(to) || !id_valid(json_string_value(to), json_string_length(to))) {
      snprintf(detail, detail_len, "'to' must be a user id");
      e = API_ERR_INVALID_USER_ID;
      goto fail;
    }
    out->to = json_string_value(to);
  }
  json_t *payload = json_object_get(root, "payload");
  if (payload == NULL || json_is_null(payload)) {
    payload = json_object();
    json_object_set_new(root, "payload", payload);
  } else if (!json_is_object(payload)) {
    snprintf(detail, detail_len, "'payload' must be an object");
    goto invalid;
  }
  out->payload = payload;
  out->root = root;
  size_t off, vlen;
  if (json_object_size(payload) > 0 && jsonx_member_span(data, len, "payload", &off, &vlen) == 0) {
    out->raw_payload = data + off;
    out->raw_payload_len = vlen;
  }
  return API_OK;
invalid:
  e = API_ERR_INVALID_MESSAGE;
fail:
  json_decref(root);
  out->id = out->type = out->to = NULL;
  return e;
}

/* ---- decoding without a tree (the relay path) ---- */

/* Copies string v's value into buf (1 to max bytes, NUL added); -1 if it is
 * not a string of that size. */
static int copy_short(const struct jscan_value *v, char *buf, size_t max) {
  if (v->kind != JSCAN_STRING) return -1;
  size_t n = v->escaped ? jscan_string_len(v) : v->len;
  if (n == 0 || n > max) return -1;
  jscan_unescape(v, buf);
  buf[n] = '\0';
  return 0;
}

/* 1 if the object whose bytes are v has no members. */
static int object_empty(const struct jscan_value *v) {
  size_t i = 1;
  while (i < v->len && (v->p[i] == ' ' || v->p[i] == '\t' || v->p[i] == '\n' || v->p[i] == '\r')) i++;
  return v->p[i] == '}';
}

/* The members sp asks for, read from a decoded tree. */
static void members_from_tree(const struct envelope_spans *sp, struct envelope_in *out) {
  for (size_t i = 0; i < sp->nmembers && i < ENVELOPE_MEMBERS_MAX; i++) {
    json_t *j = json_object_get(out->payload, sp->members[i]);
    struct jscan_value *v = &out->member[i];
    memset(v, 0, sizeof(*v));
    if (j == NULL) continue;
    switch (json_typeof(j)) {
    case JSON_STRING:
      v->kind = JSCAN_STRING;
      v->p = json_string_value(j);
      v->len = json_string_length(j);
      break;
    case JSON_INTEGER:
      v->kind = JSCAN_INTEGER;
      v->integer = (int64_t)json_integer_value(j);
      break;
    case JSON_REAL: v->kind = JSCAN_REAL; break;
    case JSON_TRUE: v->kind = JSCAN_TRUE; break;
    case JSON_FALSE: v->kind = JSCAN_FALSE; break;
    case JSON_NULL: v->kind = JSCAN_NULL; break;
    case JSON_ARRAY: v->kind = JSCAN_ARRAY; break;
    case JSON_OBJECT: v->kind = JSCAN_OBJECT; break;
    }
  }
}

enum api_err envelope_decode_spans(const char *data, size_t len, const struct jsonx_limits *lim,
                                   const struct envelope_spans *sp, struct envelope_in *out, char *detail,
                                   size_t detail_len, char *ref_buf, size_t ref_len) {
  struct jscan_value type, id, to, payload;
  const struct jscan_key top[] = {{"type", &type}, {"id", &id}, {"to", &to}, {"payload", &payload}};
  struct jscan_key sub[ENVELOPE_MEMBERS_MAX];
  size_t nsub = sp->nmembers < ENVELOPE_MEMBERS_MAX ? sp->nmembers : ENVELOPE_MEMBERS_MAX;
  for (size_t i = 0; i < nsub; i++) {
    sub[i].name = sp->members[i];
    sub[i].out = &out->member[i];
  }
  const struct jscan_query q = {top, 4, 3, sub, nsub};
  out->root = NULL;
  out->payload = NULL;
  out->id = out->to = NULL;
  if (jscan_scan(data, len, lim->max_depth, lim->max_values, &q) != JSCAN_OK) goto tree;
  /* The envelope's checks (envelope_decode's, in its words when refused). */
  if (copy_short(&type, out->type_buf, ENVELOPE_TYPE_MAX) != 0 || !sp->type_ok(out->type_buf)) goto tree;
  if (payload.kind != JSCAN_OBJECT || object_empty(&payload)) goto tree;
  if (id.kind != JSCAN_ABSENT) {
    if (copy_short(&id, out->id_buf, ENVELOPE_ID_MAX) != 0) goto tree;
    out->id = out->id_buf;
  }
  if (to.kind != JSCAN_ABSENT && to.kind != JSCAN_NULL) {
    if (to.kind != JSCAN_STRING || to.escaped || !id_valid(to.p, to.len)) goto tree;
    memcpy(out->to_buf, to.p, to.len);
    out->to_buf[to.len] = '\0';
    out->to = out->to_buf;
  }
  out->type = out->type_buf;
  out->raw_payload = payload.p;
  out->raw_payload_len = payload.len;
  if (ref_buf && ref_len) {
    ref_buf[0] = '\0';
    if (out->id && ref_len > strlen(out->id)) strcpy(ref_buf, out->id);
  }
  if (detail && detail_len) detail[0] = '\0';
  return API_OK;
tree:;
  enum api_err e = envelope_decode(data, len, lim, out, detail, detail_len, ref_buf, ref_len);
  if (e == API_OK && sp->type_ok(out->type)) members_from_tree(sp, out);
  return e;
}

/* A scratch buffer for serializing: the loop thread only, grown on demand. */
static char *scratch;
static size_t scratch_cap;

struct outbuf *envelope_encode(const char *type, const char *room, const char *from,
                               const char *to, uint64_t seq, uint64_t ts, json_t *payload,
                               const char *ref) {
  json_t *env = json_object();
  if (env == NULL) return NULL;
  json_object_set_new(env, "type", json_string(type));
  if (room) json_object_set_new(env, "room", json_string(room));
  json_object_set_new(env, "from", json_string(from));
  if (to) json_object_set_new(env, "to", json_string(to));
  json_object_set_new(env, "seq", json_integer((json_int_t)seq));
  json_object_set_new(env, "ts", json_integer((json_int_t)ts));
  json_object_set(env, "payload", payload ? payload : json_object());
  if (payload == NULL) json_decref(json_object_get(env, "payload"));
  if (ref) json_object_set_new(env, "ref", json_string(ref));
  size_t n;
  for (;;) {
    n = json_dumpb(env, scratch, scratch_cap, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (n == 0) {
      json_decref(env);
      return NULL;
    }
    if (n <= scratch_cap) break;
    char *s = realloc(scratch, n * 2);
    if (s == NULL) {
      json_decref(env);
      return NULL;
    }
    scratch = s;
    scratch_cap = n * 2;
  }
  json_decref(env);
  return outbuf_ws_frame(0x1, scratch, n);
}

/* Appends s as a JSON string (quotes and escapes, as json_dumpb writes
 * them); s is valid UTF-8. */
static void put_string(struct outbuf *b, const char *s) {
  char *p = (char *)b->data + b->len;
  b->len = (size_t)(jwrite_string(p, s, strlen(s)) - (char *)b->data);
}

static void put(struct outbuf *b, const char *s, size_t n) {
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

/* Appends v in decimal (snprintf costs more than the rest of a relay's framing). */
static void put_u64(struct outbuf *b, uint64_t v) {
  b->len = (size_t)(jwrite_u64((char *)b->data + b->len, v) - (char *)b->data);
}

struct outbuf *envelope_encode_raw(const char *type, const char *room, const char *from,
                                   const char *to, uint64_t seq, uint64_t ts, const char *payload,
                                   size_t payload_len, const char *ref) {
  /* Worst case: each string byte escaped as \u00XX (6 bytes). */
  size_t strs = strlen(type) + strlen(from) + (room ? strlen(room) : 0) + (to ? strlen(to) : 0) +
                (ref ? strlen(ref) : 0);
  size_t body = 6 * strs + payload_len + 160;
  size_t hmax = outbuf_ws_header_len(body);
  struct outbuf *b = outbuf_new(hmax + body);
  if (b == NULL) return NULL;
  b->len = hmax; /* the frame header goes in front once the length is known */
  put(b, "{\"type\":", 8);
  put_string(b, type);
  if (room) {
    put(b, ",\"room\":", 8);
    put_string(b, room);
  }
  put(b, ",\"from\":", 8);
  put_string(b, from);
  if (to) {
    put(b, ",\"to\":", 6);
    put_string(b, to);
  }
  put(b, ",\"seq\":", 7);
  put_u64(b, seq);
  put(b, ",\"ts\":", 6);
  put_u64(b, ts);
  put(b, ",\"payload\":", 11);
  put(b, payload, payload_len);
  if (ref) {
    put(b, ",\"ref\":", 7);
    put_string(b, ref);
  }
  put(b, "}", 1);
  size_t plen = b->len - hmax, h = outbuf_ws_header_len(plen);
  /* Shift the header's slot to fit: write it just before the payload. */
  size_t start = hmax - h;
  outbuf_ws_header(b->data + start, 0x1, plen);
  if (start) memmove(b->data, b->data + start, b->len - start);
  b->len -= start;
  return b;
}
