/* Rooms as a resource an operator manages: create ahead of time, list, read,
 * close (POST/GET /webrtc/rooms, GET/DELETE /webrtc/rooms/{room_id}), and
 * the side-effect-free admission check GET .../validate that tells a client
 * why its WebSocket upgrade would be refused. Built on the hub (room
 * creation, settings, eviction; sessions are reached only through the hub's
 * session callbacks); rooms live in memory only until persistence lands. */
#define LOG_MODULE "rooms"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "net/http.h"
#include "net/server.h"
#include "room/command.h"
#include "room/hub.h"
#include "room/op.h"
#include "room/room.h"

/* The operator's view of a live room (GET, POST, list). New reference. */
static json_t *room_view(const struct room *r, uint64_t now) {
  json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:o,s:I}", "room_id", r->id, "created_at",
                        (json_int_t)r->created_ms, "participants", (json_int_t)r->count, "waiting",
                        (json_int_t)r->nwaiting, "peak_participants", (json_int_t)r->peak, "settings",
                        room_settings_json(r), "breakout_rooms", (json_int_t)r->nbreakouts);
  if (o == NULL) return NULL;
  json_object_set_new(o, "parent_room", r->parent[0] ? json_string(r->parent) : json_null());
  /* An empty room kept open (pre-created, or people returning) until then. */
  json_object_set_new(o, "empty_until", r->linger_until_ms > now ? json_integer((json_int_t)r->linger_until_ms)
                                                                 : json_null());
  return o;
}

json_t *api_room_view(const struct room *r, uint64_t now) { return room_view(r, now); }

/* The acting operator for settings applied at creation. */
static struct actor creator(const struct api_req *r) {
  struct actor a = {r->claims.sub, ROOM_ROLE_HOST, ~0u, r->claims.admin};
  return a;
}

/* A parsed POST /webrtc/rooms body (pointers borrowed from body). */
struct create_req {
  const char *id;
  json_t *settings;      /* NULL or an object */
  int timeout_s;
};

/* Checks the body: known fields, a valid room_id, an object of settings, an
 * empty_timeout in range. Returns API_OK or the refusal (detail filled). */
static enum api_err create_parse(struct api_req *r, json_t *body, struct create_req *out, char *detail, size_t dl) {
  const char *k;
  json_t *v;
  json_object_foreach(body, k, v) {
    if (strcmp(k, "room_id") != 0 && strcmp(k, "settings") != 0 && strcmp(k, "empty_timeout") != 0) {
      snprintf(detail, dl, "unknown field '%.40s' (room_id, settings, empty_timeout)", k);
      return API_ERR_INVALID_MESSAGE;
    }
  }
  json_t *jid = json_object_get(body, "room_id");
  out->id = json_is_string(jid) ? json_string_value(jid) : NULL;
  if (out->id == NULL || !id_valid(out->id, json_string_length(jid))) {
    snprintf(detail, dl, "send room_id as a string");
    return API_ERR_INVALID_ROOM_ID;
  }
  out->settings = json_object_get(body, "settings");
  if (out->settings && !json_is_object(out->settings)) {
    snprintf(detail, dl, "settings must be an object");
    return API_ERR_INVALID_SETTINGS;
  }
  json_t *jto = json_object_get(body, "empty_timeout");
  if (jto && (!json_is_integer(jto) || json_integer_value(jto) < 1 || json_integer_value(jto) > 604800)) {
    snprintf(detail, dl, "empty_timeout must be an integer from 1 to 604800 (seconds)");
    return API_ERR_INVALID_MESSAGE;
  }
  out->timeout_s = jto ? (int)json_integer_value(jto) : r->srv->cfg->room_empty_timeout;
  if (!r->claims.admin && r->claims.room[0] && strcmp(r->claims.room, out->id) != 0) {
    snprintf(detail, dl, "room binding: the token is for room '%s'", r->claims.room);
    return API_ERR_TOKEN_ROOM_MISMATCH;
  }
  return API_OK;
}

/* Spends one room_create for the caller (the command table's CMD_ROOM_CREATE);
 * on refusal replies 429 and returns -1. */
static int create_budget(struct api_req *r) {
  struct actor a = creator(r);
  int64_t retry = 0;
  if (command_authorize(r->hub, CMD_ROOM_CREATE, &a, COMMAND_RATE, &retry, NULL) == API_OK) return 0;
  api_reply_rate_limited(r, RATE_ROOM_CREATE, retry);
  return -1;
}

/* POST /webrtc/rooms  {"room_id": "standup", "settings": {...}, "empty_timeout": 600} */
void api_rooms_create(struct api_req *r) {
  struct hub *h = r->hub;
  if (!r->claims.admin && r->claims.role != ROOM_ROLE_HOST) {
    api_reply_error(r, API_ERR_FORBIDDEN, "creating a room needs a host or admin token");
    return;
  }
  json_t *body = api_body_object(r);
  if (body == NULL) return;
  char detail[200] = "";
  struct create_req cr;
  enum api_err e = create_parse(r, body, &cr, detail, sizeof(detail));
  if (e == API_OK && (hub_room_find(h, cr.id) || cluster_room_taken(h->cluster, cr.id)))
    e = API_ERR_ROOM_ALREADY_EXISTS; /* several instances: live on another one */
  if (e != API_OK) {
    json_decref(body);
    api_reply_error(r, e, detail[0] ? detail : NULL);
    return;
  }
  /* Creating a room spends room_create, as a join that creates one does. */
  if (create_budget(r) != 0) {
    json_decref(body);
    return;
  }
  uint64_t now = hub_now_ms();
  struct room *room = hub_room_create(h, cr.id);
  if (room == NULL) {
    json_decref(body);
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  room->linger_until_ms = now + (uint64_t)cr.timeout_s * 1000;
  history_origin(room->hist, r->claims.sub, NULL); /* history bounds count it against its creator */
  if (cr.settings && json_object_size(cr.settings) > 0) {
    struct actor a = creator(r);
    e = op_settings_update(h, room, &a, cr.settings, detail, sizeof(detail));
    if (e != API_OK) {
      room->linger_until_ms = 0;
      hub_room_release(h, room); /* nobody saw it: gone again */
      json_decref(body);
      api_reply_error(r, e, detail[0] ? detail : NULL);
      return;
    }
  }
  if (room->hist) history_audit(room->hist, now, r->claims.sub, "room_create", "",
                                json_pack("{s:i}", "empty_timeout", cr.timeout_s));
  log_info("room_precreated room=%s by=%s empty_timeout_s=%d", cr.id, r->claims.sub, cr.timeout_s);
  json_decref(body);
  api_reply_json(r, 201, json_pack("{s:o}", "room", room_view(room, now)));
}

static void list_row(const char *k, void *v, void *arg) {
  json_array_append_new(arg, room_view(v, hub_now_ms()));
}

/* GET /webrtc/rooms (admin): every live room with its counts. */
void api_rooms_list(struct api_req *r) {
  if (api_require_admin(r) != 0) return;
  hub_rooms_sweep(r->hub); /* expired pre-created rooms are gone, not listed */
  json_t *rooms = json_array();
  map_each(&r->hub->rooms, list_row, rooms);
  cluster_rooms_list(r->hub->cluster, rooms); /* several instances: the others' rooms */
  api_reply_json(r, 200, json_pack("{s:o,s:I}", "rooms", rooms, "count", (json_int_t)json_array_size(rooms)));
}

/* GET /webrtc/rooms/{room_id}: any token that may speak for the room. */
void api_rooms_get(struct api_req *r) {
  struct api_room ar;
  hub_rooms_sweep(r->hub);
  if (api_room_access(r, CMD_NONE, &ar) != 0) return;
  if (ar.room == NULL) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, NULL);
    return;
  }
  api_reply_json(r, 200, json_pack("{s:o}", "room", room_view(ar.room, hub_now_ms())));
}

/* Close code and reason of a room closed by DELETE (docs/protocol.md). */
#define ROOM_CLOSED_CODE 4006
#define ROOM_CLOSED_REASON "room closed"

/* Tells a member's or waiter's session (NULL: away, nobody to tell) that
 * room r closed: an error ROOM_CLOSED, no ref, before the close. */
static void tell_closed(struct hub *h, struct room *r, void *session, const char *by) {
  if (session == NULL) return;
  const struct api_err_info *info = api_err_info(API_ERR_ROOM_CLOSED);
  char detail[128];
  snprintf(detail, sizeof(detail), "closed by %s", by);
  json_t *p = json_pack("{s:s,s:s,s:s,s:s}", "code", info->code, "message", info->message, "recovery",
                        info->recovery, "detail", detail);
  if (p == NULL) return;
  h->stats.errors_by_code[API_ERR_ROOM_CLOSED]++;
  hub_send_session(h, session, r, "error", p, NULL);
  json_decref(p);
}

/* Closes r: its breakout rooms first, then everyone (waiting or in) is told
 * and disconnected with 4006 "room closed". History stays. */
static void room_close(struct hub *h, struct room *r, const char *by) {
  while (r->nbreakouts) {
    char bid[ID_MAX + 1];
    snprintf(bid, sizeof(bid), "%s", r->breakouts[0].id);
    room_breakout_remove(r, &r->breakouts[0]);
    struct room *br = hub_room_find(h, bid);
    if (br) room_close(h, br, by);
  }
  if (r->parent[0]) {
    struct room *parent = hub_room_find(h, r->parent);
    struct breakout *b = parent ? room_breakout_find(parent, r->id) : NULL;
    if (b) room_breakout_remove(parent, b);
    r->held = 0; /* the parent's hold on its breakout room ends with it */
  }
  uint64_t now = hub_now_ms();
  if (r->hist) history_audit(r->hist, now, by, "room_delete", "", NULL);
  log_info("room_deleted room=%s by=%s participants=%zu waiting=%zu", r->id, by, r->count, r->nwaiting);
  r->held++;
  while (r->wait_head) {
    struct waiter *w = r->wait_head;
    void *session = w->session;
    tell_closed(h, r, session, by);
    room_waiter_remove(r, w);
    if (session) h->sessions.close(h->sessions.data, session, ROOM_CLOSED_CODE, ROOM_CLOSED_REASON);
  }
  for (struct participant *p = r->head; p; p = p->next) tell_closed(h, r, p->session, by);
  r->linger_until_ms = 0;
  r->held--;
  hub_room_evict(h, r, ROOM_CLOSED_CODE, ROOM_CLOSED_REASON);
}

/* DELETE /webrtc/rooms/{room_id}: an admin token or the room's host. */
void api_rooms_delete(struct api_req *r) {
  struct api_room ar;
  if (api_room_access(r, CMD_NONE, &ar) != 0) return;
  if (!r->claims.admin && ar.role != ROOM_ROLE_HOST) {
    api_reply_error(r, API_ERR_FORBIDDEN, "closing a room needs its host or an admin token");
    return;
  }
  if (ar.room == NULL) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, NULL);
    return;
  }
  json_t *out = json_pack("{s:s,s:I,s:I}", "room_id", ar.id, "disconnected",
                          (json_int_t)(ar.room->count + ar.room->nwaiting), "closed_at",
                          (json_int_t)hub_now_ms());
  room_close(r->hub, ar.room, r->claims.sub);
  json_object_set_new(out, "closed", json_true());
  api_reply_json(r, 200, out);
}

/* GET /webrtc/rooms/{room_id}/validate: what the upgrade with this token
 * would answer, readable by a browser (which cannot read a refused
 * upgrade's body). Creates nothing and spends nothing but api_call. */
void api_rooms_validate(struct api_req *r) {
  char room_id[ID_MAX + 2];
  int n = api_param(r, "room_id", room_id, sizeof(room_id));
  if (n < 0 || !id_valid(room_id, (size_t)n)) {
    api_reply_error(r, API_ERR_INVALID_ROOM_ID, NULL);
    return;
  }
  int granted = 0;
  int64_t retry = 0;
  enum api_err e = api_ws_admission(r, room_id, 0, &granted, &retry);
  if (e != API_OK) {
    r->hub->stats.errors_by_code[e]++;
    http_reply_error(r->conn, e, r->detail[0] ? r->detail : NULL, retry);
    return;
  }
  struct room *room = hub_room_find(r->hub, room_id);
  int staff = r->claims.admin || r->claims.role >= ROOM_ROLE_MODERATOR;
  int waits = room && room->settings.waiting_room && !staff && !granted;
  api_reply_json(r, 200, json_pack("{s:b,s:s,s:s,s:s,s:b}", "ok", 1, "room_id", room_id, "user_id",
                                   r->claims.sub, "role", perm_role_name(r->claims.role), "waiting_room",
                                   waits));
}
