/* Message table, dispatch, join/leave and local delivery (see signal.h). */
#define LOG_MODULE "signal"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "net/server.h"
#include "net/ws.h"
#include "room/family.h"
#include "room/policy.h"
#include "room/room.h"
#include "signal/signal.h"

#define HAND_GRACE_MS 30000 /* a raised hand survives its owner's reconnect */

#define SO SIG_SERVER_ONLY
#define TO SIG_NEEDS_TO

/* Sorted by name (bsearch); test_envelope checks the order. */
static const struct sig_type types[] = {
  {"analytics-event", sig_analytics_event, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"answer", sig_answer, 0, RATE_WEBSOCKET_MESSAGE, TO},
  {"breakout-room-assign", sig_breakout_room_assign, PERM_MODERATE, RATE_WEBSOCKET_MESSAGE, 0},
  {"breakout-room-close", sig_breakout_room_close, PERM_MODERATE, RATE_WEBSOCKET_MESSAGE, 0},
  {"breakout-room-create", sig_breakout_room_create, PERM_MODERATE, RATE_WEBSOCKET_MESSAGE, 0},
  {"chat-message", sig_chat_message, PERM_CHAT, RATE_CHAT_MESSAGE, 0},
  {"e2ee-key-exchange", sig_e2ee_key_exchange, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"e2ee-ratchet-update", sig_e2ee_ratchet_update, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"error", NULL, 0, RATE_WEBSOCKET_MESSAGE, SO},
  {"file-share-accept", sig_file_share_accept, 0, RATE_WEBSOCKET_MESSAGE, TO},
  {"file-share-complete", sig_file_share_complete, 0, RATE_WEBSOCKET_MESSAGE, TO},
  {"file-share-offer", sig_file_share_offer, PERM_SHARE_FILES, RATE_FILE_SHARE, 0},
  {"file-share-progress", sig_file_share_progress, 0, RATE_WEBSOCKET_MESSAGE, TO},
  {"file-share-reject", sig_file_share_reject, 0, RATE_WEBSOCKET_MESSAGE, TO},
  {"hand-raise", sig_hand_raise, PERM_RAISE_HAND, RATE_HAND_RAISE, 0},
  {"hand-raise-queue", NULL, 0, RATE_WEBSOCKET_MESSAGE, SO},
  {"ice-candidate", sig_ice_candidate, 0, RATE_WEBSOCKET_MESSAGE, TO},
  {"live-stream-start", sig_live_stream_start, PERM_STREAM, RATE_WEBSOCKET_MESSAGE, 0},
  {"live-stream-stop", sig_live_stream_stop, PERM_STREAM, RATE_WEBSOCKET_MESSAGE, 0},
  {"media-control", sig_media_control, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"network-stats", sig_network_stats, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"offer", sig_offer, 0, RATE_WEBSOCKET_MESSAGE, TO},
  {"participant-update", sig_participant_update, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"permission-updated", sig_permission_updated, PERM_MODERATE, RATE_SETTINGS_UPDATE, 0},
  {"quality-update", sig_quality_update, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"reaction", sig_reaction, PERM_REACT, RATE_REACTION, 0},
  {"recording-control", sig_recording_control, PERM_RECORD, RATE_WEBSOCKET_MESSAGE, 0},
  {"recording-status", NULL, 0, RATE_WEBSOCKET_MESSAGE, SO},
  {"role-updated", sig_role_updated, PERM_MODERATE, RATE_SETTINGS_UPDATE, 0},
  {"room-settings-update", sig_room_settings_update, PERM_MODERATE, RATE_SETTINGS_UPDATE, 0},
  {"room-state", NULL, 0, RATE_WEBSOCKET_MESSAGE, SO},
  {"screen-share-control", sig_screen_share_control, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"user-joined", NULL, 0, RATE_WEBSOCKET_MESSAGE, SO},
  {"user-left", NULL, 0, RATE_WEBSOCKET_MESSAGE, SO},
  {"virtual-background-update", sig_virtual_background_update, 0, RATE_WEBSOCKET_MESSAGE, 0},
  {"waiting-room-admit", sig_waiting_room_admit, PERM_MODERATE, RATE_WEBSOCKET_MESSAGE, 0},
  {"waiting-room-join", NULL, 0, RATE_WEBSOCKET_MESSAGE, SO},
  {"waiting-room-reject", sig_waiting_room_reject, PERM_MODERATE, RATE_WEBSOCKET_MESSAGE, 0},
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

static int cmp_type(const void *key, const void *row) {
  return strcmp(key, ((const struct sig_type *)row)->name);
}

const struct sig_type *signal_type_find(const char *name) {
  return bsearch(name, types, NTYPES, sizeof(types[0]), cmp_type);
}

size_t signal_type_count(void) { return NTYPES; }

int signal_type_index(const char *name) {
  const struct sig_type *t = signal_type_find(name);
  return t ? (int)(t - types) : -1;
}

struct room *signal_room_find(struct server *s, const char *room_id) {
  return map_get(&s->rooms, room_id);
}

const struct sig_type *signal_type_at(size_t i) { return i < NTYPES ? &types[i] : NULL; }

/* ---- sending ---- */

void signal_error(struct conn *c, enum api_err e, const char *ref, const char *detail,
                  int64_t retry_after_ms) {
  struct room *room = c->part ? c->part->room : c->waiter ? c->waiter->room : NULL;
  const struct api_err_info *info = api_err_info(e);
  json_t *p = json_pack("{s:s,s:s,s:s}", "code", info->code, "message", info->message,
                        "recovery", info->recovery);
  if (p == NULL) return;
  if (ref) json_object_set_new(p, "ref", json_string(ref));
  if (detail && *detail) json_object_set_new(p, "detail", json_string(detail));
  if (retry_after_ms > 0) json_object_set_new(p, "retry_after_ms", json_integer(retry_after_ms));
  struct outbuf *b = envelope_encode("error", room ? room->id : NULL, "server", NULL,
                                     room ? room->seq : 0, server_now_ms(), p, ref);
  json_decref(p);
  if ((int)e > 0 && e < API_ERR__COUNT) c->srv->stats.errors_by_code[e]++;
  c->srv->stats.out_by_type[signal_type_index("error")]++;
  if (b) ws_send(c, b);
}

int signal_send(struct sig_ctx *ctx, const struct sig_out *o) {
  struct room *r = ctx->room;
  struct outbuf *b = o->raw_payload
      ? envelope_encode_raw(o->type, r->id, o->from, o->to, room_seq_next(r), server_now_ms(),
                            o->raw_payload, o->raw_len, o->ref)
      : envelope_encode(o->type, r->id, o->from, o->to, room_seq_next(r), server_now_ms(), o->payload,
                        o->ref);
  if (b == NULL) return -1;
  struct bus_msg m = {r->id, o->to, o->except, o->also, o->only_perm, signal_type_index(o->type), b};
  int rc = ctx->srv->bus->ops->publish(ctx->srv->bus, &m);
  outbuf_unref(b);
  return rc;
}

int signal_publish(struct sig_ctx *ctx, const char *type, const char *from, const char *to,
                   const char *except, json_t *payload) {
  struct sig_out o = {type, from, to, except, NULL, 0, payload, NULL, NULL, 0};
  return signal_send(ctx, &o);
}

static void deliver_one(struct server *s, const struct bus_msg *m, struct participant *p) {
  if (p == NULL || p->conn == NULL) return;
  if (m->only_perm && (p->perms & m->only_perm) != m->only_perm) return;
  if (m->type >= 0 && m->type < STATS_TYPES) s->stats.out_by_type[m->type]++;
  ws_send(p->conn, outbuf_ref(m->frame));
}

void signal_bus_deliver(void *arg, const struct bus_msg *m) {
  struct server *s = arg;
  struct room *r = map_get(&s->rooms, m->room_id);
  if (r == NULL) return;
  if (m->to) {
    deliver_one(s, m, room_participant_find(r, m->to));
    if (m->also && strcmp(m->also, m->to) != 0) deliver_one(s, m, room_participant_find(r, m->also));
    return;
  }
  for (struct participant *p = r->head; p; p = p->next) {
    if (m->except && strcmp(p->user_id, m->except) == 0) continue;
    deliver_one(s, m, p);
  }
}

/* ---- join and leave ---- */

enum api_err signal_admission_check(struct server *s, const char *room_id,
                                    const struct token_claims *claims, int admitted,
                                    int64_t *retry_after_ms) {
  if (claims->room[0] && strcmp(claims->room, room_id) != 0) return API_ERR_TOKEN_ROOM_MISMATCH;
  struct room *r = map_get(&s->rooms, room_id);
  int staff = claims->admin || claims->role >= ROOM_ROLE_MODERATOR;
  if (policy_banned(s, room_id, claims->sub)) return API_ERR_USER_BANNED; /* the family's bans too */
  if (admitted) return API_OK; /* a grant: moving between a room and its breakouts */
  enum api_err be = policy_breakout_entry(s, room_id, claims);
  if (be != API_OK) return be;
  if (r && r->settings.locked && !staff && room_participant_find(r, claims->sub) == NULL)
    return API_ERR_ROOM_LOCKED;
  /* Waiting users do not take a seat until admitted (the check repeats then). */
  int will_wait = r && r->settings.waiting_room && !staff;
  if (r && !will_wait && (int)r->count >= r->settings.max_participants &&
      room_participant_find(r, claims->sub) == NULL)
    return API_ERR_ROOM_FULL;
  if (r == NULL) {
    /* Creating a room counts against room_create, whoever joins it first. */
    struct ratelimit_result rr;
    ratelimit_check(&s->rl, claims->sub, RATE_ROOM_CREATE, uv_now(s->loop), &rr);
    if (!rr.allowed) {
      s->stats.ratelimit_hits[RATE_ROOM_CREATE]++;
      if (retry_after_ms) *retry_after_ms = (int64_t)rr.retry_after_ms;
      return API_ERR_RATE_LIMIT_EXCEEDED;
    }
  }
  return API_OK;
}

static json_t *active_media(struct room *r, uint64_t now, json_t **streams) {
  *streams = json_array();
  if (r->hist == NULL) return json_null();
  for (size_t i = 0; i < r->hist->nstreams; i++)
    if (r->hist->streams[i].stopped_ms == 0)
      json_array_append_new(*streams, history_stream_json(&r->hist->streams[i], now));
  struct recording *rec = history_recording_active(r->hist);
  return rec ? history_recording_json(rec, now) : json_null();
}

static json_t *room_state(struct server *s, struct room *r, struct participant *self) {
  json_t *parts = json_array();
  for (struct participant *p = r->head; p; p = p->next)
    json_array_append_new(parts, room_participant_json(p));
  json_t *me = room_participant_json(self);
  json_object_set_new(me, "session_id", json_string(self->session_id));
  json_object_set_new(me, "resume_token", json_string(self->resume_token));
  json_object_set_new(me, "permissions", room_perms_json(self->perms));
  json_t *streams;
  json_t *rec = active_media(r, server_now_ms(), &streams);
  json_t *st = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I}", "self", me, "participants", parts,
                         "settings", room_settings_json(r), "hand_raise_queue", room_hands_json(r),
                         "recording", rec, "live_streams", streams, "breakout_rooms",
                         signal_breakouts_json(s, r), "ice_servers", api_ice_servers(s, self->user_id),
                         "seq", (json_int_t)r->seq);
  if (st && r->parent[0]) json_object_set_new(st, "parent_room", json_string(r->parent));
  if (st && (self->perms & PERM_MODERATE)) json_object_set_new(st, "waiting_room", signal_waiting_json(r));
  return st;
}

struct room *signal_room_create(struct server *s, const char *room_id, uint64_t now) {
  struct room *r = room_new(room_id, s->cfg->max_room_participants, now);
  if (r == NULL) return NULL;
  r->hist = history_get_or_create(&s->history, room_id, now);
  if (r->hist == NULL || map_put(&s->rooms, room_id, r) != 0) {
    room_free(r);
    return NULL;
  }
  log_info("room_created room=%s", room_id);
  return r;
}

/* Unregisters and frees an idle room; what outlives it stays in history. */
void signal_room_release(struct server *s, struct room *r) {
  if (family_collapse(s, r)) return; /* an empty family closes as a whole */
  if (!room_idle(r, server_now_ms())) return;
  log_info("room_closed room=%s peak=%zu", r->id, r->peak);
  map_del(&s->rooms, r->id);
  if (r->hist) {
    signal_media_stop_all(s, r->hist);
    history_close(&s->history, r->hist, server_now_ms());
  }
  room_free(r);
}

/* Gives role host to the longest-present moderator, else participant, when
 * the room has none: a room is never left without someone who moderates. */
static void host_handoff(struct server *s, struct room *r, const char *why) {
  /* Breakout rooms keep the roles people bring; the main room's host rules. */
  if (r->parent[0] || room_first_with_role(r, ROOM_ROLE_HOST)) return;
  struct participant *p = room_first_with_role(r, ROOM_ROLE_MODERATOR);
  if (p == NULL) p = room_first_with_role(r, ROOM_ROLE_PARTICIPANT);
  if (p == NULL) return;
  enum room_role was = p->role;
  p->role = ROOM_ROLE_HOST;
  room_participant_perms_update(p);
  log_info("host_handoff room=%s user=%s reason=%s", r->id, p->user_id, why);
  if (r->hist) history_audit(r->hist, server_now_ms(), "server", "host_handoff", p->user_id,
                             json_pack("{s:s}", "reason", why));
  struct sig_ctx ctx = {s, NULL, NULL, r, NULL};
  json_t *out = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "user_id", p->user_id, "role", "host",
                          "previous_role", perm_role_name(was), "permissions", room_perms_json(p->perms),
                          "by", "server", "reason", why);
  signal_publish(&ctx, "role-updated", "server", NULL, NULL, out);
  json_decref(out);
}

void signal_join_admitted(struct conn *c, struct room *r, const struct token_claims *claims) {
  struct server *s = c->srv;
  uint64_t now = server_now_ms();
  struct participant *p = room_participant_new(claims, now);
  if (p == NULL || room_participant_add(r, p) != 0) {
    room_participant_free(p);
    ws_close(c, 1011, "internal error");
    signal_room_release(s, r);
    return;
  }
  p->conn = c;
  c->part = p;
  policy_admitted(s, r, claims);
  /* The first moderator-capable joiner of a room without a host hosts it. */
  int promoted = 0;
  if (p->role == ROOM_ROLE_MODERATOR && !r->parent[0] && room_first_with_role(r, ROOM_ROLE_HOST) == NULL) {
    p->role = ROOM_ROLE_HOST;
    room_participant_perms_update(p);
    promoted = 1;
    if (r->hist) history_audit(r->hist, now, "server", "auto_host", p->user_id, NULL);
  }
  int hand_back = room_hand_find(r, p->user_id) >= 0;
  if (hand_back) r->hands[room_hand_find(r, p->user_id)].away_ms = 0;
  if (r->hist) {
    r->hist->sessions++;
    if (r->count > r->hist->peak) r->hist->peak = r->count;
    history_event(r->hist, now, "join", p->user_id, NULL, 0, NULL);
  }
  log_info("joined room=%s user=%s role=%s participants=%zu%s", r->id, p->user_id,
           perm_role_name(p->role), r->count, promoted ? " auto_host=1" : "");

  struct sig_ctx ctx = {s, c, p, r, NULL};
  json_t *state = room_state(s, r, p);
  struct outbuf *b = envelope_encode("room-state", r->id, "server", NULL, r->seq, now, state, NULL);
  json_decref(state);
  if (b) ws_send(c, b);
  json_t *joined = room_participant_json(p);
  signal_publish(&ctx, "user-joined", "server", NULL, p->user_id, joined);
  json_decref(joined);
  if (hand_back) {
    json_t *q = json_pack("{s:o}", "queue", room_hands_json(r));
    signal_publish(&ctx, "hand-raise-queue", "server", NULL, NULL, q);
    json_decref(q);
  }
}

static void waiting_enter(struct conn *c, struct room *r, const struct token_claims *claims) {
  struct server *s = c->srv;
  uint64_t now = server_now_ms();
  struct waiter *w = room_waiter_add(r, c, claims, now);
  if (w == NULL) {
    ws_close(c, 1011, "internal error");
    return;
  }
  c->waiter = w;
  log_info("waiting room=%s user=%s waiting=%zu", r->id, claims->sub, r->nwaiting);
  /* The waiting user hears only this, until admitted or rejected. */
  json_t *mine = json_pack("{s:s,s:i}", "status", "waiting", "position", (int)r->nwaiting);
  struct outbuf *b = envelope_encode("waiting-room-join", r->id, "server", NULL, r->seq, now, mine, NULL);
  json_decref(mine);
  if (b) ws_send(c, b);
  struct sig_ctx ctx = {s, NULL, NULL, r, NULL};
  json_t *note = json_pack("{s:s,s:s,s:s,s:I}", "user_id", claims->sub, "name",
                           claims->name[0] ? claims->name : claims->sub, "status", "waiting",
                           "requested_at", (json_int_t)now);
  struct sig_out o = {"waiting-room-join", "server", NULL, NULL, NULL, PERM_MODERATE, note, NULL, NULL, 0};
  signal_send(&ctx, &o);
  json_decref(note);
}

void signal_join(struct conn *c, const char *room_id, const struct token_claims *claims, int admitted) {
  struct server *s = c->srv;
  uint64_t now = server_now_ms();
  struct room *r = map_get(&s->rooms, room_id);
  if (r == NULL && (r = signal_room_create(s, room_id, now)) != NULL)
    history_origin(r->hist, claims->sub, NULL); /* history bounds count it against its creator */
  if (r == NULL) {
    ws_close(c, 1011, "internal error");
    return;
  }
  /* One connection per user and room: the newest wins. */
  struct participant *old = room_participant_find(r, claims->sub);
  struct waiter *oldw = room_waiter_find(r, claims->sub);
  struct conn *oc = old ? old->conn : oldw ? oldw->conn : NULL;
  /* Replacing your own session keeps your role, overrides and admission. */
  struct token_claims kept = *claims;
  if (old && oc) {
    kept.role = old->role;
    kept.perms_set = old->perms_set;
    kept.perms_val = old->perms_val;
    claims = &kept;
    admitted = 1;
  }
  if (oc) {
    r->held++; /* keep the room while its only member is replaced */
    signal_error(oc, API_ERR_SESSION_REPLACED, NULL, NULL, 0);
    signal_detach(oc, "replaced");
    ws_close(oc, 4001, "session replaced");
    r->held--;
  }
  int staff = claims->admin || claims->role >= ROOM_ROLE_MODERATOR;
  if (r->settings.waiting_room && !staff && !admitted) waiting_enter(c, r, claims);
  else signal_join_admitted(c, r, claims);
}

static void waiter_detach(struct conn *c, const char *reason) {
  struct waiter *w = c->waiter;
  struct server *s = c->srv;
  struct room *r = w->room;
  c->waiter = NULL;
  char user[ID_MAX + 1];
  snprintf(user, sizeof(user), "%s", w->claims.sub);
  room_waiter_remove(r, w);
  log_info("waiting_left room=%s user=%s reason=%s", r->id, user, reason ? reason : "left");
  struct sig_ctx ctx = {s, NULL, NULL, r, NULL};
  json_t *note = json_pack("{s:s,s:s}", "user_id", user, "status", "left");
  struct sig_out o = {"waiting-room-join", "server", NULL, NULL, NULL, PERM_MODERATE, note, NULL, NULL, 0};
  if (r->count) signal_send(&ctx, &o);
  json_decref(note);
  signal_room_release(s, r);
}

void signal_detach(struct conn *c, const char *reason) {
  if (c->waiter) {
    waiter_detach(c, reason);
    return;
  }
  struct participant *p = c->part;
  if (p == NULL) return;
  struct server *s = c->srv;
  struct room *r = p->room;
  uint64_t now = server_now_ms();
  c->part = NULL;
  p->conn = NULL;
  room_participant_remove(r, p);
  room_transfers_drop_user(r, p->user_id);
  /* A raised hand waits for its owner's return (HAND_GRACE_MS). */
  int had_hand = room_hand_find(r, p->user_id) >= 0;
  if (had_hand) r->hands[room_hand_find(r, p->user_id)].away_ms = now;
  room_hands_expire(r, now, HAND_GRACE_MS);
  if (r->hist) {
    uint64_t len = now > p->joined_ms ? now - p->joined_ms : 0;
    r->hist->closed_session_ms += len;
    history_event(r->hist, now, "leave", p->user_id, reason ? reason : "left", (int64_t)len, NULL);
  }
  log_info("left room=%s user=%s reason=%s participants=%zu", r->id, p->user_id,
           reason ? reason : "left", r->count);
  if (r->count > 0) {
    struct sig_ctx ctx = {s, NULL, NULL, r, NULL};
    json_t *left = json_pack("{s:s,s:s}", "user_id", p->user_id, "reason", reason ? reason : "left");
    signal_publish(&ctx, "user-left", "server", NULL, NULL, left);
    json_decref(left);
    if (had_hand) {
      json_t *q = json_pack("{s:o}", "queue", room_hands_json(r));
      signal_publish(&ctx, "hand-raise-queue", "server", NULL, NULL, q);
      json_decref(q);
    }
    /* A replaced session comes straight back with its role: no hand-off. */
    if (p->role == ROOM_ROLE_HOST && !(reason && strcmp(reason, "replaced") == 0)) host_handoff(s, r, "host_left");
  }
  room_participant_free(p);
  signal_room_release(s, r);
}

void signal_room_evict(struct server *s, struct room *r, int code, const char *reason) {
  uint64_t now = server_now_ms();
  r->held++;
  while (r->head) {
    struct participant *p = r->head;
    struct conn *c = p->conn;
    room_participant_remove(r, p);
    room_transfers_drop_user(r, p->user_id);
    if (r->hist) {
      uint64_t len = now > p->joined_ms ? now - p->joined_ms : 0;
      r->hist->closed_session_ms += len;
      history_event(r->hist, now, "leave", p->user_id, reason, (int64_t)len, NULL);
    }
    if (c) {
      c->part = NULL;
      ws_close(c, code, reason);
    }
    room_participant_free(p);
  }
  r->held--;
  signal_room_release(s, r);
}

struct idle_rooms { char (*ids)[ID_MAX + 1]; size_t n, cap; uint64_t now; };

static void collect_idle(const char *k, void *v, void *arg) {
  struct idle_rooms *ir = arg;
  if (!room_idle(v, ir->now) || ir->n == ir->cap) return;
  snprintf(ir->ids[ir->n++], ID_MAX + 1, "%s", k);
}

void signal_rooms_sweep(struct server *s) {
  char ids[64][ID_MAX + 1];
  struct idle_rooms ir = {ids, 0, 64, server_now_ms()};
  family_sweep(s);
  map_each(&s->rooms, collect_idle, &ir);
  for (size_t i = 0; i < ir.n; i++) {
    struct room *r = map_get(&s->rooms, ids[i]);
    if (r) signal_room_release(s, r);
  }
}

static void free_room(const char *key, void *value, void *arg) { room_free(value); }

void signal_rooms_free(struct server *s) {
  signal_grants_free(s);
  map_each(&s->rooms, free_room, NULL);
  map_free(&s->rooms);
}

/* ---- dispatch ---- */

void signal_on_binary(struct conn *c) {
  if (c->part)
    signal_error(c, API_ERR_INVALID_MESSAGE, NULL, "binary frames are not supported; send JSON text", 0);
}

void signal_on_message(struct conn *c, const char *data, size_t len) {
  struct participant *self = c->part;
  if (self == NULL) {
    /* Waiting users may not speak to the room; a detached one is closing. */
    if (c->waiter) {
      char ref[ENVELOPE_ID_MAX + 1] = "", detail[256];
      struct envelope_in in;
      if (envelope_decode(data, len, &c->srv->json_limits, &in, detail, sizeof(detail), ref, sizeof(ref)) == API_OK)
        envelope_in_free(&in);
      signal_error(c, API_ERR_IN_WAITING_ROOM, ref[0] ? ref : NULL, NULL, 0);
    }
    return;
  }
  struct room *r = self->room;
  char detail[256] = "", ref[ENVELOPE_ID_MAX + 1] = "";
  struct server *srv = c->srv;
  uint64_t now = uv_now(srv->loop);
  struct ratelimit_result rr;
  /* websocket_message counts every message, well-formed or not; a message
   * refused by a limit spends nothing and changes nothing. */
  ratelimit_peek(&srv->rl, self->user_id, RATE_WEBSOCKET_MESSAGE, now, &rr);
  enum rate_class rc = RATE_WEBSOCKET_MESSAGE;
  struct envelope_in in;
  enum api_err e = envelope_decode(data, len, &srv->json_limits, &in, detail, sizeof(detail), ref, sizeof(ref));
  const struct sig_type *t = e == API_OK ? signal_type_find(in.type) : NULL;
  if (t) srv->stats.in_by_type[t - types]++; /* received, refused or not */
  if (rr.allowed && t && !(t->flags & SIG_SERVER_ONLY) && t->handler && t->rate != RATE_WEBSOCKET_MESSAGE) {
    rc = t->rate;
    ratelimit_peek(&srv->rl, self->user_id, rc, now, &rr);
  }
  if (!rr.allowed) {
    srv->stats.ratelimit_hits[rc]++;
    snprintf(detail, sizeof(detail), "limit %s: %u per %llu ms", ratelimit_class_name(rc),
             srv->rl.rules[rc].limit, (unsigned long long)srv->rl.rules[rc].window_ms);
    signal_error(c, API_ERR_RATE_LIMIT_EXCEEDED, ref[0] ? ref : NULL, detail, (int64_t)rr.retry_after_ms);
    envelope_in_free(&in);
    return;
  }
  ratelimit_check(&srv->rl, self->user_id, RATE_WEBSOCKET_MESSAGE, now, &rr);
  if (rc != RATE_WEBSOCKET_MESSAGE) ratelimit_check(&srv->rl, self->user_id, rc, now, &rr);
  if (e != API_OK) {
    signal_error(c, e, ref[0] ? ref : NULL, detail, 0);
    return;
  }
  if (t == NULL) {
    e = API_ERR_UNKNOWN_MESSAGE_TYPE;
    snprintf(detail, sizeof(detail), "unknown type");
  } else if (t->flags & SIG_SERVER_ONLY) {
    e = API_ERR_SERVER_ONLY_MESSAGE;
  } else if (t->handler == NULL) {
    e = API_ERR_NOT_IMPLEMENTED;
    snprintf(detail, sizeof(detail), "'%s' is not handled by this server version", t->name);
  } else if (t->perm && (self->perms & t->perm) != t->perm) {
    e = API_ERR_PERMISSION_DENIED;
  } else if ((t->flags & SIG_NEEDS_TO) && in.to == NULL) {
    e = API_ERR_INVALID_MESSAGE;
    snprintf(detail, sizeof(detail), "'%s' needs 'to'", t->name);
  } else if (in.to && strcmp(in.to, self->user_id) == 0) {
    e = API_ERR_INVALID_MESSAGE;
    snprintf(detail, sizeof(detail), "'to' names yourself");
  } else if (in.to && room_participant_find(r, in.to) == NULL) {
    e = API_ERR_TARGET_NOT_FOUND;
  } else {
    struct sig_ctx ctx = {c->srv, c, self, r, &in};
    e = t->handler(&ctx, detail, sizeof(detail));
    /* Analytics count what the room accepted. */
    if (e == API_OK && c->part && r->hist) r->hist->messages_by_type[t - types]++;
  }
  if (e != API_OK) {
    log_debug("message_refused room=%s user=%s code=%s", r->id, self->user_id, api_err_code(e));
    /* The handler may have detached self; c->part tells. */
    if (c->part) signal_error(c, e, in.id, detail, 0);
  }
  envelope_in_free(&in);
}
