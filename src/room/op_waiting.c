/* The waiting room: users below moderator wait when the room's
 * waiting_room setting is on, hearing nothing from the room; hosts and
 * moderators see them arrive and admit or reject them. */
#define LOG_MODULE "waiting"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "guard/sanitize.h"
#include "room/room.h"
#include "room/hub.h"
#include "room/op.h"
#include "room/policy.h"

json_t *op_waiting_json(const struct room *r) {
  json_t *a = json_array();
  int pos = 0;
  for (struct waiter *w = r->wait_head; w; w = w->next)
    json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:I,s:i}", "user_id", w->claims.sub, "name",
                                       w->claims.name[0] ? w->claims.name : w->claims.sub, "role",
                                       perm_role_name(w->claims.role), "requested_at",
                                       (json_int_t)w->since_ms, "position", ++pos));
  return a;
}

static void tell_moderators(struct hub *h, struct room *r, const char *type, json_t *payload) {
  struct room_event e = {type, "server", NULL, NULL, NULL, PERM_MODERATE, payload, NULL, NULL, 0};
  hub_send(h, r, &e);
}

enum api_err op_waiting_admit(struct hub *h, struct room *r, const struct actor *a, const char *target,
                              char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  if (target == NULL || !id_valid(target, strlen(target))) return API_ERR_INVALID_USER_ID;
  struct waiter *w = room_waiter_find(r, target);
  if (w == NULL) return API_ERR_WAITING_USER_NOT_FOUND;
  if ((int)r->count >= r->settings.max_participants) return API_ERR_ROOM_FULL;
  void *session = w->session;
  struct token_claims claims = w->claims;
  room_waiter_remove(r, w);
  log_info("admitted room=%s user=%s by=%s", r->id, target, a->user_id);
  if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "admit", target, NULL);
  json_t *note = json_pack("{s:s,s:s,s:s}", "user_id", claims.sub, "status", "admitted", "by", a->user_id);
  hub_send_session(h, session, r, "waiting-room-admit", note, NULL);
  tell_moderators(h, r, "waiting-room-admit", note);
  json_decref(note);
  hub_member_join(h, r, &claims, session);
  return API_OK;
}

enum api_err op_waiting_reject(struct hub *h, struct room *r, const struct actor *a, const char *target,
                               const char *reason, char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  if (target == NULL || !id_valid(target, strlen(target))) return API_ERR_INVALID_USER_ID;
  struct waiter *w = room_waiter_find(r, target);
  if (w == NULL) return API_ERR_WAITING_USER_NOT_FOUND;
  struct buf why = {0};
  if (reason && *reason && sanitize_text(reason, strlen(reason), 200, &why) != API_OK) {
    buf_free(&why);
    snprintf(detail, dl, "reason must be text of at most 200 characters");
    return API_ERR_INVALID_MESSAGE;
  }
  void *session = w->session;
  char user[ID_MAX + 1];
  snprintf(user, sizeof(user), "%s", target);
  room_waiter_remove(r, w);
  policy_note_rejected(h, r, user, 1); /* reads nothing of the room over REST */
  log_info("rejected room=%s user=%s by=%s", r->id, user, a->user_id);
  if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "reject", user,
                             json_pack("{s:s}", "reason", why.data ? why.data : ""));
  json_t *note = json_pack("{s:s,s:s,s:s,s:s}", "user_id", user, "status", "rejected", "reason",
                           why.data ? why.data : "", "by", a->user_id);
  hub_send_session(h, session, r, "waiting-room-reject", note, NULL);
  tell_moderators(h, r, "waiting-room-reject", note);
  json_decref(note);
  buf_free(&why);
  h->sessions.close(h->sessions.data, session, 4004, "rejected from the waiting room");
  hub_room_release(h, r);
  return API_OK;
}

