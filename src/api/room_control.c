/* Endpoints 3-9 and 15-24 (participants, roles, permissions, settings, hand
 * raise, waiting room, breakout rooms), plus removal and the audit log: the
 * REST face of the operations in room/op_*.c, which also serve the
 * WebSocket messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "net/http.h"
#include "net/server.h"
#include "room/room.h"
#include "room/op.h"

/* Resolves the live room and the caller as an actor; replies on refusal. */
static int live(struct api_req *r, enum command_id cmd, struct api_room *ar, struct actor *a) {
  if (api_room_access(r, cmd, ar) != 0) return -1;
  if (ar->room == NULL) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, "nobody is in this room");
    return -1;
  }
  *a = api_actor(r, ar);
  return 0;
}

static void done(struct api_req *r, enum api_err e, const char *detail, int status, json_t *body) {
  if (e != API_OK) {
    json_decref(body);
    api_reply_error(r, e, detail[0] ? detail : NULL);
    return;
  }
  api_reply_json(r, status, body ? body : json_pack("{s:b}", "ok", 1));
}

static int user_param(struct api_req *r, char *out) {
  int n = api_param(r, "user_id", out, ID_MAX + 1);
  if (n < 0 || !id_valid(out, (size_t)n)) {
    api_reply_error(r, API_ERR_INVALID_USER_ID, NULL);
    return -1;
  }
  return 0;
}

/* GET .../participants: everyone in the room, public view. */
void api_participants_list(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  if (live(r, CMD_NONE, &ar, &a) != 0) return;
  json_t *list = json_array();
  for (struct participant *p = ar.room->head; p; p = p->next) json_array_append_new(list, room_participant_json(p));
  api_reply_json(r, 200, json_pack("{s:s,s:o,s:I,s:I}", "room_id", ar.id, "participants", list, "count",
                                   (json_int_t)ar.room->count, "waiting", (json_int_t)ar.room->nwaiting));
}

/* GET .../participants/enhanced: with permissions, info and network stats. */
void api_participants_enhanced(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  if (live(r, CMD_MODERATE, &ar, &a) != 0) return;
  json_t *list = json_array();
  for (struct participant *p = ar.room->head; p; p = p->next)
    json_array_append_new(list, op_participant_full_json(p));
  api_reply_json(r, 200, json_pack("{s:s,s:o}", "room_id", ar.id, "participants", list));
}

/* POST .../participants/{user_id}/info  {"video_quality": {...}, "device_info": {...}} */
void api_participant_info_update(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char user[ID_MAX + 1], detail[200] = "";
  if (live(r, CMD_NONE, &ar, &a) != 0 || user_param(r, user) != 0) return;
  json_t *body = api_body_object(r);
  if (body == NULL) return;
  json_t *info = json_object_get(body, "info") ? json_object_get(body, "info") : body;
  enum api_err e = op_info_update(r->hub, ar.room, &a, user, info, detail, sizeof(detail));
  json_t *out = NULL;
  if (e == API_OK) out = op_participant_full_json(room_participant_find(ar.room, user));
  json_decref(body);
  done(r, e, detail, 200, out ? json_pack("{s:o}", "participant", out) : NULL);
}

typedef enum api_err (*user_reason_op)(struct hub *h, struct room *r, const struct actor *a,
                                       const char *target, const char *reason, char *detail, size_t dl);

/* A moderator's operation on {user_id} with an optional {"reason": "..."}. */
static void with_reason(struct api_req *r, user_reason_op op, const char *status) {
  struct api_room ar;
  struct actor a;
  char user[ID_MAX + 1], detail[200] = "";
  if (live(r, CMD_MODERATE, &ar, &a) != 0 || user_param(r, user) != 0) return;
  json_t *body = api_body_object(r);
  if (body == NULL) return;
  json_t *reason = json_object_get(body, "reason");
  enum api_err e = op(r->hub, ar.room, &a, user, json_is_string(reason) ? json_string_value(reason) : NULL,
                      detail, sizeof(detail));
  json_decref(body);
  done(r, e, detail, 200, json_pack("{s:s,s:s}", "user_id", user, "status", status));
}

/* POST .../participants/{user_id}/remove  {"reason": "..."} */
void api_participant_remove(struct api_req *r) { with_reason(r, op_remove, "removed"); }

/* The common start of a moderator's change: the live room, the caller,
 * {user_id} when user is not NULL, a JSON body, and the settings_update
 * budget. Returns the body (the caller frees it), or NULL after replying. */
static json_t *mod_change(struct api_req *r, enum command_id cmd, struct api_room *ar, struct actor *a,
                          char *user) {
  if (live(r, cmd, ar, a) != 0 || (user && user_param(r, user) != 0)) return NULL;
  json_t *body = api_body_object(r);
  if (body == NULL || api_command_budget(r, cmd, ar) != 0) {
    json_decref(body);
    return NULL;
  }
  return body;
}

/* POST .../roles/{user_id}  {"role": "moderator"} */
void api_role_set(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char user[ID_MAX + 1], detail[200] = "";
  json_t *body = mod_change(r, CMD_ROLE_SET, &ar, &a, user);
  if (body == NULL) return;
  json_t *role = json_object_get(body, "role");
  enum api_err e = op_role_set(r->hub, ar.room, &a, user, json_is_string(role) ? json_string_value(role) : NULL,
                               detail, sizeof(detail));
  json_decref(body);
  struct participant *p = e == API_OK ? room_participant_find(ar.room, user) : NULL;
  done(r, e, detail, 200, p ? json_pack("{s:s,s:s,s:o}", "user_id", user, "role", perm_role_name(p->role),
                                        "permissions", room_perms_json(p->perms)) : NULL);
}

/* GET .../roles/{user_id} */
void api_role_get(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char user[ID_MAX + 1];
  if (live(r, CMD_NONE, &ar, &a) != 0 || user_param(r, user) != 0) return;
  struct participant *p = room_participant_find(ar.room, user);
  if (p == NULL) {
    api_reply_error(r, API_ERR_USER_NOT_IN_ROOM, NULL);
    return;
  }
  api_reply_json(r, 200, json_pack("{s:s,s:s}", "user_id", user, "role", perm_role_name(p->role)));
}

static json_t *perms_view(const struct participant *p) {
  json_t *ov = json_object();
  for (int i = 0; i < PERM__COUNT; i++)
    if (p->perms_set & (1u << i)) json_object_set_new(ov, perm_name(i), json_boolean(p->perms_val & (1u << i)));
  return json_pack("{s:s,s:s,s:o,s:o}", "user_id", p->user_id, "role", perm_role_name(p->role), "permissions",
                   room_perms_json(p->perms), "overrides", ov);
}

/* POST .../permissions/{user_id}  {"permissions": {"can_share_screen": false}} */
void api_permissions_set(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char user[ID_MAX + 1], detail[200] = "";
  json_t *body = mod_change(r, CMD_PERMISSIONS_SET, &ar, &a, user);
  if (body == NULL) return;
  json_t *perms = json_object_get(body, "permissions");
  enum api_err e = op_perms_set(r->hub, ar.room, &a, user, perms ? perms : body, detail, sizeof(detail));
  json_decref(body);
  struct participant *p = e == API_OK ? room_participant_find(ar.room, user) : NULL;
  done(r, e, detail, 200, p ? perms_view(p) : NULL);
}

/* GET .../permissions/{user_id} */
void api_permissions_get(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char user[ID_MAX + 1];
  if (live(r, CMD_NONE, &ar, &a) != 0 || user_param(r, user) != 0) return;
  struct participant *p = room_participant_find(ar.room, user);
  if (p == NULL) {
    api_reply_error(r, API_ERR_USER_NOT_IN_ROOM, NULL);
    return;
  }
  api_reply_json(r, 200, perms_view(p));
}

/* GET .../settings */
void api_settings_get(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  if (live(r, CMD_NONE, &ar, &a) != 0) return;
  api_reply_json(r, 200, json_pack("{s:s,s:o}", "room_id", ar.id, "settings", room_settings_json(ar.room)));
}

/* POST .../settings  {"locked": true, "waiting_room": true, ...} */
void api_settings_update(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char detail[200] = "";
  json_t *body = mod_change(r, CMD_SETTINGS_UPDATE, &ar, &a, NULL);
  if (body == NULL) return;
  json_t *patch = json_object_get(body, "settings") ? json_object_get(body, "settings") : body;
  enum api_err e = op_settings_update(r->hub, ar.room, &a, patch, detail, sizeof(detail));
  json_decref(body);
  done(r, e, detail, 200, e == API_OK ? json_pack("{s:s,s:o}", "room_id", ar.id, "settings",
                                                  room_settings_json(ar.room)) : NULL);
}

/* POST .../hand-raise  {"raised": true} | {"raised": false, "user_id": "bob"} | {"action": "next"} */
void api_hand_raise(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char detail[200] = "";
  if (live(r, CMD_HAND_RAISE, &ar, &a) != 0) return;
  json_t *body = api_body_object(r);
  if (body == NULL) return;
  if (api_command_budget(r, CMD_HAND_RAISE, &ar) != 0) {
    json_decref(body);
    return;
  }
  json_t *action = json_object_get(body, "action"), *raised = json_object_get(body, "raised");
  json_t *user = json_object_get(body, "user_id"), *out = NULL;
  enum api_err e;
  if (json_is_string(action) && strcmp(json_string_value(action), "next") == 0) {
    e = op_hand_next(r->hub, ar.room, &a, &out, detail, sizeof(detail));
  } else if (!json_is_boolean(raised) || (user && !json_is_string(user))) {
    e = API_ERR_INVALID_MESSAGE;
    snprintf(detail, sizeof(detail), "send {\"raised\": true|false, \"user_id\"?: id} or {\"action\": \"next\"}");
  } else if (ar.self == NULL && user == NULL) {
    e = API_ERR_USER_NOT_IN_ROOM;
  } else {
    e = op_hand(r->hub, ar.room, &a, user ? json_string_value(user) : NULL, json_is_true(raised), detail,
                sizeof(detail));
  }
  json_decref(body);
  json_t *reply = e == API_OK ? json_pack("{s:o}", "queue", room_hands_json(ar.room)) : NULL;
  if (reply && out) json_object_set_new(reply, "next_speaker", json_object_get(out, "user_id") ? json_incref(json_object_get(out, "user_id")) : json_null());
  json_decref(out);
  done(r, e, detail, 200, reply);
}

/* GET .../hand-raise/queue */
void api_hand_queue_get(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  if (live(r, CMD_NONE, &ar, &a) != 0) return;
  api_reply_json(r, 200, json_pack("{s:s,s:o}", "room_id", ar.id, "queue", room_hands_json(ar.room)));
}

/* GET .../waiting-room */
void api_waiting_list(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  if (live(r, CMD_MODERATE, &ar, &a) != 0) return;
  api_reply_json(r, 200, json_pack("{s:s,s:b,s:o}", "room_id", ar.id, "enabled", ar.room->settings.waiting_room,
                                   "waiting", op_waiting_json(ar.room)));
}

/* POST .../waiting-room/{user_id}/admit */
void api_waiting_admit(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char user[ID_MAX + 1], detail[200] = "";
  if (live(r, CMD_MODERATE, &ar, &a) != 0 || user_param(r, user) != 0) return;
  enum api_err e = op_waiting_admit(r->hub, ar.room, &a, user, detail, sizeof(detail));
  done(r, e, detail, 200, json_pack("{s:s,s:s}", "user_id", user, "status", "admitted"));
}

/* POST .../waiting-room/{user_id}/reject  {"reason": "..."} */
void api_waiting_reject(struct api_req *r) { with_reason(r, op_waiting_reject, "rejected"); }

/* POST .../breakout-rooms  {"rooms": [{"name": "A"}, {"name": "B"}]} */
void api_breakouts_create(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char detail[200] = "";
  if (live(r, CMD_MODERATE, &ar, &a) != 0) return;
  json_t *body = api_body_object(r);
  if (body == NULL) return;
  json_t *made = NULL;
  enum api_err e = op_breakout_create(r->hub, ar.room, &a, body, &made, detail, sizeof(detail));
  json_decref(body);
  done(r, e, detail, 201, e == API_OK ? json_pack("{s:s,s:o}", "room_id", ar.id, "breakout_rooms", made) : NULL);
}

/* POST .../breakout-rooms/{breakout_room_id}/assign/{user_id} */
void api_breakouts_assign(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char user[ID_MAX + 1], bid[ID_MAX + 1], detail[200] = "";
  if (live(r, CMD_MODERATE, &ar, &a) != 0 || user_param(r, user) != 0) return;
  if (api_param(r, "breakout_room_id", bid, sizeof(bid)) < 0) {
    api_reply_error(r, API_ERR_BREAKOUT_NOT_FOUND, NULL);
    return;
  }
  enum api_err e = op_breakout_assign(r->hub, ar.room, &a, bid, user, detail, sizeof(detail));
  done(r, e, detail, 200, json_pack("{s:s,s:s}", "breakout_room_id", bid, "user_id", user));
}

/* DELETE .../breakout-rooms/{breakout_room_id} */
void api_breakouts_close(struct api_req *r) {
  struct api_room ar;
  struct actor a;
  char bid[ID_MAX + 1], detail[200] = "";
  if (live(r, CMD_MODERATE, &ar, &a) != 0) return;
  if (api_param(r, "breakout_room_id", bid, sizeof(bid)) < 0) {
    api_reply_error(r, API_ERR_BREAKOUT_NOT_FOUND, NULL);
    return;
  }
  /* NOTE: closing may release the main room (an admin caller not in it). */
  enum api_err e = op_breakout_close(r->hub, ar.room, &a, bid, detail, sizeof(detail));
  done(r, e, detail, 200, json_pack("{s:s,s:s}", "breakout_room_id", bid, "status", "closed"));
}

/* GET .../audit?since=&limit=: the moderation log, for hosts and admins. */
void api_audit_get(struct api_req *r) {
  struct api_room ar;
  if (api_room_access(r, CMD_MODERATE, &ar) != 0) return;
  if (!r->claims.admin && ar.role != ROOM_ROLE_HOST) {
    api_reply_error(r, API_ERR_PERMISSION_DENIED, "the audit log is for hosts");
    return;
  }
  if (ar.hist == NULL) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, NULL);
    return;
  }
  char v[32];
  uint64_t since = 0;
  size_t limit = 100;
  if (api_query(r->query, "since", v, sizeof(v)) > 0) since = strtoull(v, NULL, 10);
  if (api_query(r->query, "limit", v, sizeof(v)) > 0) {
    long n = strtol(v, NULL, 10);
    if (n < 1 || n > HISTORY_EVENTS) {
      api_reply_error(r, API_ERR_BAD_REQUEST, "limit must be 1 to 1000");
      return;
    }
    limit = (size_t)n;
  }
  api_reply_json(r, 200, json_pack("{s:s,s:o,s:I}", "room_id", ar.id, "entries",
                                   history_ring_json(&ar.hist->audit, since, limit, 1), "total",
                                   (json_int_t)ar.hist->audit.total));
}
