/* What the room domain tells the store, and the durable chat gate
 * (moved here from src/signal/sig_store.c with the room core, issue 9).
 *
 * Records: every analytics event and audit entry (through the history
 * sink), room sessions (open/close), participant sessions (from the join
 * and leave events), recordings and live streams (from their events) and
 * room settings (from the settings_update audit entry); the room policy
 * (roles, overrides, bans, hands) is durable_policy.c's, called from here.
 *
 * The chat gate: with --chat-durability durable a chat message is encoded
 * with its seq at once but published only when the store has committed it.
 * Everything the room publishes after it waits behind it in the room's
 * gate, so clients still see seq strictly increasing; the wait is one
 * group commit. A message enters the room log when it is published, so a
 * member who is away and resumes replays only what others could see, in
 * seq order. A chat the store could not write is dropped from the gate
 * (its sender gets STORE_UNAVAILABLE with its ref); nobody saw it. */
#define LOG_MODULE "store"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/envelope.h"
#include "room/durable.h"
#include "room/durable_policy.h"
#include "room/hub.h"
#include "room/policy.h"
#include "room/room.h"
#include "store/store.h"
#include "store/store_schema.h"

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

/* snprintf(dst, n, "%s", s) without the format machinery (about 500
 * instructions a call): a durable chat
 * message copies eight (its record and its gate item), its analytics row three. */
static void copy_field(char *dst, size_t n, const char *s) {
  size_t len = strnlen(s, n - 1);
  memcpy(dst, s, len);
  dst[len] = '\0';
}

static void item_free(struct gate_item *it) {
  outbuf_unref(it->frame);
  free(it->to);
  free(it->except);
  free(it->also);
  free(it);
}

static struct gate_item *item_new(uint64_t seq, int type, struct outbuf *frame, const char *to,
                                  const char *except, const char *also, uint32_t only_perm) {
  struct gate_item *it = calloc(1, sizeof(*it));
  if (it == NULL) return NULL;
  it->frame = outbuf_ref(frame);
  it->to = dup_or_null(to);
  it->except = dup_or_null(except);
  it->also = dup_or_null(also);
  it->only_perm = only_perm;
  it->type = type;
  it->seq = seq;
  if ((to && !it->to) || (except && !it->except) || (also && !it->also)) {
    item_free(it);
    return NULL;
  }
  return it;
}

static void gate_append(struct gate *g, struct gate_item *it) {
  if (g->tail) g->tail->next = it;
  else g->head = it;
  g->tail = it;
}

/* Publishes what is ready at the head of room_id's gate (room log, bus). */
static void gate_flush(struct hub *h, const char *room_id) {
  struct gate *g = map_get(&h->store_gates, room_id);
  if (g == NULL) return;
  while (g->head && !g->head->pending) {
    struct gate_item *it = g->head;
    g->head = it->next;
    if (g->head == NULL) g->tail = NULL;
    if (!it->failed)
      hub_publish_frame(h, g->room_id, it->seq, it->type, it->frame, it->to, it->except, it->also,
                        it->only_perm);
    item_free(it);
  }
  if (g->head == NULL) {
    map_del(&h->store_gates, room_id);
    free(g);
  }
}

int durable_hold(struct hub *h, struct room *r, uint64_t seq, int type, struct outbuf *frame, const char *to,
                 const char *except, const char *also, uint32_t only_perm) {
  struct gate *g = map_get(&h->store_gates, r->id);
  if (g == NULL) return 0;
  struct gate_item *it = item_new(seq, type, frame, to, except, also, only_perm);
  if (it == NULL) return 0; /* out of memory: deliver now rather than lose it */
  gate_append(g, it);
  return 1;
}

uint64_t durable_published_seq(struct hub *h, const struct room *r) {
  struct gate *g = h->store_gates.count ? map_get(&h->store_gates, r->id) : NULL;
  /* Everything numbered from the gate's head on is still in the gate. */
  return g && g->head ? g->head->seq - 1 : r->seq;
}

/* Tells the sender of a chat the store refused, on its session if it has one. */
static void tell_refused(struct hub *h, struct room *r, const char *user, const char *ref) {
  struct participant *p = r ? room_participant_find(r, user) : NULL;
  if (p == NULL || p->session == NULL) return;
  const struct api_err_info *info = api_err_info(API_ERR_STORE_UNAVAILABLE);
  json_t *payload = json_pack("{s:s,s:s,s:s,s:s}", "code", info->code, "message", info->message, "recovery",
                              info->recovery, "detail", "the message was not delivered");
  if (payload == NULL) return;
  if (ref && *ref) json_object_set_new(payload, "ref", json_string(ref));
  h->stats.errors_by_code[API_ERR_STORE_UNAVAILABLE]++;
  hub_send_session(h, p->session, r, "error", payload, ref && *ref ? ref : NULL);
  json_decref(payload);
}

static void on_chat_stored(struct store_rec *rec, void *arg) {
  struct hub *h = arg;
  struct gate *g = map_get(&h->store_gates, rec->room_id);
  if (g == NULL) return;
  struct gate_item *it = g->head;
  while (it && !(it->pending && it->seq == rec->seq)) it = it->next;
  if (it == NULL) return;
  it->pending = 0;
  if (rec->status != STORE_OK) {
    it->failed = 1;
    log_warn("chat_not_stored room=%s seq=%" PRIu64 " user=%s", rec->room_id, rec->seq, it->sender);
    tell_refused(h, hub_room_find(h, rec->room_id), it->sender, it->ref);
  }
  gate_flush(h, rec->room_id);
}

enum durability { DUR_DURABLE, DUR_RELAXED, DUR_OFF };

static enum durability durability(const struct hub *h) {
  const char *d = h->cfg->chat_durability;
  return strcmp(d, "off") == 0 ? DUR_OFF : strcmp(d, "relaxed") == 0 ? DUR_RELAXED : DUR_DURABLE;
}

enum api_err durable_chat(struct hub *h, struct room *r, const struct room_event *e, uint64_t seq,
                          const struct durable_chat_msg *m) {
  if (seq != r->seq + 1) return API_ERR_INTERNAL_ERROR;
  enum durability mode = durability(h);
  if (mode == DUR_OFF || h->store == NULL) /* chat is not kept at all */
    return hub_send(h, r, e) == 0 ? API_OK : API_ERR_INTERNAL_ERROR;
  struct store_rec *rec = store_rec_new(STORE_CHAT, r->id);
  if (rec == NULL) return API_ERR_INTERNAL_ERROR;
  const char *reply = m->reply_to, *name = m->sender_name, *mid = m->message_id;
  rec->seq = seq;
  rec->ts = m->ts ? m->ts : hub_now_ms();
  copy_field(rec->id, sizeof(rec->id), mid ? mid : "");
  copy_field(rec->user_id, sizeof(rec->user_id), e->from);
  copy_field(rec->target, sizeof(rec->target), e->to ? e->to : "");
  copy_field(rec->name, sizeof(rec->name), name ? name : "");
  copy_field(rec->aux, sizeof(rec->aux), reply ? reply : "");
  rec->text = strndup(m->text ? m->text : "", m->text ? m->text_len : 0);
  if (rec->text == NULL) {
    store_rec_free(rec);
    return API_ERR_INTERNAL_ERROR;
  }
  if (mode == DUR_RELAXED) {
    /* Relaxed: delivered now, stored behind (refused only past the bound). */
    if (store_submit(h->store, rec, 1) != 0) return API_ERR_STORE_UNAVAILABLE;
    store_room_seq_note(h->store, r->id, seq);
    return hub_send(h, r, e) == 0 ? API_OK : API_ERR_INTERNAL_ERROR;
  }
  /* Durable: nothing is promised while the database is down. */
  if (store_state(h->store) != STORE_STATE_OK) {
    store_rec_free(rec);
    return API_ERR_STORE_UNAVAILABLE;
  }
  uint64_t ts = rec->ts;
  rec->done = on_chat_stored;
  rec->arg = h;
  if (store_submit(h->store, rec, 1) != 0) return API_ERR_STORE_UNAVAILABLE;
  store_room_seq_note(h->store, r->id, seq);
  /* From here the seq is spent: the frame goes into the gate. */
  uint64_t s = room_seq_next(r);
  struct outbuf *b = e->raw_payload
      ? envelope_encode_raw(e->type, r->id, e->from, e->to, s, ts, e->raw_payload, e->raw_len, e->ref)
      : envelope_encode(e->type, r->id, e->from, e->to, s, ts, e->payload, e->ref);
  struct gate *g = map_get(&h->store_gates, r->id);
  if (g == NULL && (g = calloc(1, sizeof(*g))) != NULL) {
    copy_field(g->room_id, sizeof(g->room_id), r->id);
    if (map_put(&h->store_gates, r->id, g) != 0) {
      free(g);
      g = NULL;
    }
  }
  struct gate_item *it = b && g ? item_new(s, msg_type_id(e->type), b, e->to, e->except, e->also, e->only_perm)
                                : NULL;
  outbuf_unref(b);
  if (it == NULL) {
    /* The record is on its way; when it completes it finds no item and
     * nothing is delivered. Make sure it is forgotten again. */
    struct store_rec *forget = store_rec_new(STORE_CHAT_FORGET, r->id);
    if (forget) {
      forget->seq = seq;
      store_submit(h->store, forget, 0);
    }
    if (g && g->head == NULL) {
      map_del(&h->store_gates, r->id);
      free(g);
    }
    return API_ERR_INTERNAL_ERROR;
  }
  it->pending = 1;
  copy_field(it->sender, sizeof(it->sender), e->from);
  copy_field(it->ref, sizeof(it->ref), e->ref ? e->ref : "");
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

void durable_room_open(struct hub *h, struct room *r) {
  if (h->store == NULL) return;
  const struct store_room_meta *m = store_room_meta(h->store, r->id);
  if (m) {
    /* message ids ("m" + seq) must not repeat after a restart. */
    if (m->last_seq > r->seq) r->seq = m->last_seq;
    if (m->settings) apply_settings(r, m->settings);
    log_info("room_restored room=%s seq=%" PRIu64 " settings=%d", r->id, r->seq, m->settings != NULL);
    durable_policy_restore(h, r); /* roles, overrides, bans, rejections, hands */
  }
  store_room_opened_note(h->store, r->id);
  struct store_rec *rec = store_rec_new(STORE_ROOM_OPEN, r->id);
  if (rec) {
    rec->ts = r->created_ms;
    store_submit(h->store, rec, 0);
  }
}

int durable_room_refresh(struct hub *h, const char *room_id, void (*cb)(void *arg), void *arg) {
  return h->store ? store_room_refresh(h->store, room_id, cb, arg) : 1;
}

void durable_room_close(struct hub *h, struct room *r) {
  if (h->store == NULL) return;
  store_room_seq_note(h->store, r->id, r->seq);
  struct store_rec *rec = store_rec_new(STORE_ROOM_CLOSE, r->id);
  if (rec) {
    rec->ts = hub_now_ms();
    rec->value = (int64_t)r->peak;
    rec->seq = r->seq;
    store_submit(h->store, rec, 0);
  }
}

/* ---- the history sink ---- */

static char *json_text(json_t *j) { return j ? json_dumps(j, JSON_COMPACT) : NULL; }

static void media_record(struct hub *hub, struct room_history *h, const char *id) {
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
  store_submit(hub->store, rec, 0);
}

static void on_history(void *arg, struct room_history *h, int audit, const struct analytics_event *e) {
  struct hub *hub = arg;
  if (hub->store == NULL) return;
  /* A chat's event is read from its stored chat row (ADR 0020); with
   * --chat-durability off nothing of chat is stored, its event neither. */
  if (!audit && strcmp(e->type, "chat") == 0) return;
  struct store_rec *rec = store_rec_new(audit ? STORE_AUDIT : STORE_EVENT, h->room_id);
  if (rec == NULL) return;
  rec->ts = e->ts;
  if (!audit) {
    /* The room's seq now: within a millisecond, the event reads after the
     * chats with this seq or lower and before any later one. */
    struct room *r = hub_room_find(hub, h->room_id);
    const struct store_room_meta *m = r ? NULL : store_room_meta(hub->store, h->room_id);
    rec->seq = r ? r->seq : m ? m->last_seq : 0;
  }
  copy_field(rec->name, sizeof(rec->name), e->type);
  copy_field(rec->user_id, sizeof(rec->user_id), e->user_id);
  if (audit) copy_field(rec->target, sizeof(rec->target), e->name);
  else copy_field(rec->aux, sizeof(rec->aux), e->name);
  rec->value = e->value;
  rec->text = e->data ? strndup(e->data, e->data_len) : NULL; /* already compact JSON text */
  store_submit(hub->store, rec, 0);

  if (audit) {
    /* A deleted room (DELETE /webrtc/rooms/{id}) forgets its saved settings:
     * re-created, it starts from the defaults. */
    int deleted = strcmp(e->type, "room_delete") == 0;
    if (strcmp(e->type, "settings_update") == 0 || deleted) {
      struct room *r = deleted ? NULL : hub_room_find(hub, h->room_id);
      json_t *sj = deleted ? json_object() : r ? room_settings_json(r) : NULL;
      char *settings = json_text(sj);
      json_decref(sj);
      struct store_rec *sr = settings ? store_rec_new(STORE_SETTINGS, h->room_id) : NULL;
      if (sr) {
        sr->ts = e->ts;
        sr->text = settings;
        store_room_settings_note(hub->store, h->room_id, settings);
        store_submit(hub->store, sr, 0);
      } else {
        free(settings);
      }
    }
    /* Roles, overrides, bans, rejections and lowered hands change with an
     * audit entry; a deleted room forgets them with its settings. */
    struct room *r = hub_room_find(hub, h->room_id);
    if (deleted) {
      durable_policy_forget(hub, r, e->ts);
    } else {
      durable_policy_save(hub, r);
      struct room *root = policy_root(hub, r);
      if (root != r) durable_policy_save(hub, root);
    }
    return;
  }
  if (strcmp(e->type, "leave") == 0) {
    /* A leave may expire hands of owners who stayed away. */
    struct room *r = hub_room_find(hub, h->room_id);
    durable_policy_save(hub, r);
    struct room *root = policy_root(hub, r);
    if (root != r) durable_policy_save(hub, root);
  }
  if (strcmp(e->type, "join") == 0) {
    struct room *r = hub_room_find(hub, h->room_id);
    struct participant *p = r ? room_participant_find(r, e->user_id) : NULL;
    struct store_rec *pr = store_rec_new(STORE_PART_JOIN, h->room_id);
    if (pr == NULL) return;
    pr->ts = e->ts;
    snprintf(pr->user_id, sizeof(pr->user_id), "%s", e->user_id);
    char sid[33];
    snprintf(pr->id, sizeof(pr->id), "%s", p ? room_participant_session_id(p, sid) : "");
    snprintf(pr->name, sizeof(pr->name), "%s", p ? perm_role_name(p->role) : "");
    store_submit(hub->store, pr, 0);
  } else if (strcmp(e->type, "leave") == 0) {
    struct store_rec *pr = store_rec_new(STORE_PART_LEAVE, h->room_id);
    if (pr == NULL) return;
    pr->ts = e->ts;
    pr->value = e->value;
    snprintf(pr->user_id, sizeof(pr->user_id), "%s", e->user_id);
    snprintf(pr->name, sizeof(pr->name), "%s", e->name);
    store_submit(hub->store, pr, 0);
  } else if (strncmp(e->type, "recording_", 10) == 0 || strncmp(e->type, "stream_", 7) == 0) {
    media_record(hub, h, e->name);
  }
}

int durable_init(struct hub *h, char *err, size_t err_len) {
  const char *d = h->cfg->chat_durability;
  if (strcmp(d, "durable") != 0 && strcmp(d, "relaxed") != 0 && strcmp(d, "off") != 0) {
    snprintf(err, err_len, "--chat-durability must be durable, relaxed or off");
    return -1;
  }
  h->retention_due_ms = uv_now(h->loop) + 1000;
  history_sink_set(on_history, h);
  return 0;
}

static void free_gate(const char *k, void *v, void *arg) {
  struct gate *g = v;
  for (struct gate_item *it = g->head, *next; it; it = next) {
    next = it->next;
    item_free(it);
  }
  free(g);
}

static void free_cuts(const char *k, void *v, void *arg) { free(v); }

void durable_free(struct hub *h) {
  history_sink_set(NULL, NULL);
  map_each(&h->store_gates, free_gate, NULL);
  map_free(&h->store_gates);
  map_each(&h->erase_cuts, free_cuts, NULL);
  map_free(&h->erase_cuts);
}

/* ---- retention ---- */

#define RETENTION_EVERY_MS 3600000

static void live_room(const char *k, void *v, void *arg) { json_array_append_new(arg, json_string(k)); }

/* The rooms whose settings and policy retention deleted: the room index
 * forgets them too, so a room created again does not bring them back. */
static void on_retention_done(struct store_rec *rec, void *arg) {
  struct hub *h = arg;
  json_t *gone = rec->status == STORE_OK && rec->result ? json_loads(rec->result, 0, NULL) : NULL;
  json_t *seen = json_object(); /* a room's id comes once per table */
  size_t i;
  json_t *v;
  json_array_foreach(gone, i, v) {
    const char *id = json_string_value(v);
    const struct store_room_meta *m = id ? store_room_meta(h->store, id) : NULL;
    if (m == NULL || json_object_get(seen, id) || json_object_set_new(seen, id, json_true()) != 0) continue;
    if (hub_room_find(h, id)) {
      /* Opened while the sweep ran: it restored them and holds them; they
       * are written again, as of now. */
      static const enum store_kind kinds[] = {STORE_SETTINGS, STORE_POLICY};
      const char *texts[] = {m->settings, m->policy};
      for (int k = 0; k < 2; k++) {
        struct store_rec *w = texts[k] ? store_rec_new(kinds[k], id) : NULL;
        if (w == NULL || (w->text = strdup(texts[k])) == NULL) {
          store_rec_free(w);
          continue;
        }
        w->ts = hub_now_ms();
        store_submit(h->store, w, 0);
      }
      continue;
    }
    store_room_settings_note(h->store, id, NULL);
    store_room_policy_note(h->store, id, NULL);
    log_info("room_retired room=%s", id);
  }
  json_decref(seen);
  json_decref(gone);
}

void durable_tick(struct hub *h) {
  if (h->store == NULL || h->cfg->retention_days <= 0 || h->retention_due_ms == 0) return;
  if (uv_now(h->loop) < h->retention_due_ms) return;
  h->retention_due_ms = uv_now(h->loop) + RETENTION_EVERY_MS;
  uint64_t now = hub_now_ms();
  uint64_t cut = now - (uint64_t)h->cfg->retention_days * 86400000ULL;
  struct store_rec *rec = store_rec_new(STORE_RETENTION, "");
  json_t *live = json_array();
  if (rec == NULL || live == NULL) {
    store_rec_free(rec);
    json_decref(live);
    return;
  }
  rec->ts = cut;
  /* Rooms live here keep what restores them, however old it is. */
  map_each(&h->rooms, live_room, live);
  rec->text = json_dumps(live, JSON_COMPACT);
  json_decref(live);
  rec->done = on_retention_done;
  rec->arg = h;
  store_submit(h->store, rec, 0);
  struct store_rec *a = store_rec_new(STORE_AUDIT, "");
  if (a == NULL) return;
  a->ts = now;
  snprintf(a->user_id, sizeof(a->user_id), "server");
  snprintf(a->name, sizeof(a->name), "retention_sweep");
  char details[96];
  snprintf(details, sizeof(details), "{\"before\":%" PRIu64 ",\"days\":%d}", cut, h->cfg->retention_days);
  a->text = strdup(details);
  store_submit(h->store, a, 0);
  log_info("retention_sweep before=%" PRIu64 " days=%d", cut, h->cfg->retention_days);
}

/* ---- erasing one user (POST /webrtc/admin/users/{user_id}/erase) ----
 *
 * What huddle holds in memory about the user goes with its stored records:
 * its sessions in live rooms are closed (4007), it leaves waiting rooms,
 * its hands, in-room roles and overrides, bans, rejections and breakout
 * assignments are dropped, its chat in the room logs (what a resume
 * replays) becomes the tombstone history shows, every other logged message
 * naming it is dropped from the logs, and the analytics and audit rings
 * name "anonymous" instead (history_erase_user). */

#define ERASE_CLOSE_CODE 4007

/* 1 if key k holds user ids in the protocol's messages: the envelope's
 * from/to, and payload fields such as user_id, user_ids, by, target, the
 * *_by fields, assigned or participants (docs/protocol.md). Only these
 * are compared: a room id, a message type or a role ("host") can be spelt
 * like a user id without naming that user. */
static int user_key(const char *k) {
  static const char *const keys[] = {"user_id", "user_ids", "users", "from", "to", "by", "target", "host",
                                     "actor", "assigned", "participants", "admitted", "rejected", "waiting"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (strcmp(k, keys[i]) == 0) return 1;
  size_t n = strlen(k);
  return n > 3 && strcmp(k + n - 3, "_by") == 0;
}

/* 1 if v names user_id: a string equal to it under a user key (as the
 * value, or in an array there), at any depth. */
static int json_names_in(json_t *v, const char *user_id, int under_key) {
  if (json_is_string(v)) return under_key && strcmp(json_string_value(v), user_id) == 0;
  if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (json_names_in(x, user_id, under_key)) return 1;
  } else if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) if (json_names_in(x, user_id, user_key(k))) return 1;
  }
  return 0;
}

static int json_names(json_t *v, const char *user_id) { return json_names_in(v, user_id, 0); }

/* The envelope a frame carries (one unmasked text frame, as outbuf_ws_frame
 * builds it), parsed; NULL if it is not one. */
static json_t *frame_json(const struct outbuf *b) {
  if (b->len < 2) return NULL;
  size_t hl = (b->data[1] & 0x7f) == 126 ? 4 : (b->data[1] & 0x7f) == 127 ? 10 : 2;
  if (b->len < hl) return NULL;
  return json_loadb((const char *)b->data + hl, b->len - hl, 0, NULL);
}

/* What becomes of a logged frame: dropped (*drop) if it names the user, a
 * tombstone (a new frame) for the user's own chat, NULL to keep it. */
struct outbuf *durable_erase_frame(const char *user_id, struct outbuf *frame, int *drop) {
  json_t *env = frame_json(frame);
  struct outbuf *out = NULL;
  *drop = 0;
  if (env == NULL || !json_names(env, user_id)) goto done;
  const char *type = json_string_value(json_object_get(env, "type"));
  const char *from = json_string_value(json_object_get(env, "from"));
  json_t *p = json_object_get(env, "payload");
  if (type && strcmp(type, "chat-message") == 0 && from && strcmp(from, user_id) == 0 && json_is_object(p)) {
    if (json_is_true(json_object_get(p, "erased"))) goto done; /* already a tombstone */
    json_object_set_new(p, "text", json_string(STORE_TOMBSTONE));
    json_object_set_new(p, "sender_name", json_string(""));
    json_object_set_new(p, "erased", json_true());
    char *text = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) out = outbuf_ws_frame(0x1, text, strlen(text));
    free(text);
    if (out == NULL) *drop = 1; /* out of memory: better gone than kept */
  } else {
    *drop = 1;
  }
done:
  json_decref(env);
  return out;
}

struct erase_log { struct room *r; const char *user_id; uint64_t upto; /* 0: every entry */ };

static struct outbuf *erase_log_entry(void *arg, const struct roomlog_entry *e, int *drop) {
  struct erase_log *el = arg;
  *drop = 0;
  if (el->upto && e->seq > el->upto) return NULL; /* logged after the erase began: the user came back */
  if (e->frame) return durable_erase_frame(el->user_id, e->frame, drop);
  /* A compact entry (a user-joined kept as data): judged on its frame. */
  struct outbuf *frame = hub_log_frame(el->r, e), *out = NULL;
  *drop = 0;
  if (frame) out = durable_erase_frame(el->user_id, frame, drop);
  outbuf_unref(frame);
  return out;
}

/* The room's log and its gate (messages not yet published). A pending chat
 * of the user becomes a tombstone; other held messages naming the user are
 * published as they are (live members must hear of its leaving) and are
 * dropped from the log when the erase completes (durable_user_erased). */
static void erase_room_log(struct hub *h, struct room *r, const char *user_id, uint64_t upto) {
  struct erase_log el = {r, user_id, upto};
  roomlog_edit(&r->log, erase_log_entry, &el);
  struct gate *g = map_get(&h->store_gates, r->id);
  for (struct gate_item *it = g ? g->head : NULL; it; it = it->next) {
    if (strcmp(it->sender, user_id) != 0 || (upto && it->seq > upto)) continue;
    int drop;
    struct outbuf *b = durable_erase_frame(user_id, it->frame, &drop);
    if (b) {
      outbuf_unref(it->frame);
      it->frame = b;
    }
  }
}

static void erase_in_room(struct hub *h, struct room *r, const char *user_id) {
  r->held++; /* the room outlives what follows even if it empties */
  struct participant *p = room_participant_find(r, user_id);
  if (p) {
    void *session = p->session;
    p->session = NULL;
    if (session) h->sessions.close(h->sessions.data, session, ERASE_CLOSE_CODE, "erased");
    hub_member_leave(h, p, "erased");
  }
  struct waiter *w = room_waiter_find(r, user_id);
  if (w) {
    if (w->session) h->sessions.close(h->sessions.data, w->session, ERASE_CLOSE_CODE, "erased");
    hub_waiter_leave(h, w, "erased");
  }
  room_hand_lower(r, user_id);
  room_transfers_drop_user(r, user_id);
  map_del(&r->banned, user_id);
  if (r->policy) {
    policy_rec_del(r->policy, user_id);
    map_del(&r->policy->rejected, user_id);
  }
  for (size_t i = 0; i < r->nbreakouts; i++) {
    struct breakout *b = &r->breakouts[i];
    for (size_t j = 0; j < b->nassigned;) {
      if (strcmp(b->assigned[j], user_id) == 0) memmove(b->assigned[j], b->assigned[--b->nassigned], ID_MAX + 1);
      else j++;
    }
  }
  durable_policy_save(h, r);
  erase_room_log(h, r, user_id, 0);
  r->held--;
}

struct room_ids {
  char (*id)[ID_MAX + 1];
  size_t n;
};

static void collect_room(const char *k, void *v, void *arg) {
  struct room_ids *ids = arg;
  snprintf(ids->id[ids->n++], ID_MAX + 1, "%s", k);
}

/* Calls fn for every live room by id (a room may go away in fn). */
static void each_room(struct hub *h, const char *user_id, void (*fn)(struct hub *, struct room *, const char *)) {
  struct room_ids ids = {calloc(h->rooms.count ? h->rooms.count : 1, ID_MAX + 1), 0};
  if (ids.id == NULL) return;
  map_each(&h->rooms, collect_room, &ids);
  for (size_t i = 0; i < ids.n; i++) {
    struct room *r = hub_room_find(h, ids.id[i]);
    if (r) fn(h, r, user_id);
    if ((r = hub_room_find(h, ids.id[i])) != NULL) hub_room_release(h, r);
  }
  free(ids.id);
}

/* Each room's last seq when an erase began: its completion revisits only
 * what was logged (or held) by then, so a user who comes straight back
 * keeps what it says afterwards, in replays as in the stored history. */
struct erase_cut { uint64_t seq; char room[ID_MAX + 1]; };
struct erase_cuts { size_t n, cap; struct erase_cut c[]; };

static void collect_cut(const char *k, void *v, void *arg) {
  struct erase_cuts *ec = arg;
  if (ec->n == ec->cap) return; /* rooms made while collecting: none (loop thread) */
  struct erase_cut *c = &ec->c[ec->n++];
  c->seq = ((struct room *)v)->seq;
  snprintf(c->room, sizeof(c->room), "%s", k);
}

static void erase_cuts_note(struct hub *h, const char *user_id) {
  size_t n = h->rooms.count;
  struct erase_cuts *ec = malloc(sizeof(*ec) + (n ? n : 1) * sizeof(ec->c[0]));
  if (ec == NULL) return; /* the completion then revisits every entry, as before */
  ec->n = 0;
  ec->cap = n;
  map_each(&h->rooms, collect_cut, ec);
  free(map_del(&h->erase_cuts, user_id)); /* an erase of the same user again: the newer cut */
  if (map_put(&h->erase_cuts, user_id, ec) != 0) free(ec);
}

void durable_user_erase(struct hub *h, const char *user_id) {
  log_info("user_erase user=%s", user_id);
  each_room(h, user_id, erase_in_room);
  history_erase_user(&h->history, user_id);
  erase_cuts_note(h, user_id);
}

static void erase_log_only(struct hub *h, struct room *r, const char *user_id) { erase_room_log(h, r, user_id, 0); }

void durable_user_erased(struct hub *h, const char *user_id) {
  struct erase_cuts *ec = map_del(&h->erase_cuts, user_id);
  if (ec == NULL) {
    /* No cut (this instance did not see the erase begin): every entry. */
    each_room(h, user_id, erase_log_only);
    history_erase_user(&h->history, user_id);
    return;
  }
  for (size_t i = 0; i < ec->n; i++) {
    struct room *r = ec->c[i].seq ? hub_room_find(h, ec->c[i].room) : NULL; /* 0: nothing logged then */
    if (r) erase_room_log(h, r, user_id, ec->c[i].seq);
  }
  free(ec);
  /* The analytics and audit rings are not revisited: an event is recorded
   * when its action happens (a held chat's at its submission), so the
   * erase's first pass saw every event from before it, and the store, which
   * receives events in that order, anonymizes those and only those. */
}
