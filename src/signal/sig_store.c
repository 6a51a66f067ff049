/* What the signaling layer tells the store, and the durable chat gate.
 *
 * Records: every analytics event and audit entry (through the history
 * sink), room sessions (open/close), participant sessions (from the join
 * and leave events), recordings and live streams (from their events) and
 * room settings (from the settings_update audit entry).
 *
 * The chat gate: with --chat-durability durable a chat message is encoded
 * with its seq at once but published only when the store has committed it.
 * Everything the room publishes after it waits behind it in the room's
 * gate, so clients still see seq strictly increasing; the wait is one
 * group commit. A chat the store could not write is dropped from the gate
 * (its sender gets STORE_UNAVAILABLE with its ref); nobody saw it. */
#define LOG_MODULE "store"
#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "net/server.h"
#include "net/ws.h"
#include "room/room.h"
#include "signal/sig_store.h"
#include "signal/signal.h"
#include "store/store.h"

struct gate_item {
  struct gate_item *next;
  struct outbuf *frame;      /* owned ref */
  char *to, *except, *also;  /* owned copies or NULL */
  uint32_t only_perm;
  int type;
  int pending;               /* a chat the store has not committed yet */
  int failed;
  uint64_t seq;
  char sender[ID_MAX + 1];
  char ref[ENVELOPE_ID_MAX + 1];
};

struct gate {
  struct gate_item *head, *tail;
  char room_id[ID_MAX + 1];
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void item_free(struct gate_item *it) {
  outbuf_unref(it->frame);
  free(it->to);
  free(it->except);
  free(it->also);
  free(it);
}

static struct gate_item *item_new(const struct bus_msg *m) {
  struct gate_item *it = calloc(1, sizeof(*it));
  if (it == NULL) return NULL;
  it->frame = outbuf_ref(m->frame);
  it->to = dup_or_null(m->to);
  it->except = dup_or_null(m->except);
  it->also = dup_or_null(m->also);
  it->only_perm = m->only_perm;
  it->type = m->type;
  return it;
}

static void gate_append(struct gate *g, struct gate_item *it) {
  if (g->tail) g->tail->next = it;
  else g->head = it;
  g->tail = it;
}

/* Publishes what is ready at the head of room_id's gate. */
static void gate_flush(struct server *s, const char *room_id) {
  struct gate *g = map_get(&s->store_gates, room_id);
  if (g == NULL) return;
  while (g->head && !g->head->pending) {
    struct gate_item *it = g->head;
    g->head = it->next;
    if (g->head == NULL) g->tail = NULL;
    if (!it->failed) {
      struct bus_msg m = {g->room_id, it->to, it->except, it->also, it->only_perm, it->type, it->frame};
      s->bus->ops->publish(s->bus, &m);
    }
    item_free(it);
  }
  if (g->head == NULL) {
    map_del(&s->store_gates, room_id);
    free(g);
  }
}

int sig_store_hold(struct server *s, const struct bus_msg *m) {
  struct gate *g = map_get(&s->store_gates, m->room_id);
  if (g == NULL) return 0;
  struct gate_item *it = item_new(m);
  if (it == NULL) return 0; /* out of memory: deliver now rather than lose it */
  gate_append(g, it);
  return 1;
}

static void on_chat_stored(struct store_rec *rec, void *arg) {
  struct server *s = arg;
  struct gate *g = map_get(&s->store_gates, rec->room_id);
  if (g == NULL) return;
  struct gate_item *it = g->head;
  while (it && !(it->pending && it->seq == rec->seq)) it = it->next;
  if (it == NULL) return;
  it->pending = 0;
  if (rec->status != STORE_OK) {
    it->failed = 1;
    struct room *r = signal_room_find(s, rec->room_id);
    struct participant *p = r ? room_participant_find(r, it->sender) : NULL;
    log_warn("chat_not_stored room=%s seq=%" PRIu64 " user=%s", rec->room_id, rec->seq, it->sender);
    if (p && p->conn)
      signal_error(p->conn, API_ERR_STORE_UNAVAILABLE, it->ref[0] ? it->ref : NULL, "the message was not delivered", 0);
  }
  gate_flush(s, rec->room_id);
}

static int durable(struct server *s) { return strcmp(s->cfg->chat_durability, "durable") == 0; }

enum api_err sig_store_chat(struct sig_ctx *ctx, const struct sig_out *o, uint64_t seq) {
  struct server *s = ctx->srv;
  struct room *r = ctx->room;
  json_t *p = o->payload;
  if (seq != r->seq + 1) return API_ERR_INTERNAL_ERROR;
  if (strcmp(s->cfg->chat_durability, "off") == 0) /* chat is not kept at all */
    return signal_send(ctx, o) == 0 ? API_OK : API_ERR_INTERNAL_ERROR;
  struct store_rec *rec = store_rec_new(STORE_CHAT, r->id);
  if (rec == NULL) return API_ERR_INTERNAL_ERROR;
  const char *text = json_string_value(json_object_get(p, "text"));
  const char *reply = json_string_value(json_object_get(p, "reply_to"));
  const char *name = json_string_value(json_object_get(p, "sender_name"));
  rec->seq = seq;
  rec->ts = server_now_ms();
  snprintf(rec->id, sizeof(rec->id), "%s", json_string_value(json_object_get(p, "message_id")));
  snprintf(rec->user_id, sizeof(rec->user_id), "%s", o->from);
  snprintf(rec->target, sizeof(rec->target), "%s", o->to ? o->to : "");
  snprintf(rec->name, sizeof(rec->name), "%s", name ? name : "");
  snprintf(rec->aux, sizeof(rec->aux), "%s", reply ? reply : "");
  rec->text = strdup(text ? text : "");
  if (rec->text == NULL) {
    store_rec_free(rec);
    return API_ERR_INTERNAL_ERROR;
  }
  if (!durable(s)) {
    /* Relaxed: delivered now, stored behind (refused only past the bound). */
    if (store_submit(s->store, rec, 1) != 0) return API_ERR_STORE_UNAVAILABLE;
    store_room_seq_note(s->store, r->id, seq);
    return signal_send(ctx, o) == 0 ? API_OK : API_ERR_INTERNAL_ERROR;
  }
  /* Durable: nothing is promised while the database is down. */
  if (store_state(s->store) != STORE_STATE_OK) {
    store_rec_free(rec);
    return API_ERR_STORE_UNAVAILABLE;
  }
  uint64_t ts = rec->ts;
  rec->done = on_chat_stored;
  rec->arg = s;
  if (store_submit(s->store, rec, 1) != 0) return API_ERR_STORE_UNAVAILABLE;
  store_room_seq_note(s->store, r->id, seq);
  /* From here the seq is spent: the frame goes into the gate. */
  struct outbuf *b = envelope_encode(o->type, r->id, o->from, o->to, room_seq_next(r), ts, p, o->ref);
  struct gate *g = map_get(&s->store_gates, r->id);
  if (g == NULL && (g = calloc(1, sizeof(*g))) != NULL) {
    snprintf(g->room_id, sizeof(g->room_id), "%s", r->id);
    if (map_put(&s->store_gates, r->id, g) != 0) {
      free(g);
      g = NULL;
    }
  }
  struct bus_msg m = {r->id, o->to, o->except, o->also, o->only_perm, signal_type_index(o->type), b};
  struct gate_item *it = b && g ? item_new(&m) : NULL;
  outbuf_unref(b);
  if (it == NULL) {
    /* The record is on its way; when it completes it finds no item and
     * nothing is delivered. Make sure it is forgotten again. */
    struct store_rec *forget = store_rec_new(STORE_CHAT_FORGET, r->id);
    if (forget) {
      forget->seq = seq;
      store_submit(s->store, forget, 0);
    }
    if (g && g->head == NULL) {
      map_del(&s->store_gates, r->id);
      free(g);
    }
    return API_ERR_INTERNAL_ERROR;
  }
  it->pending = 1;
  it->seq = seq;
  snprintf(it->sender, sizeof(it->sender), "%s", o->from);
  snprintf(it->ref, sizeof(it->ref), "%s", o->ref ? o->ref : "");
  gate_append(g, it);
  return API_OK;
}

/* ---- rooms ---- */

static void apply_settings(struct room *r, const char *text) {
  json_t *j = json_loads(text, 0, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return;
  }
  struct room_settings *st = &r->settings;
  json_t *v;
  if (json_is_boolean(v = json_object_get(j, "locked"))) st->locked = json_is_true(v);
  if (json_is_boolean(v = json_object_get(j, "waiting_room"))) st->waiting_room = json_is_true(v);
  if (json_is_boolean(v = json_object_get(j, "mute_on_join"))) st->mute_on_join = json_is_true(v);
  if (json_is_boolean(v = json_object_get(j, "chat_enabled"))) st->chat_enabled = json_is_true(v);
  if (json_is_boolean(v = json_object_get(j, "reactions_enabled"))) st->reactions_enabled = json_is_true(v);
  if (json_is_integer(v = json_object_get(j, "max_participants")) && json_integer_value(v) >= 1 &&
      json_integer_value(v) <= 100000)
    st->max_participants = (int)json_integer_value(v);
  if (json_is_string(v = json_object_get(j, "screen_share")))
    st->screen_share_moderators_only = strcmp(json_string_value(v), "moderators") == 0;
  json_decref(j);
}

void sig_store_room_open(struct server *s, struct room *r) {
  if (s->store == NULL) return;
  const struct store_room_meta *m = store_room_meta(s->store, r->id);
  if (m) {
    /* message ids ("m" + seq) must not repeat after a restart. */
    if (m->last_seq > r->seq) r->seq = m->last_seq;
    if (m->settings) apply_settings(r, m->settings);
    log_info("room_restored room=%s seq=%" PRIu64 " settings=%d", r->id, r->seq, m->settings != NULL);
  }
  store_room_opened_note(s->store, r->id);
  struct store_rec *rec = store_rec_new(STORE_ROOM_OPEN, r->id);
  if (rec) {
    rec->ts = r->created_ms;
    store_submit(s->store, rec, 0);
  }
}

void sig_store_room_close(struct server *s, struct room *r) {
  if (s->store == NULL) return;
  store_room_seq_note(s->store, r->id, r->seq);
  struct store_rec *rec = store_rec_new(STORE_ROOM_CLOSE, r->id);
  if (rec) {
    rec->ts = server_now_ms();
    rec->value = (int64_t)r->peak;
    rec->seq = r->seq;
    store_submit(s->store, rec, 0);
  }
}

/* ---- the history sink ---- */

static char *json_text(json_t *j) { return j ? json_dumps(j, JSON_COMPACT) : NULL; }

static void media_record(struct server *s, struct room_history *h, const char *id) {
  struct store_rec *rec = store_rec_new(STORE_MEDIA, h->room_id);
  if (rec == NULL) return;
  struct recording *rc = history_recording_find(h, id);
  struct live_stream *ls = rc ? NULL : history_stream_find(h, id);
  if (rc) {
    snprintf(rec->name, sizeof(rec->name), "recording");
    snprintf(rec->user_id, sizeof(rec->user_id), "%s", rc->started_by);
    snprintf(rec->target, sizeof(rec->target), "%s", rc->stopped_by);
    snprintf(rec->aux, sizeof(rec->aux), "%s", rc->format);
    rec->ts = rc->started_ms;
    rec->value = (int64_t)rc->stopped_ms;
  } else if (ls) {
    snprintf(rec->name, sizeof(rec->name), "stream");
    snprintf(rec->user_id, sizeof(rec->user_id), "%s", ls->started_by);
    snprintf(rec->target, sizeof(rec->target), "%s", ls->stopped_by);
    snprintf(rec->aux, sizeof(rec->aux), "%s", ls->name);
    rec->ts = ls->started_ms;
    rec->value = (int64_t)ls->stopped_ms;
    /* Only the redacted target: the stream key never reaches the database. */
    rec->text = dup_or_null(ls->target_redacted);
  } else {
    store_rec_free(rec);
    return;
  }
  snprintf(rec->id, sizeof(rec->id), "%s", id);
  store_submit(s->store, rec, 0);
}

static void on_history(void *arg, struct room_history *h, int audit, const struct analytics_event *e) {
  struct server *s = arg;
  if (s->store == NULL) return;
  struct store_rec *rec = store_rec_new(audit ? STORE_AUDIT : STORE_EVENT, h->room_id);
  if (rec == NULL) return;
  rec->ts = e->ts;
  snprintf(rec->name, sizeof(rec->name), "%s", e->type);
  snprintf(rec->user_id, sizeof(rec->user_id), "%s", e->user_id);
  if (audit) snprintf(rec->target, sizeof(rec->target), "%s", e->name);
  else snprintf(rec->aux, sizeof(rec->aux), "%s", e->name);
  rec->value = e->value;
  rec->text = json_text(e->data);
  store_submit(s->store, rec, 0);

  if (audit) {
    if (strcmp(e->type, "settings_update") == 0) {
      struct room *r = signal_room_find(s, h->room_id);
      json_t *sj = r ? room_settings_json(r) : NULL;
      char *settings = json_text(sj);
      json_decref(sj);
      struct store_rec *sr = settings ? store_rec_new(STORE_SETTINGS, h->room_id) : NULL;
      if (sr) {
        sr->ts = e->ts;
        sr->text = settings;
        store_room_settings_note(s->store, h->room_id, settings);
        store_submit(s->store, sr, 0);
      } else {
        free(settings);
      }
    }
    return;
  }
  if (strcmp(e->type, "join") == 0) {
    struct room *r = signal_room_find(s, h->room_id);
    struct participant *p = r ? room_participant_find(r, e->user_id) : NULL;
    struct store_rec *pr = store_rec_new(STORE_PART_JOIN, h->room_id);
    if (pr == NULL) return;
    pr->ts = e->ts;
    snprintf(pr->user_id, sizeof(pr->user_id), "%s", e->user_id);
    snprintf(pr->id, sizeof(pr->id), "%s", p ? p->session_id : "");
    snprintf(pr->name, sizeof(pr->name), "%s", p ? perm_role_name(p->role) : "");
    store_submit(s->store, pr, 0);
  } else if (strcmp(e->type, "leave") == 0) {
    struct store_rec *pr = store_rec_new(STORE_PART_LEAVE, h->room_id);
    if (pr == NULL) return;
    pr->ts = e->ts;
    pr->value = e->value;
    snprintf(pr->user_id, sizeof(pr->user_id), "%s", e->user_id);
    snprintf(pr->name, sizeof(pr->name), "%s", e->name);
    store_submit(s->store, pr, 0);
  } else if (strncmp(e->type, "recording_", 10) == 0 || strncmp(e->type, "stream_", 7) == 0) {
    media_record(s, h, e->name);
  }
}

void sig_store_init(struct server *s) { history_sink_set(on_history, s); }

static void free_gate(const char *k, void *v, void *arg) {
  struct gate *g = v;
  for (struct gate_item *it = g->head, *next; it; it = next) {
    next = it->next;
    item_free(it);
  }
  free(g);
}

void sig_store_free(struct server *s) {
  history_sink_set(NULL, NULL);
  map_each(&s->store_gates, free_gate, NULL);
  map_free(&s->store_gates);
}

/* ---- retention ---- */

void sig_store_retention_run(uv_timer_t *t) {
  struct server *s = t->data;
  if (s->store == NULL || s->cfg->retention_days <= 0) return;
  uint64_t now = server_now_ms();
  uint64_t cut = now - (uint64_t)s->cfg->retention_days * 86400000ULL;
  struct store_rec *rec = store_rec_new(STORE_RETENTION, "");
  if (rec == NULL) return;
  rec->ts = cut;
  store_submit(s->store, rec, 0);
  struct store_rec *a = store_rec_new(STORE_AUDIT, "");
  if (a == NULL) return;
  a->ts = now;
  snprintf(a->user_id, sizeof(a->user_id), "server");
  snprintf(a->name, sizeof(a->name), "retention_sweep");
  char details[96];
  snprintf(details, sizeof(details), "{\"before\":%" PRIu64 ",\"days\":%d}", cut, s->cfg->retention_days);
  a->text = strdup(details);
  store_submit(s->store, a, 0);
  log_info("retention_sweep before=%" PRIu64 " days=%d", cut, s->cfg->retention_days);
}
