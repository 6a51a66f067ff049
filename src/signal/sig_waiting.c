/* The waiting room: users below moderator wait when the room's
 * waiting_room setting is on, hearing nothing from the room; hosts and
 * moderators see them arrive and admit or reject them. */
#define LOG_MODULE "waiting"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "guard/sanitize.h"
#include "net/server.h"
#include "net/ws.h"
#include "room/policy.h"
#include "room/room.h"
#include "signal/signal.h"

json_t *signal_waiting_json(const struct room *r) {
  json_t *a = json_array();
  int pos = 0;
  for (struct waiter *w = r->wait_head; w; w = w->next)
    json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:I,s:i}", "user_id", w->claims.sub, "name",
                                       w->claims.name[0] ? w->claims.name : w->claims.sub, "role",
                                       perm_role_name(w->claims.role), "requested_at",
                                       (json_int_t)w->since_ms, "position", ++pos));
  return a;
}

static void to_one(struct conn *c, struct room *r, const char *type, json_t *payload) {
  struct outbuf *b = envelope_encode(type, r->id, "server", NULL, r->seq, server_now_ms(), payload, NULL);
  if (b) ws_send(c, b);
}

static void tell_moderators(struct server *s, struct room *r, const char *type, json_t *payload) {
  struct sig_ctx ctx = {s, NULL, NULL, r, NULL};
  struct sig_out o = {type, "server", NULL, NULL, NULL, PERM_MODERATE, payload, NULL, NULL, 0};
  signal_send(&ctx, &o);
}

enum api_err op_waiting_admit(struct server *s, struct room *r, const struct actor *a, const char *target,
                              char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  if (target == NULL || !id_valid(target, strlen(target))) return API_ERR_INVALID_USER_ID;
  struct waiter *w = room_waiter_find(r, target);
  if (w == NULL) return API_ERR_WAITING_USER_NOT_FOUND;
  if ((int)r->count >= r->settings.max_participants) return API_ERR_ROOM_FULL;
  struct conn *c = w->conn;
  struct token_claims claims = w->claims;
  c->waiter = NULL;
  room_waiter_remove(r, w);
  log_info("admitted room=%s user=%s by=%s", r->id, target, a->user_id);
  if (r->hist) history_audit(r->hist, server_now_ms(), a->user_id, "admit", target, NULL);
  json_t *note = json_pack("{s:s,s:s,s:s}", "user_id", claims.sub, "status", "admitted", "by", a->user_id);
  to_one(c, r, "waiting-room-admit", note);
  tell_moderators(s, r, "waiting-room-admit", note);
  json_decref(note);
  signal_join_admitted(c, r, &claims);
  return API_OK;
}

enum api_err op_waiting_reject(struct server *s, struct room *r, const struct actor *a, const char *target,
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
  struct conn *c = w->conn;
  char user[ID_MAX + 1];
  snprintf(user, sizeof(user), "%s", target);
  c->waiter = NULL;
  room_waiter_remove(r, w);
  policy_note_rejected(s, r, user, 1); /* reads nothing of the room over REST */
  log_info("rejected room=%s user=%s by=%s", r->id, user, a->user_id);
  if (r->hist) history_audit(r->hist, server_now_ms(), a->user_id, "reject", user,
                             json_pack("{s:s}", "reason", why.data ? why.data : ""));
  json_t *note = json_pack("{s:s,s:s,s:s,s:s}", "user_id", user, "status", "rejected", "reason",
                           why.data ? why.data : "", "by", a->user_id);
  to_one(c, r, "waiting-room-reject", note);
  tell_moderators(s, r, "waiting-room-reject", note);
  json_decref(note);
  buf_free(&why);
  ws_close(c, 4004, "rejected from the waiting room");
  signal_room_release(s, r);
  return API_OK;
}

static const char *target_field(struct sig_ctx *ctx) {
  json_t *u = json_object_get(ctx->in->payload, "user_id");
  return json_is_string(u) ? json_string_value(u) : NULL;
}

enum api_err sig_waiting_room_admit(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = signal_actor_of(ctx->self);
  return op_waiting_admit(ctx->srv, ctx->room, &a, target_field(ctx), detail, dl);
}

enum api_err sig_waiting_room_reject(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = signal_actor_of(ctx->self);
  json_t *reason = json_object_get(ctx->in->payload, "reason");
  return op_waiting_reject(ctx->srv, ctx->room, &a, target_field(ctx),
                           json_is_string(reason) ? json_string_value(reason) : NULL, detail, dl);
}
