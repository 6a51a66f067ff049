/* Room history registry (see history.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ids.h"
#include "room/history.h"

static void ring_free(struct event_ring *ring) {
  for (size_t i = 0; i < ring->count; i++)
    json_decref(ring->ev[(ring->head + ring->cap - ring->count + i) % ring->cap].data);
  free(ring->ev);
}

static void history_free(struct room_history *h) {
  ring_free(&h->events);
  ring_free(&h->audit);
  free(h->recordings);
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
  struct room_history *h = map_get(&reg->rooms, room_id);
  if (h) {
    h->closed_ms = 0; /* reopened */
    return h;
  }
  h = calloc(1, sizeof(*h));
  if (h == NULL) return NULL;
  snprintf(h->room_id, sizeof(h->room_id), "%s", room_id);
  h->created_ms = now_ms;
  if (map_put(&reg->rooms, room_id, h) != 0) {
    free(h);
    return NULL;
  }
  return h;
}

struct oldest { struct room_history *h; size_t closed; };

static void find_oldest(const char *key, void *value, void *arg) {
  struct room_history *h = value;
  struct oldest *o = arg;
  if (h->closed_ms == 0) return;
  o->closed++;
  if (o->h == NULL || h->closed_ms < o->h->closed_ms) o->h = h;
}

void history_close(struct history_registry *reg, struct room_history *h, uint64_t now_ms) {
  h->closed_ms = now_ms ? now_ms : 1;
  for (;;) {
    struct oldest o = {NULL, 0};
    map_each(&reg->rooms, find_oldest, &o);
    if (o.closed <= reg->max_rooms || o.h == NULL) break;
    if (reg->on_evict) reg->on_evict(reg->evict_arg, o.h->room_id);
    map_del(&reg->rooms, o.h->room_id);
    history_free(o.h);
  }
}

static void free_one(const char *key, void *value, void *arg) { history_free(value); }

void history_registry_free(struct history_registry *reg) {
  map_each(&reg->rooms, free_one, NULL);
  map_free(&reg->rooms);
}

/* ---- analytics events ---- */

static void ring_add(struct event_ring *ring, uint64_t now_ms, const char *type, const char *user_id,
                     const char *name, int64_t value, json_t *data) {
  if (ring->count == ring->cap && ring->cap < HISTORY_EVENTS) {
    /* Grow the ring; while it is growing it has never wrapped. */
    size_t cap = ring->cap ? ring->cap * 2 : 16;
    if (cap > HISTORY_EVENTS) cap = HISTORY_EVENTS;
    struct analytics_event *e = realloc(ring->ev, cap * sizeof(*e));
    if (e == NULL) {
      json_decref(data);
      return;
    }
    ring->ev = e;
    ring->head = ring->count;
    ring->cap = cap;
  }
  struct analytics_event *e = &ring->ev[ring->head];
  if (ring->count == ring->cap) json_decref(e->data); /* overwrite the oldest */
  else ring->count++;
  memset(e, 0, sizeof(*e));
  e->ts = now_ms;
  snprintf(e->type, sizeof(e->type), "%s", type);
  snprintf(e->user_id, sizeof(e->user_id), "%s", user_id ? user_id : "");
  snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
  e->value = value;
  e->data = data;
  ring->head = (ring->head + 1) % ring->cap;
  ring->total++;
}

void history_event(struct room_history *h, uint64_t now_ms, const char *type, const char *user_id,
                   const char *name, int64_t value, json_t *data) {
  ring_add(&h->events, now_ms, type, user_id, name, value, data);
}

void history_audit(struct room_history *h, uint64_t now_ms, const char *actor, const char *action,
                   const char *target, json_t *details) {
  ring_add(&h->audit, now_ms, action, actor, target, 0, details);
}

json_t *history_ring_json(const struct event_ring *ring, uint64_t since_ms, size_t limit, int audit) {
  json_t *a = json_array();
  size_t matching = 0, first = 0, seen = 0;
  for (size_t i = 0; i < ring->count; i++)
    if (ring->ev[(ring->head + ring->cap - ring->count + i) % ring->cap].ts >= since_ms) matching++;
  if (matching > limit) first = matching - limit;
  for (size_t i = 0; i < ring->count; i++) {
    const struct analytics_event *e = &ring->ev[(ring->head + ring->cap - ring->count + i) % ring->cap];
    if (e->ts < since_ms || seen++ < first) continue;
    json_t *o = json_pack("{s:I,s:s}", "ts", (json_int_t)e->ts, audit ? "action" : "type", e->type);
    if (e->user_id[0]) json_object_set_new(o, audit ? "actor" : "user_id", json_string(e->user_id));
    if (e->name[0]) json_object_set_new(o, audit ? "target" : "name", json_string(e->name));
    if (e->value) json_object_set_new(o, "value", json_integer(e->value));
    if (e->data) json_object_set(o, audit ? "details" : "data", e->data);
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
