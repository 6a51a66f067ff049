/* Roles, permissions, settings, removal and enhanced participant info:
 * the room-control operations shared by REST (api/room_control.c) and the
 * WebSocket messages role-updated, permission-updated, room-settings-update
 * and participant-update. Every change is enforced here, broadcast, and
 * written to the room's audit log. */
#include <stdio.h>
#include <string.h>

#include "room/op.h"
#include "signal/signal.h"

/* ---- WebSocket handlers ---- */

static const char *target_field(struct sig_ctx *ctx) {
  json_t *u = json_object_get(ctx->in->payload, "user_id");
  return json_is_string(u) ? json_string_value(u) : NULL;
}

enum api_err sig_role_updated(struct sig_ctx *ctx, char *detail, size_t dl) {
  json_t *role = json_object_get(ctx->in->payload, "role");
  struct actor a = op_actor_of(ctx->self);
  return op_role_set(ctx->hub, ctx->room, &a, target_field(ctx),
                     json_is_string(role) ? json_string_value(role) : NULL, detail, dl);
}

enum api_err sig_permission_updated(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = op_actor_of(ctx->self);
  return op_perms_set(ctx->hub, ctx->room, &a, target_field(ctx),
                      json_object_get(ctx->in->payload, "permissions"), detail, dl);
}

enum api_err sig_room_settings_update(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = op_actor_of(ctx->self);
  json_t *settings = json_object_get(ctx->in->payload, "settings");
  return op_settings_update(ctx->hub, ctx->room, &a, settings ? settings : ctx->in->payload, detail, dl);
}

enum api_err sig_participant_update(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = op_actor_of(ctx->self);
  json_t *action = json_object_get(ctx->in->payload, "action");
  if (json_is_string(action) && strcmp(json_string_value(action), "remove") == 0) {
    json_t *reason = json_object_get(ctx->in->payload, "reason");
    return op_remove(ctx->hub, ctx->room, &a, target_field(ctx),
                     json_is_string(reason) ? json_string_value(reason) : NULL, detail, dl);
  }
  json_t *info = json_object_get(ctx->in->payload, "info");
  if (info == NULL) {
    snprintf(detail, dl, "send {\"info\": {...}} or {\"action\": \"remove\", \"user_id\": ...}");
    return API_ERR_INVALID_MESSAGE;
  }
  const char *t = target_field(ctx);
  return op_info_update(ctx->hub, ctx->room, &a, t ? t : ctx->self->user_id, info, detail, dl);
}
