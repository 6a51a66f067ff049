/* Message table, dispatch, error replies and local delivery (see signal.h).
 * Sessions (join, resume, the grace period) are in session.c. */
#define LOG_MODULE "signal"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#include "net/ws.h"
#include "room/durable.h"
#include "signal/signal.h"

#define SO SIG_SERVER_ONLY
#define TO SIG_NEEDS_TO
#define SP SIG_SPANS

/* Sorted by name (bsearch); test_envelope checks the order. */
static const struct sig_type types[] = {
  {"analytics-event", MSG_ANALYTICS_EVENT, sig_analytics_event, CMD_NONE, 0},
  {"answer", MSG_ANSWER, sig_answer, CMD_NONE, TO | SP},
  {"breakout-room-assign", MSG_BREAKOUT_ROOM_ASSIGN, sig_breakout_room_assign, CMD_MODERATE, 0},
  {"breakout-room-close", MSG_BREAKOUT_ROOM_CLOSE, sig_breakout_room_close, CMD_MODERATE, 0},
  {"breakout-room-create", MSG_BREAKOUT_ROOM_CREATE, sig_breakout_room_create, CMD_MODERATE, 0},
  {"chat-message", MSG_CHAT_MESSAGE, sig_chat_message, CMD_CHAT, SP},
  {"e2ee-key-exchange", MSG_E2EE_KEY_EXCHANGE, sig_e2ee_key_exchange, CMD_NONE, 0},
  {"e2ee-ratchet-update", MSG_E2EE_RATCHET_UPDATE, sig_e2ee_ratchet_update, CMD_NONE, 0},
  {"error", MSG_ERROR, NULL, CMD_NONE, SO},
  {"file-share-accept", MSG_FILE_SHARE_ACCEPT, sig_file_share_accept, CMD_NONE, TO},
  {"file-share-complete", MSG_FILE_SHARE_COMPLETE, sig_file_share_complete, CMD_NONE, TO},
  {"file-share-offer", MSG_FILE_SHARE_OFFER, sig_file_share_offer, CMD_FILE_SHARE, 0},
  {"file-share-progress", MSG_FILE_SHARE_PROGRESS, sig_file_share_progress, CMD_NONE, TO},
  {"file-share-reject", MSG_FILE_SHARE_REJECT, sig_file_share_reject, CMD_NONE, TO},
  {"hand-raise", MSG_HAND_RAISE, sig_hand_raise, CMD_HAND_RAISE, 0},
  {"hand-raise-queue", MSG_HAND_RAISE_QUEUE, NULL, CMD_NONE, SO},
  {"ice-candidate", MSG_ICE_CANDIDATE, sig_ice_candidate, CMD_NONE, TO | SP},
  {"live-stream-start", MSG_LIVE_STREAM_START, sig_live_stream_start, CMD_STREAM, 0},
  {"live-stream-stop", MSG_LIVE_STREAM_STOP, sig_live_stream_stop, CMD_STREAM, 0},
  {"media-control", MSG_MEDIA_CONTROL, sig_media_control, CMD_NONE, 0},
  {"network-stats", MSG_NETWORK_STATS, sig_network_stats, CMD_NONE, 0},
  {"offer", MSG_OFFER, sig_offer, CMD_NONE, TO | SP},
  {"participant-update", MSG_PARTICIPANT_UPDATE, sig_participant_update, CMD_NONE, 0},
  {"permission-updated", MSG_PERMISSION_UPDATED, sig_permission_updated, CMD_PERMISSIONS_SET, 0},
  {"quality-update", MSG_QUALITY_UPDATE, sig_quality_update, CMD_NONE, 0},
  {"reaction", MSG_REACTION, sig_reaction, CMD_REACTION, 0},
  {"recording-control", MSG_RECORDING_CONTROL, sig_recording_control, CMD_RECORD, 0},
  {"recording-status", MSG_RECORDING_STATUS, NULL, CMD_NONE, SO},
  {"role-updated", MSG_ROLE_UPDATED, sig_role_updated, CMD_ROLE_SET, 0},
  {"room-settings-update", MSG_ROOM_SETTINGS_UPDATE, sig_room_settings_update, CMD_SETTINGS_UPDATE, 0},
  {"room-state", MSG_ROOM_STATE, NULL, CMD_NONE, SO},
  {"screen-share-control", MSG_SCREEN_SHARE_CONTROL, sig_screen_share_control, CMD_NONE, 0},
  {"user-joined", MSG_USER_JOINED, NULL, CMD_NONE, SO},
  {"user-left", MSG_USER_LEFT, NULL, CMD_NONE, SO},
  {"virtual-background-update", MSG_VIRTUAL_BACKGROUND_UPDATE, sig_virtual_background_update, CMD_NONE, 0},
  {"waiting-room-admit", MSG_WAITING_ROOM_ADMIT, sig_waiting_room_admit, CMD_MODERATE, 0},
  {"waiting-room-join", MSG_WAITING_ROOM_JOIN, NULL, CMD_NONE, SO},
  {"waiting-room-reject", MSG_WAITING_ROOM_REJECT, sig_waiting_room_reject, CMD_MODERATE, 0},
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

static int cmp_type(const void *key, const void *row) {
  return strcmp(key, ((const struct sig_type *)row)->name);
}

const struct sig_type *signal_type_find(const char *name) {
  return bsearch(name, types, NTYPES, sizeof(types[0]), cmp_type);
}

size_t signal_type_count(void) { return NTYPES; }

int signal_type_index(const char *name) { return msg_type_id(name); }

const struct sig_type *signal_type_at(size_t i) { return i < NTYPES ? &types[i] : NULL; }

/* What envelope_decode_spans locates for SIG_SPANS types (enum sig_member). */
static const char *const span_members[SIG_M__COUNT] = {"sdp", "type", "candidate", "sdpMid", "sdpMLineIndex",
                                                        "text", "reply_to"};

static int spans_type(const char *name) {
  const struct sig_type *t = signal_type_find(name);
  return t && (t->flags & SIG_SPANS);
}

static const struct envelope_spans spans = {spans_type, span_members, SIG_M__COUNT};

/* ---- sending ---- */

void signal_error(struct conn *c, enum api_err e, const char *ref, const char *detail,
                  int64_t retry_after_ms) {
  struct hub *h = signal_hub(c);
  struct room *room = c->part ? c->part->room : c->waiter ? c->waiter->room : NULL;
  const struct api_err_info *info = api_err_info(e);
  json_t *p = json_pack("{s:s,s:s,s:s}", "code", info->code, "message", info->message,
                        "recovery", info->recovery);
  if (p == NULL) return;
  if (ref) json_object_set_new(p, "ref", json_string(ref));
  if (detail && *detail) json_object_set_new(p, "detail", json_string(detail));
  if (retry_after_ms > 0) json_object_set_new(p, "retry_after_ms", json_integer(retry_after_ms));
  struct outbuf *b = envelope_encode("error", room ? room->id : NULL, "server", NULL,
                                     room ? durable_published_seq(h, room) : 0, hub_now_ms(), p, ref);
  json_decref(p);
  if ((int)e > 0 && e < API_ERR__COUNT) h->stats.errors_by_code[e]++;
  h->stats.out_by_type[MSG_ERROR]++;
  if (b) ws_send(c, b);
}

static void deliver_one(struct hub *h, const struct bus_msg *m, struct participant *p) {
  if (p == NULL || p->session == NULL) return;
  if (m->only_perm && (p->perms & m->only_perm) != m->only_perm) return;
  if (m->type >= 0 && m->type < HUB_STATS_TYPES) h->stats.out_by_type[m->type]++;
  ws_send(p->session, outbuf_ref(m->frame));
}

void signal_bus_deliver(void *arg, const struct bus_msg *m) {
  struct hub *h = arg;
  struct room *r = hub_room_find(h, m->room_id);
  if (r == NULL) return;
  if (m->to) {
    deliver_one(h, m, room_participant_find(r, m->to));
    if (m->also && strcmp(m->also, m->to) != 0) deliver_one(h, m, room_participant_find(r, m->also));
    return;
  }
  for (struct participant *p = r->head; p; p = p->next) {
    if (m->except && strcmp(p->user_id, m->except) == 0) continue;
    deliver_one(h, m, p);
  }
}

/* ---- dispatch ---- */

void signal_on_binary(struct conn *c) {
  if (c->part)
    signal_error(c, API_ERR_INVALID_MESSAGE, NULL, "binary frames are not supported; send JSON text", 0);
}

/* A waiting user may not speak to the room: IN_WAITING_ROOM, with its ref. */
static void waiting_refuse(struct conn *c, const char *data, size_t len) {
  char ref[ENVELOPE_ID_MAX + 1] = "", detail[256];
  struct envelope_in in;
  if (envelope_decode(data, len, &c->srv->json_limits, &in, detail, sizeof(detail), ref, sizeof(ref)) == API_OK)
    envelope_in_free(&in);
  signal_error(c, API_ERR_IN_WAITING_ROOM, ref[0] ? ref : NULL, NULL, 0);
}

/* The transport's budget: websocket_message, peeked before anything else
 * (a refused message spends nothing and changes nothing). */
static int ws_budget_refused(struct conn *c, struct hub *h, const char *user, const char *ref) {
  struct ratelimit_result rr;
  hub_rate_peek(h, user, RATE_WEBSOCKET_MESSAGE, &rr);
  if (rr.allowed) return 0;
  char detail[128];
  h->stats.ratelimit_hits[RATE_WEBSOCKET_MESSAGE]++;
  snprintf(detail, sizeof(detail), "limit %s: %u per %llu ms", ratelimit_class_name(RATE_WEBSOCKET_MESSAGE),
           h->rl.rules[RATE_WEBSOCKET_MESSAGE].limit,
           (unsigned long long)h->rl.rules[RATE_WEBSOCKET_MESSAGE].window_ms);
  signal_error(c, API_ERR_RATE_LIMIT_EXCEEDED, ref, detail, (int64_t)rr.retry_after_ms);
  return 1;
}

/* Whether row *out (found for in's type, or NULL) may handle in, or why not. */
static enum api_err route(const struct envelope_in *in, const struct participant *self, struct room *r,
                          const struct sig_type **out, char *detail, size_t dl) {
  const struct sig_type *t = *out; /* the caller's signal_type_find(in->type) */
  if (t == NULL) return snprintf(detail, dl, "unknown type"), API_ERR_UNKNOWN_MESSAGE_TYPE;
  if (t->flags & SIG_SERVER_ONLY) return API_ERR_SERVER_ONLY_MESSAGE;
  if (t->handler == NULL) {
    snprintf(detail, dl, "'%s' is not handled by this server version", t->name);
    return API_ERR_NOT_IMPLEMENTED;
  }
  if ((t->flags & SIG_NEEDS_TO) && in->to == NULL)
    return snprintf(detail, dl, "'%s' needs 'to'", t->name), API_ERR_INVALID_MESSAGE;
  if (in->to && strcmp(in->to, self->user_id) == 0)
    return snprintf(detail, dl, "'to' names yourself"), API_ERR_INVALID_MESSAGE;
  if (in->to && room_participant_find(r, in->to) == NULL) return API_ERR_TARGET_NOT_FOUND;
  return API_OK;
}

void signal_on_message(struct conn *c, const char *data, size_t len) {
  struct participant *self = c->part;
  if (self == NULL) {
    if (c->waiter) waiting_refuse(c, data, len); /* a detached one is closing */
    return;
  }
  struct hub *h = signal_hub(c);
  struct room *r = self->room;
  char detail[256] = "", ref[ENVELOPE_ID_MAX + 1] = "";
  struct envelope_in in;
  enum api_err e = envelope_decode_spans(data, len, &c->srv->json_limits, &spans, &in, detail, sizeof(detail), ref,
                                         sizeof(ref));
  const struct sig_type *t = e == API_OK ? signal_type_find(in.type) : NULL;
  if (t) h->stats.in_by_type[t->id]++; /* received, refused or not */
  if (ws_budget_refused(c, h, self->user_id, ref[0] ? ref : NULL)) {
    if (e == API_OK) envelope_in_free(&in);
    return;
  }
  if (e != API_OK) {
    hub_rate_check(h, self->user_id, RATE_WEBSOCKET_MESSAGE, &(struct ratelimit_result){0});
    signal_error(c, e, ref[0] ? ref : NULL, detail, 0);
    return;
  }
  e = route(&in, self, r, &t, detail, sizeof(detail));
  if (e == API_OK || e == API_ERR_INVALID_MESSAGE || e == API_ERR_TARGET_NOT_FOUND) {
    /* The one permission and rate check, shared with REST. */
    struct actor a = op_actor_of(self);
    int64_t retry = 0;
    int rc = RATE_WEBSOCKET_MESSAGE;
    enum api_err ae = command_authorize(h, t->cmd, &a, COMMAND_PERM | COMMAND_RATE, &retry, &rc);
    if (ae == API_ERR_RATE_LIMIT_EXCEEDED) {
      snprintf(detail, sizeof(detail), "limit %s: %u per %llu ms", ratelimit_class_name((enum rate_class)rc),
               h->rl.rules[rc].limit, (unsigned long long)h->rl.rules[rc].window_ms);
      signal_error(c, ae, in.id, detail, retry);
      envelope_in_free(&in);
      return;
    }
    if (ae != API_OK) e = ae, detail[0] = '\0';
  }
  hub_rate_check(h, self->user_id, RATE_WEBSOCKET_MESSAGE, &(struct ratelimit_result){0});
  if (e == API_OK) {
    struct sig_ctx ctx = {h, c, self, r, &in};
    e = t->handler(&ctx, detail, sizeof(detail));
    /* Analytics count what the room accepted. */
    if (e == API_OK && c->part && r->hist) history_count_message(r->hist, t->id);
  }
  if (e != API_OK) {
    log_debug("message_refused room=%s user=%s code=%s", r->id, self->user_id, api_err_code(e));
    /* The handler may have detached self; c->part tells. */
    if (c->part) signal_error(c, e, in.id, detail, 0);
  }
  envelope_in_free(&in);
}
