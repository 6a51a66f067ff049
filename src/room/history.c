/* Room history registry (see history.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ids.h"
#include "room/history.h"

/* An event in one allocation: the fixed fields, then the strings sized to
 * fit: the type unless it is one of common_types, "user_id\0name\0", and
 * the data's JSON text with its NUL when there is data. A join in scenario 1
 * is 39 bytes (malloc's 48-byte chunk). */
struct event_rec {
  uint64_t ts;
  int64_t value;
  uint32_t data_len;
  uint8_t user_off, name_off;      /* where user_id and name start in text */
  uint8_t type_idx;                /* 1 + index in common_types; 0: the type starts text */
  uint8_t has_data;                /* data follows name */
  char text[];
};

#define EVENT_TYPE_MAX 23          /* longer types are cut (as the 24-byte array did) */

/* The types most events have, stored as an index. */
static const char *const common_types[] = {"join", "leave", "chat", "reaction", "quality", "custom",
                                           "file_offer", "file_complete", "auto_host", "host_handoff"};

static size_t rec_size(const struct event_rec *r) {
  size_t n = r->name_off + strlen(r->text + r->name_off) + 1u;
  return sizeof(*r) + n + (r->has_data ? r->data_len + 1u : 0);
}

/* The reader's view of r. */
static void rec_view(const struct event_rec *r, struct analytics_event *e) {
  e->ts = r->ts;
  e->type = r->type_idx ? common_types[r->type_idx - 1] : r->text;
  e->user_id = r->text + r->user_off;
  e->name = r->text + r->name_off;
  e->value = r->value;
  e->data = r->has_data ? e->name + strlen(e->name) + 1 : NULL;
  e->data_len = r->data_len;
}

/* The i-th held record, oldest first. */
static const struct event_rec *ring_at(const struct event_ring *ring, size_t i) {
  return ring->ev[(ring->head + ring->cap - ring->count + i) % ring->cap];
}

static void ring_free(struct event_ring *ring) {
  for (size_t i = 0; i < ring->count; i++) free((void *)ring_at(ring, i));
  free(ring->ev);
}

static void history_free(struct room_history *h) {
  if (h->prev) history_free(h->prev);
  ring_free(&h->events);
  ring_free(&h->audit);
  free(h->recordings);
  free(h->messages_by_type);
  for (size_t i = 0; i < h->nstreams; i++) {
    free(h->streams[i].target);
    free(h->streams[i].target_redacted);
  }
  free(h->streams);
  free(h);
}

struct room_history *history_find(struct history_registry *reg, const char *room_id) {
  return map_get(&reg->rooms, room_id);
}

struct room_history *history_get_or_create(struct history_registry *reg, const char *room_id,
                                           uint64_t now_ms) {
  struct room_history *old = map_get(&reg->rooms, room_id);
  if (old && old->closed_ms == 0) return old;
  struct room_history *h = calloc(1, sizeof(*h));
  if (h == NULL) return NULL;
  snprintf(h->room_id, sizeof(h->room_id), "%s", room_id);
  snprintf(h->family, sizeof(h->family), "%s", room_id);
  h->created_ms = now_ms;
  h->session = old ? old->session + 1 : 1;
  if (map_put(&reg->rooms, room_id, h) != 0) {
    free(h);
    return NULL;
  }
  if (old) {
    /* A new session starts clean; the closed one is kept for admins. */
    reg->closed_bytes -= old->closed_bytes;
    old->closed_bytes = 0;
    h->prev = old;
    struct room_history *p = old;
    for (unsigned k = 1; p->prev && k + 1 < HISTORY_SESSIONS_KEPT; k++) p = p->prev;
    if (p->prev) {
      history_free(p->prev);
      p->prev = NULL;
    }
  }
  return h;
}

void history_origin(struct room_history *h, const char *creator, const char *family) {
  if (h == NULL) return;
  if (creator) snprintf(h->creator, sizeof(h->creator), "%s", creator);
  if (family) snprintf(h->family, sizeof(h->family), "%s", family);
}

static size_t ring_bytes(const struct event_ring *ring) {
  size_t n = ring->cap * sizeof(ring->ev[0]);
  for (size_t i = 0; i < ring->count; i++) n += rec_size(ring->ev[i]);
  return n;
}

size_t history_bytes(const struct room_history *h) {
  size_t n = sizeof(*h) + (h->messages_by_type ? HISTORY_MSG_TYPES * sizeof(uint64_t) : 0) +
             ring_bytes(&h->events) + ring_bytes(&h->audit) +
             h->cap_recordings * sizeof(h->recordings[0]) + h->cap_streams * sizeof(h->streams[0]);
  for (size_t i = 0; i < h->nstreams; i++)
    n += strlen(h->streams[i].target) + strlen(h->streams[i].target_redacted) + 2;
  return n + (h->prev ? history_bytes(h->prev) : 0);
}

void history_totals(const struct room_history *h, struct room_history *out) {
  memset(out, 0, sizeof(*out));
  snprintf(out->room_id, sizeof(out->room_id), "%s", h->room_id);
  out->closed_ms = h->closed_ms;
  out->session = h->session;
  for (const struct room_history *x = h; x; x = x->prev) {
    out->created_ms = x->created_ms;
    out->sessions += x->sessions;
    out->closed_session_ms += x->closed_session_ms;
    if (x->peak > out->peak) out->peak = x->peak;
    for (size_t i = 0; x->messages_by_type && i < HISTORY_MSG_TYPES; i++) {
      if (out->messages_by_type == NULL) out->messages_by_type = calloc(HISTORY_MSG_TYPES, sizeof(uint64_t));
      if (out->messages_by_type) out->messages_by_type[i] += x->messages_by_type[i];
    }
    for (int b = 0; b < QUALITY__COUNT; b++) out->quality[b] += x->quality[b];
    out->custom_events += x->custom_events;
    out->nrecordings += x->nrecordings;
    out->nstreams += x->nstreams;
  }
}

void history_count_message(struct room_history *h, int type) {
  if (h == NULL || type < 0 || type >= HISTORY_MSG_TYPES) return;
  if (h->messages_by_type == NULL && (h->messages_by_type = calloc(HISTORY_MSG_TYPES, sizeof(uint64_t))) == NULL)
    return;
  h->messages_by_type[type]++;
}

uint64_t history_messages(const struct room_history *h, int type) {
  if (h == NULL || h->messages_by_type == NULL || type < 0 || type >= HISTORY_MSG_TYPES) return 0;
  return h->messages_by_type[type];
}

struct room_history *history_session(struct room_history *h, unsigned n) {
  for (; h; h = h->prev)
    if (n == 0 || h->session == n) return h;
  return NULL;
}

/* The closed histories matching a filter: how many, their bytes, the oldest. */
struct oldest {
  const char *creator, *family;   /* NULL: any */
  struct room_history *h;
  size_t closed, bytes;
};

static void find_oldest(const char *key, void *value, void *arg) {
  struct room_history *h = value;
  struct oldest *o = arg;
  if (h->closed_ms == 0) return;
  if (o->creator && strcmp(h->creator, o->creator) != 0) return;
  if (o->family && strcmp(h->family, o->family) != 0) return;
  o->closed++;
  o->bytes += h->closed_bytes;
  if (o->h == NULL || h->closed_ms < o->h->closed_ms) o->h = h;
}

/* Evicts the oldest matching closed histories while over max_count or max_bytes (0: none). */
static void evict(struct history_registry *reg, const char *creator, const char *family, size_t max_count,
                  size_t max_bytes) {
  for (;;) {
    struct oldest o = {creator, family, NULL, 0, 0};
    map_each(&reg->rooms, find_oldest, &o);
    if (o.h == NULL || (o.closed <= max_count && (max_bytes == 0 || o.bytes <= max_bytes))) break;
    if (reg->on_evict) reg->on_evict(reg->evict_arg, o.h->room_id);
    map_del(&reg->rooms, o.h->room_id);
    reg->closed_bytes -= o.h->closed_bytes;
    history_free(o.h);
  }
}

/* Closed-history count and bytes per creator, to find the biggest holder. */
struct holder { char creator[ID_MAX + 1]; size_t count, bytes; };
struct holders { struct holder *v; size_t n, cap; size_t closed, bytes; };

static void tally(const char *key, void *value, void *arg) {
  struct room_history *h = value;
  struct holders *hs = arg;
  if (h->closed_ms == 0) return;
  hs->closed++;
  hs->bytes += h->closed_bytes;
  for (size_t i = 0; i < hs->n; i++) {
    if (strcmp(hs->v[i].creator, h->creator) == 0) {
      hs->v[i].count++;
      hs->v[i].bytes += h->closed_bytes;
      return;
    }
  }
  if (hs->n == hs->cap) {
    size_t cap = hs->cap ? hs->cap * 2 : 16;
    struct holder *nv = realloc(hs->v, cap * sizeof(*nv));
    if (nv == NULL) return;
    hs->v = nv;
    hs->cap = cap;
  }
  struct holder *x = &hs->v[hs->n++];
  snprintf(x->creator, sizeof(x->creator), "%s", h->creator);
  x->count = 1;
  x->bytes = h->closed_bytes;
}

/* Over the global bounds: the creator holding the most (closed rooms, or
 * bytes when over the byte bound) gives up its oldest, so one user's
 * activity evicts its own records before anyone else's. */
static void evict_global(struct history_registry *reg) {
  for (;;) {
    struct holders hs = {NULL, 0, 0, 0, 0};
    map_each(&reg->rooms, tally, &hs);
    int over_count = hs.closed > reg->max_rooms, over_bytes = reg->max_bytes && hs.bytes > reg->max_bytes;
    struct holder *big = NULL;
    for (size_t i = 0; i < hs.n && (over_count || over_bytes); i++) {
      size_t a = over_count ? hs.v[i].count : hs.v[i].bytes;
      if (big == NULL || a > (over_count ? big->count : big->bytes)) big = &hs.v[i];
    }
    char creator[ID_MAX + 1] = "";
    if (big) snprintf(creator, sizeof(creator), "%s", big->creator);
    free(hs.v);
    if (big == NULL) break;
    struct oldest o = {creator, NULL, NULL, 0, 0};
    map_each(&reg->rooms, find_oldest, &o);
    if (o.h == NULL) break;
    if (reg->on_evict) reg->on_evict(reg->evict_arg, o.h->room_id);
    map_del(&reg->rooms, o.h->room_id);
    reg->closed_bytes -= o.h->closed_bytes;
    history_free(o.h);
  }
}

void history_close(struct history_registry *reg, struct room_history *h, uint64_t now_ms) {
  h->closed_ms = now_ms ? now_ms : 1;
  h->closed_bytes = history_bytes(h);
  reg->closed_bytes += h->closed_bytes;
  char creator[ID_MAX + 1], family[ID_MAX + 1];
  snprintf(creator, sizeof(creator), "%s", h->creator);
  snprintf(family, sizeof(family), "%s", h->family);
  size_t share = reg->max_bytes / HISTORY_CREATOR_SHARE;
  if (share < HISTORY_CREATOR_MIN_BYTES) share = HISTORY_CREATOR_MIN_BYTES;
  if (creator[0]) evict(reg, creator, NULL, HISTORY_PER_CREATOR, reg->max_bytes ? share : 0);
  evict(reg, NULL, family, HISTORY_PER_FAMILY, 0);
  evict_global(reg);
}

static void free_one(const char *key, void *value, void *arg) { history_free(value); }

void history_registry_free(struct history_registry *reg) {
  map_each(&reg->rooms, free_one, NULL);
  map_free(&reg->rooms);
}

/* ---- analytics events ---- */

static history_sink_cb sink;
static void *sink_arg;

void history_sink_set(history_sink_cb cb, void *arg) {
  sink = cb;
  sink_arg = arg;
}

/* Appends an event (data is consumed) and fills *view; NULL on failure. */
static struct event_rec *ring_add(struct event_ring *ring, uint64_t now_ms, const char *type,
                                  const char *user_id, const char *name, int64_t value, json_t *data,
                                  struct analytics_event *view) {
  if (ring->count == ring->cap && ring->cap < HISTORY_EVENTS) {
    /* Grow the ring by half (less slack than doubling: one a room); while
     * it is growing it has never wrapped. */
    size_t cap = ring->cap ? ring->cap + ring->cap / 2 : 16;
    if (cap > HISTORY_EVENTS) cap = HISTORY_EVENTS;
    struct event_rec **ev = realloc(ring->ev, cap * sizeof(*ev));
    if (ev == NULL) {
      json_decref(data);
      return NULL;
    }
    ring->ev = ev;
    ring->head = ring->count;
    ring->cap = cap;
  }
  /* Data is stored as compact JSON text: about its own size, not jansson's tree. */
  char *json = NULL;
  size_t json_len = 0;
  if (data) {
    json = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(data);
    if (json == NULL) return NULL;
    json_len = strlen(json);
  }
  uint8_t type_idx = 0;
  for (size_t i = 0; type && i < sizeof(common_types) / sizeof(common_types[0]); i++)
    if (strcmp(type, common_types[i]) == 0) type_idx = (uint8_t)(i + 1);
  size_t tl = type_idx ? 0 : type ? strnlen(type, EVENT_TYPE_MAX) + 1 : 1;
  size_t ul = user_id ? strnlen(user_id, ID_MAX) : 0, nl = name ? strnlen(name, ID_MAX) : 0;
  size_t strs = tl + ul + nl + 2;
  struct event_rec *r = json_len > UINT32_MAX ? NULL : malloc(sizeof(*r) + strs + (json ? json_len + 1 : 0));
  if (r == NULL) {
    free(json);
    return NULL;
  }
  r->ts = now_ms;
  r->value = value;
  r->type_idx = type_idx;
  r->user_off = (uint8_t)tl;
  r->name_off = (uint8_t)(tl + ul + 1);
  r->has_data = json != NULL;
  r->data_len = (uint32_t)json_len;
  if (tl) {
    memcpy(r->text, type ? type : "", tl - 1);
    r->text[tl - 1] = '\0';
  }
  memcpy(r->text + r->user_off, user_id ? user_id : "", ul);
  r->text[r->user_off + ul] = '\0';
  memcpy(r->text + r->name_off, name ? name : "", nl);
  r->text[r->name_off + nl] = '\0';
  if (json) memcpy(r->text + strs, json, json_len + 1);
  free(json);
  if (ring->count == ring->cap) free(ring->ev[ring->head]); /* overwrite the oldest */
  else ring->count++;
  ring->ev[ring->head] = r;
  ring->head = (ring->head + 1) % ring->cap;
  ring->total++;
  rec_view(r, view);
  return r;
}

void history_event(struct room_history *h, uint64_t now_ms, const char *type, const char *user_id,
                   const char *name, int64_t value, json_t *data) {
  struct analytics_event e;
  if (ring_add(&h->events, now_ms, type, user_id, name, value, data, &e) && sink) sink(sink_arg, h, 0, &e);
}

void history_audit(struct room_history *h, uint64_t now_ms, const char *actor, const char *action,
                   const char *target, json_t *details) {
  struct analytics_event e;
  if (ring_add(&h->audit, now_ms, action, actor, target, 0, details, &e) && sink) sink(sink_arg, h, 1, &e);
}

json_t *history_ring_json(const struct event_ring *ring, uint64_t since_ms, size_t limit, int audit) {
  json_t *a = json_array();
  size_t matching = 0, first = 0, seen = 0;
  for (size_t i = 0; i < ring->count; i++)
    if (ring_at(ring, i)->ts >= since_ms) matching++;
  if (matching > limit) first = matching - limit;
  for (size_t i = 0; i < ring->count; i++) {
    struct analytics_event ev, *e = &ev;
    rec_view(ring_at(ring, i), e);
    if (e->ts < since_ms || seen++ < first) continue;
    json_t *o = json_pack("{s:I,s:s}", "ts", (json_int_t)e->ts, audit ? "action" : "type", e->type);
    if (e->user_id[0]) json_object_set_new(o, audit ? "actor" : "user_id", json_string(e->user_id));
    if (e->name[0]) json_object_set_new(o, audit ? "target" : "name", json_string(e->name));
    if (e->value) json_object_set_new(o, "value", json_integer(e->value));
    if (e->data) json_object_set_new(o, audit ? "details" : "data", json_loadb(e->data, e->data_len, JSON_DECODE_ANY, NULL));
    json_array_append_new(a, o);
  }
  return a;
}

/* ---- recordings ---- */

struct recording *history_recording_active(struct room_history *h) {
  for (size_t i = h->nrecordings; i-- > 0;)
    if (h->recordings[i].stopped_ms == 0) return &h->recordings[i];
  return NULL;
}

struct recording *history_recording_find(struct room_history *h, const char *id) {
  for (size_t i = 0; i < h->nrecordings; i++)
    if (strcmp(h->recordings[i].id, id) == 0) return &h->recordings[i];
  return NULL;
}

struct recording *history_recording_start(struct room_history *h, const char *by, uint64_t now_ms) {
  if (h->nrecordings == HISTORY_RECORDINGS) {
    memmove(&h->recordings[0], &h->recordings[1], (h->nrecordings - 1) * sizeof(h->recordings[0]));
    h->nrecordings--;
  }
  if (h->nrecordings == h->cap_recordings) {
    size_t cap = h->cap_recordings ? h->cap_recordings * 2 : 4;
    if (cap > HISTORY_RECORDINGS) cap = HISTORY_RECORDINGS;
    struct recording *r = realloc(h->recordings, cap * sizeof(*r));
    if (r == NULL) return NULL;
    h->recordings = r;
    h->cap_recordings = cap;
  }
  struct recording *r = &h->recordings[h->nrecordings];
  memset(r, 0, sizeof(*r));
  r->id[0] = 'r';
  if (id_random_hex(r->id + 1, 15) != 0) return NULL;
  snprintf(r->started_by, sizeof(r->started_by), "%s", by);
  snprintf(r->format, sizeof(r->format), "webm");
  r->started_ms = now_ms;
  h->nrecordings++;
  return r;
}

json_t *history_recording_json(const struct recording *r, uint64_t now_ms) {
  uint64_t end = r->stopped_ms ? r->stopped_ms : now_ms;
  json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "recording_id", r->id, "state",
                        r->stopped_ms ? "stopped" : "recording", "started_by", r->started_by,
                        "started_at", (json_int_t)r->started_ms, "duration_ms",
                        (json_int_t)(end - r->started_ms), "format", r->format);
  if (r->stopped_ms) {
    json_object_set_new(o, "stopped_at", json_integer((json_int_t)r->stopped_ms));
    json_object_set_new(o, "stopped_by", json_string(r->stopped_by));
  }
  return o;
}

/* ---- live streams ---- */

size_t history_streams_active(const struct room_history *h) {
  size_t n = 0;
  for (size_t i = 0; i < h->nstreams; i++)
    if (h->streams[i].stopped_ms == 0) n++;
  return n;
}

struct live_stream *history_stream_find(struct room_history *h, const char *id) {
  for (size_t i = 0; i < h->nstreams; i++)
    if (strcmp(h->streams[i].id, id) == 0) return &h->streams[i];
  return NULL;
}

struct live_stream *history_stream_start(struct room_history *h, const char *name,
                                         const char *target, const char *redacted, const char *by,
                                         uint64_t now_ms) {
  if (h->nstreams == HISTORY_STREAMS) {
    /* Drop the oldest finished stream; active ones are capped far lower. */
    size_t i = 0;
    while (i < h->nstreams && h->streams[i].stopped_ms == 0) i++;
    if (i == h->nstreams) return NULL;
    free(h->streams[i].target);
    free(h->streams[i].target_redacted);
    memmove(&h->streams[i], &h->streams[i + 1], (h->nstreams - i - 1) * sizeof(h->streams[0]));
    h->nstreams--;
  }
  if (h->nstreams == h->cap_streams) {
    size_t cap = h->cap_streams ? h->cap_streams * 2 : 4;
    if (cap > HISTORY_STREAMS) cap = HISTORY_STREAMS;
    struct live_stream *s = realloc(h->streams, cap * sizeof(*s));
    if (s == NULL) return NULL;
    h->streams = s;
    h->cap_streams = cap;
  }
  struct live_stream *s = &h->streams[h->nstreams];
  memset(s, 0, sizeof(*s));
  s->id[0] = 's';
  s->target = strdup(target);
  s->target_redacted = strdup(redacted);
  if (s->target == NULL || s->target_redacted == NULL || id_random_hex(s->id + 1, 15) != 0) {
    free(s->target);
    free(s->target_redacted);
    return NULL;
  }
  snprintf(s->name, sizeof(s->name), "%s", name);
  snprintf(s->started_by, sizeof(s->started_by), "%s", by);
  s->started_ms = now_ms;
  h->nstreams++;
  return s;
}

json_t *history_stream_json(const struct live_stream *s, uint64_t now_ms) {
  uint64_t end = s->stopped_ms ? s->stopped_ms : now_ms;
  json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "stream_id", s->id, "name", s->name,
                        "state", s->stopped_ms ? "stopped" : "live", "target", s->target_redacted,
                        "started_by", s->started_by, "started_at", (json_int_t)s->started_ms,
                        "duration_ms", (json_int_t)(end - s->started_ms));
  if (s->stopped_ms) {
    json_object_set_new(o, "stopped_at", json_integer((json_int_t)s->stopped_ms));
    json_object_set_new(o, "stopped_by", json_string(s->stopped_by));
  }
  return o;
}

/* ---- erasing one user (POST /webrtc/admin/users/{id}/erase) ---- */

/* A copy of r with user and name (each "" or a value), its data kept or
 * dropped; NULL when out of memory. */
static struct event_rec *rec_rewrite(const struct event_rec *r, const char *user, const char *name, int keep_data) {
  size_t tl = r->user_off, ul = strlen(user), nl = strlen(name);
  int has_data = keep_data && r->has_data;
  size_t dl = has_data ? r->data_len : 0;
  const char *data = r->has_data ? r->text + r->name_off + strlen(r->text + r->name_off) + 1 : NULL;
  size_t strs = tl + ul + nl + 2;
  struct event_rec *n = malloc(sizeof(*n) + strs + (has_data ? dl + 1 : 0));
  if (n == NULL) return NULL;
  *n = *r;
  memcpy(n->text, r->text, tl); /* the type's text, if it has one */
  n->user_off = (uint8_t)tl;
  n->name_off = (uint8_t)(tl + ul + 1);
  memcpy(n->text + n->user_off, user, ul + 1);
  memcpy(n->text + n->name_off, name, nl + 1);
  n->has_data = (uint8_t)has_data;
  n->data_len = (uint32_t)dl;
  if (n->has_data) memcpy(n->text + strs, data, dl + 1);
  return n;
}

/* 1 if e's data names user_id (ids are written quoted, without escapes). */
static int data_names(const struct analytics_event *e, const char *needle) {
  size_t nl = strlen(needle);
  if (e->data == NULL || e->data_len < nl) return 0;
  for (size_t i = 0; i + nl <= e->data_len; i++)
    if (memcmp(e->data + i, needle, nl) == 0) return 1;
  return 0;
}

static void ring_erase(struct event_ring *ring, const char *user_id, const char *needle, int audit) {
  for (size_t i = 0; i < ring->count; i++) {
    struct event_rec **slot = &ring->ev[(ring->head + ring->cap - ring->count + i) % ring->cap];
    struct analytics_event e;
    rec_view(*slot, &e);
    int is_user = strcmp(e.user_id, user_id) == 0, is_target = audit && strcmp(e.name, user_id) == 0;
    /* An audit entry's details name users (targets, by); an event's data
     * is the custom properties of the event's own user, who is not
     * another's to erase: only the user's own events lose theirs, as in
     * the store (ADR 0020). */
    int names = audit && data_names(&e, needle);
    if (!is_user && !is_target && !names) continue;
    /* Events of the user lose their data (as the store anonymizes them). */
    char user[ID_MAX + 1], name[ID_MAX + 1];
    snprintf(user, sizeof(user), "%s", is_user ? HISTORY_ANONYMOUS : e.user_id);
    snprintf(name, sizeof(name), "%s", is_target ? HISTORY_ANONYMOUS : e.name);
    struct event_rec *n = rec_rewrite(*slot, user, name, !names && !(is_user && !audit));
    if (n == NULL) continue; /* left as it was; the store has erased it */
    free(*slot);
    *slot = n;
  }
}

static void erase_one(struct room_history *h, const char *user_id, const char *needle) {
  for (; h; h = h->prev) {
    ring_erase(&h->events, user_id, needle, 0);
    ring_erase(&h->audit, user_id, needle, 1);
    for (size_t i = 0; i < h->nrecordings; i++) {
      struct recording *r = &h->recordings[i];
      if (strcmp(r->started_by, user_id) == 0) snprintf(r->started_by, sizeof(r->started_by), HISTORY_ANONYMOUS);
      if (strcmp(r->stopped_by, user_id) == 0) snprintf(r->stopped_by, sizeof(r->stopped_by), HISTORY_ANONYMOUS);
    }
    for (size_t i = 0; i < h->nstreams; i++) {
      struct live_stream *s = &h->streams[i];
      if (strcmp(s->started_by, user_id) == 0) snprintf(s->started_by, sizeof(s->started_by), HISTORY_ANONYMOUS);
      if (strcmp(s->stopped_by, user_id) == 0) snprintf(s->stopped_by, sizeof(s->stopped_by), HISTORY_ANONYMOUS);
    }
  }
}

struct erase_arg {
  const char *user_id;
  char needle[ID_MAX + 3];
};

static void erase_each(const char *key, void *value, void *arg) {
  struct erase_arg *a = arg;
  erase_one(value, a->user_id, a->needle);
}

void history_erase_user(struct history_registry *reg, const char *user_id) {
  struct erase_arg a = {user_id, ""};
  snprintf(a.needle, sizeof(a.needle), "\"%s\"", user_id);
  map_each(&reg->rooms, erase_each, &a);
  reg->erases++;
}

/* ---- handing a room's analytics to the next owner (several instances) ---- */

json_t *history_agg_json(const struct room_history *h) {
  json_t *mt = json_array();
  for (int i = 0; h->messages_by_type && i < HISTORY_MSG_TYPES; i++)
    if (h->messages_by_type[i])
      json_array_append_new(mt, json_pack("[i,I]", i, (json_int_t)h->messages_by_type[i]));
  return json_pack("{s:I,s:I,s:I,s:o,s:[I,I,I],s:I,s:I,s:I}", "sessions", (json_int_t)h->sessions, "csm",
                   (json_int_t)h->closed_session_ms, "peak", (json_int_t)h->peak, "mt", mt, "q",
                   (json_int_t)h->quality[0], (json_int_t)h->quality[1], (json_int_t)h->quality[2], "custom",
                   (json_int_t)h->custom_events, "et", (json_int_t)h->events.total, "at",
                   (json_int_t)h->audit.total);
}

static uint64_t agg_u64(const json_t *o, const char *k) {
  json_int_t v = json_integer_value(json_object_get(o, k));
  return v > 0 ? (uint64_t)v : 0;
}

void history_agg_apply(struct room_history *h, const json_t *agg) {
  if (!json_is_object(agg)) return;
  h->sessions = agg_u64(agg, "sessions");
  h->closed_session_ms = agg_u64(agg, "csm");
  uint64_t peak = agg_u64(agg, "peak");
  if (peak > h->peak) h->peak = peak;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(agg, "mt"), i, m) {
    json_int_t type = json_integer_value(json_array_get(m, 0)), n = json_integer_value(json_array_get(m, 1));
    if (type < 0 || type >= HISTORY_MSG_TYPES || n <= 0) continue;
    if (h->messages_by_type == NULL && (h->messages_by_type = calloc(HISTORY_MSG_TYPES, sizeof(uint64_t))) == NULL)
      return;
    h->messages_by_type[type] = (uint64_t)n;
  }
  json_t *q = json_object_get(agg, "q");
  for (int b = 0; b < QUALITY__COUNT; b++) {
    json_int_t v = json_integer_value(json_array_get(q, (size_t)b));
    h->quality[b] = v > 0 ? (uint64_t)v : 0;
  }
  h->custom_events = agg_u64(agg, "custom");
  uint64_t et = agg_u64(agg, "et"), at = agg_u64(agg, "at");
  if (et > h->events.total) h->events.total = et;
  if (at > h->audit.total) h->audit.total = at;
}

json_t *history_ring_tail(const struct event_ring *ring, uint64_t from) {
  json_t *a = json_array();
  uint64_t first = ring->total - ring->count; /* ordinal of the oldest held */
  for (size_t i = from > first ? (size_t)(from - first) : 0; i < ring->count; i++) {
    struct analytics_event e;
    rec_view(ring_at(ring, i), &e);
    json_t *data = e.data ? json_loadb(e.data, e.data_len, JSON_DECODE_ANY, NULL) : json_null();
    json_array_append_new(a, json_pack("[I,s,s,s,I,o]", (json_int_t)e.ts, e.type, e.user_id, e.name,
                                       (json_int_t)e.value, data ? data : json_null()));
  }
  return a;
}

int history_ring_restore(struct room_history *h, int audit, const char *txt, size_t len) {
  json_t *a = json_loadb(txt, len, 0, NULL);
  json_int_t ts = json_integer_value(json_array_get(a, 0)), value = json_integer_value(json_array_get(a, 4));
  const char *type = json_string_value(json_array_get(a, 1)), *user = json_string_value(json_array_get(a, 2)),
             *name = json_string_value(json_array_get(a, 3));
  json_t *data = json_array_get(a, 5);
  int ok = json_is_array(a) && ts > 0 && type && type[0] && user && name;
  struct analytics_event e;
  if (ok) {
    json_t *d = data && !json_is_null(data) ? json_incref(data) : NULL;
    /* No sink: the store has it already (or its own owner's file does). */
    ok = ring_add(audit ? &h->audit : &h->events, (uint64_t)ts, type, user, name, value, d, &e) != NULL;
  }
  json_decref(a);
  return ok ? 0 : -1;
}
